/** Pascal VOC annotations (XML) and ImageSets lists, parsed without touching the file system. */
import { argError } from './errors.js';
import { parseXml, type XmlElement, xmlChild, xmlChildren, xmlChildText } from './xml.js';

/** effdet's `VocParser.DEFAULT_CLASSES`: labels 1..20 in this order. */
export const VOC_CLASSES = [
  'aeroplane',
  'bicycle',
  'bird',
  'boat',
  'bottle',
  'bus',
  'car',
  'cat',
  'chair',
  'cow',
  'diningtable',
  'dog',
  'horse',
  'motorbike',
  'person',
  'pottedplant',
  'sheep',
  'sofa',
  'train',
  'tvmonitor',
] as const;

export interface VocObject {
  name: string;
  pose?: string;
  truncated: boolean;
  difficult: boolean;
  /** `[xmin, ymin, xmax, ymax]` as written (VOC pixels are 1-based and inclusive). */
  bbox: [number, number, number, number];
}

export interface VocAnnotation {
  folder?: string;
  filename?: string;
  width: number;
  height: number;
  depth?: number;
  segmented?: boolean;
  objects: VocObject[];
}

function num(el: XmlElement, name: string, where: string): number {
  const t = xmlChildText(el, name);
  const v = t === undefined ? Number.NaN : Number(t);
  if (t === undefined || t === '' || !Number.isFinite(v)) {
    throw argError('parseVocXml', `${where}/${name}`, 'a number', t);
  }
  return v;
}

function flag(el: XmlElement, name: string): boolean {
  const t = xmlChildText(el, name);
  return t !== undefined && t !== '' && Number(t) !== 0;
}

/** Parses one VOC annotation XML (`<annotation>` with `size` and `object` children). */
export function parseVocXml(xml: string): VocAnnotation {
  const root = parseXml(xml);
  if (root.name !== 'annotation')
    throw argError('parseVocXml', 'xml', 'an <annotation> root element', root.name);
  const size = xmlChild(root, 'size');
  if (!size) throw argError('parseVocXml', 'xml', 'an <annotation> with a <size> element', xml);
  const depthText = xmlChildText(size, 'depth');
  const objects = xmlChildren(root, 'object').map((o, i): VocObject => {
    const name = xmlChildText(o, 'name');
    if (!name) throw argError('parseVocXml', `object[${i}]/name`, 'a class name', name);
    const bb = xmlChild(o, 'bndbox');
    if (!bb) throw argError('parseVocXml', `object[${i}]/bndbox`, 'a <bndbox> element', bb);
    const where = `object[${i}]/bndbox`;
    return {
      name,
      pose: xmlChildText(o, 'pose'),
      truncated: flag(o, 'truncated'),
      difficult: flag(o, 'difficult'),
      bbox: [num(bb, 'xmin', where), num(bb, 'ymin', where), num(bb, 'xmax', where), num(bb, 'ymax', where)],
    };
  });
  const segmented = xmlChildText(root, 'segmented');
  return {
    folder: xmlChildText(root, 'folder'),
    filename: xmlChildText(root, 'filename'),
    width: num(size, 'width', 'size'),
    height: num(size, 'height', 'size'),
    depth: depthText ? Number(depthText) : undefined,
    segmented: segmented === undefined ? undefined : Number(segmented) !== 0,
    objects,
  };
}

/** Image ids of an ImageSets list (`Main/val.txt`): the first token of each non-empty line. */
export function parseImageSet(text: string): string[] {
  if (typeof text !== 'string')
    throw argError('parseImageSet', 'text', 'the text of an ImageSets file', text);
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (t) out.push(t.split(/\s+/)[0]);
  }
  return out;
}

/** A per-class ImageSets list (`Main/cat_val.txt`): `id flag` lines, flag 1 present, -1 absent, 0 difficult only. */
export function parseClassImageSet(text: string): { id: string; flag: number }[] {
  if (typeof text !== 'string')
    throw argError('parseClassImageSet', 'text', 'the text of an ImageSets file', text);
  const out: { id: string; flag: number }[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (!t) return;
    const parts = t.split(/\s+/);
    const f = Number(parts[1]);
    if (parts.length < 2 || !Number.isInteger(f)) {
      throw argError('parseClassImageSet', `line ${i + 1}`, "'<id> <flag>' with an integer flag", line);
    }
    out.push({ id: parts[0], flag: f });
  });
  return out;
}

export interface VocTarget {
  /** `[x1, y1, x2, y2]`, shifted by -1 (effdet's `correct_bbox`) unless `correctBbox` is 0. */
  boxes: [number, number, number, number][];
  labels: number[];
  difficult: boolean[];
}

export interface VocTargetOptions {
  /** Class names in label order (label = index + 1); default `VOC_CLASSES`. */
  classes?: readonly string[];
  /** Subtracted from every coordinate (effdet: 1). */
  correctBbox?: number;
  /** Keep difficult objects (flagged in `difficult`) instead of dropping them (default true: evaluation needs them). */
  keepDifficult?: boolean;
}

/** Converts a parsed annotation to evaluation targets (labels 1..N in `classes` order). */
export function vocAnnotationToTarget(ann: VocAnnotation, options: VocTargetOptions = {}): VocTarget {
  const classes = options.classes ?? VOC_CLASSES;
  const shift = options.correctBbox ?? 1;
  const keep = options.keepDifficult ?? true;
  const out: VocTarget = { boxes: [], labels: [], difficult: [] };
  ann.objects.forEach((o, i) => {
    const idx = classes.indexOf(o.name);
    if (idx < 0)
      throw argError(
        'vocAnnotationToTarget',
        `objects[${i}].name`,
        `one of ${classes.length} classes`,
        o.name,
      );
    if (o.difficult && !keep) return;
    const [x1, y1, x2, y2] = o.bbox;
    out.boxes.push([x1 - shift, y1 - shift, x2 - shift, y2 - shift]);
    out.labels.push(idx + 1);
    out.difficult.push(o.difficult);
  });
  return out;
}

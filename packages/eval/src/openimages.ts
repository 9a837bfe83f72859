/** OpenImages box annotations (CSV) and class descriptions, and their conversion to a COCO-style dataset. */
import type { CocoAnnotation, CocoDatasetJson, CocoImage } from './coco.js';
import { parseCsv } from './csv.js';
import { argError } from './errors.js';

export interface OpenImagesClass {
  /** The MID label name, e.g. `/m/01g317`. */
  labelName: string;
  displayName: string;
}

/** Class description CSV (`LabelName,DisplayName` rows, optionally with that header). Label = position + 1. */
export function parseOpenImagesClasses(csv: string): OpenImagesClass[] {
  const rows = parseCsv(csv).filter((r) => !(r.length === 1 && r[0] === ''));
  const start = rows.length && rows[0][0] === 'LabelName' ? 1 : 0;
  return rows.slice(start).map((r, i) => {
    if (r.length < 2)
      throw argError('parseOpenImagesClasses', `row ${i + start + 1}`, 'LabelName,DisplayName', r);
    return { labelName: r[0], displayName: r[1] };
  });
}

export interface OpenImagesBox {
  imageId: string;
  labelName: string;
  /** Normalised to [0, 1] by the image size. */
  xMin: number;
  xMax: number;
  yMin: number;
  yMax: number;
  isGroupOf: boolean;
  isOccluded?: boolean;
  isTruncated?: boolean;
  isDepiction?: boolean;
  isInside?: boolean;
  source?: string;
  confidence?: number;
}

const REQUIRED = ['ImageID', 'LabelName', 'XMin', 'XMax', 'YMin', 'YMax'] as const;

/** Box CSV with a header (`ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,...,IsGroupOf,...`). */
export function parseOpenImagesBoxes(csv: string): OpenImagesBox[] {
  const fn = 'parseOpenImagesBoxes';
  const rows = parseCsv(csv).filter((r) => !(r.length === 1 && r[0] === ''));
  if (rows.length === 0) return [];
  const header = rows[0];
  const col = new Map(header.map((h, j) => [h.trim(), j]));
  for (const k of REQUIRED) {
    if (!col.has(k)) throw argError(fn, 'csv', `a header with ${REQUIRED.join(', ')}`, header.join(','));
  }
  const get = (r: string[], k: string) => {
    const j = col.get(k);
    return j === undefined ? undefined : r[j];
  };
  const numAt = (r: string[], k: string, i: number): number => {
    const s = get(r, k);
    const v = Number(s);
    if (s === undefined || s === '' || !Number.isFinite(v))
      throw argError(fn, `row ${i + 2} ${k}`, 'a number', s);
    return v;
  };
  const flagAt = (r: string[], k: string): boolean | undefined => {
    const s = get(r, k);
    if (s === undefined || s === '') return undefined;
    return Number(s) > 0;
  };
  return rows.slice(1).map((r, i) => {
    const conf = get(r, 'Confidence');
    return {
      imageId: get(r, 'ImageID')!,
      labelName: get(r, 'LabelName')!,
      xMin: numAt(r, 'XMin', i),
      xMax: numAt(r, 'XMax', i),
      yMin: numAt(r, 'YMin', i),
      yMax: numAt(r, 'YMax', i),
      isGroupOf: flagAt(r, 'IsGroupOf') ?? false,
      isOccluded: flagAt(r, 'IsOccluded'),
      isTruncated: flagAt(r, 'IsTruncated'),
      isDepiction: flagAt(r, 'IsDepiction'),
      isInside: flagAt(r, 'IsInside'),
      source: get(r, 'Source'),
      confidence: conf === undefined || conf === '' ? undefined : Number(conf),
    };
  });
}

/**
 * Builds a COCO-style dataset: boxes scaled by each image's size, `IsGroupOf` as `iscrowd`, `area = w * h`,
 * annotation ids from 1, category ids 1..N in `classes` order (effdet's `cat_id_to_label`). Images come from
 * `imageSizes` (in its order); boxes of images without a size are an error.
 */
export function openImagesToCoco(
  boxes: readonly OpenImagesBox[],
  classes: readonly OpenImagesClass[],
  imageSizes: ReadonlyMap<string, { width: number; height: number }>,
): CocoDatasetJson {
  const fn = 'openImagesToCoco';
  const catOf = new Map(classes.map((c, i) => [c.labelName, i + 1]));
  const images: CocoImage[] = [...imageSizes].map(([id, s]) => ({ id, width: s.width, height: s.height }));
  const annotations: CocoAnnotation[] = [];
  boxes.forEach((b, i) => {
    const size = imageSizes.get(b.imageId);
    if (!size) throw argError(fn, `boxes[${i}].imageId`, 'an image listed in imageSizes', b.imageId);
    const cat = catOf.get(b.labelName);
    if (cat === undefined) throw argError(fn, `boxes[${i}].labelName`, 'a label in classes', b.labelName);
    const x1 = b.xMin * size.width;
    const x2 = b.xMax * size.width;
    const y1 = b.yMin * size.height;
    const y2 = b.yMax * size.height;
    const w = x2 - x1;
    const h = y2 - y1;
    annotations.push({
      id: annotations.length + 1,
      image_id: b.imageId,
      category_id: cat,
      bbox: [x1, y1, w, h],
      area: w * h,
      iscrowd: b.isGroupOf ? 1 : 0,
    });
  });
  return {
    images,
    annotations,
    categories: classes.map((c, i) => ({ id: i + 1, name: c.displayName, label_name: c.labelName })),
  };
}

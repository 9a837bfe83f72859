/**
 * A COCO dataset index (pycocotools `COCO`): images, annotations and categories by id, annotations per image,
 * images per category, the `getAnnIds`-style filters, and `loadRes` for detection results.
 */
import { argError, check, parseJsonText } from './errors.js';
import { type Rle, rleArea, rleToBbox, type Segmentation, segmentationToRle } from './mask.js';

/** Image ids may be numbers (COCO) or strings (e.g. OpenImages); one dataset should not mix both. */
export type ImageId = number | string;

export interface CocoImage {
  id: ImageId;
  width?: number;
  height?: number;
  file_name?: string;
  [key: string]: unknown;
}

export interface CocoCategory {
  id: number;
  name?: string;
  supercategory?: string;
  [key: string]: unknown;
}

export interface CocoAnnotation {
  id: number;
  image_id: ImageId;
  category_id: number;
  /** `[x, y, w, h]`. */
  bbox?: number[];
  area?: number;
  iscrowd?: number | boolean;
  segmentation?: Segmentation;
  /** Detection confidence (results only). */
  score?: number;
  [key: string]: unknown;
}

export interface CocoDatasetJson {
  images: CocoImage[];
  annotations?: CocoAnnotation[];
  categories?: CocoCategory[];
  info?: unknown;
  licenses?: unknown;
  [key: string]: unknown;
}

/** One entry of a COCO results file (`bbox` or `segmentation` required; `id`/`area` are assigned by `loadRes`). */
export interface CocoResult {
  image_id: ImageId;
  category_id: number;
  score: number;
  bbox?: number[];
  segmentation?: Segmentation;
  [key: string]: unknown;
}

export interface AnnFilter {
  imgIds?: readonly ImageId[];
  catIds?: readonly number[];
  /** Open interval `(lo, hi)` on `area`, as pycocotools. */
  areaRng?: readonly [number, number];
  iscrowd?: boolean;
}

/** Orders ids as `np.unique` would: numbers numerically, strings by code point. */
export function compareIds(a: ImageId, b: ImageId): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw argError('compareIds', 'a, b', 'ids of one type (all numbers or all strings)', [a, b]);
}

/** Sorted unique ids (`np.unique`). */
export function uniqueSorted<T extends ImageId>(ids: readonly T[]): T[] {
  const out = [...new Set(ids)];
  out.sort(compareIds);
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface CocoIndexOptions {
  /** Skip the per-record checks (the records were checked already). Default false. */
  trusted?: boolean;
}

export interface LoadResOptions {
  /**
   * A result whose `category_id` is not a category of the ground truth is an error (default). With true it is
   * kept, as pycocotools does, and never evaluated (evaluation covers the ground truth's categories only).
   */
  allowUnknownCategories?: boolean;
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** `[x, y, w, h]` of finite numbers with `w, h >= 0`. */
function isValidBox(bb: unknown): bb is number[] {
  return (
    Array.isArray(bb) &&
    bb.length === 4 &&
    isFiniteNumber(bb[0]) &&
    isFiniteNumber(bb[1]) &&
    isFiniteNumber(bb[2]) &&
    isFiniteNumber(bb[3]) &&
    bb[2] >= 0 &&
    bb[3] >= 0
  );
}

const BOX_EXPECTED = '[x, y, w, h] of 4 finite numbers with w >= 0 and h >= 0';

function checkImages(images: readonly unknown[]): void {
  const fn = 'CocoIndex';
  const seen = new Map<ImageId, number>();
  let kind: string | null = null;
  images.forEach((img, i) => {
    if (!isRecord(img))
      throw argError(fn, `dataset.images[${i}]`, 'an image object {id, width, height}', img);
    const id = img.id;
    if (!(isFiniteNumber(id) || (typeof id === 'string' && id !== ''))) {
      throw argError(fn, `dataset.images[${i}].id`, 'a number or a non-empty string', id);
    }
    kind ??= typeof id;
    if (typeof id !== kind) {
      throw argError(
        fn,
        `dataset.images[${i}].id`,
        `a ${kind} id like the images before it (ids of one type)`,
        id,
      );
    }
    const first = seen.get(id);
    if (first !== undefined) {
      throw argError(fn, `dataset.images[${i}].id`, `a unique image id (images[${first}] has it too)`, id);
    }
    seen.set(id, i);
    for (const k of ['width', 'height'] as const) {
      const v = img[k];
      if (v !== undefined && !(isFiniteNumber(v) && v > 0)) {
        throw argError(fn, `dataset.images[${i}] (id ${id}).${k}`, 'a positive number', v);
      }
    }
  });
}

function checkCategories(categories: readonly unknown[]): void {
  const fn = 'CocoIndex';
  const seen = new Map<number, number>();
  categories.forEach((c, i) => {
    if (!isRecord(c)) throw argError(fn, `dataset.categories[${i}]`, 'a category object {id, name}', c);
    if (!isFiniteNumber(c.id)) throw argError(fn, `dataset.categories[${i}].id`, 'a number', c.id);
    const first = seen.get(c.id);
    if (first !== undefined) {
      throw argError(
        fn,
        `dataset.categories[${i}].id`,
        `a unique id (categories[${first}] has it too)`,
        c.id,
      );
    }
    seen.set(c.id, i);
  });
}

function checkAnnotations(
  annotations: readonly unknown[],
  imgs: ReadonlyMap<ImageId, CocoImage>,
  cats: ReadonlyMap<number, CocoCategory> | null,
): void {
  const fn = 'CocoIndex';
  const seen = new Map<number, number>();
  annotations.forEach((a, i) => {
    if (!isRecord(a)) throw argError(fn, `dataset.annotations[${i}]`, 'an annotation object', a);
    const id = a.id;
    if (!isFiniteNumber(id)) throw argError(fn, `dataset.annotations[${i}].id`, 'a number', id);
    const first = seen.get(id);
    if (first !== undefined) {
      throw argError(
        fn,
        `dataset.annotations[${i}].id`,
        `a unique id (annotations[${first}] has it too)`,
        id,
      );
    }
    seen.set(id, i);
    const rec = `dataset.annotations[${i}] (id ${id})`;
    if (!imgs.has(a.image_id as ImageId)) {
      throw argError(fn, `${rec}.image_id`, "the id of an image listed in 'images'", a.image_id);
    }
    if (!isFiniteNumber(a.category_id)) throw argError(fn, `${rec}.category_id`, 'a number', a.category_id);
    if (cats && !cats.has(a.category_id)) {
      throw argError(fn, `${rec}.category_id`, "the id of a category listed in 'categories'", a.category_id);
    }
    if (a.bbox !== undefined && !isValidBox(a.bbox)) throw argError(fn, `${rec}.bbox`, BOX_EXPECTED, a.bbox);
    if (a.area !== undefined && !(isFiniteNumber(a.area) && a.area >= 0)) {
      throw argError(fn, `${rec}.area`, 'a finite number >= 0', a.area);
    }
    const crowd = a.iscrowd;
    if (crowd !== undefined && crowd !== 0 && crowd !== 1 && typeof crowd !== 'boolean') {
      throw argError(fn, `${rec}.iscrowd`, '0, 1 or a boolean', crowd);
    }
  });
}

export class CocoIndex {
  readonly dataset: CocoDatasetJson;
  readonly imgs = new Map<ImageId, CocoImage>();
  readonly anns = new Map<number, CocoAnnotation>();
  readonly cats = new Map<number, CocoCategory>();
  readonly imgToAnns = new Map<ImageId, CocoAnnotation[]>();
  readonly catToImgs = new Map<number, ImageId[]>();

  /**
   * Indexes a parsed COCO JSON object (not copied; annotations are never modified by this package). Every record
   * is checked: image, annotation and category ids present and unique, annotations on listed images and (when
   * the dataset lists categories) listed categories, image sizes positive, boxes `[x, y, w, h]` of finite numbers
   * with `w, h >= 0`, areas finite and `>= 0`. Errors name the record (`dataset.annotations[12] (id 7).bbox`).
   * `trusted` skips the checks (for records already checked, as `loadRes` does).
   */
  constructor(dataset: CocoDatasetJson, options: CocoIndexOptions = {}) {
    if (!isRecord(dataset)) throw argError('CocoIndex', 'dataset', 'a COCO JSON object', dataset);
    check(Array.isArray(dataset.images), 'CocoIndex', 'dataset.images', 'an array', dataset.images);
    this.dataset = dataset;
    const annotations = dataset.annotations ?? [];
    check(Array.isArray(annotations), 'CocoIndex', 'dataset.annotations', 'an array', annotations);
    const categories = dataset.categories ?? [];
    check(Array.isArray(categories), 'CocoIndex', 'dataset.categories', 'an array', categories);
    const checked = !options.trusted;
    if (checked) checkImages(dataset.images);
    for (const img of dataset.images) this.imgs.set(img.id, img);
    if (checked) checkCategories(categories);
    for (const cat of categories) this.cats.set(cat.id, cat);
    if (checked) checkAnnotations(annotations, this.imgs, dataset.categories ? this.cats : null);
    for (const ann of annotations) {
      let list = this.imgToAnns.get(ann.image_id);
      if (!list) {
        list = [];
        this.imgToAnns.set(ann.image_id, list);
      }
      list.push(ann);
      this.anns.set(ann.id, ann);
    }
    if (dataset.categories) {
      for (const ann of annotations) {
        let list = this.catToImgs.get(ann.category_id);
        if (!list) {
          list = [];
          this.catToImgs.set(ann.category_id, list);
        }
        list.push(ann.image_id);
      }
    }
  }

  /** Image ids in file order; with `catIds`, only images holding an annotation of every listed category. */
  getImgIds(opts: { imgIds?: readonly ImageId[]; catIds?: readonly number[] } = {}): ImageId[] {
    const { imgIds = [], catIds = [] } = opts;
    if (imgIds.length === 0 && catIds.length === 0) return [...this.imgs.keys()];
    let ids = new Set<ImageId>(imgIds);
    catIds.forEach((catId, i) => {
      const withCat = this.catToImgs.get(catId) ?? [];
      if (i === 0 && ids.size === 0) ids = new Set(withCat);
      else {
        const keep = new Set(withCat);
        ids = new Set([...ids].filter((id) => keep.has(id)));
      }
    });
    return [...ids];
  }

  /** Category ids in file order (pycocotools `getCatIds()`), optionally filtered by names / supercategories / ids. */
  getCatIds(
    opts: { catNms?: readonly string[]; supNms?: readonly string[]; catIds?: readonly number[] } = {},
  ): number[] {
    const { catNms = [], supNms = [], catIds = [] } = opts;
    let cats = this.dataset.categories ?? [];
    if (catNms.length) cats = cats.filter((c) => catNms.includes(c.name ?? ''));
    if (supNms.length) cats = cats.filter((c) => supNms.includes(c.supercategory ?? ''));
    if (catIds.length) cats = cats.filter((c) => catIds.includes(c.id));
    return cats.map((c) => c.id);
  }

  /** Annotations matching the filter, in pycocotools order: images as listed in `imgIds`, then file order. */
  getAnns(filter: AnnFilter = {}): CocoAnnotation[] {
    const { imgIds = [], catIds = [], areaRng, iscrowd } = filter;
    let anns: CocoAnnotation[];
    if (imgIds.length === 0 && catIds.length === 0 && !areaRng) {
      anns = this.dataset.annotations ?? [];
    } else {
      if (imgIds.length) {
        anns = [];
        for (const id of imgIds) {
          const list = this.imgToAnns.get(id);
          if (list) for (const a of list) anns.push(a);
        }
      } else {
        anns = this.dataset.annotations ?? [];
      }
      if (catIds.length) {
        const set = new Set(catIds);
        anns = anns.filter((a) => set.has(a.category_id));
      }
      if (areaRng)
        anns = anns.filter((a) => (a.area ?? Number.NaN) > areaRng[0] && (a.area ?? Number.NaN) < areaRng[1]);
    }
    if (iscrowd !== undefined) anns = anns.filter((a) => !!a.iscrowd === iscrowd);
    return anns;
  }

  /** Ids of `getAnns(filter)`. */
  getAnnIds(filter: AnnFilter = {}): number[] {
    return this.getAnns(filter).map((a) => a.id);
  }

  /** Annotations by id; throws for an unknown id. */
  loadAnns(ids: readonly number[]): CocoAnnotation[] {
    return ids.map((id) => {
      const a = this.anns.get(id);
      if (!a) throw argError('CocoIndex.loadAnns', 'ids', 'ids of annotations in this dataset', id);
      return a;
    });
  }

  /** Crowd annotations (`iscrowd` truthy) in file order. */
  crowdAnns(): CocoAnnotation[] {
    return (this.dataset.annotations ?? []).filter((a) => !!a.iscrowd);
  }

  /** The RLE of an annotation's segmentation (pycocotools `annToRLE`), sized by its image. */
  annToRle(ann: CocoAnnotation): Rle {
    const img = this.imgs.get(ann.image_id);
    if (!img)
      throw argError(
        'CocoIndex.annToRle',
        'ann.image_id',
        'the id of an image in this dataset',
        ann.image_id,
      );
    if (ann.segmentation === undefined) {
      throw argError('CocoIndex.annToRle', 'ann.segmentation', 'polygons or an RLE object', ann.segmentation);
    }
    const h = img.height;
    const w = img.width;
    if (typeof h !== 'number' || typeof w !== 'number') {
      throw argError('CocoIndex.annToRle', `image ${img.id} height/width`, 'numbers', img);
    }
    return segmentationToRle(ann.segmentation, h, w);
  }

  /**
   * pycocotools `loadRes`: a results index sharing this dataset's images. Results are copied (the input is not
   * modified); ids are assigned from 1 in list order and `iscrowd` set to 0. For box results `area = w * h` and a
   * box polygon is added as `segmentation` when missing; for segmentation results `area` is the mask area and
   * `bbox` its tight box when missing. Which of the two is decided by the first result, as in pycocotools.
   */
  loadRes(results: readonly CocoResult[] | unknown, options: LoadResOptions = {}): CocoIndex {
    const fn = 'CocoIndex.loadRes';
    if (!Array.isArray(results)) throw argError(fn, 'results', 'an array of result objects', results);
    const anns: CocoAnnotation[] = [];
    const kind = results.length === 0 ? 'none' : resultKind(results[0]);
    const checkCats = !options.allowUnknownCategories && this.dataset.categories !== undefined;
    results.forEach((r: unknown, i: number) => {
      if (!isRecord(r)) throw argError(fn, `results[${i}]`, 'a result object', r);
      const imageId = r.image_id as ImageId;
      if (!this.imgs.has(imageId)) {
        throw argError(
          fn,
          `results[${i}].image_id`,
          'the id of an image in the ground truth (results do not correspond to this coco set)',
          imageId,
        );
      }
      const rec = `results[${i}] (image ${String(imageId)})`;
      const categoryId = r.category_id;
      if (!isFiniteNumber(categoryId)) throw argError(fn, `${rec}.category_id`, 'a number', categoryId);
      if (checkCats && !this.cats.has(categoryId)) {
        throw argError(
          fn,
          `${rec}.category_id`,
          `the id of a ground-truth category (${describeIds([...this.cats.keys()])}; allowUnknownCategories keeps such results, unevaluated, as pycocotools does)`,
          categoryId,
        );
      }
      if (!isFiniteNumber(r.score)) throw argError(fn, `${rec}.score`, 'a finite number', r.score);
      // Explicit copy (object spread is very slow on large result lists); extra keys are carried over.
      const ann: CocoAnnotation = {
        id: i + 1,
        image_id: imageId,
        category_id: categoryId,
        score: r.score,
        iscrowd: 0,
      };
      if (r.bbox !== undefined) ann.bbox = r.bbox as number[];
      if (r.segmentation !== undefined) ann.segmentation = r.segmentation as Segmentation;
      for (const key of Object.keys(r)) if (!(key in ann) && !RESERVED.has(key)) ann[key] = r[key];
      if (kind === 'bbox') {
        const bb = r.bbox;
        if (!isValidBox(bb)) throw argError(fn, `${rec}.bbox`, BOX_EXPECTED, bb);
        const x1 = bb[0];
        const x2 = bb[0] + bb[2];
        const y1 = bb[1];
        const y2 = bb[1] + bb[3];
        if (!('segmentation' in r)) ann.segmentation = [[x1, y1, x1, y2, x2, y2, x2, y1]];
        ann.area = bb[2] * bb[3];
      } else if (kind === 'segm') {
        const segm = r.segmentation as Segmentation;
        const img = this.imgs.get(imageId)!;
        if (!isFiniteNumber(img.height) || !isFiniteNumber(img.width)) {
          throw argError(fn, `image ${String(imageId)} width/height`, 'numbers (needed for masks)', img);
        }
        let rle: Rle;
        try {
          rle = segmentationToRle(segm, img.height, img.width);
        } catch {
          throw argError(fn, `${rec}.segmentation`, 'polygons or an RLE object', segm);
        }
        ann.area = rleArea(rle);
        if (!('bbox' in r)) ann.bbox = rleToBbox(rle);
        else if (!isValidBox(r.bbox)) throw argError(fn, `${rec}.bbox`, BOX_EXPECTED, r.bbox);
      } else {
        throw argError(fn, 'results[0]', "a result with 'bbox' or 'segmentation'", results[0]);
      }
      anns.push(ann);
    });
    return new CocoIndex(
      {
        images: [...this.dataset.images],
        annotations: anns,
        categories: this.dataset.categories ? this.dataset.categories.map((c) => ({ ...c })) : undefined,
      },
      { trusted: true },
    );
  }
}

function describeIds(ids: number[]): string {
  const sorted = [...ids].sort((a, b) => a - b);
  const head = sorted.slice(0, 10).join(', ');
  return sorted.length > 10 ? `one of ${sorted.length}: ${head}, ...` : `one of ${head}`;
}

const RESERVED = new Set(['id', 'iscrowd', 'area']);

function resultKind(first: unknown): 'bbox' | 'segm' | 'other' {
  if (!isRecord(first)) throw argError('CocoIndex.loadRes', 'results[0]', 'a result object', first);
  if ('bbox' in first && !(Array.isArray(first.bbox) && first.bbox.length === 0)) return 'bbox';
  if ('segmentation' in first) return 'segm';
  return 'other';
}

/** Parses COCO JSON text (or takes an already-parsed object) and indexes it. */
export function loadCocoDataset(json: string | CocoDatasetJson): CocoIndex {
  const data = typeof json === 'string' ? parseJsonText(json, 'loadCocoDataset', 'json') : json;
  if (!isRecord(data) || !Array.isArray(data.images)) {
    throw argError('loadCocoDataset', 'json', "a COCO dataset object with an 'images' array", data);
  }
  return new CocoIndex(data as CocoDatasetJson);
}

/** Parses a COCO results list (JSON text or array). */
export function parseCocoResults(json: string | readonly CocoResult[]): CocoResult[] {
  const data = typeof json === 'string' ? parseJsonText(json, 'parseCocoResults', 'json') : json;
  if (!Array.isArray(data)) throw argError('parseCocoResults', 'json', 'a JSON array of results', data);
  return data as CocoResult[];
}

export interface CocoImageTarget {
  /** `[x1, y1, x2, y2]` (or `[y1, x1, y2, x2]` with `yxyx`) of the non-crowd boxes. */
  boxes: [number, number, number, number][];
  labels: number[];
  /** Crowd boxes, as effdet's `bbox_ignore`. */
  crowdBoxes: [number, number, number, number][];
}

/**
 * An image's training/eval target as effdet's `CocoParser._parse_img_ann`: annotations flagged `ignore` and boxes
 * narrower or shorter than 1 pixel are skipped, crowd boxes are returned apart, labels are the category ids unless
 * `toLabel` maps them (e.g. `CategoryMap.toLabel`).
 */
export function cocoImageTarget(
  index: CocoIndex,
  imageId: ImageId,
  options: { toLabel?: (categoryId: number) => number; yxyx?: boolean } = {},
): CocoImageTarget {
  if (!index.imgs.has(imageId)) {
    throw argError('cocoImageTarget', 'imageId', 'the id of an image in the dataset', imageId);
  }
  const out: CocoImageTarget = { boxes: [], labels: [], crowdBoxes: [] };
  for (const ann of index.imgToAnns.get(imageId) ?? []) {
    if (ann.ignore) continue;
    const bb = ann.bbox;
    if (!Array.isArray(bb) || bb.length !== 4) {
      throw argError('cocoImageTarget', `annotation ${ann.id} bbox`, 'an [x, y, w, h] array', bb);
    }
    const [x1, y1, w, h] = bb;
    if (w < 1 || h < 1) continue;
    const box: [number, number, number, number] = options.yxyx
      ? [y1, x1, y1 + h, x1 + w]
      : [x1, y1, x1 + w, y1 + h];
    if (ann.iscrowd) out.crowdBoxes.push(box);
    else {
      out.boxes.push(box);
      out.labels.push(options.toLabel ? options.toLabel(ann.category_id) : ann.category_id);
    }
  }
  return out;
}

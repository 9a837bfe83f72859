/**
 * Datasets of scenes as COCO: `iterateDataset` yields one image at a time (pixels, masks, COCO records), so
 * memory stays flat however many images are made; `generateDataset` collects the COCO object.
 *
 * Seeds. Image `index` (0-based) of split `split` under seed `seed` is `generateScene(imageSeed(seed, split,
 * index), options)`, where `imageSeed` hashes the three together. Every image is therefore reproducible on
 * its own, independent of `count`, and the splits are disjoint streams even under the same seed: train and
 * val of seed 0 share no image. A fresh validation set is `split: 'val'` with a seed not used for 'val'
 * before (e.g. `writeShapesDataset(dir, {seed: 0, valSeed: 1})`).
 */
import { type Rle, rleToString } from '@effdet/eval';
import { hashSeed } from './rng.js';
import {
  generateScene,
  resolveSceneOptions,
  type Scene,
  type SceneOptions,
  SHAPE_CATEGORIES,
} from './scene.js';

/** Version of the generator; bumped whenever a seed would give different pixels or labels. */
export const SHAPES_GENERATOR_VERSION = 1;

/** The scene seed of image `index` of `split` under `seed`. */
export function imageSeed(seed: number, split: string, index: number): number {
  if (!(Number.isSafeInteger(index) && index >= 0)) {
    throw new Error(`imageSeed: index must be a non-negative integer, got ${String(index)}`);
  }
  if (typeof split !== 'string') throw new Error(`imageSeed: split must be a string, got ${typeof split}`);
  return hashSeed(seed, 'effdet-shapes', split, index);
}

export type ShapesImage = { id: number; file_name: string; width: number; height: number; seed: number };

export type ShapesAnnotation = {
  id: number;
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  area: number;
  iscrowd: 0;
  /** COCO compressed RLE of the visible mask (`size` is `[height, width]`). */
  segmentation?: { size: [number, number]; counts: string };
};

export type ShapesCategory = { id: number; name: string; supercategory: string };

export type ShapesCoco = {
  info: {
    description: string;
    version: number;
    split: string;
    seed: number;
    count: number;
    options: ReturnType<typeof resolveSceneOptions>;
  };
  licenses: never[];
  images: ShapesImage[];
  annotations: ShapesAnnotation[];
  categories: ShapesCategory[];
};

export interface DatasetOptions extends SceneOptions {
  /** Default 0. */
  seed?: number;
  /** Number of images. */
  count: number;
  /** Name of the split, part of every image's seed (default 'train'). */
  split?: string;
  /** Id of the first image (default 1); images are numbered consecutively. */
  firstImageId?: number;
  /** Id of the first annotation (default 1). */
  firstAnnotationId?: number;
  /** Add `segmentation` (COCO RLE of the visible mask) to each annotation (default true). */
  segmentation?: boolean;
  /** File name of image `index` (default `000000.png`, `000001.png`, ...). */
  fileName?: (index: number) => string;
}

/** One generated image with its COCO records. */
export interface ShapesItem {
  /** 0-based position in the split. */
  index: number;
  image: ShapesImage;
  annotations: ShapesAnnotation[];
  scene: Scene;
}

/** Default file name: the 0-based index, 6 digits, `.png`. */
export function defaultFileName(index: number): string {
  return `${String(index).padStart(6, '0')}.png`;
}

/**
 * COCO run-length encodings of every object's visible mask, from one column-major pass over the instance
 * map (runs alternate 0s and 1s, starting with 0s, as pycocotools).
 */
export function sceneRles(scene: Scene): Rle[] {
  const { width: w, height: h, instance } = scene;
  const n = scene.objects.length;
  const runs: number[][] = Array.from({ length: n + 1 }, () => []);
  const start = new Float64Array(n + 1); // where the current run of each object began
  let prev = 0;
  let j = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++, j++) {
      const id = instance[y * w + x];
      if (id !== prev) {
        if (prev !== 0) {
          runs[prev].push(j - start[prev]); // a run of 1s ends
          start[prev] = j;
        }
        if (id !== 0) {
          runs[id].push(j - start[id]); // a run of 0s ends
          start[id] = j;
        }
        prev = id;
      }
    }
  }
  const out: Rle[] = [];
  for (let id = 1; id <= n; id++) {
    runs[id].push(w * h - start[id]);
    out.push({ h, w, counts: Uint32Array.from(runs[id]) });
  }
  return out;
}

/** COCO annotations of a scene; ids from `firstId`. */
export function sceneAnnotations(
  scene: Scene,
  imageId: number,
  firstId = 1,
  options: { segmentation?: boolean } = {},
): ShapesAnnotation[] {
  const rles = options.segmentation === false ? null : sceneRles(scene);
  return scene.objects.map((ob, i) => {
    const ann: ShapesAnnotation = {
      id: firstId + i,
      image_id: imageId,
      category_id: ob.categoryId,
      bbox: [...ob.bbox],
      area: ob.area,
      iscrowd: 0,
    };
    if (rles) ann.segmentation = { size: [scene.height, scene.width], counts: rleToString(rles[i]) };
    return ann;
  });
}

function checkCount(fn: string, name: string, v: unknown, min: number): number {
  if (!(typeof v === 'number' && Number.isSafeInteger(v) && v >= min)) {
    throw new Error(`${fn}: options.${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Yields the images of a dataset one by one (each generated on demand). */
export function* iterateDataset(options: DatasetOptions): Generator<ShapesItem> {
  const fn = 'iterateDataset';
  if (options === null || typeof options !== 'object') {
    throw new Error(`${fn}: options must be an object with count, got ${String(options)}`);
  }
  const count = checkCount(fn, 'count', options.count, 0);
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new Error(`${fn}: options.seed must be a safe integer, got ${seed}`);
  const split = options.split ?? 'train';
  const firstImageId = checkCount(fn, 'firstImageId', options.firstImageId ?? 1, 0);
  let annId = checkCount(fn, 'firstAnnotationId', options.firstAnnotationId ?? 1, 0);
  const sceneOptions = resolveSceneOptions(options);
  const fileName = options.fileName ?? defaultFileName;
  for (let index = 0; index < count; index++) {
    const s = imageSeed(seed, split, index);
    const scene = generateScene(s, sceneOptions);
    const image: ShapesImage = {
      id: firstImageId + index,
      file_name: fileName(index),
      width: scene.width,
      height: scene.height,
      seed: s,
    };
    const annotations = sceneAnnotations(scene, image.id, annId, { segmentation: options.segmentation });
    annId += annotations.length;
    yield { index, image, annotations, scene };
  }
}

/**
 * Generates a whole split and returns it as a COCO dataset object. `onImage` sees every image (pixels and
 * masks in `item.scene`) as it is made, e.g. to write it to disk; nothing but the COCO records is kept.
 */
export function generateDataset(options: DatasetOptions, onImage?: (item: ShapesItem) => void): ShapesCoco {
  const coco = emptyCoco(options);
  for (const item of iterateDataset(options)) {
    coco.images.push(item.image);
    for (const a of item.annotations) coco.annotations.push(a);
    onImage?.(item);
  }
  return coco;
}

/** The COCO object of a split before any image is added (`info`, `categories`). */
export function emptyCoco(options: DatasetOptions): ShapesCoco {
  const resolved = resolveSceneOptions(options);
  return {
    info: {
      description: 'effdet-ts synthetic shapes (@effdet/shapes)',
      version: SHAPES_GENERATOR_VERSION,
      split: options.split ?? 'train',
      seed: options.seed ?? 0,
      count: options.count,
      options: resolved,
    },
    licenses: [],
    images: [],
    annotations: [],
    categories: SHAPE_CATEGORIES.map((c) => ({ ...c })),
  };
}

/** Box-size buckets by visible area: tiny < 16^2 <= small < 32^2 <= medium < 96^2 <= large (COCO small = tiny + small). */
export type SizeBucket = 'tiny' | 'small' | 'medium' | 'large';

export function sizeBucket(area: number): SizeBucket {
  if (area < 16 * 16) return 'tiny';
  if (area < 32 * 32) return 'small';
  if (area < 96 * 96) return 'medium';
  return 'large';
}

export interface DatasetStats {
  images: number;
  boxes: number;
  /** Boxes per category, in category order. */
  perClass: { id: number; name: string; count: number }[];
  sizes: Record<SizeBucket, number>;
  /** Fewest / most boxes on one image. */
  minPerImage: number;
  maxPerImage: number;
}

/** Counts of a COCO dataset made here (or any with `images`, `annotations`, `categories`). */
export function datasetStats(coco: {
  images: readonly unknown[];
  annotations: readonly { image_id: number | string; category_id: number; area: number }[];
  categories: readonly { id: number; name: string }[];
}): DatasetStats {
  const perClass = coco.categories.map((c) => ({ id: c.id, name: c.name, count: 0 }));
  const byId = new Map(perClass.map((c) => [c.id, c]));
  const sizes: Record<SizeBucket, number> = { tiny: 0, small: 0, medium: 0, large: 0 };
  const perImage = new Map<number | string, number>();
  for (const a of coco.annotations) {
    const c = byId.get(a.category_id);
    if (c) c.count++;
    sizes[sizeBucket(a.area)]++;
    perImage.set(a.image_id, (perImage.get(a.image_id) ?? 0) + 1);
  }
  let lo = Infinity;
  let hi = 0;
  for (const c of perImage.values()) {
    if (c < lo) lo = c;
    if (c > hi) hi = c;
  }
  const empty = coco.images.length - perImage.size;
  return {
    images: coco.images.length,
    boxes: coco.annotations.length,
    perClass,
    sizes,
    minPerImage: empty > 0 || perImage.size === 0 ? 0 : lo,
    maxPerImage: hi,
  };
}

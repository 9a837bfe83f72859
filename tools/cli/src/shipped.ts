/**
 * The models shipped in the repository (`models/`): the shapes detector trained with `effdet train` on
 * `effdet make-shapes` data, used by `effdet demo` and `effdet predict --model shapes`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Detection } from '@effdet/effdet';
import { evaluateCoco } from '@effdet/eval';
import { emptyCoco, generateScene, iterateDataset, type Scene, SHAPE_CLASSES } from '@effdet/shapes';

/** The registry config of the shipped shapes detector, and its folder under `models/`. */
export const SHAPES_MODEL = { config: 'efficientdet_shapes', folder: 'shapes', size: 128 } as const;

/**
 * The folder of a shipped model: `$EFFDET_MODELS/<name>`, else `models/<name>` in the first folder above the
 * running script or the working directory that has one.
 */
export function shippedModelDir(name: string): string {
  const env = process.env.EFFDET_MODELS;
  if (env && existsSync(join(env, name, 'model.json'))) return resolve(env, name);
  const starts = [process.argv[1] ? dirname(resolve(process.argv[1])) : null, process.cwd(), __dirnameSafe()];
  for (const start of starts) {
    let dir = start;
    while (dir) {
      const candidate = join(dir, 'models', name);
      if (existsSync(join(candidate, 'model.json'))) return candidate;
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  throw new Error(
    `shippedModelDir: no shipped model '${name}' (looked for models/${name}/model.json above ${starts.filter(Boolean).join(', ')}; set EFFDET_MODELS to the folder holding it)`,
  );
}

function __dirnameSafe(): string | null {
  try {
    return typeof __dirname === 'string' ? __dirname : null;
  } catch {
    return null;
  }
}

/** The class names stored next to a shipped model (`labels.json`). */
export function shippedLabels(dir: string): string[] {
  const labels = JSON.parse(readFileSync(join(dir, 'labels.json'), 'utf8')) as unknown;
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string'))
    throw new Error(`shippedLabels: '${join(dir, 'labels.json')}' must be a JSON array of class names`);
  return labels;
}

/** The shipped shapes detector's `model.json`. */
export function shippedWeights(): string {
  return join(shippedModelDir(SHAPES_MODEL.folder), 'model.json');
}

/** Loads the shipped shapes detector (Node). */
export async function loadShapesDetector() {
  const { createDetector } = await import('@effdet/effdet/node');
  const dir = shippedModelDir(SHAPES_MODEL.folder);
  const labels = shippedLabels(dir);
  return createDetector(SHAPES_MODEL.config, { weights: join(dir, 'model.json'), labels });
}

/** Scene options of the shipped model's data (`make-shapes --size 128 --min-size 22 --max-size 96 --max-objects 4`). */
export const SHAPES_SCENE = { width: 128, height: 128, minSize: 22, maxSize: 96, maxObjects: 4 } as const;

export interface ShapesEvalResult {
  /** pycocotools' 12 summary numbers. */
  stats: number[];
  map: number;
  map50: number;
  images: number;
  boxes: number;
  seed: number;
}

/** What evaluation needs of a detector. */
export interface ShapesDetector {
  detect(
    image: { data: Uint8Array; width: number; height: number },
    options?: { scoreThreshold?: number; maxDetections?: number },
  ): Promise<Detection[]>;
}

/**
 * COCO box mAP of a detector on a freshly generated shapes set (`count` images from `seed`), scored with
 * `@effdet/eval` exactly as pycocotools would.
 */
export async function evaluateOnFreshShapes(
  detector: ShapesDetector,
  options: { count: number; seed: number; scene?: Partial<typeof SHAPES_SCENE> },
): Promise<ShapesEvalResult> {
  const scene = { ...SHAPES_SCENE, ...options.scene };
  const ds = { ...scene, count: options.count, seed: options.seed, split: 'val', segmentation: false };
  const gt = emptyCoco(ds);
  const results: { image_id: number; category_id: number; bbox: number[]; score: number }[] = [];
  for (const item of iterateDataset(ds)) {
    gt.images.push(item.image);
    gt.annotations.push(...item.annotations);
    const { rgb, width, height } = item.scene;
    const dets = await detector.detect(
      { data: rgb, width, height },
      { scoreThreshold: 0.001, maxDetections: 100 },
    );
    for (const d of dets) {
      const [x1, y1, x2, y2] = d.box;
      results.push({
        image_id: item.image.id,
        category_id: d.classId,
        bbox: [x1, y1, x2 - x1, y2 - y1],
        score: d.score,
      });
    }
  }
  const r = evaluateCoco(gt, results);
  return {
    stats: r.stats,
    map: r.stats[0] as number,
    map50: r.stats[1] as number,
    images: gt.images.length,
    boxes: gt.annotations.length,
    seed: options.seed,
  };
}

/** A fresh scene for the demo. */
export function demoScene(seed: number): Scene {
  return generateScene(seed, { ...SHAPES_SCENE });
}

export { SHAPE_CLASSES };

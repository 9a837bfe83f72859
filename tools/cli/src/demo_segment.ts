/**
 * `effdet demo --task segment`: with no network and no arguments, runs the shipped U-Net (`models/shapes-unet`,
 * trained with `effdet train --task segment` on `effdet make-shapes --masks` data) on freshly generated shapes
 * scenes, writes a PNG per scene (input | true mask | predicted mask, class colours blended in), prints the
 * pixels per class (predicted and true), and scores the model (mIoU, pixel accuracy over the 7 classes,
 * background included) on a freshly generated validation set.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  ConfusionMatrix,
  type MaskTta,
  overlayMask,
  type PredictMaskOptions,
  predictMask,
  type SegmentationModel,
} from '@effdet/segmentation';
import { iterateDataset, type Scene, type SceneOptions } from '@effdet/shapes';
import { type CliIO, defaultIO } from './evaluate.js';
import { shippedLabels, shippedModelDir } from './shipped.js';

/**
 * The shipped U-Net: its folder under `models/`, the scenes it was trained on (`make-shapes --size 96
 * --min-size 16 --max-objects 6`) and the size its network runs at on them: `inputSize` `[height, width]`
 * (`predictMask`'s option: the 96 px scene is enlarged 5/3 bilinearly, the logits brought back to 96 px). At that
 * scale the objects (16-58 px) span 27-96 px, the sizes its encoder learned in the shipped detector (22-96 px
 * scenes of 128 px); the U-Net was trained on 1.35-2x enlargements (see models/shapes-unet/README.md). `tta`:
 * the 8 flips / rotations of `predictMask`'s D4 test-time augmentation are averaged (+0.012 mIoU on the
 * shipped weights: 0.969 against 0.956 with one view on the test's fresh scenes).
 */
export const SHAPES_UNET = {
  folder: 'shapes-unet',
  scene: { width: 96, height: 96, minSize: 16, maxObjects: 6 },
  inputSize: [160, 160] as const,
  tta: 'd4',
} as const;

/** Split names of the demo's scenes: no `make-shapes` split ('train' / 'val') shares their seeds. */
const DEMO_SPLIT = 'segment-demo';
const FRESH_VAL_SPLIT = 'segment-fresh-val';

export interface SegmentDemoOptions {
  /** Folder for the PNGs (created). */
  out: string;
  /** Demo scenes (default 4). */
  count?: number;
  /** Seed of the demo scenes and the validation set (default: from the clock). */
  seed?: number;
  /** Images of the fresh validation set (default 50; 0 skips it). */
  val?: number;
  /** Model folder (default: the shipped `models/shapes-unet`). */
  model?: string;
  /** Network input size `[height, width]` (default `SHAPES_UNET.inputSize`; null: the scene's own size). */
  inputSize?: readonly [number, number] | null;
  /** Test-time augmentation (default `SHAPES_UNET.tta`; 'none': one view). */
  tta?: MaskTta;
  io?: CliIO;
}

export interface SegmentDemoResult {
  /** Over the fresh validation set (NaN when `val` is 0). */
  mIoU: number;
  pixelAccuracy: number;
  /** IoU per class of the validation set. */
  iou: number[];
  files: string[];
  seed: number;
  labels: string[];
}

/** Loads the shipped U-Net (or the model folder given) with its labels. */
export async function loadShapesUnet(
  dir?: string,
): Promise<{ model: SegmentationModel; labels: string[]; dir: string }> {
  const { loadSegmentationModel } = await import('@effdet/segmentation/node');
  const folder = dir ? resolve(dir) : shippedModelDir(SHAPES_UNET.folder);
  const model = (await loadSegmentationModel(folder)) as SegmentationModel;
  return { model, labels: shippedLabels(folder), dir: folder };
}

/** Pixels per class id of a class map. */
function classCounts(mask: ArrayLike<number>, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < mask.length; i++) counts[mask[i] as number]++;
  return counts;
}

/** `panels` RGB images of one size side by side, each enlarged `scale` times (nearest). */
function sideBySide(panels: Uint8Array[], width: number, height: number, scale: number): Uint8Array {
  const W = width * scale * panels.length;
  const out = new Uint8Array(W * height * scale * 3);
  panels.forEach((p, k) => {
    for (let y = 0; y < height * scale; y++) {
      const row = Math.floor(y / scale) * width;
      for (let x = 0; x < width * scale; x++) {
        const s = (row + Math.floor(x / scale)) * 3;
        const d = (y * W + k * width * scale + x) * 3;
        out[d] = p[s] as number;
        out[d + 1] = p[s + 1] as number;
        out[d + 2] = p[s + 2] as number;
      }
    }
  });
  return out;
}

/** `predictMask` options: a network input size and test-time augmentation (undefined: the shipped model's). */
function runOptions(
  inputSize: readonly [number, number] | null | undefined,
  tta: MaskTta | undefined,
): PredictMaskOptions {
  const size = inputSize === undefined ? SHAPES_UNET.inputSize : inputSize;
  return { ...(size ? { inputSize: size } : {}), tta: tta ?? SHAPES_UNET.tta };
}

/**
 * mIoU / pixel accuracy of `model` on `count` fresh scenes (`seed`), one confusion matrix over all pixels. The
 * network runs at `inputSize` (default `SHAPES_UNET.inputSize`; null: each scene's own size).
 */
export async function evaluateShapesUnet(
  model: SegmentationModel,
  options: {
    count: number;
    seed: number;
    scene?: SceneOptions;
    inputSize?: readonly [number, number] | null;
    tta?: MaskTta;
  },
) {
  const cm = new ConfusionMatrix(model.numClasses);
  const scene = options.scene ?? SHAPES_UNET.scene;
  const run = runOptions(options.inputSize, options.tta);
  for (const item of iterateDataset({
    ...scene,
    count: options.count,
    seed: options.seed,
    split: FRESH_VAL_SPLIT,
    segmentation: false,
  })) {
    const s: Scene = item.scene;
    const p = await predictMask(model, { data: s.rgb, width: s.width, height: s.height }, run);
    cm.update(p.mask, s.semantic);
  }
  return cm.scores();
}

export async function runSegmentDemo(options: SegmentDemoOptions): Promise<SegmentDemoResult> {
  const io = options.io ?? defaultIO;
  const count = options.count ?? 4;
  const val = options.val ?? 50;
  const seed = options.seed ?? Math.floor(Date.now() / 1000) % 1_000_000;
  const { encodePng } = await import('@effdet/effdet/node');
  const { model, labels, dir } = await loadShapesUnet(options.model);
  const out = resolve(options.out);
  mkdirSync(out, { recursive: true });
  const files: string[] = [];
  const C = model.numClasses;
  const run = runOptions(options.inputSize, options.tta);
  try {
    io.stdout.write(
      `effdet demo --task segment: ${model.arch} ${model.options.encoderName} (${model.numParams().toLocaleString('en-US')} parameters, ${dir}); scenes from seed ${seed}, network input ${run.inputSize ? [run.inputSize].flat().join('x') : 'the scene size'}, test-time augmentation ${run.tta}\n`,
    );
    const { width, height } = SHAPES_UNET.scene;
    for (const item of iterateDataset({
      ...SHAPES_UNET.scene,
      count,
      seed,
      split: DEMO_SPLIT,
      segmentation: false,
    })) {
      const s = item.scene;
      const t0 = performance.now();
      const p = await predictMask(model, { data: s.rgb, width: s.width, height: s.height }, run);
      const ms = performance.now() - t0;
      const panels = [
        s.rgb,
        overlayMask(s.rgb, s.semantic, s.width, s.height),
        overlayMask(s.rgb, p.mask, s.width, s.height),
      ];
      const file = join(out, `segment_${item.index}.png`);
      writeFileSync(file, encodePng(sideBySide(panels, s.width, s.height, 3), s.width * 9, s.height * 3));
      files.push(file);
      const pred = classCounts(p.mask, C);
      const truth = classCounts(s.semantic, C);
      const cm = new ConfusionMatrix(C).update(p.mask, s.semantic).scores();
      io.stdout.write(
        `${file} (image | truth | prediction): ${ms.toFixed(0)} ms, pixel accuracy ${cm.pixelAccuracy.toFixed(4)}\n`,
      );
      for (let c = 0; c < C; c++) {
        if (pred[c] === 0 && truth[c] === 0) continue;
        io.stdout.write(
          `  ${(labels[c] ?? `class ${c}`).padEnd(11)} ${String(pred[c]).padStart(6)} px (true ${truth[c]})\n`,
        );
      }
    }
    let scores = { meanIoU: Number.NaN, pixelAccuracy: Number.NaN, iou: [] as number[] };
    if (val > 0) {
      const t0 = performance.now();
      scores = await evaluateShapesUnet(model, {
        count: val,
        seed,
        inputSize: options.inputSize,
        tta: options.tta,
      });
      io.stdout.write(
        `fresh validation set (${val} images ${width}x${height}, seed ${seed}, ${((performance.now() - t0) / 1000).toFixed(1)} s): ` +
          `mIoU ${scores.meanIoU.toFixed(4)}  pixel accuracy ${scores.pixelAccuracy.toFixed(4)}\n` +
          `  IoU ${scores.iou.map((v, c) => `${labels[c] ?? c} ${v.toFixed(3)}`).join(', ')}\n`,
      );
    }
    return {
      mIoU: scores.meanIoU,
      pixelAccuracy: scores.pixelAccuracy,
      iou: scores.iou,
      files,
      seed,
      labels,
    };
  } finally {
    model.dispose();
  }
}

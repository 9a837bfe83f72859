/**
 * `effdet train --task segment`: trains a U-Net / DeepLabV3 / DeepLabV3+ (`@effdet/segmentation`) on images
 * with class-id mask PNGs (palette index or grey value = class id; `effdet make-shapes --masks` writes them).
 *
 * The design mirrors `effdet train` (detection): each epoch draws a seeded permutation of the images and a
 * seeded augmentation per (seed, epoch, image) (flip, random resize, crop / pad to --size; masks follow with
 * nearest sampling, padding gets the ignore index), so a resumed run sees exactly the batches the uninterrupted
 * run would. After the epoch the EMA model is scored on the validation set at each image's own size (confusion
 * matrix: per-class IoU, mIoU, pixel accuracy), a checkpoint is written (`OUT/checkpoint/`: model, EMA,
 * optimiser, state), a JSON line appended to `OUT/log.jsonl` and, when mIoU improved, the EMA model exported
 * to `OUT/best/` (TF.js float16 + labels.json, the smp config in the metadata: `loadSegmentationModel(OUT/best)`
 * rebuilds it from the folder alone).
 *
 * Bad data stops the run with the file named: a mask with a class id >= --classes (other than the ignore
 * index), a mask whose size differs from its image, an image without a mask, an unreadable file.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadRawStateDict, type RgbImage, trainAugment } from '@effdet/effdet';
import { seedInitializers } from '@effdet/layers';
import {
  ConfusionMatrix,
  createFromSmpConfig,
  createSegmentationModel,
  predictMask,
  resolveArchitecture,
  type SegmentationModel,
  type SegmentationScores,
  SegmentationTrainer,
  toSmpConfig,
} from '@effdet/segmentation';
import { createRng, hashSeed } from '@effdet/shapes';
import type { RawTensorMap } from '@effdet/weights';
import * as tf from '@tensorflow/tfjs-core';
import { type BackendChoice, useBackend } from './backend.js';
import { type CliIO, defaultIO } from './evaluate.js';
import { growUnetDecoder } from './grow_decoder.js';
import { parseSizeOption } from './segment.js';
import {
  type CheckpointBase,
  checkpointBase,
  EpochProgress,
  loadCheckpoint,
  moduleToRaw,
  readResumeState,
  saveCheckpoint,
  trainerOptions,
} from './train_common.js';

export const TRAIN_SEGMENT_USAGE = `  train --task segment --encoder tu-<backbone> --root DIR --masks DIR --classes K --out DIR
                             [--arch unet|deeplabv3|deeplabv3plus] [--decoder-channels 256,128,64,32,16]
                             [--encoder-depth 5] [--val-root DIR --val-masks DIR] [--labels a,b,..|FILE]
                             [--epochs 20] [--batch 8] [--lr 1e-3] [--opt adamw|sgd] [--size 256]
                             [--dice W] [--ignore-index 255] [--weights INIT] [--backend wasm|cpu] [--resume]
                             [--seed 0] [--warmup-epochs 1] [--min-lr 0] [--schedule cosine|step] [--wd W]
                             [--momentum 0.9] [--nesterov] [--clip 10] [--ema-decay 0.999 | --no-ema]
                             [--freeze-encoder] [--scale-min 0.5] [--scale-max 1.5] [--no-flip] [--val-limit N]
                             [--val-input-size N|HxW] [--cache] [--encoder-weights FILE] [--micro-batches K]
                             [--grow-decoder]
                             trains a segmentation model on images + class-id mask PNGs (same file names,
                             .png), --size crops / pads; validates the EMA model each epoch (per-class IoU,
                             mIoU, pixel accuracy), checkpoints to OUT/checkpoint (resumable), logs
                             OUT/log.jsonl, exports the best model to OUT/best (TF.js float16, labels.json,
                             the smp config in its metadata); --labels takes names, a JSON list or a COCO file
                             (class 0 = background, then the categories by id); --grow-decoder widens the
                             U-Net decoder of --weights to --decoder-channels without changing its output;
                             --val-input-size runs validation at that network size (logits resized back)
`;

export interface TrainSegmentArgs {
  arch: string;
  encoder: string;
  decoderChannels?: number[];
  encoderDepth?: number;
  root: string;
  masks: string;
  valRoot?: string;
  valMasks?: string;
  classes: number;
  labels?: string;
  out: string;
  weights?: string;
  /** Encoder initialisation from any checkpoint holding the backbone (timm, smp, an effdet detector). */
  encoderWeights?: string;
  epochs: number;
  batch: number;
  lr: number;
  opt: 'sgd' | 'adamw';
  size: number;
  dice: number;
  ignoreIndex: number;
  backend: BackendChoice;
  resume: boolean;
  seed: number;
  warmupEpochs: number;
  minLr: number;
  schedule: 'cosine' | 'step';
  weightDecay?: number;
  momentum: number;
  nesterov: boolean;
  clip: number;
  emaDecay: number | null;
  freezeEncoder: boolean;
  scaleMin: number;
  scaleMax: number;
  flip: boolean;
  valLimit?: number;
  /**
   * Validation runs the network at this size `[height, width]` (images resized bilinearly, logits resized back:
   * `predictMask`'s `inputSize`); default each image's own size.
   */
  valInputSize?: [number, number];
  /**
   * `--weights` holds a U-Net whose decoder is narrower than `decoderChannels`: widen it without changing its
   * output (`growUnetDecoder`) and train on from there.
   */
  growDecoder: boolean;
  cache: boolean;
  /** Gradient accumulation: each batch in this many parts (default 1). */
  microBatches?: number;
  /** Stop after this many epochs of this invocation (tests of resume); default: run to --epochs. */
  stopAfter?: number;
  /** Progress redrawn in place (default: stderr is a TTY). */
  tty?: boolean;
}

const CMD = 'effdet train --task segment';

function numberArg(
  values: Record<string, string | boolean | undefined>,
  name: string,
  dflt: number,
  ok: (n: number) => boolean,
  what: string,
): number {
  const v = values[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || !ok(n))
    throw new Error(`${CMD}: --${name} must be ${what}, got '${String(v)}'`);
  return n;
}

const isPosInt = (n: number) => Number.isInteger(n) && n > 0;

export function parseTrainSegmentArgs(argv: readonly string[]): TrainSegmentArgs {
  const args = argv[0] === 'train' ? argv.slice(1) : [...argv];
  const strings = [
    'task',
    'arch',
    'encoder',
    'decoder-channels',
    'encoder-depth',
    'root',
    'masks',
    'val-root',
    'val-masks',
    'classes',
    'labels',
    'out',
    'weights',
    'encoder-weights',
    'epochs',
    'batch',
    'lr',
    'opt',
    'size',
    'dice',
    'ignore-index',
    'backend',
    'seed',
    'warmup-epochs',
    'min-lr',
    'schedule',
    'wd',
    'momentum',
    'clip',
    'ema-decay',
    'scale-min',
    'scale-max',
    'val-limit',
    'val-input-size',
    'stop-after',
    'micro-batches',
  ];
  const flags = [
    'resume',
    'nesterov',
    'no-ema',
    'freeze-encoder',
    'no-flip',
    'cache',
    'grow-decoder',
    'help',
  ];
  const { values: v, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...Object.fromEntries(strings.map((k) => [k, { type: 'string' as const }])),
      ...Object.fromEntries(flags.map((k) => [k, { type: 'boolean' as const }])),
    },
  });
  const values = v as Record<string, string | boolean | undefined>;
  if (positionals.length > 0) throw new Error(`${CMD}: unexpected argument '${positionals[0]}'`);
  if (values.task !== undefined && values.task !== 'segment')
    throw new Error(`${CMD}: --task must be 'segment' here, got '${String(values.task)}'`);
  for (const k of ['encoder', 'root', 'masks', 'classes', 'out'])
    if (!values[k]) throw new Error(`${CMD}: --${k} is required`);
  const arch = String(values.arch ?? 'unet');
  resolveArchitecture(arch);
  if ((values['val-root'] === undefined) !== (values['val-masks'] === undefined))
    throw new Error(`${CMD}: --val-root and --val-masks go together`);
  if (values['grow-decoder'] && !values.weights)
    throw new Error(`${CMD}: --grow-decoder needs --weights (the checkpoint whose decoder it widens)`);
  const opt = String(values.opt ?? 'adamw');
  if (opt !== 'sgd' && opt !== 'adamw') throw new Error(`${CMD}: --opt must be sgd or adamw, got '${opt}'`);
  const schedule = String(values.schedule ?? 'cosine');
  if (schedule !== 'cosine' && schedule !== 'step')
    throw new Error(`${CMD}: --schedule must be cosine or step, got '${schedule}'`);
  let decoderChannels: number[] | undefined;
  if (values['decoder-channels'] !== undefined) {
    decoderChannels = String(values['decoder-channels']).split(',').map(Number);
    if (decoderChannels.length === 0 || !decoderChannels.every(isPosInt))
      throw new Error(
        `${CMD}: --decoder-channels must be positive integers separated by commas, got '${String(values['decoder-channels'])}'`,
      );
  }
  const positive = (n: number) => n > 0;
  const nonNeg = (n: number) => n >= 0;
  const optional = (name: string, ok: (n: number) => boolean, what: string) =>
    values[name] === undefined ? undefined : numberArg(values, name, 0, ok, what);
  const scaleMin = numberArg(values, 'scale-min', 0.5, positive, 'a positive number');
  const scaleMax = numberArg(values, 'scale-max', 1.5, positive, 'a positive number');
  if (scaleMax < scaleMin)
    throw new Error(`${CMD}: --scale-max (${scaleMax}) is below --scale-min (${scaleMin})`);
  return {
    arch,
    encoder: String(values.encoder),
    decoderChannels,
    encoderDepth: optional(
      'encoder-depth',
      (n) => Number.isInteger(n) && n >= 3 && n <= 5,
      'an integer in 3..5',
    ),
    root: String(values.root),
    masks: String(values.masks),
    valRoot: values['val-root'] as string | undefined,
    valMasks: values['val-masks'] as string | undefined,
    classes: numberArg(values, 'classes', 0, (n) => Number.isInteger(n) && n >= 2, 'an integer >= 2'),
    labels: values.labels as string | undefined,
    out: String(values.out),
    weights: values.weights as string | undefined,
    encoderWeights: values['encoder-weights'] as string | undefined,
    epochs: numberArg(values, 'epochs', 20, isPosInt, 'a positive integer'),
    batch: numberArg(values, 'batch', 8, isPosInt, 'a positive integer'),
    lr: numberArg(values, 'lr', opt === 'sgd' ? 0.01 : 1e-3, positive, 'a positive number'),
    opt,
    size: numberArg(values, 'size', 256, isPosInt, 'a positive integer'),
    dice: numberArg(values, 'dice', 0, nonNeg, 'a number >= 0'),
    ignoreIndex: numberArg(
      values,
      'ignore-index',
      255,
      (n) => Number.isInteger(n) && n >= 0 && n <= 255,
      'an integer in 0..255',
    ),
    backend: String(values.backend ?? 'wasm') as BackendChoice,
    resume: !!values.resume,
    seed: numberArg(values, 'seed', 0, Number.isSafeInteger, 'an integer'),
    warmupEpochs: numberArg(values, 'warmup-epochs', 1, nonNeg, 'a number >= 0'),
    minLr: numberArg(values, 'min-lr', 0, nonNeg, 'a number >= 0'),
    schedule,
    weightDecay: optional('wd', nonNeg, 'a number >= 0'),
    momentum: numberArg(values, 'momentum', 0.9, nonNeg, 'a number >= 0'),
    nesterov: !!values.nesterov,
    clip: numberArg(values, 'clip', 10, nonNeg, 'a number >= 0'),
    emaDecay: values['no-ema']
      ? null
      : numberArg(values, 'ema-decay', 0.999, (n) => n > 0 && n < 1, 'in (0, 1)'),
    freezeEncoder: !!values['freeze-encoder'],
    scaleMin,
    scaleMax,
    flip: !values['no-flip'],
    valLimit: optional('val-limit', isPosInt, 'a positive integer'),
    valInputSize: parseSizeOption(values['val-input-size'] as string | undefined, `${CMD}: --val-input-size`),
    growDecoder: !!values['grow-decoder'],
    cache: !!values.cache,
    stopAfter: optional('stop-after', isPosInt, 'a positive integer'),
    microBatches: optional('micro-batches', isPosInt, 'a positive integer'),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Data

/** An image file and its mask file. */
export interface SegmentationPair {
  name: string;
  image: string;
  mask: string;
}

/** A decoded pair: RGB image and class ids at the same size. */
export interface SegmentationSample {
  image: RgbImage;
  mask: Uint8Array | Uint16Array;
}

const IMAGE_EXTS = new Set(['.png', '.jpg', '.jpeg']);

/** The images of `root` (png / jpg, sorted by name), each with `masks/<name>.png`. Throws naming a missing mask. */
export function listSegmentationPairs(root: string, masks: string): SegmentationPair[] {
  let files: string[];
  try {
    files = readdirSync(root).filter((f) => IMAGE_EXTS.has(extname(f).toLowerCase()));
  } catch (e) {
    throw new Error(`${CMD}: cannot list the images in '${root}': ${(e as Error).message}`);
  }
  if (files.length === 0) throw new Error(`${CMD}: '${root}' holds no .png / .jpg images`);
  files.sort();
  return files.map((f) => {
    const mask = join(masks, `${basename(f, extname(f))}.png`);
    if (!existsSync(mask)) throw new Error(`${CMD}: the image '${join(root, f)}' has no mask '${mask}'`);
    return { name: f, image: join(root, f), mask };
  });
}

/**
 * Reads an image and its mask; checks that they have the same size and that every mask value is a class id
 * below `classes` or the ignore index. Errors name the file.
 */
export async function loadSegmentationSample(
  pair: SegmentationPair,
  classes: number,
  ignoreIndex: number,
): Promise<SegmentationSample> {
  const { decodeImage } = await import('@effdet/effdet/node');
  const { readMaskFile } = await import('@effdet/segmentation/node');
  let image: RgbImage;
  try {
    image = await decodeImage(pair.image);
  } catch (e) {
    throw new Error(`${CMD}: cannot decode the image '${pair.image}': ${(e as Error).message}`);
  }
  const m = await readMaskFile(pair.mask);
  if (m.width !== image.width || m.height !== image.height)
    throw new Error(
      `${CMD}: the mask '${pair.mask}' is ${m.width}x${m.height} but its image '${pair.image}' is ${image.width}x${image.height}`,
    );
  const d = m.data;
  for (let i = 0; i < d.length; i++) {
    const c = d[i] as number;
    if (c >= classes && c !== ignoreIndex)
      throw new Error(
        `${CMD}: the mask '${pair.mask}' has class id ${c} at x ${i % m.width}, y ${Math.floor(i / m.width)}; ` +
          `--classes ${classes} allows ids 0..${classes - 1} (and the ignore index ${ignoreIndex})`,
      );
  }
  return { image, mask: d };
}

/** Class names: a comma list, a JSON list, or a COCO file (background, then the categories by id). */
export function readLabels(spec: string | undefined, classes: number): string[] {
  if (spec === undefined)
    return Array.from({ length: classes }, (_, i) => (i === 0 ? 'background' : `class ${i}`));
  let labels: string[];
  if (existsSync(spec) && spec.endsWith('.json')) {
    const json = JSON.parse(readFileSync(spec, 'utf8')) as unknown;
    if (Array.isArray(json)) labels = json.map(String);
    else {
      const cats = (json as { categories?: { id: number; name: string }[] }).categories;
      if (!Array.isArray(cats))
        throw new Error(`${CMD}: --labels '${spec}' is neither a JSON list nor a COCO file`);
      labels = Array.from({ length: classes }, (_, i) => (i === 0 ? 'background' : `class ${i}`));
      for (const c of cats) if (c.id > 0 && c.id < classes) labels[c.id] = c.name;
    }
  } else labels = spec.split(',').map((s) => s.trim());
  if (labels.length !== classes)
    throw new Error(`${CMD}: --labels gives ${labels.length} names for ${classes} classes`);
  return labels;
}

// ---------------------------------------------------------------------------------------------------------------
// Weights, checkpoints, export

interface SegmentCheckpoint extends CheckpointBase {
  bestMIoU: number;
  bestEpoch: number;
  labels: string[];
  smpConfig: Record<string, unknown>;
  args: Omit<TrainSegmentArgs, 'resume' | 'stopAfter' | 'tty'>;
}

/**
 * Exports a segmentation model as TF.js float16 weights (`model.json` + shards) with `labels.json`; the
 * metadata holds the smp config (`config`), `arch`, `encoder`, `labels` and `extra`, so
 * `loadSegmentationModel(dir)` rebuilds it from the folder alone.
 */
export async function exportSegmentationModel(
  dir: string,
  model: SegmentationModel,
  labels: readonly string[],
  extra: Record<string, unknown> = {},
): Promise<string[]> {
  const { saveWeights } = await import('@effdet/weights/node');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files = await saveWeights(await moduleToRaw(model), join(dir, 'model.json'), {
    format: 'tfjs',
    quantization: 'float16',
    modelName: `${model.arch.toLowerCase()}:${model.options.encoderName}`,
    config: toSmpConfig(model),
    userDefinedMetadata: { arch: model.arch, encoder: model.options.encoderName, labels, ...extra },
  });
  writeFileSync(join(dir, 'labels.json'), `${JSON.stringify(labels)}\n`);
  return [...files, join(dir, 'labels.json')];
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation

export interface SegmentationEvaluation {
  scores: SegmentationScores;
  images: number;
  seconds: number;
}

/**
 * Scores `model` on samples (`predictMask`: at each image's own size, or at `inputSize` with the logits resized
 * back to the image), accumulating one confusion matrix; pixels equal to `ignoreIndex` do not count.
 */
export async function evaluateSegmentation(
  model: SegmentationModel,
  samples: Iterable<SegmentationSample> | AsyncIterable<SegmentationSample>,
  ignoreIndex = 255,
  inputSize?: readonly [number, number],
): Promise<SegmentationEvaluation> {
  const t0 = performance.now();
  const cm = new ConfusionMatrix(model.numClasses, { ignoreIndex });
  const wasTraining = model.training;
  model.eval();
  let images = 0;
  try {
    for await (const s of samples) {
      const p = await predictMask(model, s.image, inputSize ? { inputSize } : {});
      cm.update(p.mask, s.mask);
      images++;
    }
  } finally {
    if (wasTraining) model.train();
  }
  return { scores: cm.scores(), images, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------------------------------------------
// The loop

/** A permutation of 0..n-1 fixed by (seed, epoch): indices ordered by seeded random keys. */
function epochOrder(n: number, seed: number, epoch: number): number[] {
  const rng = createRng(hashSeed(seed, 'segment-order', epoch));
  const keys = Float64Array.from({ length: n }, () => rng.next());
  return Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (keys[a] as number) - (keys[b] as number) || a - b,
  );
}

/** Normalised NHWC float batch from RGB images of one size. */
function imageBatch(images: RgbImage[], mean: readonly number[], std: readonly number[]): tf.Tensor4D {
  const { width: w, height: h } = images[0] as RgbImage;
  const pixels = new Uint8Array(images.length * h * w * 3);
  for (const [i, im] of images.entries()) pixels.set(im.data, i * h * w * 3);
  return tf.tidy(() => {
    const x = tf.div(tf.cast(tf.tensor4d(pixels, [images.length, h, w, 3], 'int32'), 'float32'), 255);
    return tf.div(tf.sub(x, tf.tensor1d([...mean])), tf.tensor1d([...std])) as tf.Tensor4D;
  });
}

export interface SegmentEpochLog {
  epoch: number;
  step: number;
  lr: number;
  loss: number;
  crossEntropy: number;
  dice: number;
  imagesPerSecond: number;
  seconds: number;
  mIoU?: number;
  pixelAccuracy?: number;
  iou?: number[];
  valSeconds?: number;
  best: boolean;
}

export interface TrainSegmentResult {
  out: string;
  epochs: SegmentEpochLog[];
  bestMIoU: number;
  bestEpoch: number;
  labels: string[];
  smpConfig: Record<string, unknown>;
}

function buildModel(a: TrainSegmentArgs): SegmentationModel {
  const options: Record<string, unknown> = { encoderName: a.encoder, classes: a.classes };
  if (a.encoderDepth !== undefined) options.encoderDepth = a.encoderDepth;
  if (a.decoderChannels !== undefined) {
    if (resolveArchitecture(a.arch) !== 'Unet')
      throw new Error(`${CMD}: --decoder-channels is a U-Net option (DeepLab: its ASPP width is fixed here)`);
    options.decoderChannels = a.decoderChannels;
  }
  return createSegmentationModel(a.arch, options as { encoderName: string });
}

/** Where a backbone's timm names sit in the checkpoints we know: smp, an effdet detector, a timm wrapper, bare. */
const ENCODER_PREFIXES = ['encoder.model.', 'backbone.', 'model.', ''];

/**
 * Initialises the encoder (smp's `encoder.model.*`, a timm feature extractor) from a checkpoint that holds the
 * same backbone under one of `ENCODER_PREFIXES`: a timm classifier, an smp model or an effdet detector (its
 * `backbone.*`), e.g. to start a segmenter from a trained detector. Every encoder tensor must be found (with its
 * shape) under one prefix; other tensors (heads, decoders) are ignored. Nothing changes on error.
 */
export function loadEncoderWeights(
  model: SegmentationModel,
  raw: RawTensorMap,
  source: string,
): { prefix: string; count: number } {
  const target = model.encoder.model;
  const want = [...target.namedState()].map(([n]) => n).filter((n) => !n.endsWith('num_batches_tracked'));
  let best = { prefix: '', found: -1 };
  for (const prefix of ENCODER_PREFIXES) {
    const found = want.filter((n) => `${prefix}${n}` in raw).length;
    if (found > best.found) best = { prefix, found };
  }
  if (best.found < want.length) {
    const missing = want.filter((n) => !(`${best.prefix}${n}` in raw));
    throw new Error(
      `${CMD}: --encoder-weights ${source} does not hold the ${model.encoder.timmName} encoder: ` +
        `${missing.length} of its ${want.length} tensors are missing under every known prefix ` +
        `(${ENCODER_PREFIXES.map((p) => `'${p}'`).join(', ')}; best '${best.prefix}', first missing ` +
        `${missing.slice(0, 3).join(', ')})`,
    );
  }
  const picked: RawTensorMap = {};
  for (const n of want) picked[n] = raw[`${best.prefix}${n}`];
  loadRawStateDict(target, picked);
  return { prefix: best.prefix, count: want.length };
}

/** Runs `effdet train --task segment`. Returns the per-epoch logs (also in OUT/log.jsonl). */
export async function runTrainSegment(
  a: TrainSegmentArgs,
  io: CliIO = defaultIO,
): Promise<TrainSegmentResult> {
  const backend = await useBackend(a.backend);
  tf.env().set('IS_TEST', false); // TF.js' per-kernel leak check miscounts custom-gradient clones on wasm
  tf.env().set('PROD', true);
  const out = resolve(a.out);
  mkdirSync(out, { recursive: true });
  const ckptDir = join(out, 'checkpoint');
  const saved = readResumeState<SegmentCheckpoint>(ckptDir, a.resume, io);
  const train = listSegmentationPairs(a.root, a.masks);
  const val =
    a.valRoot && a.valMasks ? listSegmentationPairs(a.valRoot, a.valMasks).slice(0, a.valLimit) : [];
  const labels = saved?.labels ?? readLabels(a.labels, a.classes);
  seedInitializers(hashSeed(a.seed, 'segment-init'));
  const model = saved ? createFromSmpConfig(saved.smpConfig) : buildModel(a);
  model.materialize();
  if (model.numClasses !== a.classes)
    throw new Error(
      `${CMD}: the checkpoint's model has ${model.numClasses} classes, --classes says ${a.classes}`,
    );
  const divisor = model.inputDivisor;
  if (a.size % divisor !== 0)
    throw new Error(
      `${CMD}: --size ${a.size} must be a multiple of ${divisor} (the ${model.arch} output stride)`,
    );
  if (a.valInputSize && (a.valInputSize[0] % divisor !== 0 || a.valInputSize[1] % divisor !== 0))
    throw new Error(
      `${CMD}: --val-input-size ${a.valInputSize[0]}x${a.valInputSize[1]} must be a multiple of ${divisor} (the ${model.arch} output stride)`,
    );
  const smpConfig = toSmpConfig(model);
  if (a.weights && !saved) {
    const { loadWeights } = await import('@effdet/weights/node');
    let raw = await loadWeights(a.weights);
    if (a.growDecoder) {
      const g = growUnetDecoder(raw, model, a.seed);
      raw = g.raw;
      io.stderr.write(`grew the decoder of ${a.weights}: ${g.grown.length} tensors widened\n`);
    }
    const res = loadRawStateDict(model, raw, { strict: false });
    const missing = (res as { missing?: string[] }).missing ?? [];
    io.stderr.write(
      `loaded ${a.weights}${missing.length ? ` (${missing.length} tensors kept at init)` : ''}\n`,
    );
  }
  if (a.encoderWeights && !saved) {
    const { loadWeights } = await import('@effdet/weights/node');
    const { prefix, count } = loadEncoderWeights(
      model,
      await loadWeights(a.encoderWeights),
      a.encoderWeights,
    );
    io.stderr.write(`encoder: ${count} tensors from ${a.encoderWeights} (prefix '${prefix}')\n`);
  }
  const stepsPerEpoch = Math.ceil(train.length / a.batch);
  const trainer = new SegmentationTrainer(model, {
    ...trainerOptions(a, stepsPerEpoch),
    loss: { ignoreIndex: a.ignoreIndex, diceWeight: a.dice },
    freezeEncoder: a.freezeEncoder,
    validateTargets: false, // every mask is checked when it is read
  });
  let startEpoch = 0;
  let bestMIoU = Number.NEGATIVE_INFINITY;
  let bestEpoch = -1;
  if (saved) {
    await loadCheckpoint(ckptDir, trainer, saved);
    startEpoch = saved.epoch;
    bestMIoU = saved.bestMIoU;
    bestEpoch = saved.bestEpoch;
    io.stderr.write(`resumed from ${ckptDir}: epoch ${saved.epoch}, step ${saved.step}\n`);
  }
  const cache = new Map<string, SegmentationSample>();
  const load = async (p: SegmentationPair): Promise<SegmentationSample> => {
    const hit = cache.get(p.image);
    if (hit) return hit;
    const s = await loadSegmentationSample(p, a.classes, a.ignoreIndex);
    if (a.cache) cache.set(p.image, s);
    return s;
  };
  // every image and mask is read once up front, so bad data stops the run before any training
  const checkStart = performance.now();
  for (const p of [...train, ...val]) await load(p);
  io.stderr.write(
    `checked ${train.length + val.length} images and masks in ${((performance.now() - checkStart) / 1000).toFixed(1)} s\n`,
  );
  async function* valSamples(): AsyncGenerator<SegmentationSample> {
    for (const p of val) yield await load(p);
  }
  const logPath = join(out, 'log.jsonl');
  const epochs: SegmentEpochLog[] = [];
  const tty = a.tty ?? !!io.stderr.isTTY;
  const lastEpoch = a.stopAfter ? Math.min(a.epochs, startEpoch + a.stopAfter) : a.epochs;
  io.stderr.write(
    `train ${model.arch} ${a.encoder}: ${train.length} images, ${a.classes} classes, ${a.epochs} epochs x ${stepsPerEpoch} steps of ${a.batch}, ` +
      `${a.opt} lr ${a.lr}, ${a.size}x${a.size}, ${model.numParams().toLocaleString('en-US')} params, backend ${backend}\n`,
  );
  const { resume: _r, stopAfter: _s, tty: _t, ...savedArgs } = a;
  try {
    for (let epoch = startEpoch; epoch < lastEpoch; epoch++) {
      const order = epochOrder(train.length, a.seed, epoch);
      const progress = new EpochProgress(io, tty, epoch + 1, a.epochs, stepsPerEpoch);
      const sums = { loss: 0, crossEntropy: 0, dice: 0, steps: 0, images: 0 };
      let lr = trainer.lr;
      for (let s = 0; s < stepsPerEpoch; s++) {
        const imgs: RgbImage[] = [];
        const masks = new Int32Array(Math.min(a.batch, train.length - s * a.batch) * a.size * a.size);
        for (const [k, i] of order.slice(s * a.batch, (s + 1) * a.batch).entries()) {
          const sample = await load(train[i] as SegmentationPair);
          const rng = createRng(hashSeed(a.seed, 'segment-aug', epoch, i));
          const aug = trainAugment(
            { image: sample.image, boxes: new Float32Array(0), classes: [], masks: [sample.mask] },
            {
              targetSize: a.size,
              scaleMin: a.scaleMin,
              scaleMax: a.scaleMax,
              flipProb: a.flip ? 0.5 : 0,
              fillColor: 'mean',
              mean: model.mean,
              maskFill: a.ignoreIndex,
            },
            () => rng.next(),
          );
          imgs.push(aug.image);
          masks.set(aug.masks[0] as Uint8Array | Uint16Array, k * a.size * a.size);
        }
        const images = imageBatch(imgs, model.mean, model.std);
        const target = tf.tensor3d(masks, [imgs.length, a.size, a.size], 'int32');
        let r: ReturnType<SegmentationTrainer['trainStep']>;
        try {
          r = trainer.trainStep({ images, masks: target });
        } finally {
          images.dispose();
          target.dispose();
        }
        lr = r.lr;
        sums.loss += r.loss;
        sums.crossEntropy += r.crossEntropy;
        sums.dice += r.dice;
        sums.steps++;
        sums.images += imgs.length;
        const dice = a.dice > 0 ? ` dice ${(sums.dice / sums.steps).toFixed(4)}` : '';
        progress.update(
          s,
          sums.loss / sums.steps,
          `ce ${(sums.crossEntropy / sums.steps).toFixed(4)}${dice}`,
          r.lr,
          sums.images,
          train.length - sums.images,
        );
      }
      progress.end();
      const seconds = progress.seconds;
      const log: SegmentEpochLog = {
        epoch: epoch + 1,
        step: trainer.step,
        lr,
        loss: sums.loss / sums.steps,
        crossEntropy: sums.crossEntropy / sums.steps,
        dice: sums.dice / sums.steps,
        imagesPerSecond: sums.images / seconds,
        seconds,
        best: false,
      };
      if (val.length > 0) {
        const ev = await evaluateSegmentation(trainer.evalModel, valSamples(), a.ignoreIndex, a.valInputSize);
        log.mIoU = ev.scores.meanIoU;
        log.pixelAccuracy = ev.scores.pixelAccuracy;
        log.iou = ev.scores.iou;
        log.valSeconds = ev.seconds;
        const perClass = ev.scores.iou.map((v, c) => `${labels[c]} ${v.toFixed(3)}`).join(', ');
        io.stderr.write(
          `epoch ${epoch + 1}: val mIoU ${log.mIoU.toFixed(4)} pixel acc ${log.pixelAccuracy.toFixed(4)} (${ev.images} images, ${ev.seconds.toFixed(1)} s; IoU ${perClass})\n`,
        );
      }
      const score = log.mIoU ?? -log.loss;
      if (score > bestMIoU) {
        bestMIoU = score;
        bestEpoch = epoch + 1;
        log.best = true;
        await exportSegmentationModel(join(out, 'best'), trainer.evalModel, labels, {
          epoch: epoch + 1,
          mIoU: log.mIoU ?? null,
          pixelAccuracy: log.pixelAccuracy ?? null,
          trainSize: a.size,
        });
      }
      const state: SegmentCheckpoint = {
        ...checkpointBase(trainer, epoch + 1),
        bestMIoU,
        bestEpoch,
        labels,
        smpConfig,
        args: savedArgs,
      };
      await saveCheckpoint(ckptDir, trainer, state, { config: JSON.stringify(smpConfig) });
      appendFileSync(logPath, `${JSON.stringify(log)}\n`);
      epochs.push(log);
    }
  } finally {
    trainer.dispose();
    model.dispose();
  }
  return { out, epochs, bestMIoU, bestEpoch, labels, smpConfig };
}

export async function runTrainSegmentCommand(
  argv: readonly string[],
  io: CliIO = defaultIO,
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(`effdet train --task segment [options]\n${TRAIN_SEGMENT_USAGE}`);
    return 0;
  }
  const r = await runTrainSegment(parseTrainSegmentArgs(argv), io);
  const last = r.epochs.at(-1);
  io.stdout.write(
    `${JSON.stringify({ out: r.out, epochs: r.epochs.length, bestEpoch: r.bestEpoch, bestMIoU: r.bestMIoU, last })}\n`,
  );
  return 0;
}

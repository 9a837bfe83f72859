/**
 * `effdet train`: trains (or fine-tunes) an EfficientDet on a COCO-format dataset with `DetectionTrainer`.
 *
 * Each epoch: shuffled batches (order and augmentation seeded by --seed, epoch and image, so a resumed run
 * sees exactly the batches the uninterrupted run would), effdet's RandomResizePad + flip, a step per batch,
 * a progress line (loss parts, lr, images/s, ETA); then the EMA model is validated (COCO mAP with
 * `@effdet/eval`), a checkpoint written (`OUT/checkpoint/`: model, EMA, optimiser, state), a JSONL log line
 * appended (`OUT/log.jsonl`) and, when mAP improved, the EMA model exported in TF.js format (`OUT/best/`).
 *
 * Bad data: an unreadable image, an annotation with an unknown category, a box outside the image (clipped;
 * dropped when nothing is left) is logged and skipped (`--on-bad skip`, default) or stops the run
 * (`--on-bad error`); images without boxes train as background.
 */
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  createEfficientDet,
  DetectionTrainer,
  Detector,
  type EffDetConfig,
  type EfficientDet,
  getEfficientDetConfig,
  loadRawStateDict,
  type RgbImage,
  trainAugment,
} from '@effdet/effdet';
import { lrAt, seedInitializers } from '@effdet/layers';
import { createRng, hashSeed } from '@effdet/shapes';
import * as tf from '@tensorflow/tfjs-core';
import { type BackendChoice, useBackend } from './backend.js';
import { type CliIO, defaultIO } from './evaluate.js';
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

export const TRAIN_USAGE = `  train --model M --root DIR --ann FILE --out DIR  [--data coco] [--weights INIT] [--val-root DIR]
                             [--val-ann FILE] [--num-classes K] [--epochs 10] [--batch 8] [--lr 0.01]
                             [--opt sgd|adamw] [--size S] [--backend wasm|cpu] [--resume] [--seed 0]
                             [--warmup-epochs 1] [--min-lr 0] [--schedule cosine|step] [--wd W] [--momentum 0.9]
                             [--nesterov] [--clip 10] [--ema-decay 0.9998 | --no-ema] [--freeze-backbone]
                             [--freeze-bn] [--scale-min 0.1] [--scale-max 2.0] [--no-flip] [--val-limit N]
                             [--on-bad skip|error] [--cache] [--anchor-scale A] [--fpn-channels C]
                             [--micro-batches K]
                             trains with a progress line, validates the EMA model each epoch (COCO mAP),
                             checkpoints to OUT/checkpoint (resumable), logs OUT/log.jsonl, exports the best
                             model to OUT/best (TF.js, float16, with labels.json)
`;

export interface TrainArgs {
  model: string;
  root: string;
  ann: string;
  out: string;
  valRoot?: string;
  valAnn?: string;
  weights?: string;
  numClasses?: number;
  epochs: number;
  batch: number;
  lr: number;
  opt: 'sgd' | 'adamw';
  size?: number;
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
  /** Micro-batches per step (gradient accumulation for batches that do not fit in memory). */
  microBatches: number;
  emaDecay: number | null;
  freezeBackbone: boolean;
  freezeBn: boolean;
  scaleMin: number;
  scaleMax: number;
  flip: boolean;
  valLimit?: number;
  onBad: 'skip' | 'error';
  cache: boolean;
  configOverrides: Partial<EffDetConfig>;
  /** Stop after this many epochs of this invocation (tests of resume); default: run to --epochs. */
  stopAfter?: number;
  /** Progress redrawn in place (default: stderr is a TTY). */
  tty?: boolean;
}

function num(
  v: string | undefined,
  name: string,
  dflt: number,
  check: (n: number) => boolean,
  what: string,
): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !check(n))
    throw new Error(`effdet train: --${name} must be ${what}, got '${v}'`);
  return n;
}
const posInt = (n: number) => Number.isInteger(n) && n > 0;

export function parseTrainArgs(argv: readonly string[]): TrainArgs {
  const args = argv[0] === 'train' ? argv.slice(1) : [...argv];
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string', short: 'm' },
      data: { type: 'string', default: 'coco' },
      root: { type: 'string' },
      ann: { type: 'string' },
      'val-root': { type: 'string' },
      'val-ann': { type: 'string' },
      out: { type: 'string', short: 'o' },
      weights: { type: 'string', short: 'w' },
      'num-classes': { type: 'string' },
      epochs: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      opt: { type: 'string' },
      size: { type: 'string' },
      backend: { type: 'string', default: 'wasm' },
      resume: { type: 'boolean' },
      seed: { type: 'string' },
      'warmup-epochs': { type: 'string' },
      'min-lr': { type: 'string' },
      schedule: { type: 'string' },
      wd: { type: 'string' },
      momentum: { type: 'string' },
      nesterov: { type: 'boolean' },
      clip: { type: 'string' },
      'micro-batches': { type: 'string' },
      'ema-decay': { type: 'string' },
      'no-ema': { type: 'boolean' },
      'freeze-backbone': { type: 'boolean' },
      'freeze-bn': { type: 'boolean' },
      'scale-min': { type: 'string' },
      'scale-max': { type: 'string' },
      'no-flip': { type: 'boolean' },
      'val-limit': { type: 'string' },
      'on-bad': { type: 'string' },
      cache: { type: 'boolean' },
      'anchor-scale': { type: 'string' },
      'fpn-channels': { type: 'string' },
      'stop-after': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (positionals.length > 0) throw new Error(`effdet train: unexpected argument '${positionals[0]}'`);
  if (values.data !== 'coco') throw new Error(`effdet train: --data must be 'coco', got '${values.data}'`);
  for (const k of ['model', 'root', 'ann', 'out'] as const)
    if (!values[k]) throw new Error(`effdet train: --${k} is required`);
  const opt = values.opt ?? 'sgd';
  if (opt !== 'sgd' && opt !== 'adamw')
    throw new Error(`effdet train: --opt must be sgd or adamw, got '${opt}'`);
  const schedule = values.schedule ?? 'cosine';
  if (schedule !== 'cosine' && schedule !== 'step')
    throw new Error(`effdet train: --schedule must be cosine or step, got '${schedule}'`);
  const onBad = values['on-bad'] ?? 'skip';
  if (onBad !== 'skip' && onBad !== 'error')
    throw new Error(`effdet train: --on-bad must be skip or error, got '${onBad}'`);
  const backend = values.backend as BackendChoice;
  const configOverrides: Partial<EffDetConfig> = {};
  if (values['anchor-scale'] !== undefined)
    configOverrides.anchorScale = num(
      values['anchor-scale'],
      'anchor-scale',
      4,
      (n) => n > 0,
      'a positive number',
    );
  if (values['fpn-channels'] !== undefined)
    configOverrides.fpnChannels = num(
      values['fpn-channels'],
      'fpn-channels',
      64,
      posInt,
      'a positive integer',
    );
  const positive = (n: number) => n > 0;
  const nonNeg = (n: number) => n >= 0;
  return {
    model: values.model as string,
    root: values.root as string,
    ann: values.ann as string,
    out: values.out as string,
    valRoot: values['val-root'],
    valAnn: values['val-ann'],
    weights: values.weights,
    numClasses:
      values['num-classes'] === undefined
        ? undefined
        : num(values['num-classes'], 'num-classes', 0, posInt, 'a positive integer'),
    epochs: num(values.epochs, 'epochs', 10, posInt, 'a positive integer'),
    batch: num(values.batch, 'batch', 8, posInt, 'a positive integer'),
    lr: num(values.lr, 'lr', opt === 'sgd' ? 0.01 : 1e-3, positive, 'a positive number'),
    opt,
    size: values.size === undefined ? undefined : num(values.size, 'size', 0, posInt, 'a positive integer'),
    backend,
    resume: !!values.resume,
    seed: num(values.seed, 'seed', 0, Number.isSafeInteger, 'an integer'),
    warmupEpochs: num(values['warmup-epochs'], 'warmup-epochs', 1, nonNeg, 'a number >= 0'),
    minLr: num(values['min-lr'], 'min-lr', 0, nonNeg, 'a number >= 0'),
    schedule,
    weightDecay: values.wd === undefined ? undefined : num(values.wd, 'wd', 0, nonNeg, 'a number >= 0'),
    momentum: num(values.momentum, 'momentum', 0.9, nonNeg, 'a number >= 0'),
    nesterov: !!values.nesterov,
    clip: num(values.clip, 'clip', 10, nonNeg, 'a number >= 0'),
    microBatches: num(values['micro-batches'], 'micro-batches', 1, posInt, 'a positive integer'),
    emaDecay: values['no-ema']
      ? null
      : num(values['ema-decay'], 'ema-decay', 0.9998, (n) => n > 0 && n < 1, 'in (0, 1)'),
    freezeBackbone: !!values['freeze-backbone'],
    freezeBn: !!values['freeze-bn'],
    scaleMin: num(values['scale-min'], 'scale-min', 0.1, positive, 'a positive number'),
    scaleMax: num(values['scale-max'], 'scale-max', 2.0, positive, 'a positive number'),
    flip: !values['no-flip'],
    valLimit:
      values['val-limit'] === undefined
        ? undefined
        : num(values['val-limit'], 'val-limit', 0, posInt, 'a positive integer'),
    onBad,
    cache: !!values.cache,
    configOverrides,
    stopAfter:
      values['stop-after'] === undefined
        ? undefined
        : num(values['stop-after'], 'stop-after', 0, posInt, 'a positive integer'),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Data

export interface TrainRecord {
  id: number;
  path: string;
  width: number;
  height: number;
  /** `y1, x1, y2, x2` per box, image pixels. */
  boxes: Float32Array;
  /** Model class ids (1-based, contiguous over the dataset's categories). */
  classes: Int32Array;
}

export interface TrainSet {
  records: TrainRecord[];
  /** Dataset category id of model class i + 1. */
  categoryIds: number[];
  labels: string[];
  /** Human-readable notes about skipped data. */
  skipped: string[];
}

interface CocoJson {
  images?: { id: number; file_name: string; width: number; height: number }[];
  annotations?: { image_id: number; category_id: number; bbox: number[]; iscrowd?: number }[];
  categories?: { id: number; name: string }[];
}

/** Reads a COCO instances file into training records; bad rows are skipped with a note or throw (`onBad`). */
export function loadTrainSet(
  root: string,
  ann: string,
  onBad: 'skip' | 'error',
  categoryIds?: number[],
): TrainSet {
  const fn = 'loadTrainSet';
  let json: CocoJson;
  try {
    json = JSON.parse(readFileSync(ann, 'utf8')) as CocoJson;
  } catch (e) {
    throw new Error(`${fn}: '${ann}' is not a readable COCO JSON file (${(e as Error).message})`);
  }
  if (!Array.isArray(json.images) || !Array.isArray(json.annotations) || !Array.isArray(json.categories))
    throw new Error(`${fn}: '${ann}' must have images, annotations and categories arrays`);
  if (json.categories.length === 0) throw new Error(`${fn}: '${ann}' has no categories`);
  const cats = categoryIds ?? [...json.categories.map((c) => c.id)].sort((a, b) => a - b);
  const classOf = new Map(cats.map((id, i) => [id, i + 1]));
  const nameOf = new Map(json.categories.map((c) => [c.id, c.name]));
  const skipped: string[] = [];
  const bad = (msg: string) => {
    if (onBad === 'error') throw new Error(`${fn}: ${msg} (pass --on-bad skip to skip such rows)`);
    skipped.push(msg);
  };
  const byImage = new Map<number, { boxes: number[]; classes: number[] }>();
  const images = new Map<number, { file_name: string; width: number; height: number }>();
  for (const im of json.images) {
    if (!Number.isFinite(im?.id) || typeof im.file_name !== 'string' || !(im.width > 0) || !(im.height > 0)) {
      bad(`image entry ${JSON.stringify(im)} lacks id / file_name / width / height`);
      continue;
    }
    images.set(im.id, im);
    byImage.set(im.id, { boxes: [], classes: [] });
  }
  for (const a of json.annotations) {
    const im = images.get(a?.image_id);
    if (!im) {
      bad(`annotation for unknown image id ${a?.image_id}`);
      continue;
    }
    const cls = classOf.get(a.category_id);
    if (cls === undefined) {
      bad(`annotation of image ${a.image_id} has unknown category id ${a.category_id}`);
      continue;
    }
    if (a.iscrowd) continue; // crowd regions are not training targets
    const [x, y, w, h] = Array.isArray(a.bbox) ? a.bbox : [];
    if (![x, y, w, h].every((v) => typeof v === 'number' && Number.isFinite(v))) {
      bad(`annotation of image ${a.image_id} has a malformed bbox ${JSON.stringify(a.bbox)}`);
      continue;
    }
    const x1 = Math.max(0, x as number);
    const y1 = Math.max(0, y as number);
    const x2 = Math.min(im.width, (x as number) + (w as number));
    const y2 = Math.min(im.height, (y as number) + (h as number));
    if (x2 - x1 < 1 || y2 - y1 < 1) {
      bad(
        `annotation of image ${a.image_id}: bbox ${JSON.stringify(a.bbox)} is empty inside the ${im.width}x${im.height} image`,
      );
      continue;
    }
    if (x1 !== x || y1 !== y || x2 !== (x as number) + (w as number) || y2 !== (y as number) + (h as number))
      skipped.push(`annotation of image ${a.image_id}: bbox ${JSON.stringify(a.bbox)} clipped to the image`);
    const e = byImage.get(a.image_id) as { boxes: number[]; classes: number[] };
    e.boxes.push(y1, x1, y2, x2);
    e.classes.push(cls);
  }
  const records: TrainRecord[] = [];
  for (const [id, im] of images) {
    const e = byImage.get(id) as { boxes: number[]; classes: number[] };
    records.push({
      id,
      path: resolve(root, im.file_name),
      width: im.width,
      height: im.height,
      boxes: Float32Array.from(e.boxes),
      classes: Int32Array.from(e.classes),
    });
  }
  if (records.length === 0) throw new Error(`${fn}: '${ann}' lists no usable images`);
  return { records, categoryIds: cats, labels: cats.map((c) => nameOf.get(c) ?? `class ${c}`), skipped };
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoints

interface CheckpointState extends CheckpointBase {
  bestMap: number;
  bestEpoch: number;
  args: Omit<TrainArgs, 'resume' | 'stopAfter' | 'tty'>;
  categoryIds: number[];
  labels: string[];
  config: EffDetConfig;
}

/** Exports a model as TF.js float16 weights with its labels (what `effdet predict --weights DIR` loads). */
export async function exportModel(
  dir: string,
  model: EfficientDet,
  labels: readonly string[],
  extra: Record<string, unknown> = {},
): Promise<string[]> {
  const { saveWeights } = await import('@effdet/weights/node');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const written = await saveWeights(await moduleToRaw(model), join(dir, 'model.json'), {
    format: 'tfjs',
    modelName: model.config.name,
    config: model.config,
    quantization: 'float16',
    userDefinedMetadata: { labels, ...extra },
  });
  writeFileSync(join(dir, 'labels.json'), `${JSON.stringify(labels)}\n`);
  return [...written, join(dir, 'labels.json')];
}

// ---------------------------------------------------------------------------------------------------------------
// The loop

function normalizeBatch(images: RgbImage[], cfg: EffDetConfig): tf.Tensor4D {
  const [h, w] = cfg.imageSize;
  const out = new Float32Array(images.length * h * w * 3);
  const m = cfg.mean.map((v) => v * 255);
  const s = cfg.std.map((v) => 1 / (v * 255));
  images.forEach((im, b) => {
    const d = im.data;
    const base = b * h * w * 3;
    for (let i = 0; i < h * w; i++) {
      out[base + 3 * i] = ((d[3 * i] as number) - (m[0] as number)) * (s[0] as number);
      out[base + 3 * i + 1] = ((d[3 * i + 1] as number) - (m[1] as number)) * (s[1] as number);
      out[base + 3 * i + 2] = ((d[3 * i + 2] as number) - (m[2] as number)) * (s[2] as number);
    }
  });
  return tf.tensor4d(out, [images.length, h, w, 3]);
}

/** Deterministic permutation of 0..n-1 for (seed, epoch). */
function shuffled(n: number, seed: number, epoch: number): number[] {
  const rng = createRng(hashSeed(seed, 'order', epoch));
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order;
}

export interface EpochLog {
  epoch: number;
  step: number;
  lr: number;
  loss: number;
  classLoss: number;
  boxLoss: number;
  imagesPerSecond: number;
  seconds: number;
  skippedImages: number;
  map?: number;
  map50?: number;
  map75?: number;
  best: boolean;
}

export interface TrainResult {
  out: string;
  epochs: EpochLog[];
  bestMap: number;
  bestEpoch: number;
  config: EffDetConfig;
  labels: string[];
}

/** Runs `effdet train`. Returns the per-epoch logs (also in OUT/log.jsonl). */
export async function runTrain(a: TrainArgs, io: CliIO = defaultIO): Promise<TrainResult> {
  const backend = await useBackend(a.backend);
  tf.env().set('IS_TEST', false); // TF.js' per-kernel leak check miscounts custom-gradient clones on wasm
  tf.env().set('PROD', true);
  const { decodeImage } = await import('@effdet/effdet/node');
  const out = resolve(a.out);
  mkdirSync(out, { recursive: true });
  const ckptDir = join(out, 'checkpoint');
  const resumeState = readResumeState<CheckpointState>(ckptDir, a.resume, io);
  const train = loadTrainSet(a.root, a.ann, a.onBad, resumeState?.categoryIds);
  for (const s of train.skipped.slice(0, 20)) io.stderr.write(`skip: ${s}\n`);
  if (train.skipped.length > 20) io.stderr.write(`skip: ... ${train.skipped.length - 20} more\n`);
  const numClasses = a.numClasses ?? train.categoryIds.length;
  if (numClasses < train.categoryIds.length)
    throw new Error(
      `effdet train: --num-classes ${numClasses} is smaller than the dataset's ${train.categoryIds.length} categories`,
    );
  const overrides: Partial<EffDetConfig> = { ...a.configOverrides, numClasses };
  if (a.size) overrides.imageSize = [a.size, a.size];
  const cfg = resumeState?.config ?? getEfficientDetConfig(a.model, overrides);
  // reproducible initial weights: the initialisers draw from a generator seeded by --seed, in a fixed order
  seedInitializers(hashSeed(a.seed, 'init') >>> 0);
  const model = createEfficientDet(cfg).materialize();
  if (a.weights && !resumeState) {
    const { loadWeights } = await import('@effdet/weights/node');
    const raw = await loadWeights(a.weights);
    // Fine-tuning to another class count (effdet's reset_head): tensors whose shape differs from the model's
    // (the class head's last layer) stay at their initialisation; everything else must match by name.
    const want = model.stateShapes();
    const reinit: string[] = [];
    for (const [name, t] of Object.entries(raw)) {
      const shape = want[name];
      if (shape && (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i]))) {
        reinit.push(name);
        delete raw[name];
      }
    }
    const res = loadRawStateDict(model, raw, { strict: false });
    const kept = [...new Set([...reinit, ...res.missing])];
    if (res.unexpected.length > 0 && res.unexpected.length >= Object.keys(want).length / 2)
      throw new Error(
        `effdet train: --weights ${a.weights} does not fit ${cfg.name}: ${res.unexpected.length} unexpected tensors (e.g. ${res.unexpected.slice(0, 3).join(', ')})`,
      );
    io.stderr.write(
      `loaded ${a.weights}${kept.length ? ` (${kept.length} tensors kept at init: ${kept.slice(0, 4).join(', ')}${kept.length > 4 ? ', ...' : ''})` : ''}\n`,
    );
  }
  const stepsPerEpoch = Math.ceil(train.records.length / a.batch);
  const trainer = new DetectionTrainer(model, {
    ...trainerOptions(a, stepsPerEpoch),
    freezeBackbone: a.freezeBackbone,
    freezeBackboneBn: a.freezeBn,
  });
  let startEpoch = 0;
  let bestMap = -1;
  let bestEpoch = -1;
  if (resumeState) {
    await loadCheckpoint(ckptDir, trainer, resumeState);
    startEpoch = resumeState.epoch;
    bestMap = resumeState.bestMap;
    bestEpoch = resumeState.bestEpoch;
    io.stderr.write(`resumed from ${ckptDir}: epoch ${resumeState.epoch}, step ${resumeState.step}\n`);
  }
  const cache = new Map<string, RgbImage>();
  const load = async (r: TrainRecord): Promise<RgbImage | null> => {
    const hit = cache.get(r.path);
    if (hit) return hit;
    try {
      const im = await decodeImage(r.path);
      if (a.cache) cache.set(r.path, im);
      return im;
    } catch (e) {
      if (a.onBad === 'error') throw e;
      io.stderr.write(`\nskip: ${(e as Error).message}\n`);
      return null;
    }
  };
  const logPath = join(out, 'log.jsonl');
  const epochs: EpochLog[] = [];
  const tty = a.tty ?? !!(io.stderr as { isTTY?: boolean }).isTTY;
  const valAnn = a.valAnn;
  const lastEpoch = a.stopAfter ? Math.min(a.epochs, startEpoch + a.stopAfter) : a.epochs;
  io.stderr.write(
    `train ${cfg.name}: ${train.records.length} images, ${numClasses} classes, ${a.epochs} epochs x ${stepsPerEpoch} steps of ${a.batch}, ${a.opt} lr ${a.lr}, ${cfg.imageSize[0]}x${cfg.imageSize[1]}, ${model.numParams().toLocaleString('en-US')} params, backend ${backend}\n`,
  );
  try {
    for (let epoch = startEpoch; epoch < lastEpoch; epoch++) {
      const order = shuffled(train.records.length, a.seed, epoch);
      const progress = new EpochProgress(io, tty, epoch + 1, a.epochs, stepsPerEpoch);
      let sum = { loss: 0, classLoss: 0, boxLoss: 0, n: 0 };
      let imagesDone = 0;
      let skippedImages = 0;
      for (let s = 0; s < stepsPerEpoch; s++) {
        const idx = order.slice(s * a.batch, (s + 1) * a.batch);
        const imgs: RgbImage[] = [];
        const boxes: Float32Array[] = [];
        const classes: Int32Array[] = [];
        for (const i of idx) {
          const r = train.records[i] as TrainRecord;
          const im = await load(r);
          if (!im) {
            skippedImages++;
            continue;
          }
          const rng = createRng(hashSeed(a.seed, 'aug', epoch, i));
          const aug = trainAugment(
            { image: im, boxes: r.boxes, classes: r.classes },
            {
              targetSize: cfg.imageSize,
              scaleMin: a.scaleMin,
              scaleMax: a.scaleMax,
              flipProb: a.flip ? 0.5 : 0,
              fillColor: cfg.fillColor === 'mean' ? 'mean' : cfg.fillColor,
              mean: cfg.mean,
              minBoxSize: 1,
            },
            () => rng.next(),
          );
          imgs.push(aug.image);
          boxes.push(aug.boxes);
          classes.push(aug.classes);
        }
        if (imgs.length === 0) continue;
        const images = normalizeBatch(imgs, cfg);
        let r: ReturnType<DetectionTrainer['trainStep']>;
        try {
          r = trainer.trainStep({ images, boxes, classes });
        } finally {
          images.dispose();
        }
        imagesDone += imgs.length;
        sum = {
          loss: sum.loss + r.loss,
          classLoss: sum.classLoss + r.classLoss,
          boxLoss: sum.boxLoss + r.boxLoss,
          n: sum.n + 1,
        };
        progress.update(
          s,
          sum.loss / sum.n,
          `cls ${(sum.classLoss / sum.n).toFixed(4)} box ${(sum.boxLoss / sum.n).toFixed(5)}`,
          r.lr,
          imagesDone,
          (stepsPerEpoch - s - 1) * a.batch,
        );
      }
      progress.end();
      const seconds = progress.seconds;
      const log: EpochLog = {
        epoch: epoch + 1,
        step: trainer.step,
        lr: lrAt(trainer.options.schedule, Math.max(0, trainer.step - 1)),
        loss: sum.n ? sum.loss / sum.n : Number.NaN,
        classLoss: sum.n ? sum.classLoss / sum.n : Number.NaN,
        boxLoss: sum.n ? sum.boxLoss / sum.n : Number.NaN,
        imagesPerSecond: imagesDone / seconds,
        seconds,
        skippedImages,
        best: false,
      };
      if (valAnn) {
        const stats = await validateModel(
          trainer.evalModel,
          a.valRoot ?? a.root,
          valAnn,
          train.categoryIds,
          a.valLimit,
        );
        log.map = stats[0];
        log.map50 = stats[1];
        log.map75 = stats[2];
        io.stderr.write(
          `epoch ${epoch + 1}: val mAP ${stats[0]?.toFixed(4)} mAP@.5 ${stats[1]?.toFixed(4)} mAP@.75 ${stats[2]?.toFixed(4)}\n`,
        );
      }
      const score = log.map ?? -log.loss;
      if (score > bestMap) {
        bestMap = score;
        bestEpoch = epoch + 1;
        log.best = true;
        await exportModel(join(out, 'best'), trainer.evalModel, train.labels, {
          epoch: epoch + 1,
          map: log.map ?? null,
          map50: log.map50 ?? null,
        });
      }
      const { resume: _r, stopAfter: _s, tty: _t, ...args } = a;
      const state: CheckpointState = {
        ...checkpointBase(trainer, epoch + 1),
        bestMap,
        bestEpoch,
        args,
        categoryIds: train.categoryIds,
        labels: train.labels,
        config: cfg,
      };
      await saveCheckpoint(ckptDir, trainer, state, { model: cfg.name });
      appendFileSync(logPath, `${JSON.stringify(log)}\n`);
      epochs.push(log);
    }
  } finally {
    trainer.dispose();
    model.dispose();
  }
  return { out, epochs, bestMap, bestEpoch, config: cfg, labels: train.labels };
}

/** COCO stats (pycocotools order) of `model` on a COCO-format set: letterboxed to the model size, effdet post-processing. */
export async function validateModel(
  model: EfficientDet,
  root: string,
  ann: string,
  categoryIds: readonly number[],
  limit?: number,
): Promise<number[]> {
  const { runValidate } = await import('./validate.js');
  const detector = new Detector(model);
  const sink = { write: () => true, isTTY: false };
  try {
    const r = await runValidate({
      model: model.config.name,
      data: 'coco',
      root,
      ann,
      limit,
      workers: 0,
      labelMap: 'contiguous',
      stderr: sink,
      tty: false,
      createDetector: async () => ({
        config: model.config,
        detect: (images, o) => detector.detect(images, o),
        dispose: () => {},
      }),
    });
    void categoryIds;
    return r.coco?.stats ?? [];
  } finally {
    detector.anchors.dispose();
  }
}

export async function runTrainCommand(argv: readonly string[], io: CliIO = defaultIO): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(`effdet train [options]\n${TRAIN_USAGE}`);
    return 0;
  }
  const a = parseTrainArgs(argv);
  const r = await runTrain(a, io);
  const last = r.epochs[r.epochs.length - 1];
  io.stdout.write(
    `${JSON.stringify({ out: r.out, epochs: r.epochs.length, bestEpoch: r.bestEpoch, bestMap: r.bestMap, last }, null, 0)}\n`,
  );
  return 0;
}

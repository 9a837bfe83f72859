/**
 * `effdet bench-train`: training throughput of a detector (images/s of full train steps: anchor labelling,
 * forward in train mode, loss, gradients, optimiser, EMA) on synthetic shapes batches at the model size.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { createEfficientDet, DetectionTrainer } from '@effdet/effdet';
import { generateScene, sceneTargets } from '@effdet/shapes';
import * as tf from '@tensorflow/tfjs-core';
import { type BackendChoice, useBackend } from './backend.js';
import { type CliIO, defaultIO } from './evaluate.js';

export const BENCH_TRAIN_USAGE = `  bench-train --model M       [--size S] [--batch 4] [--steps 3] [--warmup 1] [--opt adamw|sgd] [--no-ema]
                             [--micro-batches K]
                             training images/s (full steps: labelling, forward, loss, gradients, optimiser, EMA)
`;

export interface BenchTrainOptions {
  model: string;
  size?: number;
  batch: number;
  steps: number;
  warmup: number;
  opt: 'sgd' | 'adamw';
  ema: boolean;
  backend: BackendChoice;
  /** Micro-batches per step (gradient accumulation; default 1). */
  microBatches?: number;
}

export interface BenchTrainResult {
  model: string;
  size: number;
  batch: number;
  microBatches: number;
  backend: string;
  params: number;
  /** Per timed step, ms. */
  stepMs: number[];
  medianMs: number;
  imagesPerSecond: number;
  firstStepMs: number;
  tensorsBefore: number;
  tensorsAfter: number;
  machine: string;
}

export async function benchTrain(o: BenchTrainOptions): Promise<BenchTrainResult> {
  const backend = await useBackend(o.backend);
  tf.env().set('IS_TEST', false);
  tf.env().set('PROD', true);
  const overrides = o.size
    ? { numClasses: 6, imageSize: [o.size, o.size] as [number, number] }
    : { numClasses: 6 };
  const model = createEfficientDet(o.model, overrides);
  const [h, w] = model.config.imageSize;
  const scenes = Array.from({ length: o.batch }, (_, i) =>
    generateScene(1000 + i, { width: w, height: h, maxObjects: 6 }),
  );
  const mean = model.config.mean.map((v) => v * 255);
  const std = model.config.std.map((v) => v * 255);
  const images = tf.tidy(() =>
    tf.stack(scenes.map((s) => tf.div(tf.sub(tf.tensor3d(s.rgb, [h, w, 3], 'float32'), mean), std))),
  ) as tf.Tensor4D;
  const targets = scenes.map(sceneTargets);
  const batch = { images, boxes: targets.map((t) => t.boxes), classes: targets.map((t) => t.classes) };
  const trainer = new DetectionTrainer(model, {
    optimizer: { name: o.opt },
    schedule: { lr: 1e-3, totalSteps: o.warmup + o.steps + 1 },
    ema: o.ema ? {} : false,
    microBatches: o.microBatches ?? 1,
  });
  try {
    let firstStepMs = 0;
    for (let i = 0; i < o.warmup; i++) {
      const t0 = performance.now();
      trainer.trainStep(batch);
      if (i === 0) firstStepMs = performance.now() - t0;
    }
    const tensorsBefore = tf.memory().numTensors;
    const stepMs: number[] = [];
    for (let i = 0; i < o.steps; i++) {
      const t0 = performance.now();
      trainer.trainStep(batch);
      stepMs.push(performance.now() - t0);
    }
    const sorted = [...stepMs].sort((a, b) => a - b);
    const medianMs = sorted[Math.floor(sorted.length / 2)] as number;
    return {
      model: o.model,
      size: h,
      batch: o.batch,
      microBatches: o.microBatches ?? 1,
      backend,
      params: model.numParams(),
      stepMs,
      medianMs,
      imagesPerSecond: (o.batch * 1000) / medianMs,
      firstStepMs,
      tensorsBefore,
      tensorsAfter: tf.memory().numTensors,
      machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`,
    };
  } finally {
    images.dispose();
    trainer.dispose();
    model.dispose();
  }
}

export async function runBenchTrainCommand(argv: readonly string[], io: CliIO = defaultIO): Promise<number> {
  const args = argv[0] === 'bench-train' ? argv.slice(1) : [...argv];
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string', short: 'm' },
      size: { type: 'string' },
      batch: { type: 'string', default: '4' },
      steps: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      opt: { type: 'string', default: 'adamw' },
      'no-ema': { type: 'boolean' },
      'micro-batches': { type: 'string', default: '1' },
      backend: { type: 'string', default: 'wasm' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`effdet bench-train [options]\n${BENCH_TRAIN_USAGE}`);
    return 0;
  }
  if (!values.model) throw new Error('effdet bench-train: --model is required');
  const int = (v: string | undefined, name: string, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isSafeInteger(n) || n < min)
      throw new Error(`effdet bench-train: --${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
  if (values.opt !== 'sgd' && values.opt !== 'adamw')
    throw new Error(`effdet bench-train: --opt must be sgd or adamw, got '${values.opt}'`);
  const r = await benchTrain({
    model: values.model,
    size: values.size === undefined ? undefined : int(values.size, 'size', 1),
    batch: int(values.batch, 'batch', 1),
    steps: int(values.steps, 'steps', 1),
    warmup: int(values.warmup, 'warmup', 0),
    opt: values.opt,
    ema: !values['no-ema'],
    backend: values.backend as BackendChoice,
    microBatches: int(values['micro-batches'], 'micro-batches', 1),
  });
  if (values.json) io.stdout.write(`${JSON.stringify(r)}\n`);
  else
    io.stdout.write(
      `${r.model} @ ${r.size}, batch ${r.batch}${r.microBatches > 1 ? ` (${r.microBatches} micro-batches)` : ''}, ${r.backend}: ${r.imagesPerSecond.toFixed(3)} images/s (step median ${r.medianMs.toFixed(0)} ms of ${r.stepMs.map((m) => m.toFixed(0)).join(', ')}; first step ${r.firstStepMs.toFixed(0)} ms; tensors ${r.tensorsBefore} -> ${r.tensorsAfter}) on ${r.machine}\n`,
    );
  return 0;
}

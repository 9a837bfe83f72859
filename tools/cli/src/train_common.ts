/**
 * What `effdet train` (detection) and `effdet train --task segment` share around their epoch loops: the
 * optimiser / schedule / EMA options from the command line, resumable checkpoints (weights, EMA, optimiser
 * state, JSON state swapped in whole), and the progress line.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadRawStateDict } from '@effdet/effdet';
import type { ModelEma, Module, Optimizer, TrainerOptions, TrainerState } from '@effdet/layers';
import { fromTfTensors, type RawTensorMap } from '@effdet/weights';
import * as tf from '@tensorflow/tfjs-core';
import type { CliIO } from './evaluate.js';
import { formatDuration } from './progress.js';

/** The part of any task's trainer (`@effdet/layers` `Trainer`) that checkpoints need. */
interface AnyTrainer {
  readonly model: Module;
  readonly ema: ModelEma | null;
  readonly optimizer: Optimizer;
  readonly step: number;
  loadState(state: TrainerState): void;
}

/** The optimiser and schedule flags both train commands take. */
export interface OptimArgs {
  opt: 'sgd' | 'adamw';
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay?: number;
  clip: number;
  epochs: number;
  warmupEpochs: number;
  minLr: number;
  schedule: 'cosine' | 'step';
  emaDecay: number | null;
  microBatches?: number;
}

/** Trainer options for `stepsPerEpoch` steps an epoch (step decay at 66 % and 88 % of the run). */
export function trainerOptions(a: OptimArgs, stepsPerEpoch: number): TrainerOptions {
  const totalSteps = stepsPerEpoch * a.epochs;
  return {
    optimizer: {
      name: a.opt,
      momentum: a.momentum,
      nesterov: a.nesterov,
      weightDecay: a.weightDecay,
      clipGradNorm: a.clip,
    },
    schedule: {
      lr: a.lr,
      totalSteps,
      warmupSteps: Math.round(a.warmupEpochs * stepsPerEpoch),
      minLr: a.minLr,
      kind: a.schedule,
      milestones: [Math.round(totalSteps * 0.66), Math.round(totalSteps * 0.88)],
    },
    ema: a.emaDecay === null ? false : { decay: a.emaDecay },
    microBatches: a.microBatches,
  };
}

/** A module's state dict as host tensors (PyTorch layout and names). */
export async function moduleToRaw(model: Module): Promise<RawTensorMap> {
  const sd = model.stateDict();
  try {
    return await fromTfTensors(sd);
  } finally {
    tf.dispose(Object.values(sd));
  }
}

/** What every checkpoint's `state.json` holds besides the task's own fields. */
export interface CheckpointBase {
  epoch: number;
  step: number;
  emaUpdates: number;
  optimizerStep: number;
}

/** The common checkpoint fields after `epoch` epochs. */
export function checkpointBase(trainer: AnyTrainer, epoch: number): CheckpointBase {
  return {
    epoch,
    step: trainer.step,
    emaUpdates: trainer.ema?.updates ?? 0,
    optimizerStep: trainer.optimizer.stepCount,
  };
}

/** The checkpoint state in `OUT/checkpoint` when `--resume` is given and one is there (a note otherwise). */
export function readResumeState<S extends CheckpointBase>(dir: string, resume: boolean, io: CliIO): S | null {
  const path = join(dir, 'state.json');
  if (!resume) return null;
  if (!existsSync(path)) {
    io.stderr.write(`note: --resume: no checkpoint in ${dir}, starting fresh\n`);
    return null;
  }
  return JSON.parse(readFileSync(path, 'utf8')) as S;
}

/**
 * Writes model, EMA and optimiser state (safetensors) and `state.json` into `dir`. The new checkpoint is written
 * beside the old one and swapped in at the end, so a crash mid-write leaves the previous checkpoint whole.
 */
export async function saveCheckpoint(
  dir: string,
  trainer: AnyTrainer,
  state: CheckpointBase,
  meta: Record<string, string> = {},
): Promise<void> {
  const { writeSafetensorsFile } = await import('@effdet/weights/node');
  const next = `${dir}.next`;
  rmSync(next, { recursive: true, force: true });
  mkdirSync(next, { recursive: true });
  await writeSafetensorsFile(join(next, 'model.safetensors'), await moduleToRaw(trainer.model), meta);
  if (trainer.ema)
    await writeSafetensorsFile(join(next, 'ema.safetensors'), await moduleToRaw(trainer.ema.module), meta);
  const opt: RawTensorMap = Object.create(null);
  for (const [name, t] of Object.entries(trainer.optimizer.stateDict().tensors))
    opt[name] = {
      dtype: 'float32',
      shape: t.shape,
      data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    };
  await writeSafetensorsFile(join(next, 'optimizer.safetensors'), opt);
  writeFileSync(join(next, 'state.json'), `${JSON.stringify(state, null, 2)}\n`);
  const prev = `${dir}.prev`;
  rmSync(prev, { recursive: true, force: true });
  if (existsSync(dir)) renameSync(dir, prev);
  renameSync(next, dir);
  rmSync(prev, { recursive: true, force: true });
}

/** Loads a checkpoint written by `saveCheckpoint` into `trainer` (its model, EMA and optimiser). */
export async function loadCheckpoint(dir: string, trainer: AnyTrainer, state: CheckpointBase): Promise<void> {
  const { loadWeights } = await import('@effdet/weights/node');
  const { toFloat32 } = await import('@effdet/weights');
  loadRawStateDict(trainer.model, await loadWeights(join(dir, 'model.safetensors')));
  if (trainer.ema) {
    const ema = join(dir, 'ema.safetensors');
    if (existsSync(ema)) loadRawStateDict(trainer.ema.module, await loadWeights(ema));
    else trainer.ema.copyFrom(trainer.model);
  }
  const raw = await loadWeights(join(dir, 'optimizer.safetensors'));
  const tensors = Object.fromEntries(
    Object.entries(raw).map(([k, t]) => [k, { shape: [...t.shape], data: toFloat32(t) }]),
  );
  trainer.loadState({
    step: state.step,
    emaUpdates: state.emaUpdates,
    optimizer: { tensors, step: state.optimizerStep },
  });
}

/** The in-place progress line of an epoch (redrawn every 200 ms on a TTY, every 30 s in a log). */
export class EpochProgress {
  private readonly t0 = performance.now();
  private last = 0;

  constructor(
    private readonly io: CliIO,
    private readonly tty: boolean,
    private readonly epoch: number,
    private readonly epochs: number,
    private readonly steps: number,
  ) {}

  /** Seconds since the epoch began. */
  get seconds(): number {
    return (performance.now() - this.t0) / 1000;
  }

  /** After step `s` (0-based): `parts` is the loss breakdown text, `images` / `left` the images done / to go. */
  update(s: number, loss: number, parts: string, lr: number, images: number, left: number): void {
    const now = performance.now();
    const done = s === this.steps - 1;
    if (!done && now - this.last < (this.tty ? 200 : 30000)) return;
    this.last = now;
    const rate = images / ((now - this.t0) / 1000);
    const bar = '#'.repeat(Math.round((20 * (s + 1)) / this.steps)).padEnd(20, '-');
    const line =
      `epoch ${this.epoch}/${this.epochs} [${bar}] ${s + 1}/${this.steps} loss ${loss.toFixed(4)} (${parts}) ` +
      `lr ${lr.toExponential(2)} ${rate.toFixed(2)} img/s ETA ${formatDuration(left / rate)}`;
    this.io.stderr.write(this.tty ? `\r${line}\x1b[K` : `${line}\n`);
  }

  /** Ends the line on a TTY. */
  end(): void {
    if (this.tty) this.io.stderr.write('\n');
  }
}

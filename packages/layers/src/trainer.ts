/**
 * The task-independent half of a training step, shared by the detection and segmentation trainers: forward in
 * train mode (frozen BatchNorm layers kept in eval mode), loss, gradients (accumulated over micro-batches),
 * optimiser step with the learning-rate schedule, EMA update, and the resumable state. A task supplies its
 * loss (`computeLoss`), its batch check and how to cut a batch into micro-batches.
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from './errors.js';
import { registerTrainingKernels } from './grad.js';
import type { Module } from './module.js';
import { BatchNorm2d } from './norm.js';
import {
  type LrScheduleOptions,
  lrAt,
  ModelEma,
  Optimizer,
  type OptimizerOptions,
  trainableVariables,
} from './optim.js';

export interface TrainerOptions {
  optimizer?: OptimizerOptions;
  schedule: LrScheduleOptions;
  /** Model EMA (default decay 0.9998 with warm-up); `false` to train without. */
  ema?: { decay?: number; warmup?: boolean } | false;
  /**
   * Split every batch into this many micro-batches (default 1) and average their gradients, weighted by their
   * sizes, before one optimiser step: the memory of the largest micro-batch, BatchNorm statistics per
   * micro-batch (as gradient accumulation in PyTorch). For batches that do not fit the wasm heap.
   */
  microBatches?: number;
}

/** Everything needed to resume besides the weights (saved as state dicts): host arrays only. */
export interface TrainerState {
  step: number;
  optimizer: ReturnType<Optimizer['stateDict']>;
  emaUpdates: number;
}

/** What a task's loss gives for one (micro-)batch. */
export interface LossTerms<T extends string, C extends string = never> {
  /** The value to minimise. */
  total: tf.Scalar;
  /** Reported parts (averaged over micro-batches by their sizes). */
  terms: Record<T, tf.Scalar>;
  /** Host counts (summed over micro-batches), e.g. positive anchors. */
  counts?: Record<C, number>;
}

/** What one optimiser step reports: the loss, its parts (named by the task), the counts, lr and gradient norm. */
export interface StepReport {
  loss: number;
  lr: number;
  gradNorm: number;
  /** Optimiser steps taken, this one included. */
  step: number;
}

/** How the task wires itself into the trainer. */
export interface TrainerSetup<M extends Module> {
  /** The name used in error messages, e.g. `DetectionTrainer`. */
  name: string;
  /** Parameters with these names are not trained. */
  frozen?: (name: string) => boolean;
  /** BatchNorm layers under this module stay in eval mode while training (frozen statistics). */
  frozenBnUnder?: Module | null;
  /** A fresh model of the same architecture, for the EMA copy. */
  copy: () => M;
}

/** `M` the model, `B` a batch, `T` the names of the loss parts, `C` the names of the host counts. */
export abstract class Trainer<M extends Module, B, T extends string, C extends string = never> {
  readonly optimizer: Optimizer;
  readonly ema: ModelEma | null;
  readonly name: string;
  private readonly frozenBn: BatchNorm2d[];
  /** Optimiser steps taken (the schedule's position). */
  step = 0;

  constructor(
    readonly model: M,
    readonly options: TrainerOptions,
    setup: TrainerSetup<M>,
  ) {
    this.name = setup.name;
    check(
      options !== null && typeof options === 'object' && options.schedule !== undefined,
      () => `${this.name}: options.schedule ({lr, totalSteps, ...}) is required`,
    );
    lrAt(options.schedule, 0); // validates the schedule
    const mb = options.microBatches ?? 1;
    check(
      Number.isInteger(mb) && mb >= 1,
      () => `${this.name}: options.microBatches must be an integer >= 1, got ${String(mb)}`,
    );
    registerTrainingKernels();
    this.optimizer = new Optimizer(trainableVariables(model, setup.frozen), options.optimizer);
    this.frozenBn = setup.frozenBnUnder
      ? setup.frozenBnUnder
          .namedModules()
          .map(([, m]) => m)
          .filter((m): m is BatchNorm2d => m instanceof BatchNorm2d)
      : [];
    this.ema =
      options.ema === false
        ? null
        : new ModelEma(setup.copy(), model, options.ema?.decay ?? 0.9998, options.ema?.warmup ?? true);
  }

  /** Throws a clear error (naming `fn`) when `batch` is not a valid batch for the model. */
  protected abstract checkBatch(fn: string, batch: B): void;
  /** The number of images in `batch`. */
  protected abstract batchSize(batch: B): number;
  /** Images `start..end` of `batch` as a batch, and how to free what the cut made. */
  protected abstract sliceBatch(batch: B, start: number, end: number): { part: B; dispose: () => void };
  /** The loss of `batch` on `model` in its current mode (called inside a gradient function or a tidy). */
  protected abstract computeLoss(model: M, batch: B): LossTerms<T, C>;

  /** The model to evaluate and save: the EMA when there is one. */
  get evalModel(): M {
    return (this.ema?.module as M | undefined) ?? this.model;
  }

  /** The learning rate of the next step. */
  get lr(): number {
    return lrAt(this.options.schedule, this.step);
  }

  /** One optimiser step on `batch` (in `microBatches` parts when set). Leaves no tensors behind. */
  protected runStep(batch: B): StepReport & Record<T | C, number> {
    const fn = `${this.name}.trainStep`;
    this.checkBatch(fn, batch);
    const size = this.batchSize(batch);
    const parts = Math.min(this.options.microBatches ?? 1, size);
    this.model.train();
    for (const bn of this.frozenBn) bn.eval();
    let grads: Record<string, tf.Tensor> = {};
    try {
      const values: Record<string, number> = { loss: 0 };
      const counts: Record<string, number> = {};
      for (let k = 0; k < parts; k++) {
        const start = Math.floor((k * size) / parts);
        const end = Math.floor(((k + 1) * size) / parts);
        const weight = (end - start) / size;
        const cut = parts === 1 ? { part: batch, dispose: () => {} } : this.sliceBatch(batch, start, end);
        try {
          const r = this.gradients(cut.part);
          for (const [name, v] of Object.entries(r.values)) values[name] = (values[name] ?? 0) + weight * v;
          for (const [name, v] of Object.entries(r.counts)) counts[name] = (counts[name] ?? 0) + v;
          if (parts === 1) grads = r.grads;
          else {
            const summed: Record<string, tf.Tensor> = {};
            for (const [name, g] of Object.entries(r.grads)) {
              const prev = grads[name];
              summed[name] = tf.tidy(() => (prev ? tf.add(prev, tf.mul(g, weight)) : tf.mul(g, weight)));
            }
            tf.dispose([...Object.values(grads), ...Object.values(r.grads)]);
            grads = summed;
          }
        } finally {
          cut.dispose();
        }
      }
      const loss = values.loss as number;
      check(Number.isFinite(loss), () => `${fn}: the loss is ${loss} at step ${this.step} (lr too high?)`);
      const lr = this.lr;
      const { gradNorm } = this.optimizer.apply(grads, lr);
      this.ema?.update(this.model);
      this.step++;
      return { ...values, ...counts, loss, lr, gradNorm, step: this.step } as StepReport &
        Record<T | C, number>;
    } finally {
      tf.dispose(Object.values(grads));
    }
  }

  /** Loss values and gradients (the caller disposes them) of one (micro-)batch in the current mode. */
  private gradients(batch: B): {
    values: Record<string, number>;
    counts: Record<string, number>;
    grads: Record<string, tf.Tensor>;
  } {
    let kept: [string, tf.Scalar][] = [];
    let counts: Record<string, number> = {};
    let total: tf.Scalar | null = null;
    try {
      const r = tf.variableGrads(
        () => {
          const l = this.computeLoss(this.model, batch);
          kept = Object.entries<tf.Scalar>(l.terms).map(([n, t]) => [n, tf.keep(tf.clone(t))]);
          counts = (l.counts ?? {}) as Record<string, number>;
          return l.total;
        },
        this.optimizer.params.map((p) => p.variable),
      );
      total = r.value;
      const values: Record<string, number> = { loss: total.dataSync()[0] as number };
      for (const [n, t] of kept) values[n] = t.dataSync()[0] as number;
      return { values, counts, grads: r.grads };
    } finally {
      tf.dispose(kept.map(([, t]) => t));
      total?.dispose();
    }
  }

  /** The loss of `batch` without training (eval mode: running statistics), on `model` (default the eval model). */
  protected runEvaluateLoss(batch: B, model: M): { loss: number } & Record<T, number> {
    this.checkBatch(`${this.name}.evaluateLoss`, batch);
    const wasTraining = model.training;
    model.eval();
    try {
      return tf.tidy(() => {
        const l = this.computeLoss(model, batch);
        const out: Record<string, number> = { loss: l.total.dataSync()[0] as number };
        for (const [n, t] of Object.entries<tf.Scalar>(l.terms)) out[n] = t.dataSync()[0] as number;
        return out;
      }) as unknown as { loss: number } & Record<T, number>;
    } finally {
      if (wasTraining) model.train();
    }
  }

  /** Resume state (the model and EMA weights are saved separately, as state dicts). */
  state(): TrainerState {
    return { step: this.step, optimizer: this.optimizer.stateDict(), emaUpdates: this.ema?.updates ?? 0 };
  }

  loadState(state: TrainerState): void {
    check(
      state !== null && typeof state === 'object' && Number.isInteger(state.step) && state.step >= 0,
      () => `${this.name}.loadState: state.step must be an integer >= 0, got ${String(state?.step)}`,
    );
    this.optimizer.loadStateDict(state.optimizer);
    this.step = state.step;
    if (this.ema) this.ema.updates = state.emaUpdates;
  }

  /** Frees the optimiser state and the EMA copy (not the model). */
  dispose(): void {
    this.optimizer.dispose();
    this.ema?.module.dispose();
  }
}

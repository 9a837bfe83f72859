/**
 * Optimisers, learning-rate schedules and the model EMA for training, with PyTorch's update rules
 * (so hyper-parameters from timm / effdet recipes mean the same thing here).
 *
 * - `Optimizer`: SGD with momentum (optionally Nesterov; weight decay added to the gradient, as
 *   `torch.optim.SGD`) or AdamW (decoupled weight decay, bias-corrected moments, as `torch.optim.AdamW`);
 *   weight decay skipped for 1-D parameters and biases (timm's `param_groups_weight_decay`); optional
 *   gradient clipping by global norm (`torch.nn.utils.clip_grad_norm_`).
 * - `lrAt`: linear warm-up then cosine (to `minLr`) or step decay, per optimiser step.
 * - `ModelEma`: exponential moving average of every parameter and buffer, with TF's warm-up
 *   `decay_t = min(decay, (1 + t) / (10 + t))` (google/automl's `ExponentialMovingAverage(num_updates)`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from './errors.js';
import type { Module } from './module.js';

export type OptimizerName = 'sgd' | 'adamw';

export interface OptimizerOptions {
  /** 'sgd' (default) or 'adamw'. */
  name?: OptimizerName;
  /** Momentum of SGD. Default 0.9. */
  momentum?: number;
  nesterov?: boolean;
  /** Default 4e-5 for SGD (effdet's recipe), 1e-2 for AdamW (PyTorch's default). */
  weightDecay?: number;
  /** AdamW betas. Default [0.9, 0.999]. */
  betas?: [number, number];
  /** AdamW epsilon. Default 1e-8. */
  eps?: number;
  /** Clip gradients to this global L2 norm (effdet trains with 10). 0 / undefined: no clipping. */
  clipGradNorm?: number;
}

export interface NamedVariable {
  name: string;
  variable: tf.Variable;
  /** Weight decay applies (false for 1-D tensors and biases). */
  decay: boolean;
}

/** Trainable parameters of a module as `NamedVariable`s, skipping names matched by `frozen`. */
export function trainableVariables(model: Module, frozen?: (name: string) => boolean): NamedVariable[] {
  const out: NamedVariable[] = [];
  for (const [name, p] of model.namedParameters()) {
    if (!p.trainable || frozen?.(name)) continue;
    out.push({ name, variable: p.value, decay: p.shape.length > 1 && !name.endsWith('.bias') });
  }
  return out;
}

export interface StepResult {
  /** Global gradient norm before clipping. */
  gradNorm: number;
}

/** One optimiser over a fixed list of variables; its state (moments, step) can be saved and restored. */
export class Optimizer {
  readonly name: OptimizerName;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly clipGradNorm: number;
  /** Optimiser steps taken. */
  stepCount = 0;
  private readonly slots = new Map<string, tf.Variable[]>();
  /** Parameters whose momentum buffer holds a value (PyTorch initialises it on a parameter's first update). */
  private readonly moved = new Set<string>();

  constructor(
    readonly params: readonly NamedVariable[],
    options: OptimizerOptions = {},
  ) {
    const name = options.name ?? 'sgd';
    check(
      name === 'sgd' || name === 'adamw',
      () => `Optimizer: name must be 'sgd' or 'adamw', got '${String(name)}'`,
    );
    this.name = name;
    this.momentum = options.momentum ?? 0.9;
    this.nesterov = options.nesterov ?? false;
    this.weightDecay = options.weightDecay ?? (name === 'sgd' ? 4e-5 : 1e-2);
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.clipGradNorm = options.clipGradNorm ?? 0;
    for (const [k, v] of Object.entries({
      momentum: this.momentum,
      weightDecay: this.weightDecay,
      eps: this.eps,
      clipGradNorm: this.clipGradNorm,
    }))
      check(Number.isFinite(v) && v >= 0, () => `Optimizer: ${k} must be a finite number >= 0, got ${v}`);
    check(
      !this.nesterov || (name === 'sgd' && this.momentum > 0),
      () => 'Optimizer: nesterov needs SGD with momentum > 0',
    );
    const names = new Set<string>();
    for (const p of params) {
      check(!names.has(p.name), () => `Optimizer: parameter '${p.name}' is listed twice`);
      names.add(p.name);
    }
  }

  private slotsOf(p: NamedVariable): tf.Variable[] {
    let s = this.slots.get(p.name);
    if (!s) {
      const n = this.name === 'sgd' ? (this.momentum > 0 ? 1 : 0) : 2;
      s = Array.from({ length: n }, () => {
        const zeros = tf.zerosLike(p.variable);
        const v = tf.variable(zeros, false);
        zeros.dispose(); // the variable holds its own reference to the data
        return v;
      });
      this.slots.set(p.name, s);
    }
    return s;
  }

  /**
   * Applies one update from `grads` (by variable name, as `tf.variableGrads` returns them; missing entries
   * are skipped) at learning rate `lr`. Does not dispose `grads`.
   */
  apply(grads: Record<string, tf.Tensor>, lr: number): StepResult {
    check(
      Number.isFinite(lr) && lr >= 0,
      () => `Optimizer.apply: lr must be a finite number >= 0, got ${lr}`,
    );
    const present = this.params.filter((p) => grads[p.variable.name] !== undefined);
    const norm = tf.tidy(() =>
      present.length === 0
        ? tf.scalar(0)
        : tf.sqrt(tf.addN(present.map((p) => tf.sum(tf.square(grads[p.variable.name] as tf.Tensor))))),
    );
    const gradNorm = norm.dataSync()[0] as number;
    norm.dispose();
    check(
      Number.isFinite(gradNorm),
      () => `Optimizer.apply: the gradient norm is ${gradNorm} (a NaN or Inf loss?)`,
    );
    const scale =
      this.clipGradNorm > 0 && gradNorm > this.clipGradNorm ? this.clipGradNorm / (gradNorm + 1e-6) : 1;
    this.stepCount++;
    const t = this.stepCount;
    const [b1, b2] = this.betas;
    for (const p of present) {
      const slots = this.slotsOf(p);
      const wd = p.decay ? this.weightDecay : 0;
      tf.tidy(() => {
        let g = grads[p.variable.name] as tf.Tensor;
        if (scale !== 1) g = tf.mul(g, scale);
        const w = p.variable;
        if (this.name === 'sgd') {
          if (wd > 0) g = tf.add(g, tf.mul(w, wd));
          if (this.momentum > 0) {
            const buf = slots[0] as tf.Variable;
            // torch: the first step initialises the buffer with the gradient itself
            const nb = this.moved.has(p.name) ? tf.add(tf.mul(buf, this.momentum), g) : g;
            buf.assign(nb);
            this.moved.add(p.name);
            g = this.nesterov ? tf.add(g, tf.mul(nb, this.momentum)) : nb;
          }
          w.assign(tf.sub(w, tf.mul(g, lr)));
        } else {
          const [m, v] = slots as [tf.Variable, tf.Variable];
          const nm = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
          const nv = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2));
          m.assign(nm);
          v.assign(nv);
          const c1 = 1 - b1 ** t;
          const c2 = 1 - b2 ** t;
          const update = tf.div(tf.div(nm, c1), tf.add(tf.sqrt(tf.div(nv, c2)), this.eps));
          const decayed = wd > 0 ? tf.mul(w, 1 - lr * wd) : w;
          w.assign(tf.sub(decayed, tf.mul(update, lr)));
        }
      });
    }
    return { gradNorm };
  }

  /** The optimiser state as host arrays: `slot.<param>.<i>` tensors plus the step count. */
  stateDict(): { tensors: Record<string, { shape: number[]; data: Float32Array }>; step: number } {
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [name, slots] of this.slots)
      slots.forEach((s, i) => {
        tensors[`slot.${name}.${i}`] = { shape: [...s.shape], data: s.dataSync() as Float32Array };
      });
    return { tensors, step: this.stepCount };
  }

  /** Restores `stateDict()` output; shapes must match the current parameters. */
  loadStateDict(state: {
    tensors: Record<string, { shape: readonly number[]; data: Float32Array }>;
    step: number;
  }): void {
    const byName = new Map(this.params.map((p) => [p.name, p]));
    for (const key of Object.keys(state.tensors)) {
      const m = /^slot\.(.+)\.(\d+)$/.exec(key);
      check(
        m !== null && byName.has(m[1] as string),
        () => `Optimizer.loadStateDict: unknown entry '${key}'`,
      );
    }
    for (const p of this.params) {
      const n = this.name === 'sgd' ? (this.momentum > 0 ? 1 : 0) : 2;
      for (let i = 0; i < n; i++) {
        const e = state.tensors[`slot.${p.name}.${i}`];
        if (!e) continue;
        check(
          e.shape.length === p.variable.shape.length && e.shape.every((d, j) => d === p.variable.shape[j]),
          () =>
            `Optimizer.loadStateDict: '${p.name}' slot ${i} has shape [${e.shape}], the parameter [${p.variable.shape}]`,
        );
        const slots = this.slotsOf(p);
        const t = tf.tensor(e.data, [...e.shape]);
        (slots[i] as tf.Variable).assign(t);
        t.dispose();
        this.moved.add(p.name);
      }
    }
    this.stepCount = state.step;
  }

  dispose(): void {
    for (const s of this.slots.values()) tf.dispose(s);
    this.slots.clear();
  }
}

export interface LrScheduleOptions {
  /** Peak learning rate. */
  lr: number;
  /** Total optimiser steps of the run. */
  totalSteps: number;
  /** Linear warm-up steps from `warmupLr` to `lr`. Default 0. */
  warmupSteps?: number;
  /** Default lr / 10 (effdet's warmup_lr is 1e-4 for lr 0.09 ... a small start). */
  warmupLr?: number;
  /** 'cosine' (default) or 'step'. */
  kind?: 'cosine' | 'step';
  /** Final learning rate of the cosine. Default 0. */
  minLr?: number;
  /** Step decay: steps at which lr is multiplied by `gamma`. */
  milestones?: readonly number[];
  /** Default 0.1. */
  gamma?: number;
}

/** The learning rate at optimiser step `step` (0-based). */
export function lrAt(o: LrScheduleOptions, step: number): number {
  check(Number.isFinite(o.lr) && o.lr > 0, () => `lrAt: lr must be > 0, got ${o.lr}`);
  check(
    Number.isInteger(o.totalSteps) && o.totalSteps > 0,
    () => `lrAt: totalSteps must be a positive integer, got ${o.totalSteps}`,
  );
  const warm = o.warmupSteps ?? 0;
  const warmLr = o.warmupLr ?? o.lr / 10;
  if (step < warm) return warmLr + ((o.lr - warmLr) * step) / warm;
  if ((o.kind ?? 'cosine') === 'step') {
    const passed = (o.milestones ?? []).filter((m) => step >= m).length;
    return o.lr * (o.gamma ?? 0.1) ** passed;
  }
  const minLr = o.minLr ?? 0;
  const span = Math.max(1, o.totalSteps - warm);
  const progress = Math.min(1, (step - warm) / span);
  return minLr + 0.5 * (o.lr - minLr) * (1 + Math.cos(Math.PI * progress));
}

/**
 * An exponential moving average of a model's parameters and buffers, kept in a second instance of the same
 * network (`ema.module`), used for evaluation and saving.
 */
export class ModelEma {
  updates = 0;

  constructor(
    readonly module: Module,
    source: Module,
    readonly decay = 0.9998,
    /** TF's `min(decay, (1 + t) / (10 + t))` warm-up. Default true. */
    readonly warmup = true,
  ) {
    check(decay > 0 && decay < 1, () => `ModelEma: decay must be in (0, 1), got ${decay}`);
    this.copyFrom(source);
    module.eval();
  }

  /** The decay used for update number `t` (1-based). */
  decayAt(t: number): number {
    return this.warmup ? Math.min(this.decay, (1 + t) / (10 + t)) : this.decay;
  }

  /** Sets the average to `source`'s current values (names and shapes must match). */
  copyFrom(source: Module): void {
    const src = new Map(source.namedState());
    for (const [name, p] of this.module.namedState()) {
      const s = src.get(name);
      check(s !== undefined, () => `ModelEma: the source has no '${name}'`);
      p.value.assign(s.value);
    }
  }

  /** One EMA step toward `source`. */
  update(source: Module): void {
    this.updates++;
    const d = this.decayAt(this.updates);
    const src = new Map(source.namedState());
    for (const [name, p] of this.module.namedState()) {
      const s = src.get(name) as { value: tf.Variable };
      tf.tidy(() => p.value.assign(tf.add(tf.mul(p.value, d), tf.mul(s.value, 1 - d))));
    }
  }
}

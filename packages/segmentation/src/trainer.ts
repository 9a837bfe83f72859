/**
 * The training step of a segmentation model (U-Net, DeepLabV3, DeepLabV3+): forward in train mode (BatchNorm
 * batch statistics with running-stat updates), per-pixel cross-entropy (+ optional Dice) with an ignore index,
 * gradients, optimiser step, EMA update. The data pipeline and the epoch loop live in the CLI
 * (`effdet train --task segment`).
 */
import {
  BatchNorm2d,
  check,
  type LrScheduleOptions,
  lrAt,
  ModelEma,
  Optimizer,
  type OptimizerOptions,
  registerTrainingKernels,
  shapeStr,
  trainableVariables,
} from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import { createSegmentationModel, type SegmentationOptions } from './create.js';
import { crossEntropyLoss, diceLoss } from './losses.js';
import type { SegmentationModel } from './model.js';

export interface SegmentationLossOptions {
  /** Target value that contributes nothing (padding, unlabelled pixels). Default 255. */
  ignoreIndex?: number;
  /** Weight of smp's multiclass Dice loss added to the cross-entropy (default 0: cross-entropy only). */
  diceWeight?: number;
  /** Cross-entropy weight per class (PyTorch `weight`). */
  classWeights?: number[];
  /** Cross-entropy label smoothing (default 0). */
  labelSmoothing?: number;
}

export interface SegmentationTrainerOptions {
  optimizer?: OptimizerOptions;
  schedule: LrScheduleOptions;
  /** Model EMA (default decay 0.9998 with warm-up); `false` to train without. */
  ema?: { decay?: number; warmup?: boolean } | false;
  loss?: SegmentationLossOptions;
  /** Train only the decoder and heads (the encoder's parameters and BatchNorm statistics stay as loaded). */
  freezeEncoder?: boolean;
  /** Check every target's class ids each step (default true; a caller that checked its data can skip it). */
  validateTargets?: boolean;
}

/**
 * One batch: normalised images `[B, H, W, C]` (the model's `mean` / `std`) and their class-id masks
 * `[B, H, W]` (int32 or float32; the ignore index marks pixels that do not count).
 */
export interface SegmentationBatch {
  images: tf.Tensor4D;
  masks: tf.Tensor3D;
}

export interface SegmentationLossValues {
  loss: number;
  crossEntropy: number;
  /** The Dice loss (0 when `diceWeight` is 0). */
  dice: number;
}

export interface SegmentationStepResult extends SegmentationLossValues {
  lr: number;
  gradNorm: number;
  /** Optimiser steps taken, this one included. */
  step: number;
}

/** Everything needed to resume besides the weights: host arrays only. */
export interface SegmentationTrainerState {
  step: number;
  optimizer: ReturnType<Optimizer['stateDict']>;
  emaUpdates: number;
}

export class SegmentationTrainer {
  readonly optimizer: Optimizer;
  readonly ema: ModelEma | null;
  readonly ignoreIndex: number;
  readonly diceWeight: number;
  private readonly frozenBn: BatchNorm2d[];
  /** Optimiser steps taken (the schedule's position). */
  step = 0;

  constructor(
    readonly model: SegmentationModel,
    readonly options: SegmentationTrainerOptions,
  ) {
    const fn = 'SegmentationTrainer';
    check(
      options !== null && typeof options === 'object' && options.schedule !== undefined,
      () => `${fn}: options.schedule ({lr, totalSteps, ...}) is required`,
    );
    lrAt(options.schedule, 0); // validates the schedule
    check(
      model !== null &&
        typeof model === 'object' &&
        typeof model.forwardLogits === 'function' &&
        !!model.options,
      () => `${fn}: model must be a Unet, DeepLabV3 or DeepLabV3Plus, got ${String(model)}`,
    );
    check(
      model.classes > 1,
      () => `${fn}: the model has ${model.classes} output channel(s); multiclass training needs at least 2`,
    );
    const loss = options.loss ?? {};
    this.ignoreIndex = loss.ignoreIndex ?? 255;
    check(
      Number.isInteger(this.ignoreIndex) && (this.ignoreIndex < 0 || this.ignoreIndex >= model.classes),
      () =>
        `${fn}: loss.ignoreIndex must be an integer outside 0..${model.classes - 1}, got ${loss.ignoreIndex}`,
    );
    this.diceWeight = loss.diceWeight ?? 0;
    check(
      Number.isFinite(this.diceWeight) && this.diceWeight >= 0,
      () => `${fn}: loss.diceWeight must be a number >= 0, got ${loss.diceWeight}`,
    );
    registerTrainingKernels();
    const frozen = options.freezeEncoder ? (n: string) => n.startsWith('encoder.') : undefined;
    this.optimizer = new Optimizer(trainableVariables(model, frozen), options.optimizer);
    this.frozenBn = options.freezeEncoder
      ? model.encoder
          .namedModules()
          .map(([, m]) => m)
          .filter((m): m is BatchNorm2d => m instanceof BatchNorm2d)
      : [];
    this.ema =
      options.ema === false
        ? null
        : new ModelEma(
            createSegmentationModel(model.arch, model.options as SegmentationOptions),
            model,
            options.ema?.decay ?? 0.9998,
            options.ema?.warmup ?? true,
          );
  }

  /** The model to evaluate and save: the EMA when there is one. */
  get evalModel(): SegmentationModel {
    return (this.ema?.module as SegmentationModel | undefined) ?? this.model;
  }

  /** The learning rate of the next step. */
  get lr(): number {
    return lrAt(this.options.schedule, this.step);
  }

  private checkBatch(fn: string, batch: SegmentationBatch): void {
    check(
      batch !== null &&
        typeof batch === 'object' &&
        batch.images instanceof tf.Tensor &&
        batch.masks instanceof tf.Tensor,
      () => `${fn}: batch must be {images, masks} tensors, got ${String(batch)}`,
    );
    const s = batch.images.shape;
    const m = batch.masks.shape;
    check(
      batch.images.rank === 4 && s[3] === this.model.inChannels,
      () => `${fn}: images must be [B, H, W, ${this.model.inChannels}], got ${shapeStr(s)}`,
    );
    check(
      batch.masks.rank === 3 && m[0] === s[0] && m[1] === s[1] && m[2] === s[2],
      () =>
        `${fn}: masks must be [${s[0]}, ${s[1]}, ${s[2]}] (class ids per image pixel), got ${shapeStr(m)}`,
    );
    if (!(this.options.validateTargets ?? true)) return;
    const ids = batch.masks.dataSync();
    const C = this.model.classes;
    for (let i = 0; i < ids.length; i++) {
      const v = ids[i] as number;
      if ((Number.isInteger(v) && v >= 0 && v < C) || v === this.ignoreIndex) continue;
      const hw = m[1] * m[2];
      check(
        false,
        () =>
          `${fn}: masks must hold class ids in [0, ${C}) or the ignore index ${this.ignoreIndex}, ` +
          `got ${v} in image ${Math.floor(i / hw)} at x ${(i % hw) % m[2]}, y ${Math.floor((i % hw) / m[2])}`,
      );
    }
  }

  /** Loss parts as scalars (call inside a tidy or a gradient function). */
  private lossParts(logits: tf.Tensor4D, masks: tf.Tensor3D): [tf.Scalar, tf.Scalar, tf.Scalar] {
    const o = this.options.loss ?? {};
    // the masks were checked by checkBatch
    const ce = crossEntropyLoss(logits, masks, {
      ignoreIndex: this.ignoreIndex,
      classWeights: o.classWeights,
      labelSmoothing: o.labelSmoothing,
      validate: false,
    }) as tf.Scalar;
    if (this.diceWeight === 0) return [ce, ce, tf.scalar(0)];
    const dice = diceLoss(logits, masks, {
      mode: 'multiclass',
      ignoreIndex: this.ignoreIndex,
      validate: false,
    }) as tf.Scalar;
    return [tf.add(ce, tf.mul(dice, this.diceWeight)), ce, dice];
  }

  /** One optimiser step on `batch`. Leaves no tensors behind. */
  trainStep(batch: SegmentationBatch): SegmentationStepResult {
    const fn = 'SegmentationTrainer.trainStep';
    this.checkBatch(fn, batch);
    this.model.train();
    for (const bn of this.frozenBn) bn.eval();
    let parts: tf.Scalar[] = [];
    let value: tf.Scalar | null = null;
    let grads: Record<string, tf.Tensor> = {};
    try {
      const r = tf.variableGrads(
        () => {
          const [total, ce, dice] = this.lossParts(this.model.forwardLogits(batch.images), batch.masks);
          parts = [tf.keep(ce === total ? tf.clone(ce) : ce), tf.keep(dice)];
          return total;
        },
        this.optimizer.params.map((p) => p.variable),
      );
      value = r.value;
      grads = r.grads;
      const [loss, crossEntropy, dice] = [value, ...parts].map((t) => t.dataSync()[0] as number) as [
        number,
        number,
        number,
      ];
      check(Number.isFinite(loss), () => `${fn}: the loss is ${loss} at step ${this.step} (lr too high?)`);
      const lr = this.lr;
      const { gradNorm } = this.optimizer.apply(grads, lr);
      this.ema?.update(this.model);
      this.step++;
      return { loss, crossEntropy, dice, lr, gradNorm, step: this.step };
    } finally {
      tf.dispose([...parts, ...Object.values(grads)]);
      value?.dispose();
    }
  }

  /** The loss of `batch` without training (eval mode), on `model` (default the EMA / eval model). */
  evaluateLoss(batch: SegmentationBatch, model: SegmentationModel = this.evalModel): SegmentationLossValues {
    this.checkBatch('SegmentationTrainer.evaluateLoss', batch);
    const wasTraining = model.training;
    model.eval();
    try {
      const [loss, crossEntropy, dice] = tf.tidy(() =>
        this.lossParts(model.forwardLogits(batch.images), batch.masks).map((t) => t.dataSync()[0] as number),
      ) as [number, number, number];
      return { loss, crossEntropy, dice };
    } finally {
      if (wasTraining) model.train();
    }
  }

  /** Resume state (the model and EMA weights are saved separately, as state dicts). */
  state(): SegmentationTrainerState {
    return { step: this.step, optimizer: this.optimizer.stateDict(), emaUpdates: this.ema?.updates ?? 0 };
  }

  loadState(state: SegmentationTrainerState): void {
    check(
      state !== null && typeof state === 'object' && Number.isInteger(state.step) && state.step >= 0,
      () => `SegmentationTrainer.loadState: state.step must be an integer >= 0, got ${String(state?.step)}`,
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

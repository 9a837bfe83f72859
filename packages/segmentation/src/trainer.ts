/**
 * The training step of a segmentation model (U-Net, DeepLabV3, DeepLabV3+): forward in train mode (BatchNorm
 * batch statistics with running-stat updates), per-pixel cross-entropy (+ optional Dice) with an ignore index,
 * gradients, optimiser step, EMA update. The data pipeline and the epoch loop live in the CLI
 * (`effdet train --task segment`).
 */
import {
  check,
  type LossTerms,
  type StepReport,
  shapeStr,
  Trainer,
  type TrainerOptions,
  type TrainerState,
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

export interface SegmentationTrainerOptions extends TrainerOptions {
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

export interface SegmentationStepResult extends SegmentationLossValues, StepReport {}

/** Everything needed to resume besides the weights: host arrays only. */
export type SegmentationTrainerState = TrainerState;

export class SegmentationTrainer extends Trainer<
  SegmentationModel,
  SegmentationBatch,
  'crossEntropy' | 'dice'
> {
  readonly ignoreIndex: number;
  readonly diceWeight: number;
  declare readonly options: SegmentationTrainerOptions;

  constructor(model: SegmentationModel, options: SegmentationTrainerOptions) {
    const fn = 'SegmentationTrainer';
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
    const loss = options?.loss ?? {};
    const ignoreIndex = loss.ignoreIndex ?? 255;
    check(
      Number.isInteger(ignoreIndex) && (ignoreIndex < 0 || ignoreIndex >= model.classes),
      () =>
        `${fn}: loss.ignoreIndex must be an integer outside 0..${model.classes - 1}, got ${loss.ignoreIndex}`,
    );
    const diceWeight = loss.diceWeight ?? 0;
    check(
      Number.isFinite(diceWeight) && diceWeight >= 0,
      () => `${fn}: loss.diceWeight must be a number >= 0, got ${loss.diceWeight}`,
    );
    super(model, options, {
      name: fn,
      frozen: options?.freezeEncoder ? (n: string) => n.startsWith('encoder.') : undefined,
      frozenBnUnder: options?.freezeEncoder ? model.encoder : null,
      copy: () => createSegmentationModel(model.arch, model.options as SegmentationOptions),
    });
    this.ignoreIndex = ignoreIndex;
    this.diceWeight = diceWeight;
  }

  protected batchSize(batch: SegmentationBatch): number {
    return batch.images.shape[0];
  }

  protected sliceBatch(batch: SegmentationBatch, start: number, end: number) {
    const n = end - start;
    const images = tf.slice(batch.images, [start, 0, 0, 0], [n, -1, -1, -1]);
    const masks = tf.slice(batch.masks, [start, 0, 0], [n, -1, -1]);
    return { part: { images, masks }, dispose: () => tf.dispose([images, masks]) };
  }

  protected checkBatch(fn: string, batch: SegmentationBatch): void {
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

  /** Cross-entropy (+ Dice) of the logits; the masks were checked by checkBatch. */
  protected computeLoss(
    model: SegmentationModel,
    batch: SegmentationBatch,
  ): LossTerms<'crossEntropy' | 'dice'> {
    const o = this.options.loss ?? {};
    const logits = model.forwardLogits(batch.images);
    const ce = crossEntropyLoss(logits, batch.masks, {
      ignoreIndex: this.ignoreIndex,
      classWeights: o.classWeights,
      labelSmoothing: o.labelSmoothing,
      validate: false,
    }) as tf.Scalar;
    if (this.diceWeight === 0) return { total: ce, terms: { crossEntropy: ce, dice: tf.scalar(0) } };
    const dice = diceLoss(logits, batch.masks, {
      mode: 'multiclass',
      ignoreIndex: this.ignoreIndex,
      validate: false,
    }) as tf.Scalar;
    return { total: tf.add(ce, tf.mul(dice, this.diceWeight)), terms: { crossEntropy: ce, dice } };
  }

  /** One optimiser step on `batch` (in `microBatches` parts when set). Leaves no tensors behind. */
  trainStep(batch: SegmentationBatch): SegmentationStepResult {
    return this.runStep(batch);
  }

  /** The loss of `batch` without training (eval mode), on `model` (default the EMA / eval model). */
  evaluateLoss(batch: SegmentationBatch, model: SegmentationModel = this.evalModel): SegmentationLossValues {
    return this.runEvaluateLoss(batch, model);
  }
}

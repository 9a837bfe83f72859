/**
 * The training step of an EfficientDet: label anchors (host), forward in train mode (BatchNorm batch
 * statistics with running-stat updates, drop-path), loss, gradients, optimiser step, EMA update.
 * Anchors, labelling and loss stay outside the network (`labeler.ts`, `loss.ts`); the data pipeline and
 * the epoch loop live in the CLI (`effdet train`).
 */
import {
  check,
  type LossTerms,
  type StepReport,
  Trainer,
  type TrainerOptions,
  type TrainerState,
} from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import { Anchors } from './anchors.js';
import { AnchorLabeler, type BoxesInput, labelsToTensors } from './labeler.js';
import { type DetectionLossOptions, detectionLoss, lossOptionsFromConfig } from './loss.js';
import { createEfficientDet, type EfficientDet } from './model.js';

export type { TrainerState };

export interface DetectionTrainerOptions extends TrainerOptions {
  /** Train only the BiFPN and heads. */
  freezeBackbone?: boolean;
  /** Keep the backbone's BatchNorm layers in eval mode (running statistics, no updates). */
  freezeBackboneBn?: boolean;
  /** Loss options; default from the model config. */
  loss?: DetectionLossOptions;
  /** Anchor matching IoU threshold. Default 0.5. */
  matchThreshold?: number;
}

/** One batch: normalised images `[B, H, W, 3]` at the model's input size, boxes y1,x1,y2,x2 (input pixels), 1-based classes. */
export interface DetectionBatch {
  images: tf.Tensor4D;
  boxes: readonly BoxesInput[];
  classes: readonly ArrayLike<number>[];
}

export interface TrainStepResult extends StepReport {
  classLoss: number;
  boxLoss: number;
  /** Positive anchors in the batch. */
  numPositives: number;
}

export interface LossValues {
  loss: number;
  classLoss: number;
  boxLoss: number;
}

export class DetectionTrainer extends Trainer<
  EfficientDet,
  DetectionBatch,
  'classLoss' | 'boxLoss',
  'numPositives'
> {
  readonly labeler: AnchorLabeler;
  readonly lossOptions: DetectionLossOptions;
  declare readonly options: DetectionTrainerOptions;
  private readonly anchors: Anchors;

  constructor(model: EfficientDet, options: DetectionTrainerOptions) {
    super(model, options, {
      name: 'DetectionTrainer',
      frozen: options?.freezeBackbone ? (n: string) => n.startsWith('backbone.') : undefined,
      frozenBnUnder: options?.freezeBackbone || options?.freezeBackboneBn ? model.backbone : null,
      copy: () => createEfficientDet(model.config),
    });
    const cfg = model.config;
    this.anchors = Anchors.fromConfig(cfg);
    this.labeler = new AnchorLabeler(this.anchors, cfg.numClasses, {
      matchThreshold: options.matchThreshold,
    });
    this.lossOptions = options.loss ?? lossOptionsFromConfig(cfg);
  }

  protected checkBatch(fn: string, batch: DetectionBatch): void {
    check(
      batch !== null && typeof batch === 'object' && batch.images instanceof tf.Tensor,
      () => `${fn}: batch must be {images, boxes, classes}, got ${String(batch)}`,
    );
    const [h, w] = this.model.config.imageSize;
    const s = batch.images.shape;
    check(
      batch.images.rank === 4 && s[1] === h && s[2] === w && s[3] === 3,
      () => `${fn}: images must be [B, ${h}, ${w}, 3] (the model's input size), got [${s}]`,
    );
    check(
      Array.isArray(batch.boxes) &&
        Array.isArray(batch.classes) &&
        batch.boxes.length === s[0] &&
        batch.classes.length === s[0],
      () =>
        `${fn}: need one boxes and one classes entry per image (${s[0]}), got ${batch.boxes?.length} and ${batch.classes?.length}`,
    );
  }

  protected batchSize(batch: DetectionBatch): number {
    return batch.images.shape[0];
  }

  protected sliceBatch(batch: DetectionBatch, start: number, end: number) {
    const images = tf.slice(batch.images, [start, 0, 0, 0], [end - start, -1, -1, -1]);
    return {
      part: { images, boxes: batch.boxes.slice(start, end), classes: batch.classes.slice(start, end) },
      dispose: () => images.dispose(),
    };
  }

  /**
   * Anchor labels (host), forward, focal + Huber loss. The target tensors are freed by the caller's scope (the
   * gradient function or tidy) once the backward pass no longer needs them.
   */
  protected computeLoss(
    model: EfficientDet,
    batch: DetectionBatch,
  ): LossTerms<'classLoss' | 'boxLoss', 'numPositives'> {
    const labels = this.labeler.labelBatch(batch.boxes, batch.classes);
    const l = detectionLoss(model.forward(batch.images), labelsToTensors(labels), this.lossOptions);
    return {
      total: l.loss,
      terms: { classLoss: l.classLoss, boxLoss: l.boxLoss },
      counts: { numPositives: labels.numPositives.reduce((a, b) => a + b, 0) },
    };
  }

  /** One optimiser step on `batch` (in `microBatches` parts when set). Leaves no tensors behind. */
  trainStep(batch: DetectionBatch): TrainStepResult {
    return this.runStep(batch);
  }

  /** The loss of `batch` without training (eval mode: running statistics), on `model` (default the EMA / eval model). */
  evaluateLoss(batch: DetectionBatch, model: EfficientDet = this.evalModel): LossValues {
    return this.runEvaluateLoss(batch, model);
  }

  override dispose(): void {
    super.dispose();
    this.anchors.dispose();
  }
}

/**
 * The training step of an EfficientDet: label anchors (host), forward in train mode (BatchNorm batch
 * statistics with running-stat updates, drop-path), loss, gradients, optimiser step, EMA update.
 * Anchors, labelling and loss stay outside the network (`labeler.ts`, `loss.ts`); the data pipeline and
 * the epoch loop live in the CLI (`effdet train`).
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
  trainableVariables,
} from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import { Anchors } from './anchors.js';
import { AnchorLabeler, type BoxesInput, disposeLabelTensors, labelsToTensors } from './labeler.js';
import { type DetectionLossOptions, detectionLoss, lossOptionsFromConfig } from './loss.js';
import { createEfficientDet, type EfficientDet } from './model.js';

export interface DetectionTrainerOptions {
  optimizer?: OptimizerOptions;
  schedule: LrScheduleOptions;
  /** Model EMA (default decay 0.9998 with warm-up); `false` to train without. */
  ema?: { decay?: number; warmup?: boolean } | false;
  /** Train only the BiFPN and heads. */
  freezeBackbone?: boolean;
  /** Keep the backbone's BatchNorm layers in eval mode (running statistics, no updates). */
  freezeBackboneBn?: boolean;
  /** Loss options; default from the model config. */
  loss?: DetectionLossOptions;
  /** Anchor matching IoU threshold. Default 0.5. */
  matchThreshold?: number;
  /**
   * Split every batch into this many micro-batches (default 1) and average their gradients, weighted by their
   * sizes, before one optimiser step: the memory of the largest micro-batch, BatchNorm statistics per
   * micro-batch (as gradient accumulation in PyTorch). For batches that do not fit the wasm heap.
   */
  microBatches?: number;
}

/** One batch: normalised images `[B, H, W, 3]` at the model's input size, boxes y1,x1,y2,x2 (input pixels), 1-based classes. */
export interface DetectionBatch {
  images: tf.Tensor4D;
  boxes: readonly BoxesInput[];
  classes: readonly ArrayLike<number>[];
}

export interface TrainStepResult {
  loss: number;
  classLoss: number;
  boxLoss: number;
  lr: number;
  gradNorm: number;
  numPositives: number;
  step: number;
}

export interface LossValues {
  loss: number;
  classLoss: number;
  boxLoss: number;
}

/** Everything needed to resume: host arrays only. */
export interface TrainerState {
  step: number;
  optimizer: ReturnType<Optimizer['stateDict']>;
  emaUpdates: number;
}

export class DetectionTrainer {
  readonly labeler: AnchorLabeler;
  readonly optimizer: Optimizer;
  readonly ema: ModelEma | null;
  readonly lossOptions: DetectionLossOptions;
  private readonly anchors: Anchors;
  private readonly frozenBn: BatchNorm2d[];
  /** Optimiser steps taken (the schedule's position). */
  step = 0;

  constructor(
    readonly model: EfficientDet,
    readonly options: DetectionTrainerOptions,
  ) {
    check(
      options !== null && typeof options === 'object' && options.schedule !== undefined,
      () => 'DetectionTrainer: options.schedule ({lr, totalSteps, ...}) is required',
    );
    lrAt(options.schedule, 0); // validates the schedule
    const mb = options.microBatches ?? 1;
    check(
      Number.isInteger(mb) && mb >= 1,
      () => `DetectionTrainer: options.microBatches must be an integer >= 1, got ${String(mb)}`,
    );
    registerTrainingKernels();
    const cfg = model.config;
    this.anchors = Anchors.fromConfig(cfg);
    this.labeler = new AnchorLabeler(this.anchors, cfg.numClasses, {
      matchThreshold: options.matchThreshold,
    });
    this.lossOptions = options.loss ?? lossOptionsFromConfig(cfg);
    const frozen = options.freezeBackbone ? (n: string) => n.startsWith('backbone.') : undefined;
    this.optimizer = new Optimizer(trainableVariables(model, frozen), options.optimizer);
    this.frozenBn =
      options.freezeBackbone || options.freezeBackboneBn
        ? model.backbone
            .namedModules()
            .map(([, m]) => m)
            .filter((m): m is BatchNorm2d => m instanceof BatchNorm2d)
        : [];
    this.ema =
      options.ema === false
        ? null
        : new ModelEma(
            createEfficientDet(cfg),
            model,
            options.ema?.decay ?? 0.9998,
            options.ema?.warmup ?? true,
          );
  }

  /** The model to evaluate and save: the EMA when there is one. */
  get evalModel(): EfficientDet {
    return (this.ema?.module as EfficientDet | undefined) ?? this.model;
  }

  /** The learning rate of the next step. */
  get lr(): number {
    return lrAt(this.options.schedule, this.step);
  }

  private checkBatch(fn: string, batch: DetectionBatch): void {
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

  /** One optimiser step on `batch` (in `microBatches` parts when set). Leaves no tensors behind. */
  trainStep(batch: DetectionBatch): TrainStepResult {
    const fn = 'DetectionTrainer.trainStep';
    this.checkBatch(fn, batch);
    const size = batch.images.shape[0];
    const parts = Math.min(this.options.microBatches ?? 1, size);
    this.model.train();
    for (const bn of this.frozenBn) bn.eval();
    let grads: Record<string, tf.Tensor> = {};
    try {
      let loss = 0;
      let classLoss = 0;
      let boxLoss = 0;
      let numPositives = 0;
      for (let k = 0; k < parts; k++) {
        const start = Math.floor((k * size) / parts);
        const end = Math.floor(((k + 1) * size) / parts);
        const weight = (end - start) / size;
        const images =
          parts === 1 ? batch.images : tf.slice(batch.images, [start, 0, 0, 0], [end - start, -1, -1, -1]);
        try {
          const r = this.gradients(batch.boxes.slice(start, end), batch.classes.slice(start, end), images);
          loss += weight * r.loss;
          classLoss += weight * r.classLoss;
          boxLoss += weight * r.boxLoss;
          numPositives += r.numPositives;
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
          if (images !== batch.images) images.dispose();
        }
      }
      check(Number.isFinite(loss), () => `${fn}: the loss is ${loss} at step ${this.step} (lr too high?)`);
      const lr = this.lr;
      const { gradNorm } = this.optimizer.apply(grads, lr);
      this.ema?.update(this.model);
      this.step++;
      return { loss, classLoss, boxLoss, lr, gradNorm, numPositives, step: this.step };
    } finally {
      tf.dispose(Object.values(grads));
    }
  }

  /** Loss values and gradients (the caller disposes them) of one (micro-)batch in the current mode. */
  private gradients(
    boxes: readonly BoxesInput[],
    classes: readonly ArrayLike<number>[],
    images: tf.Tensor4D,
  ): LossValues & { numPositives: number; grads: Record<string, tf.Tensor> } {
    const labels = this.labeler.labelBatch(boxes, classes);
    const numPositives = labels.numPositives.reduce((a, b) => a + b, 0);
    const targets = labelsToTensors(labels);
    let parts: tf.Scalar[] = [];
    let lossValue: tf.Scalar | null = null;
    try {
      const r = tf.variableGrads(
        () => {
          const out = this.model.forward(images);
          const l = detectionLoss(out, targets, this.lossOptions);
          parts = [tf.keep(l.classLoss), tf.keep(l.boxLoss)];
          return l.loss;
        },
        this.optimizer.params.map((p) => p.variable),
      );
      lossValue = r.value;
      const [loss, classLoss, boxLoss] = [lossValue, ...parts].map((t) => t.dataSync()[0] as number) as [
        number,
        number,
        number,
      ];
      return { loss, classLoss, boxLoss, numPositives, grads: r.grads };
    } finally {
      tf.dispose(parts);
      lossValue?.dispose();
      disposeLabelTensors(targets);
    }
  }

  /** The loss of `batch` without training (eval mode: running statistics), on `model` (default the EMA / eval model). */
  evaluateLoss(batch: DetectionBatch, model: EfficientDet = this.evalModel): LossValues {
    this.checkBatch('DetectionTrainer.evaluateLoss', batch);
    const labels = this.labeler.labelBatch(batch.boxes, batch.classes);
    const targets = labelsToTensors(labels);
    const wasTraining = model.training;
    model.eval();
    try {
      const vals = tf.tidy(() => {
        const l = detectionLoss(model.forward(batch.images), targets, this.lossOptions);
        return [l.loss, l.classLoss, l.boxLoss].map((t) => t.dataSync()[0] as number);
      });
      return { loss: vals[0] as number, classLoss: vals[1] as number, boxLoss: vals[2] as number };
    } finally {
      disposeLabelTensors(targets);
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
      () => `DetectionTrainer.loadState: state.step must be an integer >= 0, got ${String(state?.step)}`,
    );
    this.optimizer.loadStateDict(state.optimizer);
    this.step = state.step;
    if (this.ema) this.ema.updates = state.emaUpdates;
  }

  dispose(): void {
    this.optimizer.dispose();
    this.ema?.module.dispose();
    this.anchors.dispose();
  }
}

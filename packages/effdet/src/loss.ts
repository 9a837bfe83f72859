/**
 * EfficientDet training loss (effdet `loss.py`, `loss_fn` / `DetectionLoss`, after google/automl):
 *
 * - N = sum over the batch of the positives + 1.
 * - Class loss: focal loss of the logits against one-hot targets (a negative anchor is an all-zero row),
 *   `alpha_t * (1 - p_t)^gamma * BCE(logit, t')` with `p = sigmoid(logit)`, `p_t = t p + (1 - t)(1 - p)`,
 *   `alpha_t = t alpha + (1 - t)(1 - alpha)` and `t' = t (1 - eps) + eps / 2` under label smoothing eps (the
 *   modulating factor uses the unsmoothed t). Class targets are 0-based; -1 (and any other value outside
 *   0..C-1, which is not checked) has no positive entry; anchors with class target -2 are masked out. Summed over
 *   every anchor, class, image and level, divided by N.
 * - Box loss: Huber with `delta` on `box output - box target`, only where the target is non-zero (element-wise,
 *   as the reference masks `box_targets != 0`: a positive anchor's exactly-zero code, e.g. a centred box, is
 *   left out too), summed and divided by 4N.
 * - Total = class loss + boxLossWeight * box loss.
 *
 * Written in log-sigmoid form so that nothing overflows: with `z = x` for a negative entry and `z = -x` for a
 * positive one (x the logit), `1 - p_t = sigmoid(z)`, so `(1 - p_t)^gamma = exp(-gamma * softplus(-z))`, and
 * `BCE(x, t') = softplus(z) - (eps / 2) z`. Every op is differentiable w.r.t. the head outputs (for `tf.grads` /
 * `tf.variableGrads`); the targets carry no gradient.
 */
import { check, shapeStr } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import type { EffDetConfig } from './config.js';
import {
  type BatchLabels,
  CLASS_TARGET_IGNORED,
  type ImageLabels,
  type LabelTensors,
  labelsToTensors,
} from './labeler.js';

export interface DetectionLossOptions {
  /** Classes C; default: inferred from the shapes (class channels / anchors per location). */
  numClasses?: number;
  /** Focal loss weight of positives (negatives get 1 - alpha). Default 0.25. */
  alpha?: number;
  /** Focal loss focusing exponent. Default 1.5. */
  gamma?: number;
  /** Huber loss delta. Default 0.1. */
  delta?: number;
  /** Weight of the box loss in the total. Default 50. */
  boxLossWeight?: number;
  /** Label smoothing eps of the focal loss' cross entropy. Default 0. */
  labelSmoothing?: number;
  /**
   * effdet's `legacy_focal` (the early official TF form). It is the same function as the default form without
   * label smoothing (its modulator `exp(-gamma t x - gamma log1p(exp(-x)))` equals `(1 - p_t)^gamma`), so here it
   * only means "ignore labelSmoothing"; the reference's float overflow for |logit| > ~88 is not reproduced.
   */
  legacyFocal?: boolean;
}

/** The loss options of an EfficientDet config (effdet `DetectionLoss(config)`). */
export function lossOptionsFromConfig(
  cfg: Pick<EffDetConfig, 'numClasses' | 'alpha' | 'gamma' | 'delta' | 'boxLossWeight' | 'labelSmoothing'>,
): DetectionLossOptions {
  return {
    numClasses: cfg.numClasses,
    alpha: cfg.alpha,
    gamma: cfg.gamma,
    delta: cfg.delta,
    boxLossWeight: cfg.boxLossWeight,
    labelSmoothing: cfg.labelSmoothing,
  };
}

export interface DetectionLossResult {
  loss: tf.Scalar;
  classLoss: tf.Scalar;
  boxLoss: tf.Scalar;
}

/** Head outputs per level (NHWC): what `EfficientDet.forward` returns. */
export interface HeadOutputs {
  /** `[B, h, w, A * C]` logits, channel = anchor * C + class. */
  classOut: readonly tf.Tensor[];
  /** `[B, h, w, A * 4]` box codes. */
  boxOut: readonly tf.Tensor[];
}

interface Resolved {
  alpha: number;
  gamma: number;
  delta: number;
  boxLossWeight: number;
  labelSmoothing: number;
}

function resolve(fn: string, o: DetectionLossOptions): Resolved {
  check(o !== null && typeof o === 'object', () => `${fn}: options must be an object, got ${String(o)}`);
  const r: Resolved = {
    alpha: o.alpha ?? 0.25,
    gamma: o.gamma ?? 1.5,
    delta: o.delta ?? 0.1,
    boxLossWeight: o.boxLossWeight ?? 50,
    labelSmoothing: o.legacyFocal ? 0 : (o.labelSmoothing ?? 0),
  };
  for (const [k, v] of Object.entries(r)) {
    check(
      typeof v === 'number' && Number.isFinite(v),
      () => `${fn}: ${k} must be a finite number, got ${String(v)}`,
    );
  }
  check(r.gamma >= 0, () => `${fn}: gamma must be >= 0, got ${r.gamma}`);
  check(r.delta > 0, () => `${fn}: delta must be > 0, got ${r.delta}`);
  check(
    r.labelSmoothing >= 0 && r.labelSmoothing <= 1,
    () => `${fn}: labelSmoothing must be in [0, 1], got ${r.labelSmoothing}`,
  );
  return r;
}

/**
 * Element-wise focal loss (effdet `new_focal_loss` without the normaliser) of `logits` against `targets` in
 * {0, 1} (one-hot), same shapes: `alpha_t * (1 - p_t)^gamma * BCE(logits, smoothed targets)`. Stable for any
 * logit: `(1 - p_t)^gamma` is `exp(gamma * logSigmoid(z))` with `z = x` for t = 0 and `-x` for t = 1.
 */
export function focalLoss<T extends tf.Tensor>(
  logits: T,
  targets: tf.Tensor,
  options: { alpha?: number; gamma?: number; labelSmoothing?: number } = {},
): T {
  const fn = 'focalLoss';
  check(logits instanceof tf.Tensor, () => `${fn}: logits must be a tf.Tensor, got ${typeof logits}`);
  check(targets instanceof tf.Tensor, () => `${fn}: targets must be a tf.Tensor, got ${typeof targets}`);
  check(
    logits.shape.length === targets.shape.length && logits.shape.every((d, i) => d === targets.shape[i]),
    () =>
      `${fn}: logits ${shapeStr(logits.shape)} and targets ${shapeStr(targets.shape)} must have the same shape`,
  );
  const { alpha, gamma, labelSmoothing: eps } = resolve(fn, options);
  return tf.tidy(() => {
    const x = tf.cast(logits, 'float32');
    const t = tf.cast(targets, 'float32');
    // s = 1 - 2t: +1 for negatives, -1 for positives; z = s * x.
    const s = tf.sub(1, tf.mul(t, 2));
    const z = tf.mul(s, x);
    const modulating = tf.exp(tf.mul(tf.logSigmoid(z), gamma));
    // BCE(x, t') = softplus(x) - t' x = softplus(z) - (eps / 2) z for t in {0, 1}.
    const sp = tf.softplus(z);
    const ce = eps > 0 ? tf.sub(sp, tf.mul(z, eps / 2)) : sp;
    const alphaT = tf.add(tf.mul(t, alpha), tf.mul(tf.sub(1, t), 1 - alpha));
    return tf.mul(tf.mul(alphaT, modulating), ce) as T;
  });
}

/**
 * Huber loss (effdet `huber_loss`): `0.5 q^2 + delta (|e| - q)` with `e = input - target`, `q = min(|e|, delta)`,
 * times `weights` when given; `reduction` 'sum' (default), 'mean' or 'none' (element-wise).
 */
export function huberLoss(
  input: tf.Tensor,
  target: tf.Tensor,
  options: { delta?: number; weights?: tf.Tensor; reduction?: 'sum' | 'mean' | 'none' } = {},
): tf.Tensor {
  const fn = 'huberLoss';
  check(input instanceof tf.Tensor, () => `${fn}: input must be a tf.Tensor, got ${typeof input}`);
  check(target instanceof tf.Tensor, () => `${fn}: target must be a tf.Tensor, got ${typeof target}`);
  check(
    input.shape.length === target.shape.length && input.shape.every((d, i) => d === target.shape[i]),
    () =>
      `${fn}: input ${shapeStr(input.shape)} and target ${shapeStr(target.shape)} must have the same shape`,
  );
  const delta = options.delta ?? 1;
  check(Number.isFinite(delta) && delta > 0, () => `${fn}: delta must be a finite number > 0, got ${delta}`);
  const reduction = options.reduction ?? 'sum';
  check(
    reduction === 'sum' || reduction === 'mean' || reduction === 'none',
    () => `${fn}: reduction must be 'sum', 'mean' or 'none', got '${String(reduction)}'`,
  );
  return tf.tidy(() => {
    let l = huberElementwise(tf.cast(input, 'float32'), tf.cast(target, 'float32'), delta);
    if (options.weights) l = tf.mul(l, options.weights);
    if (reduction === 'none') return l;
    return reduction === 'sum' ? tf.sum(l) : tf.mean(l);
  });
}

function huberElementwise(input: tf.Tensor, target: tf.Tensor, delta: number): tf.Tensor {
  const absErr = tf.abs(tf.sub(input, target));
  const quadratic = tf.minimum(absErr, delta);
  const linear = tf.sub(absErr, quadratic);
  return tf.add(tf.mul(tf.square(quadratic), 0.5), tf.mul(linear, delta));
}

/**
 * Sum of a `[B, h, w, ...]` tensor in stages (inner axes, then w, then the rest), so that no single reduction
 * adds more than a few hundred float32 terms (the wasm Sum kernel accumulates in float32, sequentially).
 */
function stagedSum(x: tf.Tensor): tf.Scalar {
  const inner = x.shape.slice(3).map((_, i) => i + 3);
  const perRow = inner.length ? tf.sum(x, inner) : x; // [B, h, w]
  return tf.sum(tf.sum(perRow, 2)); // [B, h] -> scalar
}

function isHostLabels(t: unknown): t is BatchLabels | ImageLabels {
  return (
    t !== null &&
    typeof t === 'object' &&
    Array.isArray((t as BatchLabels).clsTargets) &&
    (t as BatchLabels).clsTargets.every((c) => c instanceof Int32Array)
  );
}

/**
 * The EfficientDet training loss (effdet `loss_fn`) of head outputs against anchor targets: tensors
 * (`labelsToTensors`, or precomputed `label_cls_l` / `label_bbox_l` / `label_num_positives`) or the host labels
 * of `AnchorLabeler.labelBatch` (converted here; a `labelImage` result needs `labelsToTensors(l, shapes)`).
 * Returns scalar tensors `{loss, classLoss, boxLoss}`; the caller disposes them. Differentiable w.r.t. the head
 * outputs; with tfjs-core alone, call `registerGradients()` (`@effdet/layers`) once before `tf.grads`.
 */
export function detectionLoss(
  outputs: HeadOutputs,
  targets: LabelTensors | BatchLabels,
  options: DetectionLossOptions = {},
): DetectionLossResult {
  const fn = 'detectionLoss';
  const o = resolve(fn, options);
  check(
    outputs !== null &&
      typeof outputs === 'object' &&
      Array.isArray(outputs.classOut) &&
      Array.isArray(outputs.boxOut),
    () =>
      `${fn}: outputs must be {classOut, boxOut} lists of tensors (EfficientDet.forward), got ${String(outputs)}`,
  );
  check(
    targets !== null && typeof targets === 'object' && Array.isArray(targets.clsTargets),
    () => `${fn}: targets must be LabelTensors or BatchLabels, got ${String(targets)}`,
  );
  return tf.tidy(() => {
    const t: LabelTensors = isHostLabels(targets) ? labelsToTensors(targets) : (targets as LabelTensors);
    const { classOut, boxOut } = outputs;
    const levels = classOut.length;
    check(
      levels > 0 &&
        boxOut.length === levels &&
        t.clsTargets.length === levels &&
        t.boxTargets.length === levels,
      () =>
        `${fn}: need the same number of levels everywhere, got classOut ${levels}, boxOut ${boxOut.length}, clsTargets ${t.clsTargets.length}, boxTargets ${t.boxTargets.length}`,
    );
    check(
      t.numPositives instanceof tf.Tensor && t.numPositives.rank <= 1,
      () =>
        `${fn}: numPositives must be a [B] tensor, got ${t.numPositives instanceof tf.Tensor ? shapeStr(t.numPositives.shape) : typeof t.numPositives}`,
    );
    let numClasses = options.numClasses;
    for (let l = 0; l < levels; l++) {
      const c = classOut[l];
      const b = boxOut[l];
      const ct = t.clsTargets[l];
      const bt = t.boxTargets[l];
      check(
        c instanceof tf.Tensor &&
          b instanceof tf.Tensor &&
          ct instanceof tf.Tensor &&
          bt instanceof tf.Tensor,
        () => `${fn}: level ${l}: outputs and targets must be tensors`,
      );
      check(
        ct.rank === 4 && c.rank === 4 && ct.shape.slice(0, 3).every((d, i) => d === c.shape[i]),
        () =>
          `${fn}: level ${l}: clsTargets must be [B, h, w, A] matching classOut ${shapeStr(c.shape)}, got ${shapeStr(ct.shape)}`,
      );
      const A = ct.shape[3] as number;
      const C = (c.shape[3] as number) / A;
      check(
        Number.isInteger(C) && C >= 1 && (numClasses === undefined || C === numClasses),
        () =>
          `${fn}: level ${l}: classOut has ${c.shape[3]} channels for ${A} anchors; expected A * ${numClasses ?? 'C'}`,
      );
      numClasses = C;
      const boxShape = [...ct.shape.slice(0, 3), A * 4];
      check(
        b.shape.length === 4 && b.shape.every((d, i) => d === boxShape[i]),
        () => `${fn}: level ${l}: boxOut must be ${shapeStr(boxShape)}, got ${shapeStr(b.shape)}`,
      );
      check(
        bt.shape.length === 4 && bt.shape.every((d, i) => d === boxShape[i]),
        () => `${fn}: level ${l}: boxTargets must be ${shapeStr(boxShape)}, got ${shapeStr(bt.shape)}`,
      );
    }
    const C = numClasses as number;

    const normalizer = tf.add(tf.sum(tf.cast(t.numPositives, 'float32')), 1);
    const halfEps = o.labelSmoothing / 2;
    const classSums: tf.Scalar[] = [];
    const boxSums: tf.Scalar[] = [];
    for (let l = 0; l < levels; l++) {
      const [B, h, w, A] = t.clsTargets[l].shape;
      const cls = tf.cast(t.clsTargets[l], 'int32');
      const x = tf.reshape(tf.cast(classOut[l], 'float32'), [B, h, w, A, C]);
      // Targets (constants for the gradient): q = +1 on the positive entry of an anchor, -1 elsewhere (a class
      // target < 0 has no positive entry); alpha_t = alpha where q = 1, 1 - alpha elsewhere.
      const q = positiveSign(cls, C);
      const alphaT = tf.add(tf.mul(q, o.alpha - 0.5), 0.5);
      // u = q x = -z: (1 - p_t)^gamma = sigmoid(z)^gamma = exp(-gamma * softplus(u)) and
      // BCE(x, t') = softplus(z) - (eps / 2) z = softplus(u) - (1 - eps / 2) u.
      const u = tf.mul(q, x);
      const spU = tf.softplus(u);
      const modulating = tf.exp(tf.mul(spU, -o.gamma));
      const ce = halfEps === 0 ? tf.sub(spU, u) : tf.sub(spU, tf.mul(u, 1 - halfEps));
      // Summed over classes first, then the ignored anchors are masked on the small per-anchor tensor.
      const perAnchor = tf.sum(tf.mul(tf.mul(modulating, ce), alphaT), 4);
      const notIgnored = tf.cast(tf.notEqual(cls, CLASS_TARGET_IGNORED), 'float32');
      classSums.push(stagedSum(tf.mul(perAnchor, notIgnored)));

      const bt = tf.cast(t.boxTargets[l], 'float32');
      const mask = tf.cast(tf.notEqual(bt, 0), 'float32');
      boxSums.push(stagedSum(tf.mul(huberElementwise(tf.cast(boxOut[l], 'float32'), bt, o.delta), mask)));
    }
    const classLoss = tf.div(levels > 1 ? tf.addN(classSums) : classSums[0], normalizer) as tf.Scalar;
    const boxLoss = tf.div(levels > 1 ? tf.addN(boxSums) : boxSums[0], tf.mul(normalizer, 4)) as tf.Scalar;
    const loss = tf.add(classLoss, tf.mul(boxLoss, o.boxLossWeight)) as tf.Scalar;
    return { loss, classLoss, boxLoss };
  });
}

/**
 * `+1` at `[..., cls]` and `-1` elsewhere (all `-1` for a negative class), float32 `[...cls.shape, depth]`.
 * tf.oneHot is asked for int32 and cast: the wasm OneHot kernel of tfjs 4.22 ignores the dtype attribute and
 * writes int32 bits into a float32 output. Depth 1 (which tf.oneHot rejects) goes through an equality.
 */
function positiveSign(cls: tf.Tensor, depth: number): tf.Tensor {
  if (depth >= 2) return tf.cast(tf.oneHot(cls, depth, 1, -1), 'float32');
  return tf.expandDims(tf.sub(tf.mul(tf.cast(tf.equal(cls, 0), 'float32'), 2), 1), -1);
}

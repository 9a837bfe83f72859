/**
 * Segmentation losses on NHWC logits, written with differentiable TF.js ops only (usable inside `tf.grad` /
 * `optimizer.minimize`). Modes follow smp.losses:
 * - `multiclass`: logits `[B, H, W, C]`, target class ids `[B, H, W]` (or `[B, H, W, 1]`);
 * - `binary`: logits `[B, H, W, 1]`, target 0/1 (or soft values in [0, 1]) `[B, H, W]` or `[B, H, W, 1]`;
 * - `multilabel`: logits `[B, H, W, C]`, target 0/1 per class `[B, H, W, C]`.
 * Targets are checked (shape, class ids, the ignore index) unless `validate: false`; the check reads the target
 * to the host once.
 */
import { check, EffdetArgumentError, shapeStr } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';

export type LossMode = 'binary' | 'multiclass' | 'multilabel';
export type LossReduction = 'mean' | 'sum' | 'none';

interface Prepared {
  /** Logits `[B, H, W, C]`. */
  logits: tf.Tensor4D;
  /** The target as float32 `[B, H, W]` (multiclass) or `[B, H, W, C]`; call inside a tidy. */
  target: () => tf.Tensor;
  mode: LossMode;
  numClasses: number;
}

function checkMode(fn: string, mode: LossMode): void {
  check(
    mode === 'binary' || mode === 'multiclass' || mode === 'multilabel',
    () => `${fn}: mode must be 'binary', 'multiclass' or 'multilabel', got ${JSON.stringify(mode)}`,
  );
}

/** Validates shapes (and values unless `validate` is false); returns the target in a canonical shape. */
function prepare(
  fn: string,
  logits: tf.Tensor,
  target: tf.Tensor,
  mode: LossMode,
  ignoreIndex: number | null | undefined,
  validate: boolean,
): Prepared {
  checkMode(fn, mode);
  check(
    logits instanceof tf.Tensor && logits.rank === 4,
    () =>
      `${fn}: logits must be NHWC [batch, height, width, classes], got ${logits instanceof tf.Tensor ? shapeStr(logits.shape) : typeof logits}`,
  );
  check(target instanceof tf.Tensor, () => `${fn}: target must be a tf.Tensor, got ${typeof target}`);
  const [b, h, w, c] = logits.shape;
  const ts = target.shape;
  if (mode === 'binary') {
    check(c === 1, () => `${fn}: mode 'binary' needs logits with 1 channel, got ${shapeStr(logits.shape)}`);
  }
  if (mode === 'multiclass') {
    check(
      (ts.length === 3 || (ts.length === 4 && ts[3] === 1)) && ts[0] === b && ts[1] === h && ts[2] === w,
      () =>
        `${fn}: mode 'multiclass' needs target class ids [${b},${h},${w}] for logits ${shapeStr(logits.shape)}, got ${shapeStr(ts)}`,
    );
  } else {
    const ok =
      ts[0] === b &&
      ts[1] === h &&
      ts[2] === w &&
      ((ts.length === 4 && ts[3] === c) || (mode === 'binary' && ts.length === 3));
    check(
      ok,
      () =>
        `${fn}: mode '${mode}' needs a target of shape [${b},${h},${w},${c}] for logits ${shapeStr(logits.shape)}, got ${shapeStr(ts)}`,
    );
  }
  if (validate) checkTargetValues(fn, target, mode, c, ignoreIndex);
  const shape = mode === 'multiclass' ? [b, h, w] : [b, h, w, c];
  return {
    logits: logits as tf.Tensor4D,
    target: () => tf.reshape(tf.cast(target, 'float32'), shape),
    mode,
    numClasses: c,
  };
}

function checkTargetValues(
  fn: string,
  target: tf.Tensor,
  mode: LossMode,
  numClasses: number,
  ignoreIndex: number | null | undefined,
): void {
  const data = target.dataSync();
  const ign = ignoreIndex ?? null;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (ign !== null && v === ign) continue;
    const ok = mode === 'multiclass' ? Number.isInteger(v) && v >= 0 && v < numClasses : v >= 0 && v <= 1;
    if (!ok) {
      const want =
        mode === 'multiclass'
          ? `class ids in [0, ${numClasses})`
          : `values in [0, 1] (0/1 masks or soft targets)`;
      throw new EffdetArgumentError(
        `${fn}: target (${mode}) must hold ${want}${ign !== null ? ` or the ignoreIndex ${ign}` : ''}, ` +
          `got ${v} at flat index ${i} (shape ${shapeStr(target.shape)})`,
      );
    }
  }
}

function reduce(loss: tf.Tensor, reduction: LossReduction, fn: string, count?: tf.Tensor): tf.Tensor {
  if (reduction === 'none') return loss;
  if (reduction === 'sum') return tf.sum(loss);
  check(
    reduction === 'mean',
    () => `${fn}: reduction must be 'mean', 'sum' or 'none', got ${JSON.stringify(reduction)}`,
  );
  return count ? tf.div(tf.sum(loss), count) : tf.mean(loss);
}

/** Numerically stable `binary_cross_entropy_with_logits(x, t)` per element. */
function bceWithLogits(x: tf.Tensor, t: tf.Tensor): tf.Tensor {
  return tf.add(tf.sub(tf.relu(x), tf.mul(x, t)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
}

/** 1 where the target is not the ignore index (ones without one). */
function validMask(target: tf.Tensor, ignoreIndex: number | null | undefined): tf.Tensor {
  return ignoreIndex === null || ignoreIndex === undefined
    ? tf.onesLike(target)
    : tf.cast(tf.notEqual(target, ignoreIndex), 'float32');
}

export interface CrossEntropyOptions {
  /** Default 'multiclass'. */
  mode?: LossMode;
  /** Target value that is skipped (multiclass default -100, PyTorch's; binary / multilabel default none). */
  ignoreIndex?: number | null;
  /** Multiclass: a weight per class (PyTorch `weight`); multilabel: a weight per channel. */
  classWeights?: number[];
  /** Multiclass: PyTorch's `label_smoothing`; binary / multilabel: smp `SoftBCEWithLogitsLoss.smooth_factor`. */
  labelSmoothing?: number;
  reduction?: LossReduction;
  validate?: boolean;
}

/**
 * Cross-entropy. Multiclass is `torch.nn.functional.cross_entropy` (class weights, ignore index, label
 * smoothing; 'mean' divides by the summed weights of the kept pixels; 'none' gives `[B, H, W]` with 0 at ignored
 * pixels). Binary / multilabel is binary cross-entropy with logits, averaged over the kept elements.
 */
export function crossEntropyLoss(
  logits: tf.Tensor,
  target: tf.Tensor,
  options: CrossEntropyOptions = {},
): tf.Tensor {
  const fn = 'crossEntropyLoss';
  const mode = options.mode ?? 'multiclass';
  const ignoreIndex =
    options.ignoreIndex === undefined ? (mode === 'multiclass' ? -100 : null) : options.ignoreIndex;
  const eps = options.labelSmoothing ?? 0;
  check(eps >= 0 && eps <= 1, () => `${fn}: labelSmoothing must be in [0, 1], got ${options.labelSmoothing}`);
  const reduction = options.reduction ?? 'mean';
  const p = prepare(fn, logits, target, mode, ignoreIndex, options.validate ?? true);
  const C = p.numClasses;
  const weights = options.classWeights;
  if (weights !== undefined) {
    check(
      Array.isArray(weights) && weights.length === C && weights.every((v) => Number.isFinite(v) && v >= 0),
      () =>
        `${fn}: classWeights must be ${C} non-negative numbers (one per class), got ${JSON.stringify(weights)}`,
    );
  }
  return tf.tidy(() => {
    const target = p.target();
    const valid = validMask(target, ignoreIndex);
    if (mode === 'multiclass') {
      const logp = tf.logSoftmax(p.logits, -1);
      const safe = tf.cast(tf.mul(target, valid), 'int32');
      const onehot = tf.oneHot(safe, C);
      const nll = tf.neg(tf.sum(tf.mul(onehot, logp), -1));
      const wVec = weights ? tf.tensor1d(weights) : null;
      const w = wVec ? tf.mul(tf.sum(tf.mul(onehot, wVec), -1), valid) : valid;
      let loss = tf.mul(w, nll);
      let smooth: tf.Tensor | null = null;
      if (eps > 0) {
        const s = wVec ? tf.sum(tf.mul(logp, wVec), -1) : tf.sum(logp, -1);
        smooth = tf.mul(tf.neg(s), valid);
      }
      if (reduction === 'none') {
        if (smooth) loss = tf.add(tf.mul(loss, 1 - eps), tf.mul(smooth, eps / C));
        return loss;
      }
      const denom = reduction === 'mean' ? tf.sum(w) : undefined;
      let out = reduce(loss, reduction, fn, denom);
      if (smooth) out = tf.add(tf.mul(out, 1 - eps), tf.mul(reduce(smooth, reduction, fn, denom), eps / C));
      return out;
    }
    const t = eps > 0 ? tf.add(tf.mul(tf.sub(1, target), eps), tf.mul(target, 1 - eps)) : target;
    let loss = tf.mul(bceWithLogits(p.logits, t), valid);
    if (weights) loss = tf.mul(loss, tf.tensor1d(weights));
    return reduce(loss, reduction, fn, reduction === 'mean' ? tf.sum(valid) : undefined);
  });
}

export interface OverlapLossOptions {
  mode: LossMode;
  /** Classes (channels) averaged into the loss (default all); not for binary, as in smp. */
  classes?: number[];
  /** `-log(score)` instead of `1 - score`. */
  logLoss?: boolean;
  /** Apply softmax (multiclass) / sigmoid first (default true). */
  fromLogits?: boolean;
  smooth?: number;
  ignoreIndex?: number | null;
  /** Lower bound of the denominator (default 1e-7). */
  eps?: number;
  validate?: boolean;
}

/** smp's `soft_tversky_score` over batch and pixels: one score per class `[C]`. */
function tverskyScore(
  output: tf.Tensor,
  target: tf.Tensor,
  alpha: number,
  beta: number,
  smooth: number,
  eps: number,
): tf.Tensor {
  const dims = [0, 1];
  const outputSum = tf.sum(output, dims);
  const targetSum = tf.sum(target, dims);
  const difference = tf.sum(tf.abs(tf.sub(output, target)), dims);
  const inter = tf.div(tf.sub(tf.add(outputSum, targetSum), difference), 2);
  const fp = tf.sub(outputSum, inter);
  const fnn = tf.sub(targetSum, inter);
  const denom = tf.add(tf.add(inter, tf.add(tf.mul(fp, alpha), tf.mul(fnn, beta))), smooth);
  return tf.div(tf.add(inter, smooth), tf.maximum(denom, eps));
}

function overlapLoss(
  fn: string,
  logits: tf.Tensor,
  target: tf.Tensor,
  options: OverlapLossOptions,
  alpha: number,
  beta: number,
): tf.Tensor {
  check(
    typeof options === 'object' && options !== null,
    () => `${fn}: options with a mode ('binary', 'multiclass' or 'multilabel') are required`,
  );
  const { mode } = options;
  const ignoreIndex = options.ignoreIndex ?? null;
  const p = prepare(fn, logits, target, mode, ignoreIndex, options.validate ?? true);
  const C = p.numClasses;
  const classes = options.classes;
  if (classes !== undefined) {
    check(mode !== 'binary', () => `${fn}: masking classes is not supported with mode 'binary' (as in smp)`);
    check(
      Array.isArray(classes) &&
        classes.length > 0 &&
        classes.every((c) => Number.isInteger(c) && c >= 0 && c < C),
      () => `${fn}: classes must be channel indices in [0, ${C}), got ${JSON.stringify(classes)}`,
    );
  }
  const smooth = options.smooth ?? 0;
  const eps = options.eps ?? 1e-7;
  return tf.tidy(() => {
    const [b, h, w] = p.logits.shape;
    const n = h * w;
    let prob: tf.Tensor = p.logits;
    if (options.fromLogits ?? true)
      prob = mode === 'multiclass' ? tf.softmax(p.logits, -1) : tf.sigmoid(p.logits);
    prob = tf.reshape(prob, [b, n, C]);
    let truth: tf.Tensor;
    const target = p.target();
    if (mode === 'multiclass') {
      const valid = tf.reshape(validMask(target, ignoreIndex), [b, n, 1]);
      const ids = tf.cast(tf.mul(tf.reshape(target, [b, n, 1]), valid), 'int32');
      truth = tf.mul(tf.oneHot(tf.reshape(ids, [b, n]), C), valid);
      prob = tf.mul(prob, valid);
    } else {
      const t = tf.reshape(target, [b, n, C]);
      const valid = validMask(t, ignoreIndex);
      truth = tf.mul(t, valid);
      prob = tf.mul(prob, valid);
    }
    const score = tverskyScore(prob, truth, alpha, beta, smooth, eps);
    let loss = options.logLoss ? tf.neg(tf.log(tf.maximum(score, eps))) : tf.sub(1, score);
    // Undefined for classes without true pixels: they contribute 0 (as in smp).
    loss = tf.mul(loss, tf.cast(tf.greater(tf.sum(truth, [0, 1]), 0), 'float32'));
    if (classes) loss = tf.gather(loss, classes);
    return tf.mean(loss);
  });
}

/** smp `DiceLoss`: `1 - soft Dice` per class (0 for classes without true pixels), averaged. */
export function diceLoss(logits: tf.Tensor, target: tf.Tensor, options: OverlapLossOptions): tf.Tensor {
  return overlapLoss('diceLoss', logits, target, options, 0.5, 0.5);
}

/**
 * smp `JaccardLoss`: `1 - soft IoU` per class (0 for classes without true pixels), averaged. `ignoreIndex` is an
 * addition (smp's JaccardLoss has none): ignored pixels are left out as in DiceLoss.
 */
export function jaccardLoss(logits: tf.Tensor, target: tf.Tensor, options: OverlapLossOptions): tf.Tensor {
  return overlapLoss('jaccardLoss', logits, target, options, 1, 1);
}

export interface FocalLossOptions {
  mode: LossMode;
  /** Weight of positives (`alpha * t + (1 - alpha) * (1 - t)`); default none. */
  alpha?: number | null;
  /** Focusing power (default 2). */
  gamma?: number;
  ignoreIndex?: number | null;
  /** Default 'mean'. 'none' returns per-element losses with 0 at ignored pixels (multiclass: summed over classes). */
  reduction?: LossReduction;
  /** Divide by the summed focal terms (arXiv:1909.07829). */
  normalized?: boolean;
  /** Reduced focal loss (arXiv:1903.01347): focal term 1 below this probability. */
  reducedThreshold?: number | null;
  validate?: boolean;
}

/**
 * smp `FocalLoss` (sigmoid focal loss on logits). Binary / multilabel: over every kept element. Multiclass: a
 * one-vs-rest binary focal loss per class, each reduced over the kept pixels, summed over classes (as smp).
 */
export function focalLoss(logits: tf.Tensor, target: tf.Tensor, options: FocalLossOptions): tf.Tensor {
  const fn = 'focalLoss';
  check(
    typeof options === 'object' && options !== null,
    () => `${fn}: options with a mode ('binary', 'multiclass' or 'multilabel') are required`,
  );
  const { mode } = options;
  const ignoreIndex = options.ignoreIndex ?? null;
  const gamma = options.gamma ?? 2;
  const alpha = options.alpha ?? null;
  const thr = options.reducedThreshold ?? null;
  const reduction = options.reduction ?? 'mean';
  check(
    Number.isFinite(gamma) && gamma >= 0,
    () => `${fn}: gamma must be a non-negative number, got ${options.gamma}`,
  );
  check(
    alpha === null || (alpha >= 0 && alpha <= 1),
    () => `${fn}: alpha must be in [0, 1] or null, got ${options.alpha}`,
  );
  check(thr === null || (thr > 0 && thr <= 1), () => `${fn}: reducedThreshold must be in (0, 1], got ${thr}`);
  check(
    reduction === 'mean' || reduction === 'sum' || reduction === 'none',
    () => `${fn}: reduction must be 'mean', 'sum' or 'none', got ${JSON.stringify(reduction)}`,
  );
  const p = prepare(fn, logits, target, mode, ignoreIndex, options.validate ?? true);
  const C = p.numClasses;
  return tf.tidy(() => {
    let t: tf.Tensor;
    let valid: tf.Tensor;
    const target = p.target();
    if (mode === 'multiclass') {
      const v = validMask(target, ignoreIndex);
      valid = tf.expandDims(v, -1);
      t = tf.oneHot(tf.cast(tf.mul(target, v), 'int32'), C);
    } else {
      t = target;
      valid = validMask(t, ignoreIndex);
      t = tf.mul(t, valid);
    }
    const logpt = bceWithLogits(p.logits, t);
    const pt = tf.exp(tf.neg(logpt));
    let focal: tf.Tensor = tf.pow(tf.sub(1, pt), gamma);
    if (thr !== null) {
      focal = tf.where(tf.less(pt, thr), tf.ones(pt.shape), tf.pow(tf.div(tf.sub(1, pt), thr), gamma));
    }
    let loss = tf.mul(tf.mul(focal, logpt), valid);
    if (alpha !== null) loss = tf.mul(loss, tf.add(tf.mul(t, alpha), tf.mul(tf.sub(1, t), 1 - alpha)));
    // Multiclass reduces each class separately (over pixels), then sums the classes.
    const axes = mode === 'multiclass' ? [0, 1, 2] : undefined;
    if (options.normalized) {
      const norm = tf.maximum(tf.sum(tf.mul(focal, valid), axes), 1e-6);
      loss = tf.div(loss, norm);
    }
    if (reduction === 'none') return mode === 'multiclass' ? tf.sum(loss, -1) : loss;
    let out = tf.sum(loss, axes);
    if (reduction === 'mean') out = tf.div(out, tf.sum(valid));
    return tf.sum(out);
  });
}

/**
 * Segmentation metrics on the host: smp.metrics (`getStats` + score functions with smp's reductions) and a
 * confusion matrix for per-class IoU, mean IoU, pixel accuracy and Dice / F1 over a whole dataset.
 */
import { check, EffdetArgumentError, shapeStr } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';

/** A label map or prediction: a tensor, or plain values with their shape. */
export type LabelInput = tf.Tensor | { data: ArrayLike<number>; shape: readonly number[] };

function read(fn: string, name: string, x: LabelInput): { data: ArrayLike<number>; shape: number[] } {
  if (x instanceof tf.Tensor) return { data: x.dataSync(), shape: [...x.shape] };
  check(
    typeof x === 'object' && x !== null && x.data !== undefined && Array.isArray(x.shape),
    () => `${fn}: ${name} must be a tf.Tensor or {data, shape}, got ${typeof x}`,
  );
  const n = x.shape.reduce((a, b) => a * b, 1);
  check(
    x.data.length === n,
    () => `${fn}: ${name} has ${x.data.length} values for shape ${shapeStr(x.shape)} (${n})`,
  );
  return { data: x.data, shape: [...x.shape] };
}

export type StatsMode = 'binary' | 'multiclass' | 'multilabel';

/** True positive, false positive, false negative and true negative pixel counts per (image, class). */
export interface SegmentationStats {
  batch: number;
  numClasses: number;
  /** Row-major `[batch, numClasses]`. */
  tp: Float64Array;
  fp: Float64Array;
  fn: Float64Array;
  tn: Float64Array;
}

export interface GetStatsOptions {
  mode: StatsMode;
  /** Multiclass only: target value to skip; must lie outside 0..numClasses-1. */
  ignoreIndex?: number | null;
  /** Binary / multilabel: binarise output and target at this value (needed for probabilities). */
  threshold?: number | null;
  /** Multiclass: number of classes. */
  numClasses?: number;
}

/**
 * smp `metrics.get_stats`. Shapes (NHWC): multiclass output and target class ids `[N, H, W]` (or any `[N, ...]`);
 * binary `[N, H, W, 1]`; multilabel `[N, H, W, C]` (the class axis last). Values outside the classes (other than
 * the ignore index) throw.
 */
export function getStats(
  output: LabelInput,
  target: LabelInput,
  options: GetStatsOptions,
): SegmentationStats {
  const fn = 'getStats';
  const { mode } = options;
  check(
    mode === 'binary' || mode === 'multiclass' || mode === 'multilabel',
    () => `${fn}: mode must be 'binary', 'multiclass' or 'multilabel', got ${JSON.stringify(mode)}`,
  );
  const o = read(fn, 'output', output);
  const t = read(fn, 'target', target);
  check(
    o.shape.length === t.shape.length && o.shape.every((d, i) => d === t.shape[i]),
    () => `${fn}: output ${shapeStr(o.shape)} and target ${shapeStr(t.shape)} must have the same shape`,
  );
  check(o.shape.length >= 2, () => `${fn}: expected a batch [N, ...], got ${shapeStr(o.shape)}`);
  const ignore = options.ignoreIndex ?? null;
  const thr = options.threshold ?? null;
  const batch = o.shape[0];
  if (mode === 'multiclass') {
    check(thr === null, () => `${fn}: threshold is not supported in 'multiclass' mode`);
    const C = options.numClasses;
    check(
      C !== undefined && Number.isInteger(C) && C > 0,
      () => `${fn}: numClasses (a positive integer) is required in 'multiclass' mode, got ${C}`,
    );
    check(
      ignore === null || ignore < 0 || ignore >= C,
      () => `${fn}: ignoreIndex must lie outside the class range 0..${C - 1}, got ${ignore}`,
    );
    const per = o.data.length / batch;
    const s = emptyStats(batch, C);
    for (let b = 0; b < batch; b++) {
      let ignored = 0;
      for (let i = b * per; i < (b + 1) * per; i++) {
        const tv = t.data[i];
        if (tv === ignore) {
          ignored++;
          continue;
        }
        const ov = o.data[i];
        classCheck(fn, 'target', tv, C, i);
        classCheck(fn, 'output', ov, C, i);
        if (ov === tv) s.tp[b * C + tv]++;
        else {
          s.fp[b * C + ov]++;
          s.fn[b * C + tv]++;
        }
      }
      for (let c = 0; c < C; c++) {
        const k = b * C + c;
        s.tn[k] = per - s.tp[k] - s.fp[k] - s.fn[k] - ignored;
      }
    }
    return s;
  }
  check(ignore === null, () => `${fn}: ignoreIndex is not supported in '${mode}' mode (as in smp)`);
  const C = o.shape.at(-1)!;
  check(
    mode !== 'binary' || C === 1,
    () => `${fn}: 'binary' mode expects [N, ..., 1], got ${shapeStr(o.shape)}`,
  );
  const per = o.data.length / batch / C;
  const s = emptyStats(batch, C);
  const bin = (fnName: string, name: string, v: number, i: number) => {
    if (thr !== null) return v >= thr ? 1 : 0;
    if (v !== 0 && v !== 1) {
      throw new EffdetArgumentError(
        `${fnName}: ${name} must be 0/1 in '${mode}' mode without a threshold, got ${v} at flat index ${i}`,
      );
    }
    return v;
  };
  for (let b = 0; b < batch; b++) {
    for (let p = 0; p < per; p++) {
      for (let c = 0; c < C; c++) {
        const i = (b * per + p) * C + c;
        const ov = bin(fn, 'output', o.data[i], i);
        const tv = bin(fn, 'target', t.data[i], i);
        const k = b * C + c;
        if (ov && tv) s.tp[k]++;
        else if (ov) s.fp[k]++;
        else if (tv) s.fn[k]++;
        else s.tn[k]++;
      }
    }
  }
  return s;
}

function classCheck(fn: string, name: string, v: number, C: number, i: number): void {
  if (!(Number.isInteger(v) && v >= 0 && v < C)) {
    throw new EffdetArgumentError(
      `${fn}: ${name} holds ${v} at flat index ${i}; class ids must be in [0, ${C})`,
    );
  }
}

function emptyStats(batch: number, C: number): SegmentationStats {
  const z = () => new Float64Array(batch * C);
  return { batch, numClasses: C, tp: z(), fp: z(), fn: z(), tn: z() };
}

/** smp's reductions. */
export type MetricReduction =
  | 'micro'
  | 'macro'
  | 'weighted'
  | 'micro-imagewise'
  | 'macro-imagewise'
  | 'weighted-imagewise'
  | 'none';

export interface MetricOptions {
  /** Default 'none' (a `[batch][classes]` table). */
  reduction?: MetricReduction;
  /** Needed by the weighted reductions; normalised to sum 1 as smp does. */
  classWeights?: number[];
  /** Value for 0/0 scores (smp's 'warn' gives 0). Not applied by 'micro', as in smp. */
  zeroDivision?: number | 'warn';
}

type ScoreFn = (tp: number, fp: number, fn: number, tn: number) => number;

function computeMetric(
  fnName: string,
  score: ScoreFn,
  stats: SegmentationStats,
  options: MetricOptions,
): number | number[][] {
  const reduction = options.reduction ?? 'none';
  const zd = options.zeroDivision ?? 'warn';
  const zeroValue = zd === 'warn' ? 0 : zd;
  const fix = (v: number) => (Number.isNaN(v) ? zeroValue : v);
  const { batch: N, numClasses: C } = stats;
  const cw = options.classWeights;
  if (reduction.includes('weighted')) {
    check(cw !== undefined, () => `${fnName}: classWeights are required for the '${reduction}' reduction`);
  }
  if (cw !== undefined) {
    check(
      Array.isArray(cw) && cw.length === C && cw.every((v) => Number.isFinite(v)),
      () => `${fnName}: classWeights must be ${C} numbers, got ${JSON.stringify(cw)}`,
    );
  }
  const wsum = cw ? cw.reduce((a, b) => a + b, 0) : 1;
  const w = (c: number) => (cw ? cw[c] / wsum : 1);
  const at = (a: Float64Array, b: number, c: number) => a[b * C + c];
  const { tp, fp, fn, tn } = stats;
  const classTotals = (c: number) => {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let b = 0; b < N; b++) {
      s0 += at(tp, b, c);
      s1 += at(fp, b, c);
      s2 += at(fn, b, c);
      s3 += at(tn, b, c);
    }
    return score(s0, s1, s2, s3);
  };
  switch (reduction) {
    case 'micro': {
      const sum = (a: Float64Array) => a.reduce((x, y) => x + y, 0);
      return score(sum(tp), sum(fp), sum(fn), sum(tn));
    }
    case 'macro':
    case 'weighted': {
      let acc = 0;
      for (let c = 0; c < C; c++) acc += fix(classTotals(c)) * w(c);
      return reduction === 'macro' ? acc / C : acc;
    }
    case 'micro-imagewise': {
      let acc = 0;
      for (let b = 0; b < N; b++) {
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let c = 0; c < C; c++) {
          s0 += at(tp, b, c);
          s1 += at(fp, b, c);
          s2 += at(fn, b, c);
          s3 += at(tn, b, c);
        }
        acc += fix(score(s0, s1, s2, s3));
      }
      return acc / N;
    }
    case 'macro-imagewise':
    case 'weighted-imagewise': {
      let acc = 0;
      for (let c = 0; c < C; c++) {
        let m = 0;
        for (let b = 0; b < N; b++) m += fix(score(at(tp, b, c), at(fp, b, c), at(fn, b, c), at(tn, b, c)));
        acc += (m / N) * w(c);
      }
      return acc / C;
    }
    case 'none': {
      const out: number[][] = [];
      for (let b = 0; b < N; b++) {
        const row: number[] = [];
        for (let c = 0; c < C; c++)
          row.push(fix(score(at(tp, b, c), at(fp, b, c), at(fn, b, c), at(tn, b, c))));
        out.push(row);
      }
      return out;
    }
    default:
      throw new EffdetArgumentError(
        `${fnName}: reduction must be micro, macro, weighted, micro-imagewise, macro-imagewise, weighted-imagewise or none, got ${JSON.stringify(reduction)}`,
      );
  }
}

/** smp `fbeta_score`: `(1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp)`. */
export function fbetaScore(
  stats: SegmentationStats,
  beta = 1,
  options: MetricOptions = {},
): number | number[][] {
  const b2 = beta * beta;
  return computeMetric(
    'fbetaScore',
    (tp, fp, fn) => ((1 + b2) * tp) / ((1 + b2) * tp + b2 * fn + fp),
    stats,
    options,
  );
}

/** smp `f1_score` (= Dice). */
export function f1Score(stats: SegmentationStats, options: MetricOptions = {}): number | number[][] {
  return fbetaScore(stats, 1, options);
}

/** smp `iou_score`: `tp / (tp + fp + fn)`. */
export function iouScore(stats: SegmentationStats, options: MetricOptions = {}): number | number[][] {
  return computeMetric('iouScore', (tp, fp, fn) => tp / (tp + fp + fn), stats, options);
}

/** smp `accuracy`: `(tp + tn) / (tp + fp + fn + tn)`. */
export function accuracy(stats: SegmentationStats, options: MetricOptions = {}): number | number[][] {
  return computeMetric('accuracy', (tp, fp, fn, tn) => (tp + tn) / (tp + fp + fn + tn), stats, options);
}

/** smp `precision` (positive predictive value): `tp / (tp + fp)`. */
export function precision(stats: SegmentationStats, options: MetricOptions = {}): number | number[][] {
  return computeMetric('precision', (tp, fp) => tp / (tp + fp), stats, options);
}

/** smp `recall` (sensitivity): `tp / (tp + fn)`. */
export function recall(stats: SegmentationStats, options: MetricOptions = {}): number | number[][] {
  return computeMetric('recall', (tp, _fp, fn) => tp / (tp + fn), stats, options);
}

/** Summary of a confusion matrix. Per-class values are NaN where undefined (no pixel of the class anywhere). */
export interface SegmentationScores {
  /** IoU per class: tp / (tp + fp + fn). */
  iou: number[];
  /** Mean IoU over the classes present in the target or the prediction. */
  meanIoU: number;
  /** Dice / F1 per class: 2 tp / (2 tp + fp + fn). */
  dice: number[];
  meanDice: number;
  /** Correct pixels / counted pixels. */
  pixelAccuracy: number;
  /** Recall per class (tp / target pixels of the class). */
  classAccuracy: number[];
  meanClassAccuracy: number;
  /** IoU weighted by each class's share of the target pixels. */
  frequencyWeightedIoU: number;
}

function nanMean(v: number[]): number {
  let s = 0;
  let n = 0;
  for (const x of v) {
    if (!Number.isNaN(x)) {
      s += x;
      n++;
    }
  }
  return n ? s / n : Number.NaN;
}

/**
 * A `numClasses x numClasses` confusion matrix (rows: target, columns: prediction) accumulated over images;
 * pixels whose target is `ignoreIndex` are skipped. Class ids outside `[0, numClasses)` throw.
 */
export class ConfusionMatrix {
  /** Row-major counts `[target][prediction]`. */
  readonly matrix: Float64Array;
  readonly ignoreIndex: number | null;

  constructor(
    readonly numClasses: number,
    options: { ignoreIndex?: number | null } = {},
  ) {
    check(
      Number.isInteger(numClasses) && numClasses > 0,
      () => `ConfusionMatrix: numClasses must be a positive integer, got ${numClasses}`,
    );
    this.ignoreIndex = options.ignoreIndex ?? null;
    check(
      this.ignoreIndex === null || this.ignoreIndex < 0 || this.ignoreIndex >= numClasses,
      () =>
        `ConfusionMatrix: ignoreIndex must lie outside the class range 0..${numClasses - 1}, got ${this.ignoreIndex}`,
    );
    this.matrix = new Float64Array(numClasses * numClasses);
  }

  /** Adds a prediction and its target (class maps of equal shape: tensors, typed arrays or arrays). */
  update(prediction: LabelInput | ArrayLike<number>, target: LabelInput | ArrayLike<number>): this {
    const fn = 'ConfusionMatrix.update';
    const asInput = (x: LabelInput | ArrayLike<number>): LabelInput =>
      x instanceof tf.Tensor || (typeof x === 'object' && x !== null && 'shape' in x)
        ? (x as LabelInput)
        : { data: x as ArrayLike<number>, shape: [(x as ArrayLike<number>).length] };
    const p = read(fn, 'prediction', asInput(prediction));
    const t = read(fn, 'target', asInput(target));
    check(
      p.data.length === t.data.length,
      () => `${fn}: prediction ${shapeStr(p.shape)} and target ${shapeStr(t.shape)} must have the same size`,
    );
    const C = this.numClasses;
    const ign = this.ignoreIndex;
    for (let i = 0; i < t.data.length; i++) {
      const tv = t.data[i];
      if (tv === ign) continue;
      const pv = p.data[i];
      classCheck(fn, 'target', tv, C, i);
      classCheck(fn, 'prediction', pv, C, i);
      this.matrix[tv * C + pv]++;
    }
    return this;
  }

  reset(): void {
    this.matrix.fill(0);
  }

  /** Per-class and mean scores of everything added so far. */
  scores(): SegmentationScores {
    const C = this.numClasses;
    const m = this.matrix;
    const iou: number[] = [];
    const dice: number[] = [];
    const classAccuracy: number[] = [];
    let total = 0;
    let correct = 0;
    const support: number[] = [];
    for (let c = 0; c < C; c++) {
      let row = 0;
      let col = 0;
      for (let k = 0; k < C; k++) {
        row += m[c * C + k];
        col += m[k * C + c];
      }
      const tp = m[c * C + c];
      const fp = col - tp;
      const fnn = row - tp;
      total += row;
      correct += tp;
      support.push(row);
      const union = tp + fp + fnn;
      iou.push(union > 0 ? tp / union : Number.NaN);
      dice.push(union > 0 ? (2 * tp) / (2 * tp + fp + fnn) : Number.NaN);
      classAccuracy.push(row > 0 ? tp / row : Number.NaN);
    }
    let fw = 0;
    for (let c = 0; c < C; c++)
      if (support[c] > 0 && !Number.isNaN(iou[c])) fw += (support[c] / total) * iou[c];
    return {
      iou,
      meanIoU: nanMean(iou),
      dice,
      meanDice: nanMean(dice),
      pixelAccuracy: total > 0 ? correct / total : Number.NaN,
      classAccuracy,
      meanClassAccuracy: nanMean(classAccuracy),
      frequencyWeightedIoU: total > 0 ? fw : Number.NaN,
    };
  }
}

/** The scores of one prediction against its target (a one-off `ConfusionMatrix`). */
export function segmentationScores(
  prediction: LabelInput | ArrayLike<number>,
  target: LabelInput | ArrayLike<number>,
  numClasses: number,
  options: { ignoreIndex?: number | null } = {},
): SegmentationScores {
  return new ConfusionMatrix(numClasses, options).update(prediction, target).scores();
}

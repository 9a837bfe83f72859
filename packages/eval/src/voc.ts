/**
 * Pascal VOC detection AP as effdet's `PascalEvaluator` computes it (the TF object detection API metric):
 * per class, detections sorted by score are matched to the ground truth of highest IoU; a match (IoU >= the
 * threshold) to an unmatched box is a true positive, to an already matched box a false positive, and a match to a
 * `difficult` box is ignored; difficult boxes do not count as ground truth. AP is the area under the
 * interpolated precision/recall curve (all points, VOC2010+) or the VOC2007 11-point mean.
 */
import type { ImageId } from './coco.js';
import { argError, check } from './errors.js';
import { argsortDescStable, npMean, npSum } from './numeric.js';

export interface VocImageGroundTruth {
  imageId: ImageId;
  /** `[x1, y1, x2, y2]` per box. */
  boxes: readonly ArrayLike<number>[];
  labels: ArrayLike<number>;
  /** Per box; a difficult box is neither counted nor penalised. */
  difficult?: ArrayLike<number | boolean>;
}

export interface VocImageDetections {
  imageId: ImageId;
  /** `[x1, y1, x2, y2]` per box. */
  boxes: readonly ArrayLike<number>[];
  scores: ArrayLike<number>;
  labels: ArrayLike<number>;
}

export type VocApMetric = 'allpoints' | '11point';

export interface VocEvalOptions {
  /** Matching IoU threshold, inclusive (default 0.5). */
  iouThreshold?: number;
  /** 'allpoints' (area under the curve, effdet/TF default) or '11point' (VOC2007). */
  metric?: VocApMetric;
  /** Labels to report, in order (default: every label seen in the ground truth or detections, ascending). */
  labels?: readonly number[];
  /** Names for the report, by label. */
  labelNames?: Readonly<Record<number, string>>;
  /** VOCdevkit's inclusive-pixel areas (`x2 - x1 + 1`); effdet/TF use continuous coordinates (default false). */
  pixelInclusive?: boolean;
  /** Include each class's precision / recall arrays in the result (default false). */
  includeCurves?: boolean;
}

export interface VocClassResult {
  label: number;
  name: string;
  /** -1 when the class has no (non-difficult) ground truth. */
  ap: number;
  numGt: number;
  numDetections: number;
  numTruePositives: number;
  precision?: number[];
  recall?: number[];
}

export interface VocEvalResult {
  metric: VocApMetric;
  iouThreshold: number;
  /** Mean AP over classes with ground truth (-1 when there are none). */
  mAP: number;
  perClass: VocClassResult[];
}

/** IoU of two `[x1, y1, x2, y2]` boxes with the TF object detection API's arithmetic (optionally VOCdevkit's +1). */
export function vocBoxIou(a: ArrayLike<number>, b: ArrayLike<number>, pixelInclusive = false): number {
  const one = pixelInclusive ? 1 : 0;
  const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]) + one);
  const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]) + one);
  const inter = ih * iw;
  const areaA = (a[3] - a[1] + one) * (a[2] - a[0] + one);
  const areaB = (b[3] - b[1] + one) * (b[2] - b[0] + one);
  return inter / (areaA + areaB - inter);
}

/**
 * Area under the interpolated precision/recall curve (VOC2010+, TF `compute_average_precision`): recall padded
 * with 0 and 1, precision with 0 and 0, precision made non-increasing from the right, then summed over the
 * recall steps. 0 for empty inputs.
 */
export function vocApAllPoints(recall: ArrayLike<number>, precision: ArrayLike<number>): number {
  check(
    recall.length === precision.length,
    'vocApAllPoints',
    'precision',
    `length ${recall.length}`,
    precision,
  );
  if (precision.length === 0) return 0;
  const n = recall.length + 2;
  const r = new Float64Array(n);
  const p = new Float64Array(n);
  for (let i = 0; i < recall.length; i++) {
    r[i + 1] = recall[i];
    p[i + 1] = precision[i];
  }
  r[n - 1] = 1;
  for (let i = n - 2; i >= 0; i--) p[i] = Math.max(p[i], p[i + 1]);
  const terms: number[] = [];
  for (let i = 1; i < n; i++) if (r[i] !== r[i - 1]) terms.push((r[i] - r[i - 1]) * p[i]);
  return npSum(terms);
}

/** VOC2007 11-point AP: the mean over t = 0, 0.1, ..., 1 of the best precision at recall >= t (0 if none). */
export function vocAp11Point(recall: ArrayLike<number>, precision: ArrayLike<number>): number {
  check(
    recall.length === precision.length,
    'vocAp11Point',
    'precision',
    `length ${recall.length}`,
    precision,
  );
  let ap = 0;
  for (let i = 0; i < 11; i++) {
    const t = i * 0.1; // np.arange(0., 1.1, 0.1)
    let p = 0;
    let any = false;
    for (let j = 0; j < recall.length; j++) {
      if (recall[j] >= t) {
        p = any ? Math.max(p, precision[j]) : precision[j];
        any = true;
      }
    }
    ap = ap + p / 11;
  }
  return ap;
}

interface ClassAcc {
  numGt: number;
  scores: number[];
  tp: number[];
  numDetections: number;
}

function checkImage(
  fn: string,
  what: string,
  boxes: readonly ArrayLike<number>[],
  n: number,
  i: number,
): void {
  check(Array.isArray(boxes), fn, `${what}[${i}].boxes`, 'an array of [x1, y1, x2, y2] boxes', boxes);
  boxes.forEach((b, j) => {
    check(b && b.length === 4, fn, `${what}[${i}].boxes[${j}]`, 'an [x1, y1, x2, y2] box', b);
  });
  check(n === boxes.length, fn, `${what}[${i}].labels`, `${boxes.length} labels`, n);
}

/** Pascal VOC evaluation over images; images are joined by `imageId` (detections of unknown images are all FP). */
export function evaluateVoc(
  groundTruth: readonly VocImageGroundTruth[],
  detections: readonly VocImageDetections[],
  options: VocEvalOptions = {},
): VocEvalResult {
  const fn = 'evaluateVoc';
  const thr = options.iouThreshold ?? 0.5;
  const metric = options.metric ?? 'allpoints';
  check(
    metric === 'allpoints' || metric === '11point',
    fn,
    'options.metric',
    "'allpoints' or '11point'",
    metric,
  );
  check(
    typeof thr === 'number' && thr >= 0 && thr <= 1,
    fn,
    'options.iouThreshold',
    'a number in [0, 1]',
    thr,
  );
  const inclusive = !!options.pixelInclusive;
  const acc = new Map<number, ClassAcc>();
  const get = (label: number): ClassAcc => {
    let a = acc.get(label);
    if (!a) {
      a = { numGt: 0, scores: [], tp: [], numDetections: 0 };
      acc.set(label, a);
    }
    return a;
  };
  const gtByImage = new Map<ImageId, VocImageGroundTruth>();
  groundTruth.forEach((g, i) => {
    checkImage(fn, 'groundTruth', g.boxes, g.labels.length, i);
    if (g.difficult) {
      check(
        g.difficult.length === g.boxes.length,
        fn,
        `groundTruth[${i}].difficult`,
        `${g.boxes.length} flags`,
        g.difficult,
      );
    }
    if (gtByImage.has(g.imageId))
      throw argError(fn, `groundTruth[${i}].imageId`, 'unique image ids', g.imageId);
    gtByImage.set(g.imageId, g);
    for (let j = 0; j < g.boxes.length; j++) {
      const a = get(g.labels[j]);
      if (!g.difficult?.[j]) a.numGt++;
    }
  });
  const seenDet = new Set<ImageId>();
  detections.forEach((d, i) => {
    checkImage(fn, 'detections', d.boxes, d.labels.length, i);
    check(
      d.scores.length === d.boxes.length,
      fn,
      `detections[${i}].scores`,
      `${d.boxes.length} scores`,
      d.scores,
    );
    if (seenDet.has(d.imageId)) throw argError(fn, `detections[${i}].imageId`, 'unique image ids', d.imageId);
    seenDet.add(d.imageId);
    const gt = gtByImage.get(d.imageId);
    // Valid boxes only (x1 < x2 and y1 < y2), grouped by label in score order.
    const byLabel = new Map<number, number[]>();
    for (let j = 0; j < d.boxes.length; j++) {
      const b = d.boxes[j];
      if (!(b[0] < b[2] && b[1] < b[3])) continue;
      const l = d.labels[j];
      let list = byLabel.get(l);
      if (!list) {
        list = [];
        byLabel.set(l, list);
      }
      list.push(j);
    }
    for (const [label, idxs] of byLabel) {
      const a = get(label);
      const order = argsortDescStable(idxs.map((j) => d.scores[j]));
      const gtIdx: number[] = [];
      if (gt) for (let g = 0; g < gt.boxes.length; g++) if (gt.labels[g] === label) gtIdx.push(g);
      const detected = new Uint8Array(gtIdx.length);
      for (const o of order) {
        const j = idxs[o];
        a.numDetections++;
        if (gtIdx.length === 0) {
          a.scores.push(d.scores[j]);
          a.tp.push(0);
          continue;
        }
        let best = 0;
        let bestIou = Number.NEGATIVE_INFINITY;
        for (let g = 0; g < gtIdx.length; g++) {
          const v = vocBoxIou(d.boxes[j], gt!.boxes[gtIdx[g]], inclusive);
          if (v > bestIou) {
            bestIou = v;
            best = g;
          }
        }
        if (bestIou >= thr) {
          if (gt!.difficult?.[gtIdx[best]]) continue; // matched to a difficult box: ignored
          if (!detected[best]) {
            detected[best] = 1;
            a.scores.push(d.scores[j]);
            a.tp.push(1);
            continue;
          }
        }
        a.scores.push(d.scores[j]);
        a.tp.push(0);
      }
    }
  });
  const labels = options.labels ? [...options.labels] : [...acc.keys()].sort((x, y) => x - y);
  const perClass: VocClassResult[] = [];
  const aps: number[] = [];
  for (const label of labels) {
    const a = acc.get(label) ?? { numGt: 0, scores: [], tp: [], numDetections: 0 };
    const name = options.labelNames?.[label] ?? String(label);
    const res: VocClassResult = {
      label,
      name,
      ap: -1,
      numGt: a.numGt,
      numDetections: a.numDetections,
      numTruePositives: a.tp.reduce((s, v) => s + v, 0),
    };
    if (a.numGt > 0) {
      const order = argsortDescStable(a.scores);
      const precision = new Array<number>(order.length);
      const recall = new Array<number>(order.length);
      let tp = 0;
      let fp = 0;
      for (let q = 0; q < order.length; q++) {
        if (a.tp[order[q]]) tp++;
        else fp++;
        precision[q] = tp / (tp + fp);
        recall[q] = tp / a.numGt;
      }
      res.ap = metric === '11point' ? vocAp11Point(recall, precision) : vocApAllPoints(recall, precision);
      aps.push(res.ap);
      if (options.includeCurves) {
        res.precision = precision;
        res.recall = recall;
      }
    }
    perClass.push(res);
  }
  const mAP = aps.length ? npMean(aps) : -1;
  return { metric, iouThreshold: thr, mAP, perClass };
}

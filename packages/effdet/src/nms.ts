/**
 * Non-maximum suppression on host arrays, written to reproduce the reference implementations exactly:
 * - hard NMS = torchvision `nms` / `batched_nms` (what effdet's `generate_detections` calls): candidates in
 *   stable score-descending order, a candidate is dropped when its IoU with an already kept box of the same
 *   class is STRICTLY greater than the threshold; IoU = inter / (areaA + areaB - inter) without "+1", in float32.
 *   (TF.js `tf.image.nonMaxSuppression` drops at IoU >= threshold and is class-agnostic, so it is not used.)
 * - soft-NMS = effdet `soft_nms.py` (Gaussian): repeatedly take the highest remaining score, multiply every
 *   remaining score by exp(-IoU^2 / sigma), prune scores <= scoreThreshold. Classes are kept apart by effdet's
 *   coordinate-offset trick by default.
 * Boxes are x1, y1, x2, y2, flat (`[N * 4]`). Arithmetic is rounded to float32 step by step (Math.fround) so that
 * threshold decisions fall the same way as in PyTorch.
 */
import { check } from '@effdet/layers';

const f32 = Math.fround;

// Plain comparisons instead of Math.max/min in the hot loops: the same values for non-NaN input, and far faster
// inside Jest's vm contexts, where the Math builtins are not inlined.
// biome-ignore lint/complexity/useMathMinMax: see above
const maxOf = (a: number, b: number): number => (a > b ? a : b);
// biome-ignore lint/complexity/useMathMinMax: see above
const minOf = (a: number, b: number): number => (a < b ? a : b);

export interface NmsOptions {
  /** Suppress when IoU > iouThreshold (strictly). Default 0.5. */
  iouThreshold?: number;
  /** Stop after this many kept boxes (the result is the same prefix). Default: no limit. */
  maxOutputSize?: number;
}

export interface SoftNmsOptions {
  /** Gaussian decay exp(-IoU^2 / sigma). Default 0.5 (effdet). */
  sigma?: number;
  /** Remaining candidates whose decayed score is <= this are pruned. Default 0.001 (effdet's `batched_soft_nms`). */
  scoreThreshold?: number;
  /** Stop after this many kept boxes (the result is the same prefix). Default: no limit. */
  maxOutputSize?: number;
  /**
   * How classes are kept apart in `batchedSoftNms`. 'offset' (default) = effdet: every box is shifted by
   * class * (max coordinate + 1) in float32 and all boxes go through one soft-NMS; boxes with coordinates below
   * -1 can then overlap a neighbouring class, exactly as in effdet. 'strict' = boxes of different classes never
   * interact.
   */
  classSeparation?: 'offset' | 'strict';
}

export interface SoftNmsResult {
  /** Indices into the input, in selection order (non-increasing decayed score). */
  indices: Int32Array;
  /** The decayed score of each selected box. */
  scores: Float32Array;
}

function toF32(a: ArrayLike<number>): Float32Array {
  return a instanceof Float32Array ? a : Float32Array.from(a);
}

function validate(
  fn: string,
  boxes: ArrayLike<number>,
  scores: ArrayLike<number>,
  classes?: ArrayLike<number>,
): number {
  check(
    boxes != null && typeof boxes.length === 'number' && boxes.length % 4 === 0,
    () => `${fn}: boxes must be a flat array of N * 4 numbers (x1, y1, x2, y2), got length ${boxes?.length}`,
  );
  const n = boxes.length / 4;
  check(
    scores != null && scores.length === n,
    () => `${fn}: scores must have one value per box (${n}), got length ${scores?.length}`,
  );
  if (classes !== undefined) {
    check(
      classes != null && classes.length === n,
      () => `${fn}: classes must have one value per box (${n}), got length ${classes?.length}`,
    );
  }
  return n;
}

function checkMaxOutput(fn: string, v: number | undefined): number {
  const m = v ?? Number.POSITIVE_INFINITY;
  check(
    m === Number.POSITIVE_INFINITY || (Number.isInteger(m) && m >= 0),
    () => `${fn}: maxOutputSize must be an integer >= 0, got ${String(v)}`,
  );
  return m;
}

/** Box areas (x2 - x1) * (y2 - y1) in float32. */
function areasOf(b: Float32Array, n: number): Float32Array {
  const areas = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    areas[i] = f32(f32(b[4 * i + 2] - b[4 * i]) * f32(b[4 * i + 3] - b[4 * i + 1]));
  }
  return areas;
}

/** torchvision's IoU of boxes i and j (float32, may be NaN for two empty boxes). */
function iouTv(b: Float32Array, areas: Float32Array, i: number, j: number): number {
  const dw = f32(minOf(b[4 * i + 2], b[4 * j + 2]) - maxOf(b[4 * i], b[4 * j]));
  const dh = f32(minOf(b[4 * i + 3], b[4 * j + 3]) - maxOf(b[4 * i + 1], b[4 * j + 1]));
  const inter = f32(maxOf(dw, 0) * maxOf(dh, 0));
  return f32(inter / f32(f32(areas[i] + areas[j]) - inter));
}

/**
 * IoU of two x1, y1, x2, y2 boxes given as flat arrays and box indices (float32 arithmetic; 0 when they do not
 * intersect, as effdet's `pairwise_iou`).
 */
export function boxIou(a: ArrayLike<number>, ai: number, b: ArrayLike<number>, bi: number): number {
  const ax1 = f32(a[4 * ai]);
  const ay1 = f32(a[4 * ai + 1]);
  const ax2 = f32(a[4 * ai + 2]);
  const ay2 = f32(a[4 * ai + 3]);
  const bx1 = f32(b[4 * bi]);
  const by1 = f32(b[4 * bi + 1]);
  const bx2 = f32(b[4 * bi + 2]);
  const by2 = f32(b[4 * bi + 3]);
  const areaA = f32(f32(ax2 - ax1) * f32(ay2 - ay1));
  const areaB = f32(f32(bx2 - bx1) * f32(by2 - by1));
  const w = Math.max(0, f32(Math.min(ax2, bx2) - Math.max(ax1, bx1)));
  const h = Math.max(0, f32(Math.min(ay2, by2) - Math.max(ay1, by1)));
  const inter = f32(w * h);
  return inter > 0 ? f32(inter / f32(f32(areaA + areaB) - inter)) : 0;
}

/** Indices 0..n-1 sorted by score descending; ties keep index order (a stable sort); NaN scores go last. */
export function argsortDescending(scores: ArrayLike<number>): Int32Array {
  const n = scores.length;
  const idx = Array.from({ length: n }, (_, i) => i);
  const key = (i: number) => (Number.isNaN(scores[i]) ? Number.NEGATIVE_INFINITY : scores[i]);
  idx.sort((a, b) => key(b) - key(a) || a - b);
  return Int32Array.from(idx);
}

function hardNms(
  fn: string,
  boxes: ArrayLike<number>,
  scores: ArrayLike<number>,
  classes: ArrayLike<number> | undefined,
  options: NmsOptions,
): Int32Array {
  const n = validate(fn, boxes, scores, classes);
  const thr = options.iouThreshold ?? 0.5;
  check(
    Number.isFinite(thr),
    () => `${fn}: iouThreshold must be a finite number, got ${String(options.iouThreshold)}`,
  );
  const maxOut = checkMaxOutput(fn, options.maxOutputSize);
  const b = toF32(boxes);
  const areas = areasOf(b, n);
  const order = argsortDescending(scores);
  const kept: number[] = [];
  // Kept boxes grouped by class, so a candidate is only compared with its own class.
  const keptByClass = new Map<number, number[]>();
  for (let o = 0; o < n && kept.length < maxOut; o++) {
    const j = order[o];
    const cls = classes ? classes[j] : 0;
    let group = keptByClass.get(cls);
    if (!group) {
      group = [];
      keptByClass.set(cls, group);
    }
    let suppressed = false;
    for (const i of group) {
      if (iouTv(b, areas, i, j) > thr) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) {
      group.push(j);
      kept.push(j);
    }
  }
  return Int32Array.from(kept);
}

/**
 * torchvision `nms`: indices of the kept boxes, by descending score (ties: lower index first).
 * @param boxes flat x1, y1, x2, y2 `[N * 4]`
 */
export function nms(
  boxes: ArrayLike<number>,
  scores: ArrayLike<number>,
  options: NmsOptions = {},
): Int32Array {
  return hardNms('nms', boxes, scores, undefined, options);
}

/**
 * torchvision `batched_nms`: NMS independently per class, kept indices of all classes merged by descending
 * score (ties: lower index first). Equals torchvision's per-class ("vanilla") path, which it takes for more than
 * 1000 CPU boxes (effdet always has 5000); its coordinate-offset path for small inputs gives the same result
 * unless boxes with coordinates below -1 overlap a neighbouring class after the shift.
 */
export function batchedNms(
  boxes: ArrayLike<number>,
  scores: ArrayLike<number>,
  classes: ArrayLike<number>,
  options: NmsOptions = {},
): Int32Array {
  return hardNms('batchedNms', boxes, scores, classes, options);
}

function softNmsImpl(
  fn: string,
  boxesIn: ArrayLike<number>,
  scoresIn: ArrayLike<number>,
  classes: ArrayLike<number> | undefined,
  options: SoftNmsOptions,
): SoftNmsResult {
  const n = validate(fn, boxesIn, scoresIn, classes);
  const sigma = options.sigma ?? 0.5;
  const thrIn = options.scoreThreshold ?? 0.001;
  check(
    Number.isFinite(sigma) && sigma > 0,
    () => `${fn}: sigma must be a number > 0, got ${String(options.sigma)}`,
  );
  check(
    Number.isFinite(thrIn),
    () => `${fn}: scoreThreshold must be a finite number, got ${String(options.scoreThreshold)}`,
  );
  const sep = options.classSeparation ?? 'offset';
  check(
    sep === 'offset' || sep === 'strict',
    () => `${fn}: classSeparation must be 'offset' or 'strict', got ${String(sep)}`,
  );
  const maxOut = checkMaxOutput(fn, options.maxOutputSize);
  if (n === 0) return { indices: new Int32Array(0), scores: new Float32Array(0) };
  const thr = f32(thrIn);

  let b = toF32(boxesIn);
  if (classes && sep === 'offset') {
    // effdet batched_soft_nms: boxes + class * (boxes.max() + 1), float32.
    let maxCoord = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < b.length; i++) if (b[i] > maxCoord) maxCoord = b[i];
    const step = f32(maxCoord + 1);
    const shifted = new Float32Array(b.length);
    for (let i = 0; i < n; i++) {
      const off = f32(classes[i] * step);
      for (let k = 0; k < 4; k++) shifted[4 * i + k] = b[4 * i + k] + off;
    }
    b = shifted;
  }
  const strict = classes !== undefined && sep === 'strict';
  const areas = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    areas[i] = f32(f32(b[4 * i + 2] - b[4 * i]) * f32(b[4 * i + 3] - b[4 * i + 1]));
  }

  // Remaining candidates, in input order (torch.argmax returns the first maximum).
  let idx = new Int32Array(n);
  let cur = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    idx[i] = i;
    cur[i] = scoresIn[i];
  }
  let remain = n;
  const outIdx: number[] = [];
  const outScore: number[] = [];
  while (remain > 0 && outIdx.length < maxOut) {
    let top = 0;
    for (let r = 1; r < remain; r++) if (cur[r] > cur[top]) top = r;
    const t = idx[top];
    outIdx.push(t);
    outScore.push(cur[top]);
    const tx1 = b[4 * t];
    const ty1 = b[4 * t + 1];
    const tx2 = b[4 * t + 2];
    const ty2 = b[4 * t + 3];
    const tArea = areas[t];
    const nextIdx = new Int32Array(remain);
    const nextCur = new Float32Array(remain);
    let m = 0;
    for (let r = 0; r < remain; r++) {
      if (r === top) continue;
      const j = idx[r];
      let iou = 0;
      if (!strict || classes[j] === classes[t]) {
        const x1 = b[4 * j];
        const y1 = b[4 * j + 1];
        const x2 = b[4 * j + 2];
        const y2 = b[4 * j + 3];
        const dw = f32(minOf(tx2, x2) - maxOf(tx1, x1));
        const dh = f32(minOf(ty2, y2) - maxOf(ty1, y1));
        const inter = dw > 0 && dh > 0 ? f32(dw * dh) : 0;
        iou = inter > 0 ? f32(inter / f32(f32(tArea + areas[j]) - inter)) : 0;
      }
      // exp(-0 / sigma) = 1 exactly, so non-overlapping pairs keep their score bit for bit.
      const s = iou > 0 ? f32(cur[r] * f32(Math.exp(f32(-f32(iou * iou) / sigma)))) : cur[r];
      if (s > thr) {
        nextIdx[m] = j;
        nextCur[m] = s;
        m++;
      }
    }
    idx = nextIdx;
    cur = nextCur;
    remain = m;
  }
  return { indices: Int32Array.from(outIdx), scores: Float32Array.from(outScore) };
}

/** effdet `soft_nms` (Gaussian) over one set of boxes (flat x1, y1, x2, y2). */
export function softNms(
  boxes: ArrayLike<number>,
  scores: ArrayLike<number>,
  options: SoftNmsOptions = {},
): SoftNmsResult {
  return softNmsImpl('softNms', boxes, scores, undefined, options);
}

/** effdet `batched_soft_nms` (Gaussian, per class); see `SoftNmsOptions.classSeparation`. */
export function batchedSoftNms(
  boxes: ArrayLike<number>,
  scores: ArrayLike<number>,
  classes: ArrayLike<number>,
  options: SoftNmsOptions = {},
): SoftNmsResult {
  return softNmsImpl('batchedSoftNms', boxes, scores, classes, options);
}

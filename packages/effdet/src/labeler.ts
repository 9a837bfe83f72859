/**
 * Training targets for every anchor: effdet's `AnchorLabeler` (`effdet/anchors.py`) with the target assigner,
 * IoU similarity, arg-max matcher and Faster R-CNN box coder of `effdet/object_detection/`, on host arrays.
 *
 * Per image, with the ground-truth boxes as rows and the anchors as columns of an IoU matrix:
 * 1. Rows whose class is not `> -1` are dropped (effdet `filter_valid`: padding rows are `-1`).
 * 2. Each anchor takes the row with its highest IoU (the first such row on ties: PyTorch's `max` / `argmax`
 *    return the first maximal index, as TF's `argmax` in automl does). IoU >= `matchThreshold`
 *    (0.5) makes it positive; below it, negative. effdet uses the same value as matched and unmatched threshold,
 *    so there is no "ignore" band between them.
 * 3. Force match (`force_match_for_each_row`): every row claims its highest-IoU anchor (the lowest anchor index
 *    on ties), whatever that IoU is, overriding step 2 (even another row's positive). When two rows claim the
 *    same anchor the lower row index wins (the reference takes the max of a one-hot over rows), and the other row is
 *    left without its forced anchor. A row that overlaps no anchor at all (IoU 0 everywhere, e.g. a zero-area
 *    box) claims anchor 0, exactly as the reference's arg-max does.
 * 4. Positive anchors get class target `class - 1` (0-based) and the encoded box `[ty, tx, th, tw]`; negatives
 *    get class -1 and box 0. `numPositives` counts the matched anchors.
 *
 * IoU and box codes are computed in float32 arithmetic, operation by operation as PyTorch does on the float32
 * anchors, so exact ties, the 0.5 threshold and exact-zero box codes (which the box loss masks out) decide the
 * same way as in the reference.
 *
 * Nothing dense is built: IoU <= min(area) / max(area) rules out whole anchor types per box, and within a type
 * only the rows and columns of anchors that intersect the box are visited; only anchors whose outcome is not
 * "negative" are recorded. Labelling 4 images x 10 boxes against d0's 49,104 anchors takes ~2 ms (most of it
 * allocating the outputs).
 *
 * Ignore boxes (not in effdet; e.g. COCO `iscrowd` regions): they join the arg-max of step 2 as extra rows after
 * the real ones. An anchor whose best row is an ignore box with IoU >= `matchThreshold` gets the class target -2,
 * which `detectionLoss` masks out of the class loss (no box target, not counted as positive). Ignore boxes are
 * never force-matched, a real box's force match (step 3) wins over them, a real box wins an exact IoU tie, and
 * they apply in an image without real boxes too. With no ignore boxes (the default)
 * the result is exactly effdet's. Note that effdet's own labeler never emits -2: its matcher's "ignored" anchors
 * (only possible with two different thresholds) get the background class -1.
 */
import { check, EffdetArgumentError } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import type { Anchors } from './anchors.js';
import { BOX_CODER_EPS } from './boxes.js';

// Local aliases: a global `Math.*` lookup is very slow inside Jest's VM, and these run per anchor.
const fround = Math.fround;
const mathLog = Math.log;

/** Class target of a negative (background) anchor. */
export const CLASS_TARGET_NEGATIVE = -1;
/** Class target of an anchor inside an ignore box: masked out of the class loss. */
export const CLASS_TARGET_IGNORED = -2;

/** Boxes `y1, x1, y2, x2` in input pixels: a flat array of 4 * N numbers, or N `[y1, x1, y2, x2]` rows. */
export type BoxesInput = ArrayLike<number> | readonly (readonly number[])[];

export interface AnchorLabelerOptions {
  /**
   * IoU at or above which an anchor is positive; below it the anchor is negative (effdet uses it as both the
   * matched and the unmatched threshold). Default 0.5.
   */
  matchThreshold?: number;
}

export interface LabelOptions {
  /** Regions whose anchors are neither positive nor negative (class target -2); see the module notes. */
  ignoreBoxes?: BoxesInput | null;
}

export interface BatchLabelOptions {
  /** Ignore boxes per image (`null` / missing entries: none). */
  ignoreBoxes?: readonly (BoxesInput | null | undefined)[] | null;
}

/** Targets of one image, per level minLevel..maxLevel. */
export interface ImageLabels {
  /** `[h * w * A]` per level, in head-output order (row, column, anchor): 0-based class, -1 negative, -2 ignored. */
  clsTargets: Int32Array[];
  /** `[h * w * A * 4]` per level: `ty, tx, th, tw` for positives, 0 elsewhere. */
  boxTargets: Float32Array[];
  numPositives: number;
  /** Anchors labelled -2 (inside an ignore box). */
  numIgnored: number;
}

/** Targets of a batch, laid out like the head outputs. */
export interface BatchLabels {
  batchSize: number;
  /** `[h, w, A]` per level. */
  levelShapes: [number, number, number][];
  /** `[B, h, w, A]` per level (flat). */
  clsTargets: Int32Array[];
  /** `[B, h, w, A * 4]` per level (flat). */
  boxTargets: Float32Array[];
  /** `[B]`. */
  numPositives: Int32Array;
}

/** Targets as tensors, what `detectionLoss` takes (effdet's `label_cls_{l}`, `label_bbox_{l}`, `label_num_positives`). */
export interface LabelTensors {
  /** int32 `[B, h, w, A]` per level. */
  clsTargets: tf.Tensor4D[];
  /** float32 `[B, h, w, A * 4]` per level. */
  boxTargets: tf.Tensor4D[];
  /** float32 `[B]`. */
  numPositives: tf.Tensor1D;
}

interface ParsedBoxes {
  /** Row index in the caller's input of each kept box. */
  rows: number[];
  coords: Float32Array;
  classes: number[];
}

function isNestedBoxes(b: BoxesInput): b is readonly (readonly number[])[] {
  return (b as ArrayLike<unknown>).length > 0 && typeof (b as ArrayLike<unknown>)[0] !== 'number';
}

/** Flat float32 `[N * 4]` from either box form (values rounded to float32, as the reference's tensors are). */
function flattenBoxes(fn: string, arg: string, boxes: BoxesInput): Float32Array {
  check(
    boxes !== null && typeof boxes === 'object' && typeof (boxes as ArrayLike<number>).length === 'number',
    () =>
      `${fn}: ${arg} must be a flat array of 4 * N numbers or N [y1, x1, y2, x2] rows, got ${String(boxes)}`,
  );
  let flat: Float32Array;
  if (isNestedBoxes(boxes)) {
    flat = new Float32Array(boxes.length * 4);
    for (let i = 0; i < boxes.length; i++) {
      const row = boxes[i];
      check(
        Array.isArray(row) && row.length === 4,
        () => `${fn}: ${arg}[${i}] must be [y1, x1, y2, x2], got ${JSON.stringify(row)}`,
      );
      for (let k = 0; k < 4; k++) flat[i * 4 + k] = row[k];
    }
  } else {
    check(
      boxes.length % 4 === 0,
      () => `${fn}: ${arg} must hold 4 * N numbers (y1, x1, y2, x2 per box), got ${boxes.length}`,
    );
    flat = Float32Array.from(boxes);
  }
  for (let i = 0; i < flat.length; i++) {
    check(
      Number.isFinite(flat[i]),
      () => `${fn}: ${arg} must be finite, got ${flat[i]} in box ${Math.floor(i / 4)}`,
    );
  }
  return flat;
}

/** Per level: the anchor grid, exact float32 values (an anchor's y depends on its row and type only, x on its column). */
interface LevelGrid {
  h: number;
  w: number;
  /** First anchor index of the level. */
  start: number;
  /** `[a * h + r]`: y1, y2 and float32 height `y2 - y1` of the type-a anchors of row r. */
  y1: Float32Array;
  y2: Float32Array;
  hgt: Float32Array;
  /** `[a * w + c]`: x1, x2 and float32 width of the type-a anchors of column c. */
  x1: Float32Array;
  x2: Float32Array;
  wid: Float32Array;
}

/**
 * Labels anchors with ground truth for the loss (effdet `AnchorLabeler`). Build one per model geometry (it keeps
 * the anchor grid in float32 and scratch buffers sized to the anchors), then label any number of images. Not
 * re-entrant: one labelling at a time per instance.
 */
export class AnchorLabeler {
  readonly numClasses: number;
  readonly matchThreshold: number;
  readonly numAnchors: number;
  /** Anchors per location A. */
  readonly numAnchorsPerLocation: number;
  /** `[h, w, A]` per level. */
  readonly levelShapes: [number, number, number][];
  /** The threshold as float32: PyTorch compares the float32 IoU with the threshold cast to float32. */
  private readonly threshold32: number;
  private readonly grids: LevelGrid[];
  /** Smallest / largest float32 area of each anchor type `t = level * A + a`, for the IoU bound. */
  private readonly typeMinArea: Float64Array;
  private readonly typeMaxArea: Float64Array;
  // Scratch of one image. bestIou / bestRow hold only IoUs >= the threshold (0 elsewhere): an anchor whose best
  // IoU is below it is negative whichever row that is, so smaller IoUs never change a result.
  private readonly typeOrder: Int32Array;
  private readonly typeBound: Float64Array;
  private readonly bestIou: Float32Array;
  private readonly bestRow: Int32Array;
  private readonly ignored: Uint8Array;
  private readonly matches: Int32Array;
  /** Anchors touched in this image (bestIou set, or ignored), to reset and to emit; `stamp` dedupes. */
  private readonly touched: Int32Array;
  private numTouched = 0;
  private readonly stamp: Int32Array;
  private epoch = 0;

  constructor(anchors: Anchors, numClasses: number, options: AnchorLabelerOptions = {}) {
    check(
      anchors !== null &&
        typeof anchors === 'object' &&
        anchors.boxesArray instanceof Float32Array &&
        Array.isArray(anchors.levelSizes),
      () => `AnchorLabeler: anchors must be an Anchors instance, got ${String(anchors)}`,
    );
    check(
      Number.isInteger(numClasses) && numClasses > 0,
      () => `AnchorLabeler: numClasses must be a positive integer, got ${String(numClasses)}`,
    );
    const thr = options.matchThreshold ?? 0.5;
    check(
      typeof thr === 'number' && thr > 0 && thr <= 1,
      () => `AnchorLabeler: matchThreshold must be a number in (0, 1], got ${String(thr)}`,
    );
    this.numClasses = numClasses;
    this.matchThreshold = thr;
    this.threshold32 = fround(thr);
    const boxes = anchors.boxesArray;
    const n = boxes.length / 4;
    const A = anchors.numAnchorsPerLocation;
    this.numAnchors = n;
    this.numAnchorsPerLocation = A;
    this.levelShapes = anchors.levelSizes.map(([lh, lw]) => [lh, lw, A] as [number, number, number]);
    this.grids = [];
    this.typeMinArea = new Float64Array(this.levelShapes.length * A).fill(Number.POSITIVE_INFINITY);
    this.typeMaxArea = new Float64Array(this.levelShapes.length * A).fill(Number.NEGATIVE_INFINITY);
    let i = 0;
    for (const [l, [lh, lw]] of this.levelShapes.entries()) {
      const g: LevelGrid = {
        h: lh,
        w: lw,
        start: i,
        y1: new Float32Array(A * lh),
        y2: new Float32Array(A * lh),
        hgt: new Float32Array(A * lh),
        x1: new Float32Array(A * lw),
        x2: new Float32Array(A * lw),
        wid: new Float32Array(A * lw),
      };
      check(
        i + lh * lw * A <= n,
        () => `AnchorLabeler: anchors hold ${n} boxes, fewer than their levels describe`,
      );
      const { y1, y2, hgt, x1, x2, wid } = g;
      const minArea = this.typeMinArea;
      const maxArea = this.typeMaxArea;
      for (let r = 0; r < lh; r++) {
        for (let c = 0; c < lw; c++) {
          for (let a = 0; a < A; a++, i++) {
            const ri = a * lh + r;
            const ci = a * lw + c;
            if (c === 0) {
              y1[ri] = boxes[4 * i];
              y2[ri] = boxes[4 * i + 2];
              hgt[ri] = fround(y2[ri] - y1[ri]);
            }
            if (r === 0) {
              x1[ci] = boxes[4 * i + 1];
              x2[ci] = boxes[4 * i + 3];
              wid[ci] = fround(x2[ci] - x1[ci]);
            }
            if (
              !(
                boxes[4 * i] === y1[ri] &&
                boxes[4 * i + 2] === y2[ri] &&
                boxes[4 * i + 1] === x1[ci] &&
                boxes[4 * i + 3] === x2[ci] &&
                hgt[ri] > 0 &&
                wid[ci] > 0
              )
            ) {
              throw new EffdetArgumentError(
                `AnchorLabeler: anchors must form a grid per level (y by row, x by column, positive sizes); anchor ${i} (level ${l}, row ${r}, column ${c}, type ${a}) does not`,
              );
            }
            const area = fround(hgt[ri] * wid[ci]);
            const t = l * A + a;
            if (area < minArea[t]) minArea[t] = area;
            if (area > maxArea[t]) maxArea[t] = area;
          }
        }
      }
      this.grids.push(g);
    }
    check(i === n, () => `AnchorLabeler: anchors hold ${n} boxes but their levels describe ${i}`);
    this.typeOrder = new Int32Array(this.levelShapes.length * A);
    this.typeBound = new Float64Array(this.levelShapes.length * A);
    this.bestIou = new Float32Array(n);
    this.bestRow = new Int32Array(n);
    this.ignored = new Uint8Array(n);
    this.matches = new Int32Array(n);
    this.touched = new Int32Array(n);
    this.stamp = new Int32Array(n);
  }

  /** Number of pyramid levels. */
  get numLevels(): number {
    return this.levelShapes.length;
  }

  /**
   * Validates one image's boxes and classes and keeps the rows effdet keeps (class `> -1`). Classes are 1-based
   * integers up to numClasses; class 0 passes effdet's filter and is kept (its anchors count as positives but get
   * the background class target -1, as in the reference).
   */
  private parse(fn: string, boxes: BoxesInput, classes: ArrayLike<number>): ParsedBoxes {
    const flat = flattenBoxes(fn, 'boxes', boxes);
    const n = flat.length / 4;
    check(
      classes !== null && typeof classes === 'object' && classes.length === n,
      () =>
        `${fn}: classes must hold one class per box (${n}), got ${classes === null || typeof classes !== 'object' ? String(classes) : classes.length}`,
    );
    const rows: number[] = [];
    const kept: number[] = [];
    for (let i = 0; i < n; i++) {
      const c = classes[i];
      check(
        typeof c === 'number' && !Number.isNaN(c),
        () => `${fn}: classes[${i}] must be a number, got ${c}`,
      );
      if (!(c > -1)) continue; // padding
      check(
        Number.isInteger(c) && c <= this.numClasses,
        () =>
          `${fn}: classes[${i}] must be a 1-based integer class <= ${this.numClasses} (or <= -1 for padding), got ${c}`,
      );
      rows.push(i);
      kept.push(c);
    }
    const coords = new Float32Array(rows.length * 4);
    for (let j = 0; j < rows.length; j++) coords.set(flat.subarray(rows[j] * 4, rows[j] * 4 + 4), j * 4);
    return { rows, coords, classes: kept };
  }

  /** Records anchor i as touched in this image (once). */
  private touch(i: number): void {
    if (this.stamp[i] !== this.epoch) {
      this.stamp[i] = this.epoch;
      this.touched[this.numTouched++] = i;
    }
  }

  /**
   * Computes the float32 IoU of box (y1, x1, y2, x2) with the anchors that can decide something and records it:
   * for a real row (`row >= 0`) the per-anchor best row when the IoU reaches the threshold (first row on ties)
   * and the row's own best anchor over all IoUs (the lowest anchor index on ties; anchor 0 when nothing
   * overlaps), which is returned; for an ignore box (`row < 0`) the ignored flag.
   *
   * Pruning, exact for every result: IoU <= min(area) / max(area), so an anchor type (level, octave, aspect)
   * whose area bound is below the threshold can be neither positive nor ignored, and it only matters for the
   * force match while its bound reaches the row's best IoU so far; types are visited by decreasing bound.
   * Within a type only the rows and columns whose anchors intersect the box are visited.
   */
  private scan(row: number, y1: number, x1: number, y2: number, x2: number): number {
    const areaG = fround(fround(y2 - y1) * fround(x2 - x1));
    const { bestIou, bestRow, ignored, typeOrder, typeBound } = this;
    const thr = this.threshold32;
    const A = this.numAnchorsPerLocation;
    const numTypes = typeOrder.length;
    for (let t = 0; t < numTypes; t++) {
      const lo = this.typeMinArea[t];
      const hi = this.typeMaxArea[t];
      // max over the type's anchors of min(a, g) / max(a, g), widened for the float32 rounding of the IoU.
      const bound = areaG <= 0 ? 0 : areaG < lo ? areaG / lo : areaG > hi ? hi / areaG : 1;
      typeBound[t] = bound * 1.00001;
      typeOrder[t] = t;
    }
    typeOrder.sort((p, q) => typeBound[q] - typeBound[p] || p - q);
    let rowBest = 0;
    let rowArg = 0;
    for (let k = 0; k < numTypes; k++) {
      const t = typeOrder[k];
      const bound = typeBound[t];
      if (bound < thr && (row < 0 || bound < rowBest)) break; // sorted: every later type is skipped too
      const l = (t / A) | 0;
      const a = t - l * A;
      const g = this.grids[l];
      const ro = a * g.h;
      const co = a * g.w;
      const gy1 = g.y1;
      const gy2 = g.y2;
      const gx1 = g.x1;
      const gx2 = g.x2;
      // Rows / columns whose type-a anchors intersect the box (strictly: a touching edge gives IoU 0).
      let r0 = 0;
      while (r0 < g.h && !(gy2[ro + r0] > y1)) r0++;
      let r1 = g.h - 1;
      while (r1 >= r0 && !(gy1[ro + r1] < y2)) r1--;
      let c0 = 0;
      while (c0 < g.w && !(gx2[co + c0] > x1)) c0++;
      let c1 = g.w - 1;
      while (c1 >= c0 && !(gx1[co + c1] < x2)) c1--;
      const base = g.start + a;
      for (let r = r0; r <= r1; r++) {
        // float32 IoU, operation by operation as effdet's `iou()` on float32 tensors. (Ternaries, not Math.min /
        // Math.max: a global Math call is ~100x slower inside Jest's VM, and this runs per anchor.)
        // biome-ignore lint/complexity/useMathMinMax: per-anchor hot loop, see above
        const ih = fround((gy2[ro + r] < y2 ? gy2[ro + r] : y2) - (gy1[ro + r] > y1 ? gy1[ro + r] : y1));
        if (!(ih > 0)) continue;
        const hr = g.hgt[ro + r];
        const rowBase = base + r * g.w * A;
        for (let c = c0; c <= c1; c++) {
          // biome-ignore lint/complexity/useMathMinMax: per-anchor hot loop, see above
          const iw = fround((gx2[co + c] < x2 ? gx2[co + c] : x2) - (gx1[co + c] > x1 ? gx1[co + c] : x1));
          if (!(iw > 0)) continue;
          const inter = fround(ih * iw);
          if (inter === 0) continue;
          const iou = fround(inter / fround(fround(areaG + fround(hr * g.wid[co + c])) - inter));
          const i = rowBase + c * A;
          if (row >= 0) {
            if (iou >= thr && iou > bestIou[i]) {
              bestIou[i] = iou;
              bestRow[i] = row;
              this.touch(i);
            }
            if (iou > rowBest || (iou === rowBest && i < rowArg)) {
              rowBest = iou;
              rowArg = i;
            }
          } else if (iou >= thr && iou > bestIou[i] && ignored[i] === 0) {
            ignored[i] = 1;
            this.touch(i);
          }
        }
      }
    }
    return rowArg;
  }

  /**
   * Matches one image. Afterwards `touched[0..numTouched)` lists (once each) every anchor whose match is not -1,
   * with the match in `matches` (kept-row index, or -2); every other anchor is negative.
   */
  private match(fn: string, boxes: BoxesInput, classes: ArrayLike<number>, opts: LabelOptions): ParsedBoxes {
    const parsed = this.parse(fn, boxes, classes);
    const ignore =
      opts.ignoreBoxes === undefined || opts.ignoreBoxes === null
        ? new Float32Array(0)
        : flattenBoxes(fn, 'ignoreBoxes', opts.ignoreBoxes);
    const { bestIou, bestRow, ignored, matches, touched } = this;
    this.epoch = (this.epoch + 1) | 0;
    if (this.epoch === 0) {
      this.stamp.fill(0);
      this.epoch = 1;
    }
    this.numTouched = 0;
    // effdet `_match_when_rows_are_empty`: no boxes, every anchor negative (ignore boxes still apply).
    const m = parsed.classes.length;
    const forced = new Int32Array(m);
    const g = parsed.coords;
    for (let j = 0; j < m; j++) forced[j] = this.scan(j, g[4 * j], g[4 * j + 1], g[4 * j + 2], g[4 * j + 3]);
    for (let k = 0; k < ignore.length; k += 4)
      this.scan(-1, ignore[k], ignore[k + 1], ignore[k + 2], ignore[k + 3]);
    const numMatched = this.numTouched;
    for (let k = 0; k < numMatched; k++) {
      const i = touched[k];
      matches[i] = ignored[i] === 1 ? -2 : bestRow[i];
      bestIou[i] = 0;
      ignored[i] = 0;
    }
    // Force match, descending so that the lowest row wins an anchor claimed twice.
    for (let j = m - 1; j >= 0; j--) {
      this.touch(forced[j]);
      matches[forced[j]] = j;
    }
    return parsed;
  }

  /**
   * The match of every anchor, `[N]` in anchor order: the index of the matched box in the caller's `boxes`
   * (padding rows included in the numbering), -1 for negatives, -2 for anchors inside an ignore box.
   */
  matchAnchors(boxes: BoxesInput, classes: ArrayLike<number>, options: LabelOptions = {}): Int32Array {
    const parsed = this.match('AnchorLabeler.matchAnchors', boxes, classes, options);
    const out = new Int32Array(this.numAnchors).fill(-1);
    for (let k = 0; k < this.numTouched; k++) {
      const i = this.touched[k];
      const mi = this.matches[i];
      out[i] = mi >= 0 ? parsed.rows[mi] : mi;
    }
    return out;
  }

  /**
   * Writes one image's targets at image slot `b` of per-level batch arrays (box arrays must be zero there);
   * returns [positives, ignored].
   */
  private labelInto(
    fn: string,
    boxes: BoxesInput,
    classes: ArrayLike<number>,
    opts: LabelOptions,
    cls: Int32Array[],
    box: Float32Array[],
    b: number,
  ): [number, number] {
    const parsed = this.match(fn, boxes, classes, opts);
    const A = this.numAnchorsPerLocation;
    for (const [l, g] of this.grids.entries()) {
      const size = g.h * g.w * A;
      cls[l].fill(CLASS_TARGET_NEGATIVE, b * size, (b + 1) * size);
    }
    const gc = parsed.coords;
    const eps = fround(BOX_CODER_EPS);
    let positives = 0;
    let ignoredCount = 0;
    for (let k = 0; k < this.numTouched; k++) {
      const i = this.touched[k];
      const mi = this.matches[i];
      let l = this.grids.length - 1;
      while (this.grids[l].start > i) l--;
      const g = this.grids[l];
      const off = b * g.h * g.w * A + (i - g.start);
      if (mi < 0) {
        cls[l][off] = CLASS_TARGET_IGNORED;
        ignoredCount++;
        continue;
      }
      positives++;
      cls[l][off] = parsed.classes[mi] - 1;
      // Faster R-CNN encoding in float32, as effdet: centre = min + size / 2 (before eps), then size + eps.
      const a = (i - g.start) % A;
      const loc = ((i - g.start - a) / A) | 0;
      const r = (loc / g.w) | 0;
      const c = loc - r * g.w;
      const ha = g.hgt[a * g.h + r];
      const wa = g.wid[a * g.w + c];
      const yca = fround(g.y1[a * g.h + r] + fround(ha / 2));
      const xca = fround(g.x1[a * g.w + c] + fround(wa / 2));
      const hb = fround(gc[4 * mi + 2] - gc[4 * mi]);
      const wb = fround(gc[4 * mi + 3] - gc[4 * mi + 1]);
      const ycb = fround(gc[4 * mi] + fround(hb / 2));
      const xcb = fround(gc[4 * mi + 1] + fround(wb / 2));
      const hae = fround(ha + eps);
      const wae = fround(wa + eps);
      const o = off * 4;
      box[l][o] = fround(ycb - yca) / hae;
      box[l][o + 1] = fround(xcb - xca) / wae;
      box[l][o + 2] = mathLog(fround(fround(hb + eps) / hae));
      box[l][o + 3] = mathLog(fround(fround(wb + eps) / wae));
    }
    return [positives, ignoredCount];
  }

  /**
   * Targets of one image. `boxes`: y1, x1, y2, x2 in input pixels; `classes`: 1-based, rows with a class
   * `<= -1` are padding and dropped.
   */
  labelImage(boxes: BoxesInput, classes: ArrayLike<number>, options: LabelOptions = {}): ImageLabels {
    const cls = this.levelShapes.map(([lh, lw, A]) => new Int32Array(lh * lw * A));
    const box = this.levelShapes.map(([lh, lw, A]) => new Float32Array(lh * lw * A * 4));
    const [numPositives, numIgnored] = this.labelInto(
      'AnchorLabeler.labelImage',
      boxes,
      classes,
      options,
      cls,
      box,
      0,
    );
    return { clsTargets: cls, boxTargets: box, numPositives, numIgnored };
  }

  /**
   * Targets of a batch (effdet `batch_label_anchors`): per image boxes and classes as arrays, or the padded
   * tensors of a data loader, `boxes` `[B, N, 4]` and `classes` `[B, N]` (read synchronously).
   */
  labelBatch(
    boxes: readonly BoxesInput[] | tf.Tensor,
    classes: readonly ArrayLike<number>[] | tf.Tensor,
    options: BatchLabelOptions = {},
  ): BatchLabels {
    const fn = 'AnchorLabeler.labelBatch';
    let perBoxes: readonly BoxesInput[];
    let perClasses: readonly ArrayLike<number>[];
    if (boxes instanceof tf.Tensor || classes instanceof tf.Tensor) {
      check(
        boxes instanceof tf.Tensor && classes instanceof tf.Tensor,
        () => `${fn}: boxes and classes must both be tensors or both be arrays`,
      );
      check(
        boxes.rank === 3 && boxes.shape[2] === 4,
        () => `${fn}: boxes must be [B, N, 4], got [${boxes.shape.join(',')}]`,
      );
      check(
        classes.rank === 2 && classes.shape[0] === boxes.shape[0] && classes.shape[1] === boxes.shape[1],
        () =>
          `${fn}: classes must be [${boxes.shape[0]}, ${boxes.shape[1]}], got [${classes.shape.join(',')}]`,
      );
      const [bs, nb] = boxes.shape;
      const bd = boxes.dataSync();
      const cd = classes.dataSync();
      perBoxes = Array.from({ length: bs }, (_, i) => bd.subarray(i * nb * 4, (i + 1) * nb * 4));
      perClasses = Array.from({ length: bs }, (_, i) => cd.subarray(i * nb, (i + 1) * nb));
    } else {
      check(
        Array.isArray(boxes) && Array.isArray(classes) && boxes.length === classes.length && boxes.length > 0,
        () =>
          `${fn}: boxes and classes must be non-empty arrays with one entry per image, got ${Array.isArray(boxes) ? boxes.length : typeof boxes} and ${Array.isArray(classes) ? classes.length : typeof classes}`,
      );
      perBoxes = boxes;
      perClasses = classes;
    }
    const bs = perBoxes.length;
    const ignore = options.ignoreBoxes ?? null;
    check(
      ignore === null || (Array.isArray(ignore) && ignore.length === bs),
      () =>
        `${fn}: ignoreBoxes must have one entry per image (${bs}), got ${ignore === null ? 'null' : ignore.length}`,
    );
    const cls = this.levelShapes.map(([lh, lw, A]) => new Int32Array(bs * lh * lw * A));
    const box = this.levelShapes.map(([lh, lw, A]) => new Float32Array(bs * lh * lw * A * 4));
    const numPositives = new Int32Array(bs);
    for (let b = 0; b < bs; b++) {
      [numPositives[b]] = this.labelInto(
        `${fn} (image ${b})`,
        perBoxes[b],
        perClasses[b],
        { ignoreBoxes: ignore?.[b] ?? null },
        cls,
        box,
        b,
      );
    }
    return {
      batchSize: bs,
      levelShapes: this.levelShapes.map((s) => [...s] as [number, number, number]),
      clsTargets: cls,
      boxTargets: box,
      numPositives,
    };
  }
}

/** Whether `x` is a batch (`BatchLabels`) rather than one image's labels. */
function isBatch(x: BatchLabels | ImageLabels): x is BatchLabels {
  return typeof (x as BatchLabels).batchSize === 'number';
}

/**
 * Host labels as tensors for `detectionLoss`: int32 class targets `[B, h, w, A]`, float32 box targets
 * `[B, h, w, A * 4]`, float32 `numPositives` `[B]`. One image's labels (`labelImage`) become a batch of one; pass
 * `levelShapes` (e.g. `labeler.levelShapes`) with them. The caller disposes the tensors (`disposeLabelTensors`).
 */
export function labelsToTensors(
  labels: BatchLabels | ImageLabels,
  levelShapes?: readonly (readonly [number, number, number])[],
): LabelTensors {
  const fn = 'labelsToTensors';
  check(
    labels !== null && typeof labels === 'object' && Array.isArray(labels.clsTargets),
    () => `${fn}: labels must come from AnchorLabeler.labelBatch or labelImage, got ${String(labels)}`,
  );
  const batch = isBatch(labels);
  const bs = batch ? labels.batchSize : 1;
  const shapes = batch ? labels.levelShapes : levelShapes;
  check(
    Array.isArray(shapes) &&
      shapes.length === labels.clsTargets.length &&
      labels.boxTargets.length === shapes.length,
    () =>
      `${fn}: need one [h, w, A] shape per level (${labels.clsTargets.length}); got ${shapes === undefined ? 'none (pass levelShapes with labelImage results)' : JSON.stringify(shapes)}`,
  );
  for (const [l, [lh, lw, A]] of shapes.entries()) {
    check(
      labels.clsTargets[l].length === bs * lh * lw * A &&
        labels.boxTargets[l].length === bs * lh * lw * A * 4,
      () =>
        `${fn}: level ${l} holds ${labels.clsTargets[l].length} class / ${labels.boxTargets[l].length} box targets, expected ${bs * lh * lw * A} / ${bs * lh * lw * A * 4} for [${bs},${lh},${lw},${A}]`,
    );
  }
  const numPositives = batch ? Float32Array.from(labels.numPositives) : Float32Array.of(labels.numPositives);
  return {
    clsTargets: shapes.map(([lh, lw, A], l) => tf.tensor4d(labels.clsTargets[l], [bs, lh, lw, A], 'int32')),
    boxTargets: shapes.map(([lh, lw, A], l) =>
      tf.tensor4d(labels.boxTargets[l], [bs, lh, lw, A * 4], 'float32'),
    ),
    numPositives: tf.tensor1d(numPositives, 'float32'),
  };
}

/** Disposes every tensor of `labelsToTensors`. */
export function disposeLabelTensors(t: LabelTensors): void {
  tf.dispose([...t.clsTargets, ...t.boxTargets, t.numPositives]);
}

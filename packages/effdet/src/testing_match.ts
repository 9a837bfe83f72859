/**
 * Row matching of detection outputs against a reference, as the fixture README prescribes: a row matches when
 * the class is the same, the box IoU >= 0.99 and |score difference| <= 1e-3; 98 of 100 rows must match (near
 * ties may reorder rows, so a row may match any not yet used row of the other side). Zero (padding) rows match
 * zero rows; boxes clipped to zero area are compared by their per-axis overlap. Used by the parity tests and the `effdet parity` CLI.
 */
import { check } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';

export interface MatchOptions {
  /** Minimum IoU of matching boxes. Default 0.99. */
  minIou?: number;
  /** Maximum |score difference|. Default 1e-3. */
  scoreTolerance?: number;
}

export interface MatchReport {
  /** Expected rows that found a matching actual row. */
  matched: number;
  /** Expected rows compared (all images). */
  total: number;
  /** Matches found at the same row index. */
  sameIndex: number;
  /** Lowest IoU among matched non-padding rows (1 when none). */
  worstIou: number;
  /** Largest |score difference| among matched rows (0 when none). */
  worstScoreDiff: number;
  /** Expected rows without a match, as `image * rowsPerImage + row` indices... */
  unmatched: number[];
  /** ...and a short text for each, for messages. */
  unmatchedText: string[];
  /** Per image: matched / total. */
  perImage: { matched: number; total: number }[];
}

/** Detection rows: a `[R, 6]` or `[B, R, 6]` tensor, an array of rows, or a flat array (stride 6). */
export type DetectionRows = tf.Tensor | ArrayLike<number> | readonly (readonly number[])[];

function flatten(fn: string, arg: string, v: DetectionRows): { data: ArrayLike<number>; images: number } {
  if (v instanceof tf.Tensor) {
    check(
      (v.rank === 2 || v.rank === 3) && v.shape[v.rank - 1] === 6,
      () => `${fn}: ${arg} must be a [R, 6] or [B, R, 6] tensor, got [${v.shape.join(',')}]`,
    );
    return { data: v.dataSync(), images: v.rank === 3 ? v.shape[0] : 1 };
  }
  check(
    v != null && typeof v.length === 'number',
    () => `${fn}: ${arg} must be a tensor or an array, got ${String(v)}`,
  );
  const first = (v as ArrayLike<unknown>)[0];
  if (Array.isArray(first)) {
    const rows = v as readonly (readonly number[])[];
    check(
      rows.every((r) => r.length === 6),
      () => `${fn}: ${arg} rows must each have 6 values (x1, y1, x2, y2, score, class)`,
    );
    return { data: rows.flat(), images: 1 };
  }
  const flat = v as ArrayLike<number>;
  check(flat.length % 6 === 0, () => `${fn}: ${arg} must have a multiple of 6 values, got ${flat.length}`);
  return { data: flat, images: 1 };
}

/** 1-D overlap / union of [a1, a2] and [b1, b2]; two zero-length intervals count 1 when they (almost) coincide. */
function iou1d(a1: number, a2: number, b1: number, b2: number): number {
  const la = a2 - a1;
  const lb = b2 - b1;
  if (la <= 0 && lb <= 0) return Math.abs(a1 - b1) <= 1e-3 * Math.max(1, Math.abs(a1)) ? 1 : 0;
  const inter = Math.max(0, Math.min(a2, b2) - Math.max(a1, b1));
  return inter / (Math.max(la, 0) + Math.max(lb, 0) - inter);
}

/**
 * IoU of two x1, y1, x2, y2 rows. Boxes clipped to a line or a point (zero area, as effdet's clipping produces
 * for boxes outside the image) have no 2-D IoU; for them the product of the per-axis 1-D IoUs is used.
 */
export function rowIou(a: ArrayLike<number>, ai: number, b: ArrayLike<number>, bi: number): number {
  const areaA = (a[ai + 2] - a[ai]) * (a[ai + 3] - a[ai + 1]);
  const areaB = (b[bi + 2] - b[bi]) * (b[bi + 3] - b[bi + 1]);
  if (!(areaA > 0) || !(areaB > 0)) {
    return iou1d(a[ai], a[ai + 2], b[bi], b[bi + 2]) * iou1d(a[ai + 1], a[ai + 3], b[bi + 1], b[bi + 3]);
  }
  const w = Math.min(a[ai + 2], b[bi + 2]) - Math.max(a[ai], b[bi]);
  const h = Math.min(a[ai + 3], b[bi + 3]) - Math.max(a[ai + 1], b[bi + 1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / (areaA + areaB - inter);
}

function isPadding(d: ArrayLike<number>, at: number): boolean {
  for (let c = 0; c < 6; c++) if (d[at + c] !== 0) return false;
  return true;
}

/**
 * Matches `actual` against `expected` row by row (same shape required; a batch is matched image by image).
 * Reads tensors with dataSync and disposes nothing.
 */
export function matchDetections(
  actual: DetectionRows,
  expected: DetectionRows,
  options: MatchOptions = {},
): MatchReport {
  const fn = 'matchDetections';
  const minIou = options.minIou ?? 0.99;
  const tol = options.scoreTolerance ?? 1e-3;
  const a = flatten(fn, 'actual', actual);
  const e = flatten(fn, 'expected', expected);
  check(
    a.data.length === e.data.length && a.images === e.images,
    () =>
      `${fn}: actual has ${a.data.length / 6} rows in ${a.images} image(s), expected ${e.data.length / 6} rows in ${e.images} image(s)`,
  );
  const rowsPer = e.data.length / 6 / e.images;
  const report: MatchReport = {
    matched: 0,
    total: 0,
    sameIndex: 0,
    worstIou: 1,
    worstScoreDiff: 0,
    unmatched: [],
    unmatchedText: [],
    perImage: [],
  };
  const fmt = (d: ArrayLike<number>, at: number) =>
    `[${Array.from({ length: 6 }, (_, c) => Number(d[at + c]).toFixed(c === 4 ? 5 : 2)).join(', ')}]`;
  for (let img = 0; img < e.images; img++) {
    const base = img * rowsPer * 6;
    const used = new Uint8Array(rowsPer);
    let matched = 0;
    const tryMatch = (er: number, ar: number): { iou: number; ds: number } | null => {
      const ea = base + er * 6;
      const aa = base + ar * 6;
      const ePad = isPadding(e.data, ea);
      const aPad = isPadding(a.data, aa);
      if (ePad || aPad) return ePad && aPad ? { iou: 1, ds: 0 } : null;
      if (e.data[ea + 5] !== a.data[aa + 5]) return null;
      const ds = Math.abs(e.data[ea + 4] - a.data[aa + 4]);
      if (!(ds <= tol)) return null;
      const v = rowIou(e.data, ea, a.data, aa);
      return v >= minIou ? { iou: v, ds } : null;
    };
    for (let er = 0; er < rowsPer; er++) {
      let hit = used[er] ? null : tryMatch(er, er);
      let at = er;
      if (hit) report.sameIndex++;
      else {
        for (let ar = 0; ar < rowsPer && !hit; ar++) {
          if (used[ar]) continue;
          hit = tryMatch(er, ar);
          at = ar;
        }
      }
      if (hit) {
        used[at] = 1;
        matched++;
        if (!isPadding(e.data, base + er * 6)) {
          report.worstIou = Math.min(report.worstIou, hit.iou);
          report.worstScoreDiff = Math.max(report.worstScoreDiff, hit.ds);
        }
      } else {
        report.unmatched.push(img * rowsPer + er);
        report.unmatchedText.push(
          `image ${img} row ${er}: expected ${fmt(e.data, base + er * 6)}, actual row ${er} ${fmt(a.data, base + er * 6)}`,
        );
      }
    }
    report.perImage.push({ matched, total: rowsPer });
    report.matched += matched;
    report.total += rowsPer;
  }
  return report;
}

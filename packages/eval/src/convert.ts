/** Model detections -> COCO results JSON (effdet `Evaluator._coco_predictions`). */
import type { CocoResult, ImageId } from './coco.js';
import { argError, check } from './errors.js';

/** One image's detections: rows `[x1, y1, x2, y2, score, cls]`, or the same flattened (length N * 6). */
export type DetectionRows = readonly ArrayLike<number>[] | ArrayLike<number>;

export interface ToCocoResultsOptions {
  /** Rows with a lower score are dropped (default 0.001, as effdet). */
  scoreThreshold?: number;
  /** Boxes are `[y1, x1, y2, x2]` (default false). */
  yxyx?: boolean;
  /** Maps the model class (column 5) to a COCO category id (default: the class itself, effdet's COCO convention). */
  labelToCategoryId?: (label: number) => number;
  /**
   * Round box sizes, coordinates and scores to float32, as effdet does on its float32 arrays (default: true when
   * the rows are Float32Arrays).
   */
  float32?: boolean;
}

function rowsOf(d: DetectionRows, i: number): ArrayLike<number>[] {
  const fn = 'detectionsToCocoResults';
  if (Array.isArray(d) && (d.length === 0 || typeof d[0] !== 'number')) {
    const rows = d as ArrayLike<number>[];
    rows.forEach((r, j) => {
      check(r && r.length >= 6, fn, `detections[${i}][${j}]`, 'a row [x1, y1, x2, y2, score, cls]', r);
    });
    return rows;
  }
  const flat = d as ArrayLike<number>;
  if (typeof flat.length !== 'number' || flat.length % 6 !== 0) {
    throw argError(fn, `detections[${i}]`, 'rows of 6 values or a flat array of length N * 6', d);
  }
  const out: ArrayLike<number>[] = [];
  const isTyped = ArrayBuffer.isView(flat);
  for (let j = 0; j < flat.length; j += 6) {
    out.push(
      isTyped
        ? (flat as unknown as Float32Array).subarray(j, j + 6)
        : Array.prototype.slice.call(flat, j, j + 6),
    );
  }
  return out;
}

/**
 * Converts per-image detections to COCO results (`bbox` as `[x, y, w, h]`, `score`, `category_id`), one entry
 * per kept row, in input order.
 */
export function detectionsToCocoResults(
  detections: readonly DetectionRows[],
  imageIds: readonly ImageId[],
  options: ToCocoResultsOptions = {},
): CocoResult[] {
  const fn = 'detectionsToCocoResults';
  check(Array.isArray(detections), fn, 'detections', 'an array with one entry per image', detections);
  check(
    Array.isArray(imageIds) && imageIds.length === detections.length,
    fn,
    'imageIds',
    `${detections.length} image ids (one per detections entry)`,
    imageIds,
  );
  const thr = options.scoreThreshold ?? 0.001;
  const out: CocoResult[] = [];
  detections.forEach((d, i) => {
    const f32 =
      options.float32 ?? (d instanceof Float32Array || (Array.isArray(d) && d[0] instanceof Float32Array));
    const r32 = f32 ? Math.fround : (v: number) => v;
    for (const row of rowsOf(d, i)) {
      const score = r32(row[4]);
      if (!(score >= thr)) continue;
      let x1 = row[0];
      let y1 = row[1];
      let x2 = row[2];
      let y2 = row[3];
      if (options.yxyx) {
        [x1, y1, x2, y2] = [row[1], row[0], row[3], row[2]];
      }
      const cls = Math.trunc(row[5]);
      const categoryId = options.labelToCategoryId ? options.labelToCategoryId(cls) : cls;
      out.push({
        image_id: imageIds[i],
        bbox: [r32(x1), r32(y1), r32(r32(x2) - r32(x1)), r32(r32(y2) - r32(y1))],
        score,
        category_id: categoryId,
      });
    }
  });
  return out;
}

/**
 * effdet's prediction post-processing (`bench.py: _post_process, _batch_detection`, `anchors.py:
 * generate_detections`), batched:
 * 1. per level `[B, h, w, A * C]` logits and `[B, h, w, A * 4]` box codes are flattened to `[B, N * C]` and
 *    `[B, N, 4]` (NHWC needs no transpose: the flat logit index is anchor * C + class);
 * 2. top-k (`maxDetectionPoints`, 5000) over all anchor x class logits of each image, on the tensor backend;
 * 3. gather the box codes and anchors of the chosen anchors, decode to x1, y1, x2, y2 input pixels, sigmoid;
 * 4. on the host: optional clip to `imgSize / imgScale` (the resized image area), per-class NMS (hard, IoU > 0.5,
 *    or Gaussian soft-NMS), first `maxDetections` (100) rows, boxes * imgScale, class + 1;
 * 5. rows `[x1, y1, x2, y2, score, class]`, zero rows after the last detection.
 */
import { check, shapeStr } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import { Anchors } from './anchors.js';
import { decodeBoxes } from './boxes.js';
import { batchedNms, batchedSoftNms } from './nms.js';

const f32 = Math.fround;

/** Values per detection row: x1, y1, x2, y2, score, class. */
export const DETECTION_ROW_SIZE = 6;

export interface PostProcessOptions {
  /** Classes per anchor (C). */
  numClasses: number;
  /** Candidates kept by the top-k before NMS (effdet `max_detection_points`). Default 5000. */
  maxDetectionPoints?: number;
  /** Rows per image in the output (effdet `max_det_per_image`). Default 100. */
  maxDetections?: number;
  /** Hard NMS IoU threshold (suppress when IoU > it). Default 0.5. */
  iouThreshold?: number;
  /** Use effdet's Gaussian soft-NMS instead of hard NMS (effdet `soft_nms`). Default false. */
  softNms?: boolean;
  /** Soft-NMS sigma. Default 0.5. */
  softNmsSigma?: number;
  /** Soft-NMS pruning threshold. Default 0.001. */
  softNmsScoreThreshold?: number;
  /**
   * Per image: original size / model-input size (preprocessing's `imgScale`). When given, boxes are multiplied
   * by it (original-image pixels).
   */
  imgScale?: ArrayLike<number>;
  /**
   * Per image: the original `[width, height]`. With `imgScale`, decoded boxes are clipped to
   * `[0, width / imgScale] x [0, height / imgScale]` before NMS, as effdet does.
   */
  imgSize?: ArrayLike<readonly [number, number]>;
}

/** The top-k candidates of each image, decoded: tensors owned by the caller. */
export interface TopKCandidates {
  /** `[B, k, 4]` x1, y1, x2, y2 in model-input pixels (not clipped). */
  boxes: tf.Tensor3D;
  /** `[B, k]` sigmoid scores, descending. */
  scores: tf.Tensor2D;
  /** `[B, k]` int32 class index (0-based). */
  classes: tf.Tensor2D;
  /** `[B, k]` int32 anchor index. */
  anchorIndices: tf.Tensor2D;
}

/** One image's candidates on the host (see `generateDetections`). */
export interface HostCandidates {
  /** Flat `[k * 4]` x1, y1, x2, y2 in model-input pixels. */
  boxes: Float32Array;
  /** `[k]` scores. */
  scores: Float32Array;
  /** `[k]` 0-based class indices. */
  classes: Int32Array;
}

/** One detection, for display and export. */
export interface Detection {
  /** `[x1, y1, x2, y2]`. */
  box: [number, number, number, number];
  score: number;
  /** 1-based class id (the COCO category id for COCO models). */
  classId: number;
  label?: string;
}

interface Resolved {
  numClasses: number;
  maxDetectionPoints: number;
  maxDetections: number;
  iouThreshold: number;
  softNms: boolean;
  softNmsSigma: number;
  softNmsScoreThreshold: number;
  imgScale?: ArrayLike<number>;
  imgSize?: ArrayLike<readonly [number, number]>;
}

function resolveOptions(fn: string, o: PostProcessOptions, batch: number | null): Resolved {
  check(
    o !== null && typeof o === 'object',
    () => `${fn}: options must be an object with numClasses, got ${String(o)}`,
  );
  const posInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0;
  check(
    posInt(o.numClasses),
    () => `${fn}: options.numClasses must be a positive integer, got ${String(o.numClasses)}`,
  );
  const r: Resolved = {
    numClasses: o.numClasses,
    maxDetectionPoints: o.maxDetectionPoints ?? 5000,
    maxDetections: o.maxDetections ?? 100,
    iouThreshold: o.iouThreshold ?? 0.5,
    softNms: o.softNms ?? false,
    softNmsSigma: o.softNmsSigma ?? 0.5,
    softNmsScoreThreshold: o.softNmsScoreThreshold ?? 0.001,
    imgScale: o.imgScale,
    imgSize: o.imgSize,
  };
  check(
    posInt(r.maxDetectionPoints),
    () => `${fn}: options.maxDetectionPoints must be a positive integer, got ${String(o.maxDetectionPoints)}`,
  );
  check(
    posInt(r.maxDetections),
    () => `${fn}: options.maxDetections must be a positive integer, got ${String(o.maxDetections)}`,
  );
  check(
    Number.isFinite(r.iouThreshold),
    () => `${fn}: options.iouThreshold must be a finite number, got ${String(o.iouThreshold)}`,
  );
  if (batch !== null && r.imgScale !== undefined) {
    check(
      r.imgScale.length === batch && Array.from(r.imgScale).every((s) => Number.isFinite(s) && s > 0),
      () =>
        `${fn}: options.imgScale must hold ${batch} positive numbers (one per image), got ${JSON.stringify(Array.from(r.imgScale ?? []))}`,
    );
  }
  if (batch !== null && r.imgSize !== undefined) {
    check(
      r.imgSize.length === batch &&
        Array.from(r.imgSize).every(
          (s) =>
            s != null &&
            s.length === 2 &&
            Number.isFinite(s[0]) &&
            Number.isFinite(s[1]) &&
            s[0] >= 0 &&
            s[1] >= 0,
        ),
      () =>
        `${fn}: options.imgSize must hold ${batch} [width, height] pairs (one per image), got ${JSON.stringify(Array.from(r.imgSize ?? []))}`,
    );
  }
  return r;
}

function anchorsTensor(fn: string, anchors: Anchors | tf.Tensor2D): tf.Tensor2D {
  if (anchors instanceof Anchors) return anchors.boxes;
  check(
    anchors instanceof tf.Tensor && anchors.rank === 2 && anchors.shape[1] === 4,
    () =>
      `${fn}: anchors must be an Anchors instance or a [N, 4] tensor, got ${anchors instanceof tf.Tensor ? shapeStr(anchors.shape) : typeof anchors}`,
  );
  return anchors;
}

function validateOutputs(
  fn: string,
  classOuts: readonly tf.Tensor[],
  boxOuts: readonly tf.Tensor[],
  anchors: Anchors | tf.Tensor2D,
  numClasses: number,
): { batch: number; numAnchors: number } {
  check(
    Array.isArray(classOuts) && Array.isArray(boxOuts) && classOuts.length > 0,
    () => `${fn}: classOuts and boxOuts must be non-empty arrays of per-level tensors`,
  );
  check(
    classOuts.length === boxOuts.length,
    () => `${fn}: classOuts has ${classOuts.length} levels but boxOuts has ${boxOuts.length}`,
  );
  const levelSizes = anchors instanceof Anchors ? anchors.levelSizes : null;
  if (levelSizes) {
    check(
      classOuts.length === levelSizes.length,
      () => `${fn}: the anchors have ${levelSizes.length} levels but ${classOuts.length} level outputs came`,
    );
  }
  const batch = classOuts[0]?.shape?.[0];
  let perLoc: number | null = anchors instanceof Anchors ? anchors.numAnchorsPerLocation : null;
  let total = 0;
  for (let l = 0; l < classOuts.length; l++) {
    const c = classOuts[l];
    const b = boxOuts[l];
    check(
      c instanceof tf.Tensor && c.rank === 4,
      () =>
        `${fn}: classOuts[${l}] must be a 4-D tensor [B, h, w, A * C], got ${c instanceof tf.Tensor ? shapeStr(c.shape) : typeof c}`,
    );
    check(
      b instanceof tf.Tensor && b.rank === 4,
      () =>
        `${fn}: boxOuts[${l}] must be a 4-D tensor [B, h, w, A * 4], got ${b instanceof tf.Tensor ? shapeStr(b.shape) : typeof b}`,
    );
    const [cb, ch, cw, cc] = c.shape;
    check(
      cb === batch && b.shape[0] === batch,
      () => `${fn}: level ${l} batch sizes (${cb}, ${b.shape[0]}) differ from classOuts[0]'s ${batch}`,
    );
    check(
      b.shape[1] === ch && b.shape[2] === cw,
      () =>
        `${fn}: level ${l} spatial sizes differ: classOuts ${shapeStr(c.shape)}, boxOuts ${shapeStr(b.shape)}`,
    );
    if (levelSizes) {
      check(
        ch === levelSizes[l][0] && cw === levelSizes[l][1],
        () =>
          `${fn}: classOuts[${l}] is ${ch}x${cw} but the anchors expect ${levelSizes[l][0]}x${levelSizes[l][1]} at that level`,
      );
    }
    check(
      b.shape[3] % 4 === 0 && cc === (b.shape[3] / 4) * numClasses,
      () =>
        `${fn}: level ${l}: boxOuts has ${b.shape[3]} channels (A * 4) and classOuts ${cc} (expected A * ${numClasses} = ${(b.shape[3] / 4) * numClasses})`,
    );
    const a = b.shape[3] / 4;
    if (perLoc === null) perLoc = a;
    check(a === perLoc, () => `${fn}: level ${l} has ${a} anchors per location, expected ${perLoc}`);
    total += ch * cw * a;
  }
  const anchorCount = anchorsTensor(fn, anchors).shape[0];
  check(
    total === anchorCount,
    () => `${fn}: the level outputs hold ${total} anchors but the anchors tensor has ${anchorCount}`,
  );
  return { batch, numAnchors: total };
}

/**
 * Steps 1-3 on the tensor backend: flattens the per-level outputs, takes the top `maxDetectionPoints` logits of
 * each image (ties: lower flat index first on cpu), decodes the chosen boxes (xyxy) and applies the sigmoid.
 * Returns new tensors; disposes nothing that it was given.
 */
export function selectTopK(
  classOuts: readonly tf.Tensor[],
  boxOuts: readonly tf.Tensor[],
  anchors: Anchors | tf.Tensor2D,
  options: Pick<PostProcessOptions, 'numClasses' | 'maxDetectionPoints'>,
): TopKCandidates {
  const o = resolveOptions('selectTopK', options as PostProcessOptions, null);
  const { batch, numAnchors } = validateOutputs('selectTopK', classOuts, boxOuts, anchors, o.numClasses);
  const anchorBoxes = anchorsTensor('selectTopK', anchors);
  const c = o.numClasses;
  const k = Math.min(o.maxDetectionPoints, numAnchors * c);
  return tf.tidy(() => {
    const cls =
      classOuts.length === 1
        ? tf.reshape(classOuts[0], [batch, -1])
        : tf.concat(
            classOuts.map((t) => tf.reshape(t, [batch, -1])),
            1,
          );
    const box = tf.concat(
      boxOuts.map((t) => tf.reshape(t, [batch, -1, 4])),
      1,
    );
    const { values, indices } = tf.topk(tf.cast(cls, 'float32'), k, true);
    const anchorIdx = tf.floorDiv(indices, tf.scalar(c, 'int32'));
    const classes = tf.sub(indices, tf.mul(anchorIdx, tf.scalar(c, 'int32')));
    const flatIdx = tf.reshape(
      tf.add(
        anchorIdx,
        tf.reshape(tf.mul(tf.range(0, batch, 1, 'int32'), tf.scalar(numAnchors, 'int32')), [batch, 1]),
      ),
      [-1],
    );
    const codes = tf.gather(tf.reshape(tf.cast(box, 'float32'), [batch * numAnchors, 4]), flatIdx, 0);
    const chosenAnchors = tf.gather(anchorBoxes, tf.reshape(anchorIdx, [-1]), 0);
    const boxes = tf.reshape(decodeBoxes(codes, chosenAnchors, { outputXyxy: true }), [batch, k, 4]);
    return {
      boxes: boxes as tf.Tensor3D,
      scores: tf.sigmoid(values) as tf.Tensor2D,
      classes: classes as tf.Tensor2D,
      anchorIndices: anchorIdx as tf.Tensor2D,
    };
  });
}

/**
 * Steps 4-5 for one image on the host (effdet `generate_detections`): optional clip, NMS, the first
 * `maxDetections` rows, rescale, 1-based classes, zero padding. Returns `[maxDetections * 6]`.
 */
export function generateDetections(
  candidates: HostCandidates,
  options: Omit<PostProcessOptions, 'imgScale' | 'imgSize' | 'numClasses'> & {
    /** This image's original / input scale. */
    imgScale?: number;
    /** This image's original `[width, height]`. */
    imgSize?: readonly [number, number];
  } = {},
): Float32Array {
  const fn = 'generateDetections';
  const o = resolveOptions(fn, { ...options, numClasses: 1, imgScale: undefined, imgSize: undefined }, null);
  const { boxes, scores, classes } = candidates;
  const k = scores.length;
  check(
    boxes.length === 4 * k && classes.length === k,
    () =>
      `${fn}: candidates need boxes [k * 4], scores [k], classes [k]; got lengths ${boxes.length}, ${k}, ${classes.length}`,
  );
  const scale = options.imgScale;
  const size = options.imgSize;
  if (scale !== undefined) {
    check(
      Number.isFinite(scale) && scale > 0,
      () => `${fn}: imgScale must be a positive number, got ${String(scale)}`,
    );
  }
  if (size !== undefined) {
    check(
      size.length === 2 && size.every((v) => Number.isFinite(v) && v >= 0),
      () => `${fn}: imgSize must be [width, height], got ${JSON.stringify(size)}`,
    );
  }
  let b = boxes;
  if (scale !== undefined && size !== undefined) {
    // effdet clip_boxes_xyxy(boxes, img_size / img_scale), float32.
    const limW = f32(f32(size[0]) / f32(scale));
    const limH = f32(f32(size[1]) / f32(scale));
    b = new Float32Array(boxes.length);
    for (let i = 0; i < k; i++) {
      b[4 * i] = Math.min(Math.max(boxes[4 * i], 0), limW);
      b[4 * i + 1] = Math.min(Math.max(boxes[4 * i + 1], 0), limH);
      b[4 * i + 2] = Math.min(Math.max(boxes[4 * i + 2], 0), limW);
      b[4 * i + 3] = Math.min(Math.max(boxes[4 * i + 3], 0), limH);
    }
  }
  let keep: Int32Array;
  let keptScores: ArrayLike<number>;
  if (o.softNms) {
    const r = batchedSoftNms(b, scores, classes, {
      sigma: o.softNmsSigma,
      scoreThreshold: o.softNmsScoreThreshold,
      maxOutputSize: o.maxDetections,
    });
    keep = r.indices;
    keptScores = r.scores;
  } else {
    keep = batchedNms(b, scores, classes, { iouThreshold: o.iouThreshold, maxOutputSize: o.maxDetections });
    keptScores = Float32Array.from(keep, (i) => scores[i]);
  }
  const out = new Float32Array(o.maxDetections * DETECTION_ROW_SIZE);
  const s = scale === undefined ? 1 : f32(scale);
  for (let r = 0; r < keep.length; r++) {
    const i = keep[r];
    const row = r * DETECTION_ROW_SIZE;
    for (let c = 0; c < 4; c++) out[row + c] = scale === undefined ? b[4 * i + c] : f32(b[4 * i + c] * s);
    out[row + 4] = keptScores[r];
    out[row + 5] = classes[i] + 1;
  }
  return out;
}

function finish(
  o: Resolved,
  batch: number,
  k: number,
  boxes: Float32Array,
  scores: Float32Array,
  classes: Int32Array,
): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i < batch; i++) {
    out.push(
      generateDetections(
        {
          boxes: boxes.subarray(i * k * 4, (i + 1) * k * 4),
          scores: scores.subarray(i * k, (i + 1) * k),
          classes: classes.subarray(i * k, (i + 1) * k),
        },
        {
          maxDetections: o.maxDetections,
          iouThreshold: o.iouThreshold,
          softNms: o.softNms,
          softNmsSigma: o.softNmsSigma,
          softNmsScoreThreshold: o.softNmsScoreThreshold,
          imgScale: o.imgScale?.[i],
          imgSize: o.imgSize?.[i],
        },
      ),
    );
  }
  return out;
}

function prepare(
  fn: string,
  classOuts: readonly tf.Tensor[],
  boxOuts: readonly tf.Tensor[],
  anchors: Anchors | tf.Tensor2D,
  options: PostProcessOptions,
): { o: Resolved; cand: TopKCandidates; batch: number; k: number } {
  const o0 = resolveOptions(fn, options, null);
  const { batch } = validateOutputs(fn, classOuts, boxOuts, anchors, o0.numClasses);
  const o = resolveOptions(fn, options, batch);
  const cand = selectTopK(classOuts, boxOuts, anchors, o);
  return { o, cand, batch, k: cand.scores.shape[1] };
}

function disposeCandidates(c: TopKCandidates): void {
  tf.dispose([c.boxes, c.scores, c.classes, c.anchorIndices]);
}

/**
 * effdet's `DetBenchPredict` post-processing. `classOuts[l]` `[B, h_l, w_l, A * C]` logits and `boxOuts[l]`
 * `[B, h_l, w_l, A * 4]` box codes, levels in anchor order. Resolves to one Float32Array per image:
 * `maxDetections` rows of `[x1, y1, x2, y2, score, class]` (class 1-based), zero rows after the last detection.
 * Boxes are in model-input pixels, or original-image pixels when `imgScale` is given.
 */
export async function postProcessArrays(
  classOuts: readonly tf.Tensor[],
  boxOuts: readonly tf.Tensor[],
  anchors: Anchors | tf.Tensor2D,
  options: PostProcessOptions,
): Promise<Float32Array[]> {
  const { o, cand, batch, k } = prepare('postProcessArrays', classOuts, boxOuts, anchors, options);
  try {
    const [boxes, scores, classes] = await Promise.all([
      cand.boxes.data(),
      cand.scores.data(),
      cand.classes.data(),
    ]);
    return finish(o, batch, k, boxes as Float32Array, scores as Float32Array, classes as Int32Array);
  } finally {
    disposeCandidates(cand);
  }
}

/** Synchronous `postProcessArrays` (reads the backend with dataSync). */
export function postProcessArraysSync(
  classOuts: readonly tf.Tensor[],
  boxOuts: readonly tf.Tensor[],
  anchors: Anchors | tf.Tensor2D,
  options: PostProcessOptions,
): Float32Array[] {
  const { o, cand, batch, k } = prepare('postProcessArraysSync', classOuts, boxOuts, anchors, options);
  try {
    return finish(
      o,
      batch,
      k,
      cand.boxes.dataSync() as Float32Array,
      cand.scores.dataSync() as Float32Array,
      cand.classes.dataSync() as Int32Array,
    );
  } finally {
    disposeCandidates(cand);
  }
}

function stack(rows: Float32Array[], maxDetections: number): tf.Tensor3D {
  const data = new Float32Array(rows.length * maxDetections * DETECTION_ROW_SIZE);
  for (const [i, r] of rows.entries()) data.set(r, i * r.length);
  return tf.tensor3d(data, [rows.length, maxDetections, DETECTION_ROW_SIZE], 'float32');
}

/** As `postProcessArrays`, resolving to a `[B, maxDetections, 6]` tensor (the caller disposes it). */
export async function postProcess(
  classOuts: readonly tf.Tensor[],
  boxOuts: readonly tf.Tensor[],
  anchors: Anchors | tf.Tensor2D,
  options: PostProcessOptions,
): Promise<tf.Tensor3D> {
  const rows = await postProcessArrays(classOuts, boxOuts, anchors, options);
  return stack(rows, options.maxDetections ?? 100);
}

/** Synchronous `postProcess`. */
export function postProcessSync(
  classOuts: readonly tf.Tensor[],
  boxOuts: readonly tf.Tensor[],
  anchors: Anchors | tf.Tensor2D,
  options: PostProcessOptions,
): tf.Tensor3D {
  return stack(postProcessArraysSync(classOuts, boxOuts, anchors, options), options.maxDetections ?? 100);
}

/**
 * The real detections (class > 0) of one image's rows (`[R * 6]`, e.g. an element of `postProcessArrays`'
 * result), as objects; `labels` names the classes (e.g. `labelFor` from coco_labels).
 */
export function toDetections(rows: ArrayLike<number>, labels?: (classId: number) => string): Detection[] {
  check(
    rows != null && typeof rows.length === 'number' && rows.length % DETECTION_ROW_SIZE === 0,
    () => `toDetections: rows must be a flat array of R * 6 numbers, got length ${rows?.length}`,
  );
  const out: Detection[] = [];
  for (let r = 0; r < rows.length; r += DETECTION_ROW_SIZE) {
    const classId = rows[r + 5];
    if (!(classId > 0)) continue;
    const d: Detection = {
      box: [rows[r], rows[r + 1], rows[r + 2], rows[r + 3]],
      score: rows[r + 4],
      classId,
    };
    if (labels) d.label = labels(classId);
    out.push(d);
  }
  return out;
}

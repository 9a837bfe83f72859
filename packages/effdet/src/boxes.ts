/**
 * Box coding and geometry on tensors. Boxes are `[..., 4]`; effdet keeps anchors and targets as y1, x1, y2, x2
 * (yxyx) and outputs detections as x1, y1, x2, y2 (xyxy). The box coder is the Faster R-CNN one without scale
 * factors (effdet `decode_box_outputs` / `FasterRcnnBoxCoder(scale_factors=None)`, automl `anchors.decode_box_outputs`).
 */
import { check, shapeStr } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';

export type BoxFormat = 'yxyx' | 'xyxy';

/** effdet's box-coder epsilon, added to all four sizes when encoding. */
export const BOX_CODER_EPS = 1e-7;

function checkBoxes(fn: string, arg: string, t: tf.Tensor): void {
  check(t instanceof tf.Tensor, () => `${fn}: ${arg} must be a tf.Tensor of shape [..., 4], got ${typeof t}`);
  check(
    t.rank >= 1 && t.shape[t.rank - 1] === 4,
    () => `${fn}: ${arg} must have shape [..., 4], got ${shapeStr(t.shape)}`,
  );
}

function checkSameShape(fn: string, a: tf.Tensor, aName: string, b: tf.Tensor, bName: string): void {
  check(
    a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]),
    () => `${fn}: ${aName} ${shapeStr(a.shape)} and ${bName} ${shapeStr(b.shape)} must have the same shape`,
  );
}

function split4(t: tf.Tensor): [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf.split(tf.cast(t, 'float32'), 4, t.rank - 1) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
}

/**
 * Decodes `[ty, tx, th, tw]` regression codes against yxyx anchors of the same shape:
 * `w = exp(tw) * wa, h = exp(th) * ha, yc = ty * ha + yca, xc = tx * wa + xca` (no clamp on th/tw).
 * Returns yxyx boxes, or xyxy with `{outputXyxy: true}` (what effdet feeds to NMS).
 */
export function decodeBoxes<T extends tf.Tensor>(
  relCodes: T,
  anchors: tf.Tensor,
  options: { outputXyxy?: boolean } = {},
): T {
  checkBoxes('decodeBoxes', 'relCodes', relCodes);
  checkBoxes('decodeBoxes', 'anchors', anchors);
  checkSameShape('decodeBoxes', relCodes, 'relCodes', anchors, 'anchors');
  return tf.tidy(() => {
    const [ay1, ax1, ay2, ax2] = split4(anchors);
    const yca = tf.div(tf.add(ay1, ay2), 2);
    const xca = tf.div(tf.add(ax1, ax2), 2);
    const ha = tf.sub(ay2, ay1);
    const wa = tf.sub(ax2, ax1);
    const [ty, tx, th, tw] = split4(relCodes);
    const w = tf.mul(tf.exp(tw), wa);
    const h = tf.mul(tf.exp(th), ha);
    const yc = tf.add(tf.mul(ty, ha), yca);
    const xc = tf.add(tf.mul(tx, wa), xca);
    const hh = tf.div(h, 2);
    const hw = tf.div(w, 2);
    const ymin = tf.sub(yc, hh);
    const xmin = tf.sub(xc, hw);
    const ymax = tf.add(yc, hh);
    const xmax = tf.add(xc, hw);
    const parts = options.outputXyxy ? [xmin, ymin, xmax, ymax] : [ymin, xmin, ymax, xmax];
    return tf.concat(parts, relCodes.rank - 1) as T;
  });
}

/**
 * Encodes yxyx boxes against yxyx anchors of the same shape into `[ty, tx, th, tw]` (effdet
 * `FasterRcnnBoxCoder.encode`: centres from `min + size / 2`, then `eps` added to all four sizes).
 */
export function encodeBoxes<T extends tf.Tensor>(boxes: T, anchors: tf.Tensor, eps = BOX_CODER_EPS): T {
  checkBoxes('encodeBoxes', 'boxes', boxes);
  checkBoxes('encodeBoxes', 'anchors', anchors);
  checkSameShape('encodeBoxes', boxes, 'boxes', anchors, 'anchors');
  check(Number.isFinite(eps) && eps >= 0, () => `encodeBoxes: eps must be a finite number >= 0, got ${eps}`);
  return tf.tidy(() => {
    const centreSize = (t: tf.Tensor) => {
      const [y1, x1, y2, x2] = split4(t);
      const h = tf.sub(y2, y1);
      const w = tf.sub(x2, x1);
      return {
        yc: tf.add(y1, tf.div(h, 2)),
        xc: tf.add(x1, tf.div(w, 2)),
        h: tf.add(h, eps),
        w: tf.add(w, eps),
      };
    };
    const a = centreSize(anchors);
    const b = centreSize(boxes);
    const ty = tf.div(tf.sub(b.yc, a.yc), a.h);
    const tx = tf.div(tf.sub(b.xc, a.xc), a.w);
    const th = tf.log(tf.div(b.h, a.h));
    const tw = tf.log(tf.div(b.w, a.w));
    return tf.concat([ty, tx, th, tw], boxes.rank - 1) as T;
  });
}

/**
 * Pairwise IoU `[N, M]` of two box sets `[N, 4]`, `[M, 4]` in the same format (yxyx or xyxy: the formula is
 * symmetric). Area = (c2 - c0) * (c3 - c1) without "+1"; pairs that do not intersect get 0 (effdet
 * `IouSimilarity`).
 */
export function iouMatrix(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  checkBoxes('iouMatrix', 'a', a);
  checkBoxes('iouMatrix', 'b', b);
  check(
    a.rank === 2 && b.rank === 2,
    () => `iouMatrix: a and b must be 2-D [N, 4], got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`,
  );
  return tf.tidy(() => {
    const [a0, a1, a2, a3] = split4(a); // [N,1]
    const [b0, b1, b2, b3] = split4(b).map((t) => tf.reshape(t, [1, -1])); // [1,M]
    const areaA = tf.mul(tf.sub(a2, a0), tf.sub(a3, a1));
    const areaB = tf.mul(tf.sub(b2, b0), tf.sub(b3, b1));
    const ih = tf.relu(tf.sub(tf.minimum(a2, b2), tf.maximum(a0, b0)));
    const iw = tf.relu(tf.sub(tf.minimum(a3, b3), tf.maximum(a1, b1)));
    const inter = tf.mul(ih, iw);
    const union = tf.sub(tf.add(areaA, areaB), inter);
    const positive = tf.greater(inter, 0);
    // Divide only where there is an intersection, so empty boxes never give 0/0.
    const safeUnion = tf.where(positive, union, tf.onesLike(union));
    return tf.where(positive, tf.div(inter, safeUnion), tf.zerosLike(inter)) as tf.Tensor2D;
  });
}

/**
 * Clamps boxes to the image area `[0, height] x [0, width]` (`size = [height, width]`), for yxyx (default) or
 * xyxy boxes (effdet `clip_boxes_xyxy` is `clipBoxes(b, [h, w], 'xyxy')`).
 */
export function clipBoxes<T extends tf.Tensor>(
  boxes: T,
  size: readonly [number, number],
  format: BoxFormat = 'yxyx',
): T {
  checkBoxes('clipBoxes', 'boxes', boxes);
  check(
    Array.isArray(size) && size.length === 2 && size.every((v) => Number.isFinite(v) && v >= 0),
    () => `clipBoxes: size must be [height, width] finite numbers >= 0, got ${JSON.stringify(size)}`,
  );
  check(
    format === 'yxyx' || format === 'xyxy',
    () => `clipBoxes: format must be 'yxyx' or 'xyxy', got ${String(format)}`,
  );
  const [h, w] = size;
  const limit = format === 'yxyx' ? [h, w, h, w] : [w, h, w, h];
  return tf.tidy(
    () => tf.minimum(tf.maximum(tf.cast(boxes, 'float32'), 0), tf.tensor1d(limit, 'float32')) as T,
  );
}

function swapXy<T extends tf.Tensor>(fn: string, boxes: T): T {
  checkBoxes(fn, 'boxes', boxes);
  return tf.tidy(() => tf.gather(boxes, tf.tensor1d([1, 0, 3, 2], 'int32'), boxes.rank - 1) as T);
}

/** y1, x1, y2, x2 -> x1, y1, x2, y2. */
export function yxyxToXyxy<T extends tf.Tensor>(boxes: T): T {
  return swapXy('yxyxToXyxy', boxes);
}

/** x1, y1, x2, y2 -> y1, x1, y2, x2. */
export function xyxyToYxyx<T extends tf.Tensor>(boxes: T): T {
  return swapXy('xyxyToYxyx', boxes);
}

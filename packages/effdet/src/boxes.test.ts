import { describeWithBackends, expectNoLeaks, expectValues } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';
import { clipBoxes, decodeBoxes, encodeBoxes, iouMatrix, xyxyToYxyx, yxyxToXyxy } from './boxes.js';

describeWithBackends('box coding', () => {
  // Anchor y1=0, x1=0, y2=10, x2=20: centre (5, 10), size 10 x 20.
  const anchor = [0, 0, 10, 20];

  it('decodes [ty, tx, th, tw] by hand', () => {
    const codes = tf.tensor2d([
      [0, 0, 0, 0],
      [0.1, -0.2, Math.log(2), Math.log(0.5)],
    ]);
    const anchors = tf.tensor2d([anchor, anchor]);
    // Row 1: yc = 5 + 0.1 * 10 = 6, xc = 10 - 0.2 * 20 = 6, h = 20, w = 10.
    const yxyx = decodeBoxes(codes, anchors);
    expectValues(yxyx, [0, 0, 10, 20, -4, 1, 16, 11], 1e-5);
    const xyxy = decodeBoxes(codes, anchors, { outputXyxy: true });
    expectValues(xyxy, [0, 0, 20, 10, 1, -4, 11, 16], 1e-5);
    tf.dispose([codes, anchors, yxyx, xyxy]);
  });

  it('does not clamp large size codes before exp', () => {
    const codes = tf.tensor2d([[0, 0, 5, 0]]);
    const anchors = tf.tensor2d([anchor]);
    const out = decodeBoxes(codes, anchors);
    const h = 10 * Math.exp(5);
    expectValues(out, [5 - h / 2, 0, 5 + h / 2, 20], 1e-2);
    tf.dispose([codes, anchors, out]);
  });

  it('works on batched [B, k, 4] inputs', () => {
    const codes = tf.zeros([2, 3, 4]);
    const anchors = tf.tile(tf.tensor3d([[anchor]]), [2, 3, 1]);
    const out = decodeBoxes(codes, anchors);
    expect(out.shape).toEqual([2, 3, 4]);
    expectValues(out, Array(6).fill(anchor).flat());
    tf.dispose([codes, anchors, out]);
  });

  it('encodes (centre from min + size / 2, eps 1e-7 on sizes) and inverts decode', () => {
    const boxes = tf.tensor2d([
      [0, 0, 20, 20],
      [-4, 1, 16, 11],
    ]);
    const anchors = tf.tensor2d([[0, 0, 10, 10], anchor]);
    const codes = encodeBoxes(boxes, anchors);
    // Row 0: centres (10, 10) vs (5, 5), sizes 20 vs 10: ty = tx = 0.5, th = tw = ln 2.
    expectValues(codes, [0.5, 0.5, Math.log(2), Math.log(2), 0.1, -0.2, Math.log(2), Math.log(0.5)], 1e-6);
    const back = decodeBoxes(codes, anchors);
    expectValues(back, [0, 0, 20, 20, -4, 1, 16, 11], 1e-4);
    tf.dispose([boxes, anchors, codes, back]);
  });

  it('encodes degenerate boxes without NaN thanks to eps', () => {
    const boxes = tf.tensor2d([[5, 5, 5, 5]]);
    const anchors = tf.tensor2d([[0, 0, 10, 10]]);
    const codes = encodeBoxes(boxes, anchors);
    const v = codes.dataSync();
    expect(Array.from(v).every(Number.isFinite)).toBe(true);
    expect(v[2]).toBeCloseTo(Math.log(1e-7 / 10), 1);
    tf.dispose([boxes, anchors, codes]);
  });

  it('IoU matrix by hand (empty boxes give 0, not NaN)', () => {
    const a = tf.tensor2d([
      [0, 0, 10, 10],
      [0, 0, 0, 0],
    ]);
    const b = tf.tensor2d([
      [5, 5, 15, 15],
      [0, 0, 10, 10],
      [20, 20, 30, 30],
      [0, 0, 0, 0],
    ]);
    const iou = iouMatrix(a, b);
    expect(iou.shape).toEqual([2, 4]);
    expectValues(iou, [25 / 175, 1, 0, 0, 0, 0, 0, 0], 1e-6);
    tf.dispose([a, b, iou]);
  });

  it('clips yxyx to [h, w] and xyxy to [w, h]', () => {
    const yxyx = tf.tensor2d([[-5, 3, 50, 120]]);
    const c1 = clipBoxes(yxyx, [40, 100]);
    expectValues(c1, [0, 3, 40, 100]);
    const xyxy = tf.tensor2d([[-5, 3, 50, 120]]);
    const c2 = clipBoxes(xyxy, [40, 100], 'xyxy');
    expectValues(c2, [0, 3, 50, 40]);
    tf.dispose([yxyx, c1, xyxy, c2]);
  });

  it('converts yxyx <-> xyxy on any rank', () => {
    const b = tf.tensor3d([[[1, 2, 3, 4]], [[5, 6, 7, 8]]]);
    const x = yxyxToXyxy(b);
    expectValues(x, [2, 1, 4, 3, 6, 5, 8, 7]);
    const y = xyxyToYxyx(x);
    expectValues(y, [1, 2, 3, 4, 5, 6, 7, 8]);
    tf.dispose([b, x, y]);
  });

  it('leaves only the returned tensor behind', async () => {
    const codes = tf.tensor2d([[0.1, 0.2, 0.3, 0.4]]);
    const anchors = tf.tensor2d([anchor]);
    for (let i = 0; i < 2; i++) {
      await expectNoLeaks(() => {
        tf.dispose([
          decodeBoxes(codes, anchors, { outputXyxy: true }),
          encodeBoxes(anchors, anchors),
          iouMatrix(anchors, anchors),
          clipBoxes(anchors, [5, 5]),
          yxyxToXyxy(anchors),
        ]);
      }, 'box ops');
    }
    tf.dispose([codes, anchors]);
  });

  it('rejects bad shapes with the function and argument named', async () => {
    const a = tf.tensor2d([[0, 0, 1, 1]]);
    const b3 = tf.tensor2d([[0, 0, 1]]);
    const two = tf.tensor2d([
      [0, 0, 1, 1],
      [0, 0, 1, 1],
    ]);
    const t3 = tf.tensor3d([[[0, 0, 1, 1]]]) as unknown as tf.Tensor2D;
    await expectNoLeaks(() => {
      expect(() => decodeBoxes(b3, a)).toThrow(
        /decodeBoxes: relCodes must have shape \[\.\.\., 4\], got \[1,3\]/,
      );
      expect(() => decodeBoxes(a, two)).toThrow(
        /decodeBoxes: relCodes \[1,4\] and anchors \[2,4\] must have the same shape/,
      );
      expect(() => encodeBoxes(a, a, -1)).toThrow(/encodeBoxes: eps must be/);
      expect(() => clipBoxes(a, [Number.NaN, 1])).toThrow(/clipBoxes: size must be \[height, width\]/);
      expect(() => clipBoxes(a, [1, 1], 'xywh' as 'xyxy')).toThrow(
        /clipBoxes: format must be 'yxyx' or 'xyxy', got xywh/,
      );
      expect(() => iouMatrix(t3, a)).toThrow(/iouMatrix: a and b must be 2-D/);
    });
    tf.dispose([a, b3, two, t3]);
  });
});

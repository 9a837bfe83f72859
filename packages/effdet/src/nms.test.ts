import * as tf from '@tensorflow/tfjs-core';
import { argsortDescending, batchedNms, batchedSoftNms, boxIou, nms, softNms } from './nms.js';

const f32 = Math.fround;
/** Gaussian decay as effdet computes it, in float32. */
const decay = (iou: number) => f32(Math.exp(f32(-f32(iou * iou) / 0.5)));

describe('boxIou / argsortDescending', () => {
  it('IoU without +1, 0 for disjoint or touching boxes', () => {
    const b = [0, 0, 10, 10, 5, 5, 15, 15, 10, 0, 20, 10];
    expect(boxIou(b, 0, b, 1)).toBeCloseTo(25 / 175, 7);
    expect(boxIou(b, 0, b, 2)).toBe(0);
    expect(boxIou(b, 1, b, 1)).toBe(1);
  });

  it('sorts by score descending, ties by index, NaN last', () => {
    expect(Array.from(argsortDescending([0.5, 0.9, 0.5, Number.NaN, 0.9, 0.1]))).toEqual([1, 4, 0, 2, 5, 3]);
  });
});

describe('hard NMS (torchvision semantics)', () => {
  const A = [0, 0, 10, 10];

  it('empty input gives no indices', () => {
    expect(nms([], []).length).toBe(0);
    expect(batchedNms([], [], []).length).toBe(0);
  });

  it('keeps a single box', () => {
    expect(Array.from(nms(A, [0.3]))).toEqual([0]);
  });

  it('suppresses only when IoU is strictly greater than the threshold', () => {
    // IoU([0,0,2,1], [0,0,1,1]) = 1 / (2 + 1 - 1) = 0.5 exactly.
    const boxes = [0, 0, 2, 1, 0, 0, 1, 1];
    expect(Array.from(nms(boxes, [0.9, 0.8], { iouThreshold: 0.5 }))).toEqual([0, 1]);
    expect(Array.from(nms(boxes, [0.9, 0.8], { iouThreshold: 0.49 }))).toEqual([0]);
  });

  it('breaks score ties by input order (stable), also among identical boxes', () => {
    expect(Array.from(nms([...A, ...A], [0.5, 0.5]))).toEqual([0]);
    const far = [0, 0, 1, 1, 10, 10, 11, 11, 20, 20, 21, 21];
    expect(Array.from(nms(far, [0.5, 0.5, 0.5]))).toEqual([0, 1, 2]);
    expect(Array.from(nms(far, [0.5, 0.7, 0.5]))).toEqual([1, 0, 2]);
  });

  it('only kept boxes suppress (a suppressed box cannot suppress another)', () => {
    // IoU(A,B) = 70/130 > 0.5, IoU(B,C) = 70/130 > 0.5, IoU(A,C) = 40/160.
    const boxes = [...A, 0, 3, 10, 13, 0, 6, 10, 16];
    expect(Array.from(nms(boxes, [0.9, 0.8, 0.7]))).toEqual([0, 2]);
  });

  it('runs independently per class and merges by score', () => {
    const boxes = [...A, 0, 3, 10, 13, 0, 6, 10, 16];
    // B in another class: nothing suppresses anything; merged order by score.
    expect(Array.from(batchedNms(boxes, [0.9, 0.95, 0.7], [0, 1, 0]))).toEqual([1, 0, 2]);
    // Identical boxes in two classes are both kept.
    expect(Array.from(batchedNms([...A, ...A], [0.6, 0.7], [3, 7]))).toEqual([1, 0]);
    // One class = plain nms.
    expect(Array.from(batchedNms(boxes, [0.9, 0.8, 0.7], [2, 2, 2]))).toEqual(
      Array.from(nms(boxes, [0.9, 0.8, 0.7])),
    );
  });

  it('applies no score threshold and honours maxOutputSize', () => {
    const far = [0, 0, 1, 1, 10, 10, 11, 11, 20, 20, 21, 21];
    expect(Array.from(nms(far, [1e-9, 0, -1]))).toEqual([0, 1, 2]);
    expect(Array.from(nms(far, [0.1, 0.3, 0.2], { maxOutputSize: 2 }))).toEqual([1, 2]);
    expect(Array.from(nms(far, [0.1, 0.3, 0.2], { maxOutputSize: 0 }))).toEqual([]);
  });

  it('documents why TF.js nonMaxSuppression is not used: it drops IoU >= threshold and ignores classes', () => {
    // The exactly-0.5 pair in TF.js layout (y1, x1, y2, x2): TF.js suppresses box 1 (torchvision keeps it), and
    // box 2, identical to box 1 but of another class, goes too because TF.js is class-agnostic.
    const yxyx = tf.tensor2d([
      [0, 0, 1, 2],
      [0, 0, 1, 1],
      [0, 0, 1, 1],
    ]);
    const scores = tf.tensor1d([0.9, 0.8, 0.7]);
    const keep = tf.image.nonMaxSuppression(yxyx, scores, 10, 0.5);
    expect(Array.from(keep.dataSync())).toEqual([0]);
    // torchvision semantics per class: all three survive.
    expect(Array.from(batchedNms([0, 0, 2, 1, 0, 0, 1, 1, 0, 0, 1, 1], [0.9, 0.8, 0.7], [0, 0, 1]))).toEqual([
      0, 1, 2,
    ]);
    tf.dispose([yxyx, scores, keep]);
  });

  it('rejects malformed input with the function and argument named', () => {
    expect(() => nms([0, 0, 1], [1])).toThrow(/nms: boxes must be a flat array of N \* 4 numbers.*length 3/);
    expect(() => nms(A, [1, 2])).toThrow(/nms: scores must have one value per box \(1\), got length 2/);
    expect(() => batchedNms(A, [1], [])).toThrow(
      /batchedNms: classes must have one value per box \(1\), got length 0/,
    );
    expect(() => nms(A, [1], { iouThreshold: Number.NaN })).toThrow(
      /nms: iouThreshold must be a finite number/,
    );
    expect(() => nms(A, [1], { maxOutputSize: 1.5 })).toThrow(
      /nms: maxOutputSize must be an integer >= 0, got 1.5/,
    );
  });
});

describe('Gaussian soft-NMS (effdet soft_nms.py)', () => {
  const A = [0, 0, 10, 10];

  it('decays an overlapping box by exp(-IoU^2 / 0.5) (hand-computed)', () => {
    // IoU(A, [0,0,10,5]) = 50 / 100 = 0.5 -> decay exp(-0.5) = 0.60653.
    const r = softNms([...A, 0, 0, 10, 5], [0.9, 0.8]);
    expect(Array.from(r.indices)).toEqual([0, 1]);
    expect(r.scores[0]).toBe(f32(0.9));
    expect(r.scores[1]).toBeCloseTo(0.8 * Math.exp(-0.5), 6);
    expect(r.scores[1]).toBe(f32(f32(0.8) * decay(0.5)));
  });

  it('re-orders by decayed score', () => {
    // IoU(A, B) = 0.9 -> 0.8 * exp(-1.62) = 0.15832 falls below C (0.5, disjoint).
    const r = softNms([...A, 0, 0, 10, 9, 20, 20, 30, 30], [0.9, 0.8, 0.5]);
    expect(Array.from(r.indices)).toEqual([0, 2, 1]);
    expect(r.scores[1]).toBe(f32(0.5));
    expect(r.scores[2]).toBeCloseTo(0.8 * Math.exp(-1.62), 6);
  });

  it('decays iteratively: each selected box decays the remaining ones', () => {
    // A decays B and C (IoU 0.5 each); then B (top) does not touch C (edges touch: IoU 0).
    const r = softNms([...A, 0, 0, 10, 5, 0, 5, 10, 10], [0.9, 0.85, 0.6]);
    expect(Array.from(r.indices)).toEqual([0, 1, 2]);
    expect(r.scores[1]).toBeCloseTo(0.85 * Math.exp(-0.5), 6);
    expect(r.scores[2]).toBeCloseTo(0.6 * Math.exp(-0.5), 6);
  });

  it('prunes boxes whose decayed score is <= 0.001', () => {
    // An identical box at 0.0015 decays to 0.0015 * exp(-2) = 0.0002 and is dropped.
    const r = softNms([...A, ...A, 50, 50, 60, 60], [0.9, 0.0015, 0.0011]);
    expect(Array.from(r.indices)).toEqual([0, 2]);
  });

  it('with every score below the threshold keeps only the best box (it is taken before pruning)', () => {
    const far = [0, 0, 1, 1, 10, 10, 11, 11, 20, 20, 21, 21];
    const r = softNms(far, [0.0005, 0.0008, 0.0002]);
    expect(Array.from(r.indices)).toEqual([1]);
    expect(r.scores[0]).toBe(f32(0.0008));
  });

  it('empty input', () => {
    const r = batchedSoftNms([], [], []);
    expect(r.indices.length).toBe(0);
    expect(r.scores.length).toBe(0);
  });

  it('keeps classes apart (identical boxes of two classes do not decay each other)', () => {
    for (const classSeparation of ['offset', 'strict'] as const) {
      const r = batchedSoftNms([...A, ...A, 0, 0, 10, 5], [0.9, 0.8, 0.7], [0, 1, 1], { classSeparation });
      expect(Array.from(r.indices)).toEqual([0, 1, 2]);
      expect(r.scores[1]).toBe(f32(0.8));
      expect(r.scores[2]).toBeCloseTo(0.7 * Math.exp(-0.5), 6);
    }
  });

  it("reproduces effdet's offset trick, which lets boxes below -1 reach the next class; 'strict' does not", () => {
    // Max coordinate 500 -> class 1 is shifted by 501: [-100,-100,0,0] becomes [401,401,501,501].
    const boxes = [400, 400, 500, 500, -100, -100, 0, 0];
    const offset = batchedSoftNms(boxes, [0.9, 0.8], [0, 1]);
    const iou = 9801 / 10199;
    expect(offset.scores[1]).toBeCloseTo(0.8 * Math.exp(-(iou * iou) / 0.5), 5);
    const strict = batchedSoftNms(boxes, [0.9, 0.8], [0, 1], { classSeparation: 'strict' });
    expect(strict.scores[1]).toBe(f32(0.8));
  });

  it('stops at maxOutputSize with the same prefix', () => {
    const boxes = [...A, 0, 0, 10, 9, 20, 20, 30, 30, 40, 40, 50, 50];
    const full = softNms(boxes, [0.9, 0.8, 0.5, 0.4]);
    const two = softNms(boxes, [0.9, 0.8, 0.5, 0.4], { maxOutputSize: 2 });
    expect(Array.from(two.indices)).toEqual(Array.from(full.indices).slice(0, 2));
    expect(Array.from(two.scores)).toEqual(Array.from(full.scores).slice(0, 2));
  });

  it('rejects bad options', () => {
    expect(() => softNms(A, [1], { sigma: 0 })).toThrow(/softNms: sigma must be a number > 0/);
    expect(() => batchedSoftNms(A, [1], [0], { classSeparation: 'x' as 'strict' })).toThrow(
      /batchedSoftNms: classSeparation must be 'offset' or 'strict', got x/,
    );
    expect(() => softNms(A, [1], { scoreThreshold: Number.NaN })).toThrow(
      /softNms: scoreThreshold must be a finite number/,
    );
  });
});

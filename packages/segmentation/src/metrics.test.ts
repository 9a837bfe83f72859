import {
  accuracy,
  ConfusionMatrix,
  f1Score,
  fbetaScore,
  getStats,
  iouScore,
  precision,
  recall,
  segmentationScores,
} from '@effdet/segmentation';
import { expectNoLeaks } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Two 2x2 images, three classes. Image 0: target [0 0 1 2], prediction [0 1 1 2]. Image 1: target [1 1 255 0],
 * prediction [1 2 0 0], 255 ignored. Counted by hand:
 *   tp = [[1,1,1],[1,1,0]]  fp = [[0,1,0],[0,0,1]]  fn = [[1,0,0],[0,1,0]]  tn = [[2,2,3],[2,1,2]]
 */
const TARGET = [0, 0, 1, 2, 1, 1, 255, 0];
const PRED = [0, 1, 1, 2, 1, 2, 0, 0];

describe('getStats (smp.metrics.get_stats)', () => {
  it('multiclass with an ignore index, from tensors, leaves no tensors', async () => {
    const t = tf.tensor3d(TARGET, [2, 2, 2], 'int32');
    const p = tf.tensor3d(PRED, [2, 2, 2], 'int32');
    const s = await expectNoLeaks(() =>
      getStats(p, t, { mode: 'multiclass', numClasses: 3, ignoreIndex: 255 }),
    );
    expect(Array.from(s.tp)).toEqual([1, 1, 1, 1, 1, 0]);
    expect(Array.from(s.fp)).toEqual([0, 1, 0, 0, 0, 1]);
    expect(Array.from(s.fn)).toEqual([1, 0, 0, 0, 1, 0]);
    expect(Array.from(s.tn)).toEqual([2, 2, 3, 2, 1, 2]);
    tf.dispose([t, p]);
  });

  it('binary / multilabel with a threshold (NHWC: classes last)', () => {
    // image 0: probabilities .9 .2 .6 .4 vs target 1 0 0 1 -> tp 1, fp 1, fn 1, tn 1
    const s = getStats(
      { data: [0.9, 0.2, 0.6, 0.4], shape: [1, 2, 2, 1] },
      { data: [1, 0, 0, 1], shape: [1, 2, 2, 1] },
      { mode: 'binary', threshold: 0.5 },
    );
    expect([s.tp[0], s.fp[0], s.fn[0], s.tn[0]]).toEqual([1, 1, 1, 1]);
    // multilabel, 2 pixels x 2 labels: label 0 (1,1) vs (1,0); label 1 (0,1) vs (0,1)
    const m = getStats(
      { data: [1, 0, 1, 1], shape: [1, 1, 2, 2] },
      { data: [1, 0, 0, 1], shape: [1, 1, 2, 2] },
      { mode: 'multilabel' },
    );
    expect(Array.from(m.tp)).toEqual([1, 1]);
    expect(Array.from(m.fp)).toEqual([1, 0]);
    expect(Array.from(m.fn)).toEqual([0, 0]);
    expect(Array.from(m.tn)).toEqual([0, 1]);
  });

  it('scores with smp reductions', () => {
    const s = getStats(
      { data: PRED, shape: [2, 2, 2] },
      { data: TARGET, shape: [2, 2, 2] },
      {
        mode: 'multiclass',
        numClasses: 3,
        ignoreIndex: 255,
      },
    );
    expect(iouScore(s)).toEqual([
      [0.5, 0.5, 1],
      [1, 0.5, 0],
    ]);
    expect(iouScore(s, { reduction: 'micro' })).toBeCloseTo(5 / 9, 12);
    expect(iouScore(s, { reduction: 'macro' })).toBeCloseTo((2 / 3 + 0.5 + 0.5) / 3, 12);
    expect(iouScore(s, { reduction: 'micro-imagewise' })).toBeCloseTo((3 / 5 + 2 / 4) / 2, 12);
    expect(iouScore(s, { reduction: 'macro-imagewise' })).toBeCloseTo((0.75 + 0.5 + 0.5) / 3, 12);
    expect(iouScore(s, { reduction: 'weighted', classWeights: [1, 1, 2] })).toBeCloseTo(
      (2 / 3) * 0.25 + 0.5 * 0.25 + 0.5 * 0.5,
      12,
    );
    expect(f1Score(s, { reduction: 'micro' })).toBeCloseTo(10 / 14, 12);
    expect(fbetaScore(s, 2, { reduction: 'micro' })).toBeCloseTo((5 * 5) / (5 * 5 + 4 * 2 + 2), 12);
    expect(accuracy(s, { reduction: 'micro' })).toBeCloseTo(17 / 21, 12);
    expect(precision(s, { reduction: 'micro' })).toBeCloseTo(5 / 7, 12);
    expect(recall(s, { reduction: 'micro' })).toBeCloseTo(5 / 7, 12);
    // 0/0 (class 2 of image 1 has no pixel) -> zeroDivision
    const onlyC2 = getStats(
      { data: [0, 0], shape: [1, 2] },
      { data: [0, 0], shape: [1, 2] },
      {
        mode: 'multiclass',
        numClasses: 2,
      },
    );
    expect(iouScore(onlyC2)).toEqual([[1, 0]]);
    expect(iouScore(onlyC2, { zeroDivision: 1 })).toEqual([[1, 1]]);
    expect(
      Number.isNaN(iouScore({ ...onlyC2, tp: new Float64Array(2) }, { reduction: 'micro' }) as number),
    ).toBe(true);
    expect(() => iouScore(s, { reduction: 'weighted' })).toThrow(
      /classWeights are required for the 'weighted' reduction/,
    );
  });

  it('bad class ids and options throw', () => {
    const shape = [1, 4];
    expect(() =>
      getStats(
        { data: [0, 3, 1, 1], shape },
        { data: [0, 1, 1, 1], shape },
        { mode: 'multiclass', numClasses: 3 },
      ),
    ).toThrow('getStats: output holds 3 at flat index 1; class ids must be in [0, 3)');
    expect(() =>
      getStats(
        { data: [0, 1, 1, 1], shape },
        { data: [0, 7, 1, 1], shape },
        { mode: 'multiclass', numClasses: 3 },
      ),
    ).toThrow('getStats: target holds 7 at flat index 1; class ids must be in [0, 3)');
    expect(() =>
      getStats(
        { data: [0], shape: [1, 1] },
        { data: [0], shape: [1, 1] },
        { mode: 'multiclass', numClasses: 3, ignoreIndex: 0 },
      ),
    ).toThrow(/ignoreIndex must lie outside the class range 0..2, got 0/);
    expect(() =>
      getStats(
        { data: [0, 1], shape: [1, 2] },
        { data: [0], shape: [1, 1] },
        { mode: 'multiclass', numClasses: 2 },
      ),
    ).toThrow(/output \[1,2\] and target \[1,1\] must have the same shape/);
    expect(() =>
      getStats({ data: [0.3], shape: [1, 1] }, { data: [1], shape: [1, 1] }, { mode: 'binary' }),
    ).toThrow(/output must be 0\/1 in 'binary' mode without a threshold, got 0.3/);
  });
});

describe('ConfusionMatrix: per-class IoU, mIoU, pixel accuracy, Dice', () => {
  it('accumulates images and scores them', async () => {
    const cm = new ConfusionMatrix(3, { ignoreIndex: 255 });
    const t = tf.tensor2d(TARGET.slice(0, 4), [2, 2], 'int32');
    const p = tf.tensor2d(PRED.slice(0, 4), [2, 2], 'int32');
    await expectNoLeaks(() => cm.update(p, t));
    cm.update(Int32Array.from(PRED.slice(4)), TARGET.slice(4));
    // rows = target, columns = prediction
    expect(Array.from(cm.matrix)).toEqual([2, 1, 0, 0, 2, 1, 0, 0, 1]);
    const s = cm.scores();
    expect(s.iou).toEqual([2 / 3, 0.5, 0.5]);
    expect(s.meanIoU).toBeCloseTo(5 / 9, 12);
    expect(s.pixelAccuracy).toBeCloseTo(5 / 7, 12);
    expect(s.dice).toEqual([4 / 5, 4 / 6, 2 / 3]);
    expect(s.meanDice).toBeCloseTo((4 / 5 + 4 / 6 + 2 / 3) / 3, 12);
    expect(s.classAccuracy).toEqual([2 / 3, 2 / 3, 1]);
    expect(s.frequencyWeightedIoU).toBeCloseTo(4 / 7, 12);
    tf.dispose([t, p]);
  });

  it('classes absent from target and prediction are NaN and left out of the means', () => {
    const s = segmentationScores([0, 1, 1, 0], [0, 1, 0, 0], 4);
    expect(s.iou.slice(0, 2)).toEqual([2 / 3, 1 / 2]);
    expect(Number.isNaN(s.iou[2]) && Number.isNaN(s.iou[3])).toBe(true);
    expect(s.meanIoU).toBeCloseTo((2 / 3 + 1 / 2) / 2, 12);
    expect(s.pixelAccuracy).toBe(3 / 4);
  });

  it('wrong class ids name the value and where', () => {
    const cm = new ConfusionMatrix(3);
    expect(() => cm.update([0, 1], [0, 5])).toThrow(
      'ConfusionMatrix.update: target holds 5 at flat index 1; class ids must be in [0, 3)',
    );
    expect(() => cm.update([0, -1], [0, 1])).toThrow(/prediction holds -1 at flat index 1/);
    expect(() => cm.update([0, 1, 2], [0, 1])).toThrow(/must have the same size/);
    expect(() => new ConfusionMatrix(3, { ignoreIndex: 1 })).toThrow(
      /ignoreIndex must lie outside the class range/,
    );
  });
});

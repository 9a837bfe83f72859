import { evaluateVoc, vocAp11Point, vocApAllPoints, vocBoxIou } from './index.js';

describe('VOC AP formulas', () => {
  it('all-points: area under the interpolated curve', () => {
    // recall 0.5 at precision 1, recall 1 at precision 0.5: 0.5 * 1 + 0.5 * 0.5
    expect(vocApAllPoints([0.5, 1], [1, 0.5])).toBeCloseTo(0.75, 15);
    expect(vocApAllPoints([], [])).toBe(0);
  });

  it('11-point: mean of the best precision at recall >= 0, 0.1, ..., 1', () => {
    // t = 0 .. 0.5 (6 points) -> 1, t = 0.6 .. 1 (5 points) -> 0.5
    expect(vocAp11Point([0.5, 1], [1, 0.5])).toBeCloseTo((6 + 2.5) / 11, 15);
    // recall tops out at 0.6, and np.arange's 6 * 0.1 = 0.6000000000000001 > 0.6: only t = 0 .. 0.5 score
    expect(vocAp11Point([0.25, 0.6], [1, 1])).toBeCloseTo(6 / 11, 15);
  });

  it('box IoU in continuous and in VOCdevkit pixel-inclusive coordinates', () => {
    expect(vocBoxIou([0, 0, 9, 9], [5, 0, 14, 9])).toBeCloseTo(36 / 126, 15);
    expect(vocBoxIou([0, 0, 9, 9], [5, 0, 14, 9], true)).toBeCloseTo(50 / 150, 15);
  });
});

describe('evaluateVoc', () => {
  const gts = [
    {
      imageId: 'a',
      boxes: [
        [0, 0, 10, 10],
        [20, 20, 30, 30],
        [40, 40, 50, 50],
      ],
      labels: [1, 1, 1],
      difficult: [0, 0, 1],
    },
    {
      imageId: 'b',
      boxes: [
        [0, 0, 10, 10],
        [30, 30, 40, 40],
      ],
      labels: [1, 2],
    },
  ];
  const dets = [
    {
      imageId: 'a',
      boxes: [
        [0, 0, 10, 10], // TP
        [1, 1, 10, 10], // IoU 0.81 with an already matched box: FP
        [40, 40, 50, 50], // difficult: ignored
        [20, 20, 30, 28], // IoU 0.8: TP
        [5, 5, 5, 9], // zero width: dropped
      ],
      scores: [0.9, 0.8, 0.7, 0.4, 0.99],
      labels: [1, 1, 1, 1, 1],
    },
    {
      imageId: 'b',
      boxes: [
        [50, 50, 60, 60], // FP
        [0, 0, 10, 9], // IoU 0.9: TP
        [0, 0, 5, 5], // class 3 has no ground truth
      ],
      scores: [0.6, 0.5, 0.9],
      labels: [1, 1, 3],
    },
  ];
  // class 1 in score order: TP FP FP TP TP over 3 ground truths
  //   precision 1, 1/2, 1/3, 1/2, 3/5; recall 1/3, 1/3, 1/3, 2/3, 1
  //   all points: 1/3 * 1 + 1/3 * 0.6 + 1/3 * 0.6 = 11/15
  //   11 points:  t = 0 .. 0.3 -> 1, t = 0.4 .. 1 -> 0.6: (4 + 7 * 0.6) / 11
  it('all-points AP per class and mean over classes with ground truth', () => {
    const r = evaluateVoc(gts, dets, { includeCurves: true, labelNames: { 1: 'cat', 2: 'dog' } });
    expect(r.metric).toBe('allpoints');
    const [c1, c2, c3] = r.perClass;
    expect(c1.label).toBe(1);
    expect(c1.name).toBe('cat');
    expect(c1.numGt).toBe(3);
    expect(c1.numDetections).toBe(6); // the zero-width box is dropped; the difficult match still counts
    expect(c1.numTruePositives).toBe(3);
    expect(c1.ap).toBeCloseTo(11 / 15, 15);
    expect(c1.precision).toEqual([1, 1 / 2, 1 / 3, 2 / 4, 3 / 5]);
    expect(c1.recall).toEqual([1 / 3, 1 / 3, 1 / 3, 2 / 3, 1]);
    expect(c2).toMatchObject({ label: 2, name: 'dog', numGt: 1, numDetections: 0, ap: 0 });
    expect(c3).toMatchObject({ label: 3, numGt: 0, ap: -1 });
    expect(r.mAP).toBeCloseTo(11 / 15 / 2, 15);
  });

  it('VOC2007 11-point AP on the same detections', () => {
    const r = evaluateVoc(gts, dets, { metric: '11point' });
    expect(r.perClass[0].ap).toBeCloseTo((4 + 7 * 0.6) / 11, 15);
    expect(r.mAP).toBeCloseTo((4 + 7 * 0.6) / 11 / 2, 15);
  });

  it('without the difficult flag, the difficult box is a ground truth and its detection a TP', () => {
    const plain = gts.map((g) => ({ ...g, difficult: undefined }));
    const r = evaluateVoc(plain, dets, { labels: [1] });
    // 4 ground truths; order TP FP TP(difficult box, .7) FP TP TP
    expect(r.perClass).toHaveLength(1);
    expect(r.perClass[0].numGt).toBe(4);
    expect(r.perClass[0].numTruePositives).toBe(4);
  });

  it('a stricter IoU threshold turns the 0.8 match into a false positive', () => {
    const r = evaluateVoc(gts, dets, { iouThreshold: 0.85, labels: [1] });
    expect(r.perClass[0].numTruePositives).toBe(2);
  });

  it('checks its inputs', () => {
    expect(() => evaluateVoc([{ imageId: 1, boxes: [[0, 0, 1]], labels: [1] }], [])).toThrow(
      /evaluateVoc: argument 'groundTruth\[0\].boxes\[0\]' expected an \[x1, y1, x2, y2\] box/,
    );
    expect(() => evaluateVoc([], [], { metric: 'bogus' as never })).toThrow(/options.metric/);
  });
});

import {
  type CocoDatasetJson,
  CocoEval,
  CocoIndex,
  type CocoResult,
  cocoIouThresholds,
  cocoRecallThresholds,
  EvalArgumentError,
  evaluateCoco,
  formatCocoReport,
  formatFixed,
  formatPerCategoryTable,
  rleFromPolygon,
  rleToString,
} from './index.js';

function run(
  gt: CocoDatasetJson,
  dets: CocoResult[],
  setup: (E: CocoEval) => void = () => undefined,
  iouType: 'bbox' | 'segm' = 'bbox',
) {
  const index = new CocoIndex(gt);
  const E = new CocoEval(index, index.loadRes(dets), iouType);
  setup(E);
  E.evaluate();
  E.accumulate();
  const stats = E.summarize();
  return { E, stats, perCat: Object.fromEntries(E.perCategoryAP()) };
}

function expectAll(actual: number[], expected: number[]) {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => {
    expect(Math.abs(v - expected[i])).toBeLessThanOrEqual(1e-9);
  });
}

function expectPerCat(actual: Record<string, number>, expected: Record<string, number>) {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const k of Object.keys(expected)) expect(Math.abs(actual[k] - expected[k])).toBeLessThanOrEqual(1e-9);
}

describe('thresholds', () => {
  it('reproduce np.linspace values (0.75 must compare equal for stats[2])', () => {
    const t = cocoIouThresholds();
    expect(t).toHaveLength(10);
    expect(t[0]).toBe(0.5);
    expect(t[5]).toBe(0.75);
    expect(t[9]).toBe(0.95);
    expect(t[1]).toBe(0.5 + 0.049999999999999996); // step = (0.95 - 0.5) / 9
    const r = cocoRecallThresholds();
    expect(r).toHaveLength(101);
    expect(r[3]).toBe(3 * 0.01); // 0.03
    expect(r[100]).toBe(1);
  });
});

describe('hand-computed bbox cases', () => {
  const one: CocoDatasetJson = {
    images: [{ id: 1, width: 100, height: 100 }],
    categories: [{ id: 7, name: 'thing' }],
    annotations: [{ id: 1, image_id: 1, category_id: 7, bbox: [10, 10, 40, 40], area: 1600, iscrowd: 0 }],
  };

  it('a perfect detection gives 1 for every populated stat and -1 for empty area ranges', () => {
    const { stats } = run(one, [{ image_id: 1, category_id: 7, bbox: [10, 10, 40, 40], score: 0.5 }]);
    // area 1600 is 'medium': small and large have no ground truth. Precision is tp / (tp + fp + eps), so 1 - 2e-16.
    expectAll(stats, [1, 1, 1, -1, 1, -1, 1, 1, 1, -1, 1, -1]);
    expect(stats[0]).toBeLessThan(1);
  });

  it('a false positive ranked above the true positive halves the precision: AP = 0.5', () => {
    const { stats } = run(one, [
      { image_id: 1, category_id: 7, bbox: [60, 60, 30, 30], score: 0.9 },
      { image_id: 1, category_id: 7, bbox: [10, 10, 40, 40], score: 0.8 },
    ]);
    // precision at recall 1 is 1/2 at every IoU threshold and every recall point
    expect(stats[0]).toBeCloseTo(0.5, 15);
    expect(stats[1]).toBeCloseTo(0.5, 15);
    // AR@1: only the false positive is kept
    expect(stats[6]).toBe(0);
    expect(stats[7]).toBe(1);
  });

  it('equal scores keep input order (stable sort): the first listed wins', () => {
    const a = run(one, [
      { image_id: 1, category_id: 7, bbox: [10, 10, 40, 40], score: 0.5 },
      { image_id: 1, category_id: 7, bbox: [60, 60, 30, 30], score: 0.5 },
    ]);
    const b = run(one, [
      { image_id: 1, category_id: 7, bbox: [60, 60, 30, 30], score: 0.5 },
      { image_id: 1, category_id: 7, bbox: [10, 10, 40, 40], score: 0.5 },
    ]);
    expect(a.stats[0]).toBeCloseTo(1, 15);
    expect(b.stats[0]).toBeCloseTo(0.5, 15);
  });

  it('IoU exactly at a threshold matches (>=): IoU 0.6 counts at 0.50, 0.55, 0.60 only', () => {
    // [10,10,40,40] vs [10,10,40,24]: 960 / 1600 = 0.6
    const { stats } = run(one, [{ image_id: 1, category_id: 7, bbox: [10, 10, 40, 24], score: 0.5 }]);
    expect(stats[0]).toBeCloseTo(0.3, 15);
    expect(stats[1]).toBeCloseTo(1, 15);
    expect(stats[2]).toBe(0);
  });

  it('a detection inside a crowd region is ignored, one outside is a false positive', () => {
    const crowd: CocoDatasetJson = {
      ...one,
      annotations: [
        ...one.annotations!,
        { id: 2, image_id: 1, category_id: 7, bbox: [50, 50, 50, 50], area: 2500, iscrowd: 1 },
      ],
    };
    const inside = run(crowd, [
      { image_id: 1, category_id: 7, bbox: [60, 60, 10, 10], score: 0.9 }, // IoU vs crowd = 100/100
      { image_id: 1, category_id: 7, bbox: [10, 10, 40, 40], score: 0.8 },
    ]);
    expect(inside.stats[0]).toBeCloseTo(1, 15);
    const outside = run(crowd, [
      { image_id: 1, category_id: 7, bbox: [0, 60, 10, 10], score: 0.9 },
      { image_id: 1, category_id: 7, bbox: [10, 10, 40, 40], score: 0.8 },
    ]);
    expect(outside.stats[0]).toBeCloseTo(0.5, 15);
  });
});

// A small multi-image case; expected values were produced by pycocotools on the same input.
const TINY: CocoDatasetJson = {
  images: [1, 2, 3, 4].map((id) => ({ id, width: 200, height: 200 })),
  categories: [
    { id: 1, name: 'cat' },
    { id: 2, name: 'dog' },
    { id: 3, name: 'bird' },
  ],
  annotations: [
    { id: 1, image_id: 1, category_id: 1, bbox: [10, 10, 20, 20], area: 400, iscrowd: 0 },
    { id: 2, image_id: 1, category_id: 2, bbox: [50, 50, 60, 40], area: 2400, iscrowd: 0 },
    { id: 3, image_id: 2, category_id: 1, bbox: [0, 0, 120, 100], area: 12000, iscrowd: 0 },
    { id: 4, image_id: 2, category_id: 1, bbox: [130, 130, 60, 60], area: 3600, iscrowd: 1 },
    { id: 5, image_id: 2, category_id: 1, bbox: [5, 150, 8, 8], area: 64, iscrowd: 0 },
    { id: 6, image_id: 3, category_id: 2, bbox: [0, 0, 50, 50], area: 2500, iscrowd: 1 },
  ],
};
const DETS: CocoResult[] = [
  { image_id: 1, category_id: 1, bbox: [11, 11, 20, 20], score: 0.9 },
  { image_id: 1, category_id: 1, bbox: [10, 12, 18, 20], score: 0.8 },
  { image_id: 1, category_id: 2, bbox: [55, 50, 60, 40], score: 0.7 },
  { image_id: 1, category_id: 3, bbox: [50, 50, 60, 40], score: 0.6 },
  { image_id: 2, category_id: 1, bbox: [0, 0, 110, 100], score: 0.7 },
  { image_id: 2, category_id: 1, bbox: [140, 140, 30, 30], score: 0.95 },
  { image_id: 2, category_id: 1, bbox: [6, 151, 8, 8], score: 0.7 },
  { image_id: 2, category_id: 2, bbox: [0, 0, 100, 100], score: 0.3 },
  { image_id: 3, category_id: 2, bbox: [10, 10, 20, 20], score: 0.5 },
  { image_id: 3, category_id: 2, bbox: [100, 100, 20, 20], score: 0.5 },
  { image_id: 4, category_id: 1, bbox: [0, 0, 30, 30], score: 0.85 },
  { image_id: 4, category_id: 2, bbox: [0, 0, 30, 30], score: 0.2 },
];

describe('multi-image bbox cases (checked against pycocotools)', () => {
  it('default parameters, with the printed summary', () => {
    const { E, stats, perCat } = run(TINY, DETS);
    expectAll(
      stats,
      [
        0.5686138613861386, 0.8673267326732673, 0.75, 0.4277227722772277, 0.6999999999999998,
        0.8999999999999999, 0.4666666666666666, 0.6666666666666667, 0.6666666666666667, 0.5, 0.7, 0.9,
      ],
    );
    expectPerCat(perCat, { 1: 0.43722772277227717, 2: 0.6999999999999998, 3: -1 });
    expect(E.summaryLines[0]).toBe(
      ' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.569',
    );
    expect(E.summaryLines[2]).toBe(
      ' Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ] = 0.750',
    );
    expect(E.summaryLines[6]).toBe(
      ' Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.467',
    );
    expect(E.summaryLines[11]).toBe(
      ' Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = 0.900',
    );
  });

  it('empty detections: 0 where there is ground truth, -1 for a category without', () => {
    const { stats, perCat, E } = run(TINY, []);
    expect(stats).toEqual(new Array(12).fill(0));
    expect(perCat).toEqual({ 1: 0, 2: 0, 3: -1 });
    expect(E.summaryLines[0].endsWith('= 0.000')).toBe(true);
  });

  it('detections only on an image without ground truth: all false positives', () => {
    const { stats, perCat } = run(
      TINY,
      DETS.filter((d) => d.image_id === 4),
    );
    expect(stats).toEqual(new Array(12).fill(0));
    expect(perCat).toEqual({ 1: 0, 2: 0, 3: -1 });
  });

  it('crowd-only ground truth: nothing to recall, every stat is -1', () => {
    const crowdOnly = { ...TINY, annotations: TINY.annotations!.filter((a) => a.iscrowd) };
    const { stats, perCat, E } = run(crowdOnly, DETS);
    expect(stats).toEqual(new Array(12).fill(-1));
    expect(perCat).toEqual({ 1: -1, 2: -1, 3: -1 });
    expect(E.summaryLines[0].endsWith('= -1.000')).toBe(true);
  });

  it('useCats = false', () => {
    const { stats, perCat } = run(TINY, DETS, (E) => {
      E.params.useCats = false;
    });
    expectAll(
      stats,
      [
        0.48005657708627997, 0.7524752475247526, 0.5544554455445543, 0.4277227722772277, 0.85,
        0.8999999999999999, 0.175, 0.725, 0.725, 0.5, 1.0, 0.9,
      ],
    );
    expectPerCat(perCat, { '-1': 0.48005657708627997 });
  });

  it('custom maxDets, iouThrs and areaRng', () => {
    const { stats, perCat, E } = run(TINY, DETS, (E) => {
      E.params.maxDets = [3, 1, 2]; // sorted by evaluate()
      E.params.iouThrs = [0.5, 0.6, 0.7, 0.75, 0.9];
      E.params.areaRng = [
        [0, 1e10],
        [0, 100],
        [100, 5000],
        [5000, 1e10],
      ];
    });
    expect(E.evaluatedParams!.maxDets).toEqual([1, 2, 3]);
    expectAll(
      stats,
      [
        -1, 0.8673267326732673, 0.75, 0.39999999999999997, 0.7999999999999999, 0.9999999999999998,
        0.5333333333333333, 0.7, 0.7666666666666666, 0.4, 0.8, 1.0,
      ],
    );
    expectPerCat(perCat, { 1: 0.5106930693069307, 2: 0.7999999999999999, 3: -1 });
    expect(E.summaryLines[1]).toBe(
      ' Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=  3 ] = 0.867',
    );
    expect(E.summaryLines[0]).toBe(
      ' Average Precision  (AP) @[ IoU=0.50:0.90 | area=   all | maxDets=100 ] = -1.000',
    );
  });

  it('imgIds subset: images 1 and 3, worked by hand', () => {
    // cat (img 1): IoUs 361/439 = 0.822 (score .9) and 324/436 = 0.743 (score .8): a TP at the seven thresholds
    // 0.50..0.80, nothing at 0.85..0.95 -> AP 0.7. dog: IoU 2200/2600 = 0.846 on img 1 (TP at 0.50..0.80); on img 3
    // one detection lies in the crowd box (ignored), the other is a lower-scored FP -> AP 0.7.
    const { stats, perCat } = run(TINY, DETS, (E) => {
      E.params.imgIds = [3, 1];
    });
    expectAll(
      stats,
      [
        0.6999999999999998, 0.9999999999999999, 0.9999999999999999, 0.6999999999999998, 0.6999999999999998,
        -1, 0.7, 0.7, 0.7, 0.7, 0.7, -1,
      ],
    );
    expectPerCat(perCat, { 1: 0.6999999999999998, 2: 0.6999999999999998, 3: -1 });
  });

  it('summarize needs three maxDets, like pycocotools', () => {
    const index = new CocoIndex(TINY);
    const E = new CocoEval(index, index.loadRes(DETS));
    E.params.maxDets = [1, 10];
    E.evaluate();
    E.accumulate();
    expect(() => E.summarize()).toThrow(/CocoEval.summarize: argument 'params.maxDets' expected at least 3/);
  });
});

describe('segm evaluation (hand-computed)', () => {
  const sq = (x0: number, y0: number, x1: number, y1: number) => [x0, y0, x1, y0, x1, y1, x0, y1];
  const rle = (p: number[]) => ({
    size: [10, 10] as [number, number],
    counts: rleToString(rleFromPolygon(p, 10, 10)),
  });
  const DS: CocoDatasetJson = {
    images: [
      { id: 1, width: 10, height: 10 },
      { id: 2, width: 10, height: 10 },
    ],
    categories: [{ id: 1, name: 'thing' }],
    annotations: [
      // polygon ground truth: a 4x4 square
      {
        id: 1,
        image_id: 1,
        category_id: 1,
        segmentation: [sq(0, 0, 4, 4)],
        area: 16,
        bbox: [0, 0, 4, 4],
        iscrowd: 0,
      },
      // uncompressed-RLE crowd: the right half of the image (columns 5..9)
      {
        id: 2,
        image_id: 2,
        category_id: 1,
        segmentation: { size: [10, 10], counts: [50, 50] },
        area: 50,
        bbox: [5, 0, 5, 10],
        iscrowd: 1,
      },
      {
        id: 3,
        image_id: 2,
        category_id: 1,
        segmentation: [sq(0, 0, 3, 3)],
        area: 9,
        bbox: [0, 0, 3, 3],
        iscrowd: 0,
      },
    ],
  };
  const dets: CocoResult[] = [
    // the square shifted one column right: 12 shared pixels of 20 -> IoU 0.6
    { image_id: 1, category_id: 1, segmentation: rle(sq(1, 0, 5, 4)), score: 0.9 },
    // inside the crowd: IoU 4/4 against it -> ignored
    { image_id: 2, category_id: 1, segmentation: rle(sq(6, 2, 8, 4)), score: 0.95 },
    // exact match
    { image_id: 2, category_id: 1, segmentation: rle(sq(0, 0, 3, 3)), score: 0.8 },
  ];

  it('RLE strings equal maskApi output for these squares', () => {
    expect(dets.map((d) => (d.segmentation as { counts: string }).counts)).toEqual([
      ':4600000b1',
      'n1280b0',
      '037000V2',
    ]);
  });

  it('results get their area and box from the masks (loadRes)', () => {
    const dt = new CocoIndex(DS).loadRes(dets);
    expect([...dt.anns.values()].map((a) => [a.id, a.area, a.bbox])).toEqual([
      [1, 16, [1, 0, 4, 4]],
      [2, 4, [6, 2, 2, 2]],
      [3, 9, [0, 0, 3, 3]],
    ]);
  });

  it('AP = (3 * 1 + 7 * (51 * 0.5 / 101)) / 10, AR@1 = 0.15', () => {
    // IoU thresholds 0.50/0.55/0.60: both non-crowd objects found -> precision 1 everywhere.
    // Above 0.60 the shifted square is a FP ranked first, the exact one a TP: recall reaches 0.5 at precision 0.5,
    // so 51 of the 101 recall points score 0.5.
    const { stats, perCat } = run(DS, dets, undefined, 'segm');
    const ap = (3 + (7 * (51 * 0.5)) / 101) / 10;
    expect(Math.abs(stats[0] - ap)).toBeLessThanOrEqual(1e-12);
    expectAll(
      stats,
      [0.4767326732673267, 1, 0.2524752475247525, 0.4767326732673267, -1, -1, 0.15, 0.65, 0.65, 0.65, -1, -1],
    );
    expect(Math.abs(perCat[1] - ap)).toBeLessThanOrEqual(1e-12);
  });
});

describe('loadRes', () => {
  const index = new CocoIndex(TINY);

  it('assigns ids from 1, area = w * h, iscrowd 0 and a box polygon, without touching the input', () => {
    const input: CocoResult[] = [
      { image_id: 2, category_id: 1, bbox: [1, 2, 3, 4], score: 0.5 },
      { image_id: 1, category_id: 2, bbox: [0, 0, 2.5, 2], score: 0.25 },
    ];
    const copy = JSON.parse(JSON.stringify(input));
    const dt = index.loadRes(input);
    const anns = [...dt.anns.values()];
    expect(anns.map((a) => [a.id, a.area, a.iscrowd])).toEqual([
      [1, 12, 0],
      [2, 5, 0],
    ]);
    expect(anns[0].segmentation).toEqual([[1, 2, 1, 6, 4, 6, 4, 2]]);
    expect(input).toEqual(copy);
    expect(dt.imgs.size).toBe(4);
  });

  it('rejects results for unknown images and malformed entries', () => {
    expect(() => index.loadRes([{ image_id: 99, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }])).toThrow(
      /CocoIndex.loadRes: argument 'results\[0\].image_id' expected the id of an image in the ground truth/,
    );
    expect(() => index.loadRes([{ image_id: 1, category_id: 1, bbox: [0, 0, 1], score: 1 }])).toThrow(
      EvalArgumentError,
    );
    expect(() => index.loadRes({} as never)).toThrow(/expected an array of result objects/);
  });
});

describe('evaluateCoco report', () => {
  it('is JSON-serialisable and carries stats, metrics, per-category AP and summary', () => {
    const r = evaluateCoco(TINY, JSON.stringify(DETS));
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    expect(r.metrics.AP).toBe(r.stats[0]);
    expect(r.metrics.ARl).toBe(r.stats[11]);
    expect(r.perCategory.map((c) => [c.categoryId, c.name])).toEqual([
      [1, 'cat'],
      [2, 'dog'],
      [3, 'bird'],
    ]);
    expect(r.summary.split('\n')).toHaveLength(13);
    expect(r.numImages).toBe(4);
    expect(r.numDetections).toBe(12);
  });

  it('applies parameter overrides', () => {
    const r = evaluateCoco(TINY, DETS, { params: { useCats: false } });
    expect(Math.abs(r.stats[0] - 0.48005657708627997)).toBeLessThanOrEqual(1e-9);
    expect(r.perCategory).toEqual([{ categoryId: -1, name: 'all', ap: r.perCategory[0].ap }]);
  });

  it('formats a per-category table', () => {
    const table = formatPerCategoryTable([
      { categoryId: 1, name: 'cat', ap: 0.25 },
      { categoryId: 12, name: 'traffic light', ap: 0.5 },
      { categoryId: 3, name: 'bird', ap: -1 },
    ]);
    expect(table).toBe(
      [
        'id  name              AP',
        '--  -------------  -----',
        ' 1  cat            0.250',
        '12  traffic light  0.500',
        ' 3  bird               -',
        '--  -------------  -----',
        '    mean           0.375',
        '',
      ].join('\n'),
    );
    const report = formatCocoReport(evaluateCoco(TINY, DETS));
    expect(report.startsWith(' Average Precision  (AP) @[ IoU=0.50:0.95')).toBe(true);
    expect(report).toContain('  bird ');
  });
});

describe("Python's '{:.3f}' formatting", () => {
  it('rounds exact binary ties to even and keeps the sign of negative zero', () => {
    expect(formatFixed(0.0625, 3)).toBe('0.062'); // JS toFixed gives 0.063
    expect(formatFixed(0.1875, 3)).toBe('0.188');
    expect(formatFixed(0.5686138613861386, 3)).toBe('0.569');
    expect(formatFixed(-1, 3)).toBe('-1.000');
    expect(formatFixed(-0.0001, 3)).toBe('-0.000');
    expect(formatFixed(0.95, 2)).toBe('0.95');
    expect(formatFixed(Number.NaN, 3)).toBe('nan');
  });
});

/**
 * Cross-checks against pycocotools on generated data. A seeded generator (mulberry32) builds the same
 * ground truth and detections here and in a Python script that ran the original pycocotools `COCOeval` (with the
 * original maskApi.c for masks); the numbers below are that script's output. Scores are quantised to 0.05 so
 * that ties exercise the stable sort orders.
 */
import {
  type CocoDatasetJson,
  CocoEval,
  CocoIndex,
  type CocoResult,
  linspace,
  npSum,
  rleFromPolygon,
  rleMerge,
  rleToString,
} from './index.js';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generate(seed: number, nImg: number, nCat: number, segm = false): [CocoDatasetJson, CocoResult[]] {
  const r = mulberry32(seed);
  const images: CocoDatasetJson['images'] = [];
  const anns: NonNullable<CocoDatasetJson['annotations']> = [];
  const dets: CocoResult[] = [];
  for (let i = 0; i < nImg; i++) {
    const imgId = 100 + i;
    images.push({ id: imgId, width: 640, height: 480 });
    const gts: typeof anns = [];
    const nGt = Math.floor(r() * 6);
    for (let j = 0; j < nGt; j++) {
      const cat = 1 + Math.floor(r() * nCat);
      const x = r() * 500;
      const y = r() * 380;
      const w = 4 + r() * 130;
      const h = 4 + r() * 100;
      const crowd = r() < 0.1 ? 1 : 0;
      const area = w * h * (0.6 + 0.4 * r());
      const a: (typeof anns)[number] = {
        id: anns.length + 1,
        image_id: imgId,
        category_id: cat,
        bbox: [x, y, w, h],
        area,
        iscrowd: crowd,
      };
      if (segm) a.segmentation = [[x, y, x + w, y + h * 0.3, x + w * 0.7, y + h, x, y + h]];
      anns.push(a);
      gts.push(a);
    }
    const nDt = Math.floor(r() * 8);
    for (let j = 0; j < nDt; j++) {
      let x: number;
      let y: number;
      let w: number;
      let h: number;
      let cat: number;
      if (gts.length && r() < 0.7) {
        const g = gts[Math.floor(r() * gts.length)];
        const [gx, gy, gw, gh] = g.bbox!;
        x = gx + (r() - 0.5) * 0.3 * gw;
        y = gy + (r() - 0.5) * 0.3 * gh;
        w = gw * (0.8 + 0.4 * r());
        h = gh * (0.8 + 0.4 * r());
        cat = r() < 0.85 ? g.category_id : 1 + Math.floor(r() * nCat);
      } else {
        x = r() * 500;
        y = r() * 380;
        w = 4 + r() * 130;
        h = 4 + r() * 100;
        cat = 1 + Math.floor(r() * nCat);
      }
      const score = Math.floor(r() * 20) / 20;
      const d: CocoResult = { image_id: imgId, category_id: cat, score };
      if (segm) {
        const poly = [x, y + h * 0.1, x + w, y, x + w * 0.8, y + h, x + w * 0.1, y + h * 0.9];
        const rle = rleMerge([rleFromPolygon(poly, 480, 640)]);
        d.segmentation = { size: [480, 640], counts: rleToString(rle) };
      } else {
        d.bbox = [x, y, w, h];
      }
      dets.push(d);
    }
  }
  const categories = Array.from({ length: nCat }, (_, c) => ({ id: c + 1, name: `c${c + 1}` }));
  return [{ images, annotations: anns, categories }, dets];
}

interface Expected {
  stats: number[];
  perCat: Record<string, number>;
  precisionSum: number;
  recallSum: number;
}

const EXPECTED: Record<string, Expected> = {
  rand_default: {
    stats: [
      0.08541917676205096, 0.19798055094444647, 0.0775759464669698, 0.06443894389438942, 0.10498313590785927,
      0.0, 0.13316187888198758, 0.1934077380952381, 0.1934077380952381, 0.09375, 0.22490530303030304, 0.0,
    ],
    perCat: {
      '1': 0.11278770734216279,
      '2': 0.11317390838381125,
      '3': 0.04481540591033894,
      '4': 0.07089968541189094,
    },
    precisionSum: -6187.505082857895,
    recallSum: -34.68764822134387,
  },
  rand_nocats: {
    stats: [
      0.07337695702345698, 0.18653441033833268, 0.04980380138329853, 0.06980198019801981, 0.08467272167775108,
      0.0, 0.06823529411764706, 0.2152941176470588, 0.2152941176470588, 0.12777777777777777,
      0.24242424242424243, 0.0,
    ],
    perCat: { '-1': 0.07337695702345698 },
    precisionSum: 547.3706800523678,
    recallSum: 13.553891859774213,
  },
  rand_custom: {
    stats: [
      -1.0, 0.21176664244846063, 0.08985630909255196, 0.11868686868686867, -1.0, 0.21463906463906463,
      0.23877113526570048, 0.30701173222912354, 0.31891649413388545, 0.17222222222222225, -1.0,
      0.38683712121212116,
    ],
    perCat: {
      '1': 0.22294372294372297,
      '2': 0.22567933858256436,
      '3': 0.08993680116674768,
      '4': 0.151010101010101,
    },
    precisionSum: 192.27047663449756,
    recallSum: 28.67222567287785,
  },
  rand_imgsubset: {
    stats: [
      0.016831683168316833, 0.0561056105610561, 0.0, 0.0, 0.033663366336633666, -1.0, 0.05, 0.05, 0.05, 0.0,
      0.1, -1.0,
    ],
    perCat: { '1': 0.0, '3': 0.033663366336633666 },
    precisionSum: -11916.0,
    recallSum: -114.0,
  },
  rand_segm: {
    stats: [
      0.052597995024631826, 0.19255875791048802, 0.015096794122444185, 0.05918591859185918,
      0.06593526502141589, -1.0, 0.10803571428571428, 0.1615079365079365, 0.1615079365079365,
      0.10666666666666667, 0.19158249158249158, -1.0,
    ],
    perCat: { '1': 0.08239470375608991, '2': 0.02161720605558093, '3': 0.05378207526222467 },
    precisionSum: -7479.529519712026,
    recallSum: -53.20481601731601,
  },
  rand_segm_bbox: {
    stats: [
      0.10329189897173557, 0.26429938024858385, 0.042901671119492904, 0.09803905390539053,
      0.11514072320091077, -1.0, 0.17301587301587298, 0.23422619047619045, 0.23422619047619045,
      0.15888888888888886, 0.2677777777777777, -1.0,
    ],
    perCat: { '1': 0.14794475876159044, '2': 0.07620536330780218, '3': 0.0857255748458141 },
    precisionSum: -6214.516502551956,
    recallSum: -35.529689754689755,
  },
};

function check(E: CocoEval, exp: Expected): void {
  E.evaluate();
  const acc = E.accumulate();
  const stats = E.summarize();
  stats.forEach((s, i) => {
    expect(Math.abs(s - exp.stats[i])).toBeLessThanOrEqual(1e-9);
  });
  const per = E.perCategoryAP();
  expect(per.size).toBe(Object.keys(exp.perCat).length);
  for (const [id, ap] of Object.entries(exp.perCat))
    expect(Math.abs(per.get(Number(id))! - ap)).toBeLessThanOrEqual(1e-9);
  expect(Math.abs(npSum(acc.precision) - exp.precisionSum)).toBeLessThanOrEqual(1e-7);
  expect(Math.abs(npSum(acc.recall) - exp.recallSum)).toBeLessThanOrEqual(1e-7);
}

describe('COCOeval against pycocotools on generated data', () => {
  const [ds, dets] = generate(7, 40, 4);
  const gt = new CocoIndex(ds);
  const dt = gt.loadRes(dets);

  it('default parameters', () => {
    check(new CocoEval(gt, dt, 'bbox'), EXPECTED.rand_default);
  });

  it('useCats = false', () => {
    const E = new CocoEval(gt, dt, 'bbox');
    E.params.useCats = false;
    check(E, EXPECTED.rand_nocats);
  });

  it('custom iouThrs, recThrs, maxDets, areaRng and labels', () => {
    const E = new CocoEval(gt, dt, 'bbox');
    E.params.iouThrs = [0.3, 0.5, 0.75];
    E.params.recThrs = linspace(0, 1, 11);
    E.params.maxDets = [1, 3, 5];
    E.params.areaRng = [
      [0, 1e10],
      [0, 40 ** 2],
      [40 ** 2, 1e10],
    ];
    E.params.areaRngLbl = ['all', 'small', 'large'];
    check(E, EXPECTED.rand_custom);
    // stats[0] asks for maxDets=100 and stats[4]/[10] for 'medium': absent, so -1 as in pycocotools
    expect(E.stats[0]).toBe(-1);
    expect(E.stats[4]).toBe(-1);
    expect(E.stats[10]).toBe(-1);
  });

  it('imgIds subset (with a duplicate) and catIds subset', () => {
    const E = new CocoEval(gt, dt, 'bbox');
    E.params.imgIds = [100, 101, 105, 110, 120, 139, 139];
    E.params.catIds = [1, 3];
    check(E, EXPECTED.rand_imgsubset);
    expect(E.evaluatedParams!.imgIds).toEqual([100, 101, 105, 110, 120, 139]);
  });

  const [ds2, dets2] = generate(11, 25, 3, true);
  const gt2 = new CocoIndex(ds2);
  const dt2 = gt2.loadRes(dets2);

  it('segm: polygon ground truth, compressed-RLE results', () => {
    check(new CocoEval(gt2, dt2, 'segm'), EXPECTED.rand_segm);
  });

  it('bbox on segmentation results (boxes from toBbox, areas from the masks)', () => {
    check(new CocoEval(gt2, dt2, 'bbox'), EXPECTED.rand_segm_bbox);
  });
});

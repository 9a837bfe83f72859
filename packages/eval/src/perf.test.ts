/** Smoke test at a moderate size (no timing assertion): 1000 images x 100 detections, 20 categories. */
import { type CocoDatasetJson, CocoEval, CocoIndex, type CocoResult } from './index.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function syntheticCoco(nImages: number, detsPerImage: number, nCats: number, seed = 1) {
  const r = lcg(seed);
  const ds: CocoDatasetJson = {
    images: [],
    annotations: [],
    categories: Array.from({ length: nCats }, (_, i) => ({ id: i + 1, name: `c${i + 1}` })),
  };
  const results: CocoResult[] = [];
  for (let i = 0; i < nImages; i++) {
    ds.images.push({ id: i + 1, width: 640, height: 480 });
    const gts: number[][] = [];
    const nGt = 1 + Math.floor(r() * 15);
    for (let g = 0; g < nGt; g++) {
      const box = [r() * 560, r() * 400, 8 + r() * 200, 8 + r() * 150];
      const cat = 1 + Math.floor(r() * nCats);
      gts.push([...box, cat]);
      ds.annotations!.push({
        id: ds.annotations!.length + 1,
        image_id: i + 1,
        category_id: cat,
        bbox: box,
        area: box[2] * box[3],
        iscrowd: r() < 0.02 ? 1 : 0,
      });
    }
    for (let d = 0; d < detsPerImage; d++) {
      const g = gts[Math.floor(r() * gts.length)];
      const jitter = d < 2 * nGt ? 0.1 : 1;
      results.push({
        image_id: i + 1,
        category_id: r() < 0.8 ? g[4] : 1 + Math.floor(r() * nCats),
        bbox: [g[0] + (r() - 0.5) * jitter * g[2], g[1] + (r() - 0.5) * jitter * g[3], g[2], g[3]],
        score: r(),
      });
    }
  }
  return { ds, results };
}

describe('performance smoke test', () => {
  it('evaluates 1000 images x 100 detections', () => {
    const { ds, results } = syntheticCoco(1000, 100, 20);
    const gt = new CocoIndex(ds);
    const E = new CocoEval(gt, gt.loadRes(results), 'bbox');
    E.evaluate();
    E.accumulate();
    const stats = E.summarize();
    expect(stats).toHaveLength(12);
    for (const s of stats) expect(s >= 0 && s <= 1).toBe(true);
    expect(stats[1]).toBeGreaterThan(stats[2]); // AP50 > AP75
  });
});

/**
 * `effdet bench-eval`: COCO evaluation speed on a seeded, COCO-val-sized synthetic case (5,000 images, about
 * 30,000 ground-truth boxes over the 80 COCO categories, about 330,000 detections), timed from the JSON files
 * to the printed summary: load (read + parse + index ground truth, read + parse + `loadRes` results), evaluate,
 * accumulate, summarize. Run it in plain Node (`node tools/cli/dist/main.js bench-eval`), not under Jest.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CocoAnnotation,
  type CocoDatasetJson,
  CocoEval,
  type CocoResult,
  loadCocoDataset,
} from '@effdet/eval';

/** The 80 COCO 2017 category ids (1..90 with gaps). */
export const COCO_CATEGORY_IDS: readonly number[] = [
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33,
  34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
  62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
];

/** mulberry32: a small seeded generator in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SyntheticCocoOptions {
  images?: number;
  /** Mean ground-truth boxes per image (default 6: about 30,000 for 5,000 images). */
  gtPerImage?: number;
  /** Mean detections per image (default 66, at most 100 each: about 330,000 for 5,000 images). */
  detsPerImage?: number;
  seed?: number;
}

/**
 * A COCO-like ground truth and detector output: image sizes around 640x480, box sizes spread over the
 * small / medium / large ranges, a category frequency skewed like COCO's, 1 % crowd regions, some images
 * without objects; per image 1-3 detections around each object (mostly the right category, some duplicates)
 * plus low-scoring clutter, scores rounded to float32 like a detector's. Deterministic for a seed.
 */
export function syntheticCoco(options: SyntheticCocoOptions = {}): {
  gt: CocoDatasetJson;
  results: CocoResult[];
} {
  const nImages = options.images ?? 5000;
  const gtMean = options.gtPerImage ?? 6;
  const dtMean = options.detsPerImage ?? 66;
  const r = mulberry32(options.seed ?? 1);
  const f32 = Math.fround;
  const cats = COCO_CATEGORY_IDS;
  const pickCat = () => cats[Math.min(cats.length - 1, Math.floor(r() ** 2.2 * cats.length))];
  const gt: CocoDatasetJson = {
    info: { description: 'synthetic COCO-val-sized benchmark case' },
    images: [],
    annotations: [],
    categories: cats.map((id) => ({ id, name: `category_${id}`, supercategory: 'synthetic' })),
  };
  const anns = gt.annotations as CocoAnnotation[];
  const results: CocoResult[] = [];
  for (let i = 0; i < nImages; i++) {
    const id = 100000 + i * 7;
    const landscape = r() < 0.7;
    const long = 640;
    const short = 360 + Math.floor(r() * 281);
    const W = landscape ? long : short;
    const H = landscape ? short : long;
    gt.images.push({ id, width: W, height: H, file_name: `${String(id).padStart(12, '0')}.jpg` });
    // geometric-ish count with mean gtMean; about 1 % of images are empty
    const nGt = r() < 0.01 ? 0 : Math.min(60, Math.floor(-Math.log(1 - r()) * gtMean + 0.5));
    const objects: { box: number[]; cat: number }[] = [];
    for (let g = 0; g < nGt; g++) {
      const side = Math.exp(Math.log(6) + r() * (Math.log(420) - Math.log(6))); // sqrt(area): 6..420 px
      const aspect = Math.exp((r() - 0.5) * 2.2);
      const w = Math.min(W - 1, side * Math.sqrt(aspect));
      const h = Math.min(H - 1, side / Math.sqrt(aspect));
      const x = r() * (W - w);
      const y = r() * (H - h);
      const crowd = r() < 0.01;
      const cat = pickCat();
      const box = [x, y, w, h];
      anns.push({
        id: anns.length + 1,
        image_id: id,
        category_id: cat,
        bbox: box,
        area: w * h * (0.55 + 0.4 * r()), // polygon area, smaller than the box
        iscrowd: crowd ? 1 : 0,
      });
      objects.push({ box, cat });
    }
    const budget = Math.min(100, Math.max(0, Math.round(dtMean + (r() - 0.5) * 2 * 34)));
    let n = 0;
    const push = (bx: number, by: number, bw: number, bh: number, cat: number, score: number) => {
      const x1 = f32(Math.max(0, bx));
      const y1 = f32(Math.max(0, by));
      const x2 = f32(Math.min(W, bx + bw));
      const y2 = f32(Math.min(H, by + bh));
      results.push({
        image_id: id,
        category_id: cat,
        bbox: [x1, y1, f32(x2 - x1), f32(y2 - y1)],
        score: f32(score),
      });
      n++;
    };
    for (const o of objects) {
      const copies = 1 + Math.floor(r() * 3);
      for (let c = 0; c < copies && n < budget; c++) {
        const [x, y, w, h] = o.box;
        const j = c === 0 ? 0.15 : 0.5;
        const cat = r() < 0.8 ? o.cat : pickCat();
        const score = c === 0 ? 0.3 + 0.7 * r() : 0.05 + 0.6 * r();
        push(
          x + (r() - 0.5) * j * w,
          y + (r() - 0.5) * j * h,
          w * (1 + (r() - 0.5) * j),
          h * (1 + (r() - 0.5) * j),
          cat,
          score,
        );
      }
    }
    while (n < budget) {
      const side = Math.exp(Math.log(8) + r() * (Math.log(400) - Math.log(8)));
      const aspect = Math.exp((r() - 0.5) * 2);
      const w = side * Math.sqrt(aspect);
      const h = side / Math.sqrt(aspect);
      push(r() * (W - w * 0.5), r() * (H - h * 0.5), w, h, pickCat(), 0.001 + 0.35 * r() ** 3);
    }
  }
  return { gt, results };
}

export interface BenchEvalOptions extends SyntheticCocoOptions {
  /** Timed repetitions (default 1); each reads and parses the files again. */
  runs?: number;
  /** Keep the generated files in this folder (default: a temporary folder, removed afterwards). */
  dir?: string;
}

export interface BenchEvalTimes {
  load: number;
  evaluate: number;
  accumulate: number;
  summarize: number;
  total: number;
}

export interface BenchEvalResult {
  images: number;
  annotations: number;
  categories: number;
  detections: number;
  gtBytes: number;
  resultsBytes: number;
  /** Seconds, per run. */
  runs: BenchEvalTimes[];
  /** The fastest run. */
  best: BenchEvalTimes;
  stats: number[];
  summary: string;
  node: string;
  /** Peak resident memory of the process (generation included), MiB. */
  maxRssMiB: number;
}

/** Generates the case (untimed), then times load / evaluate / accumulate / summarize from the JSON files. */
export function benchEval(options: BenchEvalOptions = {}): BenchEvalResult {
  const { gt, results } = syntheticCoco(options);
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'effdet-bench-eval-'));
  const gtPath = join(dir, 'instances.json');
  const dtPath = join(dir, 'results.json');
  const gtText = JSON.stringify(gt);
  const dtText = JSON.stringify(results);
  writeFileSync(gtPath, gtText);
  writeFileSync(dtPath, dtText);
  const runs: BenchEvalTimes[] = [];
  let stats: number[] = [];
  let summary = '';
  try {
    for (let i = 0; i < (options.runs ?? 1); i++) {
      (globalThis as { gc?: () => void }).gc?.();
      const t0 = performance.now();
      const gtIndex = loadCocoDataset(readFileSync(gtPath, 'utf8'));
      const dtIndex = gtIndex.loadRes(JSON.parse(readFileSync(dtPath, 'utf8')));
      const t1 = performance.now();
      const E = new CocoEval(gtIndex, dtIndex, 'bbox');
      E.evaluate();
      const t2 = performance.now();
      E.accumulate();
      const t3 = performance.now();
      stats = E.summarize();
      summary = E.summaryText();
      const t4 = performance.now();
      runs.push({
        load: (t1 - t0) / 1000,
        evaluate: (t2 - t1) / 1000,
        accumulate: (t3 - t2) / 1000,
        summarize: (t4 - t3) / 1000,
        total: (t4 - t0) / 1000,
      });
    }
  } finally {
    if (!options.dir) rmSync(dir, { recursive: true, force: true });
  }
  const best = runs.reduce((a, b) => (b.total < a.total ? b : a));
  return {
    images: gt.images.length,
    annotations: gt.annotations?.length ?? 0,
    categories: gt.categories?.length ?? 0,
    detections: results.length,
    gtBytes: gtText.length,
    resultsBytes: dtText.length,
    runs,
    best,
    stats,
    summary,
    node: process.version,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

export function formatBenchEval(r: BenchEvalResult): string {
  const f = (s: number) => `${s.toFixed(2).padStart(6)} s`;
  const lines = [
    `COCO bbox evaluation, synthetic: ${r.images} images, ${r.annotations} ground-truth boxes, ${r.categories} categories, ${r.detections} detections`,
    `  (ground truth ${(r.gtBytes / 2 ** 20).toFixed(1)} MiB, results ${(r.resultsBytes / 2 ** 20).toFixed(1)} MiB of JSON; Node ${r.node})`,
  ];
  r.runs.forEach((t, i) => {
    lines.push(
      `  run ${i + 1}: load ${f(t.load)}  evaluate ${f(t.evaluate)}  accumulate ${f(t.accumulate)}  summarize ${f(t.summarize)}  total ${f(t.total)}`,
    );
  });
  lines.push(
    `  best total ${f(r.best.total)}; peak RSS ${r.maxRssMiB.toFixed(0)} MiB`,
    '',
    r.summary.trimEnd(),
  );
  return lines.join('\n');
}

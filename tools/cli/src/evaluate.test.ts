/** `effdet eval`, `merge-results` and `bench-eval` without a detector; bad input gives errors naming the record. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CocoDatasetJson, type CocoResult, evaluateCoco } from '@effdet/eval';
import { syntheticCoco } from './bench_eval.js';
import { type CliIO, formatResultsJson, mergeResults, runEvalCommand } from './evaluate.js';

function captureIO(): CliIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s), isTTY: false },
    out: () => out,
    err: () => err,
  };
}

async function cli(args: string[]) {
  const io = captureIO();
  const code = await runEvalCommand(args, io);
  return { code, out: io.out(), err: io.err() };
}

const GT: CocoDatasetJson = {
  images: [3, 1, 2].map((id) => ({ id, width: 100, height: 100, file_name: `${id}.png` })),
  categories: [
    { id: 1, name: 'cat' },
    { id: 7, name: 'traffic light' },
  ],
  annotations: [
    { id: 1, image_id: 3, category_id: 1, bbox: [10, 10, 40, 40], area: 1600, iscrowd: 0 },
    { id: 2, image_id: 1, category_id: 7, bbox: [50, 50, 20, 20], area: 400, iscrowd: 0 },
    { id: 3, image_id: 2, category_id: 1, bbox: [0, 0, 30, 30], area: 900, iscrowd: 0 },
  ],
};
const DT: CocoResult[] = [
  { image_id: 3, category_id: 1, bbox: [10, 10, 40, 40], score: 0.9 },
  { image_id: 1, category_id: 7, bbox: [52, 50, 20, 20], score: 0.6 },
  { image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], score: 0.7 },
];

let dir = '';
const p = (f: string) => join(dir, f);
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'effdet-eval-cli-'));
  writeFileSync(p('gt.json'), JSON.stringify(GT));
  writeFileSync(p('dt.json'), JSON.stringify(DT));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('effdet eval', () => {
  it("prints pycocotools' summary, the per-category table with --per-class, the report with --json", async () => {
    const expected = evaluateCoco(GT, DT);
    const r = await cli(['eval', '--gt', p('gt.json'), '--dt', p('dt.json')]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(expected.summary);
    // cat: found on image 3 (0.9), missed on image 2, a false positive on image 1 (0.7): 51/101 = 0.505.
    // traffic light: IoU 360/440 = 0.818, a match at the 7 thresholds 0.50..0.80: 0.7. Mean 0.602.
    expect(r.out.split('\n')[0]).toBe(
      ' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.602',
    );
    expect(r.err).toMatch(/^eval: 3 images, 3 detections, bbox, [\d.]+ s\n$/);
    const t = await cli(['eval', '--gt', p('gt.json'), '--dt', p('dt.json'), '--per-class']);
    expect(t.out).toBe(
      `${expected.summary}\n${[
        'id  name              AP',
        '--  -------------  -----',
        ' 1  cat            0.505',
        ' 7  traffic light  0.700',
        '--  -------------  -----',
        '    mean           0.602',
        '',
      ].join('\n')}`,
    );
    const j = await cli(['eval', '--gt', p('gt.json'), '--dt', p('dt.json'), '--json']);
    expect(JSON.parse(j.out)).toEqual(JSON.parse(JSON.stringify(expected)));
  });

  it('--limit and --shard evaluate the images validate would cover (ground-truth file order)', async () => {
    // images in file order: 3, 1, 2. --limit 2 -> 3, 1; shard 2/2 of those -> 1
    const r = JSON.parse(
      (await cli(['eval', '--gt', p('gt.json'), '--dt', p('dt.json'), '--limit', '2', '--json'])).out,
    );
    expect(r.params.imgIds).toEqual([1, 3]);
    const s = JSON.parse(
      (
        await cli([
          'eval',
          '--gt',
          p('gt.json'),
          '--dt',
          p('dt.json'),
          '--limit',
          '2',
          '--shard',
          '2/2',
          '--json',
        ])
      ).out,
    );
    expect(s.params.imgIds).toEqual([1]);
    expect(s.stats).toEqual(evaluateCoco(GT, DT, { params: { imgIds: [1] } }).stats);
  });

  it('--iou-type segm scores masks', async () => {
    const sq = (x: number, y: number, s: number) => [[x, y, x + s, y, x + s, y + s, x, y + s]];
    const gt = {
      ...GT,
      annotations: GT.annotations!.map((a) => ({
        ...a,
        segmentation: sq(a.bbox![0], a.bbox![1], a.bbox![2]),
      })),
    };
    writeFileSync(p('gt_segm.json'), JSON.stringify(gt));
    writeFileSync(
      p('dt_segm.json'),
      JSON.stringify([{ image_id: 3, category_id: 1, segmentation: sq(10, 10, 40), score: 0.9 }]),
    );
    const r = JSON.parse(
      (
        await cli([
          'eval',
          '--gt',
          p('gt_segm.json'),
          '--dt',
          p('dt_segm.json'),
          '--iou-type',
          'segm',
          '--json',
        ])
      ).out,
    );
    expect(r.iouType).toBe('segm');
    expect(r.perCategory.map((c: { ap: number }) => c.ap)).toEqual([
      evaluateCoco(gt, [{ image_id: 3, category_id: 1, segmentation: sq(10, 10, 40), score: 0.9 }], {
        iouType: 'segm',
      }).perCategory[0].ap,
      0,
    ]);
  });

  it('bad input: clear errors naming the file and the record', async () => {
    await expect(cli(['eval', '--dt', p('dt.json')])).rejects.toThrow('effdet eval: --gt is required');
    await expect(cli(['eval', '--gt', p('gt.json'), '--dt', p('missing.json')])).rejects.toThrow(
      /readCocoResults: argument 'path' expected a readable JSON file, got '.*missing.json' \(no such file\)/,
    );
    writeFileSync(
      p('broken.json'),
      '[\n {"image_id": 3, "category_id": 1, "bbox": [1, 2, 3, 4], "score": .5}\n]',
    );
    await expect(cli(['eval', '--gt', p('gt.json'), '--dt', p('broken.json')])).rejects.toThrow(
      /readCocoResults: argument '.*broken.json' expected valid JSON, got a syntax error \(line 2, column \d+\)/,
    );
    writeFileSync(p('unknown_cat.json'), JSON.stringify([...DT, { ...DT[0], category_id: 12 }]));
    await expect(cli(['eval', '--gt', p('gt.json'), '--dt', p('unknown_cat.json')])).rejects.toThrow(
      /unknown_cat.json: CocoIndex.loadRes: argument 'results\[3\] \(image 3\).category_id' expected the id of a ground-truth category \(one of 1, 7;/,
    );
    const kept = await cli([
      'eval',
      '--gt',
      p('gt.json'),
      '--dt',
      p('unknown_cat.json'),
      '--allow-unknown-categories',
    ]);
    expect(kept.out).toBe(evaluateCoco(GT, DT).summary);
    writeFileSync(p('unknown_img.json'), JSON.stringify([{ ...DT[0], image_id: 4 }]));
    await expect(cli(['eval', '--gt', p('gt.json'), '--dt', p('unknown_img.json')])).rejects.toThrow(
      /unknown_img.json: CocoIndex.loadRes: argument 'results\[0\].image_id' expected the id of an image in the ground truth/,
    );
    writeFileSync(p('neg.json'), JSON.stringify([{ ...DT[0], bbox: [1, 1, -4, 5] }]));
    await expect(cli(['eval', '--gt', p('gt.json'), '--dt', p('neg.json')])).rejects.toThrow(
      /results\[0\] \(image 3\).bbox' expected \[x, y, w, h\] of 4 finite numbers with w >= 0 and h >= 0, got \[1, 1, -4, 5\]/,
    );
    writeFileSync(p('noscore.json'), JSON.stringify([{ image_id: 3, category_id: 1, bbox: [1, 1, 4, 5] }]));
    await expect(cli(['eval', '--gt', p('gt.json'), '--dt', p('noscore.json')])).rejects.toThrow(
      /results\[0\] \(image 3\).score' expected a finite number, got undefined/,
    );
    writeFileSync(
      p('gt_bad.json'),
      JSON.stringify({ ...GT, annotations: [{ ...GT.annotations![0], image_id: 99 }] }),
    );
    await expect(cli(['eval', '--gt', p('gt_bad.json'), '--dt', p('dt.json')])).rejects.toThrow(
      /gt_bad.json: CocoIndex: argument 'dataset.annotations\[0\] \(id 1\).image_id' expected the id of an image listed in 'images', got number 99/,
    );
    await expect(
      cli(['eval', '--gt', p('gt.json'), '--dt', p('dt.json'), '--iou-type', 'keypoints']),
    ).rejects.toThrow("--iou-type must be bbox or segm, got 'keypoints'");
    await expect(cli(['eval', '--gt', p('gt.json'), '--dt', p('dt.json'), '--limit', '0'])).rejects.toThrow(
      "--limit must be an integer >= 1, got '0'",
    );
    await expect(cli(['eval', '--gt', p('gt.json'), '--dt', p('dt.json'), '--shard', '3/2'])).rejects.toThrow(
      /--shard expected 'I\/N' with 1 <= I <= N/,
    );
    await expect(cli(['eval', '--gt', p('gt.json'), '--bogus'])).rejects.toThrow(/Unknown option '--bogus'/);
  });
});

describe('effdet merge-results', () => {
  const a: CocoResult[] = [DT[0]];
  const b: CocoResult[] = [DT[1], DT[2]];

  it('joins shard files; with --gt in ground-truth image order whatever the file order', async () => {
    writeFileSync(p('a.json'), formatResultsJson(a));
    writeFileSync(p('b.json'), formatResultsJson(b));
    const r = await cli([
      'merge-results',
      p('b.json'),
      p('a.json'),
      '--gt',
      p('gt.json'),
      '--out',
      p('m.json'),
    ]);
    expect(r.out).toBe(`3 results of 2 images from 2 files -> ${p('m.json')}\n`);
    expect(readFileSync(p('m.json'), 'utf8')).toBe(formatResultsJson(DT)); // image 3 first, as in the ground truth
    await cli(['merge-results', p('b.json'), p('a.json'), '--out', p('m2.json')]);
    expect(JSON.parse(readFileSync(p('m2.json'), 'utf8'))).toEqual([...b, ...a]);
    await expect(cli(['merge-results', p('a.json')])).rejects.toThrow(
      'effdet merge-results: --out is required',
    );
    await expect(cli(['merge-results', '--out', p('x.json')])).rejects.toThrow(
      'give the results files to join',
    );
  });

  it('overlapping shards, unknown images and malformed inputs are errors', () => {
    expect(() =>
      mergeResults([
        { name: 'a.json', results: a },
        { name: 'c.json', results: [DT[1], { ...DT[0], score: 0.1 }] },
      ]),
    ).toThrow(
      'mergeResults: image 3 has results in both a.json and c.json (overlapping shards, or a file given twice?)',
    );
    expect(() =>
      mergeResults([{ name: 'a.json', results: [{ ...DT[0], image_id: 42 }] }], { imageOrder: [3, 1, 2] }),
    ).toThrow('mergeResults: a.json: a result for image 42, which is not in the ground truth');
    expect(() => mergeResults([{ name: 'z.json', results: {} as never }])).toThrow(
      /z.json expected a JSON list/,
    );
    expect(() => mergeResults([{ name: 'z.json', results: [1] as never }])).toThrow(
      /z.json: results\[0\] expected a result with an image_id, got 1/,
    );
    expect(formatResultsJson([])).toBe('[]\n');
  });
});

describe('command line', () => {
  it('validate checks its options before loading anything', async () => {
    await expect(cli(['validate', '--root', dir])).rejects.toThrow('effdet validate: --model is required');
    await expect(cli(['validate', '--model', 'm', '--root', dir, '--data', 'kitti'])).rejects.toThrow(
      "--data must be coco, voc or openimages, got 'kitti'",
    );
    await expect(cli(['validate', '--model', 'm', '--root', dir, '--label-map', 'x'])).rejects.toThrow(
      '--label-map must be auto, identity or contiguous',
    );
    await expect(cli(['validate', '--model', 'm', '--root', dir, '--backend', 'webgl'])).rejects.toThrow(
      "--backend must be wasm, cpu or tensorflow, got 'webgl'",
    );
    await expect(cli(['validate', '--model', 'm', '--root', dir, '--batch', '0'])).rejects.toThrow(
      "--batch must be an integer >= 1, got '0'",
    );
    await expect(cli(['nope'])).rejects.toThrow(
      /'nope' is not one of eval, validate, merge-results, bench-eval/,
    );
  });

  it('bench-eval runs on a small synthetic case', async () => {
    const r = await cli(['bench-eval', '--images', '40', '--json']);
    const j = JSON.parse(r.out);
    expect(j.images).toBe(40);
    expect(j.runs).toHaveLength(1);
    expect(j.stats).toHaveLength(12);
    const { gt, results } = syntheticCoco({ images: 40 });
    expect(j.stats).toEqual(evaluateCoco(gt, results).stats);
  });

  it('the synthetic benchmark case has COCO val proportions', () => {
    const { gt, results } = syntheticCoco({ images: 500 });
    expect(gt.categories).toHaveLength(80);
    expect(gt.annotations!.length / 500).toBeGreaterThan(5);
    expect(gt.annotations!.length / 500).toBeLessThan(7);
    expect(results.length / 500).toBeGreaterThan(60);
    expect(results.length / 500).toBeLessThan(72);
    // deterministic for a seed
    expect(syntheticCoco({ images: 20, seed: 3 })).toEqual(syntheticCoco({ images: 20, seed: 3 }));
  });
});

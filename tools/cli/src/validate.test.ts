/**
 * End to end: a small COCO-format dataset generated here (PNG images with filled rectangles and ellipses, and
 * their annotations), `effdet validate` with a detector built from the fixture weights (random: mAP is about 0),
 * `effdet eval` on the written results, and `effdet merge-results` on two shards.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePng } from '@effdet/effdet/node';
import type { CocoDatasetJson } from '@effdet/eval';
import { describeWithFixture, fixturesDir } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';
import { type CliIO, runEvalCommand } from './evaluate.js';
import type { ValidateResult } from './validate.js';

/** Output buffers standing in for stdout / stderr (not a terminal). */
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

/**
 * Writes `n` 128x96 PNGs with a grey gradient background and 1-3 filled shapes each (rectangles: category 1,
 * ellipses: category 2), the instances JSON, and returns its path. Image 3 has no objects; image 5 has a crowd
 * region.
 */
export function writeShapesDataset(dir: string, n = 8): string {
  const W = 128;
  const H = 96;
  const ds: CocoDatasetJson = {
    images: [],
    annotations: [],
    categories: [
      { id: 1, name: 'rectangle', supercategory: 'shape' },
      { id: 2, name: 'ellipse', supercategory: 'shape' },
    ],
  };
  let seed = 7;
  const rnd = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 4294967296;
  };
  for (let i = 0; i < n; i++) {
    const id = 101 + i * 3; // not 1..n: ids and positions differ
    const px = new Uint8Array(W * H * 3);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const o = (y * W + x) * 3;
        px[o] = 40 + x;
        px[o + 1] = 40 + y;
        px[o + 2] = 90;
      }
    const count = i === 2 ? 0 : 1 + Math.floor(rnd() * 3);
    for (let k = 0; k < count; k++) {
      const w = 14 + Math.floor(rnd() * 40);
      const h = 12 + Math.floor(rnd() * 30);
      const x0 = Math.floor(rnd() * (W - w));
      const y0 = Math.floor(rnd() * (H - h));
      const ellipse = rnd() < 0.5;
      const color = [Math.floor(rnd() * 255), 255 - Math.floor(rnd() * 120), Math.floor(rnd() * 255)];
      let area = 0;
      for (let y = y0; y < y0 + h; y++)
        for (let x = x0; x < x0 + w; x++) {
          const dx = (x + 0.5 - (x0 + w / 2)) / (w / 2);
          const dy = (y + 0.5 - (y0 + h / 2)) / (h / 2);
          if (ellipse && dx * dx + dy * dy > 1) continue;
          const o = (y * W + x) * 3;
          px[o] = color[0];
          px[o + 1] = color[1];
          px[o + 2] = color[2];
          area++;
        }
      ds.annotations!.push({
        id: ds.annotations!.length + 1,
        image_id: id,
        category_id: ellipse ? 2 : 1,
        bbox: [x0, y0, w, h],
        area,
        iscrowd: i === 4 && k === 0 ? 1 : 0,
      });
    }
    const file = `shape_${i}.png`;
    writeFileSync(join(dir, file), encodePng(px, W, H));
    ds.images.push({ id, width: W, height: H, file_name: file });
  }
  const ann = join(dir, 'instances.json');
  writeFileSync(ann, JSON.stringify(ds));
  return ann;
}

describeWithFixture(
  'effdet/tf_efficientdet_lite0_s2.weights.safetensors',
  'effdet validate end to end',
  (weights) => {
    let dir = '';
    let ann = '';
    const model = ['--model', 'tf_efficientdet_lite0', '--weights', weights];

    beforeAll(async () => {
      await tf.setBackend('wasm');
      dir = mkdtempSync(join(tmpdir(), 'effdet-validate-'));
      ann = writeShapesDataset(dir);
      expect(fixturesDir()).toBeTruthy();
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    let full: ValidateResult;

    it('validate --limit 6 --batch 3: progress on stderr, results JSON written, summary and per-class table', async () => {
      const numTensors = tf.memory().numTensors;
      const r = await cli([
        'validate',
        ...model,
        '--data',
        'coco',
        '--root',
        dir,
        '--ann',
        ann,
        '--limit',
        '6',
        '--batch',
        '3',
        '--backend',
        'wasm',
        '--results',
        join(dir, 'all.json'),
        '--json',
      ]);
      expect(r.code).toBe(0);
      expect(tf.memory().numTensors).toBe(numTensors); // the detector was disposed, nothing leaked
      full = JSON.parse(r.out) as ValidateResult;
      expect(full.images).toBe(6);
      expect(full.datasetImages).toBe(8);
      expect(full.batch).toBe(3);
      expect(full.backend).toBe('wasm');
      expect(full.labelMap.mode).toBe('identity'); // 90 classes, category ids 1 and 2
      expect(['worker', 'main-thread']).toContain(full.decoder);
      expect(full.imageIds).toEqual([101, 104, 107, 110, 113, 116]);
      // progress: plain lines (stderr is not a terminal) and the closing line
      expect(r.err).toMatch(/^validate: 3\/6 {2}50% [\d.]+ images\/s ETA \d+:\d\d$/m);
      expect(r.err).toMatch(/^validate: 6\/6 images in \d+:\d\d \([\d.]+ images\/s\)$/m);
      // results: COCO format, only the 6 images, dataset categories, at most 100 per image, float32 values
      const results = JSON.parse(readFileSync(join(dir, 'all.json'), 'utf8'));
      expect(results.length).toBe(full.detections);
      expect(results.length).toBeGreaterThan(0);
      expect(results.length).toBeLessThanOrEqual(600);
      for (const d of results) {
        expect(full.imageIds).toContain(d.image_id);
        expect([1, 2]).toContain(d.category_id);
        expect(d.score).toBeGreaterThanOrEqual(0.001);
        expect(d.bbox).toHaveLength(4);
        expect(Math.fround(d.bbox[2])).toBe(d.bbox[2]);
      }
      // random weights: a metric of about 0, but a metric over the 6 images
      expect(full.coco!.stats).toHaveLength(12);
      expect(full.coco!.numImages).toBe(6);
      expect(full.coco!.stats[0]).toBeLessThan(0.2);
      expect(full.coco!.perCategory.map((c) => c.name)).toEqual(['rectangle', 'ellipse']);
    });

    it('effdet eval on the written results scores identically to what validate printed', async () => {
      const e = await cli(['eval', '--gt', ann, '--dt', join(dir, 'all.json'), '--limit', '6', '--json']);
      expect(e.code).toBe(0);
      const report = JSON.parse(e.out);
      expect(report.stats).toEqual(full.coco!.stats);
      expect(report.perCategory).toEqual(full.coco!.perCategory);
      expect(report.summary).toBe(full.coco!.summary);
      const text = await cli([
        'eval',
        '--gt',
        ann,
        '--dt',
        join(dir, 'all.json'),
        '--limit',
        '6',
        '--per-class',
      ]);
      expect(text.out.startsWith(full.coco!.summary)).toBe(true);
      expect(text.out).toMatch(/^ 1 {2}rectangle /m);
      expect(text.out).toMatch(/^ 2 {2}ellipse /m);
      expect(text.err).toMatch(/^eval: 6 images, \d+ detections, bbox/);
    });

    it('two shards (--shard 1/2, 2/2), merged with merge-results, equal the unsharded run', async () => {
      const shard = async (s: string, file: string, extra: string[] = []) => {
        const r = await cli([
          'validate',
          ...model,
          '--root',
          dir,
          '--ann',
          ann,
          '--limit',
          '6',
          '--batch',
          '3',
          '--shard',
          s,
          '--results',
          join(dir, file),
          ...extra,
        ]);
        expect(r.code).toBe(0);
        return r;
      };
      const s1 = await shard('1/2', 's1.json');
      // decoded on the main thread this time (the other runs use a decode worker when the build is there)
      const s2 = await shard('2/2', 's2.json', ['--workers', '0']);
      // the text report: header, pycocotools' summary, the per-class table, the shard note
      expect(s1.out).toMatch(/^tf_efficientdet_lite0 on coco \(3 of 8 images, --limit 6, shard 1\/2\)/);
      expect(s1.out).toContain(' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] =');
      expect(s1.out).toMatch(/^ 2 {2}ellipse +[\d.-]+$/m);
      expect(s1.out).toContain('metric over this shard only');
      expect(s1.err).toMatch(/^validate: 3\/3 images in /m);
      const ids = (f: string): number[] => [
        ...new Set<number>(
          JSON.parse(readFileSync(join(dir, f), 'utf8')).map((d: { image_id: number }) => d.image_id),
        ),
      ];
      expect(ids('s1.json').every((id) => [101, 104, 107].includes(id))).toBe(true);
      expect(ids('s2.json').every((id) => [110, 113, 116].includes(id))).toBe(true);
      expect(s2.err).toMatch(/^validate: 3\/3 images in /m);

      const all = readFileSync(join(dir, 'all.json'), 'utf8');
      // with --gt the shard files may come in any order
      const m = await cli([
        'merge-results',
        join(dir, 's2.json'),
        join(dir, 's1.json'),
        '--gt',
        ann,
        '--out',
        join(dir, 'merged.json'),
      ]);
      expect(m.code).toBe(0);
      expect(readFileSync(join(dir, 'merged.json'), 'utf8')).toBe(all);
      // without it, in shard order
      await cli([
        'merge-results',
        join(dir, 's1.json'),
        join(dir, 's2.json'),
        '--out',
        join(dir, 'merged2.json'),
      ]);
      expect(readFileSync(join(dir, 'merged2.json'), 'utf8')).toBe(all);
      const e = await cli(['eval', '--gt', ann, '--dt', join(dir, 'merged.json'), '--limit', '6', '--json']);
      expect(JSON.parse(e.out).stats).toEqual(full.coco!.stats);
      // shard metrics are the eval of the shard's images
      const e1 = await cli([
        'eval',
        '--gt',
        ann,
        '--dt',
        join(dir, 's1.json'),
        '--limit',
        '6',
        '--shard',
        '1/2',
        '--json',
      ]);
      expect(JSON.parse(e1.out).summary).toBe(s1.out.split('\n\n')[1] + '\n');
      // a file given twice
      await expect(
        cli(['merge-results', join(dir, 's1.json'), join(dir, 's1.json'), '--out', join(dir, 'x.json')]),
      ).rejects.toThrow(/image 101 has results in both .*s1.json and .*s1.json/);
    });
  },
);

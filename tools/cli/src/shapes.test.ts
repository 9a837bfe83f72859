/** `effdet make-shapes` end to end on a few tiny images. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeImageBuffer } from '@effdet/effdet/node';
import { evaluateCoco } from '@effdet/eval';
import { readCocoDataset } from '@effdet/eval/node';
import { generateScene, imageSeed } from '@effdet/shapes';
import type { CliIO } from './evaluate.js';
import { MAKE_SHAPES_USAGE, runMakeShapes } from './shapes.js';

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
  const code = await runMakeShapes(args, io);
  return { code, out: io.out(), err: io.err() };
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'effdet-make-shapes-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('effdet make-shapes', () => {
  it('writes a COCO dataset that readCocoDataset accepts and that scores 1.0 against itself', async () => {
    const out = join(dir, 'ds');
    const r = await cli([
      'make-shapes',
      '--out',
      out,
      '--train',
      '4',
      '--val',
      '3',
      '--size',
      '64',
      '--seed',
      '7',
      '--masks',
      '--min-objects',
      '2',
      '--max-objects',
      '5',
    ]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/make-shapes: 7\/7 images in /);
    expect(r.out).toMatch(
      /wrote .*ds: train 4 images \/ \d+ boxes \(seed 7\), val 3 images \/ \d+ boxes \(seed 7\)/,
    );
    expect(r.out).toMatch(/boxes per class\s+train\s+val/);
    expect(r.out).toMatch(/ {2}1 circle\s+\d+\s+\d+/);
    expect(r.out).toMatch(/tiny {3}\(area < 16\^2\)\s+\d+\s+\d+/);
    expect(readdirSync(join(out, 'train'))).toHaveLength(4);
    expect(readdirSync(join(out, 'masks', 'val'))).toHaveLength(3);
    for (const split of ['train', 'val']) {
      const gt = readCocoDataset(join(out, 'annotations', `instances_${split}.json`));
      const images = gt.dataset.images;
      const anns = gt.dataset.annotations ?? [];
      expect(images).toHaveLength(split === 'train' ? 4 : 3);
      // every box count in the summary adds up
      const perImage = images.map((im) => anns.filter((a) => a.image_id === im.id).length);
      expect(perImage.every((n) => n >= 2 && n <= 5)).toBe(true);
      // file_name is relative to the split folder and the pixels are the generator's
      const first = decodeImageBuffer(readFileSync(join(out, split, String(images[0].file_name))));
      const scene = generateScene(imageSeed(7, split, 0), {
        width: 64,
        height: 64,
        minObjects: 2,
        maxObjects: 5,
      });
      expect(Buffer.from(first.data).equals(Buffer.from(scene.rgb))).toBe(true);
      // ground truth as detections: perfect
      const asBoxes = anns.map((a) => ({
        image_id: a.image_id,
        category_id: a.category_id,
        bbox: a.bbox,
        score: 1,
      }));
      expect(evaluateCoco(gt, asBoxes).stats[0]).toBe(1);
      const asSegm = anns.map((a) => ({
        image_id: a.image_id,
        category_id: a.category_id,
        segmentation: a.segmentation,
        score: 1,
      }));
      expect(evaluateCoco(gt, asSegm, { iouType: 'segm' }).stats[0]).toBe(1);
    }
  });

  it('--json prints the result, --val-seed changes only the validation images, --no-segmentation drops RLEs', async () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    const ra = await cli(['--out', a, '--train', '1', '--val', '1', '--size', '40', '--json']);
    const rb = await cli([
      '--out',
      b,
      '--train',
      '1',
      '--val',
      '1',
      '--size',
      '40',
      '--val-seed',
      '3',
      '--no-segmentation',
    ]);
    expect(ra.code).toBe(0);
    expect(rb.code).toBe(0);
    const res = JSON.parse(ra.out);
    expect(res.splits.map((s: { split: string; seed: number }) => [s.split, s.seed])).toEqual([
      ['train', 0],
      ['val', 0],
    ]);
    const same = (f: string) => readFileSync(join(a, f)).equals(readFileSync(join(b, f)));
    expect(same('train/000000.png')).toBe(true);
    expect(same('val/000000.png')).toBe(false);
    expect(existsSync(join(a, 'masks'))).toBe(false);
    const annB = JSON.parse(readFileSync(join(b, 'annotations', 'instances_val.json'), 'utf8'));
    expect(annB.info.seed).toBe(3);
    expect(annB.annotations.every((x: { segmentation?: unknown }) => x.segmentation === undefined)).toBe(
      true,
    );
  });

  it('prints usage with --help and names the bad option', async () => {
    const h = await cli(['--help']);
    expect(h.code).toBe(0);
    expect(h.out).toContain(MAKE_SHAPES_USAGE);
    await expect(cli(['--train', '2'])).rejects.toThrow(/--out DIR is required/);
    await expect(cli(['--out', dir, '--train=-1'])).rejects.toThrow(
      /--train must be an integer >= 0, got '-1'/,
    );
    await expect(cli(['--out', dir, '--size', 'big'])).rejects.toThrow(
      /--size must be an integer >= 1, got 'big'/,
    );
    await expect(cli(['--out', dir, '--min-objects', '5', '--max-objects', '2'])).rejects.toThrow(
      /--max-objects \(2\) must be >= --min-objects \(5\)/,
    );
    await expect(cli(['--out', dir, '--max-size', '0'])).rejects.toThrow(
      /--max-size must be a positive number/,
    );
    await expect(cli(['--out', dir, 'extra'])).rejects.toThrow(/unexpected argument 'extra'/);
  });
});

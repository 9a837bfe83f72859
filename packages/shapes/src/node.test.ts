import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCocoDataset } from '@effdet/eval/node';
import pngjs from 'pngjs';
import { generateScene, imageSeed, vocPalette } from './index.js';
import { encodeIndexedPng, encodeRgbPng, writeShapesDataset } from './node.js';

const { PNG } = pngjs;

function decode(buf: Buffer): { width: number; height: number; rgba: Uint8Array } {
  const png = PNG.sync.read(buf);
  return { width: png.width, height: png.height, rgba: new Uint8Array(png.data) };
}

describe('PNG encoding', () => {
  it('encodeRgbPng round-trips', () => {
    const scene = generateScene(1, { width: 33, height: 17 });
    const back = decode(encodeRgbPng(scene.rgb, 33, 17));
    expect([back.width, back.height]).toEqual([33, 17]);
    let diff = 0;
    for (let i = 0; i < 33 * 17; i++)
      for (let k = 0; k < 3; k++) if (back.rgba[4 * i + k] !== scene.rgb[3 * i + k]) diff++;
    expect(diff).toBe(0);
  });

  it('encodeIndexedPng writes a palette PNG whose colours map back to the indices', () => {
    const w = 19;
    const h = 7;
    const idx = new Uint8Array(w * h).map((_, i) => i % 7);
    const buf = encodeIndexedPng(idx, w, h);
    expect(buf[25]).toBe(3); // IHDR colour type: palette
    const back = decode(buf);
    const pal = vocPalette();
    for (let i = 0; i < w * h; i++) {
      const v = idx[i];
      expect([back.rgba[4 * i], back.rgba[4 * i + 1], back.rgba[4 * i + 2]]).toEqual([
        pal[3 * v],
        pal[3 * v + 1],
        pal[3 * v + 2],
      ]);
    }
    expect(Array.from(pal.subarray(0, 12))).toEqual([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0]);
    expect(() => encodeIndexedPng(new Uint8Array(5), 2, 2)).toThrow(
      /encodeIndexedPng: data must be a Uint8Array of 2x2x1 = 4 bytes, got 5/,
    );
    expect(() => encodeIndexedPng(new Uint8Array([0, 4]), 2, 1, new Uint8Array(9))).toThrow(
      /index 4 is beyond the palette's 3 colours/,
    );
  });
});

describe('writeShapesDataset', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'shapes-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes images, COCO files and semantic masks that match the generator', async () => {
    const progress: string[] = [];
    const r = await writeShapesDataset(dir, {
      train: 3,
      val: 2,
      size: 48,
      seed: 5,
      valSeed: 6,
      masks: true,
      onProgress: (split, done, total) => progress.push(`${split} ${done}/${total}`),
    });
    expect(progress).toEqual(['train 1/3', 'train 2/3', 'train 3/3', 'val 1/2', 'val 2/2']);
    expect(r.splits.map((s) => [s.split, s.seed, s.images])).toEqual([
      ['train', 5, 3],
      ['val', 6, 2],
    ]);
    expect(readdirSync(join(dir, 'annotations')).sort()).toEqual([
      'instances_train.json',
      'instances_val.json',
    ]);
    expect(readdirSync(join(dir, 'train')).sort()).toEqual(['000000.png', '000001.png', '000002.png']);
    expect(readdirSync(join(dir, 'masks', 'val')).sort()).toEqual(['000000.png', '000001.png']);
    const pal = vocPalette();
    for (const split of r.splits) {
      const gt = readCocoDataset(split.annotationFile);
      expect(gt.dataset.images.length).toBe(split.images);
      expect(gt.dataset.annotations?.length).toBe(split.annotations);
      gt.dataset.images.forEach((im, i) => {
        const scene = generateScene(imageSeed(split.seed, split.split, i), { width: 48, height: 48 });
        const img = decode(readFileSync(join(split.imageDir, String(im.file_name))));
        const mask = decode(readFileSync(join(split.maskDir!, String(im.file_name))));
        let diff = 0;
        for (let p = 0; p < 48 * 48; p++) {
          for (let k = 0; k < 3; k++) if (img.rgba[4 * p + k] !== scene.rgb[3 * p + k]) diff++;
          const c = scene.semantic[p];
          for (let k = 0; k < 3; k++) if (mask.rgba[4 * p + k] !== pal[3 * c + k]) diff++;
        }
        expect(diff).toBe(0);
        const anns = gt.dataset.annotations!.filter((a) => a.image_id === im.id);
        expect(anns.map((a) => a.bbox)).toEqual(scene.objects.map((o) => o.bbox));
      });
    }
  });

  it('skips an empty split and checks its options', async () => {
    const sub = join(dir, 'only-train');
    const r = await writeShapesDataset(sub, { train: 1, val: 0, size: 32 });
    expect(r.splits.map((s) => s.split)).toEqual(['train']);
    expect(r.splits[0].maskDir).toBeUndefined();
    await expect(writeShapesDataset(sub, { train: -1, val: 0 })).rejects.toThrow(
      /writeShapesDataset: options.train must be a non-negative integer, got -1/,
    );
    await expect(writeShapesDataset(sub, { train: 1, val: 0, size: 0 })).rejects.toThrow(/options.size/);
  });
});

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeImage, encodePng } from '@effdet/effdet/node';
import { describeWithFixture } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';
import { runSegment, SEGMENT_USAGE, type SegmentImageResult } from './segment.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

let dir: string;
let image: string;
beforeAll(async () => {
  await tf.setBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'effdet-segment-'));
  // a 100x60 picture: a bright square on a gradient
  const w = 100;
  const h = 60;
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const inside = x > 30 && x < 70 && y > 15 && y < 45;
      rgb.set(inside ? [250, 240, 30] : [x * 2, y * 3, 90], (y * w + x) * 3);
    }
  image = join(dir, 'square.png');
  writeFileSync(image, encodePng(rgb, w, h));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeWithFixture(
  'segmentation/unet_tf_efficientnet_b0_256_s41.weights.safetensors',
  'effdet segment',
  (weights) => {
    it('writes an overlay and a colour mask per image and prints class shares (JSON)', async () => {
      const c = capture();
      const out = join(dir, 'out');
      const code = await runSegment(
        [
          'segment',
          image,
          '--model',
          'unet:tu-tf_efficientnet_b0',
          '--weights',
          weights,
          '--out',
          out,
          '--json',
        ],
        c.io,
      );
      expect(code).toBe(0);
      const [r] = JSON.parse(c.out()) as SegmentImageResult[];
      expect([r.width, r.height, r.inputSize]).toEqual([100, 60, [60, 100]]); // a U-Net runs at any size
      const total = Object.values(r.classFractions).reduce((a, b) => a + b, 0);
      expect(total).toBeCloseTo(1, 9);
      expect(Object.keys(r.classFractions).every((k) => ['0', '1', '2'].includes(k))).toBe(true);
      expect(r.written).toEqual([join(out, 'square.seg.png'), join(out, 'square.mask.png')]);
      for (const f of r.written!) {
        const back = await decodeImage(f);
        expect([back.width, back.height]).toEqual([100, 60]);
      }
      // the model may also come from the weights' metadata; text output names the image and the classes
      const t = capture();
      expect(
        await runSegment([image, '--weights', weights, '--input-size', '64x96', '--tta', 'd4'], t.io),
      ).toBe(0);
      expect(t.out()).toMatch(/square\.png \(100x60, network 96x64\) in \d+ ms\n {2}class \d: \d+\.\d%/);
    });
  },
);

describe('effdet segment arguments', () => {
  it('usage and bad arguments', async () => {
    const c = capture();
    expect(await runSegment(['--help'], c.io)).toBe(0);
    expect(c.out()).toContain(SEGMENT_USAGE);
    await expect(runSegment(['--model', 'unet:tu-effdet_test_efficientnet'], c.io)).rejects.toThrow(
      'effdet segment: give at least one image path',
    );
    await expect(runSegment([image], c.io)).rejects.toThrow(
      /--model SPEC is required unless the --weights metadata/,
    );
    await expect(
      runSegment([image, '--model', 'unet:tu-effdet_test_efficientnet', '--input-size', '64by64'], c.io),
    ).rejects.toThrow("effdet segment: --input-size must be N or HxW (height x width), got '64by64'");
    await expect(
      runSegment([image, '--model', 'unet:tu-effdet_test_efficientnet', '--tta', 'rot90'], c.io),
    ).rejects.toThrow("effdet segment: --tta must be none, hflip, flip or d4, got 'rot90'");
    await expect(
      runSegment([image, '--model', 'unet:tu-effdet_test_efficientnet', '--options', '{x'], c.io),
    ).rejects.toThrow(/--options must be a JSON object, got '\{x'/);
    await expect(
      runSegment([image, '--model', 'unet:tu-effdet_test_efficientnet', '--alpha', '2'], c.io),
    ).rejects.toThrow(/--alpha must be a number in \[0, 1\], got '2'/);
  });

  it('random weights with smp options still produce a mask, and say so', async () => {
    const c = capture();
    const code = await runSegment(
      [
        image,
        '--model',
        'unet:tu-effdet_test_efficientnet',
        '--classes',
        '2',
        '--options',
        '{"decoder_channels": [8, 8, 8, 8, 8]}',
        '--json',
      ],
      c.io,
    );
    expect(code).toBe(0);
    expect(c.err()).toMatch(/no --weights given: the network has random weights/);
    const [r] = JSON.parse(c.out()) as SegmentImageResult[];
    expect(r.inputSize).toEqual([60, 100]); // Unet runs at any size
    expect(existsSync(join(dir, 'square.seg.png'))).toBe(false);
  });
});

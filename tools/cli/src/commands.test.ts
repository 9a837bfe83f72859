import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeImage } from '@effdet/effdet/node';
import { describeWithFixture, expectNoLeaks, fixturesDir } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';
import { bench } from './bench.js';
import { detectorInfo, modelInfo } from './info.js';
import { predict } from './predict.js';

beforeAll(async () => {
  await tf.setBackend('wasm');
});

describe('effdet info', () => {
  it('detector: config, parameters, levels and anchors (no weights allocated)', async () => {
    const r = await expectNoLeaks(() => detectorInfo('tf_efficientdet_d0'));
    expect(r.params).toBe(3_880_067);
    expect(r.anchors).toBe(49_104); // 9 * (64^2 + 32^2 + 16^2 + 8^2 + 4^2)
    expect(r.levels.map((l) => l.size)).toEqual([
      [64, 64],
      [32, 32],
      [16, 16],
      [8, 8],
      [4, 4],
    ]);
    expect(r.backboneFeatures.map((f) => f.channels)).toEqual([40, 112, 320]);
  });

  it('backbone: features, shapes, parameter count', () => {
    const r = modelInfo({ model: 'efficientnet_b3', size: 64 });
    expect(r.params).toBe(12_233_232);
    expect(r.features.map((f) => f.shape)).toEqual([
      [1, 32, 32, 24],
      [1, 16, 16, 32],
      [1, 8, 8, 48],
      [1, 4, 4, 136],
      [1, 2, 2, 384],
    ]);
  });
});

describe('effdet bench', () => {
  it('splits preprocess / network / post-process and reports peak memory', async () => {
    const r = await expectNoLeaks(() =>
      bench({ model: 'test_efficientdet', runs: 2, imageSize: [160, 120] }),
    );
    expect(r.runs).toBe(2);
    for (const s of [r.preprocess, r.network, r.postprocess, r.total]) {
      expect(s.min).toBeGreaterThan(0);
      expect(s.min).toBeLessThanOrEqual(s.median);
      expect(s.median).toBeLessThanOrEqual(s.max);
    }
    expect(r.peakBytes).toBeGreaterThan(0);
  });
});

describeWithFixture('effdet/tf_efficientdet_lite0_s2.weights.safetensors', 'effdet predict', (weights) => {
  it('prints detections and writes an image with the boxes drawn', async () => {
    const out = mkdtempSync(join(tmpdir(), 'effdet-predict-'));
    try {
      const img = join(fixturesDir(), 'images', 'img1.jpg');
      const [r] = await predict({ model: 'tf_efficientdet_lite0', weights, images: [img], score: 0.45, out });
      expect(r.width).toBe(1024);
      expect(r.detections.length).toBeGreaterThan(0);
      expect(r.detections.every((d) => d.score >= 0.45)).toBe(true);
      expect(r.written && existsSync(r.written)).toBe(true);
      const drawn = await decodeImage(readFileSync(r.written!));
      const orig = await decodeImage(img);
      expect([drawn.width, drawn.height]).toEqual([1024, 636]);
      let changed = 0;
      for (let i = 0; i < drawn.data.length; i++) if (Math.abs(drawn.data[i] - orig.data[i]) > 40) changed++;
      expect(changed).toBeGreaterThan(1000); // box outlines and labels
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('a non-image file is a clear error', async () => {
    await expect(
      predict({ model: 'tf_efficientdet_lite0', weights, images: [join(fixturesDir(), 'README.md')] }),
    ).rejects.toThrow(/not a JPEG or PNG|JPEG|PNG/);
  });
});

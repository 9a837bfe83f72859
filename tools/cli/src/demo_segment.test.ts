import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeImage } from '@effdet/effdet/node';
import { Unet } from '@effdet/segmentation';
import * as tf from '@tensorflow/tfjs-core';
import { evaluateShapesUnet, loadShapesUnet, runSegmentDemo, SHAPES_UNET } from './demo_segment.js';
import { shippedModelDir } from './shipped.js';

let dir: string;
beforeAll(async () => {
  await tf.setBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'effdet-demo-seg-'));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await tf.setBackend('cpu');
});

describe('the shipped shapes U-Net', () => {
  it('is committed: TF.js float16 weights with its labels', async () => {
    const folder = shippedModelDir(SHAPES_UNET.folder);
    const json = JSON.parse(readFileSync(join(folder, 'model.json'), 'utf8'));
    const specs = json.weightsManifest.flatMap(
      (g: { weights: { dtype: string; quantization?: { dtype: string } }[] }) => g.weights,
    );
    expect(
      specs
        .filter((w: { dtype: string }) => w.dtype === 'float32')
        .every((w: { quantization?: { dtype: string } }) => w.quantization?.dtype === 'float16'),
    ).toBe(true);
    const { model, labels } = await loadShapesUnet();
    expect(model).toBeInstanceOf(Unet);
    expect(model.numClasses).toBe(7);
    expect(labels).toEqual(['background', 'circle', 'square', 'triangle', 'star', 'hexagon', 'cross']);
    model.dispose();
  });

  it('meets its bar (mIoU >= 0.90) on freshly generated scenes, and reproduces its recorded numbers', async () => {
    // models/shapes-unet/metrics.json records what the committed weights score on 30 fresh scenes (seed 424242,
    // generated here, never used in training), run as the demo runs them (SHAPES_UNET: network input 160 x 160,
    // D4 test-time augmentation), and with one view.
    const recorded = JSON.parse(
      readFileSync(join(shippedModelDir(SHAPES_UNET.folder), 'metrics.json'), 'utf8'),
    );
    // the network input size the numbers were measured at is the one the demo uses
    expect([recorded.inputSize, recorded.tta]).toEqual([SHAPES_UNET.inputSize, SHAPES_UNET.tta]);
    const { model } = await loadShapesUnet();
    const before = tf.memory().numTensors;
    const scores = await evaluateShapesUnet(model, {
      count: recorded.fresh.images,
      seed: recorded.fresh.seed,
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(scores.meanIoU).toBeGreaterThanOrEqual(recorded.fresh.mIoU - 0.005);
    expect(scores.pixelAccuracy).toBeGreaterThanOrEqual(recorded.fresh.pixelAccuracy - 0.005);
    // and without test-time augmentation (one view), as recorded next to them
    const single = await evaluateShapesUnet(model, {
      count: recorded.fresh.images,
      seed: recorded.fresh.seed,
      tta: 'none',
    });
    expect(single.meanIoU).toBeGreaterThanOrEqual(recorded.withoutTta.fresh.mIoU - 0.005);
    expect(single.meanIoU).toBeLessThan(scores.meanIoU);
    // the bar, as the demo runs the model and with one view too
    expect(recorded.bar).toEqual({ mIoU: 0.9, met: true });
    expect(scores.meanIoU).toBeGreaterThanOrEqual(0.9);
    expect(single.meanIoU).toBeGreaterThanOrEqual(0.9);
    model.dispose();
  });

  it('runSegmentDemo writes a side-by-side PNG per scene and scores a fresh validation set', async () => {
    const lines: string[] = [];
    const io = { stdout: { write: (t: string) => lines.push(t) }, stderr: { write: () => true } };
    const r = await runSegmentDemo({ out: join(dir, 'out'), count: 2, seed: 31337, val: 4, io });
    expect(r.files).toEqual([join(dir, 'out', 'segment_0.png'), join(dir, 'out', 'segment_1.png')]);
    for (const f of r.files) {
      const im = await decodeImage(f);
      expect([im.width, im.height]).toEqual([SHAPES_UNET.scene.width * 9, SHAPES_UNET.scene.height * 3]);
    }
    const text = lines.join('');
    expect(text).toMatch(/segment_0\.png \(image \| truth \| prediction\)/);
    expect(text).toMatch(/ {2}background +\d+ px \(true \d+\)/);
    expect(text).toMatch(/fresh validation set \(4 images 96x96, seed 31337/);
    expect(text).toMatch(/network input 160x160/);
    expect(r.mIoU).toBeGreaterThan(0);
    expect(r.mIoU).toBeLessThanOrEqual(1);
    expect(r.pixelAccuracy).toBeGreaterThan(0.5);
  });
});

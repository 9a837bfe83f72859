import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { runDemoCommand, runDetectDemo } from './demo.js';
import { predict } from './predict.js';
import { demoScene, shippedLabels, shippedModelDir } from './shipped.js';

const sink = () => {
  let text = '';
  return {
    write: (s: string) => {
      text += s;
      return true;
    },
    get text() {
      return text;
    },
  };
};

describe('effdet demo (the shipped shapes detector)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'effdet-demo-'));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await tf.setBackend('cpu');
  });

  it('is committed: TF.js float16 weights under 10 MB with its labels', () => {
    const d = shippedModelDir('shapes');
    const manifest = JSON.parse(readFileSync(join(d, 'model.json'), 'utf8'));
    expect(manifest.userDefinedMetadata.model).toBe('efficientdet_shapes');
    let bytes = 0;
    for (const group of manifest.weightsManifest)
      for (const p of group.paths) bytes += readFileSync(join(d, p)).byteLength;
    expect(bytes).toBeLessThan(10 * 1024 * 1024);
    expect(
      manifest.weightsManifest[0].weights.every(
        (w: { quantization?: { dtype: string } }) => w.quantization?.dtype === 'float16',
      ),
    ).toBe(true);
    expect(shippedLabels(d)).toEqual(['circle', 'square', 'triangle', 'star', 'hexagon', 'cross']);
  });

  it('reproduces its recorded COCO mAP on a validation set generated with a seed not used in training', async () => {
    // models/shapes/metrics.json records what the committed weights score on this fresh set (seed 424243,
    // never used in training: the stages used seeds 7-24 and 1007). The bar is mAP >= 0.70 and
    // mAP@.5 >= 0.95 (models/shapes/README.md); when the flag says it is met, the bar itself is asserted.
    const recorded = JSON.parse(readFileSync(join(shippedModelDir('shapes'), 'metrics.json'), 'utf8'));
    const out = sink();
    const r = await runDetectDemo(
      {
        out: join(dir, 'bar'),
        count: 2,
        seed: recorded.fresh.seed - 1,
        val: recorded.fresh.images,
        backend: 'wasm',
      },
      { stdout: out, stderr: sink() },
    );
    expect(r.eval).not.toBeNull();
    expect(r.eval!.seed).toBe(recorded.fresh.seed);
    expect(r.eval!.images).toBe(recorded.fresh.images);
    expect(r.eval!.map).toBeGreaterThanOrEqual(recorded.fresh.map - 0.005);
    expect(r.eval!.map50).toBeGreaterThanOrEqual(recorded.fresh.map50 - 0.005);
    // the recorded flag says whether the bar is met, and it must agree with what the weights score
    expect(recorded.bar.met).toBe(r.eval!.map >= recorded.bar.map && r.eval!.map50 >= recorded.bar.map50);
    expect([recorded.bar.map, recorded.bar.map50]).toEqual([0.7, 0.95]);
    if (recorded.bar.met) {
      expect(r.eval!.map).toBeGreaterThanOrEqual(0.7);
      expect(r.eval!.map50).toBeGreaterThanOrEqual(0.95);
    }
    expect(out.text).toMatch(/COCO mAP@\[\.5:\.95\] \d\.\d{4}/);
    for (const f of r.files) expect(readFileSync(f).subarray(1, 4).toString()).toBe('PNG');
  });

  it('effdet predict --model shapes uses the same model', async () => {
    const { encodePng } = await import('@effdet/effdet/node');
    const scene = demoScene(77);
    const file = join(dir, 'scene.png');
    writeFileSync(file, encodePng(scene.rgb, scene.width, scene.height));
    const [r] = await predict({ model: 'shapes', images: [file], score: 0.05 });
    expect(r!.image).toBe(file);
    for (const d of r!.detections) expect(d.label).toMatch(/^(circle|square|triangle|star|hexagon|cross)$/);
  });

  it('runs from the command line with no arguments but an output folder', async () => {
    const out = sink();
    const code = await runDemoCommand(
      ['demo', '--out', join(dir, 'cli'), '--count', '1', '--val', '0', '--seed', '3'],
      {
        stdout: out,
        stderr: sink(),
      },
    );
    expect(code).toBe(0);
    expect(existsSync(join(dir, 'cli', 'demo_0.png'))).toBe(true);
    expect(out.text).toMatch(/demo_0\.png: \d+ detections in \d+ ms \(drawn: /);
    await expect(runDemoCommand(['demo', '--count', 'x'])).rejects.toThrow(
      /--count must be an integer >= 0, got 'x'/,
    );
    await expect(runDemoCommand(['demo', '--task', 'nope', '--out', join(dir, 'x')])).rejects.toThrow(
      /--task must be detect or segment, got 'nope'/,
    );
  });
});

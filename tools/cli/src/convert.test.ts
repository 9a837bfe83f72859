import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithFixture, fixturesDir } from '@effdet/testing';
import { type RawTensorMap, toFloat32 } from '@effdet/weights';
import { loadWeights } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';
import { convert, inspect } from './convert.js';

/**
 * Worst error of `a` against `b`: relative where |b| is a normal float16 number (>= 2^-14), absolute below.
 * Plain comparisons only: Math.* calls are very slow inside Jest's VM context.
 */
function worstDiff(
  a: RawTensorMap,
  b: RawTensorMap,
  skip = /num_batches_tracked$/,
): { rel: number; abs: number } {
  let rel = 0;
  let abs = 0;
  for (const k of Object.keys(b)) {
    if (skip.test(k)) continue;
    if (!a[k]) throw new Error(`missing ${k}`);
    const x = toFloat32(a[k]);
    const y = toFloat32(b[k]);
    for (let i = 0; i < y.length; i++) {
      let d = x[i] - y[i];
      if (d < 0) d = -d;
      const m = y[i] < 0 ? -y[i] : y[i];
      if (m >= 2 ** -14) {
        if (d > rel * m) rel = d / m;
      } else if (d > abs) abs = d;
    }
  }
  return { rel, abs };
}

describeWithFixture('effdet/tf_efficientdet_d0_s1.pth', 'effdet convert', (pth) => {
  let dir = '';
  beforeAll(async () => {
    await tf.setBackend('wasm');
    dir = mkdtempSync(join(tmpdir(), 'effdet-convert-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('.pth -> TF.js -> the same weights, bit-exact; .pth -> safetensors bit-exact', async () => {
    const ref = await loadWeights(pth);
    const tfjs = join(dir, 'd0-tfjs');
    const r = await convert({ src: pth, model: 'tf_efficientdet_d0', out: tfjs });
    expect(r.params).toBe(3_880_067);
    expect(existsSync(join(tfjs, 'model.json'))).toBe(true);
    expect(worstDiff(await loadWeights(tfjs), ref)).toEqual({ rel: 0, abs: 0 });
    const st = join(dir, 'd0.safetensors');
    await convert({ src: pth, model: 'tf_efficientdet_d0', out: st });
    const back = await loadWeights(st);
    expect(worstDiff(back, ref)).toEqual({ rel: 0, abs: 0 });
    // Re-converting the safetensors gives the same file contents.
    expect((await inspect(st)).tensors.length).toBe(r.tensors);
  });

  it('float16 TF.js export stays within float16 rounding', async () => {
    const ref = await loadWeights(pth);
    const out = join(dir, 'd0-f16');
    await convert({ src: pth, model: 'tf_efficientdet_d0', out, dtype: 'float16' });
    const { rel, abs } = worstDiff(await loadWeights(out), ref);
    // Normal float16 numbers carry 11 significant bits (relative rounding error <= 2^-11); below 2^-14 the
    // subnormal step is 2^-24 (absolute rounding error <= 2^-25).
    expect(rel).toBeLessThanOrEqual(2 ** -11);
    expect(abs).toBeLessThanOrEqual(2 ** -25);
    expect(rel).toBeGreaterThan(0); // it really was quantised
  });

  it('a wrong model fails strictly and writes nothing', async () => {
    const out = join(dir, 'wrong.safetensors');
    await expect(convert({ src: pth, model: 'tf_efficientdet_d1', out })).rejects.toThrow(
      /mis-shaped|missing/,
    );
    expect(existsSync(out)).toBe(false);
    await expect(convert({ src: pth, model: 'nope', out })).rejects.toThrow(/unknown model 'nope'/);
  });

  it('the official TF checkpoint converts to the reference PyTorch weights (EMA values)', async () => {
    const ckpt = join(fixturesDir(), 'tf_checkpoint/efficientdet-d0');
    const out = join(dir, 'from-tf.safetensors');
    await convert({ src: ckpt, model: 'tf_efficientdet_d0', out });
    const ref = await loadWeights(join(fixturesDir(), 'effdet/tf_efficientdet_d0_s1.weights.safetensors'));
    expect(worstDiff(await loadWeights(out), ref)).toEqual({ rel: 0, abs: 0 });
  });

  it('inspect lists any format', async () => {
    const r = await inspect(pth);
    expect(r.format).toBe('pth');
    expect(r.tensors.find((t) => t.name === 'backbone.conv_stem.weight')?.shape).toEqual([32, 3, 3, 3]);
    const tf = await inspect(join(fixturesDir(), 'tf_checkpoint/efficientdet-d0'));
    expect(tf.format).toBe('tf-checkpoint');
    expect(tf.tensors.length).toBeGreaterThan(1400);
  });
});

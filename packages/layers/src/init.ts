import * as tf from '@tensorflow/tfjs-core';
import type { Initializer } from './module.js';

let state = (Date.now() ^ 0x9e3779b9) >>> 0 || 1;

/** xorshift32 in [0, 1): TF.js' per-element seeded generators are ~10x slower for large models. */
function nextUniform(): number {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 4294967296;
}

/** Seeds the initializers' generator (reproducible initial weights). */
export function seedInitializers(seed: number): void {
  state = seed >>> 0 || 1;
}

/**
 * Approximately N(mean, std) samples: the Irwin-Hall sum of four uniforms, rescaled (tails end at +-3.46 std,
 * like a truncated normal). No transcendental functions, so large models initialise quickly everywhere.
 */
export function randomNormal(shape: number[], mean = 0, std = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const k = std * Math.sqrt(3);
  for (let i = 0; i < n; i++) {
    out[i] = mean + (nextUniform() + nextUniform() + nextUniform() + nextUniform() - 2) * k;
  }
  return tf.tensor(out, shape, 'float32');
}

/** U(lo, hi) samples as a float32 tensor. */
export function randomUniform(shape: number[], lo: number, hi: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * nextUniform();
  return tf.tensor(out, shape, 'float32');
}

/** timm's `_init_weight_goog` for convs: N(0, sqrt(2 / fan_out)), fan_out = kh * kw * out / groups. */
export function convNormalInit(fanOut: number): Initializer {
  return (shape) => randomNormal(shape, 0, Math.sqrt(2 / fanOut));
}

/** U(-1/sqrt(n), 1/sqrt(n)) (timm's linear init with n = out features). */
export function uniformInit(n: number): Initializer {
  const r = 1 / Math.sqrt(n);
  return (shape) => randomUniform(shape, -r, r);
}

export const zerosInit: Initializer = (shape) => tf.zeros(shape);
export const onesInit: Initializer = (shape) => tf.ones(shape);
export function constantInit(v: number): Initializer {
  return (shape) => tf.fill(shape, v);
}

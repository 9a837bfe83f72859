import * as tf from '@tensorflow/tfjs-core';
import type { Initializer } from './module.js';

/** timm's `_init_weight_goog` for convs: N(0, sqrt(2 / fan_out)), fan_out = kh * kw * out / groups. */
export function convNormalInit(fanOut: number): Initializer {
  return (shape) => tf.randomNormal(shape, 0, Math.sqrt(2 / fanOut));
}

/** U(-1/sqrt(n), 1/sqrt(n)) (timm's linear init with n = out features). */
export function uniformInit(n: number): Initializer {
  const r = 1 / Math.sqrt(n);
  return (shape) => tf.randomUniform(shape, -r, r);
}

export const zerosInit: Initializer = (shape) => tf.zeros(shape);
export const onesInit: Initializer = (shape) => tf.ones(shape);
export function constantInit(v: number): Initializer {
  return (shape) => tf.fill(shape, v);
}

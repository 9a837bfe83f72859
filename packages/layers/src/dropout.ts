import * as tf from '@tensorflow/tfjs-core';
import { check } from './errors.js';
import { Module } from './module.js';

/** Element-wise dropout (inverted scaling), active only in training mode. */
export class Dropout extends Module {
  constructor(readonly rate = 0) {
    super();
    check(rate >= 0 && rate < 1, () => `Dropout: rate must be in [0, 1), got ${rate}`);
  }

  forward<T extends tf.Tensor>(x: T): T {
    if (!this.training || this.rate === 0) return x;
    return tf.dropout(x, this.rate) as T;
  }
}

/**
 * Stochastic depth (timm `drop_path`): in training, zeroes the whole residual branch of a sample with
 * probability `rate` and scales survivors by 1 / (1 - rate).
 */
export class DropPath extends Module {
  constructor(readonly rate = 0) {
    super();
    check(rate >= 0 && rate < 1, () => `DropPath: rate must be in [0, 1), got ${rate}`);
  }

  forward<T extends tf.Tensor>(x: T): T {
    if (!this.training || this.rate === 0) return x;
    const keep = 1 - this.rate;
    const shape = [x.shape[0], ...x.shape.slice(1).map(() => 1)];
    return tf.tidy(() => tf.mul(x, tf.div(tf.floor(tf.add(tf.randomUniform(shape), keep)), keep)) as T);
  }
}

import * as tf from '@tensorflow/tfjs-core';
import { applyPadding } from './conv.js';
import { check, shapeStr } from './errors.js';
import { Module } from './module.js';
import { type PaddingSpec, type ResolvedPadding, resolvePadding } from './padding.js';

export type PoolType = 'max' | 'avg';

/**
 * Max or average pooling with the conv padding regimes (timm `create_pool2d`). Explicit (PyTorch) pads use
 * -inf for max pooling and zeros counted in the average for avg pooling (PyTorch `count_include_pad=True`);
 * `'same'` follows TensorFlow (padding ignored by both).
 */
export class Pool2d extends Module {
  readonly padding: ResolvedPadding;

  constructor(
    readonly poolType: PoolType,
    readonly kernelSize: number,
    readonly stride: number,
    padding: PaddingSpec = '',
  ) {
    super();
    check(
      poolType === 'max' || poolType === 'avg',
      () => `Pool2d: poolType must be 'max' or 'avg', got '${poolType}'`,
    );
    this.padding = resolvePadding(padding, kernelSize, stride, 1);
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    check(x.rank === 4, () => `Pool2d.forward: expected a 4-D NHWC input, got ${shapeStr(x.shape)}`);
    return tf.tidy(() => {
      const { x: xp, pad } = applyPadding(
        x,
        this.padding,
        this.poolType === 'max' ? Number.NEGATIVE_INFINITY : 0,
      );
      return this.poolType === 'max'
        ? tf.maxPool(xp, this.kernelSize, this.stride, pad)
        : tf.avgPool(xp, this.kernelSize, this.stride, pad);
    });
  }
}

/** timm's `create_pool2d(pool_type, kernel_size, stride, padding)`. */
export function createPool2d(
  poolType: PoolType,
  kernelSize: number,
  stride: number,
  padding: PaddingSpec = '',
): Pool2d {
  return new Pool2d(poolType, kernelSize, stride, padding);
}

export type GlobalPoolType = 'avg' | 'max' | 'avgmax' | 'catavgmax' | '';

/** Global pooling of NHWC to `[batch, C]` (`[batch, 2C]` for catavgmax); `''` flattens nothing and keeps NHWC. */
export function globalPool(x: tf.Tensor4D, type: GlobalPoolType = 'avg'): tf.Tensor {
  return tf.tidy(() => globalPoolImpl(x, type));
}

function globalPoolImpl(x: tf.Tensor4D, type: GlobalPoolType): tf.Tensor {
  switch (type) {
    case 'avg':
      return tf.mean(x, [1, 2]);
    case 'max':
      return tf.max(x, [1, 2]);
    case 'avgmax':
      return tf.mul(tf.add(tf.mean(x, [1, 2]), tf.max(x, [1, 2])), 0.5);
    case 'catavgmax':
      return tf.concat([tf.mean(x, [1, 2]), tf.max(x, [1, 2])], 1);
    case '':
      return x;
    default:
      throw new Error(
        `globalPool: type must be one of avg, max, avgmax, catavgmax, '', got '${String(type)}'`,
      );
  }
}

import * as tf from '@tensorflow/tfjs-core';
import { check, shapeStr } from './errors.js';
import { uniformInit, zerosInit } from './init.js';
import { Module, type Parameter } from './module.js';

/** Fully connected layer, PyTorch names: `weight` `[out, in]`, `bias` `[out]`. Input `[batch, in]`. */
export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.addParameter('weight', [inFeatures, outFeatures], 'linear', uniformInit(outFeatures));
    this.bias = (options.bias ?? true) ? this.addParameter('bias', [outFeatures], 'plain', zerosInit) : null;
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    check(
      x.rank === 2 && x.shape[1] === this.inFeatures,
      () => `Linear.forward: expected input [batch, ${this.inFeatures}], got ${shapeStr(x.shape)}`,
    );
    return tf.fused.matMul({
      a: x,
      b: this.weight.value as tf.Tensor2D,
      bias: this.bias?.value,
    }) as tf.Tensor2D;
  }
}

import { check, Module, onesInit, type Parameter, shapeStr, zerosInit } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';

/**
 * `nn.InstanceNorm2d` without running statistics (PyTorch's default): every (sample, channel) plane is
 * normalised by its own mean and biased variance, in training and inference alike. `affine` adds the
 * `weight` / `bias` parameters. Candidate for `@effdet/layers`.
 */
export class InstanceNorm2d extends Module {
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  readonly eps: number;

  constructor(
    readonly numFeatures: number,
    options: { eps?: number; affine?: boolean } = {},
  ) {
    super();
    this.eps = options.eps ?? 1e-5;
    const affine = options.affine ?? false;
    this.weight = affine ? this.addParameter('weight', [numFeatures], 'plain', onesInit) : null;
    this.bias = affine ? this.addParameter('bias', [numFeatures], 'plain', zerosInit) : null;
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    check(
      x.rank === 4 && x.shape[3] === this.numFeatures,
      () => `InstanceNorm2d.forward: expected [batch, h, w, ${this.numFeatures}], got ${shapeStr(x.shape)}`,
    );
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, [1, 2], true);
      let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps)));
      if (this.weight && this.bias) y = tf.add(tf.mul(y, this.weight.value), this.bias.value);
      return y as tf.Tensor4D;
    });
  }
}

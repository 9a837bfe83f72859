import * as tf from '@tensorflow/tfjs-core';
import { type Activation, getActivation } from './activations.js';
import { check, shapeStr } from './errors.js';
import { channelSum } from './gradients.js';
import { onesInit, zerosInit } from './init.js';
import { Module, type Parameter } from './module.js';

export interface BatchNormOptions {
  /** Default 1e-5 (PyTorch); TF-ported weights use 1e-3. */
  eps?: number;
  /** PyTorch convention: running = (1 - momentum) * running + momentum * batch. Default 0.1. */
  momentum?: number;
  /** Activation applied after the normalisation (timm `BatchNormAct2d`); default identity. */
  act?: string | Activation;
}

/**
 * BatchNorm over the channel (last) axis, with an optional activation after it: timm's `BatchNormAct2d`,
 * whose state-dict names are those of `nn.BatchNorm2d` (`weight`, `bias`, `running_mean`, `running_var`).
 * Training mode normalises with batch statistics and updates the running statistics (unbiased variance).
 */
export class BatchNorm2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: Parameter;
  readonly runningVar: Parameter;
  readonly eps: number;
  readonly momentum: number;
  readonly act: Activation;

  constructor(
    readonly numFeatures: number,
    options: BatchNormOptions = {},
  ) {
    super();
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    this.act = getActivation(options.act ?? 'identity');
    this.weight = this.addParameter('weight', [numFeatures], 'plain', onesInit);
    this.bias = this.addParameter('bias', [numFeatures], 'plain', zerosInit);
    this.runningMean = this.addBuffer('running_mean', [numFeatures], zerosInit);
    this.runningVar = this.addBuffer('running_var', [numFeatures], onesInit);
  }

  /** The normalisation alone (no activation). */
  normalize(x: tf.Tensor4D): tf.Tensor4D {
    check(
      x.rank === 4 && x.shape[3] === this.numFeatures,
      () =>
        `BatchNorm2d.forward: expected input [batch, height, width, ${this.numFeatures}], got ${shapeStr(x.shape)}`,
    );
    if (!this.training) {
      return tf.batchNorm(
        x,
        this.runningMean.value as tf.Tensor1D,
        this.runningVar.value as tf.Tensor1D,
        this.bias.value as tf.Tensor1D,
        this.weight.value as tf.Tensor1D,
        this.eps,
      );
    }
    // batch statistics (biased variance, as PyTorch normalises with); channelSum is a matMul, much
    // faster than a reduction over the leading axes on wasm
    const n = x.shape[0] * x.shape[1] * x.shape[2];
    const mean = tf.div(channelSum(x), n) as tf.Tensor1D;
    const variance = tf.div(channelSum(tf.square(tf.sub(x, mean))), n) as tf.Tensor1D;
    this.updateRunningStats(mean, variance, n);
    return tf.batchNorm(
      x,
      mean,
      variance,
      this.bias.value as tf.Tensor1D,
      this.weight.value as tf.Tensor1D,
      this.eps,
    ) as tf.Tensor4D;
  }

  private updateRunningStats(mean: tf.Tensor, variance: tf.Tensor, n: number): void {
    // The update is not connected to the loss, so no gradient flows into the running buffers.
    const m = this.momentum;
    const unbiased = n > 1 ? n / (n - 1) : 1;
    const newMean = tf.tidy(() => tf.add(tf.mul(this.runningMean.value, 1 - m), tf.mul(mean, m)));
    const newVar = tf.tidy(() =>
      tf.add(tf.mul(this.runningVar.value, 1 - m), tf.mul(variance, m * unbiased)),
    );
    this.runningMean.value.assign(newMean);
    this.runningVar.value.assign(newVar);
    newMean.dispose();
    newVar.dispose();
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.act.apply(this.normalize(x)) as tf.Tensor4D);
  }

  /** Per-channel scale and shift of the eval-mode normalisation: y = x * scale + shift. */
  scaleShift(): { scale: tf.Tensor1D; shift: tf.Tensor1D } {
    return tf.tidy(() => {
      const scale = tf.mul(
        this.weight.value,
        tf.rsqrt(tf.add(this.runningVar.value, this.eps)),
      ) as tf.Tensor1D;
      const shift = tf.sub(this.bias.value, tf.mul(this.runningMean.value, scale)) as tf.Tensor1D;
      return { scale, shift };
    });
  }
}

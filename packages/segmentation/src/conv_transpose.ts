import { check, Module, type Parameter, randomUniform, shapeStr, zerosInit } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Transposed 2-D convolution, NHWC (candidate for `@effdet/layers`). The weight is stored as TF.js'
 * `conv2dTranspose` filter `[kh, kw, out, in]`, which is PyTorch's `nn.ConvTranspose2d` weight `[in, out, kh, kw]`
 * under the same permutation as a regular conv, so state dicts load with the `conv` layout.
 *
 * Padding: `'same'` is TensorFlow / Keras `Conv2DTranspose(padding='same')` (output = input * stride, the
 * adjoint of a SAME conv: its implicit padding sits bottom/right); a number `p` with `outputPadding` is
 * PyTorch's (output = (input - 1) * stride - 2p + k + outputPadding).
 */
export class ConvTranspose2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly stride: number;
  readonly padding: 'same' | number;
  readonly outputPadding: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    options: { stride?: number; padding?: 'same' | number; outputPadding?: number; bias?: boolean } = {},
  ) {
    super();
    check(
      [inChannels, outChannels, kernelSize].every((v) => Number.isInteger(v) && v > 0),
      () =>
        `ConvTranspose2d: inChannels, outChannels and kernelSize must be positive integers, got ${inChannels}, ${outChannels}, ${kernelSize}`,
    );
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
    this.outputPadding = options.outputPadding ?? 0;
    check(
      Number.isInteger(this.stride) && this.stride > 0,
      () => `ConvTranspose2d: stride must be a positive integer, got ${this.stride}`,
    );
    check(
      this.padding === 'same' || (Number.isInteger(this.padding) && this.padding >= 0),
      () =>
        `ConvTranspose2d: padding must be 'same' or a non-negative integer, got ${JSON.stringify(this.padding)}`,
    );
    check(
      Number.isInteger(this.outputPadding) && this.outputPadding >= 0 && this.outputPadding < this.stride,
      () => `ConvTranspose2d: outputPadding must be an integer in [0, stride), got ${this.outputPadding}`,
    );
    check(
      this.padding !== 'same' || this.outputPadding === 0,
      () => `ConvTranspose2d: outputPadding cannot be combined with 'same' padding`,
    );
    const k = kernelSize;
    // Glorot uniform, Keras' default for Conv2DTranspose.
    const limit = Math.sqrt(6 / ((inChannels + outChannels) * k * k));
    this.weight = this.addParameter('weight', [k, k, outChannels, inChannels], 'conv', (shape) =>
      randomUniform(shape, -limit, limit),
    );
    this.bias = (options.bias ?? true) ? this.addParameter('bias', [outChannels], 'plain', zerosInit) : null;
  }

  /** Output height / width for an input size. */
  outputSize(size: number): number {
    if (this.padding === 'same') return size * this.stride;
    return (size - 1) * this.stride - 2 * this.padding + this.kernelSize + this.outputPadding;
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    check(
      x.rank === 4 && x.shape[3] === this.inChannels,
      () =>
        `ConvTranspose2d.forward: expected input [batch, height, width, ${this.inChannels}], got ${shapeStr(x.shape)}`,
    );
    return tf.tidy(() => {
      const [b, h, w] = x.shape;
      const filter = this.weight.value as tf.Tensor4D;
      const s = this.stride;
      let y: tf.Tensor4D;
      if (this.padding === 'same') {
        y = tf.conv2dTranspose(x, filter, [b, h * s, w * s, this.outChannels], s, 'same');
      } else {
        const k = this.kernelSize;
        const fullH = (h - 1) * s + k;
        const fullW = (w - 1) * s + k;
        y = tf.conv2dTranspose(x, filter, [b, fullH, fullW, this.outChannels], s, 'valid');
        const p = this.padding;
        const extra = Math.max(0, this.outputPadding - p);
        if (extra > 0)
          y = tf.pad(y, [
            [0, 0],
            [0, extra],
            [0, extra],
            [0, 0],
          ]);
        y = tf.slice(y, [0, p, p, 0], [b, this.outputSize(h), this.outputSize(w), this.outChannels]);
      }
      return this.bias ? (tf.add(y, this.bias.value) as tf.Tensor4D) : y;
    });
  }
}

import * as tf from '@tensorflow/tfjs-core';
import { check, shapeStr } from './errors.js';
import { clearFolded } from './fold.js';
import { recordingGradients } from './grad.js';
import { convNormalInit, zerosInit } from './init.js';
import { Module, type Parameter } from './module.js';
import { type PaddingSpec, type ResolvedPadding, resolvePadding } from './padding.js';

export interface Conv2dOptions {
  stride?: number;
  dilation?: number;
  /** See `PaddingSpec`. Default `''` (PyTorch symmetric), as timm's `create_conv2d`. */
  padding?: PaddingSpec;
  /** 1 (default) or `inChannels` for a depthwise conv; other group counts are not supported by TF.js. */
  groups?: number;
  /** Shorthand for `groups = inChannels`. */
  depthwise?: boolean;
  bias?: boolean;
}

/** Applies a resolved padding before a 'valid' op (explicit pads), or passes 'same' / 'valid' through. */
export function applyPadding(
  x: tf.Tensor4D,
  pad: ResolvedPadding,
  value = 0,
): { x: tf.Tensor4D; pad: 'same' | 'valid' } {
  if (typeof pad === 'string') return { x, pad };
  return { x: tf.pad(x, [[0, 0], pad[0], pad[1], [0, 0]], value), pad: 'valid' };
}

/**
 * 2-D convolution (or depthwise convolution), NHWC. Weight names and PyTorch shapes as `nn.Conv2d`:
 * `weight` `[out, in/groups, kh, kw]`, optional `bias` `[out]`.
 */
export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly stride: number;
  readonly dilation: number;
  readonly padding: ResolvedPadding;
  readonly depthwise: boolean;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    options: Conv2dOptions = {},
  ) {
    super();
    const groups = options.depthwise ? inChannels : (options.groups ?? 1);
    check(
      Number.isInteger(inChannels) && inChannels > 0 && Number.isInteger(outChannels) && outChannels > 0,
      () => `Conv2d: inChannels and outChannels must be positive integers, got ${inChannels}, ${outChannels}`,
    );
    check(
      groups === 1 || groups === inChannels,
      () => `Conv2d: groups must be 1 or inChannels (${inChannels}) for a depthwise conv, got ${groups}`,
    );
    this.depthwise = groups === inChannels && groups > 1;
    check(
      !this.depthwise || outChannels % inChannels === 0,
      () =>
        `Conv2d: a depthwise conv needs outChannels (${outChannels}) divisible by inChannels (${inChannels})`,
    );
    this.stride = options.stride ?? 1;
    this.dilation = options.dilation ?? 1;
    check(
      this.stride === 1 || this.dilation === 1,
      () => `Conv2d: stride (${this.stride}) and dilation (${this.dilation}) cannot both exceed 1 in TF.js`,
    );
    this.padding = resolvePadding(options.padding ?? '', kernelSize, this.stride, this.dilation);
    const k = kernelSize;
    if (this.depthwise) {
      const mult = outChannels / inChannels;
      this.weight = this.addParameter(
        'weight',
        [k, k, inChannels, mult],
        'depthwise',
        convNormalInit(k * k * mult),
      );
    } else {
      this.weight = this.addParameter(
        'weight',
        [k, k, inChannels, outChannels],
        'conv',
        convNormalInit(k * k * outChannels),
      );
    }
    this.bias = options.bias ? this.addParameter('bias', [outChannels], 'plain', zerosInit) : null;
  }

  /** Checks an NHWC input's channel count, naming this layer in the message. */
  checkInput(x: tf.Tensor, where = 'Conv2d.forward'): void {
    check(
      x.rank === 4 && x.shape[3] === this.inChannels,
      () => `${where}: expected input [batch, height, width, ${this.inChannels}], got ${shapeStr(x.shape)}`,
    );
  }

  /** Convolution with explicit filter/bias (used by the folded inference path too). */
  convolve(
    x: tf.Tensor4D,
    filter: tf.Tensor4D,
    bias: tf.Tensor1D | null,
    activation: 'linear' | 'relu' | 'relu6' | 'sigmoid' | 'elu' | 'leakyrelu' = 'linear',
    leakyreluAlpha?: number,
  ): tf.Tensor4D {
    return tf.tidy((): tf.Tensor4D => {
      const { x: xp, pad } = applyPadding(x, this.padding);
      const s: [number, number] = [this.stride, this.stride];
      const d: [number, number] = [this.dilation, this.dilation];
      const args = {
        x: xp,
        filter,
        strides: s,
        pad,
        dilations: d,
        bias: bias ?? undefined,
        activation,
        leakyreluAlpha,
      };
      if (recordingGradients()) {
        // Differentiate the plain ops, whose gradients grad.ts supplies for every backend (the fused ops'
        // own gradients reject dilation and call kernels that are missing or slow on wasm).
        const y = this.depthwise
          ? tf.depthwiseConv2d(xp, filter, s, pad, 'NHWC', d)
          : tf.conv2d(xp, filter, s, pad, 'NHWC', d);
        const yb: tf.Tensor4D = bias ? tf.add(y, bias) : y;
        if (activation === 'linear') return yb;
        if (activation === 'relu') return tf.relu(yb);
        if (activation === 'relu6') return tf.relu6(yb);
        if (activation === 'sigmoid') return tf.sigmoid(yb);
        if (activation === 'elu') return tf.elu(yb);
        return tf.leakyRelu(yb, leakyreluAlpha ?? 0.2);
      }
      return this.depthwise ? tf.fused.depthwiseConv2d(args) : tf.fused.conv2d(args);
    });
  }

  protected override invalidateSelf(): void {
    clearFolded(this);
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    this.checkInput(x);
    return this.convolve(
      x,
      this.weight.value as tf.Tensor4D,
      this.bias ? (this.bias.value as tf.Tensor1D) : null,
    );
  }
}

/**
 * timm's `create_conv2d`: one place that turns (in, out, kernel, stride, dilation, padding, depthwise, bias)
 * into a Conv2d. `bias` defaults to false, as in the timm blocks.
 */
export function createConv2d(
  inChannels: number,
  outChannels: number,
  kernelSize: number,
  options: Conv2dOptions = {},
): Conv2d {
  return new Conv2d(inChannels, outChannels, kernelSize, { bias: false, ...options });
}

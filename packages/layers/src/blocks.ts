import * as tf from '@tensorflow/tfjs-core';
import { type Activation, getActivation } from './activations.js';
import { Conv2d, createConv2d } from './conv.js';
import { DropPath } from './dropout.js';
import { check, shapeStr } from './errors.js';
import { convBnAct } from './fold.js';
import { pyRound } from './math.js';
import { Module } from './module.js';
import { BatchNorm2d, type BatchNormOptions } from './norm.js';
import type { PaddingSpec } from './padding.js';

/** Options shared by the EfficientNet-family blocks (timm `_efficientnet_blocks.py` names, camelCased). */
export interface BlockOptions {
  stride?: number;
  dilation?: number;
  padding?: PaddingSpec;
  act?: string | Activation;
  /** BatchNorm eps / momentum for every norm in the block. */
  norm?: Omit<BatchNormOptions, 'act'>;
  /** Squeeze-excite reduction ratio relative to the SE input channels; 0 = no SE. */
  seRatio?: number;
  /** Activation inside the SE (default: the block's). */
  seAct?: string | Activation;
  /** Drop the residual connection even where shapes allow it. */
  noSkip?: boolean;
  dropPathRate?: number;
}

/** Where a block exposes features: its output (`bottleneck`) or the input of its last 1x1 conv (`expansion`). */
export interface BlockFeatureInfo {
  /** Sub-module name ('' = the block output). */
  module: string;
  channels: number;
}

function bn(channels: number, options: BlockOptions, act?: Activation): BatchNorm2d {
  return new BatchNorm2d(channels, { ...options.norm, act: act ?? 'identity' });
}

/**
 * Squeeze-and-excitation (timm efficientnet `SqueezeExcite`): spatial mean -> `conv_reduce` (1x1, bias) ->
 * act -> `conv_expand` (1x1, bias) -> gate (sigmoid) -> multiply.
 */
export class SqueezeExcite extends Module {
  readonly conv_reduce: Conv2d;
  readonly conv_expand: Conv2d;
  readonly act: Activation;
  readonly gate: Activation;

  constructor(
    readonly channels: number,
    options: {
      rdRatio?: number;
      rdChannels?: number;
      act?: string | Activation;
      gate?: string | Activation;
    } = {},
  ) {
    super();
    const rd = options.rdChannels ?? pyRound(channels * (options.rdRatio ?? 0.25));
    check(rd > 0, () => `SqueezeExcite: reduced channels must be positive, got ${rd} (channels ${channels})`);
    this.conv_reduce = this.addModule(
      'conv_reduce',
      new Conv2d(channels, rd, 1, { bias: true, padding: 'valid' }),
    );
    this.act = getActivation(options.act ?? 'relu');
    this.conv_expand = this.addModule(
      'conv_expand',
      new Conv2d(rd, channels, 1, { bias: true, padding: 'valid' }),
    );
    this.gate = getActivation(options.gate ?? 'sigmoid');
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const s = tf.mean(x, [1, 2], true) as tf.Tensor4D;
      const r = this.act.apply(this.conv_reduce.forward(s)) as tf.Tensor4D;
      return tf.mul(x, this.gate.apply(this.conv_expand.forward(r))) as tf.Tensor4D;
    });
  }
}

function makeSe(
  channels: number,
  ratio: number | undefined,
  act: Activation,
  options: BlockOptions,
): SqueezeExcite | null {
  if (!ratio) return null;
  return new SqueezeExcite(channels, { rdRatio: ratio, act: options.seAct ?? act });
}

/** Base for residual blocks: skip connection with drop-path, and an input channel check. */
abstract class ResidualBlock extends Module {
  abstract readonly inChannels: number;
  abstract readonly outChannels: number;
  protected hasSkip = false;
  protected dropPath: DropPath | null = null;

  protected residual(x: tf.Tensor4D, y: tf.Tensor4D): tf.Tensor4D {
    if (!this.hasSkip) return y;
    return tf.add(this.dropPath ? this.dropPath.forward(y) : y, x) as tf.Tensor4D;
  }

  protected checkInput(x: tf.Tensor4D): void {
    check(
      x.rank === 4 && x.shape[3] === this.inChannels,
      () =>
        `${this.constructor.name}.forward: expected input [batch, height, width, ${this.inChannels}], got ${shapeStr(x.shape)}`,
    );
  }

  abstract featureInfo(location: 'bottleneck' | 'expansion'): BlockFeatureInfo;

  /** The `expansion` feature tap of this block (see `featureInfo('expansion')`). */
  abstract forwardExpansion(x: tf.Tensor4D): tf.Tensor4D;
}

/** Single conv -> BN -> act, with an optional skip (timm `ConvBnAct`, the EfficientNetV2 `cn` block). */
export class ConvBnAct extends ResidualBlock {
  readonly conv: Conv2d;
  readonly bn1: BatchNorm2d;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number,
    options: BlockOptions & { skip?: boolean } = {},
  ) {
    super();
    const stride = options.stride ?? 1;
    const act = getActivation(options.act ?? 'relu');
    this.hasSkip = !!options.skip && stride === 1 && inChannels === outChannels;
    this.conv = this.addModule(
      'conv',
      createConv2d(inChannels, outChannels, kernelSize, {
        stride,
        dilation: options.dilation,
        padding: options.padding,
      }),
    );
    this.bn1 = this.addModule('bn1', bn(outChannels, options, act));
    if (this.hasSkip && options.dropPathRate)
      this.dropPath = this.addModule('drop_path', new DropPath(options.dropPathRate));
  }

  featureInfo(location: 'bottleneck' | 'expansion'): BlockFeatureInfo {
    return location === 'expansion'
      ? { module: 'bn1', channels: this.outChannels }
      : { module: '', channels: this.outChannels };
  }

  forwardExpansion(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      this.checkInput(x);
      return convBnAct(this.conv, this.bn1, x, this.useFolded);
    });
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      return this.residual(x, this.forwardExpansion(x));
    });
  }
}

/**
 * Depthwise-separable block (timm `DepthwiseSeparableConv`, `ds`): conv_dw -> bn1(act) -> se -> conv_pw ->
 * bn2 (act only with `pwAct`) -> + skip.
 */
export class DepthwiseSeparable extends ResidualBlock {
  readonly conv_dw: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly se: SqueezeExcite | null;
  readonly conv_pw: Conv2d;
  readonly bn2: BatchNorm2d;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    options: BlockOptions & { dwKernelSize?: number; pwKernelSize?: number; pwAct?: boolean } = {},
  ) {
    super();
    const stride = options.stride ?? 1;
    const act = getActivation(options.act ?? 'relu');
    this.hasSkip = stride === 1 && inChannels === outChannels && !options.noSkip;
    this.conv_dw = this.addModule(
      'conv_dw',
      createConv2d(inChannels, inChannels, options.dwKernelSize ?? 3, {
        stride,
        dilation: options.dilation,
        padding: options.padding,
        depthwise: true,
      }),
    );
    this.bn1 = this.addModule('bn1', bn(inChannels, options, act));
    this.se = makeSe(inChannels, options.seRatio, act, options);
    if (this.se) this.addModule('se', this.se);
    this.conv_pw = this.addModule(
      'conv_pw',
      createConv2d(inChannels, outChannels, options.pwKernelSize ?? 1, { padding: options.padding }),
    );
    this.bn2 = this.addModule('bn2', bn(outChannels, options, options.pwAct ? act : undefined));
    if (this.hasSkip && options.dropPathRate)
      this.dropPath = this.addModule('drop_path', new DropPath(options.dropPathRate));
  }

  featureInfo(location: 'bottleneck' | 'expansion'): BlockFeatureInfo {
    return location === 'expansion'
      ? { module: 'conv_pw', channels: this.inChannels }
      : { module: '', channels: this.outChannels };
  }

  forwardExpansion(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      this.checkInput(x);
      const y = convBnAct(this.conv_dw, this.bn1, x, this.useFolded);
      return this.se ? this.se.forward(y) : y;
    });
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      return this.residual(x, convBnAct(this.conv_pw, this.bn2, this.forwardExpansion(x), this.useFolded));
    });
  }
}

/**
 * Inverted residual / MBConv (timm `InvertedResidual`, `ir`): conv_pw (expand) -> bn1(act) -> conv_dw ->
 * bn2(act) -> se -> conv_pwl (project) -> bn3 -> + skip.
 */
export class InvertedResidual extends ResidualBlock {
  readonly conv_pw: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv_dw: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly se: SqueezeExcite | null;
  readonly conv_pwl: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly midChannels: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    options: BlockOptions & {
      dwKernelSize?: number;
      expKernelSize?: number;
      pwKernelSize?: number;
      midChannels: number;
    },
  ) {
    super();
    const stride = options.stride ?? 1;
    const act = getActivation(options.act ?? 'relu');
    const mid = options.midChannels;
    this.midChannels = mid;
    this.hasSkip = stride === 1 && inChannels === outChannels && !options.noSkip;
    this.conv_pw = this.addModule(
      'conv_pw',
      createConv2d(inChannels, mid, options.expKernelSize ?? 1, { padding: options.padding }),
    );
    this.bn1 = this.addModule('bn1', bn(mid, options, act));
    this.conv_dw = this.addModule(
      'conv_dw',
      createConv2d(mid, mid, options.dwKernelSize ?? 3, {
        stride,
        dilation: options.dilation,
        padding: options.padding,
        depthwise: true,
      }),
    );
    this.bn2 = this.addModule('bn2', bn(mid, options, act));
    this.se = makeSe(mid, options.seRatio, act, options);
    if (this.se) this.addModule('se', this.se);
    this.conv_pwl = this.addModule(
      'conv_pwl',
      createConv2d(mid, outChannels, options.pwKernelSize ?? 1, { padding: options.padding }),
    );
    this.bn3 = this.addModule('bn3', bn(outChannels, options));
    if (this.hasSkip && options.dropPathRate)
      this.dropPath = this.addModule('drop_path', new DropPath(options.dropPathRate));
  }

  featureInfo(location: 'bottleneck' | 'expansion'): BlockFeatureInfo {
    return location === 'expansion'
      ? { module: 'conv_pwl', channels: this.midChannels }
      : { module: '', channels: this.outChannels };
  }

  /** The block up to the input of `conv_pwl` (the `expansion` feature tap). */
  forwardExpansion(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      this.checkInput(x);
      let y = convBnAct(this.conv_pw, this.bn1, x, this.useFolded);
      y = convBnAct(this.conv_dw, this.bn2, y, this.useFolded);
      return this.se ? this.se.forward(y) : y;
    });
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const y = this.forwardExpansion(x);
      return this.residual(x, convBnAct(this.conv_pwl, this.bn3, y, this.useFolded));
    });
  }
}

/**
 * Edge residual / FusedMBConv (timm `EdgeResidual`, `er`): conv_exp (k x k, expand) -> bn1(act) -> se ->
 * conv_pwl (1x1 project) -> bn2 -> + skip.
 */
export class EdgeResidual extends ResidualBlock {
  readonly conv_exp: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly se: SqueezeExcite | null;
  readonly conv_pwl: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly midChannels: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    options: BlockOptions & { expKernelSize?: number; pwKernelSize?: number; midChannels: number },
  ) {
    super();
    const stride = options.stride ?? 1;
    const act = getActivation(options.act ?? 'relu');
    const mid = options.midChannels;
    this.midChannels = mid;
    this.hasSkip = stride === 1 && inChannels === outChannels && !options.noSkip;
    this.conv_exp = this.addModule(
      'conv_exp',
      createConv2d(inChannels, mid, options.expKernelSize ?? 3, {
        stride,
        dilation: options.dilation,
        padding: options.padding,
      }),
    );
    this.bn1 = this.addModule('bn1', bn(mid, options, act));
    this.se = makeSe(mid, options.seRatio, act, options);
    if (this.se) this.addModule('se', this.se);
    this.conv_pwl = this.addModule(
      'conv_pwl',
      createConv2d(mid, outChannels, options.pwKernelSize ?? 1, { padding: options.padding }),
    );
    this.bn2 = this.addModule('bn2', bn(outChannels, options));
    if (this.hasSkip && options.dropPathRate)
      this.dropPath = this.addModule('drop_path', new DropPath(options.dropPathRate));
  }

  featureInfo(location: 'bottleneck' | 'expansion'): BlockFeatureInfo {
    return location === 'expansion'
      ? { module: 'conv_pwl', channels: this.midChannels }
      : { module: '', channels: this.outChannels };
  }

  forwardExpansion(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      this.checkInput(x);
      const y = convBnAct(this.conv_exp, this.bn1, x, this.useFolded);
      return this.se ? this.se.forward(y) : y;
    });
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const y = this.forwardExpansion(x);
      return this.residual(x, convBnAct(this.conv_pwl, this.bn2, y, this.useFolded));
    });
  }
}

export type EfficientBlock = ConvBnAct | DepthwiseSeparable | InvertedResidual | EdgeResidual;

/**
 * Conv -> BatchNorm -> act with effdet's names (`conv`, `bn`; effdet `ConvBnAct2d`), the conv usually
 * with a bias. `norm: false` leaves the BN out.
 */
export class ConvNormAct extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d | null;
  readonly act: Activation;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number,
    options: {
      stride?: number;
      dilation?: number;
      padding?: PaddingSpec;
      bias?: boolean;
      norm?: Omit<BatchNormOptions, 'act'> | false;
      act?: string | Activation;
    } = {},
  ) {
    super();
    this.act = getActivation(options.act ?? 'identity');
    this.conv = this.addModule(
      'conv',
      createConv2d(inChannels, outChannels, kernelSize, {
        stride: options.stride,
        dilation: options.dilation,
        padding: options.padding,
        bias: options.bias ?? false,
      }),
    );
    this.bn =
      options.norm === false
        ? null
        : this.addModule('bn', new BatchNorm2d(outChannels, { ...options.norm, act: this.act }));
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const y = convBnAct(this.conv, this.bn, x, this.useFolded);
      return this.bn ? y : (this.act.apply(y) as tf.Tensor4D);
    });
  }
}

/**
 * Depthwise k x k -> pointwise 1x1 (optional bias) -> optional BatchNorm -> optional act, with effdet's names
 * (`conv_dw`, `conv_pw`, `bn`; effdet `SeparableConv2d`). No norm or act between the two convs.
 */
export class SeparableConvNormAct extends Module {
  readonly conv_dw: Conv2d;
  readonly conv_pw: Conv2d;
  readonly bn: BatchNorm2d | null;
  readonly act: Activation;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize = 3,
    options: {
      stride?: number;
      dilation?: number;
      padding?: PaddingSpec;
      bias?: boolean;
      channelMultiplier?: number;
      pwKernelSize?: number;
      norm?: Omit<BatchNormOptions, 'act'> | false;
      act?: string | Activation;
    } = {},
  ) {
    super();
    const mid = Math.floor(inChannels * (options.channelMultiplier ?? 1));
    this.act = getActivation(options.act ?? 'identity');
    this.conv_dw = this.addModule(
      'conv_dw',
      createConv2d(inChannels, mid, kernelSize, {
        stride: options.stride,
        dilation: options.dilation,
        padding: options.padding,
        depthwise: true,
      }),
    );
    this.conv_pw = this.addModule(
      'conv_pw',
      createConv2d(mid, outChannels, options.pwKernelSize ?? 1, {
        padding: options.padding,
        bias: options.bias ?? false,
      }),
    );
    this.bn =
      options.norm === false
        ? null
        : this.addModule('bn', new BatchNorm2d(outChannels, { ...options.norm, act: this.act }));
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const y = convBnAct(this.conv_pw, this.bn, this.conv_dw.forward(x), this.useFolded);
      return this.bn ? y : (this.act.apply(y) as tf.Tensor4D);
    });
  }
}

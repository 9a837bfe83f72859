/**
 * Building blocks of segmentation_models.pytorch (smp `base/modules.py`, `base/heads.py`) with smp's
 * state-dict names: sequential containers number their children (`0`, `1`, ...), parameter-free layers
 * (ReLU, pooling, upsampling, activations) keep their index but hold nothing.
 */
import {
  BatchNorm2d,
  type Conv2d,
  check,
  convBnAct,
  createConv2d,
  Dropout,
  EffdetArgumentError,
  Linear,
  Module,
  resize,
  shapeStr,
} from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import { InstanceNorm2d } from './instance_norm.js';

/** smp's `decoder_use_norm`: true = batchnorm, false = identity (the conv gets a bias), a name, or a dict. */
export type NormSpec =
  | boolean
  | 'batchnorm'
  | 'identity'
  | 'instancenorm'
  | { type: 'batchnorm'; eps?: number; momentum?: number }
  | { type: 'identity' }
  | { type: 'instancenorm'; eps?: number; affine?: boolean };

type ResolvedNorm =
  | { type: 'batchnorm'; eps: number; momentum: number }
  | { type: 'identity' }
  | { type: 'instancenorm'; eps: number; affine: boolean };

/** Resolves smp's `use_norm` argument (`get_norm_layer`), rejecting what this port does not build. */
export function resolveNorm(spec: NormSpec | undefined, where: string): ResolvedNorm {
  const s = spec ?? 'batchnorm';
  const obj: Record<string, unknown> =
    s === true
      ? { type: 'batchnorm' }
      : s === false
        ? { type: 'identity' }
        : typeof s === 'string'
          ? { type: s.toLowerCase() }
          : typeof s === 'object' && s !== null
            ? { ...s }
            : { type: String(s) };
  const type = obj.type;
  const extra = Object.keys(obj).filter((k) => k !== 'type');
  const allow = (keys: string[]) => {
    const bad = extra.filter((k) => !keys.includes(k));
    check(
      bad.length === 0,
      () =>
        `${where}: decoderUseNorm '${String(type)}' takes ${keys.join(', ') || 'no options'}, got ${bad.join(', ')}`,
    );
  };
  if (type === 'batchnorm') {
    allow(['eps', 'momentum']);
    return { type, eps: (obj.eps as number) ?? 1e-5, momentum: (obj.momentum as number) ?? 0.1 };
  }
  if (type === 'identity') {
    allow([]);
    return { type };
  }
  if (type === 'instancenorm') {
    allow(['eps', 'affine']);
    return { type, eps: (obj.eps as number) ?? 1e-5, affine: (obj.affine as boolean) ?? false };
  }
  throw new EffdetArgumentError(
    `${where}: decoderUseNorm must be true, false, 'batchnorm', 'identity', 'instancenorm' or {type, ...}, got ${JSON.stringify(spec)}` +
      (type === 'layernorm' || type === 'inplace'
        ? ` ('${type}' is not supported: smp's layernorm normalises the NCHW width axis and inplace needs inplace_abn)`
        : ''),
  );
}

/**
 * smp `Conv2dReLU`: `0` conv (bias only without a norm), `1` norm (BatchNorm2d, InstanceNorm2d or nothing),
 * `2` ReLU. PyTorch padding (explicit, symmetric).
 */
export class Conv2dReLU extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d | null = null;
  readonly instanceNorm: InstanceNorm2d | null = null;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number,
    options: { padding?: number; stride?: number; norm?: NormSpec; where?: string } = {},
  ) {
    super();
    const norm = resolveNorm(options.norm, options.where ?? 'Conv2dReLU');
    this.conv = this.addModule(
      '0',
      createConv2d(inChannels, outChannels, kernelSize, {
        padding: options.padding ?? 0,
        stride: options.stride ?? 1,
        bias: norm.type === 'identity',
      }),
    );
    if (norm.type === 'batchnorm') {
      this.bn = this.addModule(
        '1',
        new BatchNorm2d(outChannels, { eps: norm.eps, momentum: norm.momentum, act: 'relu' }),
      );
    } else if (norm.type === 'instancenorm') {
      this.instanceNorm = this.addModule('1', new InstanceNorm2d(outChannels, norm));
    }
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    if (this.bn) return convBnAct(this.conv, this.bn, x, this.useFolded);
    return tf.tidy(() => {
      let y = this.conv.forward(x);
      if (this.instanceNorm) y = this.instanceNorm.forward(y);
      return tf.relu(y);
    });
  }
}

/** conv (plain or separable) -> BatchNorm(+act), with the BN folded into the (pointwise) conv when `folded`. */
export function applyConvBn(
  conv: Conv2d | SeparableConv2d,
  bn: BatchNorm2d,
  x: tf.Tensor4D,
  folded: boolean,
): tf.Tensor4D {
  if (conv instanceof SeparableConv2d) {
    return tf.tidy(() => convBnAct(conv.pointwise, bn, conv.depthwise.forward(x), folded));
  }
  return convBnAct(conv, bn, x, folded);
}

/** conv -> BatchNorm -> ReLU as an `nn.Sequential(conv, bn, relu)` (`0`, `1`); the conv has no bias. */
export class ConvBnReLU extends Module {
  readonly conv: Conv2d | SeparableConv2d;
  readonly bn: BatchNorm2d;

  constructor(conv: Conv2d | SeparableConv2d, outChannels: number) {
    super();
    this.conv = this.addModule('0', conv);
    this.bn = this.addModule('1', new BatchNorm2d(outChannels, { act: 'relu' }));
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return applyConvBn(this.conv, this.bn, x, this.useFolded);
  }
}

/**
 * smp `SeparableConv2d` (DeepLab): `0` depthwise k x k (no bias, PyTorch padding, optional dilation), `1`
 * pointwise 1x1 (optional bias).
 */
export class SeparableConv2d extends Module {
  readonly depthwise: Conv2d;
  readonly pointwise: Conv2d;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number,
    options: { padding?: number; dilation?: number; bias?: boolean } = {},
  ) {
    super();
    this.depthwise = this.addModule(
      '0',
      createConv2d(inChannels, inChannels, kernelSize, {
        depthwise: true,
        padding: options.padding ?? 0,
        dilation: options.dilation ?? 1,
      }),
    );
    this.pointwise = this.addModule(
      '1',
      createConv2d(inChannels, outChannels, 1, { padding: 0, bias: options.bias ?? true }),
    );
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.pointwise.forward(this.depthwise.forward(x)));
  }
}

/**
 * Concurrent spatial and channel squeeze & excitation (smp `SCSEModule`, arXiv:1808.08127):
 * `x * cSE(x) + x * sSE(x)`, with `cSE` = mean -> `cSE.1` 1x1 (C -> C/reduction) -> ReLU -> `cSE.3` 1x1 -> sigmoid
 * and `sSE` = `sSE.0` 1x1 (C -> 1) -> sigmoid.
 */
export class SCSEModule extends Module {
  readonly cSE: ChannelGate;
  readonly sSE: SpatialGate;

  constructor(
    readonly channels: number,
    reduction = 16,
  ) {
    super();
    const rd = Math.floor(channels / reduction);
    check(
      rd > 0,
      () =>
        `SCSEModule: channels (${channels}) must be at least the reduction (${reduction}); smp's scse cannot be built with fewer`,
    );
    this.cSE = this.addModule('cSE', new ChannelGate(channels, rd));
    this.sSE = this.addModule('sSE', new SpatialGate(channels));
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(
      () => tf.add(tf.mul(x, this.cSE.forward(x)), tf.mul(x, this.sSE.forward(x))) as tf.Tensor4D,
    );
  }
}

class ChannelGate extends Module {
  readonly reduce: Conv2d;
  readonly expand: Conv2d;
  constructor(channels: number, rd: number) {
    super();
    this.reduce = this.addModule('1', createConv2d(channels, rd, 1, { bias: true, padding: 0 }));
    this.expand = this.addModule('3', createConv2d(rd, channels, 1, { bias: true, padding: 0 }));
  }
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const s = tf.mean(x, [1, 2], true) as tf.Tensor4D;
      const r = tf.relu(this.reduce.forward(s)) as tf.Tensor4D;
      return tf.sigmoid(this.expand.forward(r)) as tf.Tensor4D;
    });
  }
}

class SpatialGate extends Module {
  readonly conv: Conv2d;
  constructor(channels: number) {
    super();
    this.conv = this.addModule('0', createConv2d(channels, 1, 1, { bias: true, padding: 0 }));
  }
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.sigmoid(this.conv.forward(x)) as tf.Tensor4D);
  }
}

/** smp `Attention(name)`: `attention` holds the SCSE module, or nothing for `null` (identity). */
export class Attention extends Module {
  readonly attention: SCSEModule | null;

  constructor(type: 'scse' | null | undefined, channels: number, where = 'Attention') {
    super();
    check(
      type === null || type === undefined || type === 'scse',
      () => `${where}: decoderAttentionType must be 'scse' or null, got ${JSON.stringify(type)}`,
    );
    this.attention = type === 'scse' ? this.addModule('attention', new SCSEModule(channels)) : null;
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return this.attention ? this.attention.forward(x) : x;
  }
}

/** A function applied to the network's output (smp's `activation` callable). */
export type ActivationFn = (x: tf.Tensor) => tf.Tensor;

/**
 * smp's output activations: `null`/'identity', 'sigmoid', 'softmax' / 'softmax2d' (over channels),
 * 'logsoftmax', 'tanh', 'argmax2d' (class index per pixel, int32 `[B, H, W]`), 'clamp' (to [0, 1]) or a
 * function. smp's plain 'argmax' (an index into the flattened batch) is not offered.
 */
export type OutputActivation =
  | null
  | 'identity'
  | 'sigmoid'
  | 'softmax'
  | 'softmax2d'
  | 'logsoftmax'
  | 'tanh'
  | 'argmax2d'
  | 'clamp'
  | ActivationFn;

const OUTPUT_ACTIVATIONS = [
  'identity',
  'sigmoid',
  'softmax',
  'softmax2d',
  'logsoftmax',
  'tanh',
  'argmax2d',
  'clamp',
];

/** Validates an output activation, returning the function that applies it over the last (channel) axis. */
export function outputActivation(a: OutputActivation | undefined, where: string): ActivationFn | null {
  if (a === null || a === undefined || a === 'identity') return null;
  if (typeof a === 'function') return a;
  switch (a) {
    case 'sigmoid':
      return (x) => tf.sigmoid(x);
    case 'softmax':
    case 'softmax2d':
      return (x) => tf.softmax(x, -1);
    case 'logsoftmax':
      return (x) => tf.logSoftmax(x, -1);
    case 'tanh':
      return (x) => tf.tanh(x);
    case 'argmax2d':
      return (x) => tf.argMax(x, -1);
    case 'clamp':
      return (x) => tf.clipByValue(x, 0, 1);
  }
  throw new EffdetArgumentError(
    `${where}: activation must be null, a function or one of ${OUTPUT_ACTIVATIONS.join(', ')}, got ${JSON.stringify(a)}` +
      (a === 'argmax' ? " (smp's 'argmax' indexes the flattened batch; use 'argmax2d' for a class map)" : ''),
  );
}

/**
 * smp `SegmentationHead`: `0` conv k x k (padding k // 2, bias) -> `1` bilinear upsampling by an integer factor
 * (`nn.UpsamplingBilinear2d`, i.e. align_corners=True) -> `2` activation.
 */
export class SegmentationHead extends Module {
  readonly conv: Conv2d;
  /** Integer bilinear upsampling factor after the conv (1 = none). */
  readonly upsampling: number;
  private readonly act: ActivationFn | null;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    options: { kernelSize?: number; activation?: OutputActivation; upsampling?: number; where?: string } = {},
  ) {
    super();
    const k = options.kernelSize ?? 3;
    const where = options.where ?? 'SegmentationHead';
    this.upsampling = options.upsampling ?? 1;
    check(
      Number.isInteger(this.upsampling) && this.upsampling >= 1,
      () => `${where}: upsampling must be a positive integer, got ${options.upsampling}`,
    );
    this.conv = this.addModule(
      '0',
      createConv2d(inChannels, outChannels, k, { padding: Math.floor(k / 2), bias: true }),
    );
    this.act = outputActivation(options.activation, where);
  }

  /** Conv and upsampling: the logits before the activation. */
  logits(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const y = this.conv.forward(x);
      if (this.upsampling === 1) return y;
      const [, h, w] = y.shape;
      return resize(y, [h * this.upsampling, w * this.upsampling], { mode: 'bilinear', alignCorners: true });
    });
  }

  /** The activation alone (identity when none). */
  activate(logits: tf.Tensor): tf.Tensor {
    return this.act ? tf.tidy(() => this.act!(logits)) : logits;
  }

  forward(x: tf.Tensor4D): tf.Tensor {
    return tf.tidy(() => this.activate(this.logits(x)));
  }
}

/** smp's `aux_params`: a classification head on the deepest encoder feature. */
export interface AuxParams {
  classes: number;
  /** 'avg' (default) or 'max' global pooling. */
  pooling?: 'avg' | 'max';
  /** Dropout before the linear layer (default 0.2). */
  dropout?: number;
  activation?: OutputActivation;
}

/**
 * smp `ClassificationHead`: `0` global pool -> `1` flatten -> `2` dropout -> `3` Linear -> `4` activation.
 * Output `[B, classes]`.
 */
export class ClassificationHead extends Module {
  readonly linear: Linear;
  readonly dropout: Dropout;
  readonly pooling: 'avg' | 'max';
  private readonly act: ActivationFn | null;

  constructor(
    readonly inChannels: number,
    params: AuxParams,
    where = 'ClassificationHead',
  ) {
    super();
    check(
      typeof params === 'object' && params !== null,
      () => `${where}: auxParams must be an object {classes, pooling?, dropout?, activation?}, got ${params}`,
    );
    const known = ['classes', 'pooling', 'dropout', 'activation'];
    const unknown = Object.keys(params).filter((k) => !known.includes(k));
    check(
      unknown.length === 0,
      () => `${where}: unknown auxParams ${unknown.join(', ')}; expected ${known.join(', ')}`,
    );
    check(
      Number.isInteger(params.classes) && params.classes > 0,
      () => `${where}: auxParams.classes must be a positive integer, got ${params.classes}`,
    );
    this.pooling = params.pooling ?? 'avg';
    check(
      this.pooling === 'avg' || this.pooling === 'max',
      () => `${where}: auxParams.pooling must be 'avg' or 'max', got ${JSON.stringify(params.pooling)}`,
    );
    const p = params.dropout ?? 0.2;
    check(p >= 0 && p < 1, () => `${where}: auxParams.dropout must be in [0, 1), got ${p}`);
    this.dropout = this.addModule('2', new Dropout(p));
    this.linear = this.addModule('3', new Linear(inChannels, params.classes));
    this.act = outputActivation(params.activation, `${where} (auxParams.activation)`);
  }

  forward(x: tf.Tensor4D): tf.Tensor {
    check(
      x.rank === 4 && x.shape[3] === this.inChannels,
      () =>
        `ClassificationHead.forward: expected [batch, h, w, ${this.inChannels}], got ${shapeStr(x.shape)}`,
    );
    return tf.tidy(() => {
      const pooled = (this.pooling === 'avg' ? tf.mean(x, [1, 2]) : tf.max(x, [1, 2])) as tf.Tensor2D;
      const y = this.linear.forward(this.dropout.forward(pooled));
      return this.act ? this.act(y) : y;
    });
  }
}

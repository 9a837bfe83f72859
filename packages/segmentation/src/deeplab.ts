import {
  BatchNorm2d,
  type Conv2d,
  check,
  convBnAct,
  createConv2d,
  Dropout,
  Module,
  ModuleList,
  resize,
} from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import { TimmUniversalEncoder } from './encoder.js';
import { type Decoder, SegmentationModel, type SegmentationModelOptions } from './model.js';
import { applyConvBn, ClassificationHead, ConvBnReLU, SegmentationHead, SeparableConv2d } from './modules.js';
import { COMMON_KEYS, checkClasses, checkOptions } from './options.js';

export interface DeepLabV3Options extends SegmentationModelOptions {
  /** Stride of the deepest encoder feature: 8 or 16, later strides become dilations (default 8). */
  encoderOutputStride?: 8 | 16;
  /** Channels of the ASPP and decoder convs (default 256). */
  decoderChannels?: number;
  /** Dilations of the three atrous ASPP branches (default 12, 24, 36). */
  decoderAtrousRates?: [number, number, number];
  /** Depthwise-separable atrous branches (default false). */
  decoderAsppSeparable?: boolean;
  /** Dropout after the ASPP projection (training only; default 0.5). */
  decoderAsppDropout?: number;
  /** Bilinear upsampling factor of the head (default: back to the input size). */
  upsampling?: number | null;
}

export interface DeepLabV3PlusOptions extends Omit<DeepLabV3Options, 'upsampling'> {
  /** Default 16 for DeepLabV3+. */
  encoderOutputStride?: 8 | 16;
  /** Default true for DeepLabV3+. */
  decoderAsppSeparable?: boolean;
  /** Bilinear upsampling factor of the head (default 4: the decoder works at stride 4). */
  upsampling?: number;
}

const V3_KEYS = [
  ...COMMON_KEYS,
  'encoderOutputStride',
  'decoderChannels',
  'decoderAtrousRates',
  'decoderAsppSeparable',
  'decoderAsppDropout',
  'upsampling',
];

/** ASPP image pooling branch (smp `ASPPPooling`): mean -> `1` conv 1x1 -> `2` BN -> ReLU -> broadcast. */
class AsppPooling extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  constructor(inChannels: number, outChannels: number) {
    super();
    this.conv = this.addModule('1', createConv2d(inChannels, outChannels, 1, { padding: 0 }));
    this.bn = this.addModule('2', new BatchNorm2d(outChannels, { act: 'relu' }));
  }
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const pooled = tf.mean(x, [1, 2], true) as tf.Tensor4D;
      const y = convBnAct(this.conv, this.bn, pooled, this.useFolded);
      // Bilinear resize of a 1x1 map (smp, align_corners False) is a broadcast.
      return tf.tile(y, [1, x.shape[1], x.shape[2], 1]);
    });
  }
}

/** ASPP projection (smp `ASPP.project`): `0` conv 1x1 -> `1` BN -> ReLU -> `3` dropout. */
class AsppProject extends ConvBnReLU {
  readonly dropout: Dropout;
  constructor(inChannels: number, outChannels: number, dropout: number) {
    super(createConv2d(inChannels, outChannels, 1, { padding: 0 }), outChannels);
    this.dropout = this.addModule('3', new Dropout(dropout));
  }
  override forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.dropout.forward(super.forward(x)));
  }
}

/**
 * Atrous spatial pyramid pooling (smp `ASPP`): `convs` = 1x1 branch, three 3x3 atrous branches (dilation =
 * padding = rate; depthwise-separable when `separable`), image pooling; concatenated and projected.
 */
export class Aspp extends Module {
  readonly convs: ModuleList<Module>;
  readonly project: AsppProject;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    options: { atrousRates: number[]; separable: boolean; dropout: number; where: string },
  ) {
    super();
    const { atrousRates, where } = options;
    check(
      Array.isArray(atrousRates) &&
        atrousRates.length === 3 &&
        atrousRates.every((r) => Number.isInteger(r) && r > 0),
      () =>
        `${where}: decoderAtrousRates must be three positive integers, got ${JSON.stringify(atrousRates)}`,
    );
    check(
      options.dropout >= 0 && options.dropout < 1,
      () => `${where}: decoderAsppDropout must be in [0, 1), got ${options.dropout}`,
    );
    const branches: Module[] = [
      new ConvBnReLU(createConv2d(inChannels, outChannels, 1, { padding: 0 }), outChannels),
    ];
    for (const rate of atrousRates) {
      const conv = options.separable
        ? new SeparableConv2d(inChannels, outChannels, 3, { padding: rate, dilation: rate, bias: false })
        : createConv2d(inChannels, outChannels, 3, { padding: rate, dilation: rate });
      branches.push(new ConvBnReLU(conv, outChannels));
    }
    branches.push(new AsppPooling(inChannels, outChannels));
    this.convs = this.addModule('convs', new ModuleList(branches));
    this.project = this.addModule('project', new AsppProject(5 * outChannels, outChannels, options.dropout));
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const res = this.convs.items.map((m) => (m as ConvBnReLU | AsppPooling).forward(x));
      return this.project.forward(tf.concat(res, 3));
    });
  }
}

/** smp `DeepLabV3Decoder`: `aspp` on the deepest feature -> `conv` 3x3 -> `bn` -> ReLU. */
export class DeepLabV3Decoder extends Module implements Decoder {
  readonly aspp: Aspp;
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;

  constructor(
    inChannels: number,
    readonly outChannels: number,
    options: { atrousRates: number[]; separable: boolean; dropout: number; where: string },
  ) {
    super();
    this.aspp = this.addModule('aspp', new Aspp(inChannels, outChannels, options));
    this.conv = this.addModule('conv', createConv2d(outChannels, outChannels, 3, { padding: 1 }));
    this.bn = this.addModule('bn', new BatchNorm2d(outChannels, { act: 'relu' }));
  }

  forward(features: tf.Tensor4D[]): tf.Tensor4D {
    return tf.tidy(() => convBnAct(this.conv, this.bn, this.aspp.forward(features.at(-1)!), this.useFolded));
  }
}

/** DeepLabV3+'s `aspp` sequential: `0` ASPP -> `1` separable 3x3 -> `2` BN -> ReLU. */
class AsppSequence extends Module {
  readonly aspp: Aspp;
  readonly sep: SeparableConv2d;
  readonly bn: BatchNorm2d;
  constructor(inChannels: number, outChannels: number, options: ConstructorParameters<typeof Aspp>[2]) {
    super();
    this.aspp = this.addModule('0', new Aspp(inChannels, outChannels, options));
    this.sep = this.addModule(
      '1',
      new SeparableConv2d(outChannels, outChannels, 3, { padding: 1, bias: false }),
    );
    this.bn = this.addModule('2', new BatchNorm2d(outChannels, { act: 'relu' }));
  }
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => applyConvBn(this.sep, this.bn, this.aspp.forward(x), this.useFolded));
  }
}

/**
 * smp `DeepLabV3PlusDecoder`: ASPP on the deepest feature, bilinear upsampling (align_corners True) by 4 (output
 * stride 16, depth > 3) or 2, concatenated with `block1` (1x1 -> 48 channels) of the stride-4 feature, then
 * `block2` (separable 3x3 -> BN -> ReLU).
 */
export class DeepLabV3PlusDecoder extends Module implements Decoder {
  readonly aspp: AsppSequence;
  readonly block1: ConvBnReLU;
  readonly block2: ConvBnReLU;
  readonly scaleFactor: number;

  constructor(
    encoderChannels: number[],
    encoderDepth: number,
    readonly outChannels: number,
    outputStride: 8 | 16,
    options: { atrousRates: number[]; separable: boolean; dropout: number; where: string },
  ) {
    super();
    check(
      encoderDepth >= 3,
      () =>
        `${options.where}: encoder depth for the DeepLabV3Plus decoder cannot be less than 3, got ${encoderDepth}`,
    );
    this.aspp = this.addModule('aspp', new AsppSequence(encoderChannels.at(-1)!, outChannels, options));
    this.scaleFactor = outputStride === 16 && encoderDepth > 3 ? 4 : 2;
    const highRes = 48;
    this.block1 = this.addModule(
      'block1',
      new ConvBnReLU(createConv2d(encoderChannels[2], highRes, 1, { padding: 0 }), highRes),
    );
    this.block2 = this.addModule(
      'block2',
      new ConvBnReLU(
        new SeparableConv2d(highRes + outChannels, outChannels, 3, { padding: 1, bias: false }),
        outChannels,
      ),
    );
  }

  forward(features: tf.Tensor4D[]): tf.Tensor4D {
    return tf.tidy(() => {
      const a = this.aspp.forward(features.at(-1)!);
      const s = this.scaleFactor;
      const up = resize(a, [a.shape[1] * s, a.shape[2] * s], { mode: 'bilinear', alignCorners: true });
      const high = this.block1.forward(features[2]);
      return this.block2.forward(tf.concat([up, high], 3));
    });
  }
}

function deeplabParts(
  options: DeepLabV3Options | DeepLabV3PlusOptions,
  plus: boolean,
): {
  encoder: TimmUniversalEncoder;
  depth: number;
  outputStride: 8 | 16;
  decoderOptions: { atrousRates: number[]; separable: boolean; dropout: number; where: string };
  channels: number;
  classes: number;
  where: string;
} {
  const where = plus ? 'DeepLabV3Plus' : 'DeepLabV3';
  checkOptions(options, V3_KEYS, where);
  const depth = options.encoderDepth ?? 5;
  check(
    Number.isInteger(depth) && depth >= 3 && depth <= 5,
    () => `${where}: encoderDepth must be 3, 4 or 5, got ${options.encoderDepth}`,
  );
  const outputStride = options.encoderOutputStride ?? (plus ? 16 : 8);
  check(
    outputStride === 8 || outputStride === 16,
    () => `${where}: encoderOutputStride must be 8 or 16, got ${options.encoderOutputStride}`,
  );
  const channels = options.decoderChannels ?? 256;
  check(
    Number.isInteger(channels) && channels > 0,
    () =>
      `${where}: decoderChannels must be a positive integer (one width for the ASPP), got ${JSON.stringify(options.decoderChannels)}`,
  );
  const classes = checkClasses(options.classes, where);
  const decoderOptions = {
    atrousRates: options.decoderAtrousRates ?? [12, 24, 36],
    separable: options.decoderAsppSeparable ?? plus,
    dropout: options.decoderAsppDropout ?? 0.5,
    where,
  };
  const encoder = new TimmUniversalEncoder(options.encoderName, {
    depth,
    outputStride,
    inChannels: options.inChannels,
    encoderOptions: options.encoderOptions,
    where,
  });
  return { encoder, depth, outputStride, decoderOptions, channels, classes, where };
}

function upsamplingOf(v: number | null | undefined, fallback: number, where: string): number {
  const u = v ?? fallback;
  check(Number.isInteger(u) && u >= 1, () => `${where}: upsampling must be a positive integer, got ${v}`);
  return u;
}

/**
 * DeepLabV3 (smp `DeepLabV3`): dilated encoder (output stride 8 or 16), ASPP, 1x1 head, bilinear upsampling
 * back to the input size. Height and width must be multiples of the output stride.
 */
export class DeepLabV3 extends SegmentationModel {
  readonly arch = 'DeepLabV3';
  readonly requiresDivisibleInputShape = true;
  declare readonly decoder: DeepLabV3Decoder;
  declare readonly options: DeepLabV3Options;

  constructor(options: DeepLabV3Options) {
    super(DeepLabV3.build(options));
  }

  private static build(options: DeepLabV3Options) {
    const p = deeplabParts(options, false);
    const encoder = p.encoder;
    const decoder = new DeepLabV3Decoder(encoder.outChannels.at(-1)!, p.channels, p.decoderOptions);
    const fallback = p.depth <= 3 ? 2 ** p.depth : p.outputStride;
    const head = new SegmentationHead(p.channels, p.classes, {
      kernelSize: 1,
      activation: options.activation,
      upsampling: upsamplingOf(options.upsampling, fallback, p.where),
      where: p.where,
    });
    const aux = options.auxParams
      ? new ClassificationHead(encoder.outChannels.at(-1)!, options.auxParams, p.where)
      : null;
    return { encoder, decoder, head, aux, options };
  }
}

/**
 * DeepLabV3+ (smp `DeepLabV3Plus`): DeepLabV3's ASPP plus a stride-4 skip from the encoder; the head upsamples
 * by 4 to the input size. Height and width must be multiples of the output stride.
 */
export class DeepLabV3Plus extends SegmentationModel {
  readonly arch = 'DeepLabV3Plus';
  readonly requiresDivisibleInputShape = true;
  declare readonly decoder: DeepLabV3PlusDecoder;
  declare readonly options: DeepLabV3PlusOptions;

  constructor(options: DeepLabV3PlusOptions) {
    super(DeepLabV3Plus.build(options));
  }

  private static build(options: DeepLabV3PlusOptions) {
    const p = deeplabParts(options, true);
    const encoder = p.encoder;
    const decoder = new DeepLabV3PlusDecoder(
      encoder.outChannels,
      p.depth,
      p.channels,
      p.outputStride,
      p.decoderOptions,
    );
    const head = new SegmentationHead(p.channels, p.classes, {
      kernelSize: 1,
      activation: options.activation,
      upsampling: upsamplingOf(options.upsampling, 4, p.where),
      where: p.where,
    });
    const aux = options.auxParams
      ? new ClassificationHead(encoder.outChannels.at(-1)!, options.auxParams, p.where)
      : null;
    return { encoder, decoder, head, aux, options };
  }
}

import { check, EffdetArgumentError, Module, ModuleList, resize } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import { TimmUniversalEncoder } from './encoder.js';
import { type Decoder, SegmentationModel, type SegmentationModelOptions } from './model.js';
import { Attention, ClassificationHead, Conv2dReLU, type NormSpec, SegmentationHead } from './modules.js';
import { COMMON_KEYS, checkClasses, checkOptions } from './options.js';

/** How the U-Net decoder upsamples (smp `decoder_interpolation`). */
export type UnetInterpolation = 'nearest' | 'bilinear' | 'nearest-exact';

export interface UnetOptions extends SegmentationModelOptions {
  /** Output channels of each decoder block, one per encoder stage (default 256, 128, 64, 32, 16). */
  decoderChannels?: number[];
  /** Norm between each decoder conv and its ReLU (default 'batchnorm'; smp `decoder_use_norm`). */
  decoderUseNorm?: NormSpec;
  /** Deprecated smp spelling of `decoderUseNorm`; wins when given, as in smp. */
  decoderUseBatchnorm?: NormSpec;
  /** 'scse' puts smp's SCSE attention around every decoder block (default none). */
  decoderAttentionType?: 'scse' | null;
  /** Decoder upsampling (default 'nearest'). */
  decoderInterpolation?: UnetInterpolation;
}

const INTERPOLATIONS: UnetInterpolation[] = ['nearest', 'bilinear', 'nearest-exact'];

/** `F.interpolate(x, size, mode)` for the modes the decoder offers (PyTorch semantics, align_corners False). */
export function interpolate(x: tf.Tensor4D, size: [number, number], mode: UnetInterpolation): tf.Tensor4D {
  if (x.shape[1] === size[0] && x.shape[2] === size[1]) return x;
  if (mode === 'nearest-exact') return tf.image.resizeNearestNeighbor(x, size, false, true);
  return resize(x, size, { mode });
}

/**
 * smp `UnetDecoderBlock`: upsample to the skip's size -> concat skip -> `attention1` -> `conv1` -> `conv2` ->
 * `attention2`. `attention1` only runs when there is a skip (the last block has none, but smp builds it).
 */
export class UnetDecoderBlock extends Module {
  readonly conv1: Conv2dReLU;
  readonly attention1: Attention;
  readonly conv2: Conv2dReLU;
  readonly attention2: Attention;
  readonly interpolation: UnetInterpolation;

  constructor(
    readonly inChannels: number,
    readonly skipChannels: number,
    readonly outChannels: number,
    options: { norm?: NormSpec; attention?: 'scse' | null; interpolation: UnetInterpolation; where: string },
  ) {
    super();
    const { where } = options;
    this.interpolation = options.interpolation;
    this.conv1 = this.addModule(
      'conv1',
      new Conv2dReLU(inChannels + skipChannels, outChannels, 3, { padding: 1, norm: options.norm, where }),
    );
    this.attention1 = this.addModule(
      'attention1',
      new Attention(options.attention, inChannels + skipChannels, where),
    );
    this.conv2 = this.addModule(
      'conv2',
      new Conv2dReLU(outChannels, outChannels, 3, { padding: 1, norm: options.norm, where }),
    );
    this.attention2 = this.addModule('attention2', new Attention(options.attention, outChannels, where));
  }

  forward(x: tf.Tensor4D, size: [number, number], skip: tf.Tensor4D | null): tf.Tensor4D {
    return tf.tidy(() => {
      let y = interpolate(x, size, this.interpolation);
      if (skip) y = this.attention1.forward(tf.concat([y, skip], 3));
      y = this.conv1.forward(y);
      y = this.conv2.forward(y);
      return this.attention2.forward(y);
    });
  }
}

/**
 * smp `UnetDecoder`: from the deepest feature up, one block per encoder stage, each upsampling to the next
 * shallower feature's size (the last one to the input size) and concatenating it. (smp's `center` block is
 * only built for VGG encoders.)
 */
export class UnetDecoder extends Module implements Decoder {
  readonly blocks: ModuleList<UnetDecoderBlock>;
  readonly outChannels: number;

  constructor(
    encoderChannels: number[],
    decoderChannels: number[],
    options: { norm?: NormSpec; attention?: 'scse' | null; interpolation: UnetInterpolation; where: string },
  ) {
    super();
    const nBlocks = encoderChannels.length - 1;
    check(
      Array.isArray(decoderChannels) && decoderChannels.length === nBlocks,
      () =>
        `${options.where}: model depth is ${nBlocks}, but decoderChannels has ${Array.isArray(decoderChannels) ? decoderChannels.length : 'no'} entries ` +
        `([${decoderChannels}]); give one per encoder stage`,
    );
    check(
      decoderChannels.every((c) => Number.isInteger(c) && c > 0),
      () => `${options.where}: decoderChannels must be positive integers, got [${decoderChannels}]`,
    );
    const enc = encoderChannels.slice(1).reverse();
    const head = enc[0];
    const ins = [head, ...decoderChannels.slice(0, -1)];
    const skips = [...enc.slice(1), 0];
    this.blocks = this.addModule(
      'blocks',
      new ModuleList(decoderChannels.map((out, i) => new UnetDecoderBlock(ins[i], skips[i], out, options))),
    );
    this.outChannels = decoderChannels.at(-1)!;
  }

  forward(features: tf.Tensor4D[]): tf.Tensor4D {
    return tf.tidy(() => {
      const sizes = features.map((f) => [f.shape[1], f.shape[2]] as [number, number]).reverse();
      const feats = features.slice(1).reverse();
      let x = feats[0];
      const skips = feats.slice(1);
      this.blocks.items.forEach((block, i) => {
        x = block.forward(x, sizes[i + 1], skips[i] ?? null);
      });
      return x;
    });
  }
}

/**
 * U-Net (smp `Unet`): any size of input works (every decoder block upsamples to its skip's size), and the
 * output has the input's height and width.
 */
export class Unet extends SegmentationModel {
  readonly arch = 'Unet';
  readonly requiresDivisibleInputShape = false;
  declare readonly decoder: UnetDecoder;
  declare readonly options: UnetOptions;

  constructor(options: UnetOptions) {
    super(Unet.build(options));
  }

  private static build(options: UnetOptions) {
    const where = 'Unet';
    checkOptions(options, UNET_KEYS, where);
    const depth = options.encoderDepth ?? 5;
    check(
      Number.isInteger(depth) && depth >= 3 && depth <= 5,
      () => `${where}: encoderDepth must be 3, 4 or 5, got ${options.encoderDepth}`,
    );
    const interpolation = options.decoderInterpolation ?? 'nearest';
    if (!INTERPOLATIONS.includes(interpolation)) {
      throw new EffdetArgumentError(
        `${where}: decoderInterpolation must be ${INTERPOLATIONS.join(', ')}, got ${JSON.stringify(interpolation)}` +
          (['bicubic', 'area'].includes(String(interpolation)) ? ' (bicubic and area are not ported)' : ''),
      );
    }
    const decoderChannels = options.decoderChannels ?? [256, 128, 64, 32, 16];
    const classes = checkClasses(options.classes, where);
    const encoder = new TimmUniversalEncoder(options.encoderName, {
      depth,
      inChannels: options.inChannels,
      encoderOptions: options.encoderOptions,
      where,
    });
    const decoder = new UnetDecoder(encoder.outChannels, decoderChannels, {
      norm: options.decoderUseBatchnorm ?? options.decoderUseNorm,
      attention: options.decoderAttentionType,
      interpolation,
      where,
    });
    const head = new SegmentationHead(decoder.outChannels, classes, {
      kernelSize: 3,
      activation: options.activation,
      where,
    });
    const aux = options.auxParams
      ? new ClassificationHead(encoder.outChannels.at(-1)!, options.auxParams, where)
      : null;
    return { encoder, decoder, head, aux, options };
  }
}

const UNET_KEYS = [
  ...COMMON_KEYS,
  'decoderChannels',
  'decoderUseNorm',
  'decoderUseBatchnorm',
  'decoderAttentionType',
  'decoderInterpolation',
];

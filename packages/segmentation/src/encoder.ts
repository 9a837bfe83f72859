import {
  type CreateModelOptions,
  createModel,
  type EfficientNet,
  getPretrainedCfg,
  IMAGENET_DEFAULT_MEAN,
  IMAGENET_DEFAULT_STD,
  listModels,
} from '@effdet/efficientnet';
import { check, closeNames, EffdetArgumentError, Module, shapeStr } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';

/** Options smp passes through to `timm.create_model` (its `**kwargs`), in this port's names. */
export type EncoderOptions = Pick<
  CreateModelOptions,
  'dropRate' | 'dropPathRate' | 'padding' | 'bnEps' | 'bnMomentum' | 'act'
>;

const ENCODER_OPTION_KEYS = ['dropRate', 'dropPathRate', 'padding', 'bnEps', 'bnMomentum', 'act'];

/**
 * The timm model behind an smp encoder name. Only smp's universal timm encoders (`tu-<timm name>`) over the
 * `@effdet/efficientnet` models are built; the message lists them otherwise.
 */
export function parseEncoderName(encoderName: string, where = 'encoder'): string {
  check(
    typeof encoderName === 'string',
    () => `${where}: encoderName must be a string like 'tu-tf_efficientnet_b0', got ${typeof encoderName}`,
  );
  const models = listModels();
  const timmName = encoderName.startsWith('tu-') ? encoderName.slice(3) : null;
  if (timmName !== null && models.includes(timmName)) return timmName;
  const hint =
    timmName === null
      ? models.includes(encoderName)
        ? ` Did you mean 'tu-${encoderName}'? smp names timm encoders with the 'tu-' prefix.`
        : ` Only smp's timm universal encoders ('tu-<name>') over @effdet/efficientnet models are supported.`
      : '';
  const near = closeNames(timmName ?? encoderName.replace(/^timm-/, ''), models).map((m) => `tu-${m}`);
  throw new EffdetArgumentError(
    `${where}: unknown encoder '${encoderName}'.${hint}${near.length ? ` Close names: ${near.join(', ')}.` : ''} ` +
      `Valid encoders: ${models.map((m) => `tu-${m}`).join(', ')}`,
  );
}

/**
 * smp's `TimmUniversalEncoder` for EfficientNets: `model` is the timm feature extractor (state-dict prefix
 * `encoder.model.`) built with `features_only`, `out_indices = 0..depth-1` and the output stride.
 * `forward` returns `[input, f1, ..., f_depth]` (strides 1, 2, 4, ...), NHWC, as the decoders consume them.
 */
export class TimmUniversalEncoder extends Module {
  readonly model: EfficientNet;
  readonly timmName: string;
  /** Channels of each returned map, the input first (smp `out_channels`). */
  readonly outChannels: number[];
  /** Stride of each returned map (1 for the input). */
  readonly reductions: number[];
  readonly depth: number;
  readonly inChannels: number;
  /** The stride of the deepest feature: `min(outputStride, 2 ** depth)` (smp `output_stride`). */
  readonly outputStride: number;
  /** The normalisation the encoder's released timm weights expect (ImageNet's when there are none). */
  readonly mean: [number, number, number];
  readonly std: [number, number, number];

  constructor(
    readonly name: string,
    options: {
      depth?: number;
      outputStride?: 8 | 16 | 32;
      inChannels?: number;
      encoderOptions?: EncoderOptions;
      where?: string;
    } = {},
  ) {
    super();
    const where = options.where ?? 'TimmUniversalEncoder';
    this.timmName = parseEncoderName(name, where);
    const depth = options.depth ?? 5;
    check(
      Number.isInteger(depth) && depth >= 1 && depth <= 5,
      () => `${where}: encoderDepth must be an integer in [1, 5], got ${options.depth}`,
    );
    const outputStride = options.outputStride ?? 32;
    check(
      outputStride === 8 || outputStride === 16 || outputStride === 32,
      () => `${where}: encoderOutputStride must be 8, 16 or 32, got ${options.outputStride}`,
    );
    const inChannels = options.inChannels ?? 3;
    check(
      Number.isInteger(inChannels) && inChannels > 0,
      () => `${where}: inChannels must be a positive integer, got ${options.inChannels}`,
    );
    const extra = options.encoderOptions ?? {};
    const unknown = Object.keys(extra).filter((k) => !ENCODER_OPTION_KEYS.includes(k));
    check(
      unknown.length === 0,
      () =>
        `${where}: unknown encoderOptions ${unknown.join(', ')}; expected ${ENCODER_OPTION_KEYS.join(', ')}`,
    );
    this.model = this.addModule(
      'model',
      createModel(this.timmName, {
        ...extra,
        featuresOnly: true,
        inChannels,
        outIndices: Array.from({ length: depth }, (_, i) => i),
        outputStride,
      }),
    );
    // smp sorts timm models by their feature strides; EfficientNets are "traditional" (2, 4, 8, 16, 32).
    const plain = this.model.allFeatureInfo.map((f) => f.reduction);
    check(
      outputStride !== 32 || plain.every((r, i) => r === 2 ** (i + 1)),
      () => `${where}: ${this.timmName} has feature strides [${plain}], expected 2, 4, 8, 16, 32`,
    );
    this.depth = depth;
    this.inChannels = inChannels;
    this.outputStride = Math.min(outputStride, 2 ** depth);
    this.outChannels = [inChannels, ...this.model.featureInfo.map((f) => f.channels)];
    this.reductions = [1, ...this.model.featureInfo.map((f) => f.reduction)];
    const cfg = getPretrainedCfg(this.timmName);
    this.mean = [...(cfg?.mean ?? IMAGENET_DEFAULT_MEAN)] as [number, number, number];
    this.std = [...(cfg?.std ?? IMAGENET_DEFAULT_STD)] as [number, number, number];
  }

  /** `[x, f1, ..., f_depth]`: the input itself, then the encoder features. The input is returned as given. */
  forward(x: tf.Tensor): tf.Tensor4D[] {
    check(
      x instanceof tf.Tensor && x.rank === 4 && x.shape[3] === this.inChannels,
      () =>
        `${this.name}: expected an NHWC batch [batch, height, width, ${this.inChannels}], got ${x instanceof tf.Tensor ? shapeStr(x.shape) : typeof x}`,
    );
    return [x as tf.Tensor4D, ...this.model.features(x)];
  }
}

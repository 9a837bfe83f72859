import type { ImageInput } from '@effdet/effdet';
import { check, Module, shapeStr } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import type { EncoderOptions, TimmUniversalEncoder } from './encoder.js';
import type { AuxParams, ClassificationHead, OutputActivation, SegmentationHead } from './modules.js';
import { type MaskPrediction, type MaskPredictor, type PredictMaskOptions, predictMask } from './predict.js';

/** Options every smp architecture takes (smp's constructor arguments in camelCase). */
export interface SegmentationModelOptions {
  /** `tu-<model>` for any `@effdet/efficientnet` model, e.g. `tu-tf_efficientnet_b0`. */
  encoderName: string;
  /** Encoder stages used, 3..5 (default 5). */
  encoderDepth?: number;
  /** Image channels (default 3). */
  inChannels?: number;
  /** Output channels of the mask (default 1). */
  classes?: number;
  /** Applied to the mask logits by `forward` (default none; see `OutputActivation`). */
  activation?: OutputActivation;
  /** A classification head on the deepest encoder feature (smp `aux_params`). */
  auxParams?: AuxParams | null;
  /** What smp passes to `timm.create_model` (`**kwargs`): drop rates and regime overrides. */
  encoderOptions?: EncoderOptions;
}

/** A decoder: encoder features in, one map out. */
export interface Decoder extends Module {
  readonly outChannels: number;
  forward(features: tf.Tensor4D[]): tf.Tensor4D;
}

/** Everything a forward pass computes, for parity checks and training with the auxiliary head. */
export interface SegmentationIntermediates {
  /** `[input, f1, ..., f_depth]` from the encoder. */
  features: tf.Tensor4D[];
  decoder: tf.Tensor4D;
  /** Segmentation head output before the activation `[B, H, W, classes]`. */
  logits: tf.Tensor4D;
  /** After the activation (the logits themselves when there is none). */
  masks: tf.Tensor;
  /** Classification head output, or null without `auxParams`. */
  labels: tf.Tensor | null;
}

/**
 * smp `SegmentationModel`: `encoder` -> `decoder` -> `segmentation_head` (+ `classification_head`), with smp's
 * state-dict names so a `model.state_dict()` of the reference loads unchanged. NHWC in and out.
 */
export abstract class SegmentationModel extends Module implements MaskPredictor {
  abstract readonly arch: string;
  readonly encoder: TimmUniversalEncoder;
  readonly decoder: Decoder;
  readonly segmentation_head: SegmentationHead;
  readonly classification_head: ClassificationHead | null;
  /** Output channels. */
  readonly classes: number;
  /** smp `requires_divisible_input_shape`: height and width must be multiples of the encoder's output stride. */
  abstract readonly requiresDivisibleInputShape: boolean;
  /**
   * The options the model was built with (a copy), so that a twin can be built
   * (`createSegmentationModel(model.arch, model.options)`, e.g. for a training EMA) or the spec saved
   * (`toSmpConfig`).
   */
  readonly options: SegmentationModelOptions;

  protected constructor(parts: {
    encoder: TimmUniversalEncoder;
    decoder: Decoder;
    head: SegmentationHead;
    aux: ClassificationHead | null;
    options: SegmentationModelOptions;
  }) {
    super();
    this.options = { ...parts.options };
    this.encoder = this.addModule('encoder', parts.encoder);
    this.decoder = this.addModule('decoder', parts.decoder);
    this.segmentation_head = this.addModule('segmentation_head', parts.head);
    this.classification_head = parts.aux ? this.addModule('classification_head', parts.aux) : null;
    this.classes = parts.head.outChannels;
  }

  /** The normalisation the encoder's pretrained weights expect. */
  get mean(): [number, number, number] {
    return this.encoder.mean;
  }

  get std(): [number, number, number] {
    return this.encoder.std;
  }

  get inChannels(): number {
    return this.encoder.inChannels;
  }

  get numClasses(): number {
    return this.classes;
  }

  /** Input height and width must be multiples of this (1 when any size works). */
  get inputDivisor(): number {
    return this.requiresDivisibleInputShape ? this.encoder.outputStride : 1;
  }

  get fixedInputSize(): null {
    return null;
  }

  /** smp `check_input_shape`, plus the layout checks of this port. */
  checkInput(x: tf.Tensor, where = 'forward'): asserts x is tf.Tensor4D {
    const c = this.encoder.inChannels;
    check(
      x instanceof tf.Tensor && x.rank === 4 && x.shape[3] === c && x.shape.every((d) => d > 0),
      () =>
        `${this.arch}.${where}: expected a normalised NHWC batch [batch, height, width, ${c}], got ${x instanceof tf.Tensor ? shapeStr(x.shape) : typeof x}`,
    );
    check(x.dtype === 'float32', () => `${this.arch}.${where}: expected float32 input, got ${x.dtype}`);
    if (!this.requiresDivisibleInputShape) return;
    const os = this.encoder.outputStride;
    const [, h, w] = x.shape;
    if (h % os !== 0 || w % os !== 0) {
      const ph = Math.ceil(h / os) * os;
      const pw = Math.ceil(w / os) * os;
      check(
        false,
        () =>
          `${this.arch}.${where}: input height ${h} and width ${w} must be divisible by the output stride ${os}; ` +
          `pad the images to ${ph}x${pw} (height x width)`,
      );
    }
  }

  /** Encoder, decoder and heads; every intermediate (the caller disposes them all). */
  forwardIntermediates(x: tf.Tensor): SegmentationIntermediates {
    this.checkInput(x, 'forwardIntermediates');
    const aux = this.classification_head;
    const [features, decoder, logits, masks, labels] = tf.tidy(() => {
      const all = this.encoder.forward(x);
      // The input passes through untouched: clone it so that every returned tensor is owned by the caller.
      const feats = [tf.clone(all[0]), ...all.slice(1)];
      const dec = this.decoder.forward(feats);
      const lg = this.segmentation_head.logits(dec);
      const act = this.segmentation_head.activate(lg);
      const lab = aux ? aux.forward(feats.at(-1)!) : [];
      return [feats, dec, lg, act === lg ? tf.clone(lg) : act, lab] as const;
    }) as unknown as [tf.Tensor4D[], tf.Tensor4D, tf.Tensor4D, tf.Tensor, tf.Tensor | []];
    return { features, decoder, logits, masks, labels: aux ? (labels as tf.Tensor) : null };
  }

  /** Mask logits before the activation, `[B, H, W, classes]`. */
  forwardLogits(x: tf.Tensor): tf.Tensor4D {
    this.checkInput(x, 'forwardLogits');
    return tf.tidy(() => this.segmentation_head.logits(this.decoder.forward(this.encoder.forward(x))));
  }

  /** smp `forward` without the auxiliary output: the masks (activation applied). */
  forward(x: tf.Tensor): tf.Tensor {
    this.checkInput(x, 'forward');
    return tf.tidy(() => this.segmentation_head.forward(this.decoder.forward(this.encoder.forward(x))));
  }

  /** smp `forward` with `aux_params`: masks and the classification head's labels (null without one). */
  forwardWithAux(x: tf.Tensor): { masks: tf.Tensor; labels: tf.Tensor | null } {
    this.checkInput(x, 'forwardWithAux');
    const aux = this.classification_head;
    const [masks, labels] = tf.tidy(() => {
      const features = this.encoder.forward(x);
      const m = this.segmentation_head.forward(this.decoder.forward(features));
      return aux ? [m, aux.forward(features.at(-1)!)] : [m];
    });
    return { masks, labels: labels ?? null };
  }

  /** `MaskPredictor`: the mask logits for a normalised batch. */
  segmentLogits(x: tf.Tensor4D): tf.Tensor4D {
    return this.forwardLogits(x);
  }

  /** A class map (and probabilities on request) at the image's own size; see `predictMask`. */
  predictMask(image: ImageInput, options: PredictMaskOptions = {}): Promise<MaskPrediction> {
    return predictMask(this, image, options);
  }
}

/**
 * EfficientDet's own segmentation head (google/automl `efficientdet_keras.SegmentationHead`) on BiFPN
 * features, alone or next to the detection heads.
 */
import type { BiFpn } from '@effdet/bifpn';
import { createEfficientDet, type EffDetConfig, type EfficientDet, type ImageInput } from '@effdet/effdet';
import type { EfficientNet } from '@effdet/efficientnet';
import type { HeadNet } from '@effdet/heads';
import { BatchNorm2d, type BatchNormOptions, check, Module, ModuleList, shapeStr } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import { ConvTranspose2d } from './conv_transpose.js';
import { type MaskPrediction, type MaskPredictor, type PredictMaskOptions, predictMask } from './predict.js';

export interface EfficientDetSegmentationHeadOptions {
  /** Output classes (automl `seg_num_classes`, default 3). */
  numClasses?: number;
  /** Channels of the pyramid features and of the intermediate layers (automl uses `fpn_num_filters`). */
  numFilters: number;
  minLevel?: number;
  maxLevel?: number;
  act?: string;
  norm?: Omit<BatchNormOptions, 'act'>;
}

/**
 * automl's segmentation head: from the deepest level, `maxLevel - minLevel` times a 3x3 stride-2 transposed
 * conv (`con2d_ts.i`, no bias, TF SAME) -> BatchNorm (`con2d_t_bns.i`) -> act -> concat with the next shallower
 * level; then `head_transpose` (3x3, stride 2, bias) to the classes. Output: logits at stride
 * `2 ** (minLevel - 1)` (stride 4 for P3..P7). Names follow the Keras attributes; transposed-conv weights are
 * stored as PyTorch `ConvTranspose2d` `[in, out, kh, kw]`.
 */
export class EfficientDetSegmentationHead extends Module {
  readonly con2d_ts: ModuleList<ConvTranspose2d>;
  readonly con2d_t_bns: ModuleList<BatchNorm2d>;
  readonly head_transpose: ConvTranspose2d;
  readonly numClasses: number;
  readonly numFilters: number;
  readonly numLevels: number;

  constructor(options: EfficientDetSegmentationHeadOptions) {
    super();
    const where = 'EfficientDetSegmentationHead';
    const minLevel = options.minLevel ?? 3;
    const maxLevel = options.maxLevel ?? 7;
    check(
      Number.isInteger(minLevel) && Number.isInteger(maxLevel) && minLevel >= 1 && maxLevel > minLevel,
      () => `${where}: need integer levels with maxLevel > minLevel >= 1, got ${minLevel}..${maxLevel}`,
    );
    const f = options.numFilters;
    check(Number.isInteger(f) && f > 0, () => `${where}: numFilters must be a positive integer, got ${f}`);
    this.numClasses = options.numClasses ?? 3;
    check(
      Number.isInteger(this.numClasses) && this.numClasses > 0,
      () => `${where}: numClasses must be a positive integer, got ${options.numClasses}`,
    );
    this.numFilters = f;
    this.numLevels = maxLevel - minLevel + 1;
    const steps = maxLevel - minLevel;
    const convs: ConvTranspose2d[] = [];
    const bns: BatchNorm2d[] = [];
    for (let i = 0; i < steps; i++) {
      convs.push(new ConvTranspose2d(i === 0 ? f : 2 * f, f, 3, { stride: 2, padding: 'same', bias: false }));
      bns.push(new BatchNorm2d(f, { ...options.norm, act: options.act ?? 'swish' }));
    }
    this.con2d_ts = this.addModule('con2d_ts', new ModuleList(convs));
    this.con2d_t_bns = this.addModule('con2d_t_bns', new ModuleList(bns));
    this.head_transpose = this.addModule(
      'head_transpose',
      new ConvTranspose2d(steps > 0 ? 2 * f : f, this.numClasses, 3, {
        stride: 2,
        padding: 'same',
        bias: true,
      }),
    );
  }

  /** `feats`: the pyramid levels minLevel..maxLevel (shallow to deep), NHWC with `numFilters` channels. */
  forward(feats: tf.Tensor4D[]): tf.Tensor4D {
    const where = 'EfficientDetSegmentationHead.forward';
    check(
      Array.isArray(feats) && feats.length === this.numLevels,
      () =>
        `${where}: expected ${this.numLevels} pyramid levels, got ${Array.isArray(feats) ? feats.length : typeof feats}`,
    );
    feats.forEach((t, i) => {
      check(
        t.rank === 4 && t.shape[3] === this.numFilters,
        () => `${where}: level ${i} must be [batch, h, w, ${this.numFilters}], got ${shapeStr(t.shape)}`,
      );
    });
    return tf.tidy(() => {
      let x = feats[feats.length - 1];
      const skips = feats.slice(0, -1).reverse();
      this.con2d_ts.items.forEach((conv, i) => {
        const up = this.con2d_t_bns.items[i].forward(conv.forward(x));
        const skip = skips[i];
        check(
          up.shape[1] === skip.shape[1] && up.shape[2] === skip.shape[2],
          () =>
            `${where}: level sizes must halve exactly; upsampled ${shapeStr(up.shape)} does not match ${shapeStr(skip.shape)} ` +
            '(use an image size divisible by 2 ** maxLevel)',
        );
        x = tf.concat([up, skip], 3);
      });
      return this.head_transpose.forward(x);
    });
  }
}

export interface EfficientDetSegmenterOptions {
  /** Segmentation classes (default 3, automl's `seg_num_classes`). */
  numClasses?: number;
  /** Keep the class and box heads (automl `heads=['object_detection', 'segmentation']`; default false). */
  detection?: boolean;
  /** EfficientDet config overrides (image size, detection classes, ...). */
  config?: Partial<EffDetConfig>;
}

export interface EfficientDetSegmenterOutputs {
  /** Segmentation logits `[B, H / 4, W / 4, numClasses]` (for P3..P7). */
  seg: tf.Tensor4D;
  /** Detection head outputs per level, with `detection: true`. */
  classOut?: tf.Tensor4D[];
  boxOut?: tf.Tensor4D[];
}

/**
 * EfficientDet with the segmentation head: `backbone` -> `fpn` -> `seg_head` (and `class_net` / `box_net` with
 * `detection: true`). Detector state dicts (`backbone.*`, `fpn.*`, `class_net.*`, `box_net.*`) keep their names,
 * so an effdet checkpoint loads into it (`strict: false` leaves the new head as initialised).
 */
export class EfficientDetSegmenter extends Module implements MaskPredictor {
  readonly backbone: EfficientNet;
  readonly fpn: BiFpn;
  readonly class_net: HeadNet | null;
  readonly box_net: HeadNet | null;
  readonly seg_head: EfficientDetSegmentationHead;
  readonly config: Readonly<EffDetConfig>;

  constructor(nameOrConfig: string | Readonly<EffDetConfig>, options: EfficientDetSegmenterOptions = {}) {
    super();
    const known = ['numClasses', 'detection', 'config'];
    const unknown = Object.keys(options).filter((k) => !known.includes(k));
    check(
      unknown.length === 0,
      () =>
        `EfficientDetSegmenter: unknown option(s) ${unknown.join(', ')}; valid options: ${known.join(', ')}`,
    );
    const det: EfficientDet = createEfficientDet(nameOrConfig, options.config ?? {});
    this.config = det.config;
    this.backbone = this.addModule('backbone', det.backbone);
    this.fpn = this.addModule('fpn', det.fpn);
    if (options.detection) {
      this.class_net = this.addModule('class_net', det.class_net);
      this.box_net = this.addModule('box_net', det.box_net);
    } else {
      // Built lazily: nothing was allocated for the unused heads.
      det.class_net.dispose();
      det.box_net.dispose();
      this.class_net = null;
      this.box_net = null;
    }
    const c = this.config;
    this.seg_head = this.addModule(
      'seg_head',
      new EfficientDetSegmentationHead({
        numClasses: options.numClasses ?? 3,
        numFilters: c.fpnChannels,
        minLevel: c.minLevel,
        maxLevel: c.maxLevel,
        act: c.actType,
        norm: c.normKwargs,
      }),
    );
  }

  get numClasses(): number {
    return this.seg_head.numClasses;
  }

  get inChannels(): number {
    return 3;
  }

  get mean(): readonly [number, number, number] {
    return this.config.mean;
  }

  get std(): readonly [number, number, number] {
    return this.config.std;
  }

  get inputDivisor(): number {
    return 1;
  }

  get fixedInputSize(): readonly [number, number] {
    return this.config.imageSize;
  }

  private checkInput(x: tf.Tensor, where: string): asserts x is tf.Tensor4D {
    const [h, w] = this.config.imageSize;
    check(
      x instanceof tf.Tensor && x.rank === 4 && x.shape[1] === h && x.shape[2] === w && x.shape[3] === 3,
      () =>
        `EfficientDetSegmenter.${where}: expected a normalised batch [batch, ${h}, ${w}, 3] (the config's imageSize), ` +
        `got ${x instanceof tf.Tensor ? shapeStr(x.shape) : typeof x}`,
    );
    check(
      x.dtype === 'float32',
      () => `EfficientDetSegmenter.${where}: expected float32 input, got ${x.dtype}`,
    );
  }

  /** Segmentation logits, plus the detection outputs when the detection heads are present. */
  forward(x: tf.Tensor): EfficientDetSegmenterOutputs {
    this.checkInput(x, 'forward');
    const [seg, classOut, boxOut] = tf.tidy(() => {
      const feats = this.fpn.forward(this.backbone.features(x));
      const s = this.seg_head.forward(feats);
      if (!this.class_net || !this.box_net) return [s, [], []];
      return [s, this.class_net.forward(feats), this.box_net.forward(feats)];
    }) as [tf.Tensor4D, tf.Tensor4D[], tf.Tensor4D[]];
    return this.class_net ? { seg, classOut, boxOut } : { seg };
  }

  /** `MaskPredictor`: the stride-4 segmentation logits alone. */
  segmentLogits(x: tf.Tensor4D): tf.Tensor4D {
    this.checkInput(x, 'segmentLogits');
    return tf.tidy(() => this.seg_head.forward(this.fpn.forward(this.backbone.features(x))));
  }

  /** A class map at the image's own size (the image is resized to the config's imageSize). */
  predictMask(image: ImageInput, options: PredictMaskOptions = {}): Promise<MaskPrediction> {
    return predictMask(this, image, options);
  }
}

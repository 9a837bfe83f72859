import {
  type Activation,
  BatchNorm2d,
  type BatchNormOptions,
  ConvNormAct,
  check,
  constantInit,
  convBnAct,
  getActivation,
  type Initializer,
  Module,
  ModuleList,
  type PaddingSpec,
  randomNormal,
  SeparableConvNormAct,
  shapeStr,
  zerosInit,
} from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';

export interface HeadOptions {
  /** Pyramid levels the head runs on (one BatchNorm set per level). */
  numLevels: number;
  fpnChannels: number;
  /** Conv repeats before the prediction conv (effdet `box_class_repeats`). */
  repeats: number;
  /** Outputs per anchor: number of classes, or 4 for boxes. */
  numOutputs: number;
  /** Anchors per location: numScales x aspect ratios. */
  numAnchors: number;
  padding: PaddingSpec;
  act: string | Activation;
  norm: Omit<BatchNormOptions, 'act'>;
  separableConv: boolean;
  /** Bias on the repeat convs (TF-ported weights). */
  redundantBias: boolean;
  /**
   * BatchNorm list layout: `false` (default, original weights) = `bn_rep.{repeat}.{level}.bn.*`;
   * `true` = `bn_rep.{level}.{repeat}.*` (effdet `head_bn_level_first`).
   */
  bnLevelFirst: boolean;
  /**
   * Initial bias of the prediction conv: effdet uses -log((1 - 0.01) / 0.01) for class heads (focal loss
   * prior) and 0 for box heads.
   */
  predictBiasInit?: number;
}

/** Holder named `bn` (the repeat-first layout wraps each BatchNorm in a Sequential with one child `bn`). */
class BnHolder extends Module {
  readonly bn: BatchNorm2d;
  constructor(bn: BatchNorm2d) {
    super();
    this.bn = this.addModule('bn', bn);
  }
}

/** effdet's head conv init: N(0, sqrt(1 / fan_in)) ("variance scaling"), fan_in = in/groups * kh * kw. */
function varianceScaling(fanIn: number): Initializer {
  return (shape) => randomNormal(shape, 0, Math.sqrt(1 / Math.max(1, fanIn)));
}

/**
 * Class or box head (effdet `HeadNet`): `repeats` convs shared by every level, each followed by a BatchNorm
 * specific to (repeat, level) and the activation, then a prediction conv with `numOutputs * numAnchors`
 * channels. Output channel = anchor * numOutputs + output, NHWC.
 */
export class HeadNet extends Module {
  readonly conv_rep: ModuleList<SeparableConvNormAct | ConvNormAct>;
  readonly bn_rep: ModuleList<ModuleList<BnHolder | BatchNorm2d>>;
  readonly predict: SeparableConvNormAct | ConvNormAct;
  readonly act: Activation;
  /** bns[level][repeat] */
  private readonly bns: BatchNorm2d[][];

  constructor(readonly options: HeadOptions) {
    super();
    const o = options;
    check(
      Number.isInteger(o.numOutputs) && o.numOutputs > 0,
      () => `HeadNet: numOutputs must be a positive integer, got ${o.numOutputs}`,
    );
    this.act = getActivation(o.act);
    const make = (out: number, bias: boolean) =>
      o.separableConv
        ? new SeparableConvNormAct(o.fpnChannels, out, 3, { padding: o.padding, bias, norm: false })
        : new ConvNormAct(o.fpnChannels, out, 3, { padding: o.padding, bias, norm: false });
    this.conv_rep = this.addModule('conv_rep', new ModuleList<SeparableConvNormAct | ConvNormAct>());
    for (let r = 0; r < o.repeats; r++) this.conv_rep.push(make(o.fpnChannels, o.redundantBias));
    this.bn_rep = this.addModule('bn_rep', new ModuleList<ModuleList<BnHolder | BatchNorm2d>>());
    this.bns = Array.from({ length: o.numLevels }, () => [] as BatchNorm2d[]);
    const outer = o.bnLevelFirst ? o.numLevels : o.repeats;
    const inner = o.bnLevelFirst ? o.repeats : o.numLevels;
    for (let i = 0; i < outer; i++) {
      const list = this.bn_rep.push(new ModuleList<BnHolder | BatchNorm2d>());
      for (let j = 0; j < inner; j++) {
        // The head activation lives in the BN (timm BatchNormAct2d semantics) so folding can fuse it.
        const bn = new BatchNorm2d(o.fpnChannels, { ...o.norm, act: this.act });
        list.push(o.bnLevelFirst ? bn : new BnHolder(bn));
        const [level, rep] = o.bnLevelFirst ? [i, j] : [j, i];
        this.bns[level][rep] = bn;
      }
    }
    this.predict = this.addModule('predict', make(o.numOutputs * o.numAnchors, true));
    this.initWeights(o.predictBiasInit ?? 0);
  }

  /** effdet `_init_weight` for heads: variance-scaling normal convs, zero biases, prior on the predict bias. */
  private initWeights(predictBias: number): void {
    for (const conv of [...this.conv_rep.items, this.predict]) {
      const convs = conv instanceof SeparableConvNormAct ? [conv.conv_dw, conv.conv_pw] : [conv.conv];
      for (const c of convs) {
        const [kh, kw, cin] = c.weight.shape;
        if (conv instanceof SeparableConvNormAct)
          c.weight.reinitialize(varianceScaling(kh * kw * (c.depthwise ? 1 : cin)));
        else c.weight.reinitialize((shape) => randomNormal(shape, 0, 0.01));
        c.bias?.reinitialize(zerosInit);
      }
    }
    const last = this.predict instanceof SeparableConvNormAct ? this.predict.conv_pw : this.predict.conv;
    last.bias?.reinitialize(constantInit(predictBias));
  }

  /** The prediction for one level `[B, h, w, C]` -> `[B, h, w, numAnchors * numOutputs]`. */
  forwardLevel(x: tf.Tensor4D, level: number): tf.Tensor4D {
    check(
      x.rank === 4 && x.shape[3] === this.options.fpnChannels,
      () =>
        `HeadNet.forward: level ${level} must be [batch, h, w, ${this.options.fpnChannels}], got ${shapeStr(x.shape)}`,
    );
    return tf.tidy(() => {
      let y = x;
      this.conv_rep.items.forEach((conv, r) => {
        const bn = this.bns[level][r];
        // conv (no norm inside) -> per-level BN + act; the BN folds into the conv's pointwise part.
        if (conv instanceof SeparableConvNormAct) {
          y = convBnAct(conv.conv_pw, bn, conv.conv_dw.forward(y), this.useFolded);
        } else {
          y = convBnAct(conv.conv, bn, y, this.useFolded);
        }
      });
      return this.predict.forward(y);
    });
  }

  forward(levels: tf.Tensor4D[]): tf.Tensor4D[] {
    check(
      levels.length === this.options.numLevels,
      () => `HeadNet.forward: expected ${this.options.numLevels} levels, got ${levels.length}`,
    );
    return tf.tidy(() => levels.map((x, l) => this.forwardLevel(x, l)));
  }
}

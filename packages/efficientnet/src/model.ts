import {
  type Activation,
  BatchNorm2d,
  type BatchNormOptions,
  type Conv2d,
  ConvBnAct,
  check,
  convBnAct,
  createConv2d,
  DepthwiseSeparable,
  EdgeResidual,
  type EfficientBlock,
  type GlobalPoolType,
  getActivation,
  globalPool,
  InvertedResidual,
  Linear,
  Module,
  ModuleList,
  makeDivisible,
  type PaddingSpec,
  shapeStr,
} from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import type { BlockArgs } from './arch.js';

/** One feature map a backbone can return (timm `FeatureInfo`). */
export interface FeatureInfo {
  /** Channels of the feature map. */
  channels: number;
  /** Input size / feature size (the output stride at that point). */
  reduction: number;
  /** Module path of the tap, as timm names it (`blocks.2`, `bn1`, `blocks.5.0.conv_pwl`). */
  module: string;
  /** Stage number (0 = stem). */
  stage: number;
}

/** Everything that defines an EfficientNet network (already scaled: resolved from a registry entry). */
export interface EfficientNetArch {
  blockArgs: BlockArgs[][];
  stemSize: number;
  /** Channels of the classifier's head conv; 0 = no head conv. */
  numFeatures: number;
  /** Channel rounding for block outputs (multiplier applied). */
  roundChannels: (c: number) => number;
  act: string;
  padding: PaddingSpec;
  bnEps: number;
  bnMomentum?: number;
}

export interface EfficientNetOptions {
  /** Classifier classes (default 1000); 0 keeps pooled features as the output. */
  numClasses?: number;
  inChannels?: number;
  dropRate?: number;
  dropPathRate?: number;
  globalPool?: GlobalPoolType;
  /** 32 (default), 16 or 8: later strides become dilations as in timm. */
  outputStride?: 8 | 16 | 32;
  /** Build the feature extractor (no head conv, no classifier). */
  featuresOnly?: boolean;
  /** Feature indices to return (default all: 0..4); negative indices count from the end. */
  outIndices?: number[];
  /** `bottleneck` (block outputs, default) or `expansion` (inputs of the next projection conv). */
  featureLocation?: 'bottleneck' | 'expansion';
}

interface FeatureTap {
  info: FeatureInfo;
  stage: number;
  /** Block index inside the stage; -1 = whole stage output; -2 = the stem. */
  block: number;
  expansion: boolean;
}

/**
 * EfficientNet family network (timm `EfficientNet` / `EfficientNetFeatures`), NHWC, with timm's module
 * names: `conv_stem`, `bn1`, `blocks.S.B.*`, and for classifiers `conv_head`, `bn2`, `classifier`.
 */
export class EfficientNet extends Module {
  readonly conv_stem: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly blocks: ModuleList<ModuleList<EfficientBlock>>;
  readonly conv_head: Conv2d | null = null;
  readonly bn2: BatchNorm2d | null = null;
  readonly classifier: Linear | null = null;
  readonly dropRate: number;
  /** Every feature the network can return, in order (timm `feature_info` before index selection). */
  readonly allFeatureInfo: FeatureInfo[];
  /** The features this model returns (selected by `outIndices`) when `featuresOnly`. */
  readonly featureInfo: FeatureInfo[];
  readonly featuresOnly: boolean;
  readonly outIndices: number[];
  readonly numClasses: number;
  readonly numFeatures: number;
  readonly inChannels: number;
  readonly globalPoolType: GlobalPoolType;
  private readonly taps: FeatureTap[];

  constructor(
    readonly name: string,
    arch: EfficientNetArch,
    options: EfficientNetOptions = {},
  ) {
    super();
    const inChannels = options.inChannels ?? 3;
    const outputStride = options.outputStride ?? 32;
    check(
      [8, 16, 32].includes(outputStride),
      () => `EfficientNet(${name}): outputStride must be 8, 16 or 32, got ${outputStride}`,
    );
    check(
      Number.isInteger(inChannels) && inChannels > 0,
      () => `EfficientNet(${name}): inChannels must be a positive integer, got ${inChannels}`,
    );
    const location = options.featureLocation ?? 'bottleneck';
    check(
      location === 'bottleneck' || location === 'expansion',
      () =>
        `EfficientNet(${name}): featureLocation must be 'bottleneck' or 'expansion', got '${String(location)}'`,
    );
    this.inChannels = inChannels;
    this.featuresOnly = options.featuresOnly ?? false;
    const norm: Omit<BatchNormOptions, 'act'> = { eps: arch.bnEps, momentum: arch.bnMomentum };
    const act = getActivation(arch.act);

    this.conv_stem = this.addModule(
      'conv_stem',
      createConv2d(inChannels, arch.stemSize, 3, { stride: 2, padding: arch.padding }),
    );
    this.bn1 = this.addModule('bn1', new BatchNorm2d(arch.stemSize, { ...norm, act }));

    // Builder (timm EfficientNetBuilder): strides turn into dilation past the output stride; features are
    // tapped at the end of every stage followed by a stride-2 stage, and at the last stage.
    const taps: FeatureTap[] = [];
    let inCh = arch.stemSize;
    let currentStride = 2;
    let dilation = 1;
    const totalBlocks = arch.blockArgs.reduce((n, s) => n + s.length, 0);
    let blockIdx = 0;
    if (arch.blockArgs[0]?.[0]?.stride > 1) {
      taps.push({
        info: { channels: arch.stemSize, reduction: currentStride, module: 'bn1', stage: 0 },
        stage: -1,
        block: -2,
        expansion: false,
      });
    }
    const stages: ModuleList<EfficientBlock>[] = [];
    arch.blockArgs.forEach((stageArgs, s) => {
      const blocks: EfficientBlock[] = [];
      stageArgs.forEach((ba0, b) => {
        const ba = { ...ba0 };
        if (b > 0) ba.stride = 1;
        const lastBlock = b === stageArgs.length - 1;
        const nextStage = arch.blockArgs[s + 1];
        const extract = lastBlock && (!nextStage || nextStage[0].stride > 1);
        let nextDilation = dilation;
        let stride = ba.stride;
        if (stride > 1) {
          const nextOutputStride = currentStride * stride;
          if (nextOutputStride > outputStride) {
            nextDilation = dilation * stride;
            stride = 1;
          } else {
            currentStride = nextOutputStride;
          }
        }
        const block = this.makeBlock(ba, inCh, stride, dilation, {
          padding: arch.padding,
          norm,
          act: ba.act ? getActivation(ba.act) : act,
          dropPathRate: ((options.dropPathRate ?? 0) * blockIdx) / totalBlocks,
          round: arch.roundChannels,
        });
        dilation = nextDilation;
        inCh = block.outChannels;
        blocks.push(block);
        if (extract) {
          const fi = block.featureInfo(location);
          taps.push({
            info: {
              channels: fi.channels,
              reduction: currentStride,
              module: fi.module ? `blocks.${s}.${b}.${fi.module}` : `blocks.${s}`,
              stage: s + 1,
            },
            stage: s,
            block: fi.module ? b : -1,
            expansion: !!fi.module,
          });
        }
        blockIdx++;
      });
      stages.push(new ModuleList(blocks));
    });
    this.blocks = this.addModule('blocks', new ModuleList(stages));
    this.allFeatureInfo = taps.map((t) => t.info);

    const n = taps.length;
    const outIndices = (options.outIndices ?? taps.map((_, i) => i)).map((i) => (i < 0 ? n + i : i));
    check(
      outIndices.length > 0 && outIndices.every((i) => Number.isInteger(i) && i >= 0 && i < n),
      () =>
        `EfficientNet(${name}): outIndices must be integers in [0, ${n - 1}] (or negative), got [${options.outIndices}]`,
    );
    check(
      outIndices.every((v, i) => i === 0 || v > outIndices[i - 1]),
      () => `EfficientNet(${name}): outIndices must be strictly increasing, got [${options.outIndices}]`,
    );
    this.outIndices = outIndices;
    this.taps = outIndices.map((i) => taps[i]);
    this.featureInfo = this.taps.map((t) => t.info);

    this.globalPoolType = options.globalPool ?? 'avg';
    this.dropRate = options.dropRate ?? 0;
    check(
      this.dropRate >= 0 && this.dropRate < 1,
      () => `EfficientNet(${name}): dropRate must be in [0, 1), got ${this.dropRate}`,
    );
    if (this.featuresOnly) {
      this.numFeatures = inCh;
      this.numClasses = 0;
    } else {
      const headChs = arch.numFeatures > 0 ? arch.numFeatures : inCh;
      if (arch.numFeatures > 0) {
        this.conv_head = this.addModule(
          'conv_head',
          createConv2d(inCh, headChs, 1, { padding: arch.padding }),
        );
        this.bn2 = this.addModule('bn2', new BatchNorm2d(headChs, { ...norm, act }));
      }
      this.numFeatures = headChs;
      this.numClasses = options.numClasses ?? 1000;
      check(
        Number.isInteger(this.numClasses) && this.numClasses >= 0,
        () => `EfficientNet(${name}): numClasses must be a non-negative integer, got ${options.numClasses}`,
      );
      const poolMult = this.globalPoolType === 'catavgmax' ? 2 : 1;
      if (this.numClasses > 0) {
        this.classifier = this.addModule('classifier', new Linear(headChs * poolMult, this.numClasses));
      }
    }
  }

  private makeBlock(
    ba: BlockArgs,
    inCh: number,
    stride: number,
    dilation: number,
    o: {
      padding: PaddingSpec;
      norm: Omit<BatchNormOptions, 'act'>;
      act: Activation;
      dropPathRate: number;
      round: (c: number) => number;
    },
  ): EfficientBlock {
    const outCh = o.round(ba.outChannels);
    const common = {
      stride,
      dilation,
      padding: o.padding,
      act: o.act,
      norm: o.norm,
      dropPathRate: o.dropPathRate,
      noSkip: ba.noSkip,
      // timm sizes the SE from the block input: the ratio is divided by the expansion (se_from_exp=False).
      seRatio: ba.seRatio
        ? ba.seRatio / (ba.blockType === 'ds' || ba.blockType === 'dsa' ? 1 : ba.expRatio)
        : 0,
    };
    switch (ba.blockType) {
      case 'ds':
      case 'dsa':
        return new DepthwiseSeparable(inCh, outCh, {
          ...common,
          dwKernelSize: ba.kernelSize,
          pwKernelSize: ba.pwKernelSize,
          pwAct: ba.pwAct,
        });
      case 'ir':
        return new InvertedResidual(inCh, outCh, {
          ...common,
          dwKernelSize: ba.kernelSize,
          expKernelSize: ba.expKernelSize,
          pwKernelSize: ba.pwKernelSize,
          midChannels: makeDivisible(inCh * ba.expRatio),
        });
      case 'er': {
        const forced = ba.forceInChannels > 0 ? o.round(ba.forceInChannels) : 0;
        return new EdgeResidual(inCh, outCh, {
          ...common,
          expKernelSize: ba.expKernelSize,
          pwKernelSize: ba.pwKernelSize,
          midChannels: makeDivisible((forced || inCh) * ba.expRatio),
        });
      }
      case 'cn':
        return new ConvBnAct(inCh, outCh, ba.kernelSize, { ...common, skip: ba.skip === true });
    }
  }

  /** Validates an NHWC image batch for `where`. */
  private checkInput(x: tf.Tensor, where: string): asserts x is tf.Tensor4D {
    check(x instanceof tf.Tensor, () => `${this.name}.${where}: expected a tf.Tensor, got ${typeof x}`);
    check(
      x.rank === 4 && x.shape[3] === this.inChannels && x.shape.every((d) => (d ?? 0) > 0),
      () =>
        `${this.name}.${where}: expected input [batch, height, width, ${this.inChannels}] (NHWC), got ${shapeStr(x.shape)}`,
    );
    check(x.dtype === 'float32', () => `${this.name}.${where}: expected a float32 tensor, got ${x.dtype}`);
  }

  private stem(x: tf.Tensor4D): tf.Tensor4D {
    return convBnAct(this.conv_stem, this.bn1, x, this.useFolded);
  }

  /**
   * The selected feature maps (NHWC), one per `featureInfo` entry, shallow to deep. Works on classifier models
   * too. The caller disposes the returned tensors.
   */
  forwardIntermediates(x: tf.Tensor): tf.Tensor4D[] {
    this.checkInput(x, 'features');
    return tf.tidy(() => {
      const out: tf.Tensor4D[] = [];
      let y = this.stem(x);
      let t = 0;
      if (this.taps[t]?.block === -2) {
        out.push(y);
        t++;
      }
      const lastStage = this.taps[this.taps.length - 1]?.stage ?? -1;
      for (let s = 0; s <= lastStage; s++) {
        const stage = this.blocks.items[s].items;
        for (let b = 0; b < stage.length; b++) {
          const tap = this.taps[t];
          if (tap && tap.stage === s && tap.expansion && tap.block === b) {
            out.push(stage[b].forwardExpansion(y));
            t++;
          }
          y = stage[b].forward(y);
        }
        const tap = this.taps[t];
        if (tap && tap.stage === s && !tap.expansion) {
          out.push(y);
          t++;
        }
      }
      return out;
    });
  }

  /** Feature extraction: the maps listed in `featureInfo`. Alias of `forwardIntermediates`. */
  features(x: tf.Tensor): tf.Tensor4D[] {
    return this.forwardIntermediates(x);
  }

  /** Stem, every block, and (classifiers) the head conv: the unpooled final map `[B, h, w, numFeatures]`. */
  forwardFeatures(x: tf.Tensor): tf.Tensor4D {
    this.checkInput(x, 'forwardFeatures');
    return tf.tidy(() => {
      let y = this.stem(x);
      for (const stage of this.blocks.items) for (const blk of stage.items) y = blk.forward(y);
      if (this.conv_head && this.bn2) y = convBnAct(this.conv_head, this.bn2, y, this.useFolded);
      return y;
    });
  }

  /** Global pool -> dropout -> classifier. `preLogits` returns the pooled features before the classifier. */
  forwardHead(x: tf.Tensor, options: { preLogits?: boolean } = {}): tf.Tensor2D {
    check(
      x.rank === 4 && x.shape[3] === this.numFeatures,
      () =>
        `${this.name}.forwardHead: expected [batch, height, width, ${this.numFeatures}], got ${shapeStr(x.shape)}`,
    );
    return tf.tidy(() => {
      let pooled = globalPool(x as tf.Tensor4D, this.globalPoolType || 'avg') as tf.Tensor2D;
      if (this.training && this.dropRate > 0) pooled = tf.dropout(pooled, this.dropRate) as tf.Tensor2D;
      if (options.preLogits || !this.classifier) return pooled;
      return this.classifier.forward(pooled);
    });
  }

  /** Classifier: logits `[B, numClasses]` (pooled features when numClasses is 0). */
  forward(x: tf.Tensor): tf.Tensor2D {
    check(
      !this.featuresOnly,
      () => `${this.name}.forward: this model was built with featuresOnly; call features(x) instead`,
    );
    return tf.tidy(() => {
      const f = this.forwardFeatures(x);
      return this.forwardHead(f);
    });
  }

  /** Replaces the classifier for `numClasses` classes (new random weights); 0 removes it. */
  resetClassifier(numClasses: number, globalPoolType?: GlobalPoolType): void {
    check(!this.featuresOnly, () => `${this.name}.resetClassifier: a featuresOnly model has no classifier`);
    check(
      Number.isInteger(numClasses) && numClasses >= 0,
      () => `${this.name}.resetClassifier: numClasses must be a non-negative integer, got ${numClasses}`,
    );
    const self = this as unknown as {
      classifier: Linear | null;
      numClasses: number;
      globalPoolType: GlobalPoolType;
    };
    if (globalPoolType !== undefined) self.globalPoolType = globalPoolType;
    this.replaceClassifier(
      numClasses > 0
        ? new Linear(this.numFeatures * (self.globalPoolType === 'catavgmax' ? 2 : 1), numClasses)
        : null,
    );
    self.numClasses = numClasses;
  }

  private replaceClassifier(next: Linear | null): void {
    const self = this as unknown as { classifier: Linear | null };
    self.classifier?.dispose();
    this.removeModule('classifier');
    self.classifier = next ? this.addModule('classifier', next) : null;
  }
}

import { BiFpn } from '@effdet/bifpn';
import { createModel, type EfficientNet } from '@effdet/efficientnet';
import { HeadNet } from '@effdet/heads';
import { check, Module, shapeStr } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import {
  createEfficientDetConfig,
  type EffDetConfig,
  getEfficientDetConfig,
  numAnchors,
  numLevels,
} from './config.js';

/** Raw network outputs per pyramid level (NHWC): class logits `[B,h,w,A*C]` and box codes `[B,h,w,A*4]`. */
export interface EfficientDetOutputs {
  classOut: tf.Tensor4D[];
  boxOut: tf.Tensor4D[];
}

/** Every intermediate the parity fixtures hold. */
export interface EfficientDetIntermediates extends EfficientDetOutputs {
  backbone: tf.Tensor4D[];
  /** Extra levels made from the last backbone level (P6, P7, ...). */
  fpnExtra: tf.Tensor4D[];
  /** Outputs of every node of the first pyramid cell, in node order. */
  fpnCell0Nodes: tf.Tensor4D[];
  fpn: tf.Tensor4D[];
}

/** -log((1 - 0.01) / 0.01): the focal-loss prior on the class prediction bias. */
const CLASS_PRIOR_BIAS = -Math.log((1 - 0.01) / 0.01);

/**
 * EfficientDet: EfficientNet backbone -> feature pyramid -> class and box heads (effdet `EfficientDet`),
 * with the reference's state-dict names (`backbone.*`, `fpn.*`, `class_net.*`, `box_net.*`). The network is
 * pure: anchors, decoding, NMS and the loss live outside it.
 */
export class EfficientDet extends Module {
  readonly backbone: EfficientNet;
  readonly fpn: BiFpn;
  class_net: HeadNet;
  box_net: HeadNet;
  config: Readonly<EffDetConfig>;

  constructor(config: Readonly<EffDetConfig>) {
    super();
    this.config = config;
    this.backbone = this.addModule(
      'backbone',
      createModel(config.backboneName, {
        featuresOnly: true,
        outIndices: config.backboneIndices ?? [2, 3, 4],
        dropPathRate: config.backboneArgs.dropPathRate,
        featureLocation: config.backboneArgs.featureLocation,
      }),
    );
    this.fpn = this.addModule(
      'fpn',
      new BiFpn(
        {
          minLevel: config.minLevel,
          maxLevel: config.maxLevel,
          fpnChannels: config.fpnChannels,
          cellRepeats: config.fpnCellRepeats,
          imageSize: [...config.imageSize],
          fpnName: config.fpnName,
          padding: config.padType,
          downsampleType: config.downsampleType,
          upsampleType: config.upsampleType,
          act: config.actType,
          norm: config.normKwargs,
          separableConv: config.separableConv,
          applyResampleBn: config.applyResampleBn,
          convBnReluPattern: config.convBnReluPattern,
          redundantBias: config.redundantBias,
        },
        this.backbone.featureInfo,
      ),
    );
    this.class_net = this.addModule('class_net', this.makeHead(config.numClasses, CLASS_PRIOR_BIAS));
    this.box_net = this.addModule('box_net', this.makeHead(4, 0));
  }

  private makeHead(numOutputs: number, predictBiasInit: number): HeadNet {
    const c = this.config;
    return new HeadNet({
      numLevels: numLevels(c),
      fpnChannels: c.fpnChannels,
      repeats: c.boxClassRepeats,
      numOutputs,
      numAnchors: numAnchors(c),
      padding: c.padType,
      act: c.headActType || c.actType,
      norm: c.normKwargs,
      separableConv: c.separableConv,
      redundantBias: c.redundantBias,
      bnLevelFirst: c.headBnLevelFirst,
      predictBiasInit,
    });
  }

  /** Validates a normalised NHWC batch against the configured image size. */
  checkInput(x: tf.Tensor, where: string): asserts x is tf.Tensor4D {
    const [h, w] = this.config.imageSize;
    check(
      x instanceof tf.Tensor &&
        x.rank === 4 &&
        x.shape[1] === h &&
        x.shape[2] === w &&
        x.shape[3] === 3 &&
        x.shape[0] > 0,
      () =>
        `${this.config.name}.${where}: expected a normalised image batch [batch, ${h}, ${w}, 3] (NHWC, the model's ` +
        `imageSize), got ${x instanceof tf.Tensor ? shapeStr(x.shape) : typeof x}`,
    );
    check(
      x.dtype === 'float32',
      () => `${this.config.name}.${where}: expected float32 input, got ${x.dtype}`,
    );
  }

  /** Class logits and box codes per level. The caller disposes the outputs. */
  forward(x: tf.Tensor): EfficientDetOutputs {
    this.checkInput(x, 'forward');
    return tf.tidy(() => {
      const feats = this.fpn.forward(this.backbone.features(x));
      return { classOut: this.class_net.forward(feats), boxOut: this.box_net.forward(feats) };
    });
  }

  /** Everything a parity check compares (backbone, extra levels, first-cell nodes, pyramid, heads). */
  forwardIntermediates(x: tf.Tensor): EfficientDetIntermediates {
    this.checkInput(x, 'forwardIntermediates');
    return tf.tidy(() => {
      const backbone = this.backbone.features(x);
      const inputs = this.fpn.forwardInputs(backbone);
      const fpnExtra = inputs.slice(backbone.length);
      const fpnCell0Nodes = this.fpn.cell.items[0].forwardNodes(inputs);
      const fpn = this.fpn.forward(backbone);
      return {
        backbone,
        fpnExtra,
        fpnCell0Nodes,
        fpn,
        classOut: this.class_net.forward(fpn),
        boxOut: this.box_net.forward(fpn),
      };
    });
  }

  /**
   * Rebuilds the heads for a new class count and/or anchor layout (effdet `reset_head`), keeping backbone and
   * pyramid weights. New heads start from effdet's initialisation.
   */
  resetHead(options: {
    numClasses?: number;
    aspectRatios?: EffDetConfig['aspectRatios'];
    numScales?: number;
  }): void {
    const { numClasses, aspectRatios, numScales } = options;
    const resetBox = aspectRatios !== undefined || numScales !== undefined;
    const resetClass = numClasses !== undefined || resetBox;
    this.config = createEfficientDetConfig(this.config as EffDetConfig, {
      ...(numClasses !== undefined ? { numClasses } : {}),
      ...(aspectRatios !== undefined ? { aspectRatios } : {}),
      ...(numScales !== undefined ? { numScales } : {}),
    });
    if (resetClass) {
      this.class_net.dispose();
      this.removeModule('class_net');
      this.class_net = this.addModule('class_net', this.makeHead(this.config.numClasses, CLASS_PRIOR_BIAS));
      // Keep state-dict order: class_net before box_net.
      if (!resetBox) {
        this.removeModule('box_net');
        this.addModule('box_net', this.box_net);
      }
    }
    if (resetBox) {
      this.box_net.dispose();
      this.removeModule('box_net');
      this.box_net = this.addModule('box_net', this.makeHead(4, 0));
    }
    this.class_net.training = this.training;
    this.box_net.training = this.training;
  }
}

/** Builds the EfficientDet network of a registered config (or a config object), with lazy weights. */
export function createEfficientDet(
  nameOrConfig: string | Readonly<EffDetConfig>,
  overrides: Partial<EffDetConfig> = {},
): EfficientDet {
  const cfg =
    typeof nameOrConfig === 'string'
      ? getEfficientDetConfig(nameOrConfig, overrides)
      : createEfficientDetConfig(nameOrConfig as EffDetConfig, overrides);
  return new EfficientDet(cfg);
}

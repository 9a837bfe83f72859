import {
  type Activation,
  type BatchNormOptions,
  Conv2d,
  ConvNormAct,
  check,
  getActivation,
  Module,
  ModuleDict,
  ModuleList,
  onesInit,
  type PaddingSpec,
  type Parameter,
  Pool2d,
  randomUniform,
  resize,
  SeparableConvNormAct,
  shapeStr,
} from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import { type FpnTopology, getFpnConfig } from './topology.js';

/**
 * Feature map sizes `[h, w]` for levels 0..maxLevel (index = level): level 0 is `imageSize`, and each level
 * halves with `(s - 1) // 2 + 1` (effdet `get_feat_sizes`, automl `utils.get_feat_sizes`).
 */
export function featSizes(imageSize: readonly [number, number], maxLevel: number): [number, number][] {
  check(
    Array.isArray(imageSize) &&
      imageSize.length === 2 &&
      imageSize.every((v) => Number.isInteger(v) && v > 0),
    () => `featSizes: imageSize must be [height, width] positive integers, got ${JSON.stringify(imageSize)}`,
  );
  check(
    Number.isInteger(maxLevel) && maxLevel >= 0,
    () => `featSizes: maxLevel must be an integer >= 0, got ${String(maxLevel)}`,
  );
  const sizes: [number, number][] = [[imageSize[0], imageSize[1]]];
  for (let l = 1; l <= maxLevel; l++) {
    const [h, w] = sizes[l - 1];
    sizes.push([Math.floor((h - 1) / 2) + 1, Math.floor((w - 1) / 2) + 1]);
  }
  return sizes;
}

export type ResampleType = 'max' | 'avg' | 'nearest' | 'bilinear';

/** Everything that shapes a feature pyramid; the effdet config fields of the same names, camelCased. */
export interface FpnOptions {
  minLevel: number;
  maxLevel: number;
  fpnChannels: number;
  cellRepeats: number;
  /** Model input `[height, width]`: fixes every resample size (the geometry is static, as in effdet). */
  imageSize: [number, number];
  /** A registered topology name (`bifpn_fa`, `bifpn_sum`, `bifpn_attn`, `pan_fa`, `qufpn_fa`, ...). */
  fpnName?: string | null;
  /** Or an explicit topology (wins over fpnName). */
  fpnConfig?: FpnTopology;
  padding: PaddingSpec;
  downsampleType: ResampleType;
  upsampleType: ResampleType;
  act: string;
  norm: Omit<BatchNormOptions, 'act'>;
  separableConv: boolean;
  applyResampleBn: boolean;
  /** effdet `conv_bn_relu_pattern`: act after the conv's BN instead of before the conv. */
  convBnReluPattern: boolean;
  /** Bias on convs followed by BN (the TF-ported weights have them). */
  redundantBias: boolean;
}

/** Channels and spatial size of a feature the pyramid consumes or produces. */
interface FeatSpec {
  channels: number;
  size: [number, number];
}

/**
 * Resamples a feature map to another level (effdet `ResampleFeatureMap`): optional 1x1 conv (+BN) to the
 * pyramid width (`conv`), then max/avg pool or interpolation down, or interpolation up, to the target size.
 */
export class ResampleFeatureMap extends Module {
  readonly conv: ConvNormAct | null = null;
  readonly downsample: Pool2d | null = null;
  private readonly interpolate: { size: [number, number]; mode: 'nearest' | 'bilinear' } | null = null;

  constructor(
    readonly input: FeatSpec,
    readonly outChannels: number,
    readonly outputSize: [number, number],
    o: Pick<
      FpnOptions,
      'padding' | 'downsampleType' | 'upsampleType' | 'norm' | 'applyResampleBn' | 'redundantBias'
    >,
  ) {
    super();
    if (input.channels !== outChannels) {
      this.conv = this.addModule(
        'conv',
        new ConvNormAct(input.channels, outChannels, 1, {
          padding: o.padding,
          norm: o.applyResampleBn ? o.norm : false,
          bias: !o.applyResampleBn || o.redundantBias,
        }),
      );
    }
    const [ih, iw] = input.size;
    const [oh, ow] = outputSize;
    if (ih > oh && iw > ow) {
      if (o.downsampleType === 'max' || o.downsampleType === 'avg') {
        const sh = Math.floor((ih - 1) / oh) + 1;
        const sw = Math.floor((iw - 1) / ow) + 1;
        check(
          sh === sw,
          () =>
            `ResampleFeatureMap: ${ih}x${iw} -> ${oh}x${ow} needs unequal pool strides (${sh}, ${sw}); not supported`,
        );
        this.downsample = this.addModule('downsample', new Pool2d(o.downsampleType, sh + 1, sh, o.padding));
      } else {
        this.interpolate = { size: [oh, ow], mode: o.downsampleType };
      }
    } else if (ih < oh || iw < ow) {
      const mode = o.upsampleType;
      check(
        mode === 'nearest' || mode === 'bilinear',
        () => `ResampleFeatureMap: upsampleType must be 'nearest' or 'bilinear', got '${mode}'`,
      );
      this.interpolate = { size: [oh, ow], mode };
    }
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let y = this.conv ? this.conv.forward(x) : x;
      if (this.downsample) y = this.downsample.forward(y);
      // Interpolation by target size: nearest is floor-based, bilinear uses half-pixel centres
      // (PyTorch F.interpolate(size=..., align_corners=False)).
      if (this.interpolate) y = resize(y, this.interpolate.size, { mode: this.interpolate.mode });
      return y;
    });
  }
}

/** Resamples a node's inputs and fuses them (effdet `FpnCombine`: attn, fastattn with eps 1e-4, or sum). */
export class FpnCombine extends Module {
  readonly resample: ModuleDict<ResampleFeatureMap>;
  readonly resamplers: ResampleFeatureMap[];
  readonly edgeWeights: Parameter | null = null;

  constructor(
    feats: FeatSpec[],
    fpnChannels: number,
    readonly inputsOffsets: number[],
    outputSize: [number, number],
    readonly weightMethod: 'attn' | 'fastattn' | 'sum',
    o: FpnOptions,
  ) {
    super();
    this.resample = this.addModule('resample', new ModuleDict<ResampleFeatureMap>());
    this.resamplers = inputsOffsets.map((offset) => {
      const spec = feats[offset];
      check(
        spec !== undefined,
        () => `FpnCombine: input offset ${offset} does not exist (have ${feats.length} nodes)`,
      );
      return this.resample.set(String(offset), new ResampleFeatureMap(spec, fpnChannels, outputSize, o));
    });
    check(
      ['attn', 'fastattn', 'sum'].includes(weightMethod),
      () => `FpnCombine: weightMethod must be attn, fastattn or sum, got '${weightMethod}'`,
    );
    if (weightMethod !== 'sum') {
      this.edgeWeights = this.addParameter('edge_weights', [inputsOffsets.length], 'plain', onesInit);
    }
  }

  forward(x: tf.Tensor4D[]): tf.Tensor4D {
    return tf.tidy(() => {
      const nodes = this.inputsOffsets.map((offset, i) => this.resamplers[i].forward(x[offset]));
      if (this.weightMethod === 'sum') return tf.addN(nodes);
      const w = this.edgeWeights!.value;
      if (this.weightMethod === 'attn') {
        const nw = tf.unstack(tf.softmax(w));
        return tf.addN(nodes.map((n, i) => tf.mul(n, nw[i]))) as tf.Tensor4D;
      }
      // Fast normalised attention: relu(w_i) / (sum relu(w) + 1e-4), in effdet's order of operations.
      const rw = tf.relu(w);
      const denom = tf.add(tf.sum(rw), 0.0001);
      const ws = tf.unstack(rw);
      return tf.addN(nodes.map((n, i) => tf.div(tf.mul(n, ws[i]), denom))) as tf.Tensor4D;
    });
  }
}

/** After-combine: act then (separable) conv + BN (pre-act), or conv + BN + act (`convBnReluPattern`). */
class AfterCombine extends Module {
  readonly conv: SeparableConvNormAct | ConvNormAct;
  readonly act: Activation | null;

  constructor(o: FpnOptions) {
    super();
    const preAct = !o.convBnReluPattern;
    const act = getActivation(o.act);
    this.act = preAct ? act : null;
    const kwargs = {
      padding: o.padding,
      bias: preAct ? o.redundantBias : false,
      norm: o.norm,
      act: preAct ? 'identity' : act,
    };
    this.conv = this.addModule(
      'conv',
      o.separableConv
        ? new SeparableConvNormAct(o.fpnChannels, o.fpnChannels, 3, kwargs)
        : new ConvNormAct(o.fpnChannels, o.fpnChannels, 3, kwargs),
    );
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.conv.forward(this.act ? (this.act.apply(x) as tf.Tensor4D) : x));
  }
}

/** One fusion node: `combine` then `after_combine` (effdet `Fnode`). */
export class Fnode extends Module {
  readonly combine: FpnCombine;
  readonly after_combine: AfterCombine;

  constructor(combine: FpnCombine, o: FpnOptions) {
    super();
    this.combine = this.addModule('combine', combine);
    this.after_combine = this.addModule('after_combine', new AfterCombine(o));
  }

  forward(x: tf.Tensor4D[]): tf.Tensor4D {
    return tf.tidy(() => this.after_combine.forward(this.combine.forward(x)));
  }
}

/** One repeat of the pyramid: every node of the topology, in order. */
export class BiFpnLayer extends Module {
  readonly fnode: ModuleList<Fnode>;
  readonly outputSpecs: FeatSpec[];

  constructor(
    inputs: FeatSpec[],
    sizes: [number, number][],
    topology: FpnTopology,
    readonly numLevels: number,
    o: FpnOptions,
  ) {
    super();
    const specs: FeatSpec[] = [
      ...inputs,
      ...topology.nodes.map((n) => ({ channels: o.fpnChannels, size: sizes[n.featLevel] })),
    ];
    this.fnode = this.addModule('fnode', new ModuleList<Fnode>());
    for (const node of topology.nodes) {
      const combine = new FpnCombine(
        specs,
        o.fpnChannels,
        node.inputsOffsets,
        sizes[node.featLevel],
        node.weightMethod,
        o,
      );
      this.fnode.push(new Fnode(combine, o));
    }
    this.outputSpecs = specs.slice(-numLevels);
  }

  /** All node outputs in order (inputs first), for inspection. */
  forwardNodes(x: tf.Tensor4D[]): tf.Tensor4D[] {
    return tf.tidy(() => {
      const all = [...x];
      for (const fn of this.fnode.items) all.push(fn.forward(all));
      return all.slice(x.length);
    });
  }

  forward(x: tf.Tensor4D[]): tf.Tensor4D[] {
    return tf.tidy(() => {
      const all = [...x];
      for (const fn of this.fnode.items) all.push(fn.forward(all));
      return all.slice(-this.numLevels);
    });
  }
}

/** A backbone feature the pyramid consumes: channels and reduction (timm `feature_info`). */
export interface FpnInputInfo {
  channels: number;
  reduction: number;
}

/**
 * The feature pyramid (effdet `BiFpn`): extra levels made from the last backbone level (`resample.{i}`), then
 * `cellRepeats` layers of the topology (`cell.{r}`). Takes the backbone features for levels
 * minLevel..(minLevel + n - 1), returns minLevel..maxLevel, all `fpnChannels` wide.
 */
export class BiFpn extends Module {
  readonly resample: ModuleDict<ResampleFeatureMap>;
  readonly cell: ModuleList<BiFpnLayer>;
  readonly numLevels: number;
  readonly featSizes: [number, number][];
  private readonly extra: ResampleFeatureMap[] = [];
  private readonly inputSizes: [number, number][];

  constructor(
    readonly options: FpnOptions,
    featureInfo: FpnInputInfo[],
  ) {
    super();
    const o = options;
    this.numLevels = o.maxLevel - o.minLevel + 1;
    check(
      featureInfo.length >= 1 && featureInfo.length <= this.numLevels,
      () =>
        `BiFpn: expected 1..${this.numLevels} backbone features for levels ${o.minLevel}..${o.maxLevel}, got ${featureInfo.length}`,
    );
    featureInfo.forEach((f, i) => {
      check(
        f.reduction === 2 ** (o.minLevel + i),
        () =>
          `BiFpn: backbone feature ${i} has reduction ${f.reduction}, expected ${2 ** (o.minLevel + i)} for level ${o.minLevel + i}`,
      );
    });
    const sizes = featSizes(o.imageSize, o.maxLevel);
    this.featSizes = sizes;
    const topology = o.fpnConfig ?? getFpnConfig(o.fpnName, o.minLevel, o.maxLevel);
    // The dict is keyed by level index (effdet `fpn.resample.{level}`), only for the extra levels.
    this.resample = this.addModule('resample', new ModuleDict<ResampleFeatureMap>());
    let specs: FeatSpec[] = [];
    let prev: FeatSpec | null = null;
    for (let level = 0; level < this.numLevels; level++) {
      const size = sizes[level + o.minLevel];
      if (level < featureInfo.length) {
        prev = { channels: featureInfo[level].channels, size };
      } else {
        const rs = new ResampleFeatureMap(prev!, o.fpnChannels, size, o);
        this.resample.set(String(level), rs);
        this.extra.push(rs);
        prev = { channels: o.fpnChannels, size };
      }
      specs.push(prev);
    }
    this.inputSizes = specs.slice(0, featureInfo.length).map((s) => s.size);
    this.cell = this.addModule('cell', new ModuleList<BiFpnLayer>());
    for (let r = 0; r < o.cellRepeats; r++) {
      const layer = this.cell.push(new BiFpnLayer(specs, sizes, topology, this.numLevels, o));
      specs = layer.outputSpecs;
    }
    // effdet `_init_weight`: Glorot-uniform convs (fan average) and zero biases in the pyramid.
    for (const [, m] of this.namedModules()) {
      if (!(m instanceof Conv2d)) continue;
      const [kh, kw, cin, mult] = m.weight.shape;
      const rf = kh * kw;
      const fanIn = (m.depthwise ? 1 : cin) * rf;
      const fanOut = m.depthwise ? mult * rf : mult * rf;
      const limit = Math.sqrt(3 / Math.max(1, (fanIn + fanOut) / 2));
      m.weight.reinitialize((shape) => randomUniform(shape, -limit, limit));
    }
  }

  private checkInputs(x: tf.Tensor4D[]): void {
    check(
      x.length === this.inputSizes.length,
      () => `BiFpn.forward: expected ${this.inputSizes.length} feature maps, got ${x.length}`,
    );
    x.forEach((t, i) => {
      const [h, w] = this.inputSizes[i];
      check(
        t.rank === 4 && t.shape[1] === h && t.shape[2] === w,
        () =>
          `BiFpn.forward: level ${this.options.minLevel + i} must be [batch, ${h}, ${w}, C] for image size ` +
          `${this.options.imageSize.join('x')}, got ${shapeStr(t.shape)} (rebuild the model for another input size)`,
      );
    });
  }

  /** The inputs plus the extra levels made from the last one (P6, P7, ...). */
  forwardInputs(x: tf.Tensor4D[]): tf.Tensor4D[] {
    this.checkInputs(x);
    return tf.tidy(() => {
      const out = [...x];
      for (const rs of this.extra) out.push(rs.forward(out[out.length - 1]));
      return out.map((t) => (x.includes(t) ? tf.clone(t) : t));
    });
  }

  forward(x: tf.Tensor4D[]): tf.Tensor4D[] {
    this.checkInputs(x);
    return tf.tidy(() => {
      let feats = [...x];
      for (const rs of this.extra) feats.push(rs.forward(feats[feats.length - 1]));
      for (const layer of this.cell.items) feats = layer.forward(feats);
      return feats;
    });
  }
}

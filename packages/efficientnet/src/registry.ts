import { closeNames, EffdetArgumentError, makeDivisible, type StateTensor } from '@effdet/layers';
import { type RawTensor, type RawTensorMap, toFloat32 } from '@effdet/weights';
import type * as tf from '@tensorflow/tfjs-core';
import { decodeArchDef } from './arch.js';
import { EfficientNet, type EfficientNetArch, type EfficientNetOptions } from './model.js';
import { type PretrainedCfg, pretrainedCfgs } from './pretrained.js';

/** The architecture families (timm `_gen_*` functions), each an arch definition plus stem/head/act choices. */
type Family =
  | 'efficientnet'
  | 'lite'
  | 'edge'
  | 'v2_base'
  | 'v2_s'
  | 'v2_s_rw'
  | 'v2_m'
  | 'v2_l'
  | 'v2_xl'
  | 'test'
  | 'effdet_test';

interface FamilyDef {
  archDef: string[][];
  stemSize: number;
  numFeatures: number;
  act: string;
  /** Lite: stem and head widths are not scaled, first/last stage depth not scaled. */
  fixed?: boolean;
  /** make_divisible round limit (0.9 default, 0 for EfficientNetV2-base). */
  roundLimit?: number;
}

const B0_STAGES = [
  ['ds_r1_k3_s1_e1_c16_se0.25'],
  ['ir_r2_k3_s2_e6_c24_se0.25'],
  ['ir_r2_k5_s2_e6_c40_se0.25'],
  ['ir_r3_k3_s2_e6_c80_se0.25'],
  ['ir_r3_k5_s1_e6_c112_se0.25'],
  ['ir_r4_k5_s2_e6_c192_se0.25'],
  ['ir_r1_k3_s1_e6_c320_se0.25'],
];

const V2_S_STAGES = [
  ['cn_r2_k3_s1_e1_c24_skip'],
  ['er_r4_k3_s2_e4_c48'],
  ['er_r4_k3_s2_e4_c64'],
  ['ir_r6_k3_s2_e4_c128_se0.25'],
  ['ir_r9_k3_s1_e6_c160_se0.25'],
  ['ir_r15_k3_s2_e6_c256_se0.25'],
];

const FAMILIES: Record<Family, FamilyDef> = {
  efficientnet: { archDef: B0_STAGES, stemSize: 32, numFeatures: 1280, act: 'swish' },
  lite: {
    archDef: B0_STAGES.map((s) => s.map((b) => b.replace('_se0.25', ''))),
    stemSize: 32,
    numFeatures: 1280,
    act: 'relu6',
    fixed: true,
  },
  edge: {
    archDef: [
      // `fc24`: the first block's expansion is computed from 24 channels, not the 32-channel stem.
      ['er_r1_k3_s1_e4_c24_fc24_noskip'],
      ['er_r2_k3_s2_e8_c32'],
      ['er_r4_k3_s2_e8_c48'],
      ['ir_r5_k5_s2_e8_c96'],
      ['ir_r4_k5_s1_e8_c144'],
      ['ir_r2_k5_s2_e8_c192'],
    ],
    stemSize: 32,
    numFeatures: 1280,
    act: 'relu',
  },
  v2_base: {
    archDef: [
      ['cn_r1_k3_s1_e1_c16_skip'],
      ['er_r2_k3_s2_e4_c32'],
      ['er_r2_k3_s2_e4_c48'],
      ['ir_r3_k3_s2_e4_c96_se0.25'],
      ['ir_r5_k3_s1_e6_c112_se0.25'],
      ['ir_r8_k3_s2_e6_c192_se0.25'],
    ],
    stemSize: 32,
    numFeatures: 1280,
    act: 'swish',
    roundLimit: 0,
  },
  v2_s: { archDef: V2_S_STAGES, stemSize: 24, numFeatures: 1280, act: 'swish' },
  // Ross Wightman's original reading of the paper figure: er first stage, 272 last-stage channels, 1792 head.
  v2_s_rw: {
    archDef: [['er_r2_k3_s1_e1_c24'], ...V2_S_STAGES.slice(1, 5), ['ir_r15_k3_s2_e6_c272_se0.25']],
    stemSize: 24,
    numFeatures: 1792,
    act: 'swish',
  },
  v2_m: {
    archDef: [
      ['cn_r3_k3_s1_e1_c24_skip'],
      ['er_r5_k3_s2_e4_c48'],
      ['er_r5_k3_s2_e4_c80'],
      ['ir_r7_k3_s2_e4_c160_se0.25'],
      ['ir_r14_k3_s1_e6_c176_se0.25'],
      ['ir_r18_k3_s2_e6_c304_se0.25'],
      ['ir_r5_k3_s1_e6_c512_se0.25'],
    ],
    stemSize: 24,
    numFeatures: 1280,
    act: 'swish',
  },
  v2_l: {
    archDef: [
      ['cn_r4_k3_s1_e1_c32_skip'],
      ['er_r7_k3_s2_e4_c64'],
      ['er_r7_k3_s2_e4_c96'],
      ['ir_r10_k3_s2_e4_c192_se0.25'],
      ['ir_r19_k3_s1_e6_c224_se0.25'],
      ['ir_r25_k3_s2_e6_c384_se0.25'],
      ['ir_r7_k3_s1_e6_c640_se0.25'],
    ],
    stemSize: 32,
    numFeatures: 1280,
    act: 'swish',
  },
  v2_xl: {
    archDef: [
      ['cn_r4_k3_s1_e1_c32_skip'],
      ['er_r8_k3_s2_e4_c64'],
      ['er_r8_k3_s2_e4_c96'],
      ['ir_r16_k3_s2_e4_c192_se0.25'],
      ['ir_r24_k3_s1_e6_c256_se0.25'],
      ['ir_r32_k3_s2_e6_c512_se0.25'],
      ['ir_r8_k3_s1_e6_c640_se0.25'],
    ],
    stemSize: 32,
    numFeatures: 1280,
    act: 'swish',
  },
  // timm's `test_efficientnet` (its `_gen_test_efficientnet`): a tiny network for regression tests.
  test: {
    archDef: [
      ['cn_r1_k3_s1_e1_c16_skip'],
      ['er_r1_k3_s2_e4_c24'],
      ['er_r1_k3_s2_e4_c32'],
      ['ir_r1_k3_s2_e4_c48_se0.25'],
      ['ir_r1_k3_s2_e4_c64_se0.25'],
    ],
    stemSize: 24,
    numFeatures: 256,
    act: 'swish',
    roundLimit: 0,
  },
  // Ours, not timm's: a tiny network with every block type (cn, er, ds, ir; k3 and k5), for fast tests and the
  // shipped shapes models.
  effdet_test: {
    archDef: [
      ['cn_r1_k3_s1_e1_c16_skip'],
      ['er_r1_k3_s2_e4_c24'],
      ['ds_r1_k3_s1_e1_c24_se0.25'],
      ['ir_r1_k3_s2_e4_c32_se0.25'],
      ['ir_r2_k5_s2_e4_c48_se0.25'],
      ['ir_r1_k3_s2_e4_c64_se0.25'],
    ],
    stemSize: 16,
    numFeatures: 128,
    act: 'swish',
  },
};

/** One registry row: family, width and depth multipliers, and the TF weight regime. */
export interface ModelDef {
  family: Family;
  width: number;
  depth: number | number[];
  /** `tf_` models: TensorFlow SAME padding and BatchNorm eps 1e-3; others PyTorch padding and eps 1e-5. */
  tf: boolean;
}

function defs(
  prefix: string,
  family: Family,
  tf: boolean,
  rows: Record<string, [number, number | number[]]>,
) {
  return Object.fromEntries(
    Object.entries(rows).map(([suffix, [width, depth]]) => [
      `${prefix}${suffix}`,
      { family, width, depth, tf },
    ]),
  );
}

const B_SCALES: Record<string, [number, number]> = {
  b0: [1.0, 1.0],
  b1: [1.0, 1.1],
  b2: [1.1, 1.2],
  b3: [1.2, 1.4],
  b4: [1.4, 1.8],
  b5: [1.6, 2.2],
  b6: [1.8, 2.6],
  b7: [2.0, 3.1],
  b8: [2.2, 3.6],
};
const LITE_SCALES: Record<string, [number, number]> = {
  lite0: [1.0, 1.0],
  lite1: [1.0, 1.1],
  lite2: [1.1, 1.2],
  lite3: [1.2, 1.4],
  lite4: [1.4, 1.8],
};
const EDGE_SCALES: Record<string, [number, number]> = { es: [1.0, 1.0], em: [1.0, 1.1], el: [1.2, 1.4] };
const V2_BASE_SCALES: Record<string, [number, number]> = {
  b0: [1.0, 1.0],
  b1: [1.0, 1.1],
  b2: [1.1, 1.2],
  b3: [1.2, 1.4],
};

/** The one table that drives every model variant. */
const MODELS: Record<string, ModelDef> = Object.freeze({
  ...defs('efficientnet_', 'efficientnet', false, B_SCALES),
  ...defs('tf_efficientnet_', 'efficientnet', true, { ...B_SCALES, l2: [4.3, 5.3] }),
  ...defs('efficientnet_', 'lite', false, LITE_SCALES),
  ...defs('tf_efficientnet_', 'lite', true, LITE_SCALES),
  ...defs('efficientnet_', 'edge', false, EDGE_SCALES),
  ...defs('tf_efficientnet_', 'edge', true, EDGE_SCALES),
  ...defs('efficientnetv2_rw_', 'v2_s', false, { t: [0.8, 0.9] }),
  ...defs('efficientnetv2_rw_', 'v2_s_rw', false, {
    s: [1.0, 1.0],
    m: [1.2, [1.2, 1.2, 1.2, 1.2, 1.6, 1.6]],
  }),
  ...defs('efficientnetv2_', 'v2_s', false, { s: [1.0, 1.0] }),
  ...defs('efficientnetv2_', 'v2_m', false, { m: [1.0, 1.0] }),
  ...defs('efficientnetv2_', 'v2_l', false, { l: [1.0, 1.0] }),
  ...defs('efficientnetv2_', 'v2_xl', false, { xl: [1.0, 1.0] }),
  ...defs('tf_efficientnetv2_', 'v2_base', true, V2_BASE_SCALES),
  ...defs('tf_efficientnetv2_', 'v2_s', true, { s: [1.0, 1.0] }),
  ...defs('tf_efficientnetv2_', 'v2_m', true, { m: [1.0, 1.0] }),
  ...defs('tf_efficientnetv2_', 'v2_l', true, { l: [1.0, 1.0] }),
  ...defs('tf_efficientnetv2_', 'v2_xl', true, { xl: [1.0, 1.0] }),
  test_efficientnet: { family: 'test', width: 1.0, depth: 1.0, tf: false },
  effdet_test_efficientnet: { family: 'effdet_test', width: 1.0, depth: 1.0, tf: false },
});

/** Architecture overrides a caller may give on top of a registry entry. */
export interface ArchOverrides {
  /** Padding regime override ('same' = TF, '' = PyTorch). */
  padding?: 'same' | '';
  bnEps?: number;
  bnMomentum?: number;
  act?: string;
}

/** Resolves a registry entry to a concrete, scaled architecture. */
export function resolveArch(name: string, overrides: ArchOverrides = {}): EfficientNetArch {
  const def = getModelDef(name);
  const fam = FAMILIES[def.family];
  const round = (c: number) => makeDivisible(c * def.width, 8, undefined, fam.roundLimit ?? 0.9);
  return {
    blockArgs: decodeArchDef(fam.archDef, def.depth, { fixFirstLast: fam.fixed }),
    stemSize: fam.fixed ? fam.stemSize : round(fam.stemSize),
    numFeatures: fam.fixed ? fam.numFeatures : round(fam.numFeatures),
    roundChannels: round,
    act: overrides.act ?? fam.act,
    padding: overrides.padding ?? (def.tf ? 'same' : ''),
    bnEps: overrides.bnEps ?? (def.tf ? 1e-3 : 1e-5),
    bnMomentum: overrides.bnMomentum,
  };
}

/** The registry row of `name`; throws listing close names when unknown. */
export function getModelDef(name: string): ModelDef {
  const def = MODELS[name];
  if (!def) {
    const near = closeNames(name, listModels());
    throw new EffdetArgumentError(
      `createModel: unknown model '${name}'. ${near.length ? `Did you mean ${near.join(', ')}? ` : ''}` +
        `Valid models: ${listModels().join(', ')}`,
    );
  }
  return def;
}

function wildcard(pattern: string): RegExp {
  const esc = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${esc}$`);
}

/**
 * Registered model names, sorted; `filter` is a wildcard pattern (`'tf_efficientnet_b*'`), a RegExp, or a
 * list of patterns. `pretrained: true` keeps models with released weights.
 */
export function listModels(
  filter?: string | RegExp | string[],
  options: { pretrained?: boolean } = {},
): string[] {
  let names = Object.keys(MODELS).sort();
  if (filter !== undefined) {
    const res = (Array.isArray(filter) ? filter : [filter]).map((f) =>
      typeof f === 'string' ? wildcard(f) : f,
    );
    names = names.filter((n) => res.some((r) => r.test(n)));
  }
  if (options.pretrained) names = names.filter((n) => pretrainedCfgs(n).length > 0);
  return names;
}

/** Released checkpoint configs of a model (default first). */
export function getPretrainedCfgs(name: string): PretrainedCfg[] {
  getModelDef(name);
  return pretrainedCfgs(name);
}

/** The default pretrained config, or null for architectures without released weights. */
export function getPretrainedCfg(name: string): PretrainedCfg | null {
  return getPretrainedCfgs(name)[0] ?? null;
}

export interface CreateModelOptions extends EfficientNetOptions, ArchOverrides {
  /**
   * Weights to load (strictly): a PyTorch-named tensor map from `@effdet/weights` or TF.js tensors. For files
   * (any format, incl. official TF checkpoints) use `loadModel` from `@effdet/efficientnet/node`.
   */
  weights?: RawTensorMap | Record<string, tf.Tensor>;
}

const OPTION_KEYS: (keyof CreateModelOptions)[] = [
  'numClasses',
  'inChannels',
  'dropRate',
  'dropPathRate',
  'globalPool',
  'outputStride',
  'featuresOnly',
  'outIndices',
  'featureLocation',
  'padding',
  'bnEps',
  'bnMomentum',
  'act',
  'weights',
];

/**
 * Builds a registered model (timm `create_model`). Weights are allocated lazily with timm's initialisation;
 * load released weights with `model.loadStateDict(...)`. Unknown names and options throw, listing the valid ones.
 */
export function createModel(name: string, options: CreateModelOptions = {}): EfficientNet {
  const unknown = Object.keys(options).filter((k) => !OPTION_KEYS.includes(k as keyof CreateModelOptions));
  if (unknown.length) {
    throw new EffdetArgumentError(
      `createModel: unknown option(s) ${unknown.map((k) => `'${k}'`).join(', ')} for '${name}'; valid options: ${OPTION_KEYS.join(', ')}`,
    );
  }
  const { padding, bnEps, bnMomentum, act, weights, ...netOptions } = options;
  const arch = resolveArch(name, { padding, bnEps, bnMomentum, act });
  const model = new EfficientNet(name, arch, netOptions);
  if (weights) {
    try {
      loadWeightMap(model, weights);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  return model;
}

function isRawTensor(t: unknown): t is RawTensor {
  return typeof t === 'object' && t !== null && 'dtype' in t && (t as RawTensor).data instanceof Uint8Array;
}

/** Loads a PyTorch-named map (raw `@effdet/weights` tensors or TF.js tensors) strictly; skips num_batches_tracked. */
export function loadWeightMap(model: EfficientNet, weights: RawTensorMap | Record<string, tf.Tensor>): void {
  const state: Record<string, StateTensor> = {};
  for (const [name, t] of Object.entries(weights)) {
    if (name.endsWith('num_batches_tracked')) continue;
    state[name] = isRawTensor(t) ? { shape: t.shape, data: toFloat32(t) } : (t as tf.Tensor);
  }
  model.loadStateDict(state);
}

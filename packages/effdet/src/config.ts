/**
 * EfficientDet configurations: one frozen default plus, per model, only what differs (effdet
 * `model_config.py`, after google/automl `hparams_config.py`). Every EfficientNet-based model of the
 * reference zoo is here; `getEfficientDetConfig(name, overrides)` merges and freezes.
 */

export type FpnResample = 'max' | 'avg' | 'nearest' | 'bilinear';

export interface EffDetConfig {
  name: string;
  /** Any `@effdet/efficientnet` model. */
  backboneName: string;
  backboneArgs: { dropPathRate?: number; featureLocation?: 'bottleneck' | 'expansion' };
  /** Backbone feature indices for levels minLevel.. (default [2, 3, 4]: strides 8, 16, 32). */
  backboneIndices: number[] | null;
  /** Model input `[height, width]`; fixes the pyramid geometry and the anchors. */
  imageSize: [number, number];
  numClasses: number;
  minLevel: number;
  maxLevel: number;
  numScales: number;
  /** `[x, y]` pairs, or scalars w/h (expanded to `[sqrt(a), 1/sqrt(a)]`). */
  aspectRatios: (number | [number, number])[];
  anchorScale: number;
  /** 'same' = TensorFlow SAME padding (TF-ported weights), '' = PyTorch symmetric. */
  padType: 'same' | '';
  actType: string;
  /** Head activation; null = actType. */
  headActType: string | null;
  normKwargs: { eps: number; momentum: number };
  boxClassRepeats: number;
  fpnCellRepeats: number;
  fpnChannels: number;
  fpnName: string | null;
  separableConv: boolean;
  applyResampleBn: boolean;
  convBnReluPattern: boolean;
  downsampleType: FpnResample;
  upsampleType: FpnResample;
  redundantBias: boolean;
  headBnLevelFirst: boolean;
  // Training (loss) parameters.
  alpha: number;
  gamma: number;
  labelSmoothing: number;
  delta: number;
  boxLossWeight: number;
  // Post-processing.
  softNms: boolean;
  maxDetectionPoints: number;
  maxDetPerImage: number;
  // Input preprocessing.
  mean: [number, number, number];
  std: [number, number, number];
  /** Letterbox fill: 'mean' = round(255 * mean), or a constant. */
  fillColor: 'mean' | number;
  /** Released weights of the reference (effdet GitHub release), when there are any. */
  url: string | null;
}

const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];
const HALF: [number, number, number] = [0.5, 0.5, 0.5];
const RELEASE = 'https://github.com/rwightman/efficientdet-pytorch/releases/download/v0.1/';

/** The defaults every model starts from (effdet `default_detection_model_configs`). */
export function defaultEffDetConfig(): EffDetConfig {
  return {
    name: 'tf_efficientdet_d1',
    backboneName: 'tf_efficientnet_b1',
    backboneArgs: {},
    backboneIndices: null,
    imageSize: [640, 640],
    numClasses: 90,
    minLevel: 3,
    maxLevel: 7,
    numScales: 3,
    aspectRatios: [
      [1.0, 1.0],
      [1.4, 0.7],
      [0.7, 1.4],
    ],
    anchorScale: 4.0,
    padType: 'same',
    actType: 'swish',
    headActType: null,
    normKwargs: { eps: 0.001, momentum: 0.01 },
    boxClassRepeats: 3,
    fpnCellRepeats: 3,
    fpnChannels: 88,
    fpnName: null,
    separableConv: true,
    applyResampleBn: true,
    convBnReluPattern: false,
    downsampleType: 'max',
    upsampleType: 'nearest',
    redundantBias: true,
    headBnLevelFirst: false,
    alpha: 0.25,
    gamma: 1.5,
    labelSmoothing: 0,
    delta: 0.1,
    boxLossWeight: 50.0,
    softNms: false,
    maxDetectionPoints: 5000,
    maxDetPerImage: 100,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    fillColor: 'mean',
    url: null,
  };
}

type Diff = Partial<EffDetConfig>;

/** PyTorch-trained models: symmetric padding, no redundant biases. */
const PT: Diff = { padType: '', redundantBias: false };
/** Newer PyTorch-trained configs: also level-first head BN lists and scalar aspect ratios. */
const PT2: Diff = { ...PT, headBnLevelFirst: true, aspectRatios: [1.0, 2.0, 0.5] };
const LITE: Diff = { fpnName: 'bifpn_sum', mean: HALF, std: HALF, actType: 'relu6' };
const AP: Diff = { mean: HALF, std: HALF, fillColor: 0 };

function d(
  backboneName: string,
  size: number,
  fpnChannels: number,
  fpnCellRepeats: number,
  boxClassRepeats: number,
  dropPathRate: number,
  rest: Diff = {},
): Diff {
  return {
    backboneName,
    imageSize: [size, size],
    fpnChannels,
    fpnCellRepeats,
    boxClassRepeats,
    backboneArgs: { dropPathRate, ...rest.backboneArgs },
    ...rest,
  };
}

/** Per-model differences from the defaults: the one table that drives every EfficientDet variant. */
const MODEL_DIFFS: Record<string, Diff> = {
  // PyTorch padding and PyTorch-trained backbones (effdet's own training).
  efficientdet_d0: d('efficientnet_b0', 512, 64, 3, 3, 0.1, {
    ...PT,
    url: `${RELEASE}efficientdet_d0-f3276ba8.pth`,
  }),
  efficientdet_d1: d('efficientnet_b1', 640, 88, 4, 3, 0.2, {
    ...PT,
    url: `${RELEASE}efficientdet_d1-bb7e98fe.pth`,
  }),
  efficientdet_d2: d('efficientnet_b2', 768, 112, 5, 3, 0.2, PT),
  efficientdet_d3: d('efficientnet_b3', 896, 160, 6, 4, 0.2, PT),
  // d4 / d5 keep TF SAME padding (hybrids in the reference).
  efficientdet_d4: d('efficientnet_b4', 1024, 224, 7, 4, 0.2),
  efficientdet_d5: d('efficientnet_b5', 1280, 288, 7, 4, 0.2),
  efficientdetv2_dt: d('efficientnetv2_rw_t', 768, 128, 5, 3, 0.2, {
    ...PT2,
    downsampleType: 'bilinear',
    upsampleType: 'bilinear',
    url: `${RELEASE}efficientdetv2_rw_dt_agc-ad8b8c96.pth`,
  }),
  efficientdetv2_ds: d('efficientnetv2_rw_s', 1024, 256, 7, 4, 0.2, {
    ...PT2,
    downsampleType: 'bilinear',
    upsampleType: 'bilinear',
    url: `${RELEASE}efficientnetv2_rw_ds_agc-cf589293.pth`,
  }),
  efficientdet_q0: d('efficientnet_b0', 512, 64, 3, 3, 0.1, {
    ...PT,
    headBnLevelFirst: true,
    fpnName: 'qufpn_fa',
    url: `${RELEASE}efficientdet_q0-bdf1bdb5.pth`,
  }),
  efficientdet_q1: d('efficientnet_b1', 640, 88, 3, 3, 0.2, {
    ...PT,
    headBnLevelFirst: true,
    fpnName: 'qufpn_fa',
    downsampleType: 'bilinear',
    upsampleType: 'bilinear',
    url: `${RELEASE}efficientdet_q1b-d0612140.pth`,
  }),
  efficientdet_q2: d('efficientnet_b2', 768, 112, 4, 3, 0.2, {
    ...PT,
    headBnLevelFirst: true,
    fpnName: 'qufpn_fa',
    url: `${RELEASE}efficientdet_q2-0f7564e5.pth`,
  }),
  // 'Wide': backbone features taken at the expansion (after the depthwise conv / SE of the next block).
  efficientdet_w0: d('efficientnet_b0', 512, 80, 3, 3, 0.1, {
    ...PT2,
    backboneArgs: { dropPathRate: 0.1, featureLocation: 'expansion' },
  }),
  efficientdet_es: d('efficientnet_es', 512, 72, 3, 3, 0.1, {
    ...PT2,
    actType: 'relu',
    separableConv: false,
  }),
  efficientdet_em: d('efficientnet_em', 640, 96, 4, 3, 0.2, {
    ...PT2,
    actType: 'relu',
    separableConv: false,
  }),
  efficientdet_lite0: d('efficientnet_lite0', 384, 64, 3, 3, 0.1, {
    actType: 'relu6',
    redundantBias: false,
    headBnLevelFirst: true,
  }),
  // Ported from TensorFlow (google/automl) with TF SAME padding and redundant biases.
  tf_efficientdet_d0: d('tf_efficientnet_b0', 512, 64, 3, 3, 0.2, {
    url: `${RELEASE}tf_efficientdet_d0_34-f153e0cf.pth`,
  }),
  tf_efficientdet_d1: d('tf_efficientnet_b1', 640, 88, 4, 3, 0.2, {
    url: `${RELEASE}tf_efficientdet_d1_40-a30f94af.pth`,
  }),
  tf_efficientdet_d2: d('tf_efficientnet_b2', 768, 112, 5, 3, 0.2, {
    url: `${RELEASE}tf_efficientdet_d2_43-8107aa99.pth`,
  }),
  tf_efficientdet_d3: d('tf_efficientnet_b3', 896, 160, 6, 4, 0.2, {
    url: `${RELEASE}tf_efficientdet_d3_47-0b525f35.pth`,
  }),
  tf_efficientdet_d4: d('tf_efficientnet_b4', 1024, 224, 7, 4, 0.2, {
    url: `${RELEASE}tf_efficientdet_d4_49-f56376d9.pth`,
  }),
  tf_efficientdet_d5: d('tf_efficientnet_b5', 1280, 288, 7, 4, 0.2, {
    url: `${RELEASE}tf_efficientdet_d5_51-c79f9be6.pth`,
  }),
  // d6 / d7 / d7x use an unweighted sum in the BiFPN (training stability in the original).
  tf_efficientdet_d6: d('tf_efficientnet_b6', 1280, 384, 8, 5, 0.2, {
    fpnName: 'bifpn_sum',
    url: `${RELEASE}tf_efficientdet_d6_52-4eda3773.pth`,
  }),
  tf_efficientdet_d7: d('tf_efficientnet_b6', 1536, 384, 8, 5, 0.2, {
    anchorScale: 5.0,
    fpnName: 'bifpn_sum',
    url: `${RELEASE}tf_efficientdet_d7_53-6d1d7a95.pth`,
  }),
  tf_efficientdet_d7x: d('tf_efficientnet_b7', 1536, 384, 8, 5, 0.2, {
    anchorScale: 4.0,
    maxLevel: 8,
    fpnName: 'bifpn_sum',
    url: `${RELEASE}tf_efficientdet_d7x-f390b87c.pth`,
  }),
  // AdvProp + AutoAugment weights: inputs in [-1, 1], black letterbox.
  tf_efficientdet_d0_ap: d('tf_efficientnet_b0', 512, 64, 3, 3, 0.2, {
    ...AP,
    url: `${RELEASE}tf_efficientdet_d0_ap-d0cdbd0a.pth`,
  }),
  tf_efficientdet_d1_ap: d('tf_efficientnet_b1', 640, 88, 4, 3, 0.2, {
    ...AP,
    url: `${RELEASE}tf_efficientdet_d1_ap-7721d075.pth`,
  }),
  tf_efficientdet_d2_ap: d('tf_efficientnet_b2', 768, 112, 5, 3, 0.2, {
    ...AP,
    url: `${RELEASE}tf_efficientdet_d2_ap-a2995c19.pth`,
  }),
  tf_efficientdet_d3_ap: d('tf_efficientnet_b3', 896, 160, 6, 4, 0.2, {
    ...AP,
    url: `${RELEASE}tf_efficientdet_d3_ap-e4a2feab.pth`,
  }),
  tf_efficientdet_d4_ap: d('tf_efficientnet_b4', 1024, 224, 7, 4, 0.2, {
    ...AP,
    url: `${RELEASE}tf_efficientdet_d4_ap-f601a5fc.pth`,
  }),
  tf_efficientdet_d5_ap: d('tf_efficientnet_b5', 1280, 288, 7, 4, 0.2, {
    ...AP,
    url: `${RELEASE}tf_efficientdet_d5_ap-3673ae5d.pth`,
  }),
  // EfficientDet-Lite (TF automl), ReLU6, unweighted BiFPN sum, [-1, 1] inputs.
  tf_efficientdet_lite0: d('tf_efficientnet_lite0', 320, 64, 3, 3, 0.0, {
    ...LITE,
    anchorScale: 3.0,
    url: `${RELEASE}tf_efficientdet_lite0-dfacfc78.pth`,
  }),
  tf_efficientdet_lite1: d('tf_efficientnet_lite1', 384, 88, 4, 3, 0.2, {
    ...LITE,
    anchorScale: 3.0,
    url: `${RELEASE}tf_efficientdet_lite1-6dc7ab30.pth`,
  }),
  tf_efficientdet_lite2: d('tf_efficientnet_lite2', 448, 112, 5, 3, 0.2, {
    ...LITE,
    anchorScale: 3.0,
    url: `${RELEASE}tf_efficientdet_lite2-86c5d55b.pth`,
  }),
  tf_efficientdet_lite3: d('tf_efficientnet_lite3', 512, 160, 6, 4, 0.2, {
    ...LITE,
    url: `${RELEASE}tf_efficientdet_lite3-506852cb.pth`,
  }),
  tf_efficientdet_lite3x: d('tf_efficientnet_lite3', 640, 200, 6, 4, 0.2, {
    ...LITE,
    anchorScale: 3.0,
    url: `${RELEASE}tf_efficientdet_lite3x-8404c57b.pth`,
  }),
  tf_efficientdet_lite4: d('tf_efficientnet_lite4', 640, 224, 7, 4, 0.2, {
    ...LITE,
    url: `${RELEASE}tf_efficientdet_lite4-391ddabc.pth`,
  }),
  // A tiny config for fast tests (not in the reference).
  test_efficientdet: d('effdet_test_efficientnet', 128, 16, 2, 2, 0.0, { ...PT2 }),
  // The project's own demo detector, trained here on `effdet make-shapes` data (models/shapes): the small
  // test backbone, a 48-channel BiFPN, anchors half the usual size (16 px at P3) for objects of 22-96 px at
  // a 128 px input.
  efficientdet_shapes: d('effdet_test_efficientnet', 128, 48, 3, 3, 0.0, {
    ...PT2,
    numClasses: 6,
    anchorScale: 2,
  }),
};

/** Registered EfficientDet model names, sorted; optional wildcard (`'tf_efficientdet_d*'`) or RegExp. */
export function listEfficientDetModels(filter?: string | RegExp): string[] {
  const names = Object.keys(MODEL_DIFFS).sort();
  if (filter === undefined) return names;
  const re =
    typeof filter === 'string'
      ? new RegExp(
          `^${filter
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '.*')
            .replace(/\?/g, '.')}$`,
        )
      : filter;
  return names.filter((n) => re.test(n));
}

const KEYS = Object.keys(defaultEffDetConfig()) as (keyof EffDetConfig)[];

function deepFreeze<T>(o: T): Readonly<T> {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Validates override keys and values that the network cannot work without. */
function validate(cfg: EffDetConfig, where: string): void {
  const fail = (msg: string) => {
    throw new Error(`${where}: ${msg}`);
  };
  if (!(cfg.numClasses > 0 && Number.isInteger(cfg.numClasses)))
    fail(`numClasses must be a positive integer, got ${cfg.numClasses}`);
  if (
    !(
      cfg.imageSize.length === 2 &&
      cfg.imageSize.every((s) => Number.isInteger(s) && s >= 2 ** cfg.maxLevel / 2)
    )
  ) {
    fail(
      `imageSize must be [height, width] of positive integers (>= ${2 ** cfg.maxLevel / 2}), got ${JSON.stringify(cfg.imageSize)}`,
    );
  }
  if (!(cfg.minLevel >= 1 && cfg.maxLevel > cfg.minLevel))
    fail(`need 1 <= minLevel < maxLevel, got ${cfg.minLevel}..${cfg.maxLevel}`);
  if (!(cfg.numScales >= 1 && cfg.aspectRatios.length >= 1))
    fail('numScales and aspectRatios must be non-empty');
  if (cfg.padType !== 'same' && cfg.padType !== '')
    fail(`padType must be 'same' or '', got '${cfg.padType}'`);
}

/** A frozen config from any base plus overrides; unknown keys throw (automl `allow_new_keys=False`). */
export function createEfficientDetConfig(
  base: EffDetConfig,
  overrides: Partial<EffDetConfig> = {},
): Readonly<EffDetConfig> {
  const unknown = Object.keys(overrides).filter((k) => !KEYS.includes(k as keyof EffDetConfig));
  if (unknown.length) {
    throw new Error(
      `createEfficientDetConfig: unknown config key(s) ${unknown.map((k) => `'${k}'`).join(', ')}; valid keys: ${KEYS.join(', ')}`,
    );
  }
  const cfg = structuredClone({ ...base, ...overrides }) as EffDetConfig;
  validate(cfg, `EfficientDet config '${cfg.name}'`);
  return deepFreeze(cfg);
}

/**
 * The config of a registered model merged with `overrides` (e.g. `{numClasses: 5, imageSize: [384, 384]}`),
 * frozen. Unknown names throw and list the valid ones.
 */
export function getEfficientDetConfig(
  name: string,
  overrides: Partial<EffDetConfig> = {},
): Readonly<EffDetConfig> {
  const diff = MODEL_DIFFS[name];
  if (!diff) {
    throw new Error(
      `getEfficientDetConfig: unknown model '${name}'; valid models: ${listEfficientDetModels().join(', ')}`,
    );
  }
  return createEfficientDetConfig({ ...defaultEffDetConfig(), name, ...structuredClone(diff) }, overrides);
}

/** Number of pyramid levels. */
export function numLevels(cfg: EffDetConfig): number {
  return cfg.maxLevel - cfg.minLevel + 1;
}

/** Aspect ratios as `[x, y]` pairs (scalars a become `[sqrt(a), 1/sqrt(a)]`, as effdet's anchors do). */
export function aspectPairs(cfg: Pick<EffDetConfig, 'aspectRatios'>): [number, number][] {
  return cfg.aspectRatios.map((a) => {
    if (Array.isArray(a)) return [a[0], a[1]];
    const x = Math.sqrt(a);
    return [x, 1 / x];
  });
}

/** Anchors per location. */
export function numAnchors(cfg: EffDetConfig): number {
  return cfg.numScales * cfg.aspectRatios.length;
}

/** Letterbox fill colour in 0..255 per channel. */
export function fillColor(cfg: EffDetConfig): [number, number, number] {
  if (cfg.fillColor === 'mean') return cfg.mean.map((m) => Math.round(255 * m)) as [number, number, number];
  return [cfg.fillColor, cfg.fillColor, cfg.fillColor];
}

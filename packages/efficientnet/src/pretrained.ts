/** How a released checkpoint expects its input, and where it lives (timm `PretrainedCfg`). */
export interface PretrainedCfg {
  /** `name.tag`, e.g. `tf_efficientnet_b0.ns_jft_in1k`. */
  id: string;
  /** Hugging Face Hub repository of timm's release (safetensors / pytorch_model.bin). */
  hfHubId: string;
  /** `[channels, height, width]` at training / evaluation. */
  inputSize: [number, number, number];
  testInputSize?: [number, number, number];
  /** Crop fraction used by the reference evaluation (resize to size / cropPct, centre-crop). */
  cropPct: number;
  interpolation: 'bicubic' | 'bilinear';
  mean: [number, number, number];
  std: [number, number, number];
  numClasses: number;
  license: string;
  /** Where the weights were trained or ported from. */
  origin: string;
}

export const IMAGENET_DEFAULT_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_DEFAULT_STD: [number, number, number] = [0.229, 0.224, 0.225];
export const INCEPTION_MEAN: [number, number, number] = [0.5, 0.5, 0.5];
export const INCEPTION_STD: [number, number, number] = [0.5, 0.5, 0.5];

type Row = [
  tag: string,
  size: number,
  cropPct: number,
  extra?: { test?: number; inception?: boolean; classes?: number; interp?: 'bilinear' },
];

const TF = 'TensorFlow (google/automl, tensorflow/tpu) weights ported by timm';
const TIMM = 'trained in PyTorch by timm';

/** Default (first) and other released tags per model; sizes are square. */
const TABLE: Record<string, { origin: string; rows: Row[] }> = {
  efficientnet_b0: { origin: TIMM, rows: [['ra_in1k', 224, 0.875]] },
  test_efficientnet: { origin: TIMM, rows: [['r160_in1k', 160, 0.95]] },
  efficientnet_b1: { origin: TIMM, rows: [['ft_in1k', 256, 1.0, { test: 288 }]] },
  efficientnet_b2: { origin: TIMM, rows: [['ra_in1k', 256, 1.0, { test: 288 }]] },
  efficientnet_b3: { origin: TIMM, rows: [['ra2_in1k', 288, 0.875, { test: 320 }]] },
  efficientnet_b4: { origin: TIMM, rows: [['ra2_in1k', 320, 1.0, { test: 384 }]] },
  efficientnet_b5: { origin: TIMM, rows: [['sw_in12k_ft_in1k', 448, 1.0, { test: 512 }]] },
  tf_efficientnet_b0: {
    origin: TF,
    rows: [
      ['ns_jft_in1k', 224, 0.875],
      ['ap_in1k', 224, 0.875, { inception: true }],
      ['aa_in1k', 224, 0.875],
      ['in1k', 224, 0.875],
    ],
  },
  tf_efficientnet_b1: {
    origin: TF,
    rows: [
      ['ns_jft_in1k', 240, 0.882],
      ['ap_in1k', 240, 0.882, { inception: true }],
      ['aa_in1k', 240, 0.882],
      ['in1k', 240, 0.882],
    ],
  },
  tf_efficientnet_b2: {
    origin: TF,
    rows: [
      ['ns_jft_in1k', 260, 0.89],
      ['ap_in1k', 260, 0.89, { inception: true }],
      ['aa_in1k', 260, 0.89],
      ['in1k', 260, 0.89],
    ],
  },
  tf_efficientnet_b3: {
    origin: TF,
    rows: [
      ['ns_jft_in1k', 300, 0.904],
      ['ap_in1k', 300, 0.904, { inception: true }],
      ['aa_in1k', 300, 0.904],
      ['in1k', 300, 0.904],
    ],
  },
  tf_efficientnet_b4: {
    origin: TF,
    rows: [
      ['ns_jft_in1k', 380, 0.922],
      ['ap_in1k', 380, 0.922, { inception: true }],
      ['aa_in1k', 380, 0.922],
      ['in1k', 380, 0.922],
    ],
  },
  tf_efficientnet_b5: {
    origin: TF,
    rows: [
      ['ns_jft_in1k', 456, 0.934],
      ['ap_in1k', 456, 0.934, { inception: true }],
      ['ra_in1k', 456, 0.934],
      ['aa_in1k', 456, 0.934],
      ['in1k', 456, 0.934],
    ],
  },
  tf_efficientnet_b6: {
    origin: TF,
    rows: [
      ['ns_jft_in1k', 528, 0.942],
      ['ap_in1k', 528, 0.942, { inception: true }],
      ['aa_in1k', 528, 0.942],
    ],
  },
  tf_efficientnet_b7: {
    origin: TF,
    rows: [
      ['ns_jft_in1k', 600, 0.949],
      ['ap_in1k', 600, 0.949, { inception: true }],
      ['ra_in1k', 600, 0.949],
      ['aa_in1k', 600, 0.949],
    ],
  },
  tf_efficientnet_b8: {
    origin: TF,
    rows: [
      ['ra_in1k', 672, 0.954],
      ['ap_in1k', 672, 0.954, { inception: true }],
    ],
  },
  tf_efficientnet_l2: {
    origin: TF,
    rows: [
      ['ns_jft_in1k', 800, 0.96],
      ['ns_jft_in1k_475', 475, 0.936],
    ],
  },
  efficientnet_lite0: { origin: TIMM, rows: [['ra_in1k', 224, 0.875]] },
  tf_efficientnet_lite0: { origin: TF, rows: [['in1k', 224, 0.875, { inception: true }]] },
  tf_efficientnet_lite1: { origin: TF, rows: [['in1k', 240, 0.882, { inception: true }]] },
  tf_efficientnet_lite2: { origin: TF, rows: [['in1k', 260, 0.89, { inception: true }]] },
  tf_efficientnet_lite3: { origin: TF, rows: [['in1k', 300, 0.904, { inception: true }]] },
  tf_efficientnet_lite4: { origin: TF, rows: [['in1k', 380, 0.92, { inception: true }]] },
  efficientnet_es: { origin: TIMM, rows: [['ra_in1k', 224, 0.875]] },
  efficientnet_em: { origin: TIMM, rows: [['ra2_in1k', 240, 0.882]] },
  efficientnet_el: { origin: TIMM, rows: [['ra_in1k', 300, 0.904]] },
  tf_efficientnet_es: { origin: TF, rows: [['in1k', 224, 0.875, { inception: true }]] },
  tf_efficientnet_em: { origin: TF, rows: [['in1k', 240, 0.882, { inception: true }]] },
  tf_efficientnet_el: { origin: TF, rows: [['in1k', 300, 0.904, { inception: true }]] },
  efficientnetv2_rw_t: { origin: TIMM, rows: [['ra2_in1k', 224, 1.0, { test: 288 }]] },
  efficientnetv2_rw_s: { origin: TIMM, rows: [['ra2_in1k', 288, 1.0, { test: 384 }]] },
  efficientnetv2_rw_m: { origin: TIMM, rows: [['agc_in1k', 320, 1.0, { test: 416 }]] },
  tf_efficientnetv2_b0: { origin: TF, rows: [['in1k', 192, 0.875, { test: 224 }]] },
  tf_efficientnetv2_b1: { origin: TF, rows: [['in1k', 192, 0.882, { test: 240 }]] },
  tf_efficientnetv2_b2: { origin: TF, rows: [['in1k', 208, 0.89, { test: 260 }]] },
  tf_efficientnetv2_b3: {
    origin: TF,
    rows: [
      ['in21k_ft_in1k', 240, 0.9, { test: 300, inception: true }],
      ['in1k', 240, 0.904, { test: 300 }],
      ['in21k', 240, 0.9, { test: 300, inception: true, classes: 21843 }],
    ],
  },
  tf_efficientnetv2_s: {
    origin: TF,
    rows: [
      ['in21k_ft_in1k', 300, 1.0, { test: 384, inception: true }],
      ['in1k', 300, 1.0, { test: 384 }],
      ['in21k', 300, 1.0, { test: 384, inception: true, classes: 21843 }],
    ],
  },
  tf_efficientnetv2_m: {
    origin: TF,
    rows: [
      ['in21k_ft_in1k', 384, 1.0, { test: 480, inception: true }],
      ['in1k', 384, 1.0, { test: 480 }],
      ['in21k', 384, 1.0, { test: 480, inception: true, classes: 21843 }],
    ],
  },
  tf_efficientnetv2_l: {
    origin: TF,
    rows: [
      ['in21k_ft_in1k', 384, 1.0, { test: 480, inception: true }],
      ['in1k', 384, 1.0, { test: 480 }],
      ['in21k', 384, 1.0, { test: 480, inception: true, classes: 21843 }],
    ],
  },
  tf_efficientnetv2_xl: {
    origin: TF,
    rows: [
      ['in21k_ft_in1k', 384, 1.0, { test: 512, inception: true }],
      ['in21k', 384, 1.0, { test: 512, inception: true, classes: 21843 }],
    ],
  },
};

function toCfg(name: string, origin: string, [tag, size, cropPct, extra = {}]: Row): PretrainedCfg {
  return {
    id: `${name}.${tag}`,
    hfHubId: `timm/${name}.${tag}`,
    inputSize: [3, size, size],
    testInputSize: extra.test ? [3, extra.test, extra.test] : undefined,
    cropPct,
    interpolation: extra.interp ?? 'bicubic',
    mean: extra.inception ? INCEPTION_MEAN : IMAGENET_DEFAULT_MEAN,
    std: extra.inception ? INCEPTION_STD : IMAGENET_DEFAULT_STD,
    numClasses: extra.classes ?? 1000,
    license: 'apache-2.0',
    origin,
  };
}

/** Every released checkpoint of `name` (default first); empty for architectures without released weights. */
export function pretrainedCfgs(name: string): PretrainedCfg[] {
  const entry = TABLE[name];
  return entry ? entry.rows.map((r) => toCfg(name, entry.origin, r)) : [];
}

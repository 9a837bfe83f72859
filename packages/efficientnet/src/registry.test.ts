import {
  createModel,
  decodeBlockString,
  EfficientNet,
  getPretrainedCfg,
  listModels,
  resolveArch,
  scaleStageDepth,
} from '@effdet/efficientnet';
import { type InvertedResidual, StateDictError } from '@effdet/layers';
import { describeWithBackends, expectNoLeaks } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';

/** timm 1.0.9 parameter counts (classifier, 1000 classes). */
const REFERENCE_PARAMS: Record<string, number> = {
  efficientnet_b0: 5_288_548,
  efficientnet_b3: 12_233_232,
  tf_efficientnet_b7: 66_347_960,
  tf_efficientnet_l2: 480_309_308,
  efficientnet_lite0: 4_652_008,
  tf_efficientnet_lite4: 13_006_568,
  efficientnet_es: 5_438_392,
  tf_efficientnet_el: 10_589_712,
  efficientnetv2_rw_t: 13_649_388,
  tf_efficientnetv2_b0: 7_139_704,
  tf_efficientnetv2_s: 21_458_488,
  tf_efficientnetv2_xl: 208_119_808,
  test_efficientnet: 356_196,
};

const REQUIRED = [
  ...['b0', 'b1', 'b2', 'b3', 'b4', 'b5'].map((b) => `efficientnet_${b}`),
  ...['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7', 'b8', 'l2'].map((b) => `tf_efficientnet_${b}`),
  ...[0, 1, 2, 3, 4].flatMap((i) => [`efficientnet_lite${i}`, `tf_efficientnet_lite${i}`]),
  ...['es', 'em', 'el'].flatMap((v) => [`efficientnet_${v}`, `tf_efficientnet_${v}`]),
  ...['t', 's', 'm'].map((v) => `efficientnetv2_rw_${v}`),
  ...['b0', 'b1', 'b2', 'b3', 's', 'm', 'l', 'xl'].map((v) => `tf_efficientnetv2_${v}`),
];

/** Models whose weights are too large to allocate in CI: checked from shapes alone. */
const SHAPES_ONLY_PARAMS = 100_000_000;

describe('registry', () => {
  it('lists every required timm model', () => {
    const all = listModels();
    for (const name of REQUIRED) expect(all).toContain(name);
    expect(listModels('tf_efficientnet_lite*')).toEqual([
      'tf_efficientnet_lite0',
      'tf_efficientnet_lite1',
      'tf_efficientnet_lite2',
      'tf_efficientnet_lite3',
      'tf_efficientnet_lite4',
    ]);
    expect(listModels(/^efficientnetv2_rw/)).toEqual([
      'efficientnetv2_rw_m',
      'efficientnetv2_rw_s',
      'efficientnetv2_rw_t',
    ]);
    expect(listModels('*lite0', { pretrained: true })).toEqual([
      'efficientnet_lite0',
      'tf_efficientnet_lite0',
    ]);
  });

  it.each(Object.entries(REFERENCE_PARAMS))(
    '%s has timm parameter count %d, built from shapes only',
    async (name, count) => {
      await expectNoLeaks(() => {
        const m = createModel(name);
        expect(m.numParams()).toBe(count);
        // Nothing was allocated: the state is only shapes until used.
        expect(m.namedState().every(([, p]) => !p.allocated)).toBe(true);
      }, `createModel(${name})`);
    },
  );

  it('unknown model names and options throw and list the valid ones', () => {
    expect(() => createModel('efficientnet_b9')).toThrow(
      /unknown model 'efficientnet_b9'.*Valid models: .*efficientnet_b0/s,
    );
    expect(() => createModel('tf_efficientnet_b0', { numClass: 10 } as never)).toThrow(
      /unknown option\(s\) 'numClass'.*valid options: numClasses/,
    );
    expect(() => createModel('tf_efficientnet_b0', { outputStride: 4 as never })).toThrow(
      /outputStride must be 8, 16 or 32, got 4/,
    );
    expect(() => createModel('tf_efficientnet_b0', { featuresOnly: true, outIndices: [5] })).toThrow(
      /outIndices must be integers in \[0, 4\]/,
    );
  });

  it('pretrained configs carry input size, mean/std, crop and license', () => {
    const cfg = getPretrainedCfg('tf_efficientnet_b3')!;
    expect(cfg.id).toBe('tf_efficientnet_b3.ns_jft_in1k');
    expect(cfg.inputSize).toEqual([3, 300, 300]);
    expect(cfg.mean).toEqual([0.485, 0.456, 0.406]);
    expect(cfg.license).toBe('apache-2.0');
    expect(getPretrainedCfg('tf_efficientnet_lite0')!.mean).toEqual([0.5, 0.5, 0.5]);
    expect(getPretrainedCfg('efficientnetv2_s')).toBeNull();
  });

  it('tf_ models use SAME padding and eps 1e-3, others PyTorch padding and eps 1e-5', () => {
    expect(resolveArch('tf_efficientnet_b0')).toMatchObject({ padding: 'same', bnEps: 1e-3 });
    expect(resolveArch('efficientnet_b0')).toMatchObject({ padding: '', bnEps: 1e-5 });
    const tfm = createModel('tf_efficientnet_b0');
    const pt = createModel('efficientnet_b0');
    expect(tfm.conv_stem.padding).toBe('same');
    expect(pt.conv_stem.padding).toEqual([
      [1, 1],
      [1, 1],
    ]);
    expect(tfm.bn1.eps).toBe(1e-3);
    expect(pt.bn1.eps).toBe(1e-5);
  });
});

describe('architecture strings', () => {
  it('decodes every option', () => {
    const { args, repeats } = decodeBlockString('ir_r3_k5_s2_e6_c40_se0.25');
    expect(repeats).toBe(3);
    expect(args).toMatchObject({
      blockType: 'ir',
      kernelSize: 5,
      stride: 2,
      expRatio: 6,
      outChannels: 40,
      seRatio: 0.25,
    });
    expect(decodeBlockString('er_r1_k3_s1_e4_c24_fc24_noskip').args).toMatchObject({
      blockType: 'er',
      expKernelSize: 3,
      forceInChannels: 24,
      noSkip: true,
    });
    expect(decodeBlockString('cn_r2_k3_s1_e1_c24_skip').args).toMatchObject({ blockType: 'cn', skip: true });
    expect(decodeBlockString('ds_r1_k3_s1_e1_c16_nre').args.act).toBe('relu');
    expect(() => decodeBlockString('xx_r1_k3_s1_c16')).toThrow(/unknown block type 'xx'/);
    expect(() => decodeBlockString('ir_r1_k3_s1_e6')).toThrow(/has no 'c' option/);
  });

  it('scales depth with ceil, as timm', () => {
    expect(scaleStageDepth([3], 1.1)).toEqual([4]);
    expect(scaleStageDepth([4], 3.1)).toEqual([13]);
    expect(scaleStageDepth([1, 2], 2)).toEqual([2, 4]);
  });
});

/** The depthwise conv of block `b` in stage `s` (every block of these stages is an InvertedResidual). */
function dw(m: EfficientNet, s: number, b: number) {
  return (m.blocks.items[s].items[b] as InvertedResidual).conv_dw;
}

describe('feature extraction contract', () => {
  it('b3 featureInfo equals timm (channels 24/32/48/136/384, reductions 2..32)', () => {
    const m = createModel('efficientnet_b3', { featuresOnly: true });
    expect(m.featureInfo.map((f) => f.channels)).toEqual([24, 32, 48, 136, 384]);
    expect(m.featureInfo.map((f) => f.reduction)).toEqual([2, 4, 8, 16, 32]);
    expect(m.featureInfo.map((f) => f.module)).toEqual([
      'blocks.0',
      'blocks.1',
      'blocks.2',
      'blocks.4',
      'blocks.6',
    ]);
  });

  it('outputStride 16 and 8 dilate the later stages as timm', () => {
    const os16 = createModel('tf_efficientnet_b0', { featuresOnly: true, outputStride: 16 });
    expect(os16.featureInfo.map((f) => f.reduction)).toEqual([2, 4, 8, 16, 16]);
    expect(dw(os16, 5, 0)).toMatchObject({ stride: 1, dilation: 1 });
    expect(dw(os16, 5, 1)).toMatchObject({ stride: 1, dilation: 2 });
    const os8 = createModel('efficientnet_b0', { featuresOnly: true, outputStride: 8 });
    expect(os8.featureInfo.map((f) => f.reduction)).toEqual([2, 4, 8, 8, 8]);
    expect(dw(os8, 3, 0)).toMatchObject({ stride: 1, dilation: 1 });
    expect(dw(os8, 3, 1)).toMatchObject({ stride: 1, dilation: 2 });
    expect(dw(os8, 5, 1)).toMatchObject({ stride: 1, dilation: 4 });
  });

  it('expansion features tap the input of the projection conv', () => {
    const m = createModel('tf_efficientnet_b0', { featuresOnly: true, featureLocation: 'expansion' });
    expect(m.featureInfo.map((f) => f.module)).toEqual([
      'blocks.0.0.conv_pw',
      'blocks.1.1.conv_pwl',
      'blocks.2.1.conv_pwl',
      'blocks.4.2.conv_pwl',
      'blocks.6.0.conv_pwl',
    ]);
    expect(m.featureInfo.map((f) => f.channels)).toEqual([32, 144, 240, 672, 1152]);
  });
});

/** Checks one model at a small input: shapes, featureInfo, no NaN, no leak across two calls. */
async function checkForward(name: string, size: number): Promise<void> {
  const feat = createModel(name, { featuresOnly: true });
  const x = tf.randomNormal([1, size, size, 3]);
  try {
    const run = () => {
      const fs = feat.features(x);
      fs.forEach((f, i) => {
        const info = feat.featureInfo[i];
        expect(f.shape).toEqual([
          1,
          Math.ceil(size / info.reduction),
          Math.ceil(size / info.reduction),
          info.channels,
        ]);
        expect(tf.tidy(() => tf.any(tf.isNaN(f)).dataSync()[0])).toBe(0);
      });
      tf.dispose(fs);
    };
    run();
    await expectNoLeaks(run, `${name}.features`);
    // The classifier's state dict is a superset of the feature extractor's, with the same shapes.
    const cls = createModel(name);
    const clsShapes = cls.stateShapes();
    for (const [k, shape] of Object.entries(feat.stateShapes())) expect(clsShapes[k]).toEqual(shape);
    const extra = Object.keys(clsShapes).filter((k) => !(k in feat.stateShapes()));
    expect(extra.every((k) => /^(conv_head|bn2|classifier)\./.test(k))).toBe(true);
  } finally {
    x.dispose();
    feat.dispose();
  }
}

describeWithBackends('every registered model builds and runs', (backend) => {
  const names = listModels().filter((n) => createModel(n).numParams() < SHAPES_ONLY_PARAMS);
  // The cpu backend is ~10x slower: it runs a representative subset, wasm runs everything.
  const subset =
    backend === 'cpu'
      ? names.filter((n) =>
          /^(effdet_test_efficientnet|efficientnet_b0|tf_efficientnetv2_b0|efficientnet_es)$/.test(n),
        )
      : names;
  it.each(subset)('%s features at 64x64', async (name) => {
    await checkForward(name, 64);
  });

  it('only the huge models are checked from shapes alone', () => {
    const huge = listModels().filter((n) => !names.includes(n));
    expect(huge).toEqual(
      expect.arrayContaining(['efficientnetv2_xl', 'tf_efficientnet_l2', 'tf_efficientnetv2_xl']),
    );
    for (const n of huge) expect(createModel(n).numParams()).toBeGreaterThanOrEqual(SHAPES_ONLY_PARAMS);
  });

  it('a classifier returns logits and pre-logits, without leaks', async () => {
    const m = createModel('effdet_test_efficientnet', { numClasses: 7 });
    const x = tf.randomNormal([2, 48, 40, 3]);
    const run = () => {
      const logits = m.forward(x);
      expect(logits.shape).toEqual([2, 7]);
      const f = m.forwardFeatures(x);
      expect(f.shape).toEqual([2, 2, 2, 128]);
      const pre = m.forwardHead(f, { preLogits: true });
      expect(pre.shape).toEqual([2, 128]);
      tf.dispose([logits, f, pre]);
    };
    run();
    await expectNoLeaks(run, 'classifier');
    m.resetClassifier(3);
    const y = m.forward(x);
    expect(y.shape).toEqual([2, 3]);
    y.dispose();
    x.dispose();
    m.dispose();
  });

  it('bad inputs give clear errors and leak nothing', async () => {
    const m = createModel('effdet_test_efficientnet');
    await expectNoLeaks(() => {
      const x3 = tf.zeros([8, 8, 3]);
      expect(() => m.forward(x3)).toThrow(
        /effdet_test_efficientnet\.forwardFeatures: expected input \[batch, height, width, 3\] \(NHWC\), got \[8,8,3\]/,
      );
      const x4 = tf.zeros([1, 8, 8, 4]);
      expect(() => m.features(x4)).toThrow(
        /expected input \[batch, height, width, 3\] \(NHWC\), got \[1,8,8,4\]/,
      );
      const xi = tf.zeros([1, 8, 8, 3], 'int32');
      expect(() => m.forward(xi)).toThrow(/expected a float32 tensor, got int32/);
      tf.dispose([x3, x4, xi]);
    });
    m.dispose();
  });

  it('mismatched weights are rejected with every problem listed, and nothing changes', async () => {
    const a = createModel('effdet_test_efficientnet');
    const b = createModel('tf_efficientnet_b0');
    const sd = a.stateDict();
    const before = a.conv_stem.weight.value.dataSync().slice();
    expect(() => b.loadStateDict(sd)).toThrow(/missing, .* unexpected, .* mis-shaped; nothing was loaded/);
    let err: StateDictError | null = null;
    try {
      b.loadStateDict(sd);
    } catch (e) {
      err = e as StateDictError;
    }
    expect(err).toBeInstanceOf(StateDictError);
    expect(err!.message).toMatch(/mis-shaped: conv_stem\.weight expected \[32,3,3,3\] got \[16,3,3,3\]/);
    expect(err!.missing).toContain('blocks.6.0.conv_pw.weight');
    expect(err!.unexpected).toContain('blocks.0.0.conv.weight');
    const sd2 = { ...sd, extra: tf.zeros([1]) };
    expect(() => a.loadStateDict(sd2)).toThrow(/1 unexpected.*unexpected: extra/s);
    expect(Array.from(a.conv_stem.weight.value.dataSync())).toEqual(Array.from(before));
    expect(a.loadStateDict(sd2, { strict: false })).toEqual({ missing: [], unexpected: ['extra'] });
    tf.dispose(Object.values(sd2));
    a.dispose();
    b.dispose();
  });
});

it('EfficientNet is exported for custom architectures', () => {
  const arch = resolveArch('effdet_test_efficientnet');
  const m = new EfficientNet('custom', { ...arch, act: 'relu' }, { numClasses: 2 });
  expect(m.numClasses).toBe(2);
});

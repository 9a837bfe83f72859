import {
  createEfficientDet,
  getEfficientDetConfig,
  listEfficientDetModels,
  numAnchors,
} from '@effdet/effdet';
import { describeWithBackends, expectNoLeaks } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';

/** effdet 0.4.1 parameter counts. */
const REFERENCE_PARAMS: Record<string, number> = {
  tf_efficientdet_d0: 3_880_067,
  tf_efficientdet_d1: 6_625_898,
  tf_efficientdet_d3: 12_032_296,
  tf_efficientdet_d6: 51_871_782,
  tf_efficientdet_d7x: 77_147_166,
  tf_efficientdet_lite0: 3_243_470,
  tf_efficientdet_lite3x: 9_280_862,
  tf_efficientdet_lite4: 15_130_894,
  efficientdet_d0: 3_877_763,
  efficientdet_lite0: 3_241_223,
  efficientdet_q0: 4_126_234,
  efficientdet_w0: 4_291_811,
  efficientdet_es: 5_932_167,
  efficientdet_em: 9_354_522,
  efficientdetv2_dt: 13_432_497,
  efficientdetv2_ds: 26_580_635,
};

const REQUIRED = [
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `tf_efficientdet_d${i}`),
  'tf_efficientdet_d7x',
  ...[0, 1, 2, 3, 4, 5].map((i) => `tf_efficientdet_d${i}_ap`),
  ...[0, 1, 2, 3, 4].map((i) => `tf_efficientdet_lite${i}`),
  'tf_efficientdet_lite3x',
  ...[0, 1, 2, 3, 4, 5].map((i) => `efficientdet_d${i}`),
  'efficientdet_lite0',
  'efficientdet_q0',
  'efficientdet_q1',
  'efficientdet_q2',
  'efficientdet_w0',
  'efficientdet_es',
  'efficientdet_em',
  'efficientdetv2_dt',
  'efficientdetv2_ds',
];

describe('EfficientDet registry', () => {
  it('has every EfficientNet-based config of the reference zoo', () => {
    expect(listEfficientDetModels()).toEqual(expect.arrayContaining(REQUIRED));
    expect(listEfficientDetModels('tf_efficientdet_lite*')).toHaveLength(6);
  });

  it.each(listEfficientDetModels())(
    '%s builds from shapes: unique names, head channels = anchors x outputs',
    (name) => {
      const before = tf.memory().numTensors;
      const m = createEfficientDet(name);
      const shapes = m.stateShapes();
      const names = Object.keys(shapes);
      expect(new Set(names).size).toBe(names.length);
      expect(names.every((n) => /^(backbone|fpn|class_net|box_net)\./.test(n))).toBe(true);
      const cfg = m.config;
      const a = numAnchors(cfg);
      const pw = cfg.separableConv ? 'conv_pw' : 'conv';
      expect(shapes[`class_net.predict.${pw}.weight`][0]).toBe(a * cfg.numClasses);
      expect(shapes[`box_net.predict.${pw}.weight`][0]).toBe(a * 4);
      if (REFERENCE_PARAMS[name] !== undefined) expect(m.numParams()).toBe(REFERENCE_PARAMS[name]);
      expect(tf.memory().numTensors).toBe(before);
    },
  );

  it('configs are frozen; unknown names and keys throw with the valid ones listed', () => {
    const cfg = getEfficientDetConfig('tf_efficientdet_d0');
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(Object.isFrozen(cfg.imageSize)).toBe(true);
    expect(() => getEfficientDetConfig('tf_efficientdet_d9')).toThrow(
      /unknown model 'tf_efficientdet_d9'; valid models: .*tf_efficientdet_d0/,
    );
    expect(() => getEfficientDetConfig('tf_efficientdet_d0', { numClass: 3 } as never)).toThrow(
      /unknown config key\(s\) 'numClass'; valid keys: .*numClasses/,
    );
    expect(() => getEfficientDetConfig('tf_efficientdet_d0', { numClasses: 0 })).toThrow(
      /numClasses must be a positive integer/,
    );
    const custom = getEfficientDetConfig('tf_efficientdet_d0', {
      backboneName: 'tf_efficientnetv2_b0',
      numClasses: 3,
      imageSize: [256, 320],
      fpnChannels: 32,
    });
    const m = createEfficientDet(custom);
    expect(m.stateShapes()['class_net.predict.conv_pw.weight']).toEqual([27, 32, 1, 1]);
  });

  it('resetHead keeps backbone and pyramid and rebuilds the heads', () => {
    const m = createEfficientDet('test_efficientdet');
    const fpnBefore = Object.keys(m.stateShapes()).filter((n) => n.startsWith('fpn.'));
    m.resetHead({ numClasses: 7 });
    expect(m.config.numClasses).toBe(7);
    const shapes = m.stateShapes();
    expect(Object.keys(shapes).filter((n) => n.startsWith('fpn.'))).toEqual(fpnBefore);
    expect(shapes['class_net.predict.conv_pw.weight'][0]).toBe(7 * 9);
    const keys = Object.keys(shapes);
    expect(keys.findIndex((k) => k.startsWith('class_net'))).toBeLessThan(
      keys.findIndex((k) => k.startsWith('box_net')),
    );
    m.resetHead({ aspectRatios: [1.0], numScales: 2 });
    expect(m.stateShapes()['box_net.predict.conv_pw.weight'][0]).toBe(2 * 4);
    expect(m.stateShapes()['class_net.predict.conv_pw.weight'][0]).toBe(2 * 7);
  });
});

/** Models whose weights are too large to allocate for a smoke forward in CI. */
const FORWARD_MAX_PARAMS = 60_000_000;

describeWithBackends('EfficientDet forward at a small input', (backend) => {
  const names = listEfficientDetModels().filter(
    (n) =>
      (backend === 'wasm' || /^(test_efficientdet|tf_efficientdet_d0)$/.test(n)) &&
      createEfficientDet(n).numParams() < FORWARD_MAX_PARAMS,
  );
  it.each(names)('%s at 128x128: shapes, no NaN, no leak', async (name) => {
    const m = createEfficientDet(name, { imageSize: [128, 128] });
    const x = tf.randomNormal([1, 128, 128, 3]);
    const a = numAnchors(m.config);
    const run = () => {
      const { classOut, boxOut } = m.forward(x);
      const sizes = [16, 8, 4, 2, 1, 1].slice(0, m.config.maxLevel - m.config.minLevel + 1);
      expect(classOut.map((t) => t.shape)).toEqual(sizes.map((s) => [1, s, s, a * m.config.numClasses]));
      expect(boxOut.map((t) => t.shape)).toEqual(sizes.map((s) => [1, s, s, a * 4]));
      for (const t of [...classOut, ...boxOut])
        expect(tf.tidy(() => tf.any(tf.isNaN(t)).dataSync()[0])).toBe(0);
      tf.dispose([...classOut, ...boxOut]);
    };
    run();
    await expectNoLeaks(run, `${name}.forward`);
    x.dispose();
    m.dispose();
  });

  it('bad input: wrong size, channels, rank; weights of another config', async () => {
    const m = createEfficientDet('test_efficientdet');
    await expectNoLeaks(() => {
      const a = tf.zeros([1, 64, 64, 3]);
      expect(() => m.forward(a)).toThrow(
        /test_efficientdet.forward: expected a normalised image batch \[batch, 128, 128, 3\].*got \[1,64,64,3\]/,
      );
      const b = tf.zeros([1, 128, 128, 4]);
      expect(() => m.forward(b)).toThrow(/got \[1,128,128,4\]/);
      tf.dispose([a, b]);
    });
    const other = createEfficientDet('test_efficientdet', { numClasses: 5 });
    const sd = other.stateDict();
    expect(() => m.loadStateDict(sd)).toThrow(
      /mis-shaped: class_net\.predict\.conv_pw\.weight expected \[810,16,1,1\] got \[45,16,1,1\]/,
    );
    tf.dispose(Object.values(sd));
    other.dispose();
    m.dispose();
  });
});

import { HeadNet, type HeadOptions } from '@effdet/heads';
import type { SeparableConvNormAct } from '@effdet/layers';
import { describeWithBackends, expectClose, expectNoLeaks } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';

const base: HeadOptions = {
  numLevels: 3,
  fpnChannels: 8,
  repeats: 2,
  numOutputs: 5,
  numAnchors: 9,
  padding: 'same',
  act: 'swish',
  norm: { eps: 1e-3, momentum: 0.01 },
  separableConv: true,
  redundantBias: true,
  bnLevelFirst: false,
  predictBiasInit: -Math.log(99),
};

describe('HeadNet state dict', () => {
  it('repeat-first BN names (original weights) and level-first names', () => {
    const a = Object.keys(new HeadNet(base).stateShapes());
    expect(a).toContain('conv_rep.1.conv_pw.bias');
    expect(a).toContain('bn_rep.1.2.bn.running_var'); // repeat 1, level 2
    expect(a).toContain('predict.conv_pw.weight');
    const b = Object.keys(new HeadNet({ ...base, bnLevelFirst: true, redundantBias: false }).stateShapes());
    expect(b).toContain('bn_rep.2.1.running_var'); // level 2, repeat 1
    expect(b.some((n) => n.startsWith('conv_rep') && n.endsWith('bias'))).toBe(false);
    const c = new HeadNet({ ...base, separableConv: false }).stateShapes();
    expect(c['predict.conv.weight']).toEqual([45, 8, 3, 3]);
    expect(c['conv_rep.0.conv.bias']).toEqual([8]);
  });

  it('prediction bias starts at the focal prior', () => {
    const h = new HeadNet(base);
    const b = (h.predict as SeparableConvNormAct).conv_pw.bias!.value.dataSync();
    expect(b[0]).toBeCloseTo(-Math.log(99), 5);
  });
});

describeWithBackends('HeadNet forward', () => {
  it('shares convs across levels, uses per-level BN; output channels = anchors x outputs; folded equal', async () => {
    const h = new HeadNet(base);
    // Give each level's BN different statistics so a shared-BN bug would show.
    const sd = h.stateDict();
    const rnd = tf.tidy(() =>
      Object.fromEntries(
        Object.entries(sd).map(([k, v]) => [
          k,
          k.endsWith('running_var')
            ? tf.add(tf.randomUniform(v.shape), 0.5)
            : tf.randomNormal(v.shape, 0, 0.3),
        ]),
      ),
    );
    h.loadStateDict(rnd);
    tf.dispose([...Object.values(sd), ...Object.values(rnd)]);
    const xs = [
      tf.randomNormal([1, 8, 8, 8]),
      tf.randomNormal([1, 4, 4, 8]),
      tf.randomNormal([1, 2, 2, 8]),
    ] as tf.Tensor4D[];
    const ref = h.forward(xs);
    expect(ref.map((t) => t.shape)).toEqual([
      [1, 8, 8, 45],
      [1, 4, 4, 45],
      [1, 2, 2, 45],
    ]);
    // Same input at two levels must differ (different BN per level).
    const same = h.forward([xs[1], xs[1], xs[2]]);
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(same[0], same[1]))).dataSync()[0])).toBeGreaterThan(1e-3);
    h.fuseForInference();
    tf.dispose(h.forward(xs));
    await expectNoLeaks(() => {
      const f = h.forward(xs);
      for (const [i, t] of f.entries()) expectClose(t, ref[i], 1e-4, `level ${i}`);
      tf.dispose(f);
    });
    expect(() => h.forward(xs.slice(0, 2))).toThrow(/expected 3 levels, got 2/);
    tf.dispose([...xs, ...ref, ...same]);
    h.dispose();
  });
});

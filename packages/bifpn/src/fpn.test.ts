import { BiFpn, FpnCombine, type FpnOptions, featSizes, ResampleFeatureMap } from '@effdet/bifpn';
import { describeWithBackends, expectNoLeaks, expectValues } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';

const base: FpnOptions = {
  minLevel: 3,
  maxLevel: 7,
  fpnChannels: 8,
  cellRepeats: 2,
  imageSize: [64, 48],
  fpnName: 'bifpn_fa',
  padding: 'same',
  downsampleType: 'max',
  upsampleType: 'nearest',
  act: 'swish',
  norm: { eps: 1e-3, momentum: 0.01 },
  separableConv: true,
  applyResampleBn: true,
  convBnReluPattern: false,
  redundantBias: true,
};
const info = [
  { channels: 6, reduction: 8 },
  { channels: 10, reduction: 16 },
  { channels: 12, reduction: 32 },
];

describe('feature sizes', () => {
  it('halve with ceil per level (effdet get_feat_sizes)', () => {
    expect(featSizes([512, 512], 7).slice(3)).toEqual([
      [64, 64],
      [32, 32],
      [16, 16],
      [8, 8],
      [4, 4],
    ]);
    expect(
      featSizes([320, 320], 7)
        .slice(3)
        .map((s) => s[0]),
    ).toEqual([40, 20, 10, 5, 3]);
    expect(featSizes([384, 256], 7).slice(3)).toEqual([
      [48, 32],
      [24, 16],
      [12, 8],
      [6, 4],
      [3, 2],
    ]);
  });
});

describe('BiFpn state dict', () => {
  it('names follow effdet (resample for extra levels, cell.r.fnode.i.combine / after_combine)', () => {
    const fpn = new BiFpn(base, info);
    const names = Object.keys(fpn.stateShapes());
    expect(names).toContain('resample.3.conv.conv.weight');
    expect(names).toContain('resample.3.conv.conv.bias');
    expect(names).toContain('resample.3.conv.bn.running_var');
    expect(names.some((n) => n.startsWith('resample.4'))).toBe(false); // P7 is a pool: no parameters
    expect(names).toContain('cell.0.fnode.0.combine.edge_weights');
    expect(names).toContain('cell.0.fnode.2.combine.resample.1.conv.conv.weight');
    expect(names).toContain('cell.0.fnode.0.after_combine.conv.conv_dw.weight');
    expect(names).toContain('cell.0.fnode.0.after_combine.conv.conv_pw.bias');
    expect(names).toContain('cell.1.fnode.7.after_combine.conv.bn.weight');
    // Cell 1 inputs are already fpnChannels wide: no resample convs.
    expect(names.some((n) => n.startsWith('cell.1') && n.includes('combine.resample'))).toBe(false);
    expect(new Set(names).size).toBe(names.length);
    const sum = new BiFpn({ ...base, fpnName: 'bifpn_sum', redundantBias: false }, info);
    const sumNames = Object.keys(sum.stateShapes());
    expect(sumNames.some((n) => n.endsWith('edge_weights'))).toBe(false);
    expect(sumNames.some((n) => n.endsWith('conv_pw.bias'))).toBe(false);
  });

  it('rejects backbone features at the wrong reductions', () => {
    expect(() => new BiFpn(base, [{ channels: 6, reduction: 4 }])).toThrow(
      /reduction 4, expected 8 for level 3/,
    );
  });
});

describeWithBackends('BiFpn forward', () => {
  it('returns minLevel..maxLevel at the static sizes; checks input sizes; no leaks', async () => {
    const fpn = new BiFpn(base, info);
    const xs = [
      tf.randomNormal([2, 8, 6, 6]),
      tf.randomNormal([2, 4, 3, 10]),
      tf.randomNormal([2, 2, 2, 12]),
    ] as tf.Tensor4D[];
    const run = () => {
      const out = fpn.forward(xs);
      expect(out.map((t) => t.shape)).toEqual([
        [2, 8, 6, 8],
        [2, 4, 3, 8],
        [2, 2, 2, 8],
        [2, 1, 1, 8],
        [2, 1, 1, 8],
      ]);
      tf.dispose(out);
    };
    run();
    await expectNoLeaks(run, 'BiFpn.forward');
    const bad = tf.zeros([2, 9, 6, 6]) as tf.Tensor4D;
    expect(() => fpn.forward([bad, xs[1], xs[2]])).toThrow(
      /level 3 must be \[batch, 8, 6, C\] for image size 64x48, got \[2,9,6,6\]/,
    );
    tf.dispose([...xs, bad]);
    fpn.dispose();
  });

  it('fast attention: relu(w) / (sum + 1e-4); attn: softmax; sum (literal)', () => {
    const feats = [
      { channels: 1, size: [2, 2] as [number, number] },
      { channels: 1, size: [2, 2] as [number, number] },
    ];
    const o = { ...base, fpnChannels: 1 };
    const x = [tf.fill([1, 2, 2, 1], 2), tf.fill([1, 2, 2, 1], 4)] as tf.Tensor4D[];
    const fa = new FpnCombine(feats, 1, [0, 1], [2, 2], 'fastattn', o);
    fa.loadStateDict({ edge_weights: tf.tensor1d([3, -1]) });
    expectValues(fa.forward(x), new Array(4).fill((2 * 3) / (3 + 1e-4)), 1e-6);
    const at = new FpnCombine(feats, 1, [0, 1], [2, 2], 'attn', o);
    at.loadStateDict({ edge_weights: tf.tensor1d([0, Math.log(3)]) });
    expectValues(at.forward(x), new Array(4).fill(2 * 0.25 + 4 * 0.75), 1e-5);
    const sm = new FpnCombine(feats, 1, [0, 1], [2, 2], 'sum', o);
    expectValues(sm.forward(x), new Array(4).fill(6));
  });

  it('resampling: max pool down (SAME, -inf pad), nearest up by target size, bilinear down', () => {
    const opts = { ...base, applyResampleBn: false };
    const down = new ResampleFeatureMap({ channels: 1, size: [4, 4] }, 1, [2, 2], opts);
    const x = tf.tensor4d(
      [-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16],
      [1, 4, 4, 1],
    );
    expectValues(down.forward(x), [-1, -3, -9, -11]);
    const up = new ResampleFeatureMap({ channels: 1, size: [2, 2] }, 1, [3, 3], opts);
    expectValues(up.forward(tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1])), [1, 1, 2, 1, 1, 2, 3, 3, 4]);
    const bl = new ResampleFeatureMap({ channels: 1, size: [4, 4] }, 1, [2, 2], {
      ...opts,
      downsampleType: 'bilinear',
    });
    expectValues(bl.forward(x), [-3.5, -5.5, -11.5, -13.5]);
    const ch = new ResampleFeatureMap({ channels: 3, size: [4, 4] }, 2, [4, 4], opts);
    expect(Object.keys(ch.stateShapes())).toEqual(['conv.conv.weight', 'conv.conv.bias']);
    tf.dispose(x);
  });
});

import {
  BatchNorm2d,
  Conv2d,
  Dropout,
  DropPath,
  getActivation,
  globalPool,
  Linear,
  listActivations,
  makeDivisible,
  Pool2d,
  pyRound,
  resize,
} from '@effdet/layers';
import { describeWithBackends, expectNoLeaks, expectValues } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';

/** Naive NHWC convolution with explicit per-side pads (zeros): the reference the layers are checked against. */
function naiveConv(
  x: number[][][],
  w: number[][][][], // [kh][kw][in][out]
  stride: number,
  dilation: number,
  [pt, pb, pl, pr]: [number, number, number, number],
  depthwise = false,
): number[][][] {
  const H = x.length;
  const W = x[0].length;
  const kh = w.length;
  const kw = w[0].length;
  const cin = x[0][0].length;
  const cout = depthwise ? cin : w[0][0][0].length;
  const eh = (kh - 1) * dilation + 1;
  const ew = (kw - 1) * dilation + 1;
  const oh = Math.floor((H + pt + pb - eh) / stride) + 1;
  const ow = Math.floor((W + pl + pr - ew) / stride) + 1;
  const out: number[][][] = [];
  for (let i = 0; i < oh; i++) {
    out.push([]);
    for (let j = 0; j < ow; j++) {
      const v = new Array(cout).fill(0);
      for (let a = 0; a < kh; a++)
        for (let b = 0; b < kw; b++) {
          const y = i * stride + a * dilation - pt;
          const xx = j * stride + b * dilation - pl;
          if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
          for (let c = 0; c < cin; c++) {
            if (depthwise) v[c] += x[y][xx][c] * w[a][b][c][0];
            else for (let o = 0; o < cout; o++) v[o] += x[y][xx][c] * w[a][b][c][o];
          }
        }
      out[i].push(v);
    }
  }
  return out;
}

/** TF SAME pads for one dimension. */
function samePads(size: number, k: number, s: number, d: number): [number, number] {
  const out = Math.ceil(size / s);
  const total = Math.max((out - 1) * s + (k - 1) * d + 1 - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

describeWithBackends('Conv2d', () => {
  const cases = [
    { name: 'x=[1,6,6,2] k3 s2 same', size: 6, k: 3, s: 2, d: 1, pad: 'same' as const, dw: false },
    { name: 'x=[1,7,7,2] k5 s2 same', size: 7, k: 5, s: 2, d: 1, pad: 'same' as const, dw: false },
    { name: 'x=[1,6,6,2] k3 s2 pytorch', size: 6, k: 3, s: 2, d: 1, pad: '' as const, dw: false },
    { name: 'x=[1,8,8,2] k5 s2 pytorch depthwise', size: 8, k: 5, s: 2, d: 1, pad: '' as const, dw: true },
    { name: 'x=[1,8,8,2] k3 s2 same depthwise', size: 8, k: 3, s: 2, d: 1, pad: 'same' as const, dw: true },
    { name: 'x=[1,9,9,2] k3 s1 d2 same', size: 9, k: 3, s: 1, d: 2, pad: 'same' as const, dw: false },
    { name: 'x=[1,9,9,2] k3 s1 d2 pytorch depthwise', size: 9, k: 3, s: 1, d: 2, pad: '' as const, dw: true },
    { name: 'x=[1,5,5,2] k3 s1 valid', size: 5, k: 3, s: 1, d: 1, pad: 'valid' as const, dw: false },
  ];
  it.each(cases)('$name matches a naive convolution', async ({ size, k, s, d, pad, dw }) => {
    const cin = 2;
    const cout = dw ? 2 : 3;
    const conv = new Conv2d(cin, cout, k, {
      stride: s,
      dilation: d,
      padding: pad,
      depthwise: dw,
      bias: true,
    });
    const xv = tf.tidy(() => tf.randomNormal([1, size, size, cin]));
    const x = xv.arraySync() as number[][][][];
    const w = conv.weight.value.arraySync() as number[][][][];
    const bias = conv.bias!.value.arraySync() as number[];
    let pads: [number, number, number, number];
    if (pad === 'same') {
      const [t, b] = samePads(size, k, s, d);
      pads = [t, b, t, b];
    } else if (pad === 'valid') pads = [0, 0, 0, 0];
    else {
      const p = Math.floor((s - 1 + d * (k - 1)) / 2);
      pads = [p, p, p, p];
    }
    const want = naiveConv(x[0], w, s, d, pads, dw)
      .flat()
      .flatMap((v) => v.map((q, o) => q + bias[o]));
    await expectNoLeaks(() => {
      const y = conv.forward(xv as tf.Tensor4D);
      expectValues(y, want, 1e-4);
      y.dispose();
    });
    xv.dispose();
    conv.dispose();
  });

  it('literal: x=[1,2,2,1] f=[1,1,1,2] with bias', () => {
    const conv = new Conv2d(1, 2, 1, { bias: true });
    conv.loadStateDict({ weight: tf.tensor4d([2, -1], [2, 1, 1, 1]), bias: tf.tensor1d([0.5, 1]) });
    const y = conv.forward(tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]));
    expectValues(y, [2.5, 0, 4.5, -1, 6.5, -2, 8.5, -3]);
    tf.dispose([y]);
  });

  it('rejects a wrong channel count', () => {
    const conv = new Conv2d(3, 4, 3);
    const x = tf.zeros([1, 5, 5, 2]) as tf.Tensor4D;
    expect(() => conv.forward(x)).toThrow(
      /Conv2d.forward: expected input \[batch, height, width, 3\], got \[1,5,5,2\]/,
    );
    x.dispose();
    conv.dispose();
  });

  it('rejects unsupported configurations', () => {
    expect(() => new Conv2d(4, 8, 3, { groups: 2 })).toThrow(/groups must be 1 or inChannels \(4\)/);
    expect(() => new Conv2d(4, 8, 3, { stride: 2, dilation: 2 })).toThrow(/cannot both exceed 1/);
  });
});

describeWithBackends('Pool2d', () => {
  it('max pool k3 s2 PyTorch padding pads with -inf (negative inputs stay negative)', () => {
    const pool = new Pool2d('max', 3, 2, '');
    const x = tf.tensor4d(
      [-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16],
      [1, 4, 4, 1],
    );
    const y = pool.forward(x);
    expectValues(y, [-1, -2, -5, -6]);
    tf.dispose([x, y]);
  });
  it('max pool k3 s2 SAME puts the extra pad bottom/right', () => {
    const pool = new Pool2d('max', 3, 2, 'same');
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 4, 4, 1]);
    const y = pool.forward(x);
    expectValues(y, [11, 12, 15, 16]);
    tf.dispose([x, y]);
  });
  it('avg pool PyTorch padding counts the zero pads', () => {
    const pool = new Pool2d('avg', 3, 2, '');
    const x = tf.ones([1, 4, 4, 1]) as tf.Tensor4D;
    const y = pool.forward(x);
    expectValues(y, [4 / 9, 6 / 9, 6 / 9, 9 / 9]);
    tf.dispose([x, y]);
  });
  it('global pools', () => {
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    const outs = [
      globalPool(x, 'avg'),
      globalPool(x, 'max'),
      globalPool(x, 'avgmax'),
      globalPool(x, 'catavgmax'),
    ];
    expectValues(outs[0], [2.5]);
    expectValues(outs[1], [4]);
    expectValues(outs[2], [3.25]);
    expectValues(outs[3], [2.5, 4]);
    tf.dispose([x, ...outs]);
  });
});

describeWithBackends('BatchNorm2d', () => {
  it('eval uses running statistics (literal)', () => {
    const bn = new BatchNorm2d(2, { eps: 1e-3 });
    bn.loadStateDict({
      weight: tf.tensor1d([2, 1]),
      bias: tf.tensor1d([0, 1]),
      running_mean: tf.tensor1d([1, -1]),
      running_var: tf.tensor1d([3.999, 0.999]),
    });
    const y = bn.forward(tf.tensor4d([3, 0, 5, 1], [1, 1, 2, 2]));
    // (3-1)/2*2 = 2, (0+1)/1+1 = 2, (5-1)/2*2 = 4, (1+1)/1+1 = 3
    expectValues(y, [2, 2, 4, 3], 1e-5);
    y.dispose();
  });

  it('train mode normalises with batch statistics and updates running stats with momentum (unbiased var)', () => {
    const bn = new BatchNorm2d(1, { momentum: 0.1 });
    bn.train();
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    const y = bn.forward(x);
    // mean 2.5, biased var 1.25
    const s = 1 / Math.sqrt(1.25 + 1e-5);
    expectValues(y, [-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s], 1e-5);
    expectValues(bn.runningMean.value, [0.25]);
    // unbiased var 5/3; 0.9 * 1 + 0.1 * 5/3
    expectValues(bn.runningVar.value, [0.9 + 0.1 * (5 / 3)]);
    bn.eval();
    tf.dispose([x, y]);
  });

  it('applies its activation (BatchNormAct2d)', () => {
    const bn = new BatchNorm2d(1, { act: 'relu' });
    const y = bn.forward(tf.tensor4d([-1, 2], [1, 1, 2, 1]));
    expectValues(y, [0, 2 / Math.sqrt(1 + 1e-5)], 1e-6);
    y.dispose();
  });
});

describeWithBackends('activations', () => {
  const x = [-3, -1, 0, 0.5, 2, 7];
  const cases: [string, (v: number) => number][] = [
    ['relu', (v) => Math.max(0, v)],
    ['relu6', (v) => Math.min(6, Math.max(0, v))],
    ['swish', (v) => v / (1 + Math.exp(-v))],
    ['silu', (v) => v / (1 + Math.exp(-v))],
    ['sigmoid', (v) => 1 / (1 + Math.exp(-v))],
    ['hard_sigmoid', (v) => Math.min(6, Math.max(0, v + 3)) / 6],
    ['hard_swish', (v) => (v * Math.min(6, Math.max(0, v + 3))) / 6],
    ['mish', (v) => v * Math.tanh(Math.log1p(Math.exp(v)))],
    ['leaky_relu', (v) => (v > 0 ? v : 0.01 * v)],
    ['tanh', Math.tanh],
    ['identity', (v) => v],
    // erf-based GELU; values from torch.nn.GELU()
  ];
  it.each(cases)('%s', (name, f) => {
    const t = tf.tensor1d(x);
    const y = getActivation(name).apply(t);
    expectValues(y, x.map(f), 1e-5);
    tf.dispose([t, y]);
  });
  it('gelu (exact erf form) literal', () => {
    const t = tf.tensor1d([-1, 0, 1, 2]);
    const y = getActivation('gelu').apply(t);
    expectValues(y, [-0.15865525, 0, 0.8413447, 1.9544997], 1e-4);
    tf.dispose([t, y]);
  });
  it('unknown names list the valid ones', () => {
    expect(() => getActivation('swishy')).toThrow(/unknown activation 'swishy'; expected one of .*relu6/);
    expect(listActivations()).toContain('hard_swish');
    expect(getActivation('relu6').fused).toBe('relu6');
    expect(getActivation('swish').fused).toBeUndefined();
  });
});

describeWithBackends('Linear, Dropout, DropPath, resize', () => {
  it('Linear takes PyTorch [out, in] weights', () => {
    const lin = new Linear(3, 2);
    lin.loadStateDict({ weight: tf.tensor2d([1, 0, -1, 2, 1, 0], [2, 3]), bias: tf.tensor1d([0, 1]) });
    const y = lin.forward(tf.tensor2d([1, 2, 3], [1, 3]));
    expectValues(y, [-2, 5]);
    y.dispose();
    expect(() => lin.forward(tf.zeros([1, 4]) as tf.Tensor2D)).toThrow(
      /Linear.forward: expected input \[batch, 3\], got \[1,4\]/,
    );
  });

  it('Dropout and DropPath only act in training mode', () => {
    const x = tf.ones([64, 4, 4, 2]);
    const d = new Dropout(0.5);
    const p = new DropPath(0.5);
    expect(d.forward(x)).toBe(x);
    expect(p.forward(x)).toBe(x);
    d.train();
    p.train();
    const yd = d.forward(x);
    const yp = p.forward(x);
    const vals = new Set(Array.from(yd.dataSync()));
    expect([...vals].sort()).toEqual([0, 2]);
    // DropPath zeroes whole samples.
    const perSample = tf.tidy(() => tf.max(yp, [1, 2, 3]).dataSync());
    const perSampleMin = tf.tidy(() => tf.min(yp, [1, 2, 3]).dataSync());
    expect(Array.from(perSample)).toEqual(Array.from(perSampleMin));
    expect(new Set(Array.from(perSample))).toEqual(new Set([0, 2]));
    tf.dispose([x, yd, yp]);
  });

  it('nearest resize is floor-based (PyTorch / TF default)', () => {
    const x = tf.tensor4d([1, 2, 3], [1, 1, 3, 1]);
    const y = resize(x, [1, 5], { mode: 'nearest' });
    // src = floor(dst * 3 / 5): 0,0,1,1,2
    expectValues(y, [1, 1, 2, 2, 3]);
    tf.dispose([x, y]);
  });

  it('bilinear resize follows align_corners', () => {
    const x = tf.tensor4d([0, 3], [1, 1, 2, 1]);
    const a = resize(x, [1, 4], { mode: 'bilinear', alignCorners: true });
    expectValues(a, [0, 1, 2, 3]);
    const h = resize(x, [1, 4], { mode: 'bilinear' });
    // half-pixel: src = (dst + 0.5) / 2 - 0.5 -> -0.25, 0.25, 0.75, 1.25 clamped
    expectValues(h, [0, 0.75, 2.25, 3]);
    tf.dispose([x, a, h]);
  });
});

describe('channel math', () => {
  it('makeDivisible rounds to 8 and bumps when below 90%', () => {
    expect(makeDivisible(32 * 1.1)).toBe(32);
    expect(makeDivisible(16 * 1.1)).toBe(16);
    expect(makeDivisible(40 * 1.2)).toBe(48);
    expect(makeDivisible(10)).toBe(16);
    expect(makeDivisible(3)).toBe(8);
  });
  it('pyRound is banker rounding', () => {
    expect([0.5, 1.5, 2.5, 2.4, 2.6].map(pyRound)).toEqual([0, 2, 2, 2, 3]);
  });
});

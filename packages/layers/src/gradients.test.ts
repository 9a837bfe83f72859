import * as tf from '@tensorflow/tfjs-core';
import { registerTrainingKernels } from './grad.js';
import { channelSum, SUPPLIED_GRADIENTS } from './gradients.js';

function values(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = lo + ((hi - lo) * s) / 2 ** 32;
  }
  return out;
}

interface Case {
  name: string;
  /** Shapes of the differentiated inputs, and their value range (kept away from kinks). */
  inputs: { shape: number[]; lo?: number; hi?: number }[];
  f: (...xs: tf.Tensor[]) => tf.Tensor;
}

const t4 = (x: tf.Tensor) => x as tf.Tensor4D;

const CASES: Case[] = [
  { name: 'Add (broadcast)', inputs: [{ shape: [2, 3, 4] }, { shape: [4] }], f: (a, b) => tf.add(a!, b!) },
  { name: 'Sub (broadcast)', inputs: [{ shape: [2, 1, 4] }, { shape: [3, 1] }], f: (a, b) => tf.sub(a!, b!) },
  { name: 'Multiply', inputs: [{ shape: [2, 3] }, { shape: [2, 1] }], f: (a, b) => tf.mul(a!, b!) },
  {
    name: 'RealDiv',
    inputs: [{ shape: [3, 2] }, { shape: [2], lo: 0.5, hi: 2 }],
    f: (a, b) => tf.div(a!, b!),
  },
  {
    name: 'Maximum',
    inputs: [{ shape: [6] }, { shape: [6] }],
    f: (a, b) => tf.maximum(a!, tf.add(b!, 0.05)),
  },
  {
    name: 'Minimum',
    inputs: [{ shape: [6] }, { shape: [6] }],
    f: (a, b) => tf.minimum(a!, tf.add(b!, 0.05)),
  },
  {
    name: 'SquaredDifference',
    inputs: [{ shape: [2, 3] }, { shape: [3] }],
    f: (a, b) => tf.squaredDifference(a!, b!),
  },
  {
    name: 'Pow',
    inputs: [
      { shape: [5], lo: 0.3, hi: 2 },
      { shape: [5], lo: 0.5, hi: 2 },
    ],
    f: (a, b) => tf.pow(a!, b!),
  },
  {
    name: 'Neg/Abs/Square',
    inputs: [{ shape: [7] }],
    f: (a) => tf.add(tf.neg(tf.square(a!)), tf.abs(tf.add(a!, 3))),
  },
  {
    name: 'Sqrt/Rsqrt/Reciprocal',
    inputs: [{ shape: [5], lo: 0.5, hi: 3 }],
    f: (a) => tf.add(tf.add(tf.sqrt(a!), tf.rsqrt(a!)), tf.reciprocal(a!)),
  },
  {
    name: 'Exp/Log/Log1p',
    inputs: [{ shape: [5], lo: 0.5, hi: 2 }],
    f: (a) => tf.add(tf.exp(tf.log(a!)), tf.log1p(a!)),
  },
  {
    name: 'Sigmoid/Tanh/Softplus',
    inputs: [{ shape: [6] }],
    f: (a) => tf.add(tf.mul(tf.sigmoid(a!), tf.tanh(a!)), tf.softplus(a!)),
  },
  {
    name: 'Relu/Relu6/LeakyRelu/Elu',
    inputs: [{ shape: [8], lo: -3, hi: 8 }],
    f: (a) => tf.addN([tf.relu(a!), tf.relu6(a!), tf.leakyRelu(a!, 0.1), tf.elu(a!)]),
  },
  { name: 'Erf', inputs: [{ shape: [5] }], f: (a) => tf.erf(a!) },
  { name: 'ClipByValue', inputs: [{ shape: [6], lo: -2, hi: 2 }], f: (a) => tf.clipByValue(a!, -0.9, 0.9) },
  {
    name: 'Sum/Mean (axes, keepDims)',
    inputs: [{ shape: [2, 3, 4] }],
    f: (a) => tf.add(tf.sum(a!, [0, 2], true), tf.mean(a!, 1, true)),
  },
  {
    name: 'Max/Min (reduce)',
    inputs: [{ shape: [3, 4] }],
    f: (a) => tf.add(tf.max(a!, 1), tf.sum(tf.min(a!, 0))),
  },
  {
    name: 'Reshape/Transpose/ExpandDims',
    inputs: [{ shape: [2, 3, 4] }],
    f: (a) => tf.expandDims(tf.transpose(tf.reshape(a!, [6, 4]), [1, 0]), 1),
  },
  { name: 'Concat', inputs: [{ shape: [2, 3] }, { shape: [2, 2] }], f: (a, b) => tf.concat([a!, b!, a!], 1) },
  {
    name: 'Pack/Unpack',
    inputs: [{ shape: [2, 3] }, { shape: [2, 3] }],
    f: (a, b) => tf.add(tf.stack(tf.unstack(a!, 1), 0), tf.transpose(b!)),
  },
  {
    name: 'SplitV',
    inputs: [{ shape: [2, 5] }],
    f: (a) => {
      const [p, q] = tf.split(a!, [2, 3], 1);
      return tf.concat([tf.mul(p!, 2), q!], 1);
    },
  },
  {
    name: 'Slice/PadV2',
    inputs: [{ shape: [3, 4, 2] }],
    f: (a) =>
      tf.pad(tf.slice(a!, [1, 0, 1], [2, 3, 1]), [
        [1, 0],
        [0, 2],
        [1, 1],
      ]),
  },
  { name: 'Tile', inputs: [{ shape: [2, 3] }], f: (a) => tf.tile(a!, [2, 3]) },
  { name: 'Reverse', inputs: [{ shape: [3, 4] }], f: (a) => tf.reverse(a!, [0, 1]) },
  {
    name: 'Select',
    inputs: [{ shape: [6] }, { shape: [6] }],
    f: (a, b) => tf.where(tf.greater(a!, 0), tf.mul(a!, 2), b!),
  },
  {
    name: 'GatherV2 axis 0 / 1',
    inputs: [{ shape: [4, 3] }],
    f: (a) => tf.add(tf.sum(tf.gather(a!, [3, 1, 1], 0)), tf.gather(a!, [2, 0, 2], 1)),
  },
  {
    name: 'Softmax/LogSoftmax',
    inputs: [{ shape: [2, 5] }],
    f: (a) => tf.add(tf.softmax(a!), tf.logSoftmax(a!)),
  },
  {
    name: 'FusedBatchNorm (train-mode moments)',
    inputs: [{ shape: [2, 3, 3, 4] }, { shape: [4], lo: 0.5, hi: 1.5 }, { shape: [4] }],
    f: (x, g, b) => {
      const { mean, variance } = tf.moments(x!, [0, 1, 2]);
      return tf.batchNorm(x!, mean, variance, b!, g!, 1e-3);
    },
  },
  { name: 'MaxPool', inputs: [{ shape: [1, 6, 6, 2] }], f: (a) => tf.maxPool(t4(a!), 3, 2, 'same') },
  { name: 'AvgPool', inputs: [{ shape: [1, 6, 5, 2] }], f: (a) => tf.avgPool(t4(a!), 2, 2, 'valid') },
  {
    name: 'ResizeNearestNeighbor',
    inputs: [{ shape: [1, 3, 4, 2] }],
    f: (a) => tf.image.resizeNearestNeighbor(t4(a!), [6, 8]),
  },
  {
    name: 'ResizeBilinear (half-pixel, align-corners)',
    inputs: [{ shape: [2, 3, 4, 2] }],
    f: (a) =>
      tf.add(
        tf.image.resizeBilinear(t4(a!), [5, 7], false, true),
        tf.image.resizeBilinear(t4(a!), [5, 7], true),
      ),
  },
  {
    name: 'ResizeNearestNeighbor (half-pixel, downsample)',
    inputs: [{ shape: [1, 5, 6, 2] }],
    f: (a) => tf.image.resizeNearestNeighbor(t4(a!), [3, 4], false, true),
  },
  {
    name: 'BatchMatMul (transposes)',
    inputs: [{ shape: [2, 3] }, { shape: [3, 4] }],
    f: (a, b) =>
      tf.addN([
        tf.matMul(a!, b!),
        tf.transpose(tf.matMul(b!, a!, true, true)),
        tf.matMul(tf.transpose(a!), b!, true, false),
        tf.matMul(a!, tf.transpose(b!), false, true),
      ]),
  },
  {
    name: 'fused matMul + conv (bias, relu) and conv2dTranspose',
    inputs: [{ shape: [1, 5, 5, 2] }, { shape: [3, 3, 2, 3] }, { shape: [3] }],
    f: (x, w, b) =>
      tf.conv2dTranspose(
        tf.fused.conv2d({ x: t4(x!), filter: t4(w!), strides: 1, pad: 'same', bias: b!, activation: 'relu' }),
        t4(w!),
        [1, 10, 10, 2],
        2,
        'same',
      ),
  },
  // 2 * 32 * 32 = 2048 rows: the matMul path of channelSum (its own gradient, a broadcast)
  { name: 'channelSum (matMul path)', inputs: [{ shape: [2, 32, 32, 3] }], f: (x) => channelSum(x!) },
  { name: 'channelSum (sum path)', inputs: [{ shape: [2, 4, 4, 3] }], f: (x) => channelSum(x!) },
];

for (const backend of ['cpu', 'wasm']) {
  describe(`registered gradients against central finite differences (${backend})`, () => {
    beforeAll(async () => {
      await tf.setBackend(backend);
      tf.env().set('IS_TEST', false);
      registerTrainingKernels();
    });
    afterAll(async () => {
      tf.env().set('IS_TEST', true);
      await tf.setBackend('cpu');
    });

    it('covers the kernels of a training step', () => {
      for (const k of [
        'Sigmoid',
        'Multiply',
        'FusedBatchNorm',
        'Mean',
        'PadV2',
        'MaxPool',
        'ResizeNearestNeighbor',
      ])
        expect(SUPPLIED_GRADIENTS).toContain(k);
    });

    it('channelSum equals the sum over the leading axes on both of its paths', () => {
      for (const shape of [
        [2, 4, 4, 5],
        [4, 32, 32, 7],
        [3, 1000, 2],
      ]) {
        const x = tf.tensor(
          values(
            shape.reduce((a, b) => a * b, 1),
            shape.length,
          ),
          shape,
        );
        const before = tf.memory().numTensors;
        const got = channelSum(x);
        expect(tf.memory().numTensors).toBe(before + 1);
        const want = tf.sum(
          x,
          shape.slice(0, -1).map((_, i) => i),
        );
        expect(got.shape).toEqual([shape[shape.length - 1]]);
        const g = got.dataSync();
        const w = want.dataSync();
        for (let i = 0; i < w.length; i++) expect(Math.abs(g[i]! - w[i]!)).toBeLessThan(1e-6 * x.size);
        tf.dispose([x, got, want]);
      }
    });

    CASES.forEach((c, ci) => {
      it(c.name, () => {
        const xs = c.inputs.map((inp, i) =>
          tf.tensor(
            values(
              inp.shape.reduce((a, b) => a * b, 1),
              100 * ci + i,
              inp.lo,
              inp.hi,
            ),
            inp.shape,
          ),
        );
        const outShape = tf.tidy(() => c.f(...xs).shape);
        const r = tf.tensor(
          values(
            outShape.reduce((a, b) => a * b, 1),
            999 + ci,
          ),
          outShape,
        );
        const loss = (...args: tf.Tensor[]) => tf.sum(tf.mul(c.f(...args), r)) as tf.Scalar;
        const before = tf.memory().numTensors;
        const grads = tf.grads(loss)(xs);
        expect(tf.memory().numTensors).toBe(before + grads.length);
        const eps = 1e-2;
        xs.forEach((x, which) => {
          const base = x.dataSync().slice();
          const g = grads[which]!.dataSync();
          expect(grads[which]!.shape).toEqual(x.shape);
          const n = base.length;
          for (let t = 0; t < Math.min(n, 8); t++) {
            const idx = Math.floor((t * n) / Math.min(n, 8));
            const at = (delta: number) =>
              tf.tidy(() => {
                const v = base.slice();
                v[idx]! += delta;
                const args = xs.map((inp, k) => (k === which ? tf.tensor(v, inp.shape) : inp));
                return loss(...args).dataSync()[0]!;
              });
            const fd = (at(eps) - at(-eps)) / (2 * eps);
            const tol = 5e-3 * Math.max(1, Math.abs(fd));
            if (Math.abs(fd - g[idx]!) > tol)
              throw new Error(
                `${c.name}: input ${which}[${idx}] analytic ${g[idx]} vs finite difference ${fd}`,
              );
          }
        });
        tf.dispose([...xs, r, ...grads]);
      });
    });
  });
}

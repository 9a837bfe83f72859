import { expectNoLeaks } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';
import {
  conv2dFilterGrad,
  conv2dInputGrad,
  depthwiseFilterGrad,
  depthwiseInputGrad,
  registerTrainingKernels,
} from './grad.js';

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

interface Case {
  name: string;
  x: [number, number, number, number];
  k: number;
  co: number; // output channels (conv) or channel multiplier (depthwise)
  s: number;
  d: number;
  pad: 'same' | 'valid' | number[][];
}

/** Explicit (top, bottom, left, right) pads as TF.js computes them. */
function pads(c: Case): [number, number, number, number] {
  const [, h, w] = c.x;
  const ek = (c.k - 1) * c.d + 1;
  if (c.pad === 'valid') return [0, 0, 0, 0];
  if (c.pad === 'same') {
    const th = Math.max((Math.ceil(h / c.s) - 1) * c.s + ek - h, 0);
    const tw = Math.max((Math.ceil(w / c.s) - 1) * c.s + ek - w, 0);
    return [Math.floor(th / 2), th - Math.floor(th / 2), Math.floor(tw / 2), tw - Math.floor(tw / 2)];
  }
  return [c.pad[1]![0]!, c.pad[1]![1]!, c.pad[2]![0]!, c.pad[2]![1]!];
}

/**
 * Naive float64 reference of both gradients, straight from the definition of the convolution:
 * y[b,o,p,co] = sum x[b, o*s + i*d - pt, p*s + j*d - pl, ci] * w[i,j,ci,co].
 */
function reference(
  c: Case,
  depthwise: boolean,
  x: Float32Array,
  w: Float32Array,
  dy: Float32Array,
): { dx: Float64Array; dw: Float64Array; outH: number; outW: number } {
  const [b, h, wd, ci] = c.x;
  const [pt, pb, pl, pr] = pads(c);
  const ek = (c.k - 1) * c.d + 1;
  const outH = Math.floor((h + pt + pb - ek) / c.s) + 1;
  const outW = Math.floor((wd + pl + pr - ek) / c.s) + 1;
  const cout = depthwise ? ci * c.co : c.co;
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  for (let n = 0; n < b; n++)
    for (let o = 0; o < outH; o++)
      for (let p = 0; p < outW; p++)
        for (let i = 0; i < c.k; i++)
          for (let j = 0; j < c.k; j++) {
            const yy = o * c.s + i * c.d - pt;
            const xx = p * c.s + j * c.d - pl;
            if (yy < 0 || yy >= h || xx < 0 || xx >= wd) continue;
            for (let q = 0; q < cout; q++) {
              const g = dy[((n * outH + o) * outW + p) * cout + q]!;
              if (depthwise) {
                const ch = Math.floor(q / c.co);
                const m = q % c.co;
                const xi = ((n * h + yy) * wd + xx) * ci + ch;
                const wi = ((i * c.k + j) * ci + ch) * c.co + m;
                dx[xi]! += g * w[wi]!;
                dw[wi]! += g * x[xi]!;
              } else {
                for (let r = 0; r < ci; r++) {
                  const xi = ((n * h + yy) * wd + xx) * ci + r;
                  const wi = ((i * c.k + j) * ci + r) * c.co + q;
                  dx[xi]! += g * w[wi]!;
                  dw[wi]! += g * x[xi]!;
                }
              }
            }
          }
  return { dx, dw, outH, outW };
}

function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 1;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  let err = 0;
  for (let i = 0; i < b.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
  return err / scale;
}

const CONV_CASES: Case[] = [
  { name: '3x3 s1 same', x: [2, 7, 6, 3], k: 3, co: 4, s: 1, d: 1, pad: 'same' },
  { name: '3x3 s2 same odd', x: [1, 9, 7, 2], k: 3, co: 3, s: 2, d: 1, pad: 'same' },
  { name: '3x3 s2 valid', x: [2, 8, 8, 2], k: 3, co: 3, s: 2, d: 1, pad: 'valid' },
  {
    name: '5x5 s2 explicit',
    x: [1, 10, 9, 2],
    k: 5,
    co: 2,
    s: 2,
    d: 1,
    pad: [
      [0, 0],
      [2, 1],
      [1, 2],
      [0, 0],
    ],
  },
  { name: '3x3 dilation 2 same', x: [2, 9, 8, 3], k: 3, co: 2, s: 1, d: 2, pad: 'same' },
  { name: '3x3 dilation 3 valid', x: [1, 11, 10, 2], k: 3, co: 2, s: 1, d: 3, pad: 'valid' },
  { name: '1x1 s1', x: [2, 5, 4, 6], k: 1, co: 5, s: 1, d: 1, pad: 'valid' },
  { name: '1x1 s2', x: [1, 7, 6, 3], k: 1, co: 4, s: 2, d: 1, pad: 'same' },
];
const DW_CASES: Case[] = [
  { name: 'dw 3x3 s1 same', x: [2, 7, 6, 4], k: 3, co: 1, s: 1, d: 1, pad: 'same' },
  { name: 'dw 3x3 s2 same odd', x: [1, 9, 7, 3], k: 3, co: 1, s: 2, d: 1, pad: 'same' },
  {
    name: 'dw 5x5 s2 explicit',
    x: [2, 10, 11, 3],
    k: 5,
    co: 1,
    s: 2,
    d: 1,
    pad: [
      [0, 0],
      [1, 2],
      [2, 1],
      [0, 0],
    ],
  },
  { name: 'dw 5x5 s1 valid', x: [1, 9, 9, 2], k: 5, co: 1, s: 1, d: 1, pad: 'valid' },
  { name: 'dw 3x3 dilation 2', x: [2, 9, 8, 3], k: 3, co: 1, s: 1, d: 2, pad: 'same' },
  {
    name: 'dw 3x3 dilation 4 explicit',
    x: [1, 12, 12, 2],
    k: 3,
    co: 1,
    s: 1,
    d: 4,
    pad: [
      [0, 0],
      [4, 4],
      [4, 4],
      [0, 0],
    ],
  },
  { name: 'dw multiplier 2', x: [1, 7, 7, 3], k: 3, co: 2, s: 2, d: 1, pad: 'same' },
];

function tensorsFor(c: Case, depthwise: boolean) {
  const [, , , ci] = c.x;
  const wShape: [number, number, number, number] = [c.k, c.k, ci, c.co];
  const xv = values(
    c.x.reduce((a, b) => a * b),
    1,
  );
  const wv = values(
    wShape.reduce((a, b) => a * b),
    2,
  );
  const probe = reference(c, depthwise, xv, wv, new Float32Array(0).fill(0));
  const cout = depthwise ? ci * c.co : c.co;
  const dyShape: [number, number, number, number] = [c.x[0], probe.outH, probe.outW, cout];
  const dyv = values(
    dyShape.reduce((a, b) => a * b),
    3,
  );
  return { wShape, xv, wv, dyShape, dyv, ref: reference(c, depthwise, xv, wv, dyv) };
}

for (const backend of ['cpu', 'wasm']) {
  describe(`conv gradients composed from forward ops (${backend})`, () => {
    beforeAll(async () => {
      await tf.setBackend(backend);
      // TF.js' IS_TEST kernel-leak check miscounts the saved-tensor clones of custom gradients on wasm
      tf.env().set('IS_TEST', false);
      registerTrainingKernels();
    });
    afterAll(async () => {
      tf.env().set('IS_TEST', true);
      await tf.setBackend('cpu');
    });

    for (const c of CONV_CASES) {
      it(`conv2d ${c.name}: filter and input gradients equal the float64 definition`, () => {
        const t = tensorsFor(c, false);
        const x = tf.tensor4d(t.xv, c.x);
        const w = tf.tensor4d(t.wv, t.wShape);
        const dy = tf.tensor4d(t.dyv, t.dyShape);
        const dw = conv2dFilterGrad(x, dy, t.wShape, c.s, c.pad, c.d);
        const dx = conv2dInputGrad(c.x, dy, w, c.s, c.pad, c.d);
        expect(dw.shape).toEqual(t.wShape);
        expect(dx.shape).toEqual(c.x);
        expect(maxRelErr(dw.dataSync(), t.ref.dw)).toBeLessThan(1e-5);
        expect(maxRelErr(dx.dataSync(), t.ref.dx)).toBeLessThan(1e-5);
        // and through tf.grads (the registered gradient, fused and plain)
        const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(
            tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad as 'same', 'NHWC', c.d), dy),
          ),
        )([x, w]);
        expect(maxRelErr(gx!.dataSync(), t.ref.dx)).toBeLessThan(1e-5);
        expect(maxRelErr(gw!.dataSync(), t.ref.dw)).toBeLessThan(1e-5);
        if (c.d === 1) {
          const [fx, fw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
            tf.sum(
              tf.mul(
                tf.fused.conv2d({
                  x: a as tf.Tensor4D,
                  filter: b as tf.Tensor4D,
                  strides: c.s,
                  pad: c.pad as 'same',
                }),
                dy,
              ),
            ),
          )([x, w]);
          expect(maxRelErr(fx!.dataSync(), t.ref.dx)).toBeLessThan(1e-5);
          expect(maxRelErr(fw!.dataSync(), t.ref.dw)).toBeLessThan(1e-5);
          tf.dispose([fx!, fw!]);
        }
        tf.dispose([x, w, dy, dw, dx, gx!, gw!]);
      });
    }

    for (const c of DW_CASES) {
      it(`depthwise ${c.name}: filter and input gradients equal the float64 definition`, () => {
        const t = tensorsFor(c, true);
        const x = tf.tensor4d(t.xv, c.x);
        const w = tf.tensor4d(t.wv, t.wShape);
        const dy = tf.tensor4d(t.dyv, t.dyShape);
        const dw = depthwiseFilterGrad(x, dy, t.wShape, c.s, c.pad, c.d);
        const dx = depthwiseInputGrad(c.x, dy, w, c.s, c.pad, c.d);
        expect(maxRelErr(dw.dataSync(), t.ref.dw)).toBeLessThan(1e-5);
        expect(maxRelErr(dx.dataSync(), t.ref.dx)).toBeLessThan(1e-5);
        const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(
            tf.mul(
              tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad as 'same', 'NHWC', c.d),
              dy,
            ),
          ),
        )([x, w]);
        expect(maxRelErr(gx!.dataSync(), t.ref.dx)).toBeLessThan(1e-5);
        expect(maxRelErr(gw!.dataSync(), t.ref.dw)).toBeLessThan(1e-5);
        tf.dispose([x, w, dy, dw, dx, gx!, gw!]);
      });
    }

    it('finite differences agree with the registered gradients of a dilated conv stack (float32, central)', () => {
      // loss = sum(r * tanh(dwconv_d2(conv_d2(x, w1), w2))): non-linear, so this checks the chain end to end
      const x = tf.tensor4d(values(1 * 9 * 9 * 2, 7), [1, 9, 9, 2]);
      const w1 = tf.mul(tf.tensor4d(values(3 * 3 * 2 * 3, 8), [3, 3, 2, 3]), 0.5) as tf.Tensor4D;
      const w2 = tf.mul(tf.tensor4d(values(3 * 3 * 3 * 1, 9), [3, 3, 3, 1]), 0.5) as tf.Tensor4D;
      const r = tf.tensor4d(values(1 * 9 * 9 * 3, 10), [1, 9, 9, 3]);
      const loss = (a: tf.Tensor, b: tf.Tensor, cc: tf.Tensor) =>
        tf.sum(
          tf.mul(
            r,
            tf.tanh(
              tf.depthwiseConv2d(
                tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same', 'NHWC', 2),
                cc as tf.Tensor4D,
                1,
                'same',
                'NHWC',
                2,
              ),
            ),
          ),
        ) as tf.Scalar;
      const grads = tf.grads(loss)([x, w1, w2]);
      const eps = 1e-2;
      const inputs = [x, w1, w2];
      for (let which = 0; which < 3; which++) {
        const base = inputs[which]!.dataSync().slice();
        const g = grads[which]!.dataSync();
        // 12 coordinates spread over the tensor
        for (let t = 0; t < 12; t++) {
          const idx = Math.floor((t * base.length) / 12);
          const plus = base.slice();
          plus[idx]! += eps;
          const minus = base.slice();
          minus[idx]! -= eps;
          const at = (v: ArrayLike<number>) =>
            tf.tidy(() => {
              const args = inputs.map((inp, k) => (k === which ? tf.tensor(Array.from(v), inp.shape) : inp));
              return loss(args[0]!, args[1]!, args[2]!).dataSync()[0]!;
            });
          const fd = (at(plus) - at(minus)) / (2 * eps);
          expect(Math.abs(fd - g[idx]!)).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)));
        }
      }
      tf.dispose([x, w1, w2, r, ...grads]);
    });

    it('clones share data (wasm: a reference-counted Identity) and stay valid after the source is disposed', () => {
      const a = tf.tensor([1, 2, 3]);
      const b = tf.clone(a);
      a.dispose();
      expect(Array.from(b.dataSync())).toEqual([1, 2, 3]);
      const c = tf.add(b, 1);
      b.dispose();
      expect(Array.from(c.dataSync())).toEqual([2, 3, 4]);
      c.dispose();
    });

    it('leaves no tensors behind', async () => {
      const c = CONV_CASES[4]!;
      const t = tensorsFor(c, false);
      const x = tf.tensor4d(t.xv, c.x);
      const w = tf.tensor4d(t.wv, t.wShape);
      const dy = tf.tensor4d(t.dyv, t.dyShape);
      await expectNoLeaks(() => {
        tf.dispose([
          conv2dFilterGrad(x, dy, t.wShape, c.s, c.pad, c.d),
          conv2dInputGrad(c.x, dy, w, c.s, c.pad, c.d),
          depthwiseFilterGrad(x, x, [3, 3, 3, 1], 1, 'same', 2),
        ]);
        tf.dispose(
          tf.tidy(() => depthwiseInputGrad(c.x, x, tf.ones([3, 3, 3, 1]) as tf.Tensor4D, 1, 'same', 2)),
        );
        const g = tf.grads((a: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, w, 1, 'same', 'NHWC', 2)))([
          x,
        ]);
        tf.dispose(g);
      });
      tf.dispose([x, w, dy]);
    });
  });
}

/**
 * Gradient functions for the kernels our networks and losses use.
 *
 * `@tensorflow/tfjs-core` ships its gradient table only as ES modules that its Node bundle does not
 * load (the union `@tensorflow/tfjs` package registers them, together with backends we must not
 * depend on), so with tfjs-core alone `tf.grads` fails with "gradient function not found". This module
 * registers a gradient for every kernel in our forward passes, written from the op definitions, each
 * checked against finite differences in `gradients.test.ts`. Kernels that already have a gradient
 * (for instance because the union package is loaded) keep theirs, except the two convolution
 * gradients, which `grad.ts` always replaces (they add dilation support).
 */
import * as tf from '@tensorflow/tfjs-core';

type T = tf.Tensor;
/** Kernels whose gradient this module registered. */
const ours = new Set<string>();
// biome-ignore lint/suspicious/noExplicitAny: kernel attrs are an untyped map in TF.js
type Attrs = Record<string, any>;
type GradMap = Record<string, () => T> | (() => T)[];
type GradFn = (dy: T | T[], saved: T[], attrs: Attrs) => GradMap;

/** Rows from which `channelSum` reduces with a matMul rather than a sum over the leading axis. */
const MATMUL_SUM_MIN_ROWS = 1024;

/**
 * Sums an NHWC-like tensor over every axis but the last: `[..., C] -> [C]`, seen as `[N, C]`. For large `N`
 * this is `x^T . ones(N, 1)`: wasm reduces a leading axis by transposing first, 3-9x slower than the matMul
 * with `x` as the transposed left operand (measured on fresh tensors as in training; with `x` as the
 * right-hand operand matMul re-packs it on every call and loses). Small `N` keeps the plain sum.
 */
export function channelSum(x: T): T {
  const c = x.shape[x.rank - 1] as number;
  const n = x.size / c;
  if (n < MATMUL_SUM_MIN_ROWS) return tf.tidy(() => tf.sum(tf.reshape(x, [n, c]), 0));
  return matMulChannelSum(x);
}

// Its gradient broadcasts dy back (as Sum's does), not the matMul's outer product with the ones vector.
const matMulChannelSum: (x: T) => T = tf.customGrad(((x: T) => {
  const c = x.shape[x.rank - 1] as number;
  const n = x.size / c;
  const value = tf.tidy(() =>
    tf.reshape(tf.matMul(tf.reshape(x, [n, c]), tf.ones([n, 1]), true, false), [c]),
  );
  return {
    value,
    gradFunc: (dy: T) => tf.reshape(tf.mul(tf.reshape(dy, [1, c]), tf.ones([n, c])), x.shape),
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]);

/** Sums `dy` over the axes along which `shape` was broadcast, then reshapes to `shape`. */
export function reduceToShape(dy: T, shape: readonly number[]): T {
  if (dy.shape.length === shape.length && dy.shape.every((d, i) => d === shape[i])) return dy;
  const lead = dy.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < dy.rank; i++) {
    if (i < lead) axes.push(i);
    else if (shape[i - lead] === 1 && dy.shape[i] !== 1) axes.push(i);
  }
  // the bias / per-channel case: every axis but the last is reduced
  if (dy.rank > 1 && axes.length === dy.rank - 1 && !axes.includes(dy.rank - 1))
    return tf.reshape(channelSum(dy), shape as number[]);
  const summed = axes.length > 0 ? tf.sum(dy, axes) : dy;
  return tf.reshape(summed, shape as number[]);
}

function axesOf(axis: number | number[] | null | undefined, rank: number): number[] {
  if (axis === null || axis === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = Array.isArray(axis) ? axis : [axis];
  return list.map((a) => (a < 0 ? a + rank : a));
}

/** The shape of a reduction's output with the reduced axes kept as 1. */
function keptShape(shape: readonly number[], axes: number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

const zerosFor = (x: T) => () => tf.zerosLike(x);

const binary = (
  fa: (dy: T, a: T, b: T, y?: T) => T,
  fb: (dy: T, a: T, b: T, y?: T) => T,
  saveOut = false,
) => ({
  inputsToSave: ['a', 'b'],
  outputsToSave: saveOut ? [true] : undefined,
  gradFunc: ((dy: T, saved: T[]) => {
    const [a, b, y] = saved as [T, T, T | undefined];
    return {
      a: () => reduceToShape(fa(dy, a, b, y), a.shape),
      b: () => reduceToShape(fb(dy, a, b, y), b.shape),
    };
  }) as GradFn,
});

const unaryX = (f: (dy: T, x: T, attrs: Attrs) => T) => ({
  inputsToSave: ['x'],
  gradFunc: ((dy: T, saved: T[], attrs: Attrs) => ({ x: () => f(dy, saved[0] as T, attrs) })) as GradFn,
});
const unaryY = (f: (dy: T, y: T) => T) => ({
  outputsToSave: [true],
  gradFunc: ((dy: T, saved: T[]) => ({ x: () => f(dy, saved[0] as T) })) as GradFn,
});

const reduceMinMax = {
  inputsToSave: ['x'],
  outputsToSave: [true],
  gradFunc: ((dy: T, saved: T[], attrs: Attrs) => {
    const [x, y] = saved as [T, T];
    const axes = axesOf(attrs.reductionIndices ?? attrs.axis, x.rank);
    const ks = keptShape(x.shape, axes);
    return {
      x: () => tf.mul(tf.reshape(dy, ks), tf.cast(tf.equal(x, tf.reshape(y, ks)), 'float32')),
    };
  }) as GradFn,
};

/**
 * The [out, in] matrix of a 1-D resize as TF.js' resize kernels sample (align-corners and half-pixel
 * conventions included): row i holds the weights of input positions that output i reads.
 */
export function resizeMatrix(
  inSize: number,
  outSize: number,
  mode: 'nearest' | 'bilinear',
  alignCorners: boolean,
  halfPixelCenters: boolean,
): Float32Array {
  const m = new Float32Array(outSize * inSize);
  const ratio = alignCorners && outSize > 1 ? (inSize - 1) / (outSize - 1) : inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    if (mode === 'nearest') {
      const src = halfPixelCenters ? ratio * (i + 0.5) : ratio * i;
      let j = Math.min(inSize - 1, alignCorners ? Math.round(src) : Math.floor(src));
      if (halfPixelCenters) j = Math.max(0, j);
      m[i * inSize + j]! += 1;
    } else {
      const src = halfPixelCenters ? ratio * (i + 0.5) - 0.5 : ratio * i;
      const lo = Math.max(0, Math.floor(src));
      const hi = Math.min(inSize - 1, Math.ceil(src));
      const frac = src - lo;
      m[i * inSize + lo]! += 1 - frac;
      m[i * inSize + hi]! += frac;
    }
  }
  return m;
}

/** Gradient of a resize: the transposed interpolation applied along each spatial axis (two matMuls). */
function resizeGrad(dy: T, images: T, attrs: Attrs, mode: 'nearest' | 'bilinear'): T {
  const [b, inH, inW, c] = images.shape as [number, number, number, number];
  const [, outH, outW] = dy.shape as [number, number, number, number];
  const align = Boolean(attrs.alignCorners);
  const half = Boolean(attrs.halfPixelCenters);
  const mh = tf.tensor2d(resizeMatrix(inH, outH, mode, align, half), [outH, inH]);
  const mw = tf.tensor2d(resizeMatrix(inW, outW, mode, align, half), [outW, inW]);
  // [b, outH, outW, c] -> [b, outH, c, outW] x [outW, inW] -> rows: [b*outH*c, inW]
  const t1 = tf.reshape(tf.transpose(dy, [0, 1, 3, 2]), [b * outH * c, outW]);
  const r1 = tf.matMul(t1, mw); // [b*outH*c, inW]
  // -> [outH, b*c*inW], then [inH, outH] x that
  const t2 = tf.reshape(tf.transpose(tf.reshape(r1, [b, outH, c, inW]), [1, 0, 2, 3]), [outH, b * c * inW]);
  const r2 = tf.matMul(mh, t2, true, false); // [inH, b*c*inW]
  return tf.transpose(tf.reshape(r2, [inH, b, c, inW]), [1, 0, 3, 2]);
}

type Config = {
  inputsToSave?: string[];
  outputsToSave?: boolean[];
  saveAllInputs?: boolean;
  gradFunc: GradFn;
};

const CONFIGS: Record<string, Config> = {
  Add: binary(
    (dy) => dy,
    (dy) => dy,
  ),
  Sub: binary(
    (dy) => dy,
    (dy) => tf.neg(dy),
  ),
  Multiply: binary(
    (dy, _a, b) => tf.mul(dy, b),
    (dy, a) => tf.mul(dy, a),
  ),
  RealDiv: binary(
    (dy, _a, b) => tf.div(dy, b),
    (dy, a, b) => tf.neg(tf.div(tf.mul(dy, a), tf.square(b))),
  ),
  Maximum: binary(
    (dy, a, b) => tf.mul(dy, tf.cast(tf.greaterEqual(a, b), 'float32')),
    (dy, a, b) => tf.mul(dy, tf.cast(tf.less(a, b), 'float32')),
  ),
  Minimum: binary(
    (dy, a, b) => tf.mul(dy, tf.cast(tf.lessEqual(a, b), 'float32')),
    (dy, a, b) => tf.mul(dy, tf.cast(tf.greater(a, b), 'float32')),
  ),
  SquaredDifference: binary(
    (dy, a, b) => tf.mul(dy, tf.mul(2, tf.sub(a, b))),
    (dy, a, b) => tf.mul(dy, tf.mul(-2, tf.sub(a, b))),
  ),
  Pow: binary(
    (dy, a, b) => tf.mul(dy, tf.mul(b, tf.pow(a, tf.sub(b, 1)))),
    (dy, a, _b, y) => {
      const positive = tf.greater(a, 0);
      const logA = tf.where(positive, tf.log(tf.where(positive, a, tf.onesLike(a))), tf.zerosLike(a));
      return tf.mul(dy, tf.mul(y as T, logA));
    },
    true,
  ),
  Neg: unaryX((dy) => tf.neg(dy)),
  Abs: unaryX((dy, x) => tf.mul(dy, tf.sign(x))),
  Square: unaryX((dy, x) => tf.mul(dy, tf.mul(2, x))),
  Sqrt: unaryY((dy, y) => tf.div(dy, tf.mul(2, y))),
  Rsqrt: unaryY((dy, y) => tf.mul(dy, tf.mul(-0.5, tf.mul(y, tf.square(y))))),
  Exp: unaryY((dy, y) => tf.mul(dy, y)),
  Log: unaryX((dy, x) => tf.div(dy, x)),
  Log1p: unaryX((dy, x) => tf.div(dy, tf.add(x, 1))),
  Reciprocal: unaryX((dy, x) => tf.neg(tf.div(dy, tf.square(x)))),
  Sigmoid: unaryY((dy, y) => tf.mul(dy, tf.mul(y, tf.sub(1, y)))),
  Tanh: unaryY((dy, y) => tf.mul(dy, tf.sub(1, tf.square(y)))),
  Softplus: unaryX((dy, x) => tf.mul(dy, tf.sigmoid(x))),
  // step() instead of comparisons + casts: one kernel, and much faster on wasm
  Relu: unaryX((dy, x) => tf.mul(dy, tf.step(x))),
  Relu6: unaryX((dy, x) => tf.mul(dy, tf.sub(tf.step(x), tf.step(tf.sub(x, 6))))),
  LeakyRelu: unaryX((dy, x, attrs) =>
    tf.mul(dy, tf.where(tf.greater(x, 0), tf.onesLike(x), tf.fill(x.shape, attrs.alpha))),
  ),
  Elu: {
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: ((dy: T, saved: T[]) => {
      const [x, y] = saved as [T, T];
      return { x: () => tf.where(tf.greater(x, 0), dy, tf.mul(dy, tf.add(y, 1))) };
    }) as GradFn,
  },
  Erf: unaryX((dy, x) => tf.mul(dy, tf.mul(2 / Math.sqrt(Math.PI), tf.exp(tf.neg(tf.square(x)))))),
  ClipByValue: unaryX((dy, x, attrs) =>
    tf.mul(
      dy,
      tf.cast(
        tf.logicalAnd(tf.greaterEqual(x, attrs.clipValueMin), tf.lessEqual(x, attrs.clipValueMax)),
        'float32',
      ),
    ),
  ),
  Identity: { gradFunc: ((dy: T) => ({ x: () => tf.clone(dy) })) as GradFn },
  Cast: unaryX((dy, x) => (x.dtype === 'float32' ? tf.cast(dy, 'float32') : tf.zerosLike(x))),
  Sum: unaryX((dy, x, attrs) => {
    const axes = axesOf(attrs.axis, x.rank);
    return tf.mul(tf.reshape(dy, keptShape(x.shape, axes)), tf.ones(x.shape));
  }),
  Mean: unaryX((dy, x, attrs) => {
    const axes = axesOf(attrs.axis, x.rank);
    const count = axes.reduce((n, a) => n * (x.shape[a] as number), 1);
    return tf.mul(tf.reshape(dy, keptShape(x.shape, axes)), tf.fill(x.shape, 1 / count));
  }),
  Max: reduceMinMax,
  Min: reduceMinMax,
  Reshape: unaryX((dy, x) => tf.reshape(dy, x.shape)),
  ExpandDims: {
    inputsToSave: ['input'],
    gradFunc: ((dy: T, saved: T[]) => ({ input: () => tf.reshape(dy, (saved[0] as T).shape) })) as GradFn,
  },
  Transpose: {
    gradFunc: ((dy: T, _s: T[], attrs: Attrs) => {
      const perm = attrs.perm as number[];
      const inv = new Array<number>(perm.length);
      perm.forEach((p, i) => {
        inv[p] = i;
      });
      return { x: () => tf.transpose(dy, inv) };
    }) as GradFn,
  },
  Concat: {
    saveAllInputs: true,
    gradFunc: ((dy: T, saved: T[], attrs: Attrs) => {
      const rank = (saved[0] as T).rank;
      const axis = axesOf(attrs.axis, rank)[0] as number;
      const sizes = saved.map((t) => t.shape[axis] as number);
      const parts = tf.split(dy, sizes, axis);
      return parts.map((p) => () => p);
    }) as GradFn,
  },
  Pack: {
    saveAllInputs: true,
    gradFunc: ((dy: T, _s: T[], attrs: Attrs) => tf.unstack(dy, attrs.axis).map((p) => () => p)) as GradFn,
  },
  Unpack: {
    gradFunc: ((dy: T | T[], _s: T[], attrs: Attrs) => ({
      value: () => tf.stack(dy as T[], attrs.axis),
    })) as GradFn,
  },
  SplitV: {
    gradFunc: ((dy: T | T[], _s: T[], attrs: Attrs) => ({
      x: () => tf.concat(dy as T[], attrs.axis),
    })) as GradFn,
  },
  AddN: {
    saveAllInputs: true,
    gradFunc: ((dy: T, saved: T[]) => saved.map(() => () => tf.clone(dy))) as GradFn,
  },
  Slice: unaryX((dy, x, attrs) => {
    const begin = attrs.begin as number[];
    const size = attrs.size as number[];
    const pads = x.shape.map((d, i) => {
      const b = begin[i] ?? 0;
      const s = size[i] === undefined || size[i] === -1 ? d - b : (size[i] as number);
      return [b, d - b - s] as [number, number];
    });
    return tf.pad(dy, pads);
  }),
  PadV2: unaryX((dy, x, attrs) => {
    const begin = (attrs.paddings as number[][]).map((p) => p[0] as number);
    return tf.slice(dy, begin, x.shape);
  }),
  Tile: unaryX((dy, x, attrs) => {
    const reps = attrs.reps as number[];
    // dy is [r0*s0, r1*s1, ...]: view it as [r0, s0, r1, s1, ...] and sum the repeat axes
    const view: number[] = [];
    const sumAxes: number[] = [];
    x.shape.forEach((s, i) => {
      sumAxes.push(view.length);
      view.push(reps[i] as number, s);
    });
    return tf.reshape(tf.sum(tf.reshape(dy, view), sumAxes), x.shape);
  }),
  Reverse: {
    gradFunc: ((dy: T, _s: T[], attrs: Attrs) => ({ x: () => tf.reverse(dy, attrs.dims) })) as GradFn,
  },
  Select: {
    inputsToSave: ['condition'],
    gradFunc: ((dy: T, saved: T[]) => {
      const cond = saved[0] as T;
      return {
        condition: () => tf.zeros(cond.shape),
        t: () => tf.mul(dy, tf.cast(cond, 'float32')),
        e: () => tf.mul(dy, tf.cast(tf.logicalNot(cond), 'float32')),
      };
    }) as GradFn,
  },
  GatherV2: {
    inputsToSave: ['x', 'indices'],
    gradFunc: ((dy: T, saved: T[], attrs: Attrs) => {
      const [x, indices] = saved as [T, T];
      const axis = axesOf(attrs.axis ?? 0, x.rank)[0] as number;
      return {
        x: () => {
          // move `axis` to the front, scatter-add rows by index, move it back
          const perm = [axis, ...x.shape.map((_, i) => i).filter((i) => i !== axis)];
          const inv = perm.map((_, i) => perm.indexOf(i));
          const flatIdx = tf.reshape(indices, [-1]) as tf.Tensor1D;
          const rest = x.shape.filter((_, i) => i !== axis);
          // dy is x.shape with axis replaced by indices.shape
          const dyAxisFirst = tf.transpose(dy, [
            ...Array.from({ length: indices.rank }, (_, i) => axis + i),
            ...Array.from({ length: axis }, (_, i) => i),
            ...Array.from({ length: dy.rank - axis - indices.rank }, (_, i) => axis + indices.rank + i),
          ]);
          const rows = tf.reshape(dyAxisFirst, [flatIdx.shape[0], ...rest]);
          // scatter-add as a one-hot matMul (wasm has no UnsortedSegmentSum)
          const n = x.shape[axis] as number;
          const oneHot = tf.oneHot(tf.cast(flatIdx, 'int32'), n); // [k, n]
          const flatRows = tf.reshape(rows, [flatIdx.shape[0], -1]);
          const summed = tf.reshape(tf.matMul(oneHot, flatRows, true, false), [n, ...rest]);
          return tf.transpose(summed, inv);
        },
        indices: () => tf.zerosLike(indices),
      };
    }) as GradFn,
  },
  Softmax: {
    outputsToSave: [true],
    gradFunc: ((dy: T, saved: T[], attrs: Attrs) => {
      const y = saved[0] as T;
      const dim = attrs.dim as number;
      const dyy = tf.mul(dy, y);
      return { logits: () => tf.sub(dyy, tf.mul(tf.sum(dyy, dim, true), y)) };
    }) as GradFn,
  },
  LogSoftmax: {
    outputsToSave: [true],
    gradFunc: ((dy: T, saved: T[], attrs: Attrs) => {
      const y = saved[0] as T;
      return { logits: () => tf.sub(dy, tf.mul(tf.sum(dy, attrs.axis, true), tf.exp(y))) };
    }) as GradFn,
  },
  FusedBatchNorm: {
    inputsToSave: ['x', 'mean', 'variance', 'scale'],
    gradFunc: ((dy: T, saved: T[], attrs: Attrs) => {
      const [x, mean, variance, scale] = saved as [T, T, T, T | undefined];
      const eps = attrs.varianceEpsilon as number;
      const inv = tf.rsqrt(tf.add(variance, eps));
      const s = scale ?? tf.scalar(1);
      const xc = tf.sub(x, mean);
      const out: Record<string, () => T> = {
        x: () => tf.mul(dy, tf.mul(s, inv)),
        mean: () => reduceToShape(tf.neg(tf.mul(dy, tf.mul(s, inv))), mean.shape),
        variance: () =>
          reduceToShape(tf.mul(tf.mul(dy, xc), tf.mul(tf.mul(s, -0.5), tf.pow(inv, 3))), variance.shape),
        offset: () => reduceToShape(dy, mean.shape.length > 0 ? mean.shape : [x.shape[x.rank - 1] as number]),
      };
      if (scale !== undefined) out.scale = () => reduceToShape(tf.mul(dy, tf.mul(xc, inv)), scale.shape);
      return out;
    }) as GradFn,
  },
  MaxPool: {
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: ((dy: T, saved: T[], attrs: Attrs) => {
      const [x, y] = saved as [T, T];
      return {
        x: () =>
          tf.engine().runKernel(
            'MaxPoolGrad',
            { dy, input: x, output: y },
            {
              filterSize: attrs.filterSize,
              strides: attrs.strides,
              pad: attrs.pad,
              dimRoundingMode: attrs.dimRoundingMode,
            },
          ) as T,
      };
    }) as GradFn,
  },
  AvgPool: unaryX(
    (dy, x, attrs) =>
      tf.engine().runKernel(
        'AvgPoolGrad',
        { dy, input: x },
        {
          filterSize: attrs.filterSize,
          strides: attrs.strides,
          pad: attrs.pad,
          dimRoundingMode: attrs.dimRoundingMode,
        },
      ) as T,
  ),
  ResizeNearestNeighbor: {
    inputsToSave: ['images'],
    gradFunc: ((dy: T, saved: T[], attrs: Attrs) => ({
      images: () => resizeGrad(dy, saved[0] as T, attrs, 'nearest'),
    })) as GradFn,
  },
  ResizeBilinear: {
    inputsToSave: ['images'],
    gradFunc: ((dy: T, saved: T[], attrs: Attrs) => ({
      images: () => resizeGrad(dy, saved[0] as T, attrs, 'bilinear'),
    })) as GradFn,
  },
  BatchMatMul: {
    inputsToSave: ['a', 'b'],
    gradFunc: ((dy: T, saved: T[], attrs: Attrs) => {
      const [a, b] = saved as [T, T];
      const tA = Boolean(attrs.transposeA);
      const tB = Boolean(attrs.transposeB);
      // explicit transposes: wasm's matMul is ~10x slower with transposeA set
      const tr = (p: T) => {
        const perm = p.shape.map((_, i) => i);
        perm[p.rank - 2] = p.rank - 1;
        perm[p.rank - 1] = p.rank - 2;
        return tf.transpose(p, perm);
      };
      const mm = (p: T, q: T, tp: boolean, tq: boolean) => tf.matMul(tp ? tr(p) : p, q, false, tq);
      let da: () => T;
      let db: () => T;
      if (!tA && !tB) {
        da = () => mm(dy, b, false, true);
        db = () => mm(a, dy, true, false);
      } else if (!tA && tB) {
        da = () => mm(dy, b, false, false);
        db = () => mm(dy, a, true, false);
      } else if (tA && !tB) {
        da = () => mm(b, dy, false, true);
        db = () => mm(a, dy, false, false);
      } else {
        da = () => mm(b, dy, true, true);
        db = () => mm(dy, a, true, true);
      }
      return { a: () => reduceToShape(da(), a.shape), b: () => reduceToShape(db(), b.shape) };
    }) as GradFn,
  },
};

/** Kernels whose outputs carry no gradient (comparisons, rounding, index ops). */
const ZERO_GRAD_BINARY = [
  'Equal',
  'NotEqual',
  'Greater',
  'GreaterEqual',
  'Less',
  'LessEqual',
  'LogicalAnd',
  'LogicalOr',
];
const ZERO_GRAD_UNARY = [
  'Sign',
  'Floor',
  'Ceil',
  'Round',
  'Step',
  'LogicalNot',
  'ZerosLike',
  'OnesLike',
  'IsNan',
  'IsFinite',
];
for (const k of ZERO_GRAD_BINARY)
  CONFIGS[k] = {
    inputsToSave: ['a', 'b'],
    gradFunc: ((_dy: T, saved: T[]) => ({
      a: zerosFor(saved[0] as T),
      b: zerosFor(saved[1] as T),
    })) as GradFn,
  };
for (const k of ZERO_GRAD_UNARY)
  CONFIGS[k] = {
    inputsToSave: ['x'],
    gradFunc: ((_dy: T, saved: T[]) => ({ x: zerosFor(saved[0] as T) })) as GradFn,
  };
for (const k of ['ArgMax', 'ArgMin'])
  CONFIGS[k] = {
    inputsToSave: ['x'],
    gradFunc: ((_dy: T, saved: T[]) => ({ x: zerosFor(saved[0] as T) })) as GradFn,
  };
// the transposed conv (a conv's input gradient used as a layer): its gradients are a conv and a filter gradient
CONFIGS.Conv2DBackpropInput = {
  inputsToSave: ['dy', 'filter'],
  gradFunc: ((ddx: T, saved: T[], attrs: Attrs) => {
    const [dy, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
    return {
      dy: () =>
        tf.conv2d(ddx as tf.Tensor4D, filter, attrs.strides, attrs.pad, 'NHWC', 1, attrs.dimRoundingMode),
      filter: () =>
        tf.engine().runKernel(
          'Conv2DBackpropFilter',
          { x: ddx, dy },
          {
            strides: attrs.strides,
            pad: attrs.pad,
            dataFormat: 'NHWC',
            dimRoundingMode: attrs.dimRoundingMode,
            filterShape: filter.shape,
          },
        ) as T,
    };
  }) as GradFn,
};

/** The kernel names this module can supply a gradient for. */
export const SUPPLIED_GRADIENTS: readonly string[] = Object.keys(CONFIGS);

function existingGradients(): Map<string, unknown> | null {
  const g = (globalThis as unknown as { _tfGlobals?: Map<string, unknown> })._tfGlobals;
  const reg = g?.get('gradRegistry');
  return reg instanceof Map ? reg : null;
}

/**
 * Registers our gradient for every kernel in `SUPPLIED_GRADIENTS` that has none yet (or for all of
 * them with `override`). Returns the kernel names registered.
 */
export function registerGradients(override = false): string[] {
  const existing = existingGradients();
  const added: string[] = [];
  for (const [kernelName, cfg] of Object.entries(CONFIGS)) {
    if (!override && (ours.has(kernelName) || existing?.has(kernelName))) continue;
    tf.registerGradient({ kernelName, ...cfg } as unknown as tf.GradConfig);
    ours.add(kernelName);
    added.push(kernelName);
  }
  return added;
}

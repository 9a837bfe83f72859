/**
 * Gradients for training convolutions on every backend.
 *
 * TF.js 4.22 cannot train a convolutional network on the wasm backend: it has no
 * `Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropFilter` or `DepthwiseConv2dNativeBackpropInput`
 * kernel there. And no backend has a gradient for a dilated convolution (`Conv2D` and
 * `DepthwiseConv2dNative` gradients assert `dilations == 1`; so do the fused ops' custom gradients).
 *
 * Everything here is composed from forward ops that every backend has (conv2d, depthwiseConv2d,
 * matMul, pad, slice, transpose, reshape, sum), so the same code is the gradient on cpu, wasm and webgl:
 *
 * - filter gradient of a k x k conv = a convolution of the (transposed) input with the (transposed)
 *   output gradient as the filter, the forward stride becoming the dilation and vice versa; a 1x1 conv's
 *   filter gradient is one matMul;
 * - input gradient of a dilated conv = a dilated conv of the padded output gradient with the flipped,
 *   in/out-swapped filter;
 * - depthwise filter gradient = for each of the k*k taps, the sum over batch and space of the shifted,
 *   strided input times the output gradient;
 * - depthwise input gradient = a depthwise conv of the zero-interleaved (stride) output gradient with the
 *   flipped filter.
 *
 * `registerTrainingKernels()` registers the three missing kernels for the backends that lack them and
 * replaces the `Conv2D` / `DepthwiseConv2dNative` gradients by ones that also handle dilation. It is
 * idempotent and is called by the trainer; call it yourself before `tf.grads` on a model otherwise.
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from './errors.js';
import { registerGradients } from './gradients.js';

type Pair = [number, number];
/** TF.js conv padding: 'same' / 'valid', a number, or explicit NHWC pads. */
export type ConvPad = 'same' | 'valid' | number | number[][];

function pair(v: number | readonly number[] | undefined, dflt = 1): Pair {
  if (v === undefined || v === null) return [dflt, dflt];
  if (typeof v === 'number') return [v, v];
  return [v[0] ?? dflt, v[1] ?? v[0] ?? dflt];
}

/** The (before, after) pads along one axis that TF.js would use for this conv. */
function axisPads(pad: ConvPad, axis: 0 | 1, inSize: number, k: number, s: number, d: number): Pair {
  const ek = (k - 1) * d + 1;
  if (pad === 'valid') return [0, 0];
  if (pad === 'same') {
    const out = Math.ceil(inSize / s);
    const total = Math.max((out - 1) * s + ek - inSize, 0);
    const before = Math.floor(total / 2);
    return [before, total - before];
  }
  if (typeof pad === 'number') return [pad, pad];
  const p = pad[axis + 1];
  check(
    Array.isArray(p) && p.length === 2,
    () => `conv gradient: unsupported explicit padding ${JSON.stringify(pad)}`,
  );
  return [p[0] as number, p[1] as number];
}

interface ConvGeometry {
  padH: Pair;
  padW: Pair;
  outH: number;
  outW: number;
}

function geometry(xShape: readonly number[], k: Pair, s: Pair, d: Pair, pad: ConvPad): ConvGeometry {
  const [, h, w] = xShape as [number, number, number, number];
  const padH = axisPads(pad, 0, h, k[0], s[0], d[0]);
  const padW = axisPads(pad, 1, w, k[1], s[1], d[1]);
  const outH = Math.floor((h + padH[0] + padH[1] - ((k[0] - 1) * d[0] + 1)) / s[0]) + 1;
  const outW = Math.floor((w + padW[0] + padW[1] - ((k[1] - 1) * d[1] + 1)) / s[1]) + 1;
  return { padH, padW, outH, outW };
}

function padNhwc(x: tf.Tensor4D, ph: Pair, pw: Pair): tf.Tensor4D {
  if (ph[0] === 0 && ph[1] === 0 && pw[0] === 0 && pw[1] === 0) return x;
  return tf.pad(x, [[0, 0], ph, pw, [0, 0]]);
}

/** Pads (positive) or crops (negative) each spatial side. */
function padOrCrop(x: tf.Tensor4D, ph: Pair, pw: Pair): tf.Tensor4D {
  const pos = (v: number) => Math.max(v, 0);
  let y = padNhwc(x, [pos(ph[0]), pos(ph[1])], [pos(pw[0]), pos(pw[1])]);
  if (ph[0] < 0 || ph[1] < 0 || pw[0] < 0 || pw[1] < 0) {
    const [b, h, w, c] = y.shape;
    const t = pos(-ph[0]);
    const l = pos(-pw[0]);
    y = tf.slice(y, [0, t, l, 0], [b, h - t - pos(-ph[1]), w - l - pos(-pw[1]), c]);
  }
  return y;
}

/** Inserts (s - 1) zeros between the rows / columns of dy: the output gradient of a strided conv on a stride-1 grid. */
function zeroInterleave(dy: tf.Tensor4D, s: Pair): tf.Tensor4D {
  if (s[0] === 1 && s[1] === 1) return dy;
  const [b, h, w, c] = dy.shape;
  const e = tf.reshape(dy, [b, h, 1, w, 1, c]);
  const p = tf.pad(e, [
    [0, 0],
    [0, 0],
    [0, s[0] - 1],
    [0, 0],
    [0, s[1] - 1],
    [0, 0],
  ]);
  const full = tf.reshape(p, [b, h * s[0], w * s[1], c]) as tf.Tensor4D;
  return tf.slice(full, [0, 0, 0, 0], [b, (h - 1) * s[0] + 1, (w - 1) * s[1] + 1, c]);
}

/**
 * The gradient of a conv input from dy, for a stride-1 formulation: correlate the (zero-interleaved) dy,
 * padded so every input position sees the taps that touched it, with the flipped filter.
 */
function fullCorrelationPads(inSize: number, zSize: number, k: number, d: number, padBefore: number): Pair {
  const ek = (k - 1) * d;
  const before = ek - padBefore;
  // output size of a valid conv over (zSize + before + after) must be inSize
  const after = inSize + ek - zSize - before;
  return [before, after];
}

/** d(loss)/d(filter) of `tf.conv2d(x, filter, strides, pad, 'NHWC', dilations)`. */
export function conv2dFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: readonly [number, number, number, number],
  strides: number | readonly number[],
  pad: ConvPad,
  dilations: number | readonly number[] = 1,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, ci, co] = filterShape;
    const s = pair(strides);
    const d = pair(dilations);
    const g = geometry(x.shape, [kh, kw], s, d, pad);
    const [b] = x.shape;
    if (kh === 1 && kw === 1) {
      // a 1x1 conv is a matMul over (batch, rows, cols)
      let xs = padNhwc(x, g.padH, g.padW);
      if (s[0] !== 1 || s[1] !== 1)
        xs = tf.stridedSlice(
          xs,
          [0, 0, 0, 0],
          [b, (g.outH - 1) * s[0] + 1, (g.outW - 1) * s[1] + 1, ci],
          [1, s[0], s[1], 1],
        ) as tf.Tensor4D;
      // Explicit transposes (wasm's matMul is ~10x slower with transposeA set), and the operand with
      // fewer channels on the right: wasm re-packs the right-hand matrix on every call.
      const x2 = tf.reshape(xs, [-1, ci]);
      const d2 = tf.reshape(dy, [-1, co]);
      const dw = co <= ci ? tf.matMul(tf.transpose(x2), d2) : tf.transpose(tf.matMul(tf.transpose(d2), x2));
      return tf.reshape(dw, [1, 1, ci, co]);
    }
    const xp = padNhwc(x, g.padH, g.padW);
    // batch <-> channels: the input becomes ci images of b channels, dy a [oh, ow, b, co] filter
    const xt = tf.transpose(xp, [3, 1, 2, 0]);
    const dyt = tf.transpose(dy, [1, 2, 0, 3]);
    const r = tf.conv2d(xt as tf.Tensor4D, dyt as tf.Tensor4D, d, 'valid', 'NHWC', s);
    const cropped = tf.slice(r, [0, 0, 0, 0], [ci, kh, kw, co]);
    return tf.transpose(cropped, [1, 2, 0, 3]);
  });
}

/**
 * A filter with its taps in reverse order (rows and columns), as the input gradient correlates with. A 1x1 filter
 * is its own reverse: skipping the copy matters on cpu, whose Reverse kernel took 0.45 s for a [1, 1, 192, 1152]
 * filter (a quarter of a lite0 training step there).
 */
function flipTaps(filter: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw] = filter.shape;
  return kh === 1 && kw === 1 ? filter : tf.reverse(filter, [0, 1]);
}

/** d(loss)/d(x) of `tf.conv2d(x, filter, strides, pad, 'NHWC', dilations)`. */
export function conv2dInputGrad(
  xShape: readonly [number, number, number, number],
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: number | readonly number[],
  pad: ConvPad,
  dilations: number | readonly number[] = 1,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw] = filter.shape;
    const s = pair(strides);
    const d = pair(dilations);
    const g = geometry(xShape, [kh, kw], s, d, pad);
    const z = zeroInterleave(dy, s);
    const ph = fullCorrelationPads(xShape[1], z.shape[1], kh, d[0], g.padH[0]);
    const pw = fullCorrelationPads(xShape[2], z.shape[2], kw, d[1], g.padW[0]);
    const zp = padOrCrop(z, ph, pw);
    const flipped = tf.transpose(flipTaps(filter), [0, 1, 3, 2]) as tf.Tensor4D;
    return tf.conv2d(zp, flipped, 1, 'valid', 'NHWC', d);
  });
}

/** d(loss)/d(filter) of `tf.depthwiseConv2d(x, filter, strides, pad, 'NHWC', dilations)`. */
export function depthwiseFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: readonly [number, number, number, number],
  strides: number | readonly number[],
  pad: ConvPad,
  dilations: number | readonly number[] = 1,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, c, m] = filterShape;
    const s = pair(strides);
    const d = pair(dilations);
    const g = geometry(x.shape, [kh, kw], s, d, pad);
    const [b] = x.shape;
    const xp = padNhwc(x, g.padH, g.padW);
    const [, hp, wp] = xp.shape;
    // One depthwise conv over b*c*m "channels": the padded input is the image, dy the (large) filter;
    // the forward stride becomes the dilation, the forward dilation the stride; output [1, >=kh, >=kw, b*c*m].
    let xs: tf.Tensor = tf.transpose(xp, [1, 2, 0, 3]); // [hp, wp, b, c]
    if (m > 1) xs = tf.tile(tf.expandDims(xs, 4), [1, 1, 1, 1, m]); // [hp, wp, b, c, m]
    const img = tf.reshape(xs, [1, hp, wp, b * c * m]) as tf.Tensor4D;
    const filt = tf.reshape(tf.transpose(dy, [1, 2, 0, 3]), [g.outH, g.outW, b * c * m, 1]) as tf.Tensor4D;
    const r = tf.depthwiseConv2d(img, filt, d, 'valid', 'NHWC', s);
    const taps = tf.slice(r, [0, 0, 0, 0], [1, kh, kw, b * c * m]);
    return tf.reshape(tf.sum(tf.reshape(taps, [kh, kw, b, c * m]), 2), [kh, kw, c, m]);
  });
}

/** d(loss)/d(x) of `tf.depthwiseConv2d(x, filter, strides, pad, 'NHWC', dilations)`. */
export function depthwiseInputGrad(
  xShape: readonly [number, number, number, number],
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: number | readonly number[],
  pad: ConvPad,
  dilations: number | readonly number[] = 1,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, c, m] = filter.shape;
    const s = pair(strides);
    const d = pair(dilations);
    const g = geometry(xShape, [kh, kw], s, d, pad);
    const z = zeroInterleave(dy, s);
    const ph = fullCorrelationPads(xShape[1], z.shape[1], kh, d[0], g.padH[0]);
    const pw = fullCorrelationPads(xShape[2], z.shape[2], kw, d[1], g.padW[0]);
    const zp = padOrCrop(z, ph, pw);
    // each of the c*m output channels feeds back through its own flipped tap; sum the m per input channel
    const flipped = tf.reshape(flipTaps(filter), [kh, kw, c * m, 1]) as tf.Tensor4D;
    const r = tf.depthwiseConv2d(zp, flipped, 1, 'valid', 'NHWC', d);
    if (m === 1) return r;
    const [b, h, w] = r.shape;
    return tf.sum(tf.reshape(r, [b, h, w, c, m]), 4) as tf.Tensor4D;
  });
}

const MISSING_KERNELS = [
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
] as const;

// biome-ignore lint/suspicious/noExplicitAny: kernel attrs are an untyped map in TF.js
type Attrs = Record<string, any>;

const composedFns = new WeakSet<tf.KernelFunc>();

function composedKernel(name: (typeof MISSING_KERNELS)[number]): tf.KernelFunc {
  const fn: tf.KernelFunc = ({ inputs, attrs }) => {
    const a = attrs as Attrs;
    if (name === 'Conv2DBackpropFilter') {
      const { x, dy } = inputs as { x: tf.Tensor4D; dy: tf.Tensor4D };
      check(
        a.dataFormat === undefined || a.dataFormat === 'NHWC',
        () => `Conv2DBackpropFilter: only NHWC is supported, got ${a.dataFormat}`,
      );
      return conv2dFilterGrad(x, dy, a.filterShape, a.strides, a.pad, 1);
    }
    if (name === 'DepthwiseConv2dNativeBackpropFilter') {
      const { x, dy } = inputs as { x: tf.Tensor4D; dy: tf.Tensor4D };
      return depthwiseFilterGrad(x, dy, a.filterShape, a.strides, a.pad, a.dilations ?? 1);
    }
    const { dy, filter } = inputs as { dy: tf.Tensor4D; filter: tf.Tensor4D };
    return depthwiseInputGrad(a.inputShape, dy, filter, a.strides, a.pad, a.dilations ?? 1);
  };
  composedFns.add(fn);
  return fn;
}

function allOne(v: number | readonly number[] | undefined): boolean {
  const [a, b] = pair(v);
  return a === 1 && b === 1;
}

let gradientsRegistered = false;

/**
 * Identity that shares the input's data (a reference count), as the cpu backend's does. The wasm backend's own
 * copies the data, and the tape clones every tensor it saves for the backward pass through Identity: copying
 * doubles the memory of a training step (lite0 @320 with batch 4 runs out of wasm memory) and costs time.
 */
const sharingIdentity: tf.KernelFunc = ({ inputs, backend }) => {
  const { x } = inputs as { x: tf.TensorInfo };
  (backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

/**
 * Makes networks trainable with tfjs-core alone: registers the gradients of `gradients.ts`, the
 * missing conv backprop kernels on `backendNames` (default: every registered backend), and conv
 * gradients that handle dilation. Idempotent. Returns what it registered (`gradient:Kernel`,
 * `backend:Kernel`), for logging.
 */
export function registerTrainingKernels(backendNames?: readonly string[]): string[] {
  const added: string[] = registerGradients().map((k) => `gradient:${k}`);
  const names = backendNames ?? (Object.keys(tf.engine().registryFactory) as string[]);
  for (const backendName of names) {
    for (const kernelName of MISSING_KERNELS) {
      if (tf.getKernel(kernelName, backendName) !== undefined) continue;
      tf.registerKernel({ kernelName, backendName, kernelFunc: composedKernel(kernelName) });
      added.push(`${backendName}:${kernelName}`);
    }
  }
  for (const backendName of names) {
    const identity = tf.getKernel('Identity', backendName);
    if (backendName === 'wasm' && identity !== undefined && identity.kernelFunc !== sharingIdentity) {
      tf.unregisterKernel('Identity', backendName);
      tf.registerKernel({ kernelName: 'Identity', backendName, kernelFunc: sharingIdentity });
      added.push(`${backendName}:Identity (shared data)`);
    }
  }
  if (!gradientsRegistered) {
    gradientsRegistered = true;
    // Same as TF.js' own gradients for dilation 1 (its backprop ops); composed ops for dilation > 1.
    tf.registerGradient({
      kernelName: 'Conv2D',
      inputsToSave: ['x', 'filter'],
      gradFunc: (dy, saved, attrs) => {
        const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
        const a = attrs as Attrs;
        check(
          a.dataFormat === undefined || a.dataFormat === 'NHWC',
          () => `conv2d gradient: only NHWC is supported, got ${a.dataFormat}`,
        );
        const g = dy as tf.Tensor4D;
        if (allOne(a.dilations))
          return {
            x: () => conv2dInputGrad(x.shape, g, filter, a.strides, a.pad, 1),
            filter: () => conv2dFilterGradViaKernel(x, g, filter.shape, a),
          };
        return {
          x: () => conv2dInputGrad(x.shape, g, filter, a.strides, a.pad, a.dilations),
          filter: () => conv2dFilterGrad(x, g, filter.shape, a.strides, a.pad, a.dilations),
        };
      },
    });
    tf.registerGradient({
      kernelName: 'DepthwiseConv2dNative',
      inputsToSave: ['x', 'filter'],
      gradFunc: (dy, saved, attrs) => {
        const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
        const a = attrs as Attrs;
        const g = dy as tf.Tensor4D;
        return {
          x: () => depthwiseInputGrad(x.shape, g, filter, a.strides, a.pad, a.dilations ?? 1),
          filter: () => depthwiseFilterGrad(x, g, filter.shape, a.strides, a.pad, a.dilations ?? 1),
        };
      },
    });
  }
  return added;
}

/**
 * The backend's own Conv2DBackpropFilter kernel where it is the faster one (tfjs-node, WebGL), else the composed
 * one. The cpu backend has its own, but as plain loops it is 15-60x slower than the composed matMul / conv
 * (measured: a 1x1 [1,8,8,1152] -> 192 filter gradient 9.6 s vs 0.26 s, a 3x3 48 -> 48 at 4x32x32 50 s vs 0.9 s;
 * it was 72 % of a lite0 training step on cpu).
 */
function conv2dFilterGradViaKernel(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: number[],
  a: Attrs,
): tf.Tensor4D {
  const backend = tf.getBackend();
  const own = tf.getKernel('Conv2DBackpropFilter', backend);
  if (own !== undefined && !isComposed(own) && backend !== 'cpu')
    return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
      strides: a.strides,
      pad: a.pad,
      dataFormat: 'NHWC',
      dimRoundingMode: a.dimRoundingMode,
      filterShape,
    } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  return conv2dFilterGrad(x, dy, filterShape as [number, number, number, number], a.strides, a.pad, 1);
}

function isComposed(k: tf.KernelConfig): boolean {
  return composedFns.has(k.kernelFunc);
}

/** True when a dilated conv is being differentiated: the fused ops have no gradient for it. */
export function recordingGradients(): boolean {
  return (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;
}

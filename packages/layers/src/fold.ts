import * as tf from '@tensorflow/tfjs-core';
import type { Conv2d } from './conv.js';
import type { BatchNorm2d } from './norm.js';

interface Folded {
  filter: tf.Tensor4D;
  bias: tf.Tensor1D;
}

/** Folded weights per conv and per BatchNorm (heads share a conv across levels with one BN per level). */
const cache = new WeakMap<Conv2d, Map<BatchNorm2d | null, Folded>>();

/**
 * BatchNorm folded into the preceding conv (eval statistics): w' = w * scale per output channel,
 * b' = b * scale + shift with scale = gamma / sqrt(var + eps), shift = beta - mean * scale.
 * Returns new tensors; the caller disposes them.
 */
export function foldBatchNorm(
  conv: Conv2d,
  bn: BatchNorm2d | null,
): { filter: tf.Tensor4D; bias: tf.Tensor1D } {
  return tf.tidy(() => {
    const w = conv.weight.value as tf.Tensor4D;
    const b = conv.bias ? conv.bias.value : tf.zeros([conv.outChannels]);
    if (!bn) return { filter: tf.clone(w), bias: tf.clone(b) as tf.Tensor1D };
    const { scale, shift } = bn.scaleShift();
    // Depthwise filters are [kh, kw, C, mult]: output channel c*mult + j sits at [.., c, j].
    const s = conv.depthwise ? tf.reshape(scale, [w.shape[2], w.shape[3]]) : scale;
    return { filter: tf.mul(w, s) as tf.Tensor4D, bias: tf.add(tf.mul(b, scale), shift) as tf.Tensor1D };
  });
}

/** Drops the folded weights cached for `conv` (called when weights or modes change). */
export function clearFolded(conv: Conv2d): void {
  const byBn = cache.get(conv);
  if (byBn) {
    for (const f of byBn.values()) {
      f.filter.dispose();
      f.bias.dispose();
    }
    cache.delete(conv);
  }
}

/**
 * conv -> BatchNorm(+act) as one unit. Unfolded: the modules as they are (training and reference path).
 * Folded: one fused conv with the BN folded in and the activation fused when TF.js can fuse it.
 */
export function convBnAct(
  conv: Conv2d,
  bn: BatchNorm2d | null,
  x: tf.Tensor4D,
  folded: boolean,
): tf.Tensor4D {
  if (!folded || conv.training || bn?.training) {
    return tf.tidy(() => {
      const y = conv.forward(x);
      return bn ? bn.forward(y) : y;
    });
  }
  conv.checkInput(x);
  let byBn = cache.get(conv);
  if (!byBn) {
    byBn = new Map();
    cache.set(conv, byBn);
  }
  let f = byBn.get(bn);
  if (!f) {
    const { filter, bias } = foldBatchNorm(conv, bn);
    f = { filter: tf.keep(filter), bias: tf.keep(bias) };
    byBn.set(bn, f);
  }
  const act = bn?.act;
  if (!act || act.fused) {
    return conv.convolve(x, f.filter, f.bias, act?.fused ?? 'linear', act?.leakyAlpha);
  }
  const { filter, bias } = f;
  return tf.tidy(() => act.apply(conv.convolve(x, filter, bias)) as tf.Tensor4D);
}

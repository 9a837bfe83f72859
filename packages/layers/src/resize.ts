import * as tf from '@tensorflow/tfjs-core';
import { check, shapeStr } from './errors.js';

export interface ResizeOptions {
  mode?: 'nearest' | 'bilinear';
  /**
   * Bilinear only. `true` = PyTorch `align_corners=True`; `false` (default) = PyTorch `align_corners=False`
   * (half-pixel centres, as TF2 `tf.image.resize`).
   */
  alignCorners?: boolean;
}

/**
 * Resizes NHWC to `[height, width]` with the reference conventions: `nearest` is floor-based like PyTorch
 * `F.interpolate(mode='nearest', size=...)` and TF `resize_nearest_neighbor` (no corner alignment, no
 * half-pixel centres); `bilinear` follows PyTorch's `align_corners` flag.
 */
export function resize(
  x: tf.Tensor4D,
  size: readonly [number, number],
  options: ResizeOptions = {},
): tf.Tensor4D {
  check(x.rank === 4, () => `resize: expected a 4-D NHWC input, got ${shapeStr(x.shape)}`);
  check(
    size.length === 2 && size.every((s) => Number.isInteger(s) && s > 0),
    () => `resize: size must be two positive integers, got ${JSON.stringify(size)}`,
  );
  const mode = options.mode ?? 'nearest';
  if (x.shape[1] === size[0] && x.shape[2] === size[1]) return x;
  if (mode === 'nearest') return tf.image.resizeNearestNeighbor(x, [size[0], size[1]], false, false);
  check(mode === 'bilinear', () => `resize: mode must be 'nearest' or 'bilinear', got '${String(mode)}'`);
  const align = options.alignCorners ?? false;
  return tf.image.resizeBilinear(x, [size[0], size[1]], align, !align);
}

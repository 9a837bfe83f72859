import { check } from './errors.js';

/**
 * Padding choices, resolved in one place for convolutions and pools:
 * - `'same'`: TensorFlow SAME (out = ceil(in / stride); the odd extra pixel goes bottom/right). TF.js' own
 *   `'same'` implements exactly this for every input size, so it covers timm's static and dynamic cases.
 * - `''`: PyTorch symmetric padding `((stride - 1) + dilation * (k - 1)) // 2` on every side (timm default).
 * - `'valid'`: no padding.
 * - a number or `[ph, pw]`: explicit symmetric padding.
 */
export type PaddingSpec = 'same' | '' | 'valid' | number | readonly [number, number];

/** What an op receives: TF.js `'same'` / `'valid'`, or explicit `[[top, bottom], [left, right]]`. */
export type ResolvedPadding = 'same' | 'valid' | [[number, number], [number, number]];

function pair(v: number | readonly [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/** PyTorch's symmetric padding for one dimension (timm `get_padding`). */
export function symmetricPadding(kernel: number, stride: number, dilation: number): number {
  return Math.floor((stride - 1 + dilation * (kernel - 1)) / 2);
}

/**
 * Resolves a padding spec for a kernel. Explicit pads that equal TF SAME for every input size
 * (stride 1 and an odd effective kernel) become `'same'`, so the fast native path is used.
 */
export function resolvePadding(
  padding: PaddingSpec,
  kernel: number | readonly [number, number],
  stride: number | readonly [number, number] = 1,
  dilation: number | readonly [number, number] = 1,
): ResolvedPadding {
  const [kh, kw] = pair(kernel);
  const [sh, sw] = pair(stride);
  const [dh, dw] = pair(dilation);
  if (padding === 'same' || padding === 'valid') return padding;
  let ph: number;
  let pw: number;
  if (padding === '') {
    ph = symmetricPadding(kh, sh, dh);
    pw = symmetricPadding(kw, sw, dw);
  } else if (typeof padding === 'number' || Array.isArray(padding)) {
    [ph, pw] = pair(padding as number | [number, number]);
    check(
      Number.isInteger(ph) && Number.isInteger(pw) && ph >= 0 && pw >= 0,
      () => `resolvePadding: explicit padding must be non-negative integers, got ${JSON.stringify(padding)}`,
    );
  } else {
    throw new Error(
      `resolvePadding: padding must be 'same', '', 'valid', a number or [ph, pw]; got ${JSON.stringify(padding)}`,
    );
  }
  if (ph === 0 && pw === 0) return 'valid';
  const sameH = sh === 1 && ((kh - 1) * dh) % 2 === 0 && ph === ((kh - 1) * dh) / 2;
  const sameW = sw === 1 && ((kw - 1) * dw) % 2 === 0 && pw === ((kw - 1) * dw) / 2;
  if (sameH && sameW) return 'same';
  return [
    [ph, ph],
    [pw, pw],
  ];
}

/** Output size of one dimension under a resolved padding (for shape inference without running). */
export function convOutputSize(
  size: number,
  kernel: number,
  stride: number,
  dilation: number,
  pad: 'same' | 'valid' | [number, number],
): number {
  const eff = (kernel - 1) * dilation + 1;
  if (pad === 'same') return Math.ceil(size / stride);
  const [a, b] = pad === 'valid' ? [0, 0] : pad;
  return Math.floor((size + a + b - eff) / stride) + 1;
}

/**
 * Host letterboxing for the onnxruntime detector: PIL's bilinear resize (Pillow `Resample.c`, 8 bits per channel,
 * 22-bit fixed-point coefficients, horizontal pass rounded to uint8, then vertical), written straight into the
 * model's uint8 canvas. The arithmetic is integer, so the result equals `resizeRgbPil` of `@effdet/effdet` bit for
 * bit; the loops are arranged for speed (the vertical pass accumulates whole rows), about 3x faster.
 */
import type { RgbImage } from '@effdet/effdet';

const BITS = 22;
const HALF = 1 << (BITS - 1);

interface Coeffs {
  /** First input index per output index. */
  start: Int32Array;
  /** Taps per output index. */
  count: Int32Array;
  /** `ksize` fixed-point weights per output index. */
  weights: Int32Array;
  ksize: number;
}

/** Pillow's `precompute_coeffs` for the bilinear (triangle) filter. */
function coefficients(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const inv = 1 / filterScale;
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    let lo = Math.trunc(center - support + 0.5);
    if (lo < 0) lo = 0;
    let hi = Math.trunc(center + support + 0.5);
    if (hi > inSize) hi = inSize;
    const n = hi - lo;
    let total = 0;
    for (let j = 0; j < n; j++) {
      const d = (j + lo - center + 0.5) * inv;
      const a = d < 0 ? -d : d;
      const v = a < 1 ? 1 - a : 0;
      k[j] = v;
      total += v;
    }
    for (let j = 0; j < ksize; j++) {
      const v = j < n ? (total !== 0 ? k[j] / total : k[j]) : 0;
      weights[o * ksize + j] = v < 0 ? Math.trunc(-0.5 + v * (1 << BITS)) : Math.trunc(0.5 + v * (1 << BITS));
    }
    start[o] = lo;
    count[o] = n;
  }
  return { start, count, weights, ksize };
}

function clamp8(v: number): number {
  const s = v >> BITS;
  // biome-ignore lint/complexity/useMathMinMax: the per-pixel hot loop (Math builtins are slow inside Jest's VM)
  return s < 0 ? 0 : s > 255 ? 255 : s;
}

/**
 * Per output index, exactly `taps` (input index, weight) pairs: Pillow's taps, padded with zero weights at a valid
 * index, so the inner loops can be unrolled. `taps` is the largest tap count (2 or 3 for shrinking by < 1.5).
 */
function padded(c: Coeffs): { taps: number; index: Int32Array; weight: Int32Array } {
  let taps = 1;
  for (let o = 0; o < c.count.length; o++) if (c.count[o] > taps) taps = c.count[o];
  const n = c.count.length;
  const index = new Int32Array(n * taps);
  const weight = new Int32Array(n * taps);
  for (let o = 0; o < n; o++) {
    for (let j = 0; j < taps; j++) {
      const real = j < c.count[o];
      index[o * taps + j] = c.start[o] + (real ? j : 0);
      weight[o * taps + j] = real ? c.weights[o * c.ksize + j] : 0;
    }
  }
  return { taps, index, weight };
}

/** Horizontal pass: `src` rows resized to `outW` columns (3 channels), rounded to uint8. */
function horizontal(src: RgbImage, outW: number): Uint8Array {
  const { data, width: inW, height } = src;
  const { taps, index, weight } = padded(coefficients(inW, outW));
  const out = new Uint8Array(outW * height * 3);
  for (let y = 0; y < height; y++) {
    const row = y * inW * 3;
    let o = y * outW * 3;
    if (taps === 2) {
      for (let x = 0; x < outW; x++) {
        const a = row + index[2 * x] * 3;
        const b = row + index[2 * x + 1] * 3;
        const wa = weight[2 * x];
        const wb = weight[2 * x + 1];
        out[o++] = clamp8(HALF + data[a] * wa + data[b] * wb);
        out[o++] = clamp8(HALF + data[a + 1] * wa + data[b + 1] * wb);
        out[o++] = clamp8(HALF + data[a + 2] * wa + data[b + 2] * wb);
      }
    } else if (taps === 3) {
      for (let x = 0; x < outW; x++) {
        const a = row + index[3 * x] * 3;
        const b = row + index[3 * x + 1] * 3;
        const c = row + index[3 * x + 2] * 3;
        const wa = weight[3 * x];
        const wb = weight[3 * x + 1];
        const wc = weight[3 * x + 2];
        out[o++] = clamp8(HALF + data[a] * wa + data[b] * wb + data[c] * wc);
        out[o++] = clamp8(HALF + data[a + 1] * wa + data[b + 1] * wb + data[c + 1] * wc);
        out[o++] = clamp8(HALF + data[a + 2] * wa + data[b + 2] * wb + data[c + 2] * wc);
      }
    } else if (taps === 4) {
      for (let x = 0; x < outW; x++) {
        const q = 4 * x;
        const a = row + index[q] * 3;
        const b = row + index[q + 1] * 3;
        const c = row + index[q + 2] * 3;
        const d = row + index[q + 3] * 3;
        const wa = weight[q];
        const wb = weight[q + 1];
        const wc = weight[q + 2];
        const wd = weight[q + 3];
        out[o++] = clamp8(HALF + data[a] * wa + data[b] * wb + data[c] * wc + data[d] * wd);
        out[o++] = clamp8(HALF + data[a + 1] * wa + data[b + 1] * wb + data[c + 1] * wc + data[d + 1] * wd);
        out[o++] = clamp8(HALF + data[a + 2] * wa + data[b + 2] * wb + data[c + 2] * wc + data[d + 2] * wd);
      }
    } else if (taps === 5) {
      for (let x = 0; x < outW; x++) {
        const q = 5 * x;
        const a = row + index[q] * 3;
        const b = row + index[q + 1] * 3;
        const c = row + index[q + 2] * 3;
        const d = row + index[q + 3] * 3;
        const e = row + index[q + 4] * 3;
        const wa = weight[q];
        const wb = weight[q + 1];
        const wc = weight[q + 2];
        const wd = weight[q + 3];
        const we = weight[q + 4];
        out[o++] = clamp8(HALF + data[a] * wa + data[b] * wb + data[c] * wc + data[d] * wd + data[e] * we);
        out[o++] = clamp8(
          HALF + data[a + 1] * wa + data[b + 1] * wb + data[c + 1] * wc + data[d + 1] * wd + data[e + 1] * we,
        );
        out[o++] = clamp8(
          HALF + data[a + 2] * wa + data[b + 2] * wb + data[c + 2] * wc + data[d + 2] * wd + data[e + 2] * we,
        );
      }
    } else {
      for (let x = 0; x < outW; x++) {
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let j = 0; j < taps; j++) {
          const p = row + index[taps * x + j] * 3;
          const wgt = weight[taps * x + j];
          s0 += data[p] * wgt;
          s1 += data[p + 1] * wgt;
          s2 += data[p + 2] * wgt;
        }
        out[o++] = clamp8(s0);
        out[o++] = clamp8(s1);
        out[o++] = clamp8(s2);
      }
    }
  }
  return out;
}

/** Vertical pass of `rows` rows of `rowLen` bytes into `dst` (rows `rowOut` apart from `offset`). */
function vertical(
  src: Uint8Array,
  rowLen: number,
  inH: number,
  outH: number,
  dst: Uint8Array,
  offset: number,
  rowOut: number,
): void {
  const { taps, index, weight } = padded(coefficients(inH, outH));
  // Sums stay below 2^31: the weights of a row add up to ~2^22 and pixels are < 256.
  const acc = new Int32Array(taps > 3 ? rowLen : 0);
  for (let y = 0; y < outH; y++) {
    const o = offset + y * rowOut;
    if (taps === 2) {
      const a = index[2 * y] * rowLen;
      const b = index[2 * y + 1] * rowLen;
      const wa = weight[2 * y];
      const wb = weight[2 * y + 1];
      for (let i = 0; i < rowLen; i++) dst[o + i] = clamp8(HALF + src[a + i] * wa + src[b + i] * wb);
    } else if (taps === 3) {
      const a = index[3 * y] * rowLen;
      const b = index[3 * y + 1] * rowLen;
      const c = index[3 * y + 2] * rowLen;
      const wa = weight[3 * y];
      const wb = weight[3 * y + 1];
      const wc = weight[3 * y + 2];
      for (let i = 0; i < rowLen; i++)
        dst[o + i] = clamp8(HALF + src[a + i] * wa + src[b + i] * wb + src[c + i] * wc);
    } else {
      // More taps (shrinking by 1.5 or more): accumulate whole rows, one tap at a time.
      acc.fill(HALF);
      for (let j = 0; j < taps; j++) {
        const base = index[taps * y + j] * rowLen;
        const wgt = weight[taps * y + j];
        if (wgt === 0) continue;
        for (let i = 0; i < rowLen; i++) acc[i] += src[base + i] * wgt;
      }
      for (let i = 0; i < rowLen; i++) dst[o + i] = clamp8(acc[i]);
    }
  }
}

/**
 * Letterboxes `src` into `dst` (a `[th, tw, 3]` uint8 canvas at `offset`): PIL-resized to `rw x rh` at the
 * top-left, `fill` elsewhere.
 */
export function letterboxInto(
  src: RgbImage,
  rw: number,
  rh: number,
  dst: Uint8Array,
  offset: number,
  th: number,
  tw: number,
  fill: readonly [number, number, number],
): void {
  const rowOut = tw * 3;
  // The padding: right of the image, then the rows below it.
  const pattern = new Uint8Array(rowOut);
  for (let i = 0; i < rowOut; i += 3) {
    pattern[i] = fill[0];
    pattern[i + 1] = fill[1];
    pattern[i + 2] = fill[2];
  }
  for (let y = 0; y < th; y++) {
    const from = y < rh ? rw * 3 : 0;
    if (from < rowOut) dst.set(pattern.subarray(from), offset + y * rowOut + from);
  }
  const horiz = rw === src.width ? src.data : horizontal(src, rw);
  const rowLen = rw * 3;
  if (rh === src.height) {
    for (let y = 0; y < rh; y++) dst.set(horiz.subarray(y * rowLen, (y + 1) * rowLen), offset + y * rowOut);
    return;
  }
  vertical(horiz, rowLen, src.height, rh, dst, offset, rowOut);
}

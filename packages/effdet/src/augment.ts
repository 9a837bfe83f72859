/**
 * Host-side training augmentations with boxes and masks kept consistent, as effdet's
 * `effdet/data/transforms.py`:
 * - `randomResizePad` = `RandomResizePad`: a random scale factor s in [scaleMin, scaleMax] of the target size,
 *   resize keeping the aspect (`imgScale = min(s * H_t / H, s * W_t / W)`, size truncated), a random crop
 *   offset where the resized image is larger than the target, paste at the top-left of a canvas of the fill
 *   colour; boxes scaled, shifted, clipped to the pasted area and dropped when empty. One deliberate
 *   difference: boxes are scaled by the factor the pixels were resized by (`sw / W`, `sh / H`, from the
 *   truncated size) rather than by the untruncated `imgScale`, which in the reference leaves the far edge of a
 *   box up to a pixel off its object; `boxScale: 'reference'` restores the reference arithmetic.
 * - `resizePad` = `ResizePad`: the same without randomness (the letterbox of `preprocess`), for validation.
 * - `horizontalFlip` / `randomHorizontalFlip` = `RandomFlip`, plus `verticalFlip`.
 * - `trainAugment` = `transforms_coco_train`: random flip (p 0.5), then `randomResizePad`.
 *
 * Images are host RGB (`RgbImage`), resized with PIL's bilinear filter (`resizeRgbPil`, bit-exact; the reference
 * picks bilinear or bicubic at random, bicubic is not provided here). Boxes are `Float32Array [N * 4]` rows
 * `y1, x1, y2, x2` in pixels with the edge convention of COCO boxes (a box of pixels x0..x1 is [x0, x1 + 1)),
 * which is what the anchor labeler and the model's `target.bbox` take; `cocoBoxesToYxyx` converts COCO
 * `[x, y, w, h]`. Masks are `H x W` planes (`Uint8Array` or `Uint16Array`: semantic or instance ids) sampled
 * with nearest neighbour, filled with `maskFill` (default 0) outside the image.
 *
 * Randomness comes from a `() => number` uniform in [0, 1) (e.g. `() => rng.next()` of `@effdet/shapes`), so
 * results are deterministic given the stream. Draw order per call as the reference: scale factor, then the y
 * offset, then the x offset (both offsets are always drawn); a flip draws one number.
 */
import { check } from '@effdet/layers';
import type { RgbImage } from './image.js';
import {
  type FillColor,
  letterboxGeometry,
  type RgbTriple,
  resizeRgbPil,
  resolveFillColor,
} from './preprocess.js';

/** A uniform random number in [0, 1) per call. */
export type UniformRandom = () => number;

/** An `H x W` mask plane: semantic class ids or instance ids. */
export type MaskPlane = Uint8Array | Uint16Array;

/** An image with its labels. */
export interface AugmentSample {
  image: RgbImage;
  /** `[N * 4]`: `y1, x1, y2, x2` in pixels. */
  boxes: Float32Array;
  /** `[N]` class ids, one per box. */
  classes: ArrayLike<number>;
  /** Planes transformed exactly as the image (nearest neighbour). */
  masks?: readonly MaskPlane[];
}

export interface AugmentResult {
  image: RgbImage;
  /** Kept boxes, `[K * 4]` yxyx in output pixels. */
  boxes: Float32Array;
  /** Classes of the kept boxes. */
  classes: Int32Array;
  /** The masks, transformed. */
  masks: MaskPlane[];
  /** Rows of the input that were kept, in order (e.g. to carry instance ids or other per-box data along). */
  keep: Int32Array;
  /** Original / output scale (effdet's `img_scale`; 1 for flips). */
  imgScale: number;
}

export interface ResizePadOptions {
  /** Output size: `[height, width]` or one number for a square. */
  targetSize: number | readonly [number, number];
  /** Padding colour of the image: 'mean' (default: round(255 * mean)), 'zero', a grey value or RGB. */
  fillColor?: FillColor;
  /** Mean used by `fillColor: 'mean'` (ImageNet by default). */
  mean?: RgbTriple;
  /** Value of mask pixels outside the image (default 0; e.g. 255 for an ignore label). */
  maskFill?: number;
  /** Also drop boxes narrower or shorter than this after clipping (default 0: only empty boxes go). */
  minBoxSize?: number;
  /** Also drop boxes with a smaller area after clipping (default 0). */
  minBoxArea?: number;
  /**
   * How boxes are scaled. 'exact' (default): by the resized size over the original size per axis
   * (`sw / W`, `sh / H`), the factor the pixels were actually resized by, so boxes stay on the pixels.
   * 'reference': by `imgScale`'s inverse on both axes, as effdet does; since the resized size is truncated
   * this puts the far edge of a box up to 1 px beyond the pixels it came from.
   */
  boxScale?: 'exact' | 'reference';
}

export interface RandomResizePadOptions extends ResizePadOptions {
  /** Smallest scale factor of the target size (default 0.1). */
  scaleMin?: number;
  /** Largest scale factor (default 2.0). */
  scaleMax?: number;
}

export interface TrainAugmentOptions extends RandomResizePadOptions {
  /** Probability of a horizontal flip (default 0.5). */
  flipProb?: number;
}

interface Checked {
  n: number;
  width: number;
  height: number;
}

function checkSample(fn: string, s: AugmentSample): Checked {
  check(
    s !== null && typeof s === 'object' && s.image !== null && typeof s.image === 'object',
    () => `${fn}: sample must be {image, boxes, classes, masks?}, got ${String(s)}`,
  );
  const { width, height, data } = s.image;
  check(
    Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0,
    () => `${fn}: image must have a positive integer width and height, got ${width}x${height}`,
  );
  check(
    data instanceof Uint8Array && data.length === width * height * 3,
    () =>
      `${fn}: image.data must be a Uint8Array of ${width}x${height}x3 = ${width * height * 3} bytes, got ${
        data instanceof Uint8Array ? data.length : typeof data
      }`,
  );
  check(
    s.boxes instanceof Float32Array && s.boxes.length % 4 === 0,
    () =>
      `${fn}: boxes must be a Float32Array of N * 4 values (y1, x1, y2, x2), got ${
        s.boxes instanceof Float32Array ? `${s.boxes.length} values` : typeof s.boxes
      }`,
  );
  const n = s.boxes.length / 4;
  check(
    s.classes !== null && typeof s.classes === 'object' && s.classes.length === n,
    () => `${fn}: classes must have one entry per box (${n}), got ${s.classes?.length ?? typeof s.classes}`,
  );
  (s.masks ?? []).forEach((m, i) => {
    check(
      (m instanceof Uint8Array || m instanceof Uint16Array) && m.length === width * height,
      () =>
        `${fn}: masks[${i}] must be a Uint8Array or Uint16Array of ${height}x${width} = ${width * height} values, got ${
          m instanceof Uint8Array || m instanceof Uint16Array ? m.length : typeof m
        }`,
    );
  });
  return { n, width, height };
}

function targetOf(fn: string, size: ResizePadOptions['targetSize']): [number, number] {
  const t = typeof size === 'number' ? [size, size] : size;
  check(
    Array.isArray(t) && t.length === 2 && t.every((v) => Number.isInteger(v) && v > 0),
    () => `${fn}: targetSize must be a positive integer or [height, width], got ${JSON.stringify(size)}`,
  );
  return [t[0], t[1]];
}

function nonNegative(fn: string, name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  check(Number.isFinite(x) && x >= 0, () => `${fn}: ${name} must be a number >= 0, got ${String(v)}`);
  return x;
}

function maskFillOf(fn: string, v: number | undefined): number {
  const x = v ?? 0;
  check(
    Number.isInteger(x) && x >= 0 && x <= 65535,
    () => `${fn}: maskFill must be an integer in [0, 65535], got ${String(v)}`,
  );
  return x;
}

function draw(fn: string, random: UniformRandom): number {
  const u = random();
  check(
    typeof u === 'number' && u >= 0 && u < 1,
    () => `${fn}: random() must return a number in [0, 1), got ${String(u)}`,
  );
  return u;
}

/**
 * Resize to `sw x sh`, crop the `th x tw` window at (offY, offX), paste at the top-left of the canvas; boxes
 * scaled (see `boxScale`) and shifted. `scale` is the reference's img_scale factor (input / original).
 */
function resizeCropPad(
  fn: string,
  s: AugmentSample,
  c: Checked,
  scale: number,
  sh: number,
  sw: number,
  offY: number,
  offX: number,
  th: number,
  tw: number,
  o: ResizePadOptions,
): AugmentResult {
  const fill = resolveFillColor(o.fillColor ?? 'mean', o.mean);
  const maskFill = maskFillOf(fn, o.maskFill);
  const minSize = nonNegative(fn, 'minBoxSize', o.minBoxSize, 0);
  const minArea = nonNegative(fn, 'minBoxArea', o.minBoxArea, 0);
  const boxScale = o.boxScale ?? 'exact';
  check(
    boxScale === 'exact' || boxScale === 'reference',
    () => `${fn}: boxScale must be 'exact' or 'reference', got ${String(o.boxScale)}`,
  );
  const { width: w, height: h } = c;
  const byY = boxScale === 'exact' ? sh / h : scale;
  const byX = boxScale === 'exact' ? sw / w : scale;
  // the pasted window: rows offY .. offY + ph of the resized image
  const ph = Math.min(sh - offY, th);
  const pw = Math.min(sw - offX, tw);
  const resized = sw === w && sh === h ? s.image : resizeRgbPil(s.image, sw, sh);
  const out = new Uint8Array(th * tw * 3);
  for (let i = 0; i < th * tw; i++) {
    out[3 * i] = fill[0];
    out[3 * i + 1] = fill[1];
    out[3 * i + 2] = fill[2];
  }
  for (let y = 0; y < ph; y++) {
    const src = ((y + offY) * sw + offX) * 3;
    out.set(resized.data.subarray(src, src + pw * 3), y * tw * 3);
  }
  // masks: nearest source pixel of each output pixel's centre (as PIL's NEAREST resize)
  const sxOf = new Int32Array(pw);
  for (let x = 0; x < pw; x++) sxOf[x] = Math.min(w - 1, Math.floor(((x + offX + 0.5) * w) / sw));
  const masks = (s.masks ?? []).map((m) => {
    const o2 = m instanceof Uint16Array ? new Uint16Array(th * tw) : new Uint8Array(th * tw);
    o2.fill(maskFill);
    for (let y = 0; y < ph; y++) {
      const sy = Math.min(h - 1, Math.floor(((y + offY + 0.5) * h) / sh));
      const srcRow = sy * w;
      const dstRow = y * tw;
      for (let x = 0; x < pw; x++) o2[dstRow + x] = m[srcRow + sxOf[x]];
    }
    return o2;
  });
  // boxes: scale, shift, clip to the pasted area (min(scaled, target), as the reference), drop empty ones
  const boundY = Math.min(sh, th);
  const boundX = Math.min(sw, tw);
  const kept: number[] = [];
  const tmp = new Float32Array(4 * c.n);
  for (let i = 0; i < c.n; i++) {
    const clip = (v: number, hi: number) => Math.min(hi, Math.max(0, v));
    const y1 = Math.fround(clip(s.boxes[4 * i] * byY - offY, boundY));
    const x1 = Math.fround(clip(s.boxes[4 * i + 1] * byX - offX, boundX));
    const y2 = Math.fround(clip(s.boxes[4 * i + 2] * byY - offY, boundY));
    const x2 = Math.fround(clip(s.boxes[4 * i + 3] * byX - offX, boundX));
    if (!(y1 < y2 && x1 < x2)) continue;
    if (y2 - y1 < minSize || x2 - x1 < minSize || (y2 - y1) * (x2 - x1) < minArea) continue;
    tmp.set([y1, x1, y2, x2], 4 * kept.length);
    kept.push(i);
  }
  return {
    image: { data: out, width: tw, height: th },
    boxes: tmp.slice(0, 4 * kept.length),
    classes: Int32Array.from(kept, (i) => s.classes[i]),
    masks,
    keep: Int32Array.from(kept),
    imgScale: 1 / scale,
  };
}

/**
 * effdet's `RandomResizePad`: random scale, crop and pad to `targetSize` (see the file comment). Draws three
 * numbers from `random`.
 */
export function randomResizePad(
  sample: AugmentSample,
  options: RandomResizePadOptions,
  random: UniformRandom,
): AugmentResult {
  const fn = 'randomResizePad';
  const c = checkSample(fn, sample);
  check(
    options !== null && typeof options === 'object',
    () => `${fn}: options must be an object with targetSize`,
  );
  check(
    typeof random === 'function',
    () => `${fn}: random must be a function returning [0, 1), got ${typeof random}`,
  );
  const [th, tw] = targetOf(fn, options.targetSize);
  const lo = options.scaleMin ?? 0.1;
  const hi = options.scaleMax ?? 2.0;
  check(
    Number.isFinite(lo) && Number.isFinite(hi) && lo > 0 && hi >= lo,
    () => `${fn}: scaleMin / scaleMax must satisfy 0 < scaleMin <= scaleMax, got ${lo} / ${hi}`,
  );
  const factor = lo + (hi - lo) * draw(fn, random);
  const scale = Math.min((factor * th) / c.height, (factor * tw) / c.width);
  // the reference truncates; a resized side is kept at least 1 pixel
  const sh = Math.max(1, Math.trunc(c.height * scale));
  const sw = Math.max(1, Math.trunc(c.width * scale));
  const offY = Math.trunc(Math.max(0, sh - th) * draw(fn, random));
  const offX = Math.trunc(Math.max(0, sw - tw) * draw(fn, random));
  return resizeCropPad(fn, sample, c, scale, sh, sw, offY, offX, th, tw, options);
}

/** effdet's `ResizePad`: the deterministic letterbox (top-left, pad bottom/right), boxes scaled and clipped. */
export function resizePad(sample: AugmentSample, options: ResizePadOptions): AugmentResult {
  const fn = 'resizePad';
  const c = checkSample(fn, sample);
  check(
    options !== null && typeof options === 'object',
    () => `${fn}: options must be an object with targetSize`,
  );
  const [th, tw] = targetOf(fn, options.targetSize);
  const geo = letterboxGeometry([c.height, c.width], [th, tw]);
  return resizeCropPad(
    fn,
    sample,
    c,
    geo.scale,
    geo.resizedSize[0],
    geo.resizedSize[1],
    0,
    0,
    th,
    tw,
    options,
  );
}

function flip(fn: string, sample: AugmentSample, horizontal: boolean): AugmentResult {
  const c = checkSample(fn, sample);
  const { width: w, height: h } = c;
  const src = sample.image.data;
  const out = new Uint8Array(src.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sy = horizontal ? y : h - 1 - y;
      const sx = horizontal ? w - 1 - x : x;
      const d = 3 * (y * w + x);
      const s = 3 * (sy * w + sx);
      out[d] = src[s];
      out[d + 1] = src[s + 1];
      out[d + 2] = src[s + 2];
    }
  }
  const masks = (sample.masks ?? []).map((m) => {
    const o = m instanceof Uint16Array ? new Uint16Array(m.length) : new Uint8Array(m.length);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++)
        o[y * w + x] = m[(horizontal ? y : h - 1 - y) * w + (horizontal ? w - 1 - x : x)];
    }
    return o;
  });
  const boxes = new Float32Array(sample.boxes.length);
  for (let i = 0; i < c.n; i++) {
    const [y1, x1, y2, x2] = sample.boxes.subarray(4 * i, 4 * i + 4);
    if (horizontal) boxes.set([y1, w - x2, y2, w - x1], 4 * i);
    else boxes.set([h - y2, x1, h - y1, x2], 4 * i);
  }
  return {
    image: { data: out, width: w, height: h },
    boxes,
    classes: Int32Array.from(sample.classes),
    masks,
    keep: Int32Array.from({ length: c.n }, (_, i) => i),
    imgScale: 1,
  };
}

/** Mirrors left-right: `x1' = W - x2`, `x2' = W - x1` (effdet `RandomFlip`). */
export function horizontalFlip(sample: AugmentSample): AugmentResult {
  return flip('horizontalFlip', sample, true);
}

/** Mirrors top-bottom: `y1' = H - y2`, `y2' = H - y1`. */
export function verticalFlip(sample: AugmentSample): AugmentResult {
  return flip('verticalFlip', sample, false);
}

/**
 * Flips left-right when `random() < prob` (one draw). Without a flip the result holds copies of the inputs, so
 * it never aliases them.
 */
export function randomHorizontalFlip(
  sample: AugmentSample,
  random: UniformRandom,
  prob = 0.5,
): AugmentResult {
  const fn = 'randomHorizontalFlip';
  const c = checkSample(fn, sample);
  check(Number.isFinite(prob) && prob >= 0 && prob <= 1, () => `${fn}: prob must be in [0, 1], got ${prob}`);
  if (draw(fn, random) < prob) return flip(fn, sample, true);
  return {
    image: { data: sample.image.data.slice(), width: c.width, height: c.height },
    boxes: sample.boxes.slice(),
    classes: Int32Array.from(sample.classes),
    masks: (sample.masks ?? []).map((m) => m.slice()),
    keep: Int32Array.from({ length: c.n }, (_, i) => i),
    imgScale: 1,
  };
}

/**
 * effdet's training transform (`transforms_coco_train`): a random horizontal flip (p = `flipProb`), then
 * `randomResizePad`. `keep` refers to the input rows.
 */
export function trainAugment(
  sample: AugmentSample,
  options: TrainAugmentOptions,
  random: UniformRandom,
): AugmentResult {
  const flipped = randomHorizontalFlip(sample, random, options?.flipProb ?? 0.5);
  return randomResizePad(flipped, options, random);
}

/** COCO `[x, y, w, h]` boxes (rows, or a flat array of 4 * N) as `Float32Array` yxyx: `[y, x, y + h, x + w]`. */
export function cocoBoxesToYxyx(boxes: ArrayLike<number> | readonly (readonly number[])[]): Float32Array {
  const fn = 'cocoBoxesToYxyx';
  const rows: ArrayLike<number>[] = [];
  if (boxes.length > 0 && typeof (boxes as ArrayLike<unknown>)[0] !== 'number') {
    (boxes as readonly (readonly number[])[]).forEach((b, i) => {
      check(
        Array.isArray(b) && b.length === 4,
        () => `${fn}: boxes[${i}] must be [x, y, w, h], got ${JSON.stringify(b)}`,
      );
      rows.push(b);
    });
  } else {
    const flat = boxes as ArrayLike<number>;
    check(flat.length % 4 === 0, () => `${fn}: a flat box array needs 4 * N values, got ${flat.length}`);
    for (let i = 0; i < flat.length; i += 4) rows.push([flat[i], flat[i + 1], flat[i + 2], flat[i + 3]]);
  }
  const out = new Float32Array(4 * rows.length);
  rows.forEach((b, i) => {
    check(
      [0, 1, 2, 3].every((k) => Number.isFinite(b[k])) && b[2] >= 0 && b[3] >= 0,
      () =>
        `${fn}: boxes[${i}] must be finite [x, y, w, h] with w, h >= 0, got ${JSON.stringify(Array.from(b))}`,
    );
    out.set([b[1], b[0], b[1] + b[3], b[0] + b[2]], 4 * i);
  });
  return out;
}

/** yxyx boxes back to COCO `[x, y, w, h]` rows. */
export function yxyxToCocoBoxes(boxes: Float32Array): [number, number, number, number][] {
  check(
    boxes instanceof Float32Array && boxes.length % 4 === 0,
    () => `yxyxToCocoBoxes: boxes must be a Float32Array of N * 4 values, got ${boxes?.length}`,
  );
  const out: [number, number, number, number][] = [];
  for (let i = 0; i < boxes.length; i += 4) {
    out.push([boxes[i + 1], boxes[i], boxes[i + 3] - boxes[i + 1], boxes[i + 2] - boxes[i]]);
  }
  return out;
}

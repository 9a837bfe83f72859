/**
 * Letterbox preprocessing: resize keeping the aspect ratio, paste at the top-left corner, pad bottom/right,
 * normalise. Two conventions:
 * - 'effdet' (rwightman/efficientdet-pytorch `ResizePad` + `PrefetchLoader`): scale = min(H_t/H, W_t/W) in float64,
 *   resized size = int(H * scale) x int(W * scale) (truncation), resize the uint8 image (default: PIL's bilinear
 *   filter, reproduced bit for bit, which antialiases when shrinking; or 'bilinear' = `tf.image.resizeBilinear`
 *   with half-pixel centres, rounded to uint8), pad with the fill colour (default round(255 * mean)), then
 *   `(x - 255 * mean) / (255 * std)`.
 * - 'automl' (google/automl `DetectionInputProcessor`): normalise first, scale in float32, resize the float image
 *   with `tf.image.resize` bilinear (half-pixel centres, no antialias), pad zeros bottom/right.
 * Both return `imgScale = 1 / scale` (original / input) and `imgSize = [width, height]` of the original, which
 * the post-processing uses to clip and rescale boxes.
 */
import { check, EffdetArgumentError, pyRound, shapeStr } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import { type ImageInput, imageSizeOf, imageToRgb, imageToTensor, type RgbImage } from './image.js';

export type PreprocessConvention = 'effdet' | 'automl';
export type RgbTriple = readonly [number, number, number];
/** Fill colour of the padding (effdet only): 'mean' = round(255 * mean), 'zero', one grey value, or RGB. */
export type FillColor = 'mean' | 'zero' | number | RgbTriple;

const DEFAULT_MEAN: RgbTriple = [0.485, 0.456, 0.406];
const DEFAULT_STD: RgbTriple = [0.229, 0.224, 0.225];

export interface LetterboxOptions {
  /** Model input size `[height, width]`. */
  imageSize: readonly [number, number];
  /** Per-channel mean as a fraction of 255 (ImageNet by default; 0.5 for lite / `_ap`-style models). */
  mean?: RgbTriple;
  /** Padding colour. Default 'mean'. */
  fillColor?: FillColor;
  /** 'pil' (default, PIL's antialiased bilinear on uint8, exact) or 'bilinear' (tfjs, half-pixel centres). */
  resample?: 'pil' | 'bilinear';
}

export interface PreprocessOptions extends LetterboxOptions {
  /** Default 'effdet'. */
  convention?: PreprocessConvention;
  /** Per-channel std as a fraction of 255 (ImageNet by default). */
  std?: RgbTriple;
}

export interface LetterboxGeometry {
  /** Resize factor input / original. */
  scale: number;
  /** Size of the resized image inside the canvas, `[height, width]`. */
  resizedSize: [number, number];
  /** original / input (= 1 / scale), what post-processing multiplies boxes by. */
  imgScale: number;
}

export interface LetterboxResult extends LetterboxGeometry {
  /** `[H, W, 3]` int32 with uint8 values: the padded canvas before normalisation. */
  image: tf.Tensor3D;
  /** Original `[width, height]`. */
  imgSize: [number, number];
}

export interface PreprocessResult {
  /** `[B, H, W, 3]` float32, normalised. */
  input: tf.Tensor4D;
  /** Per image: original / input scale. */
  imgScale: number[];
  /** Per image: original `[width, height]`. */
  imgSize: [number, number][];
}

function checkRgb(fn: string, name: string, v: unknown, positive: boolean): RgbTriple {
  check(
    Array.isArray(v) &&
      v.length === 3 &&
      v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0)),
    () =>
      `${fn}: ${name} must be three ${positive ? 'positive ' : ''}numbers (RGB), got ${JSON.stringify(v)}`,
  );
  return v as unknown as RgbTriple;
}

function checkImageSize(fn: string, size: unknown): [number, number] {
  check(
    Array.isArray(size) && size.length === 2 && size.every((s) => Number.isInteger(s) && s > 0),
    () => `${fn}: imageSize must be [height, width] positive integers, got ${JSON.stringify(size)}`,
  );
  return [size[0], size[1]];
}

/** effdet `resolve_fill_color`: the padding RGB (integers 0..255). */
export function resolveFillColor(
  fill: FillColor = 'mean',
  mean: RgbTriple = DEFAULT_MEAN,
): [number, number, number] {
  const fn = 'resolveFillColor';
  if (fill === 'mean')
    return checkRgb(fn, 'mean', mean, false).map((m) => pyRound(255 * m)) as [number, number, number];
  if (fill === 'zero') return [0, 0, 0];
  if (typeof fill === 'number') {
    check(
      Number.isFinite(fill) && fill >= 0 && fill <= 255,
      () => `${fn}: fillColor must be 0..255, got ${fill}`,
    );
    const v = Math.trunc(fill);
    return [v, v, v];
  }
  const rgb = checkRgb(fn, 'fillColor', fill, false);
  check(
    rgb.every((v) => v >= 0 && v <= 255),
    () => `${fn}: fillColor must be 'mean', 'zero', a number or RGB in 0..255, got ${JSON.stringify(fill)}`,
  );
  return [rgb[0], rgb[1], rgb[2]];
}

/**
 * Scale and resized size of a letterbox from `[H, W]` into `imageSize` `[H_t, W_t]`: effdet computes in float64,
 * automl in float32; both truncate the resized size.
 */
export function letterboxGeometry(
  srcSize: readonly [number, number],
  imageSize: readonly [number, number],
  convention: PreprocessConvention = 'effdet',
): LetterboxGeometry {
  return geometry('letterboxGeometry', srcSize, imageSize, convention);
}

function geometry(
  fn: string,
  srcSize: readonly [number, number],
  imageSize: readonly [number, number],
  convention: PreprocessConvention,
): LetterboxGeometry {
  const [h, w] = srcSize;
  check(
    Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0,
    () => `${fn}: srcSize must be [height, width] positive integers, got ${JSON.stringify(srcSize)}`,
  );
  const [th, tw] = checkImageSize(fn, imageSize);
  let scale: number;
  let rh: number;
  let rw: number;
  let imgScale: number;
  if (convention === 'automl') {
    const f = Math.fround;
    scale = Math.min(f(f(th) / f(h)), f(f(tw) / f(w)));
    rh = Math.trunc(f(h * scale));
    rw = Math.trunc(f(w * scale));
    imgScale = f(1 / scale);
  } else {
    check(
      convention === 'effdet',
      () => `${fn}: convention must be 'effdet' or 'automl', got ${String(convention)}`,
    );
    scale = Math.min(th / h, tw / w);
    rh = Math.trunc(h * scale);
    rw = Math.trunc(w * scale);
    imgScale = 1 / scale;
  }
  if (rh < 1 || rw < 1) {
    throw new EffdetArgumentError(
      `${fn}: a ${w}x${h} (WxH) image resized by ${scale} into ${tw}x${th} would be ${rw}x${rh} pixels; the aspect ratio is too extreme`,
    );
  }
  return { scale, resizedSize: [rh, rw], imgScale };
}

// ---------------------------------------------------------------------------------------------------------
// PIL's resampling (Pillow `Resample.c`), bilinear filter, 8 bits per channel: a separable convolution whose
// support grows with the shrink factor (antialiasing), coefficients in 22-bit fixed point, horizontal pass
// first (rounded to uint8), then vertical.

const PRECISION_BITS = 22;

interface Coeffs {
  bounds: Int32Array;
  kk: Int32Array;
  ksize: number;
}

function bilinearFilter(x: number): number {
  const a = x < 0 ? -x : x;
  return a < 1 ? 1 - a : 0;
}

function precomputeCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bilinearFilter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      const v = x < xmax ? (ww !== 0 ? k[x] / ww : k[x]) : 0;
      kk[xx * ksize + x] =
        v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

function clip8(v: number): number {
  const s = v >> PRECISION_BITS;
  if (s < 0) return 0;
  if (s > 255) return 255;
  return s;
}

/**
 * Resizes a host RGB uint8 image exactly as PIL's `Image.resize((width, height), Image.BILINEAR)` (Pillow >= 4,
 * which filters with a support scaled by the shrink factor: antialiased when shrinking).
 */
export function resizeRgbPil(src: RgbImage, width: number, height: number): RgbImage {
  const fn = 'resizeRgbPil';
  checkImageSize(fn, [height, width]);
  check(
    src?.data?.length === src.width * src.height * 3 && src.width > 0 && src.height > 0,
    () =>
      `${fn}: src must be {data: [height * width * 3] uint8, width, height}, got ${src?.width}x${src?.height} with ${src?.data?.length} values`,
  );
  let cur = src;
  if (width !== cur.width) {
    const { bounds, kk, ksize } = precomputeCoeffs(cur.width, width);
    const out = new Uint8Array(width * cur.height * 3);
    const inData = cur.data;
    const inRow = cur.width * 3;
    for (let y = 0; y < cur.height; y++) {
      const rowOff = y * inRow;
      for (let xx = 0; xx < width; xx++) {
        const xmin = bounds[xx * 2];
        const xmax = bounds[xx * 2 + 1];
        const kOff = xx * ksize;
        let s0 = 1 << (PRECISION_BITS - 1);
        let s1 = s0;
        let s2 = s0;
        for (let x = 0; x < xmax; x++) {
          const w = kk[kOff + x];
          const p = rowOff + (x + xmin) * 3;
          s0 += inData[p] * w;
          s1 += inData[p + 1] * w;
          s2 += inData[p + 2] * w;
        }
        const o = (y * width + xx) * 3;
        out[o] = clip8(s0);
        out[o + 1] = clip8(s1);
        out[o + 2] = clip8(s2);
      }
    }
    cur = { data: out, width, height: cur.height };
  }
  if (height !== cur.height) {
    const { bounds, kk, ksize } = precomputeCoeffs(cur.height, height);
    const out = new Uint8Array(width * height * 3);
    const inData = cur.data;
    const rowLen = width * 3;
    for (let yy = 0; yy < height; yy++) {
      const ymin = bounds[yy * 2];
      const ymax = bounds[yy * 2 + 1];
      const kOff = yy * ksize;
      for (let i = 0; i < rowLen; i++) {
        let s = 1 << (PRECISION_BITS - 1);
        for (let y = 0; y < ymax; y++) s += inData[(y + ymin) * rowLen + i] * kk[kOff + y];
        out[yy * rowLen + i] = clip8(s);
      }
    }
    cur = { data: out, width, height };
  }
  return cur === src ? { data: src.data.slice(), width, height } : cur;
}

// ---------------------------------------------------------------------------------------------------------

/**
 * effdet's letterbox of one image: the padded uint8 canvas (before normalisation) and its geometry.
 * The caller disposes `image`.
 */
export function letterbox(input: ImageInput, options: LetterboxOptions): LetterboxResult {
  return letterboxImpl(input, options, 'letterbox');
}

function letterboxImpl(input: ImageInput, options: LetterboxOptions, fn: string): LetterboxResult {
  check(
    options !== null && typeof options === 'object',
    () => `${fn}: options must be an object with imageSize`,
  );
  const [th, tw] = checkImageSize(fn, options.imageSize);
  const resample = options.resample ?? 'pil';
  check(
    resample === 'pil' || resample === 'bilinear',
    () => `${fn}: resample must be 'pil' or 'bilinear', got ${String(resample)}`,
  );
  const fill = resolveFillColor(
    options.fillColor ?? 'mean',
    checkRgb(fn, 'mean', options.mean ?? DEFAULT_MEAN, false),
  );
  const [h, w] = imageSizeOf(input, fn);
  const geo = geometry(fn, [h, w], [th, tw], 'effdet');
  const [rh, rw] = geo.resizedSize;
  let image: tf.Tensor3D;
  if (resample === 'pil') {
    const rgb = imageToRgb(input, fn);
    const resized = rw === w && rh === h ? rgb : resizeRgbPil(rgb, rw, rh);
    const canvas = new Int32Array(th * tw * 3);
    for (let i = 0; i < th * tw; i++) {
      canvas[3 * i] = fill[0];
      canvas[3 * i + 1] = fill[1];
      canvas[3 * i + 2] = fill[2];
    }
    for (let y = 0; y < rh; y++) {
      for (let x = 0; x < rw * 3; x++) canvas[y * tw * 3 + x] = resized.data[y * rw * 3 + x];
    }
    image = tf.tensor3d(canvas, [th, tw, 3], 'int32');
  } else {
    image = tf.tidy(() => {
      const src = tf.cast(imageToTensor(input, fn), 'float32');
      const resized =
        rw === w && rh === h ? src : tf.image.resizeBilinear(src as tf.Tensor3D, [rh, rw], false, true);
      const u8 = tf.cast(tf.clipByValue(tf.round(resized), 0, 255), 'int32');
      return padWith(u8 as tf.Tensor3D, th, tw, fill);
    });
  }
  return { ...geo, image, imgSize: [w, h] };
}

/** Pads `[h, w, 3]` bottom/right to `[th, tw, 3]` with a per-channel constant. */
function padWith(x: tf.Tensor3D, th: number, tw: number, fill: readonly number[]): tf.Tensor3D {
  const [h, w] = x.shape;
  if (h === th && w === tw) return x;
  const pads: [number, number][] = [
    [0, th - h],
    [0, tw - w],
    [0, 0],
  ];
  if (fill[0] === fill[1] && fill[1] === fill[2]) return tf.pad(x, pads, fill[0]);
  const channels = tf.unstack(x, 2).map((c, i) => tf.pad(c, pads.slice(0, 2), fill[i]));
  return tf.stack(channels, 2) as tf.Tensor3D;
}

/** `(x - 255 * mean) / (255 * std)` per channel, float32 (effdet's PrefetchLoader; = (x/255 - mean)/std). */
export function normalizeImage<T extends tf.Tensor>(
  x: T,
  mean: RgbTriple = DEFAULT_MEAN,
  std: RgbTriple = DEFAULT_STD,
): T {
  const fn = 'normalizeImage';
  check(
    x instanceof tf.Tensor && x.rank >= 1 && x.shape[x.rank - 1] === 3,
    () =>
      `${fn}: x must be a tensor with 3 channels last, got ${x instanceof tf.Tensor ? shapeStr(x.shape) : typeof x}`,
  );
  const m = checkRgb(fn, 'mean', mean, false).map((v) => 255 * v);
  const s = checkRgb(fn, 'std', std, true).map((v) => 255 * v);
  return tf.tidy(() =>
    tf.div(tf.sub(tf.cast(x, 'float32'), tf.tensor1d(m, 'float32')), tf.tensor1d(s, 'float32')),
  ) as T;
}

function automlOne(input: ImageInput, th: number, tw: number, mean: RgbTriple, std: RgbTriple, fn: string) {
  const [h, w] = imageSizeOf(input, fn);
  const geo = geometry(fn, [h, w], [th, tw], 'automl');
  const [rh, rw] = geo.resizedSize;
  const image = tf.tidy(() => {
    const x = normalizeImage(imageToTensor(input, fn), mean, std);
    const resized = tf.image.resizeBilinear(x as tf.Tensor3D, [rh, rw], false, true);
    return padWith(resized, th, tw, [0, 0, 0]);
  });
  return { image, imgScale: geo.imgScale, imgSize: [w, h] as [number, number] };
}

function splitBatch(images: ImageInput | readonly ImageInput[] | tf.Tensor4D, fn: string): ImageInput[] {
  if (images instanceof tf.Tensor) {
    if (images.rank === 4) {
      check(images.shape[0] > 0, () => `${fn}: the image batch is empty (shape ${shapeStr(images.shape)})`);
      return tf.unstack(images) as tf.Tensor3D[];
    }
    return [images as tf.Tensor3D];
  }
  if (Array.isArray(images)) {
    check(images.length > 0, () => `${fn}: images must not be an empty array`);
    return [...images];
  }
  return [images as ImageInput];
}

/**
 * Letterboxes and normalises one image or a batch (an array, or a `[B, H, W, C]` tensor) into the model input.
 * The caller disposes `input`.
 */
export function preprocess(
  images: ImageInput | readonly ImageInput[] | tf.Tensor4D,
  options: PreprocessOptions,
): PreprocessResult {
  const fn = 'preprocess';
  check(
    options !== null && typeof options === 'object',
    () => `${fn}: options must be an object with imageSize`,
  );
  const [th, tw] = checkImageSize(fn, options.imageSize);
  const convention = options.convention ?? 'effdet';
  check(
    convention === 'effdet' || convention === 'automl',
    () => `${fn}: convention must be 'effdet' or 'automl', got ${String(convention)}`,
  );
  const mean = checkRgb(fn, 'mean', options.mean ?? DEFAULT_MEAN, false);
  const std = checkRgb(fn, 'std', options.std ?? DEFAULT_STD, true);
  const owned = images instanceof tf.Tensor && images.rank === 4;
  const list = splitBatch(images, fn);
  const outs: tf.Tensor3D[] = [];
  const imgScale: number[] = [];
  const imgSize: [number, number][] = [];
  try {
    for (const img of list) {
      if (convention === 'automl') {
        const r = automlOne(img, th, tw, mean, std, fn);
        outs.push(r.image);
        imgScale.push(r.imgScale);
        imgSize.push(r.imgSize);
      } else {
        const r = letterboxImpl(img, { ...options, imageSize: [th, tw] }, fn);
        outs.push(tf.tidy(() => normalizeImage(r.image, mean, std)));
        r.image.dispose();
        imgScale.push(r.imgScale);
        imgSize.push(r.imgSize);
      }
    }
    const input = tf.stack(outs) as tf.Tensor4D;
    return { input, imgScale, imgSize };
  } finally {
    tf.dispose(outs);
    if (owned) tf.dispose(list as tf.Tensor[]);
  }
}

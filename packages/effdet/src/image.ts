/**
 * Browser-safe image inputs. An image is one of:
 * - a `tf.Tensor3D` `[H, W, C]` (C = 1, 3 or 4; int32 or float values 0..255);
 * - pixel data `{data, width, height}` (ImageData, jpeg-js / pngjs output, ...): 1, 3 or 4 interleaved
 *   channels, inferred from `data.length / (width * height)` unless `channels` says;
 * - a browser element that `tf.browser.fromPixels` accepts (img, canvas, video, ImageBitmap, OffscreenCanvas),
 *   recognised by duck typing so this file never needs the DOM types.
 * Grey images are replicated to RGB and alpha is dropped (as PIL's `convert('RGB')` does).
 */
import { check, EffdetArgumentError, shapeStr } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';

/** Interleaved pixels, row-major, 0..255. */
export interface PixelData {
  data: ArrayLike<number>;
  width: number;
  height: number;
  /** Channels per pixel (1, 3 or 4); inferred from the data length when left out. */
  channels?: number;
}

/** What `tf.browser.fromPixels` takes: an object with a size (img/canvas/video/ImageBitmap), never plain data. */
export interface BrowserPixelSource {
  readonly width?: number;
  readonly height?: number;
  readonly videoWidth?: number;
  readonly naturalWidth?: number;
}

export type ImageInput = tf.Tensor3D | PixelData | BrowserPixelSource;

/** A host RGB image: `data` is `[height * width * 3]` uint8, row-major. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

function isPixelData(v: unknown): v is PixelData {
  return (
    typeof v === 'object' &&
    v !== null &&
    'data' in v &&
    'width' in v &&
    'height' in v &&
    typeof (v as PixelData).data === 'object' &&
    typeof (v as PixelData).data?.length === 'number'
  );
}

function isBrowserSource(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || v instanceof tf.Tensor || isPixelData(v)) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.width === 'number' || typeof o.videoWidth === 'number' || typeof o.naturalWidth === 'number'
  );
}

function describe(v: unknown): string {
  if (v instanceof tf.Tensor) return `a tensor of shape ${shapeStr(v.shape)}`;
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (typeof v === 'object')
    return `an object with keys [${Object.keys(v as object)
      .slice(0, 6)
      .join(', ')}]`;
  return `${typeof v} ${String(v)}`;
}

function checkSize(fn: string, width: number, height: number): void {
  check(
    Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0,
    () => `${fn}: image must have a positive integer width and height, got ${width}x${height}`,
  );
}

function pixelChannels(fn: string, p: PixelData): number {
  checkSize(fn, p.width, p.height);
  const n = p.width * p.height;
  const c = p.channels ?? p.data.length / n;
  check(
    c === 1 || c === 3 || c === 4,
    () =>
      `${fn}: pixel data must have 1, 3 or 4 channels; ${p.data.length} values for ${p.width}x${p.height} pixels gives ${c}`,
  );
  check(
    p.data.length === n * c,
    () => `${fn}: pixel data needs ${n * c} values (${p.width}x${p.height}x${c}), got ${p.data.length}`,
  );
  return c;
}

function tensorChannels(fn: string, t: tf.Tensor): number {
  check(
    t.rank === 3,
    () => `${fn}: an image tensor must be 3-D [height, width, channels], got ${shapeStr(t.shape)}`,
  );
  const [h, w, c] = t.shape;
  checkSize(fn, w, h);
  check(
    c === 1 || c === 3 || c === 4,
    () => `${fn}: an image tensor must have 1, 3 or 4 channels, got ${c} (shape ${shapeStr(t.shape)})`,
  );
  return c;
}

/** Any 1/3/4-channel `[H, W, C]` tensor -> `[H, W, 3]` (grey replicated, alpha dropped). */
function toThreeChannels(t: tf.Tensor3D, c: number): tf.Tensor3D {
  if (c === 3) return t;
  if (c === 1) return tf.tile(t, [1, 1, 3]);
  return tf.slice(t, [0, 0, 0], [-1, -1, 3]);
}

/**
 * The image as a `[H, W, 3]` tensor: int32 for pixel data and browser sources, the tensor's own dtype for
 * tensors (values are not rescaled). The caller disposes the result (a tensor input comes back as a new tensor).
 */
export function imageToTensor(input: ImageInput, fn = 'imageToTensor'): tf.Tensor3D {
  if (input instanceof tf.Tensor) {
    const c = tensorChannels(fn, input);
    return tf.tidy(() => {
      const out = toThreeChannels(input as tf.Tensor3D, c);
      return out === input ? tf.clone(out) : out;
    });
  }
  if (isPixelData(input)) {
    const c = pixelChannels(fn, input);
    const rgb = pixelsToRgb(input, c);
    return tf.tensor3d(rgb, [input.height, input.width, 3], 'int32');
  }
  if (isBrowserSource(input)) {
    // tf.browser.fromPixels validates the element itself and returns int32 RGB.
    return tf.browser.fromPixels(input as unknown as tf.PixelData, 3);
  }
  throw new EffdetArgumentError(
    `${fn}: image must be a [H, W, C] tensor, {data, width, height} pixel data or a browser image element, got ${describe(input)}`,
  );
}

function clampByte(v: number): number {
  // Round half to even like numpy / PIL casts of rounded floats; values are clamped to 0..255.
  if (!(v > 0)) return 0;
  if (v >= 255) return 255;
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

function pixelsToRgb(p: PixelData, c: number): Uint8Array {
  const n = p.width * p.height;
  const out = new Uint8Array(n * 3);
  const d = p.data;
  const exact = d instanceof Uint8Array || d instanceof Uint8ClampedArray;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) {
      const v = d[i * c + (c === 1 ? 0 : k)];
      out[i * 3 + k] = exact ? v : clampByte(v);
    }
  }
  return out;
}

/**
 * The image as host RGB uint8 (float values are rounded half to even and clamped to 0..255). Reads tensors
 * with dataSync.
 */
export function imageToRgb(input: ImageInput, fn = 'imageToRgb'): RgbImage {
  if (isPixelData(input)) {
    const c = pixelChannels(fn, input);
    if (c === 3 && input.data instanceof Uint8Array) {
      return { data: input.data, width: input.width, height: input.height };
    }
    return { data: pixelsToRgb(input, c), width: input.width, height: input.height };
  }
  const t = imageToTensor(input, fn);
  try {
    const [height, width] = t.shape;
    const values = t.dataSync();
    return { data: pixelsToRgb({ data: values, width, height, channels: 3 }, 3), width, height };
  } finally {
    t.dispose();
  }
}

/** `[height, width]` of an image input without reading its pixels. */
export function imageSizeOf(input: ImageInput, fn = 'imageSizeOf'): [number, number] {
  if (input instanceof tf.Tensor) {
    tensorChannels(fn, input);
    return [input.shape[0], input.shape[1]];
  }
  if (isPixelData(input)) {
    pixelChannels(fn, input);
    return [input.height, input.width];
  }
  if (isBrowserSource(input)) {
    const o = input as Record<string, unknown>;
    const w = (o.videoWidth as number) || (o.naturalWidth as number) || (o.width as number);
    const h = (o.videoHeight as number) || (o.naturalHeight as number) || (o.height as number);
    checkSize(fn, w, h);
    return [h, w];
  }
  throw new EffdetArgumentError(
    `${fn}: image must be a [H, W, C] tensor, {data, width, height} pixel data or a browser image element, got ${describe(input)}`,
  );
}

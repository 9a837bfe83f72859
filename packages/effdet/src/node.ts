/**
 * Node-only image helpers (`@effdet/effdet/node`): decode JPEG / PNG files or buffers to RGB (jpeg-js, pngjs),
 * encode RGB as PNG, and draw detections for `effdet predict --out`.
 * EXIF orientation is not applied (effdet's PIL loader does not apply it either).
 */
import { readFile } from 'node:fs/promises';
import { check, EffdetArgumentError } from '@effdet/layers';
import type { RawTensorMap } from '@effdet/weights';
import { detectWeightsFormat, loadWeights, openTfCheckpoint } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import {
  buildDetector,
  type DetectOptions,
  Detector,
  type DetectorOptions,
  type DetectTensorsResult,
  detectorConfig,
} from './detector.js';
import type { ImageInput, RgbImage } from './image.js';
import type { EfficientDet } from './model.js';
import type { Detection } from './postprocess.js';
import { loadTfCheckpoint } from './tf_names.js';
import { loadRawStateDict } from './weights.js';

export type { RgbImage } from './image.js';

const { PNG } = pngjs;

export type ImageFormat = 'jpeg' | 'png';

/** The format of an encoded image from its first bytes, or null. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 8 && sig.every((b, i) => bytes[i] === b)) return 'png';
  return null;
}

function hexHead(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/**
 * Decodes a JPEG or PNG held in memory (format from the magic bytes) to RGB. Grey is replicated, alpha dropped.
 * `what` names the source in error messages.
 */
export function decodeImageBuffer(bytes: Uint8Array, what = 'buffer'): RgbImage {
  const fn = 'decodeImageBuffer';
  check(bytes instanceof Uint8Array, () => `${fn}: expected a Uint8Array / Buffer, got ${typeof bytes}`);
  check(bytes.length > 0, () => `${fn}: ${what} is empty (0 bytes)`);
  const format = sniffImageFormat(bytes);
  if (!format) {
    throw new EffdetArgumentError(
      `${fn}: ${what} is not a JPEG or PNG image (first bytes ${hexHead(bytes)}; expected ff d8 ff or 89 50 4e 47)`,
    );
  }
  let width: number;
  let height: number;
  let data: Uint8Array;
  let channels: number;
  try {
    if (format === 'jpeg') {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
      width = img.width;
      height = img.height;
      data = img.data;
      channels = 3;
    } else {
      const img = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      width = img.width;
      height = img.height;
      data = img.data;
      channels = 4;
    }
  } catch (e) {
    throw new EffdetArgumentError(
      `${fn}: ${what} could not be decoded as ${format.toUpperCase()}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  if (!(width > 0 && height > 0)) {
    throw new EffdetArgumentError(
      `${fn}: ${what} is a ${format.toUpperCase()} of zero size (${width}x${height})`,
    );
  }
  check(
    data.length === width * height * channels,
    () => `${fn}: ${what}: decoder returned ${data.length} bytes for ${width}x${height}x${channels}`,
  );
  if (channels === 3) return { data, width, height };
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < data.length; i += 4, j += 3) {
    rgb[j] = data[i];
    rgb[j + 1] = data[i + 1];
    rgb[j + 2] = data[i + 2];
  }
  return { data: rgb, width, height };
}

/** Reads and decodes a JPEG / PNG file, or decodes a buffer. */
export async function decodeImage(pathOrBuffer: string | Uint8Array): Promise<RgbImage> {
  if (typeof pathOrBuffer === 'string') {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(pathOrBuffer);
    } catch (e) {
      throw new EffdetArgumentError(
        `decodeImage: cannot read '${pathOrBuffer}': ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    return decodeImageBuffer(bytes, `'${pathOrBuffer}'`);
  }
  check(
    pathOrBuffer instanceof Uint8Array,
    () => `decodeImage: expected a file path or a Uint8Array / Buffer, got ${typeof pathOrBuffer}`,
  );
  return decodeImageBuffer(pathOrBuffer);
}

function checkRgb(fn: string, rgb: Uint8Array, width: number, height: number): void {
  check(
    Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0,
    () => `${fn}: width and height must be positive integers, got ${width}x${height}`,
  );
  check(
    rgb instanceof Uint8Array && rgb.length === width * height * 3,
    () =>
      `${fn}: rgb must be a Uint8Array of ${width}x${height}x3 = ${width * height * 3} bytes, got ${rgb?.length}`,
  );
}

/** Encodes RGB uint8 pixels as a PNG file (8-bit RGB). */
export function encodePng(rgb: Uint8Array, width: number, height: number): Buffer {
  checkRgb('encodePng', rgb, width, height);
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}

// A 5x7 bitmap font (drawn for this file): 7 rows of 5 pixels per glyph, '#' = ink.
const GLYPH_ROWS: Record<string, readonly string[]> = {
  '0': ['.###.', '#...#', '#..##', '#.#.#', '##..#', '#...#', '.###.'],
  '1': ['..#..', '.##..', '..#..', '..#..', '..#..', '..#..', '.###.'],
  '2': ['.###.', '#...#', '....#', '...#.', '..#..', '.#...', '#####'],
  '3': ['#####', '...#.', '..#..', '...#.', '....#', '#...#', '.###.'],
  '4': ['...#.', '..##.', '.#.#.', '#..#.', '#####', '...#.', '...#.'],
  '5': ['#####', '#....', '####.', '....#', '....#', '#...#', '.###.'],
  '6': ['..##.', '.#...', '#....', '####.', '#...#', '#...#', '.###.'],
  '7': ['#####', '....#', '...#.', '..#..', '.#...', '.#...', '.#...'],
  '8': ['.###.', '#...#', '#...#', '.###.', '#...#', '#...#', '.###.'],
  '9': ['.###.', '#...#', '#...#', '.####', '....#', '...#.', '.##..'],
  A: ['.###.', '#...#', '#...#', '#####', '#...#', '#...#', '#...#'],
  B: ['####.', '#...#', '#...#', '####.', '#...#', '#...#', '####.'],
  C: ['.###.', '#...#', '#....', '#....', '#....', '#...#', '.###.'],
  D: ['####.', '#...#', '#...#', '#...#', '#...#', '#...#', '####.'],
  E: ['#####', '#....', '#....', '####.', '#....', '#....', '#####'],
  F: ['#####', '#....', '#....', '####.', '#....', '#....', '#....'],
  G: ['.###.', '#...#', '#....', '#.###', '#...#', '#...#', '.####'],
  H: ['#...#', '#...#', '#...#', '#####', '#...#', '#...#', '#...#'],
  I: ['.###.', '..#..', '..#..', '..#..', '..#..', '..#..', '.###.'],
  J: ['..###', '...#.', '...#.', '...#.', '...#.', '#..#.', '.##..'],
  K: ['#...#', '#..#.', '#.#..', '##...', '#.#..', '#..#.', '#...#'],
  L: ['#....', '#....', '#....', '#....', '#....', '#....', '#####'],
  M: ['#...#', '##.##', '#.#.#', '#.#.#', '#...#', '#...#', '#...#'],
  N: ['#...#', '#...#', '##..#', '#.#.#', '#..##', '#...#', '#...#'],
  O: ['.###.', '#...#', '#...#', '#...#', '#...#', '#...#', '.###.'],
  P: ['####.', '#...#', '#...#', '####.', '#....', '#....', '#....'],
  Q: ['.###.', '#...#', '#...#', '#...#', '#.#.#', '#..#.', '.##.#'],
  R: ['####.', '#...#', '#...#', '####.', '#.#..', '#..#.', '#...#'],
  S: ['.####', '#....', '#....', '.###.', '....#', '....#', '####.'],
  T: ['#####', '..#..', '..#..', '..#..', '..#..', '..#..', '..#..'],
  U: ['#...#', '#...#', '#...#', '#...#', '#...#', '#...#', '.###.'],
  V: ['#...#', '#...#', '#...#', '#...#', '#...#', '.#.#.', '..#..'],
  W: ['#...#', '#...#', '#...#', '#.#.#', '#.#.#', '#.#.#', '.#.#.'],
  X: ['#...#', '#...#', '.#.#.', '..#..', '.#.#.', '#...#', '#...#'],
  Y: ['#...#', '#...#', '.#.#.', '..#..', '..#..', '..#..', '..#..'],
  Z: ['#####', '....#', '...#.', '..#..', '.#...', '#....', '#####'],
  '.': ['.....', '.....', '.....', '.....', '.....', '.##..', '.##..'],
  ':': ['.....', '.##..', '.##..', '.....', '.##..', '.##..', '.....'],
  '-': ['.....', '.....', '.....', '#####', '.....', '.....', '.....'],
  '%': ['##...', '##..#', '...#.', '..#..', '.#...', '#..##', '...##'],
  ' ': ['.....', '.....', '.....', '.....', '.....', '.....', '.....'],
};
const UNKNOWN_GLYPH = ['#####', '#...#', '#...#', '#...#', '#...#', '#...#', '#####'];

/** Distinct, saturated colours, picked by class id. */
const PALETTE: [number, number, number][] = [
  [230, 25, 75],
  [60, 180, 75],
  [255, 225, 25],
  [0, 130, 200],
  [245, 130, 48],
  [145, 30, 180],
  [70, 240, 240],
  [240, 50, 230],
  [210, 245, 60],
  [250, 190, 190],
  [0, 128, 128],
  [170, 110, 40],
];

export interface DrawOptions {
  /** Rows with a lower score are not drawn. Default 0 (every real row). */
  minScore?: number;
  /** Rectangle line width in pixels. Default 2. */
  lineWidth?: number;
  /** Glyph pixel size. Default: 1, or more for large images (1 per 500 pixels of the shorter side). */
  fontScale?: number;
}

/** Class names for tags: a function (e.g. `labelFor`) or a map from class id. */
export type Labels = ((classId: number) => string) | Readonly<Record<number, string>>;

function fillRect(
  img: Uint8Array,
  w: number,
  h: number,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  c: readonly number[],
): void {
  const xa = Math.max(0, Math.floor(x0));
  const ya = Math.max(0, Math.floor(y0));
  const xb = Math.min(w, Math.ceil(x1));
  const yb = Math.min(h, Math.ceil(y1));
  for (let y = ya; y < yb; y++) {
    for (let x = xa; x < xb; x++) {
      const o = (y * w + x) * 3;
      img[o] = c[0];
      img[o + 1] = c[1];
      img[o + 2] = c[2];
    }
  }
}

function drawText(
  img: Uint8Array,
  w: number,
  h: number,
  text: string,
  x: number,
  y: number,
  scale: number,
  c: readonly number[],
): void {
  let cx = x;
  for (const ch of text.toUpperCase()) {
    const g = GLYPH_ROWS[ch] ?? UNKNOWN_GLYPH;
    for (let r = 0; r < 7; r++) {
      for (let q = 0; q < 5; q++) {
        if (g[r][q] === '#')
          fillRect(img, w, h, cx + q * scale, y + r * scale, cx + (q + 1) * scale, y + (r + 1) * scale, c);
      }
    }
    cx += 6 * scale;
  }
}

/** Pixel width of `text` drawn at `scale` (6 pixels per character including spacing, minus the last gap). */
export function textWidth(text: string, scale = 1): number {
  return text.length === 0 ? 0 : (text.length * 6 - 1) * scale;
}

function rowsToDetections(fn: string, detections: ArrayLike<number> | readonly Detection[]): Detection[] {
  if (Array.isArray(detections) && (detections.length === 0 || typeof detections[0] === 'object')) {
    return detections as Detection[];
  }
  const rows = detections as ArrayLike<number>;
  check(
    typeof rows.length === 'number' && rows.length % 6 === 0,
    () =>
      `${fn}: detections must be Detection objects or flat rows of 6 (x1, y1, x2, y2, score, class), got length ${rows.length}`,
  );
  const out: Detection[] = [];
  for (let r = 0; r < rows.length; r += 6) {
    if (!(rows[r + 5] > 0)) continue; // zero padding
    out.push({
      box: [rows[r], rows[r + 1], rows[r + 2], rows[r + 3]],
      score: rows[r + 4],
      classId: rows[r + 5],
    });
  }
  return out;
}

/**
 * Draws detection boxes with a tag (class name or id, and the score in percent) onto a copy of an RGB image.
 * `detections` are Detection objects or flat `[x1, y1, x2, y2, score, class]` rows in this image's pixels (zero
 * rows are skipped).
 */
export function drawDetections(
  rgb: Uint8Array,
  width: number,
  height: number,
  detections: ArrayLike<number> | readonly Detection[],
  labels?: Labels,
  options: DrawOptions = {},
): Uint8Array {
  const fn = 'drawDetections';
  checkRgb(fn, rgb, width, height);
  const dets = rowsToDetections(fn, detections);
  const minScore = options.minScore ?? 0;
  const lw = options.lineWidth ?? 2;
  check(Number.isInteger(lw) && lw > 0, () => `${fn}: lineWidth must be a positive integer, got ${lw}`);
  const scale = options.fontScale ?? Math.max(1, Math.floor(Math.min(width, height) / 500));
  check(
    Number.isInteger(scale) && scale > 0,
    () => `${fn}: fontScale must be a positive integer, got ${scale}`,
  );
  const out = rgb.slice();
  const name = (id: number): string => {
    if (!labels) return String(id);
    const v = typeof labels === 'function' ? labels(id) : labels[id];
    return v ?? String(id);
  };
  for (const d of dets) {
    if (!(d.score >= minScore)) continue;
    const [x1, y1, x2, y2] = d.box;
    if (![x1, y1, x2, y2].every(Number.isFinite)) continue;
    const c = PALETTE[Math.abs(Math.trunc(d.classId)) % PALETTE.length];
    const l = Math.round(x1);
    const t = Math.round(y1);
    const r = Math.round(x2);
    const b = Math.round(y2);
    fillRect(out, width, height, l, t, r + 1, t + lw, c);
    fillRect(out, width, height, l, b - lw + 1, r + 1, b + 1, c);
    fillRect(out, width, height, l, t, l + lw, b + 1, c);
    fillRect(out, width, height, r - lw + 1, t, r + 1, b + 1, c);
    const text = `${d.label ?? name(d.classId)} ${Math.round(d.score * 100)}%`;
    const tagW = textWidth(text, scale) + 4 * scale;
    const tagH = 7 * scale + 4 * scale;
    // Tag above the box when there is room, else inside its top edge; kept inside the image horizontally.
    const ty = t - tagH >= 0 ? t - tagH : Math.max(0, t);
    const tx = Math.max(0, Math.min(l, width - tagW));
    fillRect(out, width, height, tx, ty, tx + tagW, ty + tagH, c);
    const lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
    drawText(
      out,
      width,
      height,
      text,
      tx + 2 * scale,
      ty + 2 * scale,
      scale,
      lum > 140 ? [0, 0, 0] : [255, 255, 255],
    );
  }
  return out;
}

/** An image for the Node detector: anything `Detector.detect` takes, or a JPEG/PNG file path or buffer. */
export type NodeImageInput = ImageInput | string | Uint8Array;

async function toImageInput(input: NodeImageInput): Promise<ImageInput> {
  if (typeof input === 'string' || input instanceof Uint8Array) return decodeImage(input);
  return input;
}

/** A Detector that also takes image file paths and encoded JPEG / PNG buffers. */
export class NodeDetector extends Detector {
  override detect(input: NodeImageInput, options?: DetectOptions): Promise<Detection[]>;
  override detect(input: readonly NodeImageInput[], options?: DetectOptions): Promise<Detection[][]>;
  override detect(input: tf.Tensor4D, options?: DetectOptions): Promise<Detection[][]>;
  override async detect(
    input: NodeImageInput | readonly NodeImageInput[] | tf.Tensor4D,
    options: DetectOptions = {},
  ): Promise<Detection[] | Detection[][]> {
    if (Array.isArray(input)) {
      const images = await Promise.all((input as NodeImageInput[]).map(toImageInput));
      return super.detect(images, options);
    }
    if (input instanceof tf.Tensor && input.rank === 4) return super.detect(input as tf.Tensor4D, options);
    return super.detect(await toImageInput(input as NodeImageInput), options);
  }

  override async detectTensors(
    input: NodeImageInput | readonly NodeImageInput[] | tf.Tensor4D,
    options: DetectOptions = {},
  ): Promise<DetectTensorsResult> {
    if (Array.isArray(input)) {
      return super.detectTensors(await Promise.all((input as NodeImageInput[]).map(toImageInput)), options);
    }
    if (input instanceof tf.Tensor && input.rank === 4)
      return super.detectTensors(input as tf.Tensor4D, options);
    return super.detectTensors(await toImageInput(input as NodeImageInput), options);
  }
}

export interface NodeDetectorOptions extends Omit<DetectorOptions, 'weights'> {
  /**
   * A weights file or folder in any format `@effdet/weights` reads (safetensors, PyTorch `.pth` zip or legacy,
   * TF.js `model.json`), its bytes, or a tensor map.
   */
  weights?: string | Uint8Array | RawTensorMap | null;
}

/**
 * Loads weights in any supported format into an EfficientDet: a file or folder path (safetensors, `.pth` zip or
 * legacy, TF.js `model.json`, or an official google/automl TensorFlow checkpoint, whose names are mapped and
 * whose `/ExponentialMovingAverage` values are used unless `ema: false`), bytes, or a tensor map.
 */
export async function loadDetectorWeights(
  model: EfficientDet,
  weights: string | Uint8Array | RawTensorMap,
  options: { ema?: boolean; strict?: boolean } = {},
): Promise<void> {
  if (typeof weights === 'string' && (await detectWeightsFormat(weights)) === 'tf-checkpoint') {
    const ckpt = await openTfCheckpoint(weights);
    try {
      await loadTfCheckpoint(model, ckpt, { ema: options.ema ?? true, strict: options.strict });
    } finally {
      await ckpt.close();
    }
    return;
  }
  const raw =
    typeof weights === 'string' || weights instanceof Uint8Array
      ? await loadWeights(weights, { ema: options.ema })
      : weights;
  loadRawStateDict(model, raw, { strict: options.strict ?? true });
}

/** `createDetector` for Node: weights and images may be file paths or buffers (see `loadDetectorWeights`). */
export async function createDetector(name: string, options: NodeDetectorOptions = {}): Promise<NodeDetector> {
  const config = detectorConfig(name, options);
  const w = options.weights;
  return buildDetector(
    config,
    w ? (model) => loadDetectorWeights(model, w, options) : null,
    options,
    (m, o) => new NodeDetector(m, o),
  );
}

/**
 * Inference on images: normalise, run at a size the network accepts, bring the logits back to the image's
 * own size, and turn them into a class map (plus probabilities); colour palettes and overlays.
 */
import { type ImageInput, imageSizeOf, imageToTensor } from '@effdet/effdet';
import { check, EffdetArgumentError } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';

/** What `predictMask` needs from a model. */
export interface MaskPredictor {
  /** Output channels of the logits. */
  readonly numClasses: number;
  readonly inChannels: number;
  /** Normalisation on 0..1 RGB: `(x / 255 - mean) / std`. */
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
  /** Height and width must be multiples of this (1 = any size). */
  readonly inputDivisor: number;
  /** The only input size the network accepts, or null. */
  readonly fixedInputSize: readonly [number, number] | null;
  /** Mask logits NHWC for a normalised batch; may be smaller than the input (e.g. stride 4). */
  segmentLogits(x: tf.Tensor4D): tf.Tensor4D;
}

/** Test-time augmentation of `predictMask`: the views it averages over. */
export type MaskTta = 'none' | 'hflip' | 'flip' | 'd4';

/**
 * A view of an image: transposed (H and W swapped) first when `t`, then mirrored along W when `w`, along H
 * when `h`. The 8 combinations are the symmetries of the square (D4).
 */
interface View {
  t: boolean;
  w: boolean;
  h: boolean;
}

const TTA_VIEWS: Record<MaskTta, View[]> = {
  none: [{ t: false, w: false, h: false }],
  hflip: [false, true].map((w) => ({ t: false, w, h: false })),
  flip: [false, true].flatMap((h) => [false, true].map((w) => ({ t: false, w, h }))),
  d4: [false, true].flatMap((t) => [false, true].flatMap((h) => [false, true].map((w) => ({ t, w, h })))),
};

/** Every `tta` value, by number of views. */
export const MASK_TTA_MODES = Object.keys(TTA_VIEWS) as readonly MaskTta[];

function toView(x: tf.Tensor4D, v: View): tf.Tensor4D {
  let y = v.t ? (tf.transpose(x, [0, 2, 1, 3]) as tf.Tensor4D) : x;
  if (v.w) y = tf.reverse(y, 2);
  if (v.h) y = tf.reverse(y, 1);
  return y;
}

function fromView(y: tf.Tensor4D, v: View): tf.Tensor4D {
  let x = y;
  if (v.h) x = tf.reverse(x, 1);
  if (v.w) x = tf.reverse(x, 2);
  return v.t ? (tf.transpose(x, [0, 2, 1, 3]) as tf.Tensor4D) : x;
}

/** How logits become a mask (smp's loss modes). */
export type MaskMode = 'multiclass' | 'binary' | 'multilabel';

export interface PredictMaskOptions {
  /**
   * Run the network at this size (the image is resized bilinearly, the logits resized back). Default: the
   * model's fixed size if it has one, else the image's own size padded bottom/right to the input divisor.
   */
  inputSize?: number | readonly [number, number];
  /** Default: 'binary' for one output channel, else 'multiclass'. */
  mode?: MaskMode;
  /** Binary / multilabel: probability at or above which a pixel is foreground (default 0.5). */
  threshold?: number;
  /** Also return the per-pixel probabilities (softmax for multiclass, sigmoid otherwise). */
  probabilities?: boolean;
  /**
   * Test-time augmentation (as ttach's transforms for smp): the image is also run flipped / rotated, each view's
   * output brought back to the image, and the probabilities averaged (the mask is taken from the average).
   * 'hflip': 2 views (as is, mirrored left-right); 'flip': 4 (and upside down, and both); 'd4': 8 (the four
   * rotations by 90 degrees, each also mirrored). Rotated views of a non-square image run at the transposed
   * size. Default none: one view, the mask from the logits.
   */
  tta?: MaskTta;
  /** Normalisation override (default: the model's, from its encoder's pretrained config). */
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
}

export interface MaskPrediction {
  width: number;
  height: number;
  /** Output channels of the model. */
  numClasses: number;
  mode: MaskMode;
  /**
   * Class per pixel, row-major `[height * width]`: the argmax class (multiclass), 0/1 (binary), or the most
   * probable label (multilabel; see `labels`).
   */
  mask: Int32Array;
  /** Multilabel: 0/1 per pixel and class, `[height * width * numClasses]`. */
  labels?: Uint8Array;
  /** With `probabilities: true`: `[height * width * numClasses]`. */
  probabilities?: Float32Array;
  /** The size the network ran at. */
  inputSize: [number, number];
}

function sizeOption(v: number | readonly [number, number], where: string): [number, number] {
  const s: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  check(
    s.every((d) => Number.isInteger(d) && d > 0),
    () => `${where}: inputSize must be a positive integer or [height, width], got ${JSON.stringify(v)}`,
  );
  return s;
}

function triple(v: readonly number[], name: string, where: string): [number, number, number] {
  check(
    Array.isArray(v) && v.length === 3 && v.every((x) => Number.isFinite(x)),
    () => `${where}: ${name} must be three numbers, got ${JSON.stringify(v)}`,
  );
  return [v[0], v[1], v[2]];
}

/**
 * Runs a segmentation model on one image (a `[H, W, C]` tensor, pixel data or a browser element, values
 * 0..255) and returns the class map at the image's own size. Leaves no tensors behind.
 */
export async function predictMask(
  model: MaskPredictor,
  image: ImageInput,
  options: PredictMaskOptions = {},
): Promise<MaskPrediction> {
  const where = 'predictMask';
  const [height, width] = imageSizeOf(image, where);
  const C = model.numClasses;
  const mode = options.mode ?? (C === 1 ? 'binary' : 'multiclass');
  check(
    mode === 'multiclass' || mode === 'binary' || mode === 'multilabel',
    () => `${where}: mode must be 'multiclass', 'binary' or 'multilabel', got ${JSON.stringify(mode)}`,
  );
  check(
    mode !== 'binary' || C === 1,
    () => `${where}: mode 'binary' needs a model with 1 output channel, this one has ${C}`,
  );
  check(
    mode !== 'multiclass' || C > 1,
    () => `${where}: mode 'multiclass' needs at least 2 output channels, this model has ${C}; use 'binary'`,
  );
  const threshold = options.threshold ?? 0.5;
  check(
    Number.isFinite(threshold) && threshold >= 0 && threshold <= 1,
    () => `${where}: threshold must be in [0, 1], got ${options.threshold}`,
  );
  check(
    model.inChannels === 3,
    () =>
      `${where}: images are RGB; this model takes ${model.inChannels} input channels (call forward with a tensor)`,
  );
  const tta = options.tta ?? 'none';
  check(
    Object.hasOwn(TTA_VIEWS, tta),
    () => `${where}: tta must be 'none', 'hflip', 'flip' or 'd4', got ${JSON.stringify(options.tta)}`,
  );
  const views = TTA_VIEWS[tta];
  const mean = triple(options.mean ?? model.mean, 'mean', where);
  const std = triple(options.std ?? model.std, 'std', where);
  let runSize: [number, number];
  let resized: boolean;
  if (options.inputSize !== undefined) {
    runSize = sizeOption(options.inputSize, where);
    resized = true;
  } else if (model.fixedInputSize) {
    runSize = [model.fixedInputSize[0], model.fixedInputSize[1]];
    resized = true;
  } else {
    const d = model.inputDivisor;
    runSize = [Math.ceil(height / d) * d, Math.ceil(width / d) * d];
    resized = false;
  }
  if (model.fixedInputSize) {
    const f = model.fixedInputSize;
    check(
      runSize[0] === f[0] && runSize[1] === f[1],
      () => `${where}: this model only runs at ${f[0]}x${f[1]}, got inputSize ${runSize[0]}x${runSize[1]}`,
    );
    check(
      tta !== 'd4' || f[0] === f[1],
      () =>
        `${where}: tta 'd4' runs rotated views at the transposed size; this model only runs at ${f[0]}x${f[1]}`,
    );
  } else if (resized) {
    const d = model.inputDivisor;
    check(
      runSize[0] % d === 0 && runSize[1] % d === 0,
      () =>
        `${where}: inputSize ${runSize[0]}x${runSize[1]} must be divisible by the model's output stride ${d}`,
    );
  }

  const [runH, runW] = runSize;
  /** Logits of one view `[1, h, w, C]` (h x w: the view's size) at the view's own size. */
  const viewLogits = (x: tf.Tensor4D, transposed: boolean): tf.Tensor4D => {
    const [, h, w] = x.shape;
    const d = model.inputDivisor;
    const size: [number, number] = !resized
      ? [Math.ceil(h / d) * d, Math.ceil(w / d) * d]
      : transposed
        ? [runW, runH]
        : [runH, runW];
    let y = x;
    if (resized) y = tf.image.resizeBilinear(y, size, false, true);
    else if (size[0] !== h || size[1] !== w) {
      y = tf.pad(y, [
        [0, 0],
        [0, size[0] - h],
        [0, size[1] - w],
        [0, 0],
      ]);
    }
    let logits = model.segmentLogits(y);
    if (resized) return tf.image.resizeBilinear(logits, [h, w], false, true);
    if (logits.shape[1] !== size[0] || logits.shape[2] !== size[1]) {
      logits = tf.image.resizeBilinear(logits, size, false, true);
    }
    return tf.slice(logits, [0, 0, 0, 0], [1, h, w, C]);
  };
  const activate = (logits: tf.Tensor3D): tf.Tensor3D =>
    mode === 'multiclass' ? tf.softmax(logits, -1) : tf.sigmoid(logits);

  const outs = tf.tidy(() => {
    const img = tf.cast(imageToTensor(image, where), 'float32') as tf.Tensor3D;
    const norm = tf.div(tf.sub(tf.div(img, 255), tf.tensor1d(mean)), tf.tensor1d(std)) as tf.Tensor3D;
    const x = tf.expandDims(norm, 0) as tf.Tensor4D;
    // the mask comes from the logits of a single view, from the averaged probabilities of several
    let probs: tf.Tensor3D;
    let scores: tf.Tensor3D;
    if (views.length === 1) {
      scores = tf.squeeze(viewLogits(x, false), [0]) as tf.Tensor3D;
      probs = activate(scores);
    } else {
      const each = views.map((v) =>
        activate(tf.squeeze(fromView(viewLogits(toView(x, v), v.t), v), [0]) as tf.Tensor3D),
      );
      probs = tf.div(tf.addN(each), views.length) as tf.Tensor3D;
      scores = probs;
    }
    const mask =
      mode === 'binary'
        ? tf.cast(tf.greaterEqual(tf.squeeze(probs, [2]), threshold), 'int32')
        : tf.argMax(scores, -1);
    const labels = mode === 'multilabel' ? tf.cast(tf.greaterEqual(probs, threshold), 'int32') : null;
    const out: tf.Tensor[] = [mask];
    if (labels) out.push(labels);
    if (options.probabilities) out.push(probs);
    return out;
  });
  try {
    const [maskT, ...rest] = outs;
    const result: MaskPrediction = {
      width,
      height,
      numClasses: C,
      mode,
      mask: Int32Array.from(await maskT.data()),
      inputSize: runSize,
    };
    let k = 0;
    if (mode === 'multilabel') result.labels = Uint8Array.from(await rest[k++].data());
    if (options.probabilities) result.probabilities = Float32Array.from(await rest[k++].data());
    return result;
  } finally {
    tf.dispose(outs);
  }
}

/**
 * A colour per class: the Pascal VOC palette (class 0 black, then the bit-interleaved colours), as used by
 * most segmentation tools. Returns `[n * 3]` RGB bytes.
 */
export function segmentationPalette(n = 256): Uint8Array {
  check(Number.isInteger(n) && n > 0, () => `segmentationPalette: n must be a positive integer, got ${n}`);
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    let c = i;
    let r = 0;
    let g = 0;
    let b = 0;
    for (let j = 7; j >= 0 && c > 0; j--) {
      r |= (c & 1) << j;
      g |= ((c >> 1) & 1) << j;
      b |= ((c >> 2) & 1) << j;
      c >>= 3;
    }
    out[i * 3] = r;
    out[i * 3 + 1] = g;
    out[i * 3 + 2] = b;
  }
  return out;
}

function checkMask(fn: string, mask: ArrayLike<number>, width: number, height: number): void {
  check(
    Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0,
    () => `${fn}: width and height must be positive integers, got ${width}x${height}`,
  );
  check(
    mask !== null && typeof mask === 'object' && mask.length === width * height,
    () => `${fn}: mask must hold ${width}x${height} = ${width * height} class ids, got ${mask?.length}`,
  );
}

function paletteFor(fn: string, palette: Uint8Array | undefined, maxClass: number): Uint8Array {
  const p = palette ?? segmentationPalette(Math.max(256, maxClass + 1));
  check(
    p.length % 3 === 0 && p.length / 3 > maxClass,
    () => `${fn}: the palette has ${Math.floor(p.length / 3)} colours, the mask uses class ${maxClass}`,
  );
  return p;
}

function maxClassOf(fn: string, mask: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < mask.length; i++) {
    const v = mask[i];
    if (!(Number.isInteger(v) && v >= 0)) {
      throw new EffdetArgumentError(`${fn}: mask values must be non-negative class ids, got ${v} at ${i}`);
    }
    if (v > m) m = v;
  }
  return m;
}

/** The class map as an RGB image (`[height * width * 3]` bytes), one palette colour per class. */
export function colorizeMask(
  mask: ArrayLike<number>,
  width: number,
  height: number,
  palette?: Uint8Array,
): Uint8Array {
  checkMask('colorizeMask', mask, width, height);
  const p = paletteFor('colorizeMask', palette, maxClassOf('colorizeMask', mask));
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < mask.length; i++) {
    const c = mask[i] * 3;
    out[i * 3] = p[c];
    out[i * 3 + 1] = p[c + 1];
    out[i * 3 + 2] = p[c + 2];
  }
  return out;
}

export interface OverlayOptions {
  /** Weight of the class colour (default 0.5). */
  alpha?: number;
  palette?: Uint8Array;
  /** Classes left undrawn (default [0], the background). */
  skipClasses?: number[];
}

/** Blends the class colours into an RGB image (`[height * width * 3]` bytes); returns a new image. */
export function overlayMask(
  rgb: Uint8Array,
  mask: ArrayLike<number>,
  width: number,
  height: number,
  options: OverlayOptions = {},
): Uint8Array {
  const fn = 'overlayMask';
  checkMask(fn, mask, width, height);
  check(
    rgb instanceof Uint8Array && rgb.length === width * height * 3,
    () => `${fn}: rgb must be ${width}x${height}x3 = ${width * height * 3} bytes, got ${rgb?.length}`,
  );
  const alpha = options.alpha ?? 0.5;
  check(alpha >= 0 && alpha <= 1, () => `${fn}: alpha must be in [0, 1], got ${options.alpha}`);
  const p = paletteFor(fn, options.palette, maxClassOf(fn, mask));
  const skip = new Set(options.skipClasses ?? [0]);
  const out = Uint8Array.from(rgb);
  for (let i = 0; i < mask.length; i++) {
    const c = mask[i];
    if (skip.has(c)) continue;
    for (let k = 0; k < 3; k++) {
      out[i * 3 + k] = ((1 - alpha) * rgb[i * 3 + k] + alpha * p[c * 3 + k] + 0.5) | 0;
    }
  }
  return out;
}

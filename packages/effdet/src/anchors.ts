/**
 * RetinaNet / EfficientDet anchor boxes, laid out exactly as effdet's `Anchors` (and automl's `tf2/anchors.py`):
 * levels minLevel..maxLevel, then rows, then columns, then octave scale, then aspect ratio. That order is the
 * order of an NHWC head output `[B, h, w, A * C]` reshaped to `[B, h * w * A, C]`, so no transpose is needed.
 */

import { featSizes } from '@effdet/bifpn';
import { check, EffdetArgumentError } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';

export { featSizes };

/** An aspect ratio: effdet's `[x, y]` multiplier pair, or a scalar ratio r (meaning `[sqrt(r), 1 / sqrt(r)]`). */
export type AspectRatio = number | readonly [number, number];

export interface AnchorConfig {
  /** Model input size `[height, width]` in pixels. */
  imageSize: readonly [number, number];
  minLevel: number;
  maxLevel: number;
  /** Octave scales per level: `2^(o / numScales)` for o in 0..numScales-1. */
  numScales: number;
  aspectRatios: readonly AspectRatio[];
  /** Base anchor size as a multiple of the level stride; one value, or one per level. */
  anchorScale: number | readonly number[];
}

function isPosInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

function validateConfig(fn: string, cfg: AnchorConfig): void {
  check(
    cfg !== null && typeof cfg === 'object',
    () =>
      `${fn}: config must be an object with imageSize, minLevel, maxLevel, numScales, aspectRatios, anchorScale; got ${String(cfg)}`,
  );
  const { imageSize, minLevel, maxLevel, numScales, aspectRatios, anchorScale } = cfg;
  check(
    Array.isArray(imageSize) && imageSize.length === 2 && imageSize.every(isPosInt),
    () => `${fn}: imageSize must be [height, width] positive integers, got ${JSON.stringify(imageSize)}`,
  );
  check(
    Number.isInteger(minLevel) && Number.isInteger(maxLevel) && minLevel >= 0 && maxLevel >= minLevel,
    () =>
      `${fn}: minLevel/maxLevel must be integers with 0 <= minLevel <= maxLevel, got ${minLevel}/${maxLevel}`,
  );
  check(isPosInt(numScales), () => `${fn}: numScales must be a positive integer, got ${String(numScales)}`);
  check(
    Array.isArray(aspectRatios) && aspectRatios.length > 0,
    () => `${fn}: aspectRatios must be a non-empty array, got ${JSON.stringify(aspectRatios)}`,
  );
  for (const a of aspectRatios) {
    const ok =
      typeof a === 'number'
        ? Number.isFinite(a) && a > 0
        : Array.isArray(a) && a.length === 2 && a.every((v) => Number.isFinite(v) && v > 0);
    check(
      ok,
      () =>
        `${fn}: each aspect ratio must be a positive number or an [x, y] pair of positive numbers, got ${JSON.stringify(a)}`,
    );
  }
  const numLevels = maxLevel - minLevel + 1;
  if (typeof anchorScale === 'number') {
    check(
      Number.isFinite(anchorScale) && anchorScale > 0,
      () => `${fn}: anchorScale must be a positive number, got ${anchorScale}`,
    );
  } else {
    check(
      Array.isArray(anchorScale) &&
        anchorScale.length === numLevels &&
        anchorScale.every((v) => Number.isFinite(v) && v > 0),
      () =>
        `${fn}: anchorScale must be a positive number or ${numLevels} positive numbers (one per level), got ${JSON.stringify(anchorScale)}`,
    );
  }
}

/** numpy `arange(start, stop, step)` for floats: length ceil((stop-start)/step), values start + i * (start+step-start). */
function npArange(start: number, stop: number, step: number): Float64Array {
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const out = new Float64Array(n);
  const delta = start + step - start;
  for (let i = 0; i < n; i++) out[i] = start + i * delta;
  return out;
}

/**
 * Every anchor box as a flat Float32Array `[N * 4]` of `y1, x1, y2, x2` in absolute input pixels (not clipped),
 * N = A * sum over levels of h_l * w_l, A = numScales * aspectRatios.length. Computed in float64 and rounded
 * once to float32, as effdet does with numpy.
 */
export function generateAnchorBoxes(cfg: AnchorConfig): Float32Array {
  validateConfig('generateAnchorBoxes', cfg);
  const { imageSize, minLevel, maxLevel, numScales, aspectRatios, anchorScale } = cfg;
  const sizes = featSizes(imageSize, maxLevel);
  const numAspects = aspectRatios.length;
  const perLoc = numScales * numAspects;
  let total = 0;
  for (let l = minLevel; l <= maxLevel; l++) total += sizes[l][0] * sizes[l][1] * perLoc;
  const out = new Float32Array(total * 4);
  let o = 0;
  for (let level = minLevel; level <= maxLevel; level++) {
    const [fh, fw] = sizes[level];
    const strideY = imageSize[0] / fh;
    const strideX = imageSize[1] / fw;
    const scale = typeof anchorScale === 'number' ? anchorScale : anchorScale[level - minLevel];
    const ys = npArange(strideY / 2, imageSize[0], strideY);
    const xs = npArange(strideX / 2, imageSize[1], strideX);
    if (ys.length !== fh || xs.length !== fw) {
      throw new EffdetArgumentError(
        `generateAnchorBoxes: level ${level} has ${ys.length}x${xs.length} anchor centres but a ${fh}x${fw} feature map (imageSize ${imageSize.join('x')})`,
      );
    }
    // Half sizes of the A anchors at one location, octave-major then aspect.
    const halfY = new Float64Array(perLoc);
    const halfX = new Float64Array(perLoc);
    for (let s = 0; s < numScales; s++) {
      const octave = s / numScales;
      const baseX = scale * strideX * 2 ** octave;
      const baseY = scale * strideY * 2 ** octave;
      for (let a = 0; a < numAspects; a++) {
        const ar = aspectRatios[a];
        let ax: number;
        let ay: number;
        if (typeof ar === 'number') {
          ax = Math.sqrt(ar);
          ay = 1.0 / ax;
        } else {
          ax = ar[0];
          ay = ar[1];
        }
        halfX[s * numAspects + a] = (baseX * ax) / 2.0;
        halfY[s * numAspects + a] = (baseY * ay) / 2.0;
      }
    }
    for (let r = 0; r < fh; r++) {
      const y = ys[r];
      for (let c = 0; c < fw; c++) {
        const x = xs[c];
        for (let a = 0; a < perLoc; a++) {
          out[o++] = y - halfY[a];
          out[o++] = x - halfX[a];
          out[o++] = y + halfY[a];
          out[o++] = x + halfX[a];
        }
      }
    }
  }
  return out;
}

/** Anchors of one model geometry: the boxes as a host array and (lazily) as a `[N, 4]` tensor. */
export class Anchors {
  readonly config: Readonly<AnchorConfig>;
  /** `[h, w]` per level minLevel..maxLevel. */
  readonly levelSizes: readonly [number, number][];
  /** Anchors per feature-map location: numScales * aspectRatios.length. */
  readonly numAnchorsPerLocation: number;
  /** Total number of anchors N. */
  readonly numAnchors: number;
  /** `[N * 4]` y1, x1, y2, x2 in input pixels. */
  readonly boxesArray: Float32Array;
  private tensor: tf.Tensor2D | null;

  constructor(cfg: AnchorConfig) {
    this.boxesArray = generateAnchorBoxes(cfg);
    this.config = Object.freeze({
      imageSize: [cfg.imageSize[0], cfg.imageSize[1]] as const,
      minLevel: cfg.minLevel,
      maxLevel: cfg.maxLevel,
      numScales: cfg.numScales,
      aspectRatios: cfg.aspectRatios.map((a) => (typeof a === 'number' ? a : ([a[0], a[1]] as const))),
      anchorScale: typeof cfg.anchorScale === 'number' ? cfg.anchorScale : [...cfg.anchorScale],
    });
    this.levelSizes = featSizes(cfg.imageSize, cfg.maxLevel).slice(cfg.minLevel);
    this.numAnchorsPerLocation = cfg.numScales * cfg.aspectRatios.length;
    this.numAnchors = this.boxesArray.length / 4;
    this.tensor = tf.keep(tf.tensor2d(this.boxesArray, [this.numAnchors, 4], 'float32'));
  }

  /** effdet `Anchors.from_config`: reads the anchor fields of a model config (extra fields are ignored). */
  static fromConfig(cfg: AnchorConfig): Anchors {
    return new Anchors(cfg);
  }

  /** Number of feature levels. */
  get numLevels(): number {
    return this.config.maxLevel - this.config.minLevel + 1;
  }

  /**
   * The boxes as a `[N, 4]` float32 tensor (y1, x1, y2, x2), owned by this object (kept out of any tidy): do not
   * dispose it, call `dispose()` on the Anchors instead.
   */
  get boxes(): tf.Tensor2D {
    if (!this.tensor) throw new EffdetArgumentError('Anchors.boxes: the anchors were disposed');
    return this.tensor;
  }

  /** True once `dispose()` ran. */
  get isDisposed(): boolean {
    return this.tensor === null;
  }

  /** Releases the boxes tensor (the host array `boxesArray` stays usable). Safe to call twice. */
  dispose(): void {
    this.tensor?.dispose();
    this.tensor = null;
  }
}

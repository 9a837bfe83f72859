import { check } from '@effdet/layers';
import { fetchTfjs, parseWeights, type RawTensorMap } from '@effdet/weights';
import * as tf from '@tensorflow/tfjs-core';
import { Anchors } from './anchors.js';
import { labelFor } from './coco_labels.js';
import { type EffDetConfig, getEfficientDetConfig } from './config.js';
import type { ImageInput } from './image.js';
import { createEfficientDet, type EfficientDet } from './model.js';
import { type Detection, postProcessArrays, toDetections } from './postprocess.js';
import { type PreprocessConvention, preprocess } from './preprocess.js';
import { loadRawStateDict } from './weights.js';

export interface DetectorOptions {
  /**
   * Weights: a tensor map from `@effdet/weights`, the bytes of a safetensors or PyTorch `.pth` file, or the
   * URL of a TF.js `model.json`. In Node, `@effdet/effdet/node`'s `createDetector` also takes file paths and
   * official TensorFlow checkpoints. Without weights the network keeps its random initialisation.
   */
  weights?: RawTensorMap | Uint8Array | string | null;
  /** Config overrides, e.g. `{numClasses: 5}` or `{imageSize: [384, 384]}`. */
  config?: Partial<EffDetConfig>;
  numClasses?: number;
  imageSize?: [number, number];
  /** 'effdet' (default: resize, pad with the mean colour, normalise) or 'automl' (official TF order). */
  preprocess?: PreprocessConvention;
  /** Resize kernel: 'pil' (default, as the reference's PIL) or 'bilinear' (faster, TF.js). */
  resample?: 'pil' | 'bilinear';
  /** Class names: a function or a list indexed by class id - 1; default COCO names for 90-class models. */
  labels?: ((classId: number) => string) | readonly string[] | null;
  /** Fold BatchNorm into the convs and use fused kernels (default true). */
  fuse?: boolean;
  /** Require every weight name to match (default true). */
  strict?: boolean;
  /**
   * Training checkpoints holding two sets of weights (`.pth` `state_dict` / `state_dict_ema`, TF checkpoints'
   * `/ExponentialMovingAverage`): true picks the EMA copy, false the raw one; default: the file's only set,
   * or for TF checkpoints the EMA values (as the published numbers use).
   */
  ema?: boolean;
}

export interface DetectOptions {
  /** Drop detections below this score (default 0.3; use 0.001 for COCO evaluation). */
  scoreThreshold?: number;
  /** At most this many detections per image (default: the config's 100). */
  maxDetections?: number;
  /** 'hard' per-class NMS (default) or Gaussian 'soft' NMS. */
  nms?: 'hard' | 'soft';
  /** Hard-NMS IoU threshold (default 0.5). */
  iouThreshold?: number;
}

/** Raw batched results: rows `[x1, y1, x2, y2, score, classId]` in original-image pixels. */
export interface DetectTensorsResult {
  /** `[B, maxDetections, 6]`; the caller disposes it. */
  detections: tf.Tensor3D;
  imgScale: number[];
  imgSize: [number, number][];
}

function isBatch(input: unknown): input is readonly ImageInput[] | tf.Tensor4D {
  return Array.isArray(input) || (input instanceof tf.Tensor && input.rank === 4);
}

/**
 * An EfficientDet with its anchors, preprocessing and post-processing: images in, boxes out. Boxes are
 * `[x1, y1, x2, y2]` in original-image pixels; class ids are 1-based (COCO category ids for COCO models).
 */
export class Detector {
  readonly anchors: Anchors;
  private readonly labelOf: ((classId: number) => string) | null;
  private disposed = false;

  constructor(
    readonly model: EfficientDet,
    private readonly options: Pick<DetectorOptions, 'preprocess' | 'resample' | 'labels'> = {},
  ) {
    const c = model.config;
    this.anchors = Anchors.fromConfig(c);
    const labels = options.labels;
    if (typeof labels === 'function') this.labelOf = labels;
    else if (Array.isArray(labels)) this.labelOf = (id) => labels[id - 1] ?? `class ${id}`;
    else if (labels === undefined && c.numClasses === 90) this.labelOf = labelFor;
    else this.labelOf = null;
  }

  get config(): Readonly<EffDetConfig> {
    return this.model.config;
  }

  private checkAlive(fn: string): void {
    check(!this.disposed, () => `Detector.${fn}: the detector was disposed`);
  }

  /** Network + post-processing on a batch; resolves to one row array per image. */
  private async run(input: ImageInput | readonly ImageInput[] | tf.Tensor4D, o: DetectOptions) {
    const c = this.config;
    const pre = preprocess(input, {
      imageSize: c.imageSize,
      convention: this.options.preprocess ?? 'effdet',
      mean: c.mean,
      std: c.std,
      fillColor: c.fillColor === 'mean' ? 'mean' : c.fillColor,
      resample: this.options.resample,
    });
    let outputs: { classOut: tf.Tensor4D[]; boxOut: tf.Tensor4D[] } | null = null;
    try {
      outputs = this.model.forward(pre.input);
      const rows = await postProcessArrays(outputs.classOut, outputs.boxOut, this.anchors, {
        numClasses: c.numClasses,
        maxDetectionPoints: c.maxDetectionPoints,
        maxDetections: o.maxDetections ?? c.maxDetPerImage,
        iouThreshold: o.iouThreshold,
        softNms: (o.nms ?? (c.softNms ? 'soft' : 'hard')) === 'soft',
        imgScale: pre.imgScale,
        imgSize: pre.imgSize,
      });
      return { rows, imgScale: pre.imgScale, imgSize: pre.imgSize };
    } finally {
      pre.input.dispose();
      if (outputs) tf.dispose([...outputs.classOut, ...outputs.boxOut]);
    }
  }

  /**
   * Detects objects in one image (a `tf.Tensor3D` uint8/int32 or float 0..255, `{data, width, height}` pixels,
   * or a browser image / canvas / video element), or in a batch (an array or a `tf.Tensor4D`), returning one
   * list per image.
   */
  detect(input: ImageInput, options?: DetectOptions): Promise<Detection[]>;
  detect(input: readonly ImageInput[] | tf.Tensor4D, options?: DetectOptions): Promise<Detection[][]>;
  async detect(
    input: ImageInput | readonly ImageInput[] | tf.Tensor4D,
    options: DetectOptions = {},
  ): Promise<Detection[] | Detection[][]> {
    this.checkAlive('detect');
    const threshold = options.scoreThreshold ?? 0.3;
    const { rows } = await this.run(input, options);
    const lists = rows.map((r) =>
      toDetections(r, this.labelOf ?? undefined).filter((d) => d.score >= threshold),
    );
    return isBatch(input) ? lists : lists[0];
  }

  /** The raw `[B, maxDetections, 6]` rows (zero rows pad), for callers who want tensors. */
  async detectTensors(
    input: ImageInput | readonly ImageInput[] | tf.Tensor4D,
    options: DetectOptions = {},
  ): Promise<DetectTensorsResult> {
    this.checkAlive('detectTensors');
    const { rows, imgScale, imgSize } = await this.run(input, options);
    const n = options.maxDetections ?? this.config.maxDetPerImage;
    const data = new Float32Array(rows.length * n * 6);
    for (const [i, r] of rows.entries()) data.set(r, i * n * 6);
    return { detections: tf.tensor3d(data, [rows.length, n, 6]), imgScale, imgSize };
  }

  /** Frees the weights and anchors. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.anchors.dispose();
    this.model.dispose();
  }
}

/** Resolves the weights option to a tensor map (browser-safe formats). */
async function resolveWeights(
  weights: DetectorOptions['weights'],
  ema: boolean | undefined,
): Promise<RawTensorMap | null> {
  if (weights === undefined || weights === null) return null;
  if (typeof weights === 'string') {
    const reader = await fetchTfjs(weights);
    try {
      return await reader.readAll();
    } finally {
      await reader.close();
    }
  }
  if (weights instanceof Uint8Array) return parseWeights(weights, { ema });
  return weights;
}

/** Builds the model of `config`, loads `weights` into it and prepares it for inference. */
export async function buildDetector<D extends Detector = Detector>(
  config: Readonly<EffDetConfig>,
  weights: RawTensorMap | ((model: EfficientDet) => void | Promise<void>) | null,
  options: DetectorOptions = {},
  make: (model: EfficientDet, options: DetectorOptions) => D = (m, o) => new Detector(m, o) as D,
): Promise<D> {
  const model = createEfficientDet(config);
  try {
    if (typeof weights === 'function') await weights(model);
    else if (weights) loadRawStateDict(model, weights, { strict: options.strict ?? true });
    model.eval();
    if (options.fuse ?? true) model.fuseForInference();
    return make(model, options);
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** The config a detector of `name` with `options` uses. */
export function detectorConfig(name: string, options: DetectorOptions = {}): Readonly<EffDetConfig> {
  return getEfficientDetConfig(name, {
    ...options.config,
    ...(options.numClasses !== undefined ? { numClasses: options.numClasses } : {}),
    ...(options.imageSize !== undefined ? { imageSize: options.imageSize } : {}),
  });
}

/**
 * `createDetector('tf_efficientdet_d0', {weights})`: a ready detector. Unknown model names throw and list
 * the valid ones; weights for another config throw listing the mismatched names.
 */
export async function createDetector(name: string, options: DetectorOptions = {}): Promise<Detector> {
  const config = detectorConfig(name, options);
  const weights = await resolveWeights(options.weights, options.ema);
  return buildDetector(config, weights, options);
}

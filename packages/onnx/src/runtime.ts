/**
 * The `detect()` API on onnxruntime (onnxruntime-node in Node, onnxruntime-web in browsers: pass the module as
 * `ort`). Preprocessing (letterbox, PIL-exact resize) runs on the host in plain JS; the exported graph
 * normalises, runs the network and post-processes. Works with files from `exportOnnx` with or without the
 * in-graph pre- / post-processing (without, the TypeScript post-processing of `@effdet/effdet` runs instead).
 */
import {
  Anchors,
  type Detection,
  type DetectOptions,
  type DetectTensorsResult,
  type EffDetConfig,
  generateDetections,
  type ImageInput,
  imageToRgb,
  labelFor,
  letterbox,
  letterboxGeometry,
  postProcessArrays,
  resolveFillColor,
  toDetections,
} from '@effdet/effdet';
import { check } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import protobuf from 'protobufjs/light.js';
import { letterboxInto } from './letterbox.js';

/** The typed arrays onnxruntime tensors hold. */
export type OrtData = Float32Array | Int32Array | Uint8Array | BigInt64Array;

/** An onnxruntime tensor (the part used here). */
export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

/** An onnxruntime inference session (the part used here). */
export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  release(): Promise<void>;
}

/** The onnxruntime module (`onnxruntime-node` or `onnxruntime-web`): what this package calls. */
export interface OrtModule {
  InferenceSession: {
    create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSessionLike>;
  };
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => OrtTensorLike;
}

export interface OnnxSessionOptions {
  /** Execution providers in order of preference, e.g. `['cpu']` (default), `['cuda', 'cpu']`, `['webgpu', 'wasm']`. */
  executionProviders?: readonly (string | Record<string, unknown>)[];
  /** Threads for one op (default: onnxruntime's choice, the physical cores). */
  intraOpNumThreads?: number;
  /** Graph optimisation level (default 'all'). */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Flush denormal floats to zero (default true: avoids 2-3x slow-downs on CPUs, changes nothing visible). */
  denormalAsZero?: boolean;
  /**
   * Whether idle intra-op threads spin waiting for work (onnxruntime's `session.intra_op.allow_spinning`;
   * default: onnxruntime's, on). Spinning shaves a little latency on an idle machine; on a machine whose cores
   * are shared with other work, turn it off (`false`): spinning threads steal the cores the other threads need
   * (2 threads of d0 took 476 ms spinning vs 257 ms not, with another job on one of 2 cores).
   */
  spinning?: boolean;
  /** More onnxruntime session options, passed through. */
  sessionOptions?: Record<string, unknown>;
}

export interface OnnxDetectorOptions extends OnnxSessionOptions {
  /** The onnxruntime module. */
  ort: OrtModule;
  /** Class names (a function or a list indexed by class id - 1); default: the file's, or COCO for 90 classes. */
  labels?: ((classId: number) => string) | readonly string[] | null;
  /** Resize kernel of the letterbox: 'pil' (default, exact as the reference) or 'bilinear' (TF.js). */
  resample?: 'pil' | 'bilinear';
}

/** Session options in onnxruntime's format. */
export function ortSessionOptions(o: OnnxSessionOptions): Record<string, unknown> {
  const session: Record<string, string> = {};
  if (o.denormalAsZero !== false) session.set_denormal_as_zero = '1';
  if (o.spinning !== undefined) session['intra_op.allow_spinning'] = o.spinning ? '1' : '0';
  const extra = Object.keys(session).length ? { extra: { session } } : {};
  return {
    executionProviders: o.executionProviders ? [...o.executionProviders] : undefined,
    graphOptimizationLevel: o.graphOptimizationLevel ?? 'all',
    ...(o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
    ...extra,
    ...o.sessionOptions,
  };
}

/**
 * The `metadata_props` of an ONNX file, read without decoding the graph (the top-level fields are scanned and
 * only field 14 is parsed).
 */
export function readOnnxMetadata(bytes: Uint8Array): Record<string, string> {
  const r = protobuf.Reader.create(bytes);
  const out: Record<string, string> = {};
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 14 && wire === 2) {
      const end = r.uint32() + r.pos;
      let key = '';
      let value = '';
      while (r.pos < end) {
        const t = r.uint32();
        if (t >>> 3 === 1 && (t & 7) === 2) key = r.string();
        else if (t >>> 3 === 2 && (t & 7) === 2) value = r.string();
        else r.skipType(t & 7);
      }
      out[key] = value;
    } else {
      r.skipType(wire);
    }
  }
  return out;
}

const ctorCache = new WeakMap<OrtModule, Map<string, new (n: number) => Float32Array | Uint8Array>>();

/**
 * A typed array of onnxruntime's own realm: onnxruntime checks `instanceof`, which fails for arrays made in
 * another realm (e.g. a test VM); a tensor built from a plain array yields its constructor.
 */
function ortArray(ort: OrtModule, type: 'float32' | 'uint8', n: number): Float32Array | Uint8Array {
  let byType = ctorCache.get(ort);
  if (!byType) {
    byType = new Map();
    ctorCache.set(ort, byType);
  }
  let ctor = byType.get(type);
  if (!ctor) {
    ctor = (new ort.Tensor(type, [0], [1]).data as object).constructor as new (
      n: number,
    ) => Float32Array | Uint8Array;
    byType.set(type, ctor);
  }
  return new ctor(n);
}

function toNumberArray(d: unknown): ArrayLike<number> {
  if (typeof (d as BigInt64Array)?.[0] === 'bigint') return Array.from(d as BigInt64Array, (v) => Number(v));
  return d as ArrayLike<number>;
}

interface PostMeta {
  maxDetectionPoints: number;
  maxDetections: number;
  iouThreshold: number;
  imageInfo: boolean;
  candidates: boolean;
}

/** A detector on an exported EfficientDet ONNX file. */
export class OnnxDetector {
  readonly config: Readonly<EffDetConfig>;
  readonly metadata: Record<string, string>;
  private readonly labelOf: ((classId: number) => string) | null;
  private readonly post: PostMeta | null;
  private readonly inputName: 'image' | 'input';
  private readonly fixedBatch: number | null;
  private anchors: Anchors | null = null;
  private disposed = false;
  /** Milliseconds spent in the last `detect` call: host letterbox, `session.run`, host post-processing. */
  lastTimings = { preprocess: 0, run: 0, postprocess: 0 };

  constructor(
    readonly session: OrtSessionLike,
    private readonly ort: OrtModule,
    metadata: Record<string, string>,
    private readonly options: Pick<OnnxDetectorOptions, 'labels' | 'resample'> = {},
  ) {
    check(
      metadata.task === 'detection' && typeof metadata.config === 'string',
      () =>
        `OnnxDetector: the ONNX file is not an EfficientDet export of @effdet/onnx (metadata task '${metadata.task}'); export one with exportOnnx`,
    );
    this.metadata = metadata;
    this.config = JSON.parse(metadata.config) as EffDetConfig;
    this.post = metadata.postprocess ? (JSON.parse(metadata.postprocess) as PostMeta) : null;
    this.inputName = session.inputNames.includes('image') ? 'image' : 'input';
    this.fixedBatch = metadata.dynamic_batch === 'true' ? null : Number(metadata.batch ?? 1);
    const labels = options.labels;
    const fileLabels = metadata.classes ? (JSON.parse(metadata.classes) as string[]) : null;
    const list = Array.isArray(labels) ? labels : labels === undefined ? fileLabels : null;
    if (typeof labels === 'function') this.labelOf = labels;
    else if (list) this.labelOf = (id) => list[id - 1] ?? `class ${id}`;
    else if (labels === undefined && this.config.numClasses === 90) this.labelOf = labelFor;
    else this.labelOf = null;
  }

  /** Letterboxes a batch on the host: `[B, H, W, 3]` uint8, with the geometry of each image. */
  private prepare(images: readonly ImageInput[]): {
    pixels: Uint8Array;
    imgScale: number[];
    imgSize: [number, number][];
  } {
    const c = this.config;
    const [th, tw] = c.imageSize;
    const fill = resolveFillColor(c.fillColor === 'mean' ? 'mean' : c.fillColor, c.mean);
    const pixels = new Uint8Array(images.length * th * tw * 3);
    const imgScale: number[] = [];
    const imgSize: [number, number][] = [];
    const resample = this.options.resample ?? 'pil';
    images.forEach((img, b) => {
      const off = b * th * tw * 3;
      if (resample === 'bilinear') {
        const lb = letterbox(img, {
          imageSize: [th, tw],
          mean: c.mean,
          fillColor: c.fillColor === 'mean' ? 'mean' : c.fillColor,
          resample,
        });
        try {
          pixels.set(lb.image.dataSync() as Int32Array, off);
        } finally {
          lb.image.dispose();
        }
        imgScale.push(lb.imgScale);
        imgSize.push(lb.imgSize);
        return;
      }
      const rgb = imageToRgb(img, 'OnnxDetector.detect');
      const geo = letterboxGeometry([rgb.height, rgb.width], [th, tw]);
      const [rh, rw] = geo.resizedSize;
      letterboxInto(rgb, rw, rh, pixels, off, th, tw, fill);
      imgScale.push(geo.imgScale);
      imgSize.push([rgb.width, rgb.height]);
    });
    return { pixels, imgScale, imgSize };
  }

  /** Feeds for one chunk of images. */
  private feeds(
    pixels: Uint8Array,
    imgScale: number[],
    imgSize: [number, number][],
  ): Record<string, OrtTensorLike> {
    const { ort } = this;
    const c = this.config;
    const [h, w] = c.imageSize;
    const b = imgScale.length;
    const feeds: Record<string, OrtTensorLike> = {};
    if (this.inputName === 'image') {
      const data = ortArray(ort, 'uint8', pixels.length) as Uint8Array;
      data.set(pixels);
      feeds.image = new ort.Tensor('uint8', data, [b, h, w, 3]);
    } else {
      const data = ortArray(ort, 'float32', pixels.length) as Float32Array;
      const m = c.mean.map((v) => Math.fround(255 * v));
      const s = c.std.map((v) => Math.fround(255 * v));
      for (let i = 0; i < pixels.length; i++) data[i] = Math.fround(pixels[i] - m[i % 3]) / s[i % 3];
      feeds.input = new ort.Tensor('float32', data, [b, h, w, 3]);
    }
    if (this.post?.imageInfo) {
      const sc = ortArray(ort, 'float32', b) as Float32Array;
      sc.set(imgScale);
      const sz = ortArray(ort, 'float32', 2 * b) as Float32Array;
      sz.set(imgSize.flat());
      feeds.img_scale = new ort.Tensor('float32', sc, [b]);
      feeds.img_size = new ort.Tensor('float32', sz, [b, 2]);
    }
    return feeds;
  }

  /** Rows `[x1, y1, x2, y2, score, class]` per image (original-image pixels), maxDetections rows each. */
  async detectRows(
    input: ImageInput | readonly ImageInput[] | tf.Tensor4D,
    options: DetectOptions = {},
  ): Promise<{ rows: Float32Array[]; imgScale: number[]; imgSize: [number, number][] }> {
    check(!this.disposed, () => 'OnnxDetector.detect: the detector was disposed');
    const owned = input instanceof tf.Tensor && input.rank === 4;
    const images = owned
      ? (tf.unstack(input as tf.Tensor4D) as tf.Tensor3D[])
      : Array.isArray(input)
        ? [...(input as readonly ImageInput[])]
        : [input as ImageInput];
    try {
      return await this.detectImages(images, options);
    } finally {
      if (owned) tf.dispose(images as tf.Tensor3D[]);
    }
  }

  private async detectImages(
    images: ImageInput[],
    options: DetectOptions,
  ): Promise<{ rows: Float32Array[]; imgScale: number[]; imgSize: [number, number][] }> {
    check(images.length > 0, () => 'OnnxDetector.detect: the image batch is empty');
    const t0 = performance.now();
    const { pixels, imgScale, imgSize } = this.prepare(images);
    const timings = { preprocess: performance.now() - t0, run: 0, postprocess: 0 };
    const per = this.config.imageSize[0] * this.config.imageSize[1] * 3;
    const chunk = this.fixedBatch ?? images.length;
    check(
      images.length % chunk === 0 || chunk === 1,
      () => `OnnxDetector.detect: the file takes batches of ${chunk}; got ${images.length} images`,
    );
    const rows: Float32Array[] = [];
    for (let i = 0; i < images.length; i += chunk) {
      const sc = imgScale.slice(i, i + chunk);
      const sz = imgSize.slice(i, i + chunk);
      const t1 = performance.now();
      const feeds = this.feeds(pixels.subarray(i * per, (i + chunk) * per), sc, sz);
      const out = await this.session.run(feeds);
      const t2 = performance.now();
      rows.push(...(await this.rowsOf(out, sc, sz, options)));
      timings.run += t2 - t1;
      timings.postprocess += performance.now() - t2;
    }
    this.lastTimings = timings;
    return { rows, imgScale, imgSize };
  }

  private async rowsOf(
    out: Record<string, OrtTensorLike>,
    imgScale: number[],
    imgSize: [number, number][],
    o: DetectOptions,
  ): Promise<Float32Array[]> {
    const c = this.config;
    const b = imgScale.length;
    const maxDet = o.maxDetections ?? c.maxDetPerImage;
    const soft = (o.nms ?? (c.softNms ? 'soft' : 'hard')) === 'soft';
    const iou = o.iouThreshold ?? 0.5;
    const post = this.post;
    if (post && !soft && iou === post.iouThreshold && maxDet <= post.maxDetections && post.imageInfo) {
      // The in-graph post-processing answers: its first maxDet rows are the answer for maxDet (NMS keeps a prefix).
      const d = out.detections.data as Float32Array;
      const m = post.maxDetections;
      return Array.from({ length: b }, (_, i) => {
        const r = new Float32Array(maxDet * 6);
        r.set(d.subarray(i * m * 6, i * m * 6 + Math.min(maxDet, m) * 6));
        return r;
      });
    }
    if (post?.candidates) {
      // Other NMS settings: the TypeScript NMS on the decoded candidates the graph returns.
      const k = post.maxDetectionPoints;
      const boxes = out.candidate_boxes.data as Float32Array;
      const scores = out.candidate_scores.data as Float32Array;
      const classes = Int32Array.from(toNumberArray(out.candidate_classes.data));
      return Array.from({ length: b }, (_, i) =>
        generateDetections(
          {
            boxes: boxes.subarray(i * k * 4, (i + 1) * k * 4),
            scores: scores.subarray(i * k, (i + 1) * k),
            classes: classes.subarray(i * k, (i + 1) * k),
          },
          {
            maxDetections: maxDet,
            iouThreshold: iou,
            softNms: soft,
            imgScale: imgScale[i],
            imgSize: imgSize[i],
          },
        ),
      );
    }
    check(
      !post,
      () =>
        `OnnxDetector.detect: this file's in-graph post-processing is fixed to hard NMS, IoU ${post?.iouThreshold}, ` +
        `${post?.maxDetections} rows${post?.imageInfo ? '' : ', no image info'}; export with {withPostprocess: {candidates: true}} for other settings`,
    );
    // Raw head outputs: the TypeScript post-processing (needs a TF.js backend).
    const nl = c.maxLevel - c.minLevel + 1;
    if (!this.anchors) this.anchors = Anchors.fromConfig(c);
    const tensors = (prefix: string) =>
      Array.from({ length: nl }, (_, l) => {
        const t = out[`${prefix}.${l}`];
        return tf.tensor4d(
          Float32Array.from(t.data as Float32Array),
          t.dims as [number, number, number, number],
        );
      });
    const cls = tensors('class');
    const box = tensors('box');
    try {
      return await postProcessArrays(cls, box, this.anchors, {
        numClasses: c.numClasses,
        maxDetectionPoints: c.maxDetectionPoints,
        maxDetections: maxDet,
        iouThreshold: iou,
        softNms: soft,
        imgScale,
        imgSize,
      });
    } finally {
      tf.dispose([...cls, ...box]);
    }
  }

  /**
   * As `Detector.detect` of `@effdet/effdet`: one image, or a batch (an array or a `tf.Tensor4D`) giving one list
   * per image; boxes in original-image pixels.
   */
  detect(input: ImageInput, options?: DetectOptions): Promise<Detection[]>;
  detect(input: readonly ImageInput[] | tf.Tensor4D, options?: DetectOptions): Promise<Detection[][]>;
  async detect(
    input: ImageInput | readonly ImageInput[] | tf.Tensor4D,
    options: DetectOptions = {},
  ): Promise<Detection[] | Detection[][]> {
    const threshold = options.scoreThreshold ?? 0.3;
    const { rows } = await this.detectRows(input, options);
    const lists = rows.map((r) =>
      toDetections(r, this.labelOf ?? undefined).filter((d) => d.score >= threshold),
    );
    const batch = Array.isArray(input) || (input instanceof tf.Tensor && input.rank === 4);
    return batch ? lists : lists[0];
  }

  /** As `Detector.detectTensors`: the `[B, maxDetections, 6]` rows as a tensor (the caller disposes it). */
  async detectTensors(
    input: ImageInput | readonly ImageInput[] | tf.Tensor4D,
    options: DetectOptions = {},
  ): Promise<DetectTensorsResult> {
    const { rows, imgScale, imgSize } = await this.detectRows(input, options);
    const n = options.maxDetections ?? this.config.maxDetPerImage;
    const data = new Float32Array(rows.length * n * 6);
    rows.forEach((r, i) => {
      data.set(r.subarray(0, n * 6), i * n * 6);
    });
    return { detections: tf.tensor3d(data, [rows.length, n, 6]), imgScale, imgSize };
  }

  /** Releases the session. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.anchors?.dispose();
    this.anchors = null;
    await this.session.release();
  }
}

/** Opens an exported EfficientDet `.onnx` (bytes) with the given onnxruntime module. */
export async function loadOnnxDetector(
  bytes: Uint8Array,
  options: OnnxDetectorOptions,
): Promise<OnnxDetector> {
  check(
    options?.ort?.InferenceSession !== undefined,
    () =>
      'loadOnnxDetector: options.ort must be the onnxruntime module (onnxruntime-node or onnxruntime-web)',
  );
  const metadata = readOnnxMetadata(bytes);
  const session = await options.ort.InferenceSession.create(bytes, ortSessionOptions(options));
  try {
    return new OnnxDetector(session, options.ort, metadata, options);
  } catch (e) {
    await session.release();
    throw e;
  }
}

/**
 * Node entry: onnxruntime-node loading, `.onnx` files, and `createOnnxDetector(name, {weights})`, the detect API
 * of `@effdet/effdet/node` running on onnxruntime.
 */
import { readFile, writeFile } from 'node:fs/promises';
import * as vm from 'node:vm';
import type { Detection, DetectOptions, ImageInput } from '@effdet/effdet';
import {
  createDetector,
  decodeImage,
  type NodeDetectorOptions,
  type NodeImageInput,
} from '@effdet/effdet/node';
import { check, type Module } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import { type ExportOnnxOptions, exportOnnx, type OnnxExport } from './export.js';
import {
  OnnxDetector,
  type OnnxDetectorOptions,
  type OnnxSessionOptions,
  type OrtModule,
  ortSessionOptions,
  readOnnxMetadata,
} from './runtime.js';

let ortCache: OrtModule | null = null;

/**
 * In a sandboxed realm (Jest runs tests in a vm context) onnxruntime-node's binding returns typed arrays of
 * Node's main realm, which onnxruntime-common's `instanceof` checks reject when the package was loaded in the
 * sandbox. There, load it with the main realm's require; elsewhere return null.
 */
function mainRealmOrt(): OrtModule | null {
  if (vm.runInThisContext('Float32Array') === Float32Array) return null;
  const main = (vm.runInThisContext('process') as NodeJS.Process & { mainModule?: NodeJS.Module }).mainModule;
  const req = typeof require === 'function' ? require : null;
  if (!main || !req) return null;
  return main.require(req.resolve('onnxruntime-node')) as OrtModule;
}

/**
 * Loads `onnxruntime-node` (an optional dependency of this package; its CPU binaries ship in the npm package, so
 * installs can skip its CUDA download with `ONNXRUNTIME_NODE_INSTALL=skip`).
 */
export async function loadOrt(): Promise<OrtModule> {
  if (ortCache) return ortCache;
  try {
    const sandboxed = mainRealmOrt();
    if (sandboxed) {
      ortCache = sandboxed;
      return ortCache;
    }
    const m = (await import('onnxruntime-node')) as unknown as OrtModule & { default?: OrtModule };
    ortCache = m.InferenceSession ? m : (m.default as OrtModule);
    return ortCache;
  } catch (e) {
    throw new Error(
      `loadOrt: onnxruntime-node is not installed (npm install onnxruntime-node@1.30.0; set ONNXRUNTIME_NODE_INSTALL=skip to skip its GPU download): ${(e as Error).message}`,
    );
  }
}

/** Exports `model` (see `exportOnnx`) and writes the file. */
export async function exportOnnxFile(
  model: Module,
  path: string,
  options: ExportOnnxOptions = {},
): Promise<OnnxExport> {
  const ex = exportOnnx(model, options);
  await writeFile(path, ex.bytes);
  return ex;
}

async function toImage(input: NodeImageInput): Promise<ImageInput> {
  if (typeof input === 'string' || input instanceof Uint8Array) return decodeImage(input);
  return input;
}

/** An OnnxDetector that also takes image file paths and encoded JPEG / PNG buffers. */
export class NodeOnnxDetector extends OnnxDetector {
  override detect(input: NodeImageInput, options?: DetectOptions): Promise<Detection[]>;
  override detect(
    input: readonly NodeImageInput[] | tf.Tensor4D,
    options?: DetectOptions,
  ): Promise<Detection[][]>;
  override async detect(
    input: NodeImageInput | readonly NodeImageInput[] | tf.Tensor4D,
    options: DetectOptions = {},
  ): Promise<Detection[] | Detection[][]> {
    if (Array.isArray(input)) {
      return super.detect(await Promise.all((input as NodeImageInput[]).map(toImage)), options);
    }
    if (input instanceof tf.Tensor && input.rank === 4) return super.detect(input as tf.Tensor4D, options);
    return super.detect(await toImage(input as NodeImageInput), options);
  }

  override async detectRows(
    input: NodeImageInput | readonly NodeImageInput[] | tf.Tensor4D,
    options: DetectOptions = {},
  ) {
    if (Array.isArray(input)) {
      return super.detectRows(await Promise.all((input as NodeImageInput[]).map(toImage)), options);
    }
    if (input instanceof tf.Tensor && input.rank === 4)
      return super.detectRows(input as tf.Tensor4D, options);
    return super.detectRows(await toImage(input as NodeImageInput), options);
  }

  override async detectTensors(
    input: NodeImageInput | readonly NodeImageInput[] | tf.Tensor4D,
    options: DetectOptions = {},
  ) {
    if (Array.isArray(input)) {
      return super.detectTensors(await Promise.all((input as NodeImageInput[]).map(toImage)), options);
    }
    if (input instanceof tf.Tensor && input.rank === 4)
      return super.detectTensors(input as tf.Tensor4D, options);
    return super.detectTensors(await toImage(input as NodeImageInput), options);
  }
}

export interface CreateOnnxDetectorOptions
  extends Omit<NodeDetectorOptions, 'labels' | 'fuse'>,
    OnnxSessionOptions,
    Pick<OnnxDetectorOptions, 'labels' | 'resample'> {
  /**
   * An exported EfficientDet `.onnx` (path or bytes) to run instead of exporting `name` with `weights`. Its
   * metadata must name the same model.
   */
  model?: string | Uint8Array;
  /** The onnxruntime module (default: onnxruntime-node). */
  ort?: OrtModule;
  /**
   * Export settings when exporting from weights (default opset 17, dynamic batch, float32). `dynamicBatch:
   * false` exports batch 1 (batches then run one image per `session.run`): onnxruntime's NCHWc layout keeps the
   * squeeze-excite products of a fixed-shape graph in its blocked format, a few % faster on the CPU.
   */
  exportOptions?: Pick<ExportOnnxOptions, 'opset' | 'fp16' | 'dynamicBatch'>;
  /** Write the exported file here (to reuse it later with `model`). */
  saveTo?: string;
}

/**
 * `createOnnxDetector('tf_efficientdet_d0', {weights})`: the detector of `createDetector` from
 * `@effdet/effdet/node`, exported to ONNX (preprocessing normalisation, network and hard-NMS post-processing in
 * the graph, dynamic batch) and run on onnxruntime. The export traces one forward pass on the active TF.js
 * backend (use wasm in Node). With `{model: 'file.onnx'}` an existing export runs without TF.js doing any work.
 */
export async function createOnnxDetector(
  name: string,
  options: CreateOnnxDetectorOptions = {},
): Promise<NodeOnnxDetector> {
  const ort = options.ort ?? (await loadOrt());
  let bytes: Uint8Array;
  if (options.model !== undefined) {
    bytes = typeof options.model === 'string' ? new Uint8Array(await readFile(options.model)) : options.model;
    const meta = readOnnxMetadata(bytes);
    check(
      meta.task === 'detection',
      () =>
        `createOnnxDetector: ${typeof options.model === 'string' ? options.model : 'the model bytes'} is not an EfficientDet export (task '${meta.task}')`,
    );
    check(meta.model === name, () => `createOnnxDetector: the ONNX file holds ${meta.model}, not ${name}`);
  } else {
    const { labels: _l, resample: _r, ort: _o, model: _m, exportOptions, saveTo, ...rest } = options;
    const det = await createDetector(name, rest);
    try {
      const ex = exportOnnx(det.model, {
        opset: exportOptions?.opset ?? 17,
        fp16: exportOptions?.fp16,
        dynamicBatch: exportOptions?.dynamicBatch ?? true,
        withPreprocess: true,
        withPostprocess: { candidates: true },
        ...(Array.isArray(options.labels) ? { labels: options.labels as string[] } : {}),
      });
      bytes = ex.bytes;
      if (saveTo) await writeFile(saveTo, bytes);
    } finally {
      det.dispose();
    }
  }
  const metadata = readOnnxMetadata(bytes);
  const session = await ort.InferenceSession.create(bytes, ortSessionOptions(options));
  try {
    return new NodeOnnxDetector(session, ort, metadata, options);
  } catch (e) {
    await session.release();
    throw e;
  }
}

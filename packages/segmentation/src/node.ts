/**
 * Node entry of @effdet/segmentation: build a model from a spec and a weights file (any format
 * `@effdet/weights` reads), segment image files, write overlay / mask PNGs.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { RgbImage } from '@effdet/effdet';
import { loadRawStateDict } from '@effdet/effdet';
import { decodeImage, encodePng } from '@effdet/effdet/node';
import { check, EffdetArgumentError } from '@effdet/layers';
import type { RawTensorMap } from '@effdet/weights';
import { openWeights } from '@effdet/weights/node';
import {
  createSegmentationModel,
  resolveArchitecture,
  type SegmentationOptions,
  smpKwargsToOptions,
} from './create.js';
import { EfficientDetSegmenter } from './effdet_head.js';
import { type ClassMask, decodeMaskPng } from './mask_png.js';
import type { SegmentationModel } from './model.js';
import {
  colorizeMask,
  type MaskPrediction,
  type OverlayOptions,
  overlayMask,
  type PredictMaskOptions,
  predictMask,
} from './predict.js';

export * from './index.js';
export type { ClassMask } from './mask_png.js';
export { decodeMaskPng } from './mask_png.js';

/** Either kind of model this package builds. */
export type AnySegmenter = SegmentationModel | EfficientDetSegmenter;

export interface LoadSegmentationModelOptions {
  /** Weights: a file or folder in any `@effdet/weights` format, or a tensor map. Default: none (random). */
  weights?: string | RawTensorMap;
  /** Output classes; default: read from the weights (`segmentation_head.0.weight` / `seg_head.head_transpose`). */
  classes?: number;
  /** More options: this package's names or smp's keyword arguments (`{"encoder_depth": 4}`). */
  options?: Record<string, unknown>;
  /** Strict loading (default true; false leaves missing tensors as initialised and skips unknown ones). */
  strict?: boolean;
}

interface Weights {
  tensors: RawTensorMap | null;
  metadata: Record<string, string>;
  shapes: Map<string, number[]>;
}

async function readWeights(w: string | RawTensorMap | undefined): Promise<Weights> {
  if (w === undefined) return { tensors: null, metadata: {}, shapes: new Map() };
  if (typeof w !== 'string') {
    return { tensors: w, metadata: {}, shapes: new Map(Object.entries(w).map(([k, t]) => [k, t.shape])) };
  }
  const reader = await openWeights(w);
  try {
    const tensors = await reader.readAll();
    return {
      tensors,
      metadata: { ...reader.metadata },
      shapes: new Map(Object.entries(tensors).map(([k, t]) => [k, t.shape])),
    };
  } finally {
    await reader.close();
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** The smp config a weights file's metadata carries (`config`: JSON with `_model_class`), or null. */
function smpConfigOf(text: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null &&
      typeof v === 'object' &&
      typeof (v as Record<string, unknown>)._model_class === 'string'
      ? (v as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Builds a segmentation model and loads its weights. `spec` is one of:
 * - `<arch>:<encoder>`: `unet:tu-tf_efficientnet_b0`, `deeplabv3plus:tu-tf_efficientnet_lite0`, ...;
 * - `efficientdet:<config>`: EfficientDet with automl's segmentation head (`efficientdet:tf_efficientdet_d0`;
 *   the detection heads are kept when the weights have them);
 * - an smp `config.json` (`save_pretrained`), or its folder (weights default to `model.safetensors` there);
 * - a folder written by `effdet train --task segment` (TF.js `model.json` whose metadata holds the smp config);
 * - empty, when the weights' metadata holds an smp `config` (`_model_class`, ...) or names `arch` and `encoder`
 *   (the fixtures do).
 */
export async function loadSegmentationModel(
  specArg: string | undefined,
  options: LoadSegmentationModelOptions = {},
): Promise<AnySegmenter> {
  const fn = 'loadSegmentationModel';
  let spec = specArg;
  let weightsPath = options.weights;
  let config: Record<string, unknown> | null = null;
  if (spec && (await isDir(spec)) && !(await exists(join(spec, 'config.json')))) {
    // a folder this package exported (TF.js model.json whose metadata holds the smp config)
    check(
      weightsPath === undefined && (await exists(join(spec, 'model.json'))),
      () =>
        `${fn}: the folder '${spec}' has neither an smp config.json nor a TF.js model.json` +
        (weightsPath === undefined ? '' : ' (with weights given, the folder must hold config.json)'),
    );
    weightsPath = spec;
    spec = undefined;
  }
  if (spec && (spec.endsWith('.json') || (await isDir(spec)))) {
    const file = spec.endsWith('.json') ? spec : join(spec, 'config.json');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new EffdetArgumentError(`${fn}: cannot read the smp config '${file}': ${(e as Error).message}`);
    }
    try {
      config = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new EffdetArgumentError(`${fn}: '${file}' is not JSON: ${(e as Error).message}`);
    }
    if (weightsPath === undefined) weightsPath = join(dirname(file), 'model.safetensors');
  }
  const w = await readWeights(weightsPath);
  if (!spec && !config && w.metadata.config) config = smpConfigOf(w.metadata.config);
  const extra = options.options ?? {};
  let model: AnySegmenter;
  if (spec?.toLowerCase().startsWith('efficientdet:')) {
    const name = spec.slice('efficientdet:'.length);
    const head = w.shapes.get('seg_head.head_transpose.weight');
    const numClasses = options.classes ?? (head ? head[1] : undefined);
    const detection = [...w.shapes.keys()].some((k) => k.startsWith('class_net.'));
    model = new EfficientDetSegmenter(name, { numClasses, detection, ...extra });
  } else {
    let arch: string;
    let kwargs: Record<string, unknown>;
    if (config) {
      arch = String(config._model_class ?? config.arch ?? '');
      kwargs = { ...config };
    } else if (spec) {
      const i = spec.indexOf(':');
      check(
        i > 0,
        () =>
          `${fn}: model spec must be '<arch>:<encoder>' (e.g. unet:tu-tf_efficientnet_b0), 'efficientdet:<config>', ` +
          `an smp config.json or its folder; got '${spec}'`,
      );
      arch = spec.slice(0, i);
      kwargs = { encoder_name: spec.slice(i + 1) };
    } else {
      check(
        w.metadata.arch && w.metadata.encoder,
        () =>
          `${fn}: no model spec, and the weights' metadata names no arch / encoder; give '<arch>:<encoder>'`,
      );
      arch = w.metadata.arch;
      kwargs = { encoder_name: w.metadata.encoder };
    }
    resolveArchitecture(arch);
    const opts = smpKwargsToOptions({ ...kwargs, ...extra }) as SegmentationOptions & Record<string, unknown>;
    const head = w.shapes.get('segmentation_head.0.weight');
    if (options.classes !== undefined) opts.classes = options.classes;
    else if (opts.classes === undefined && head) opts.classes = head[0];
    const aux = w.shapes.get('classification_head.3.weight');
    if (aux && opts.auxParams === undefined) opts.auxParams = { classes: aux[0] };
    model = createSegmentationModel(arch, opts);
  }
  try {
    if (w.tensors) loadRawStateDict(model, w.tensors, { strict: options.strict ?? true });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model.eval();
}

/** `predictMask` on an image file or encoded JPEG / PNG bytes; also returns the decoded image. */
export async function predictMaskFile(
  model: AnySegmenter,
  pathOrBytes: string | Uint8Array,
  options: PredictMaskOptions = {},
): Promise<{ image: RgbImage; prediction: MaskPrediction }> {
  const image = await decodeImage(pathOrBytes);
  return { image, prediction: await predictMask(model, image, options) };
}

/** PNG bytes of the image with the class colours blended in (background left as is). */
export function overlayPng(image: RgbImage, mask: ArrayLike<number>, options: OverlayOptions = {}): Buffer {
  return encodePng(
    overlayMask(image.data, mask, image.width, image.height, options),
    image.width,
    image.height,
  );
}

/** PNG bytes of the class map in palette colours. */
export function maskPng(
  mask: ArrayLike<number>,
  width: number,
  height: number,
  palette?: Uint8Array,
): Buffer {
  return encodePng(colorizeMask(mask, width, height, palette), width, height);
}

/** Reads a class-id mask PNG (palette index or grey value = class id); errors name the file. */
export async function readMaskFile(path: string): Promise<ClassMask> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new EffdetArgumentError(`readMaskFile: cannot read the mask '${path}': ${(e as Error).message}`);
  }
  return decodeMaskPng(bytes, `'${path}'`);
}

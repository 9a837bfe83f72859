import { loadRawStateDict } from '@effdet/effdet';
import { createSegmentationModel, type SegmentationOptions, smpKwargsToOptions } from '@effdet/segmentation';
import { type RawTensor, toFloat32 } from '@effdet/weights';
import { loadWeights, readSafetensorsFile } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';
import { type DiffRow, diffArrays } from './compare.js';
import { defaultWeightsPath, type ParityOptions, type ParityReport } from './parity.js';

/** True for a segmentation dump's metadata (smp fixtures name `arch` / `encoder` instead of `model`). */
export function isSegmentationDump(meta: Record<string, string>): boolean {
  return meta.arch !== undefined || meta.encoder !== undefined;
}

function parseKwargs(ioPath: string, text: string | undefined): Record<string, unknown> {
  if (!text) return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new Error(
      `parity: ${ioPath} has 'kwargs' metadata that is not a JSON object: ${(e as Error).message}`,
    );
  }
}

function toTensor(raw: RawTensor): tf.Tensor {
  return tf.tensor(toFloat32(raw), raw.shape, 'float32');
}

/**
 * Runs the segmentation model of an io dump (metadata `arch`, `encoder`, `kwargs` (smp keyword arguments as
 * JSON), `classes`, `weights`) on its `input` and compares `encoder.i` and `logits`, as `effdet parity` prints.
 * Weights default to the file the metadata names, next to the io file.
 */
export async function runSegmentationParity(options: ParityOptions): Promise<ParityReport> {
  const { metadata: meta, tensors: io } = await readSafetensorsFile(options.io);
  if (!isSegmentationDump(meta)) {
    throw new Error(`parity: ${options.io} is not a segmentation dump (no 'arch' / 'encoder' metadata)`);
  }
  if (!meta.arch || !meta.encoder) {
    throw new Error(
      `parity: ${options.io} needs both 'arch' and 'encoder' metadata, got ${JSON.stringify(meta)}`,
    );
  }
  if (!io.input) throw new Error(`parity: ${options.io} has no 'input' tensor`);
  const weightsPath = options.weights ?? defaultWeightsPath(options.io, meta.weights);
  const rtol = options.rtol ?? 1e-3;
  const opts = {
    ...smpKwargsToOptions(parseKwargs(options.io, meta.kwargs)),
    encoderName: meta.encoder,
  } as SegmentationOptions;
  if (meta.classes !== undefined) {
    const classes = Number(meta.classes);
    if (!Number.isInteger(classes) || classes <= 0)
      throw new Error(`parity: ${options.io} has classes '${meta.classes}', expected a positive integer`);
    opts.classes = classes;
  }
  const model = createSegmentationModel(meta.arch, opts);
  const rows: DiffRow[] = [];
  try {
    loadRawStateDict(model, await loadWeights(weightsPath));
    model.eval().fuseForInference(options.fuse ?? false);
    const input = toTensor(io.input);
    try {
      const out = model.forwardIntermediates(input);
      try {
        out.features.forEach((f, i) => {
          const ref = io[`encoder.${i}`];
          if (ref) rows.push(diffArrays(`encoder.${i}`, f.shape, f.dataSync(), toFloat32(ref), rtol));
        });
        if (io.logits) {
          rows.push(
            diffArrays('logits', out.logits.shape, out.logits.dataSync(), toFloat32(io.logits), rtol),
          );
        }
        if (io.labels && out.labels) {
          rows.push(
            diffArrays('labels', out.labels.shape, out.labels.dataSync(), toFloat32(io.labels), rtol),
          );
        }
      } finally {
        tf.dispose([
          ...out.features,
          out.decoder,
          out.logits,
          out.masks,
          ...(out.labels ? [out.labels] : []),
        ]);
      }
    } finally {
      input.dispose();
    }
  } finally {
    model.dispose();
  }
  if (rows.length === 0) throw new Error(`parity: ${options.io} holds no tensor this model produces`);
  const model_ = `${meta.arch}(${meta.encoder}, classes=${opts.classes ?? 1})`;
  return { model: model_, weights: weightsPath, rows, pass: rows.every((r) => r.pass) };
}

/** Format sniffing and format-neutral opening of weight files from bytes or a ByteSource. */
import { type ByteSource, dataView, memorySource } from './bytes.js';
import { check, WeightsFormatError } from './errors.js';
import { isLegacyPth, openPthLegacy, openPthZip, type PthOptions } from './pth.js';
import { newTensorMap, type RawTensorMap } from './raw_tensor.js';
import {
  hint,
  type NameFilter,
  selectNames,
  type TensorInfo,
  type WeightsFormat,
  type WeightsReader,
} from './reader.js';
import { openSafetensors } from './safetensors.js';
import { TABLE_MAGIC, tfEmaNames } from './tf_checkpoint.js';
import { isZip } from './zip.js';

/** Options of openWeights / loadWeights. */
export interface LoadOptions extends Omit<PthOptions, 'ema'> {
  /** Force a format instead of sniffing it. Default 'auto'. */
  format?: WeightsFormat | 'auto';
  /**
   * EMA weights: for .pth, pick `state_dict_ema` / `model_ema` (true) or the plain weights (false /
   * unset); for TF checkpoints, true applies the official rule (V reads `V/ExponentialMovingAverage`
   * when present), false drops the shadow copies, unset keeps every key as stored. safetensors and
   * TF.js files hold one set of weights, so `ema: true` is an error there.
   */
  ema?: boolean;
  /** Only these tensors (loadWeights). */
  names?: NameFilter;
}

/**
 * Guesses the format from the first bytes (at least 16) and, for TF indexes, the last 8 bytes:
 * zip -> 'pth', legacy pickle magic -> 'pth-legacy', a plausible 8-byte length followed by '{' ->
 * 'safetensors', '{' with "weightsManifest" or "modelTopology" -> 'tfjs', table magic -> 'tf-checkpoint'; else null.
 */
export function detectFormat(head: Uint8Array, fileSize: number, tail?: Uint8Array): WeightsFormat | null {
  if (isZip(head)) return 'pth';
  if (isLegacyPth(head)) return 'pth-legacy';
  if (head.length >= 9 && head[8] === 0x7b) {
    const n = dataView(head).getBigUint64(0, true);
    if (n >= 2n && n <= BigInt(fileSize - 8)) return 'safetensors';
  }
  let i = 0;
  while (i < head.length && (head[i] === 0x20 || head[i] === 0x0a || head[i] === 0x0d || head[i] === 0x09))
    i++;
  if (head[i] === 0x7b) {
    // tfjs-converter writes a (possibly long) modelTopology before the manifest.
    const text = new TextDecoder().decode(head);
    if (text.includes('"weightsManifest"') || text.includes('"modelTopology"')) return 'tfjs';
  }
  if (
    tail !== undefined &&
    tail.length >= 8 &&
    dataView(tail).getBigUint64(tail.length - 8, true) === TABLE_MAGIC
  ) {
    return 'tf-checkpoint';
  }
  return null;
}

/** A reader whose names are renamed: `mapping` is output name -> stored name. */
export function renameReader(reader: WeightsReader, mapping: Map<string, string>): WeightsReader {
  const info = new Map(reader.entries.map((e) => [e.name, e]));
  const entries: TensorInfo[] = [];
  for (const [out, stored] of mapping) {
    const e = info.get(stored);
    if (e !== undefined) entries.push({ name: out, dtype: e.dtype, shape: [...e.shape] });
  }
  const names = entries.map((e) => e.name);
  const read = (name: string) => {
    const stored = mapping.get(name);
    if (stored === undefined || !info.has(stored)) {
      return Promise.reject(new WeightsFormatError(`readWeights: no tensor named '${name}'${hint(names)}`));
    }
    return reader.read(stored);
  };
  return {
    format: reader.format,
    metadata: reader.metadata,
    entries,
    has: (name) => info.has(mapping.get(name) ?? '\u0000'),
    read,
    async readAll(filter?: NameFilter) {
      const out = newTensorMap();
      for (const name of selectNames('readWeights', entries, filter)) out[name] = await read(name);
      return out;
    },
    close: () => reader.close(),
  };
}

/** Applies the `ema` option to a TF checkpoint reader, refuses it where it has no meaning. */
export function applyEma(reader: WeightsReader, ema: boolean | undefined, fn: string): WeightsReader {
  if (ema === undefined || reader.format === 'pth' || reader.format === 'pth-legacy') return reader;
  if (reader.format === 'tf-checkpoint') {
    const names = reader.entries.map((e) => e.name);
    if (ema) {
      check(
        names.some((n) => n.endsWith('/ExponentialMovingAverage')),
        () => `${fn}: ema requested but the checkpoint has no '/ExponentialMovingAverage' variables`,
      );
    }
    return renameReader(reader, tfEmaNames(names, ema));
  }
  check(
    !ema,
    () => `${fn}: ema applies to .pth and TF checkpoints; a ${reader.format} file holds one set of weights`,
  );
  return reader;
}

/**
 * Opens weights from a ByteSource (bytes in memory, a file, HTTP ranges): safetensors and both
 * .pth formats. TF checkpoints need their data shards and TF.js model.json its shard files: use
 * openTfCheckpointIndex / openTfjs (or the Node entry's openWeights with a path).
 */
export async function openWeightsSource(
  source: ByteSource,
  options: LoadOptions = {},
): Promise<WeightsReader> {
  const fn = 'openWeights';
  let format = options.format ?? 'auto';
  if (format === 'auto') {
    const head = await source.read(0, Math.min(source.size, 4096));
    const tail = source.size >= 8 ? await source.read(source.size - 8, 8) : undefined;
    const found = detectFormat(head, source.size, tail);
    if (found === null) {
      throw new WeightsFormatError(
        `${fn}: unrecognised weights format (first bytes ${[...head.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}); expected safetensors, .pth, a TF checkpoint or a TF.js model.json`,
      );
    }
    format = found;
  }
  const { ema, ...rest } = options;
  let reader: WeightsReader;
  switch (format) {
    case 'safetensors':
      reader = await openSafetensors(source);
      break;
    case 'pth':
      reader = await openPthZip(source, { ...rest, ema });
      break;
    case 'pth-legacy':
      reader = await openPthLegacy(source, { ...rest, ema });
      break;
    case 'tf-checkpoint':
      throw new WeightsFormatError(
        `${fn}: a TF checkpoint index needs its data shards: use openTfCheckpointIndex(indexBytes, readShard) or a path`,
      );
    case 'tfjs':
      throw new WeightsFormatError(
        `${fn}: a TF.js model.json needs its shard files: use openTfjs(modelJson, loadShard) or a path`,
      );
    default:
      throw new WeightsFormatError(`${fn}: unknown format '${String(format)}'`);
  }
  return applyEma(reader, ema, fn);
}

/** Reads every tensor (or `options.names`) of an in-memory safetensors / .pth file. */
export async function parseWeights(bytes: Uint8Array, options: LoadOptions = {}): Promise<RawTensorMap> {
  const reader = await openWeightsSource(memorySource(bytes), options);
  return reader.readAll(options.names);
}

/**
 * Node-only entry (`@effdet/weights/node`): file-system access on top of the browser-safe readers.
 * Files are read by range (only the header and the tensors asked for), never copied whole.
 */
import { constants as bufferConstants } from 'node:buffer';
import { type FileHandle, mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { inflateRaw, type ZlibOptions } from 'node:zlib';
import { type ByteSource, memorySource } from './bytes.js';
import { check, WeightsFormatError } from './errors.js';
import { applyEma, detectFormat, type LoadOptions, openWeightsSource } from './load.js';
import { openPth, type PthOptions } from './pth.js';
import type { RawTensorMap } from './raw_tensor.js';
import type { NameFilter, WeightsFormat, WeightsReader } from './reader.js';
import { openSafetensors, type SafetensorsContents, writeSafetensors } from './safetensors.js';
import {
  openTfCheckpointIndex,
  parseCheckpointState,
  type TfCheckpoint,
  tfShardPath,
} from './tf_checkpoint.js';
import {
  type EncodeTfjsOptions,
  encodeTfjs,
  openTfjs,
  parseModelJson,
  stringifyModelJson,
  type TfjsModelJson,
} from './tfjs_format.js';
import type { InflateRaw } from './zip.js';

const inflateRawAsync = promisify(inflateRaw) as (data: Uint8Array, options: ZlibOptions) => Promise<Buffer>;

/**
 * zlib-based raw inflate for deflated zip entries. Output beyond the declared `size` is an error
 * (zlib stops there instead of inflating a bomb); zlib's errors are reported by the zip reader.
 */
export const nodeInflateRaw: InflateRaw = async (data, size) => {
  const maxOutputLength = Math.max(1, Math.min(size, bufferConstants.MAX_LENGTH));
  try {
    return new Uint8Array(await inflateRawAsync(data, { maxOutputLength }));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw new WeightsFormatError(`readZip: inflated data exceeds the ${size} bytes declared`);
    throw e;
  }
};

/** Largest single fs read (Node caps one read at 2 GiB). */
const MAX_READ = 1 << 30;

async function readExactly(
  fh: FileHandle,
  path: string,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(out, done, Math.min(MAX_READ, length - done), offset + done);
    if (bytesRead === 0) {
      throw new WeightsFormatError(
        `readFile: ${path} ended after ${offset + done} bytes, expected at least ${offset + length} (truncated?)`,
      );
    }
    done += bytesRead;
  }
  return out;
}

/** A ByteSource over a file: every read is one positioned read into a fresh buffer. Close it when done. */
export async function fileSource(path: string): Promise<ByteSource> {
  const fh = await open(path, 'r');
  let size: number;
  try {
    size = (await fh.stat()).size;
  } catch (e) {
    await fh.close();
    throw e;
  }
  let closed = false;
  return {
    size,
    read: async (offset, length) => {
      check(!closed, () => `fileSource: ${path} is already closed`);
      check(
        Number.isSafeInteger(offset) &&
          Number.isSafeInteger(length) &&
          offset >= 0 &&
          length >= 0 &&
          offset + length <= size,
        () => `fileSource: range [${offset}, ${offset + length}) exceeds ${path} (${size} bytes)`,
      );
      return readExactly(fh, path, offset, length);
    },
    close: async () => {
      if (!closed) {
        closed = true;
        await fh.close();
      }
    },
  };
}

/** Runs `fn` with a reader and closes it afterwards (also on error). */
async function using<T>(reader: WeightsReader, fn: (r: WeightsReader) => Promise<T>): Promise<T> {
  try {
    return await fn(reader);
  } finally {
    await reader.close();
  }
}

/** Opens a reader over a file source; the source is closed again when opening fails. */
async function openOver(
  path: string,
  open: (s: ByteSource) => Promise<WeightsReader>,
): Promise<WeightsReader> {
  const source = await fileSource(path);
  try {
    return await open(source);
  } catch (e) {
    await source.close?.();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// safetensors

/** Lazy safetensors reader over a file (header read up front, tensors by range). Close it when done. */
export function openSafetensorsFile(path: string): Promise<WeightsReader> {
  return openOver(path, openSafetensors);
}

/**
 * Reads a safetensors file: 8 bytes + header, then only the selected tensors (all of them with one
 * read of the data section).
 */
export async function readSafetensorsFile(
  path: string,
  options: { names?: NameFilter } = {},
): Promise<SafetensorsContents> {
  return using(await openSafetensorsFile(path), async (r) => ({
    metadata: r.metadata,
    tensors: await r.readAll(options.names),
  }));
}

/** Writes a safetensors file (creating the folder). */
export async function writeSafetensorsFile(
  path: string,
  tensors: RawTensorMap,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = writeSafetensors(tensors, metadata);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
}

// ---------------------------------------------------------------------------------------------
// PyTorch

/** Lazy reader over a .pth file (zip or legacy; deflated entries inflate with zlib). Close it when done. */
export function openPthFile(path: string, options: PthOptions = {}): Promise<WeightsReader> {
  return openOver(path, (s) => openPth(s, { inflateRaw: nodeInflateRaw, ...options }));
}

/** Reads the tensors of a .pth file (see PthOptions for EMA, prefixes and unknown globals). */
export async function readPthFile(
  path: string,
  options: PthOptions & { names?: NameFilter } = {},
): Promise<RawTensorMap> {
  return using(await openPthFile(path, options), (r) => r.readAll(options.names));
}

// ---------------------------------------------------------------------------------------------
// TensorFlow checkpoints

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The checkpoint prefix for a directory (via its `checkpoint` file, else its single `*.index`),
 * a `PREFIX.index` or `PREFIX.data-*` path, or a prefix.
 */
export async function resolveTfCheckpointPrefix(pathOrDir: string): Promise<string> {
  const fn = 'openTfCheckpoint';
  if (await isDirectory(pathOrDir)) {
    const state = join(pathOrDir, 'checkpoint');
    if (await exists(state)) {
      const p = parseCheckpointState(await readFile(state, 'utf8'));
      const prefix = isAbsolute(p) ? p : join(pathOrDir, p);
      if (await exists(`${prefix}.index`)) return prefix;
      // Checkpoints moved after writing keep a stale absolute path: fall back to the base name here.
      const local = join(pathOrDir, basename(p));
      if (await exists(`${local}.index`)) return local;
      throw new WeightsFormatError(`${fn}: ${state} points to '${p}', but ${prefix}.index does not exist`);
    }
    const indexes = (await readdir(pathOrDir)).filter((f) => f.endsWith('.index'));
    check(
      indexes.length === 1,
      () =>
        `${fn}: ${pathOrDir} has no 'checkpoint' file and ${indexes.length} *.index files (need exactly one)`,
    );
    return join(pathOrDir, indexes[0].slice(0, -'.index'.length));
  }
  if (pathOrDir.endsWith('.index')) return pathOrDir.slice(0, -'.index'.length);
  const m = /^(.*)\.data-\d{5}-of-\d{5}$/.exec(pathOrDir);
  if (m) return m[1];
  if (await exists(`${pathOrDir}.index`)) return pathOrDir;
  throw new WeightsFormatError(
    `${fn}: ${pathOrDir} is neither a checkpoint directory, a .index file nor a prefix with a .index`,
  );
}

/**
 * Opens a TF checkpoint (directory, prefix, `.index` or data shard path): parses the index; data
 * shards open on the first read of a tensor stored in them, so a missing shard only fails those
 * tensors. Close it when done.
 */
export async function openTfCheckpoint(
  pathOrDir: string,
  options: { verifyCrc?: boolean } = {},
): Promise<TfCheckpoint> {
  const prefix = await resolveTfCheckpointPrefix(pathOrDir);
  const index = await readFile(`${prefix}.index`);
  const shards = new Map<number, Promise<ByteSource>>();
  let numShards = 1;
  const shard = (id: number): Promise<ByteSource> => {
    let s = shards.get(id);
    if (s === undefined) {
      const path = tfShardPath(prefix, id, numShards);
      s = fileSource(path).catch((e: NodeJS.ErrnoException) => {
        shards.delete(id);
        throw new WeightsFormatError(
          `openTfCheckpoint: data shard ${path} cannot be opened (${e.code ?? e.message})`,
        );
      });
      shards.set(id, s);
    }
    return s;
  };
  const ckpt = openTfCheckpointIndex(
    new Uint8Array(index.buffer, index.byteOffset, index.byteLength),
    async (id, offset, length) => {
      const src = await shard(id);
      check(
        offset + length <= src.size,
        () =>
          `openTfCheckpoint: range [${offset}, ${offset + length}) exceeds ${tfShardPath(prefix, id, numShards)} (${src.size} bytes; truncated?)`,
      );
      return src.read(offset, length);
    },
    {
      verifyCrc: options.verifyCrc,
      prefix,
      close: async () => {
        const all = [...shards.values()];
        shards.clear();
        for (const p of all) {
          try {
            await (await p).close?.();
          } catch {
            // a shard that failed to open has nothing to close
          }
        }
      },
    },
  );
  numShards = ckpt.header.numShards;
  return ckpt;
}

// ---------------------------------------------------------------------------------------------
// TF.js

function modelJsonPath(path: string): Promise<string> {
  return isDirectory(path).then((dir) => (dir ? join(path, 'model.json') : path));
}

/** Resolves a manifest path inside the model folder; absolute paths and `..` escapes are refused. */
function shardPathIn(dir: string, p: string): string {
  const full = normalize(join(dir, p));
  check(
    !isAbsolute(p) && (full === dir || full.startsWith(dir.endsWith(sep) ? dir : dir + sep)),
    () => `readTfjs: shard path '${p}' leaves the model folder ${dir}`,
  );
  return full;
}

/** Opens a TF.js model.json (or its folder); shards load from beside it on the first read. */
export async function openTfjsFile(path: string): Promise<WeightsReader & { modelJson: TfjsModelJson }> {
  const file = await modelJsonPath(path);
  const json = parseModelJson(new Uint8Array(await readFile(file)));
  const dir = resolve(dirname(file));
  return openTfjs(json, async (p) => {
    const full = shardPathIn(dir, p);
    try {
      return new Uint8Array(await readFile(full));
    } catch (e) {
      throw new WeightsFormatError(
        `readTfjs: shard ${full} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
  });
}

/** Reads every weight of a TF.js model.json (dequantised to float32). */
export async function readTfjsFile(
  path: string,
  options: { names?: NameFilter } = {},
): Promise<RawTensorMap> {
  return using(await openTfjsFile(path), (r) => r.readAll(options.names));
}

/**
 * Writes TF.js weights: `model.json` and its shards into a folder (or to a path ending in .json,
 * shards beside it). Returns the paths written.
 */
export async function writeTfjsFiles(
  path: string,
  tensors: RawTensorMap,
  options: EncodeTfjsOptions = {},
): Promise<string[]> {
  const jsonPath = path.endsWith('.json') ? path : join(path, 'model.json');
  const dir = dirname(jsonPath);
  const { modelJson, shards } = encodeTfjs(tensors, options);
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const s of shards) {
    const p = join(dir, s.path);
    await writeFile(p, s.data);
    written.push(p);
  }
  await writeFile(jsonPath, stringifyModelJson(modelJson));
  written.push(jsonPath);
  return written;
}

// ---------------------------------------------------------------------------------------------
// Format-neutral

/**
 * The format of a path: a folder with `model.json` -> 'tfjs', a folder with a `checkpoint` file or
 * `*.index` -> 'tf-checkpoint', a TF prefix, else sniffed from the file's first and last bytes.
 */
export async function detectWeightsFormat(path: string): Promise<WeightsFormat> {
  const fn = 'detectWeightsFormat';
  if (await isDirectory(path)) {
    if (await exists(join(path, 'model.json'))) return 'tfjs';
    return 'tf-checkpoint';
  }
  if (!(await exists(path))) {
    if (await exists(`${path}.index`)) return 'tf-checkpoint';
    throw new WeightsFormatError(`${fn}: ${path} does not exist`);
  }
  if (/\.data-\d{5}-of-\d{5}$/.test(path)) return 'tf-checkpoint';
  if (path.endsWith('.json')) return 'tfjs';
  const src = await fileSource(path);
  try {
    const head = await src.read(0, Math.min(src.size, 4096));
    const tail = src.size >= 8 ? await src.read(src.size - 8, 8) : undefined;
    const f = detectFormat(head, src.size, tail);
    if (f === null) {
      throw new WeightsFormatError(
        `${fn}: ${path} is not a recognised weights file (safetensors, .pth, TF checkpoint .index, TF.js model.json)`,
      );
    }
    return f;
  } finally {
    await src.close?.();
  }
}

/**
 * Opens any supported weights (path or bytes) as a lazy reader; `options.format` skips sniffing.
 * See LoadOptions for `ema`. Close the reader when done.
 */
export async function openWeights(
  pathOrBytes: string | Uint8Array,
  options: LoadOptions = {},
): Promise<WeightsReader> {
  const fn = 'openWeights';
  const { ema, ...rest } = options;
  if (typeof pathOrBytes !== 'string') {
    return openWeightsSource(memorySource(pathOrBytes), { inflateRaw: nodeInflateRaw, ...options });
  }
  const format =
    options.format === undefined || options.format === 'auto'
      ? await detectWeightsFormat(pathOrBytes)
      : options.format;
  let reader: WeightsReader;
  switch (format) {
    case 'tf-checkpoint':
      reader = await openTfCheckpoint(pathOrBytes, { verifyCrc: options.verifyCrc });
      break;
    case 'tfjs':
      reader = await openTfjsFile(pathOrBytes);
      break;
    case 'safetensors':
    case 'pth':
    case 'pth-legacy':
      return openOver(pathOrBytes, (s) =>
        openWeightsSource(s, { inflateRaw: nodeInflateRaw, ...rest, ema, format }),
      );
    default:
      throw new WeightsFormatError(`${fn}: unknown format '${String(format)}'`);
  }
  try {
    return applyEma(reader, ema, fn);
  } catch (e) {
    await reader.close();
    throw e;
  }
}

/**
 * Loads every tensor (or `options.names`) from any supported weights file or bytes, as RawTensors.
 * Use toTfTensors to make tf.Tensors of them.
 */
export async function loadWeights(
  pathOrBytes: string | Uint8Array,
  options: LoadOptions = {},
): Promise<RawTensorMap> {
  return using(await openWeights(pathOrBytes, options), (r) => r.readAll(options.names));
}

/** Options of saveWeights. */
export interface SaveOptions extends EncodeTfjsOptions {
  /**
   * Default: 'safetensors' for a `.safetensors` path, 'tfjs' for a `.json` path, an existing folder
   * or a name without extension (a folder to create); other extensions need an explicit format.
   */
  format?: 'safetensors' | 'tfjs';
  /** String metadata: safetensors `__metadata__`, or TF.js userDefinedMetadata entries. */
  metadata?: Record<string, string>;
}

/** Saves tensors as safetensors or TF.js (model.json + shards); returns the paths written. */
export async function saveWeights(
  tensors: RawTensorMap,
  path: string,
  options: SaveOptions = {},
): Promise<string[]> {
  const folderLike = path.endsWith('.json') || !basename(path).includes('.') || (await isDirectory(path));
  const format =
    options.format ?? (path.endsWith('.safetensors') ? 'safetensors' : folderLike ? 'tfjs' : undefined);
  check(
    format !== undefined,
    () =>
      `saveWeights: cannot tell the format of '${path}'; pass format 'safetensors' or 'tfjs' (or use a .safetensors / .json path)`,
  );
  if (format === 'safetensors') {
    await writeSafetensorsFile(path, tensors, options.metadata);
    return [path];
  }
  check(
    format === 'tfjs',
    () => `saveWeights: format must be 'safetensors' or 'tfjs', got '${String(format)}'`,
  );
  const { metadata: _metadata, format: _format, ...encode } = options;
  return writeTfjsFiles(path, tensors, {
    ...encode,
    userDefinedMetadata: { ...(options.metadata ?? {}), ...(encode.userDefinedMetadata ?? {}) },
  });
}

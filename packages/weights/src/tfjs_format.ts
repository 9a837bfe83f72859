/**
 * The TF.js weights format: `model.json` with a `weightsManifest` (groups of shard paths and weight
 * specs) and binary shards holding the weights back to back in manifest order, cut at a fixed
 * shard size (a weight may straddle two shards). Optional quantisation as tfjs-converter writes it:
 * float16 (`quantization: {dtype: 'float16'}`) or affine uint8 / uint16 (`{dtype, scale, min}`,
 * value = q * scale + min), for float32 weights only.
 */
import { concatBytes, dataView, decodeUtf8, encodeUtf8 } from './bytes.js';
import { brief, check, WeightsFormatError } from './errors.js';
import {
  checkRawTensor,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  fromStrings,
  fromTypedArray,
  newTensorMap,
  numElements,
  type RawTensor,
  type RawTensorMap,
  tfDTypeOf,
  toFloat32,
  toInt32,
} from './raw_tensor.js';
import { hint, type NameFilter, selectNames, type TensorInfo, type WeightsReader } from './reader.js';

/** Quantisation of one weight in a manifest. */
export interface TfjsQuantization {
  dtype: 'uint8' | 'uint16' | 'float16';
  scale?: number;
  min?: number;
  original_dtype?: string;
}

/** One weight of a manifest group. */
export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool' | 'string';
  quantization?: TfjsQuantization;
}

export interface TfjsManifestGroup {
  paths: string[];
  weights: TfjsWeightSpec[];
}

/** The parts of model.json this package writes and reads. */
export interface TfjsModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology?: unknown;
  weightsManifest: TfjsManifestGroup[];
  userDefinedMetadata?: Record<string, unknown>;
}

/** model.json plus its shard files, ready to be written or served. */
export interface TfjsArtifacts {
  modelJson: TfjsModelJson;
  shards: { path: string; data: Uint8Array }[];
}

export interface EncodeTfjsOptions {
  /** Shard size in bytes. Default: 4 MiB (4194304, as tfjs-converter). */
  shardBytes?: number;
  /** Quantise float weights. Default: none (float32). */
  quantization?: 'float16' | 'uint8' | 'uint16';
  /** Which float weights to quantise. Default: all. */
  quantize?: (name: string) => boolean;
  /** Stored as `userDefinedMetadata.model`. */
  modelName?: string;
  /** Stored as `userDefinedMetadata.config` (any JSON value). */
  config?: unknown;
  /** More userDefinedMetadata entries (JSON values). */
  userDefinedMetadata?: Record<string, unknown>;
  /** The model.json `format` field. Default 'effdet-weights' (a weights-only file: no modelTopology). */
  modelFormat?: string;
  /** `generatedBy` field. Default 'effdet-ts'. */
  generatedBy?: string;
  /** `convertedBy` field. Default '@effdet/weights 0.1.0'. */
  convertedBy?: string;
  /** Shard file name prefix. Default 'group1-shard'. */
  shardPrefix?: string;
}

export const TFJS_DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;

/** Affine quantisation with zero exactly representable: returns codes, scale and (nudged) min. */
function quantizeAffine(
  values: Float32Array,
  bits: 8 | 16,
  name: string,
): { codes: Uint8Array | Uint16Array; scale: number; min: number } {
  const qmax = bits === 8 ? 255 : 65535;
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v))
      throw new WeightsFormatError(
        `encodeTfjs: weight '${name}' holds ${v}, which uint${bits} quantisation cannot represent`,
      );
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  let scale = (hi - lo) / qmax;
  let min = 0;
  if (scale === 0) scale = 1;
  else min = -Math.round(-lo / scale) * scale;
  const codes = bits === 8 ? new Uint8Array(values.length) : new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const q = Math.round((values[i] - min) / scale);
    codes[i] = Math.min(qmax, Math.max(0, q));
  }
  return { codes, scale, min };
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The stored bytes and spec of one tensor. */
function encodeWeight(
  name: string,
  raw: RawTensor,
  options: EncodeTfjsOptions,
): { spec: TfjsWeightSpec; data: Uint8Array } {
  const what = `encodeTfjs: tensor '${name}'`;
  checkRawTensor(raw, what);
  const shape = [...raw.shape];
  const dtype = tfDTypeOf(raw.dtype);
  if (dtype === 'string') {
    const strings = raw.strings as Uint8Array[];
    const parts: Uint8Array[] = [];
    for (const s of strings) {
      const len = new Uint8Array(4);
      dataView(len).setUint32(0, s.byteLength, true);
      parts.push(len, s);
    }
    return { spec: { name, shape, dtype }, data: concatBytes(parts) };
  }
  if (dtype === 'bool') return { spec: { name, shape, dtype }, data: raw.data };
  if (dtype === 'int32') return { spec: { name, shape, dtype }, data: bytesOf(toInt32(raw, what)) };
  const q = options.quantization;
  if (q === undefined || (options.quantize !== undefined && !options.quantize(name))) {
    return {
      spec: { name, shape, dtype },
      data: raw.dtype === 'float32' ? raw.data : bytesOf(toFloat32(raw)),
    };
  }
  if (q === 'float16') {
    // float16 sources keep their exact bits; others round to nearest even.
    const bits =
      raw.dtype === 'float16'
        ? raw.data
        : bytesOf(Uint16Array.from(toFloat32(raw), (v) => float32ToFloat16Bits(v)));
    return { spec: { name, shape, dtype, quantization: { dtype: 'float16' } }, data: bits };
  }
  check(
    q === 'uint8' || q === 'uint16',
    () => `encodeTfjs: quantization must be 'float16', 'uint8' or 'uint16', got ${brief(q)}`,
  );
  const { codes, scale, min } = quantizeAffine(toFloat32(raw), q === 'uint8' ? 8 : 16, name);
  return { spec: { name, shape, dtype, quantization: { dtype: q, scale, min } }, data: bytesOf(codes) };
}

/**
 * Encodes tensors as TF.js weights: one manifest group, the bytes of every weight concatenated in
 * map order and cut into shards of `shardBytes`. float16 / bfloat16 / float64 are stored as float32
 * (or quantised), int64 / int16 / int8 / uint8 as int32 (int64 range-checked), bool as bool.
 */
export function encodeTfjs(tensors: RawTensorMap, options: EncodeTfjsOptions = {}): TfjsArtifacts {
  const shardBytes = options.shardBytes ?? TFJS_DEFAULT_SHARD_BYTES;
  check(
    Number.isSafeInteger(shardBytes) && shardBytes >= 1,
    () => `encodeTfjs: shardBytes must be a positive integer, got ${shardBytes}`,
  );
  const encoded = Object.keys(tensors).map((name) => encodeWeight(name, tensors[name], options));
  const all = concatBytes(encoded.map((e) => e.data));
  const count = Math.max(1, Math.ceil(all.byteLength / shardBytes));
  const prefix = options.shardPrefix ?? 'group1-shard';
  const shards: TfjsArtifacts['shards'] = [];
  for (let i = 0; i < count; i++) {
    shards.push({
      path: `${prefix}${i + 1}of${count}.bin`,
      data: all.subarray(i * shardBytes, Math.min(all.byteLength, (i + 1) * shardBytes)),
    });
  }
  const userDefinedMetadata: Record<string, unknown> = {};
  if (options.modelName !== undefined) userDefinedMetadata.model = options.modelName;
  if (options.config !== undefined) userDefinedMetadata.config = options.config;
  Object.assign(userDefinedMetadata, options.userDefinedMetadata ?? {});
  const modelJson: TfjsModelJson = {
    format: options.modelFormat ?? 'effdet-weights',
    generatedBy: options.generatedBy ?? 'effdet-ts',
    convertedBy: options.convertedBy ?? '@effdet/weights 0.1.0',
    weightsManifest: [{ paths: shards.map((s) => s.path), weights: encoded.map((e) => e.spec) }],
  };
  if (Object.keys(userDefinedMetadata).length > 0) modelJson.userDefinedMetadata = userDefinedMetadata;
  return { modelJson, shards };
}

const TFJS_DTYPES = ['float32', 'int32', 'bool', 'string'];

/** A shard path with `.`, `..` and empty segments resolved (`./a//b.bin` -> `a/b.bin`), for comparisons. */
function canonicalShardPath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split(/[/\\]/)) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..' && out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else out.push(seg);
  }
  return (p.startsWith('/') ? '/' : '') + out.join('/');
}

/** Validates the parts of a parsed model.json that the reader relies on. */
export function checkTfjsModelJson(json: unknown): TfjsModelJson {
  const fn = 'readTfjs';
  check(
    typeof json === 'object' && json !== null && !Array.isArray(json),
    () => `${fn}: model.json must be a JSON object`,
  );
  const m = json as Record<string, unknown>;
  check(Array.isArray(m.weightsManifest), () => `${fn}: model.json has no weightsManifest array`);
  const seen = new Set<string>();
  const seenPaths = new Set<string>();
  for (const [g, group] of (m.weightsManifest as unknown[]).entries()) {
    const gw = `${fn}: weightsManifest[${g}]`;
    check(typeof group === 'object' && group !== null, () => `${gw} must be an object {paths, weights}`);
    const { paths, weights } = group as Record<string, unknown>;
    check(
      Array.isArray(paths) && paths.every((p) => typeof p === 'string'),
      () => `${gw}.paths must be an array of strings, got ${brief(paths)}`,
    );
    // Each shard belongs to one group once: a path listed again (or an alias like './x') would be
    // loaded and concatenated again (a short model.json could count one shard thousands of times).
    for (const p of paths as string[]) {
      const key = canonicalShardPath(p);
      check(!seenPaths.has(key), () => `${gw}.paths: shard '${p}' is listed twice in the manifest`);
      seenPaths.add(key);
    }
    check(Array.isArray(weights), () => `${gw}.weights must be an array`);
    for (const w of weights as unknown[]) {
      check(typeof w === 'object' && w !== null, () => `${gw}.weights holds a non-object ${brief(w)}`);
      const { name, shape, dtype, quantization } = w as Record<string, unknown>;
      check(typeof name === 'string', () => `${gw}: weight name must be a string, got ${brief(name)}`);
      check(!seen.has(name), () => `${fn}: weight '${name}' appears twice in the manifest`);
      seen.add(name);
      numElements(shape as number[], `${fn}: weight '${name}' shape`);
      check(
        TFJS_DTYPES.includes(dtype as string),
        () => `${fn}: weight '${name}' has dtype ${brief(dtype)} (one of ${TFJS_DTYPES.join(', ')})`,
      );
      if (quantization !== undefined) {
        const q = quantization as Record<string, unknown>;
        check(
          typeof q === 'object' && q !== null && ['uint8', 'uint16', 'float16'].includes(q.dtype as string),
          () =>
            `${fn}: weight '${name}' has quantization ${brief(quantization)} (dtype uint8, uint16 or float16)`,
        );
        check(
          dtype === 'float32' || (dtype === 'int32' && q.dtype !== 'float16'),
          () => `${fn}: weight '${name}': ${dtype} cannot be ${q.dtype}-quantised`,
        );
        if (q.dtype !== 'float16') {
          check(
            typeof q.scale === 'number' && typeof q.min === 'number',
            () => `${fn}: weight '${name}' with ${q.dtype} quantization needs numeric scale and min`,
          );
        }
      }
    }
  }
  return m as unknown as TfjsModelJson;
}

/** Decodes the concatenated bytes of one manifest group; the byte count must match the specs exactly. */
export function decodeTfjsWeights(bytes: Uint8Array, specs: readonly TfjsWeightSpec[]): RawTensorMap {
  const fn = 'readTfjs';
  const out = newTensorMap();
  let at = 0;
  const take = (n: number, name: string): Uint8Array => {
    check(
      at + n <= bytes.byteLength,
      () =>
        `${fn}: weight '${name}' needs bytes [${at}, ${at + n}) but the shards hold ${bytes.byteLength} (truncated?)`,
    );
    const v = bytes.subarray(at, at + n);
    at += n;
    return v;
  };
  for (const spec of specs) {
    const n = numElements(spec.shape, `${fn}: weight '${spec.name}'`);
    const shape = [...spec.shape];
    let raw: RawTensor;
    if (spec.dtype === 'string') {
      const strings: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        const len = dataView(take(4, spec.name)).getUint32(0, true);
        strings.push(take(len, spec.name));
      }
      raw = fromStrings(strings, shape);
    } else if (spec.quantization !== undefined) {
      const q = spec.quantization;
      const width = q.dtype === 'uint8' ? 1 : 2;
      const b = take(n * width, spec.name).slice();
      let values: Float32Array;
      if (q.dtype === 'float16') {
        values = float16BitsToFloat32(new Uint16Array(b.buffer, 0, n));
      } else {
        const codes = q.dtype === 'uint8' ? b : new Uint16Array(b.buffer, 0, n);
        values = new Float32Array(n);
        const scale = q.scale as number;
        const min = q.min as number;
        for (let i = 0; i < n; i++) values[i] = codes[i] * scale + min;
      }
      raw =
        spec.dtype === 'int32'
          ? fromTypedArray(
              Int32Array.from(values, (v) => Math.round(v)),
              shape,
            )
          : fromTypedArray(values, shape);
    } else if (spec.dtype === 'bool') {
      raw = { dtype: 'bool', shape, data: take(n, spec.name) };
    } else {
      raw = { dtype: spec.dtype, shape, data: take(4 * n, spec.name) };
    }
    out[spec.name] = raw;
  }
  check(
    at === bytes.byteLength,
    () => `${fn}: the shards hold ${bytes.byteLength} bytes but the weights use ${at}`,
  );
  return out;
}

/** Loads one shard by its manifest path (relative to model.json). */
export type ShardLoader = (path: string) => Promise<Uint8Array>;

/** The userDefinedMetadata as strings (JSON for non-string values). */
function stringMetadata(m: TfjsModelJson): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(m.userDefinedMetadata ?? {})) {
    if (typeof v === 'string') {
      out[k] = v;
      continue;
    }
    try {
      out[k] = JSON.stringify(v);
    } catch (e) {
      // JSON.parse reads any depth, JSON.stringify recurses: a value nested thousands deep overflows it.
      throw new WeightsFormatError(
        `readTfjs: userDefinedMetadata '${k}' cannot be converted to a JSON string (${(e as Error)?.message ?? e}; nested too deeply?)`,
      );
    }
  }
  return out;
}

/**
 * A reader over a parsed model.json and a shard loader (file system, fetch, memory). A group's
 * shards are loaded once, the first time one of its weights is read, and kept by the reader.
 */
export function openTfjs(
  modelJson: unknown,
  loadShard: ShardLoader,
  close?: () => Promise<void>,
): WeightsReader & { modelJson: TfjsModelJson } {
  const m = checkTfjsModelJson(modelJson);
  const groupOf = new Map<string, number>();
  const entries: TensorInfo[] = [];
  m.weightsManifest.forEach((g, i) => {
    for (const w of g.weights) {
      groupOf.set(w.name, i);
      entries.push({ name: w.name, dtype: w.dtype, shape: [...w.shape] });
    }
  });
  const names = entries.map((e) => e.name);
  const groups = new Map<number, Promise<RawTensorMap>>();
  const loadGroup = (i: number): Promise<RawTensorMap> => {
    let p = groups.get(i);
    if (p === undefined) {
      const g = m.weightsManifest[i];
      p = Promise.all(g.paths.map((path) => loadShard(path))).then((parts) =>
        decodeTfjsWeights(concatBytes(parts), g.weights),
      );
      groups.set(i, p);
    }
    return p;
  };
  const read = async (name: string): Promise<RawTensor> => {
    const g = groupOf.get(name);
    if (g === undefined) throw new WeightsFormatError(`readTfjs: no weight named '${name}'${hint(names)}`);
    return (await loadGroup(g))[name];
  };
  return {
    format: 'tfjs',
    modelJson: m,
    metadata: stringMetadata(m),
    entries,
    has: (name) => groupOf.has(name),
    read,
    async readAll(filter?: NameFilter) {
      const out = newTensorMap();
      for (const name of selectNames('readTfjs', entries, filter)) out[name] = await read(name);
      return out;
    },
    close: async () => {
      groups.clear();
      await close?.();
    },
  };
}

/** Decodes in-memory artifacts (model.json object or text, shards by path). */
export async function readTfjsArtifacts(
  modelJson: TfjsModelJson | string | Uint8Array,
  shards: Record<string, Uint8Array> | Map<string, Uint8Array>,
): Promise<RawTensorMap> {
  const json = parseModelJson(modelJson);
  const get = (p: string): Uint8Array | undefined =>
    shards instanceof Map ? shards.get(p) : Object.hasOwn(shards, p) ? shards[p] : undefined;
  const reader = openTfjs(json, async (p) => {
    const b = get(p);
    if (b === undefined) throw new WeightsFormatError(`readTfjs: shard '${p}' is missing`);
    return b;
  });
  return reader.readAll();
}

/** model.json text/bytes/object -> validated object. */
export function parseModelJson(modelJson: TfjsModelJson | string | Uint8Array): TfjsModelJson {
  if (typeof modelJson === 'object' && !(modelJson instanceof Uint8Array))
    return checkTfjsModelJson(modelJson);
  const text = typeof modelJson === 'string' ? modelJson : decodeUtf8(modelJson, 'readTfjs: model.json');
  try {
    return checkTfjsModelJson(JSON.parse(text));
  } catch (e) {
    if (e instanceof WeightsFormatError) throw e;
    throw new WeightsFormatError(`readTfjs: model.json is not valid JSON (${(e as Error).message})`);
  }
}

/** The subset of `fetch` this package uses. */
export type FetchLike = (
  url: string,
) => Promise<{ ok: boolean; status: number; arrayBuffer(): Promise<ArrayBuffer> }>;

/**
 * Opens a model.json by URL: shard paths resolve against the model.json URL. `fetch` defaults to
 * the global fetch (browsers, Node >= 18).
 */
export async function fetchTfjs(
  url: string,
  options: { fetch?: FetchLike } = {},
): Promise<WeightsReader & { modelJson: TfjsModelJson }> {
  const f = options.fetch ?? (globalThis.fetch as unknown as FetchLike | undefined);
  check(typeof f === 'function', () => 'fetchTfjs: no fetch function available; pass options.fetch');
  const get = async (u: string): Promise<Uint8Array> => {
    const res = await f(u);
    check(res.ok, () => `fetchTfjs: GET ${u} failed with status ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  };
  const json = parseModelJson(await get(url));
  const base = url.slice(0, url.lastIndexOf('/') + 1);
  return openTfjs(json, (p) => get(/^[a-z][a-z0-9+.-]*:/i.test(p) ? p : base + p));
}

/** model.json as text (2-space indented). */
export function stringifyModelJson(modelJson: TfjsModelJson): Uint8Array {
  return encodeUtf8(`${JSON.stringify(modelJson, null, 2)}\n`);
}

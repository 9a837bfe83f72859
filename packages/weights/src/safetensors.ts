/**
 * safetensors (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
 * N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {k: string}}`
 * (offsets relative to the data section), then the raw little-endian tensor bytes.
 * The header is fully validated before any tensor memory is touched.
 */
import { type ByteSource, concatBytes, dataView, decodeUtf8, encodeUtf8, memorySource } from './bytes.js';
import { brief, check, WeightsFormatError } from './errors.js';
import {
  checkRawTensor,
  DTYPES,
  type DType,
  ITEM_SIZE,
  type NumericDType,
  newTensorMap,
  numElements,
  type RawTensor,
  type RawTensorMap,
} from './raw_tensor.js';
import { hint, type NameFilter, selectNames, type TensorInfo, type WeightsReader } from './reader.js';

/** Largest header accepted (the reference implementation's limit). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

const FROM_ST: Readonly<Record<string, NumericDType>> = Object.freeze({
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
});

const TO_ST: Readonly<Record<NumericDType, string>> = Object.freeze(
  Object.fromEntries(Object.entries(FROM_ST).map(([k, v]) => [v, k])) as Record<NumericDType, string>,
);

/** One tensor of a safetensors header; `begin`/`end` are byte offsets into the data section. */
export interface SafetensorsEntry extends TensorInfo {
  dtype: NumericDType;
  begin: number;
  end: number;
}

/** A parsed and validated safetensors header. */
export interface SafetensorsHeader {
  /** Byte offset of the data section in the file (8 + header length). */
  dataOffset: number;
  metadata: Record<string, string>;
  /** Entries in header order. */
  entries: SafetensorsEntry[];
}

/** A safetensors file read into memory. */
export interface SafetensorsContents {
  metadata: Record<string, string>;
  tensors: RawTensorMap;
}

/** Reads the 8-byte header length and checks it against the file size and the header limit. */
export function safetensorsHeaderLength(first8: Uint8Array, fileSize: number): number {
  const fn = 'readSafetensors';
  check(
    fileSize >= 8 && first8.byteLength >= 8,
    () => `${fn}: file of ${fileSize} bytes is shorter than the 8-byte header length`,
  );
  const n = dataView(first8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    throw new WeightsFormatError(
      `${fn}: header length ${n} exceeds file size ${fileSize} (truncated or not safetensors)`,
    );
  }
  if (n > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw new WeightsFormatError(
      `${fn}: header length ${n} exceeds the limit of ${SAFETENSORS_MAX_HEADER_BYTES} bytes`,
    );
  }
  check(n >= 2n, () => `${fn}: header length ${n} is too small for a JSON object`);
  return Number(n);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses and validates the JSON header (the bytes after the length field). Checks: UTF-8 JSON object,
 * `__metadata__` a string map, known dtypes, shapes of non-negative integers, integer offsets inside
 * the data section, `end - begin == elements x item size`, and no two tensors overlapping.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileSize: number): SafetensorsHeader {
  const fn = 'readSafetensors';
  const dataOffset = 8 + headerBytes.byteLength;
  const dataSize = fileSize - dataOffset;
  check(dataSize >= 0, () => `${fn}: header length ${headerBytes.byteLength} exceeds file size ${fileSize}`);
  check(
    headerBytes[0] === 0x7b,
    () => `${fn}: header does not start with '{' (got byte 0x${(headerBytes[0] ?? 0).toString(16)})`,
  );
  const text = decodeUtf8(headerBytes, `${fn}: header`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new WeightsFormatError(`${fn}: header is not valid JSON (${(e as Error).message})`);
  }
  check(isPlainObject(json), () => `${fn}: header must be a JSON object, got ${brief(json)}`);
  let metadata: Record<string, string> = Object.create(null);
  const entries: SafetensorsEntry[] = [];
  for (const name of Object.keys(json)) {
    const v = json[name];
    if (name === '__metadata__') {
      check(isPlainObject(v), () => `${fn}: __metadata__ must be an object of strings, got ${brief(v)}`);
      for (const [k, s] of Object.entries(v)) {
        check(
          typeof s === 'string',
          () => `${fn}: __metadata__ value of '${k}' must be a string, got ${brief(s)}`,
        );
      }
      metadata = Object.assign(Object.create(null), v as Record<string, string>);
      continue;
    }
    const what = `${fn}: tensor '${name}'`;
    check(
      isPlainObject(v),
      () => `${what}: entry must be an object {dtype, shape, data_offsets}, got ${brief(v)}`,
    );
    const { dtype, shape, data_offsets: offsets } = v;
    check(typeof dtype === 'string', () => `${what}: dtype must be a string, got ${brief(dtype)}`);
    const d = FROM_ST[dtype];
    check(
      d !== undefined && Object.hasOwn(FROM_ST, dtype),
      () => `${what}: unsupported dtype '${dtype}' (supported: ${Object.keys(FROM_ST).join(', ')})`,
    );
    check(Array.isArray(shape), () => `${what}: shape must be an array, got ${brief(shape)}`);
    const n = numElements(shape as number[], `${what}: shape`);
    check(
      Array.isArray(offsets) &&
        offsets.length === 2 &&
        offsets.every((o) => Number.isSafeInteger(o) && o >= 0),
      () => `${what}: data_offsets must be [begin, end] non-negative integers, got ${brief(offsets)}`,
    );
    const [begin, end] = offsets as [number, number];
    check(begin <= end, () => `${what}: data_offsets [${begin}, ${end}] has begin > end`);
    check(
      end <= dataSize,
      () =>
        `${what}: data_offsets [${begin}, ${end}] exceed the data section of ${dataSize} bytes (file size ${fileSize})`,
    );
    const expected = n * ITEM_SIZE[d];
    check(
      end - begin === expected,
      () =>
        `${what}: ${dtype} [${shape}] needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
    entries.push({ name, dtype: d, shape: [...(shape as number[])], begin, end });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1];
    const c = sorted[i];
    if (c.begin < p.end) {
      throw new WeightsFormatError(
        `${fn}: tensors '${p.name}' [${p.begin}, ${p.end}) and '${c.name}' [${c.begin}, ${c.end}) overlap`,
      );
    }
  }
  return { dataOffset, metadata, entries };
}

/** Parses the header of a complete file in memory. */
export function readSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  const n = safetensorsHeaderLength(bytes.subarray(0, 8), bytes.byteLength);
  return parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.byteLength);
}

/**
 * Reads a safetensors file held in memory. Tensor `data` are views into `bytes` (no copy).
 * `names` restricts the result (an unknown name is an error).
 */
export function readSafetensors(
  bytes: Uint8Array,
  options: { names?: NameFilter } = {},
): SafetensorsContents {
  const header = readSafetensorsHeader(bytes);
  const byName = new Map(header.entries.map((e) => [e.name, e]));
  const tensors = newTensorMap();
  for (const name of selectNames('readSafetensors', header.entries, options.names)) {
    const e = byName.get(name) as SafetensorsEntry;
    const start = header.dataOffset + e.begin;
    tensors[name] = {
      dtype: e.dtype,
      shape: [...e.shape],
      data: bytes.subarray(start, header.dataOffset + e.end),
    };
  }
  return { metadata: header.metadata, tensors };
}

/** Reads the 8 length bytes and the header from a source (two reads), validated against its size. */
export async function readSafetensorsHeaderFrom(source: ByteSource): Promise<SafetensorsHeader> {
  check(
    source.size >= 8,
    () => `readSafetensors: file of ${source.size} bytes is shorter than the 8-byte header length`,
  );
  const n = safetensorsHeaderLength(await source.read(0, 8), source.size);
  return parseSafetensorsHeader(await source.read(8, n), source.size);
}

/**
 * A lazy reader over a ByteSource: parses the header only; `read` fetches one tensor's byte range,
 * `readAll()` of every tensor does one read of the whole data section.
 */
export async function openSafetensors(source: ByteSource): Promise<WeightsReader> {
  const header = await readSafetensorsHeaderFrom(source);
  const byName = new Map(header.entries.map((e) => [e.name, e]));
  const names = header.entries.map((e) => e.name);
  const fetch = async (name: string): Promise<RawTensor> => {
    const e = byName.get(name);
    if (e === undefined)
      throw new WeightsFormatError(`readSafetensors: no tensor named '${name}'${hint(names)}`);
    const data = await source.read(header.dataOffset + e.begin, e.end - e.begin);
    return { dtype: e.dtype, shape: [...e.shape], data };
  };
  return {
    format: 'safetensors',
    metadata: header.metadata,
    entries: header.entries.map(({ name, dtype, shape }) => ({ name, dtype, shape: [...shape] })),
    has: (name) => byName.has(name),
    read: fetch,
    async readAll(filter?: NameFilter) {
      const wanted = selectNames('readSafetensors', header.entries, filter);
      const out = newTensorMap();
      if (wanted.length === header.entries.length && wanted.length > 1) {
        // Everything: one read of the data section, tensors are views of it.
        let lo = Number.POSITIVE_INFINITY;
        let hi = 0;
        for (const e of header.entries) {
          lo = Math.min(lo, e.begin);
          hi = Math.max(hi, e.end);
        }
        const all = await source.read(header.dataOffset + lo, hi - lo);
        for (const name of wanted) {
          const e = byName.get(name) as SafetensorsEntry;
          out[name] = { dtype: e.dtype, shape: [...e.shape], data: all.subarray(e.begin - lo, e.end - lo) };
        }
        return out;
      }
      for (const name of wanted) out[name] = await fetch(name);
      return out;
    },
    close: async () => {
      await source.close?.();
    },
  };
}

/** Reads every tensor (or the selected ones) from a ByteSource. */
export async function readSafetensorsFrom(
  source: ByteSource,
  options: { names?: NameFilter } = {},
): Promise<SafetensorsContents> {
  const reader = await openSafetensors(source);
  return { metadata: reader.metadata, tensors: await reader.readAll(options.names) };
}

/** The safetensors dtype string ('F32', 'BF16', ...) of a DType; strings are not representable. */
export function safetensorsDType(dtype: DType): string {
  const s = (TO_ST as Record<string, string | undefined>)[dtype];
  if (s === undefined) {
    throw new WeightsFormatError(
      `writeSafetensors: dtype '${dtype}' cannot be stored in safetensors (supported: ${DTYPES.filter((d) => d !== 'string').join(', ')})`,
    );
  }
  return s;
}

/**
 * Serialises tensors (+ optional string metadata) to safetensors bytes. Tensors are laid out by
 * item size (largest first) then name, so every tensor starts aligned to its item size; the
 * header is padded with spaces so the data section starts at a multiple of 8.
 */
export function writeSafetensors(tensors: RawTensorMap, metadata?: Record<string, string>): Uint8Array {
  const fn = 'writeSafetensors';
  const names = Object.keys(tensors);
  const items = names.map((name) => {
    const raw = tensors[name];
    checkRawTensor(raw, `${fn}: tensor '${name}'`);
    check(name !== '__metadata__', () => `${fn}: '__metadata__' is reserved and cannot name a tensor`);
    return { name, raw, st: safetensorsDType(raw.dtype), size: ITEM_SIZE[raw.dtype as NumericDType] };
  });
  items.sort((a, b) => b.size - a.size || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      check(typeof v === 'string', () => `${fn}: metadata value of '${k}' must be a string, got ${brief(v)}`);
    }
    parts.push(`"__metadata__":${jsonObject(Object.entries(metadata))}`);
  }
  let offset = 0;
  for (const it of items) {
    const end = offset + it.raw.data.byteLength;
    parts.push(
      `${JSON.stringify(it.name)}:{"dtype":"${it.st}","shape":${JSON.stringify(it.raw.shape)},"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  let header = encodeUtf8(`{${parts.join(',')}}`);
  const pad = (8 - ((8 + header.byteLength) % 8)) % 8;
  if (pad > 0) {
    const padded = new Uint8Array(header.byteLength + pad).fill(0x20);
    padded.set(header);
    header = padded;
  }
  const head = new Uint8Array(8);
  dataView(head).setBigUint64(0, BigInt(header.byteLength), true);
  return concatBytes([head, header, ...items.map((it) => it.raw.data)]);
}

/** A JSON object from entries, keeping their order (a JS object would move integer-like keys first). */
function jsonObject(entries: [string, string][]): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
}

/** In-memory reader (same interface as the file reader) over complete file bytes. */
export function openSafetensorsBytes(bytes: Uint8Array): Promise<WeightsReader> {
  return openSafetensors(memorySource(bytes));
}

/**
 * TensorFlow checkpoints (TensorBundle V2), read without TensorFlow.
 * `PREFIX.index` is a LevelDB-style table (data blocks, metaindex, index block, 48-byte footer;
 * blocks with a compression byte and a masked CRC-32C, prefix-compressed keys with restart points)
 * mapping each tensor name to a BundleEntryProto (dtype, shape, shard, offset, size, crc32c), and
 * the empty key to the BundleHeaderProto. Tensor bytes live in `PREFIX.data-0000K-of-0000N`.
 */
import { dataView, decodeUtf8 } from './bytes.js';
import { crc32c, maskCrc, unmaskCrc } from './crc.js';
import { check, WeightsFormatError } from './errors.js';
import { decodeMessage, WireReader } from './protobuf.js';
import { type DType, ITEM_SIZE, type NumericDType, newTensorMap, type RawTensor } from './raw_tensor.js';
import { hint, type NameFilter, selectNames, type TensorInfo, type WeightsReader } from './reader.js';
import { snappyDecompress } from './snappy.js';

/** The LevelDB table magic number (last 8 bytes of a `.index`). */
export const TABLE_MAGIC = 0xdb4775248b80fb57n;
const FOOTER_BYTES = 48;

/** Name of the TF DataType enum values, for messages. */
const TF_DTYPE_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1: 'DT_FLOAT',
  2: 'DT_DOUBLE',
  3: 'DT_INT32',
  4: 'DT_UINT8',
  5: 'DT_INT16',
  6: 'DT_INT8',
  7: 'DT_STRING',
  8: 'DT_COMPLEX64',
  9: 'DT_INT64',
  10: 'DT_BOOL',
  11: 'DT_QINT8',
  12: 'DT_QUINT8',
  13: 'DT_QINT32',
  14: 'DT_BFLOAT16',
  15: 'DT_QINT16',
  16: 'DT_QUINT16',
  17: 'DT_UINT16',
  18: 'DT_COMPLEX128',
  19: 'DT_HALF',
  20: 'DT_RESOURCE',
  21: 'DT_VARIANT',
  22: 'DT_UINT32',
  23: 'DT_UINT64',
});

const FROM_TF: Readonly<Record<number, DType>> = Object.freeze({
  1: 'float32',
  2: 'float64',
  3: 'int32',
  4: 'uint8',
  5: 'int16',
  6: 'int8',
  7: 'string',
  9: 'int64',
  10: 'bool',
  14: 'bfloat16',
  19: 'float16',
});

/** BundleHeaderProto. */
export interface TfBundleHeader {
  numShards: number;
  endianness: 'little' | 'big';
  version: { producer: number; minConsumer: number; badConsumers: number[] };
}

/** One BundleEntryProto, with the decoded dtype (null when this package cannot read it). */
export interface TfBundleEntry {
  name: string;
  /** The RawTensor dtype, or null for TF dtypes without one (complex, quantised, unsigned > 8 bits, resource). */
  dtype: DType | null;
  /** The TF DataType enum value. */
  tfDtype: number;
  /** e.g. 'DT_FLOAT'. */
  tfDtypeName: string;
  /** Dimensions (-1 for unknown); [] for scalars. */
  shape: number[];
  shardId: number;
  offset: number;
  size: number;
  /** The masked CRC-32C of the bytes as stored (null when the entry has none). */
  crc32c: number | null;
  /** Number of TensorSliceProto entries (partitioned variables, not supported). */
  slices: number;
}

/** A parsed `.index` file. */
export interface TfIndex {
  header: TfBundleHeader;
  /** Every entry but the header, in key order. */
  entries: TfBundleEntry[];
  /** Number of data blocks in the table. */
  dataBlocks: number;
  /** How many of them were Snappy-compressed. */
  snappyBlocks: number;
}

interface BlockHandle {
  offset: number;
  size: number;
}

function readHandle(r: WireReader): BlockHandle {
  return { offset: r.varint(), size: r.varint() };
}

/** Reads one block: checks bounds, the masked CRC-32C over contents + type byte, decompresses. */
function readBlock(
  file: Uint8Array,
  h: BlockHandle,
  what: string,
  verify: boolean,
  stats?: { snappy: number },
): Uint8Array {
  const limit = file.length - FOOTER_BYTES;
  check(
    h.offset + h.size + 5 <= limit,
    () =>
      `${what}: block [${h.offset}, ${h.offset + h.size} + 5) exceeds the table body of ${limit} bytes (truncated?)`,
  );
  const contents = file.subarray(h.offset, h.offset + h.size);
  const type = file[h.offset + h.size];
  if (verify) {
    const stored = unmaskCrc(dataView(file).getUint32(h.offset + h.size + 1, true));
    const actual = crc32c(file.subarray(h.offset + h.size, h.offset + h.size + 1), crc32c(contents));
    check(
      stored === actual,
      () =>
        `${what}: block at ${h.offset} has CRC-32C 0x${actual.toString(16)}, stored 0x${stored.toString(16)} (corrupt file)`,
    );
  }
  if (type === 0) return contents;
  if (type === 1) {
    if (stats) stats.snappy++;
    return snappyDecompress(contents, `${what}: block at ${h.offset}`);
  }
  throw new WeightsFormatError(
    `${what}: block at ${h.offset} has unknown compression type ${type} (0 none, 1 Snappy)`,
  );
}

/**
 * How many bytes of expanded keys an index may produce: prefix compression lets each key repeat the
 * previous one plus a byte, so n entries could otherwise expand to n^2 / 2 bytes. Real indexes stay
 * within a few times their size (names ~100 bytes, entries ~40 bytes stored).
 */
function keyBudget(indexBytes: number): { left: number; limit: number } {
  const limit = 64 * indexBytes + (1 << 20);
  return { left: limit, limit };
}

/** The (key, value) entries of one block, expanding prefix-compressed keys (charged to `budget`). */
function blockEntries(
  block: Uint8Array,
  what: string,
  budget: { left: number; limit: number },
): { key: Uint8Array; value: Uint8Array }[] {
  check(block.length >= 4, () => `${what}: block of ${block.length} bytes has no restart count`);
  const n = dataView(block).getUint32(block.length - 4, true);
  const restartsAt = block.length - 4 * (n + 1);
  check(
    n >= 1 && restartsAt >= 0,
    () => `${what}: block of ${block.length} bytes cannot hold ${n} restart points`,
  );
  const r = new WireReader(block, what, 0, restartsAt);
  const out: { key: Uint8Array; value: Uint8Array }[] = [];
  let prev = new Uint8Array(0);
  while (!r.done) {
    const shared = r.varint();
    const nonShared = r.varint();
    const valueLen = r.varint();
    check(
      shared <= prev.length,
      () => `${what}: key shares ${shared} bytes with a previous key of ${prev.length}`,
    );
    const delta = r.take(nonShared);
    budget.left -= shared + nonShared;
    check(
      budget.left >= 0,
      () =>
        `${what}: keys expand to more than ${budget.limit} bytes, far more than the index size justifies (corrupt prefix compression?)`,
    );
    const key = new Uint8Array(shared + nonShared);
    key.set(prev.subarray(0, shared));
    key.set(delta, shared);
    out.push({ key, value: r.take(valueLen) });
    prev = key;
  }
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function parseHeader(value: Uint8Array, what: string): TfBundleHeader {
  const header: TfBundleHeader = {
    numShards: 0,
    endianness: 'little',
    version: { producer: 0, minConsumer: 0, badConsumers: [] },
  };
  decodeMessage(value, `${what}: BundleHeaderProto`, (field, wire, r) => {
    if (field === 1 && wire === 0) header.numShards = r.int64();
    else if (field === 2 && wire === 0) header.endianness = r.varint() === 1 ? 'big' : 'little';
    else if (field === 3 && wire === 2) {
      decodeMessage(r.lengthDelimited(), `${what}: VersionDef`, (f, w, vr) => {
        if (f === 1 && w === 0) header.version.producer = vr.int64();
        else if (f === 2 && w === 0) header.version.minConsumer = vr.int64();
        else if (f === 3 && w === 0) header.version.badConsumers.push(vr.int64());
        else if (f === 3 && w === 2) {
          const pr = new WireReader(vr.lengthDelimited(), `${what}: VersionDef.bad_consumers`);
          while (!pr.done) header.version.badConsumers.push(pr.int64());
        } else return false;
        return true;
      });
    } else return false;
    return true;
  });
  return header;
}

function parseShape(bytes: Uint8Array, what: string): number[] {
  const dims: number[] = [];
  decodeMessage(bytes, `${what}: TensorShapeProto`, (field, wire, r) => {
    if (field === 2 && wire === 2) {
      let size = 0;
      decodeMessage(r.lengthDelimited(), `${what}: TensorShapeProto.Dim`, (f, w, dr) => {
        if (f === 1 && w === 0) size = dr.int64();
        else return false;
        return true;
      });
      dims.push(size);
    } else if (field === 3 && wire === 0) {
      if (r.varint() !== 0) throw new WeightsFormatError(`${what}: shape has unknown rank`);
    } else return false;
    return true;
  });
  return dims;
}

function parseEntry(name: string, value: Uint8Array, what: string): TfBundleEntry {
  const e: TfBundleEntry = {
    name,
    dtype: null,
    tfDtype: 0,
    tfDtypeName: '',
    shape: [],
    shardId: 0,
    offset: 0,
    size: 0,
    crc32c: null,
    slices: 0,
  };
  const w = `${what}: BundleEntryProto of '${name}'`;
  decodeMessage(value, w, (field, wire, r) => {
    if (field === 1 && wire === 0) e.tfDtype = r.varint();
    else if (field === 2 && wire === 2) e.shape = parseShape(r.lengthDelimited(), w);
    else if (field === 3 && wire === 0) e.shardId = r.int64();
    else if (field === 4 && wire === 0) e.offset = r.int64();
    else if (field === 5 && wire === 0) e.size = r.int64();
    else if (field === 6 && wire === 5) e.crc32c = r.fixed32();
    else if (field === 7 && wire === 2) {
      r.lengthDelimited();
      e.slices++;
    } else return false;
    return true;
  });
  e.dtype = FROM_TF[e.tfDtype] ?? null;
  e.tfDtypeName = TF_DTYPE_NAMES[e.tfDtype] ?? `DataType(${e.tfDtype})`;
  check(e.offset >= 0 && e.size >= 0 && e.shardId >= 0, () => `${w}: negative shard, offset or size`);
  return e;
}

/**
 * Parses a complete `.index` file: footer and magic, index block, every data block (CRC-checked
 * unless `verifyCrc: false`, Snappy-decompressed when marked), the header entry and every
 * BundleEntryProto. Keys must be strictly increasing. Pure: works on bytes (browser-safe).
 */
export function parseTfIndex(bytes: Uint8Array, options: { verifyCrc?: boolean } = {}): TfIndex {
  const what = 'parseTfIndex';
  const verify = options.verifyCrc ?? true;
  check(
    bytes.length >= FOOTER_BYTES,
    () => `${what}: file of ${bytes.length} bytes is shorter than the ${FOOTER_BYTES}-byte table footer`,
  );
  const footer = bytes.subarray(bytes.length - FOOTER_BYTES);
  const magic = dataView(footer).getBigUint64(40, true);
  check(
    magic === TABLE_MAGIC,
    () =>
      `${what}: bad table magic 0x${magic.toString(16)} (expected 0x${TABLE_MAGIC.toString(16)}; not a TF checkpoint index, or truncated)`,
  );
  const fr = new WireReader(footer, `${what}: footer`, 0, 40);
  readHandle(fr); // metaindex: empty in TensorFlow tables
  const indexHandle = readHandle(fr);
  const budget = keyBudget(bytes.length);
  const index = blockEntries(
    readBlock(bytes, indexHandle, `${what}: index block`, verify),
    `${what}: index block`,
    budget,
  );
  let header: TfBundleHeader | null = null;
  const entries: TfBundleEntry[] = [];
  let prevKey: Uint8Array | null = null;
  const stats = { snappy: 0 };
  for (const [i, ie] of index.entries()) {
    const hr = new WireReader(ie.value, `${what}: index entry ${i}`);
    const handle = readHandle(hr);
    const bw = `${what}: data block ${i}`;
    for (const { key, value } of blockEntries(readBlock(bytes, handle, bw, verify, stats), bw, budget)) {
      if (prevKey !== null && compareBytes(prevKey, key) >= 0) {
        throw new WeightsFormatError(
          `${bw}: keys are not in increasing order at '${decodeUtf8(key, bw)}' (corrupt index)`,
        );
      }
      prevKey = key;
      if (key.length === 0) {
        header = parseHeader(value, what);
        continue;
      }
      entries.push(parseEntry(decodeUtf8(key, `${bw}: key`), value, what));
    }
  }
  if (header === null) throw new WeightsFormatError(`${what}: the table has no header entry (empty key)`);
  const h = header;
  check(h.numShards >= 1, () => `${what}: header num_shards is ${h.numShards}, expected >= 1`);
  check(
    h.version.minConsumer <= 1,
    () => `${what}: bundle needs a reader of version >= ${h.version.minConsumer} (this one is 1)`,
  );
  check(!h.version.badConsumers.includes(1), () => `${what}: bundle marks reader version 1 as bad`);
  for (const e of entries) {
    check(
      e.shardId < h.numShards || e.slices > 0,
      () => `${what}: tensor '${e.name}' is in shard ${e.shardId} but the header says ${h.numShards} shards`,
    );
  }
  return { header: h, entries, dataBlocks: index.length, snappyBlocks: stats.snappy };
}

/** `PREFIX.data-0000K-of-0000N`. */
export function tfShardPath(prefix: string, shard: number, numShards: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `${prefix}.data-${pad(shard)}-of-${pad(numShards)}`;
}

function swapBytes(data: Uint8Array, item: number): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i += item)
    for (let b = 0; b < item; b++) out[i + b] = data[i + item - 1 - b];
  return out;
}

/**
 * Decodes the stored bytes of one entry into a RawTensor: checks the size against dtype x shape,
 * the masked CRC-32C (unless disabled), byte-swaps big-endian bundles, and splits DT_STRING
 * tensors (varint lengths, masked CRC of the lengths, then the bytes).
 */
export function decodeTfTensor(
  entry: TfBundleEntry,
  bytes: Uint8Array,
  options: { verifyCrc?: boolean; endianness?: 'little' | 'big' } = {},
): RawTensor {
  const what = `readTfCheckpoint: tensor '${entry.name}'`;
  check(
    entry.slices === 0,
    () => `${what} is partitioned into ${entry.slices} slices, which is not supported`,
  );
  const dtype = entry.dtype;
  check(dtype !== null, () => `${what} has dtype ${entry.tfDtypeName}, which is not supported`);
  check(
    entry.shape.every((d) => d >= 0),
    () => `${what} has a partly unknown shape [${entry.shape}]`,
  );
  check(
    bytes.length === entry.size,
    () => `${what}: got ${bytes.length} bytes, the index says ${entry.size}`,
  );
  const verify = (options.verifyCrc ?? true) && entry.crc32c !== null;
  const checkCrc = (actual: number) =>
    check(
      actual === entry.crc32c,
      () =>
        `${what}: masked CRC-32C 0x${actual.toString(16)} does not match the index's 0x${entry.crc32c?.toString(16)} (corrupt data shard)`,
    );
  let n = 1;
  for (const d of entry.shape) n *= d;
  const shape = [...entry.shape];
  if (dtype === 'string') {
    // varint64 lengths, a masked CRC-32C of the lengths (each as uint32 LE), then the bytes.
    // The entry CRC runs over the uint32 lengths, the stored length checksum, then the bytes.
    // Each element takes at least one byte (its length varint), the checksum four: check the count
    // against the bytes before allocating per-element buffers.
    check(
      n + 4 <= bytes.length,
      () =>
        `${what}: DT_STRING [${shape}] has ${n} elements, but ${bytes.length} bytes hold at most ${Math.max(0, bytes.length - 4)} (a length each and a 4-byte checksum)`,
    );
    const r = new WireReader(bytes, what);
    const lengths: number[] = [];
    const lenBytes = new Uint8Array(4 * n);
    const lv = dataView(lenBytes);
    for (let i = 0; i < n; i++) {
      const len = r.varint();
      lengths.push(len);
      lv.setUint32(4 * i, len >>> 0, true);
    }
    const lenCrc = crc32c(lenBytes);
    const storedAt = r.pos;
    const stored = r.fixed32();
    check(
      stored === maskCrc(lenCrc) || options.verifyCrc === false,
      () => `${what}: the checksum of the string lengths does not match (corrupt data shard)`,
    );
    const strings = lengths.map((len) => r.take(len));
    check(r.done, () => `${what}: ${bytes.length - r.pos} bytes left after ${n} strings`);
    const body = bytes.subarray(storedAt + 4);
    if (verify) checkCrc(maskCrc(crc32c(body, crc32c(bytes.subarray(storedAt, storedAt + 4), lenCrc))));
    return { dtype, shape, data: body, strings };
  }
  const item = ITEM_SIZE[dtype as NumericDType];
  check(
    n * item === bytes.length,
    () => `${what}: ${entry.tfDtypeName} [${shape}] needs ${n * item} bytes, the index says ${bytes.length}`,
  );
  if (verify) checkCrc(maskCrc(crc32c(bytes)));
  const data = options.endianness === 'big' && item > 1 ? swapBytes(bytes, item) : bytes;
  return { dtype, shape, data };
}

/** Reads `length` bytes at `offset` of data shard `shard` (file system, fetch range, Blob.slice...). */
export type ShardReader = (shard: number, offset: number, length: number) => Promise<Uint8Array>;

/** An opened checkpoint: the index plus a WeightsReader over the tensors this package can decode. */
export interface TfCheckpoint extends WeightsReader {
  readonly header: TfBundleHeader;
  /** All index entries, including those with unsupported dtypes or slices. */
  readonly index: readonly TfBundleEntry[];
  /** The checkpoint prefix (file-system readers) or ''. */
  readonly prefix: string;
  entry(name: string): TfBundleEntry | undefined;
}

/**
 * A checkpoint from its `.index` bytes and a shard reader (browser-safe). Reading a tensor fetches
 * exactly its byte range; a missing shard only fails the tensors stored in it.
 */
export function openTfCheckpointIndex(
  indexBytes: Uint8Array,
  readShard: ShardReader,
  options: { verifyCrc?: boolean; prefix?: string; close?: () => Promise<void> } = {},
): TfCheckpoint {
  const idx = parseTfIndex(indexBytes, options);
  const byName = new Map(idx.entries.map((e) => [e.name, e]));
  const readable = idx.entries.filter((e) => e.dtype !== null);
  const entries: TensorInfo[] = readable.map((e) => ({
    name: e.name,
    dtype: e.dtype as DType,
    shape: [...e.shape],
  }));
  const names = idx.entries.map((e) => e.name);
  const read = async (name: string): Promise<RawTensor> => {
    const e = byName.get(name);
    if (e === undefined)
      throw new WeightsFormatError(`readTfCheckpoint: no tensor named '${name}'${hint(names)}`);
    check(
      e.slices === 0,
      () =>
        `readTfCheckpoint: tensor '${name}' is partitioned into ${e.slices} slices, which is not supported`,
    );
    check(
      e.dtype !== null,
      () => `readTfCheckpoint: tensor '${name}' has dtype ${e.tfDtypeName}, which is not supported`,
    );
    const bytes = await readShard(e.shardId, e.offset, e.size);
    return decodeTfTensor(e, bytes, { verifyCrc: options.verifyCrc, endianness: idx.header.endianness });
  };
  const metadata: Record<string, string> = Object.create(null);
  metadata['tf.num_shards'] = String(idx.header.numShards);
  metadata['tf.producer'] = String(idx.header.version.producer);
  return {
    format: 'tf-checkpoint',
    metadata,
    entries,
    header: idx.header,
    index: idx.entries,
    prefix: options.prefix ?? '',
    entry: (name) => byName.get(name),
    has: (name) => byName.has(name) && byName.get(name)?.dtype !== null,
    read,
    async readAll(filter?: NameFilter) {
      const out = newTensorMap();
      for (const name of selectNames('readTfCheckpoint', entries, filter)) out[name] = await read(name);
      return out;
    },
    close: async () => {
      await options.close?.();
    },
  };
}

/** Suffix of the shadow variables `tf.train.ExponentialMovingAverage` keeps. */
export const TF_EMA_SUFFIX = '/ExponentialMovingAverage';

/**
 * Applies the official EMA rule to checkpoint names: returns output name -> stored name.
 * `ema: true`: every variable V reads `V/ExponentialMovingAverage` when present, else V (the
 * shadow copies themselves are not listed separately). `ema: false`: the shadow copies are dropped.
 */
export function tfEmaNames(names: readonly string[], ema: boolean): Map<string, string> {
  const all = new Set(names);
  const out = new Map<string, string>();
  for (const n of names) {
    if (n.endsWith(TF_EMA_SUFFIX)) {
      const base = n.slice(0, -TF_EMA_SUFFIX.length);
      if (ema && !all.has(base)) out.set(base, n);
      continue;
    }
    out.set(n, ema && all.has(n + TF_EMA_SUFFIX) ? n + TF_EMA_SUFFIX : n);
  }
  return out;
}

/** Parses the `checkpoint` text file (CheckpointState): the `model_checkpoint_path` value. */
export function parseCheckpointState(text: string): string {
  // `[ \t]*`, not `\s*`, after `^`: with the m flag `\s*` would rescan every following line break
  // from each line start (quadratic time on a file of blank lines).
  const m = /^[ \t]*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"/m.exec(text);
  if (m === null)
    throw new WeightsFormatError('readTfCheckpoint: the checkpoint file has no model_checkpoint_path');
  return m[1].replace(/\\(.)/g, '$1');
}

/**
 * A small read-only zip reader (PKWARE APPNOTE 6.3): end of central directory (with zip64), central
 * directory, local headers; stored entries, and deflated ones through an injectable inflater.
 * Sizes and CRCs come from the central directory, since writers like PyTorch's (miniz) set the
 * "data descriptor" flag and leave them zero in the local headers.
 */
import { type ByteSource, dataView } from './bytes.js';
import { crc32 } from './crc.js';
import { check, WeightsFormatError } from './errors.js';

/** One file in a zip archive. */
export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

/** Inflates raw deflate data (no zlib header) to exactly `size` bytes. */
export type InflateRaw = (data: Uint8Array, size: number) => Promise<Uint8Array>;

export interface ZipOptions {
  /** Inflater for deflated entries. Default: the platform's DecompressionStream('deflate-raw') when present. */
  inflateRaw?: InflateRaw;
  /** Check each entry's CRC-32 when it is read. Default: true. */
  verifyCrc?: boolean;
}

/** An opened archive: the entry list, and entry reads on demand. */
export interface ZipArchive {
  readonly entries: readonly ZipEntry[];
  get(name: string): ZipEntry | undefined;
  /** The uncompressed bytes of one entry (CRC-checked unless disabled). */
  read(entry: ZipEntry | string): Promise<Uint8Array>;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const FN = 'readZip';

function u64(view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw new WeightsFormatError(`${FN}: ${what} ${v} exceeds 2^53 - 1`);
  return Number(v);
}

/** True when the bytes start with a zip local file header ("PK\x03\x04"). */
export function isZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

interface Directory {
  count: number;
  offset: number;
  size: number;
}

async function findDirectory(source: ByteSource): Promise<Directory> {
  const size = source.size;
  check(
    size >= 22,
    () => `${FN}: file of ${size} bytes is too short for a zip end-of-central-directory record (22 bytes)`,
  );
  const tailLen = Math.min(size, 22 + 0xffff);
  const tailStart = size - tailLen;
  const tail = await source.read(tailStart, tailLen);
  const tv = dataView(tail);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === SIG_EOCD && i + 22 + tv.getUint16(i + 20, true) <= tailLen) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    throw new WeightsFormatError(
      `${FN}: no end-of-central-directory record in the last ${tailLen} bytes (truncated or not a zip)`,
    );
  }
  const disk = tv.getUint16(eocd + 4, true);
  const cdDisk = tv.getUint16(eocd + 6, true);
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  // zip64: a locator right before the EOCD points at the zip64 EOCD record.
  const locAt = tailStart + eocd - 20;
  if (locAt >= 0) {
    const loc = locAt >= tailStart ? tail.subarray(eocd - 20, eocd) : await source.read(locAt, 20);
    const lv = dataView(loc);
    if (lv.getUint32(0, true) === SIG_LOCATOR64) {
      const recAt = u64(lv, 8, 'zip64 end-of-central-directory offset');
      check(
        recAt + 56 <= size,
        () => `${FN}: zip64 end-of-central-directory offset ${recAt} exceeds file size ${size}`,
      );
      const rec = dataView(await source.read(recAt, 56));
      check(
        rec.getUint32(0, true) === SIG_EOCD64,
        () =>
          `${FN}: bad zip64 end-of-central-directory signature 0x${rec.getUint32(0, true).toString(16)} at ${recAt}`,
      );
      count = u64(rec, 32, 'zip64 entry count');
      cdSize = u64(rec, 40, 'zip64 central directory size');
      cdOffset = u64(rec, 48, 'zip64 central directory offset');
    }
  } else {
    check(
      disk === 0 && cdDisk === 0,
      () => `${FN}: multi-disk archives are not supported (disk ${disk}, ${cdDisk})`,
    );
  }
  check(
    cdOffset + cdSize <= size,
    () =>
      `${FN}: central directory [${cdOffset}, ${cdOffset + cdSize}) exceeds file size ${size} (truncated?)`,
  );
  return { count, offset: cdOffset, size: cdSize };
}

function parseDirectory(cd: Uint8Array, dir: Directory, fileSize: number): ZipEntry[] {
  const v = dataView(cd);
  const names = new TextDecoder('utf-8');
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < dir.count; i++) {
    check(p + 46 <= cd.length, () => `${FN}: central directory ends inside entry ${i} of ${dir.count}`);
    const sig = v.getUint32(p, true);
    check(
      sig === SIG_CENTRAL,
      () => `${FN}: bad central directory signature 0x${sig.toString(16)} for entry ${i}`,
    );
    const flags = v.getUint16(p + 8, true);
    const method = v.getUint16(p + 10, true);
    const crc = v.getUint32(p + 16, true);
    let compressedSize = v.getUint32(p + 20, true);
    let size = v.getUint32(p + 24, true);
    const nameLen = v.getUint16(p + 28, true);
    const extraLen = v.getUint16(p + 30, true);
    const commentLen = v.getUint16(p + 32, true);
    let localHeaderOffset = v.getUint32(p + 42, true);
    const end = p + 46 + nameLen + extraLen + commentLen;
    check(end <= cd.length, () => `${FN}: central directory ends inside entry ${i} of ${dir.count}`);
    const name = names.decode(cd.subarray(p + 46, p + 46 + nameLen));
    // zip64 extended information: the 64-bit values present are those whose 32-bit field is all ones.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = v.getUint16(e, true);
      const len = v.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        const take = (what: string): number => {
          check(q + 8 <= e + 4 + len, () => `${FN}: zip64 extra field of '${name}' lacks the ${what}`);
          const x = u64(v, q, `${what} of '${name}'`);
          q += 8;
          return x;
        };
        if (size === 0xffffffff) size = take('size');
        if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take('local header offset');
      }
      e += 4 + len;
    }
    check(
      localHeaderOffset + 30 <= fileSize,
      () => `${FN}: local header offset ${localHeaderOffset} of '${name}' exceeds file size ${fileSize}`,
    );
    entries.push({ name, method, flags, crc32: crc, compressedSize, size, localHeaderOffset });
    p = end;
  }
  return entries;
}

/**
 * Deflate expands at most 1032:1 (a 258-byte match in 2 bits); the upper bound on what `compressed`
 * bytes can inflate to, with a little slack, so a declared size can be checked before allocating it.
 */
const MAX_DEFLATE_RATIO = 1032;
function maxInflatedSize(compressed: number): number {
  return compressed * MAX_DEFLATE_RATIO + 64;
}

type DecompressionStreamCtor = new (
  format: string,
) => {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
};

/** Inflate through the web-standard DecompressionStream (browsers, Node >= 18, Deno, Bun). */
async function inflateWithStreams(data: Uint8Array, size: number): Promise<Uint8Array> {
  const Ctor = (globalThis as { DecompressionStream?: DecompressionStreamCtor }).DecompressionStream;
  if (Ctor === undefined) {
    throw new WeightsFormatError(
      `${FN}: a deflated entry needs DecompressionStream, which this platform lacks; pass options.inflateRaw (the Node entry does)`,
    );
  }
  // openZip's read bounds `size` by the compressed size (MAX_DEFLATE_RATIO); checked here again since
  // this allocates it up front.
  check(
    size <= maxInflatedSize(data.byteLength),
    () => `${FN}: ${data.byteLength} bytes of deflate data cannot inflate to the ${size} bytes declared`,
  );
  const ds = new Ctor('deflate-raw');
  const writer = ds.writable.getWriter();
  const written = writer.write(data).then(() => writer.close());
  // A corrupt stream rejects this too; it is awaited only on success, so mark it handled here (the
  // reader below reports the error).
  written.catch(() => undefined);
  const out = new Uint8Array(size);
  let at = 0;
  const reader = ds.readable.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (at + value.byteLength > size)
        throw new WeightsFormatError(`${FN}: inflated data exceeds the ${size} bytes declared`);
      out.set(value, at);
      at += value.byteLength;
    }
  } catch (e) {
    reader.cancel().catch(() => undefined);
    throw e;
  }
  await written;
  return out.subarray(0, at);
}

/** Opens a zip archive: reads the end records and the central directory (two or three reads). */
export async function openZip(source: ByteSource, options: ZipOptions = {}): Promise<ZipArchive> {
  const dir = await findDirectory(source);
  const cd = await source.read(dir.offset, dir.size);
  const entries = parseDirectory(cd, dir, source.size);
  const byName = new Map<string, ZipEntry>();
  for (const e of entries) if (!byName.has(e.name)) byName.set(e.name, e);
  const verify = options.verifyCrc ?? true;
  const inflate = options.inflateRaw ?? inflateWithStreams;

  const read = async (which: ZipEntry | string): Promise<Uint8Array> => {
    const entry = typeof which === 'string' ? byName.get(which) : which;
    if (entry === undefined) throw new WeightsFormatError(`${FN}: no entry named '${which as string}'`);
    const what = `${FN}: entry '${entry.name}'`;
    check((entry.flags & 1) === 0, () => `${what} is encrypted`);
    check(
      entry.method === 0 || entry.method === 8,
      () => `${what} uses compression method ${entry.method} (only 0 stored and 8 deflate are supported)`,
    );
    const lh = dataView(await source.read(entry.localHeaderOffset, 30));
    const sig = lh.getUint32(0, true);
    check(
      sig === SIG_LOCAL,
      () => `${what}: bad local header signature 0x${sig.toString(16)} at ${entry.localHeaderOffset}`,
    );
    const start = entry.localHeaderOffset + 30 + lh.getUint16(26, true) + lh.getUint16(28, true);
    check(
      start + entry.compressedSize <= source.size,
      () =>
        `${what}: data [${start}, ${start + entry.compressedSize}) exceeds file size ${source.size} (truncated?)`,
    );
    let data = await source.read(start, entry.compressedSize);
    if (entry.method === 0) {
      check(
        entry.size === entry.compressedSize,
        () => `${what}: stored entry has size ${entry.size} != compressed size ${entry.compressedSize}`,
      );
    } else {
      check(
        entry.size <= maxInflatedSize(entry.compressedSize),
        () =>
          `${what}: declared size ${entry.size} is more than ${entry.compressedSize} bytes of deflate data can inflate to (at most ${maxInflatedSize(entry.compressedSize)}; corrupt directory?)`,
      );
      try {
        data = await inflate(data, entry.size);
      } catch (e) {
        if (e instanceof WeightsFormatError) throw e;
        const code = (e as { code?: unknown })?.code;
        throw new WeightsFormatError(
          `${what}: corrupt deflate data (${(e as Error)?.message ?? String(e)}${typeof code === 'string' ? `, ${code}` : ''})`,
        );
      }
      check(
        data.byteLength === entry.size,
        () => `${what}: inflated to ${data.byteLength} bytes, expected ${entry.size}`,
      );
    }
    if (verify) {
      const c = crc32(data);
      check(
        c === entry.crc32,
        () =>
          `${what}: CRC-32 0x${c.toString(16)} does not match the stored 0x${entry.crc32.toString(16)} (corrupt file)`,
      );
    }
    return data;
  };
  return { entries, get: (name) => byName.get(name), read };
}

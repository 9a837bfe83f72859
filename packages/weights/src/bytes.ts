import { check, WeightsFormatError } from './errors.js';

/**
 * Random access to the bytes of one file (in memory, on disk, behind HTTP range requests).
 * `read` returns exactly `length` bytes starting at `offset` or throws; the result may be a view
 * of a larger buffer, so callers must not write to it.
 */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases a file handle; a no-op for memory sources. */
  close?(): Promise<void>;
}

/** A ByteSource over bytes already in memory; reads are views, not copies. */
export function memorySource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    read: async (offset, length) => sliceView(bytes, offset, length, 'memorySource.read'),
  };
}

/** `bytes[offset, offset+length)` as a view; throws naming `what` when the range leaves the buffer. */
export function sliceView(bytes: Uint8Array, offset: number, length: number, what: string): Uint8Array {
  check(
    Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0,
    () => `${what}: range (offset ${offset}, length ${length}) must be non-negative integers`,
  );
  if (offset + length > bytes.byteLength) {
    throw new WeightsFormatError(
      `${what}: range [${offset}, ${offset + length}) exceeds the ${bytes.byteLength} bytes available (truncated file?)`,
    );
  }
  return bytes.subarray(offset, offset + length);
}

/** Concatenates byte arrays into one new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.byteLength;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** Strict UTF-8 decoding: invalid sequences throw a WeightsFormatError naming `what`. */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    throw new WeightsFormatError(`${what}: bytes are not valid UTF-8`);
  }
}

export function encodeUtf8(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

/** Latin-1 decoding (every byte one code unit), for Python 2 `str` pickles and magic strings. */
export function decodeLatin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return s;
}

/** True on little-endian hosts (every platform TF.js runs on); typed-array views assume it. */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A DataView over exactly the bytes of `u8`. */
export function dataView(u8: Uint8Array): DataView {
  return new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
}

/** Reads an unsigned little-endian 64-bit integer as a Number; throws when it exceeds 2^53 - 1. */
export function readU64(view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new WeightsFormatError(`${what}: value ${v} exceeds 2^53 - 1`);
  }
  return Number(v);
}

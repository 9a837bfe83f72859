/**
 * Raw Snappy decompression (https://github.com/google/snappy/blob/main/format_description.txt):
 * a varint uncompressed length, then literal and copy elements. Used for Snappy-compressed
 * LevelDB table blocks in older TensorFlow checkpoints.
 */
import { WeightsFormatError } from './errors.js';

/** Decompresses one raw Snappy buffer; every length and offset is checked against the buffers. */
export function snappyDecompress(src: Uint8Array, what = 'snappyDecompress'): Uint8Array {
  let pos = 0;
  let length = 0;
  for (let shift = 0; ; shift += 7) {
    if (pos >= src.length || shift > 28) throw new WeightsFormatError(`${what}: bad Snappy length preamble`);
    const b = src[pos++];
    length += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  if (length > 0xffffffff) throw new WeightsFormatError(`${what}: Snappy length ${length} is too large`);
  // Check the declared length against what the rest of the input can produce before allocating it:
  // a literal yields fewer bytes than it occupies, a copy at most 64 from 3 bytes (copy-2; copy-1
  // gives <= 11 from 2, copy-4 <= 64 from 5), so n input bytes yield at most 64 * n / 3.
  const rest = src.length - pos;
  if (3 * length > 64 * rest) {
    throw new WeightsFormatError(
      `${what}: Snappy length ${length} is more than ${rest} bytes of compressed data can produce (at most ${Math.floor((64 * rest) / 3)})`,
    );
  }
  const out = new Uint8Array(length);
  let o = 0;
  const fail = (msg: string): never => {
    throw new WeightsFormatError(`${what}: corrupt Snappy data at input byte ${pos}: ${msg}`);
  };
  while (pos < src.length) {
    const tag = src[pos++];
    const kind = tag & 3;
    if (kind === 0) {
      let len = tag >>> 2;
      if (len >= 60) {
        const nb = len - 59;
        if (pos + nb > src.length) fail('literal length runs past the input');
        len = 0;
        for (let i = 0; i < nb; i++) len += src[pos + i] * 2 ** (8 * i);
        pos += nb;
      }
      len += 1;
      if (pos + len > src.length) fail(`literal of ${len} bytes runs past the input`);
      if (o + len > length) fail(`literal of ${len} bytes overflows the declared ${length} bytes`);
      out.set(src.subarray(pos, pos + len), o);
      pos += len;
      o += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      if (pos + 1 > src.length) fail('copy-1 runs past the input');
      len = 4 + ((tag >>> 2) & 7);
      offset = ((tag >>> 5) << 8) | src[pos++];
    } else if (kind === 2) {
      if (pos + 2 > src.length) fail('copy-2 runs past the input');
      len = 1 + (tag >>> 2);
      offset = src[pos] | (src[pos + 1] << 8);
      pos += 2;
    } else {
      if (pos + 4 > src.length) fail('copy-4 runs past the input');
      len = 1 + (tag >>> 2);
      offset = (src[pos] | (src[pos + 1] << 8) | (src[pos + 2] << 16) | (src[pos + 3] << 24)) >>> 0;
      pos += 4;
    }
    if (offset === 0 || offset > o) fail(`copy offset ${offset} outside the ${o} bytes written`);
    if (o + len > length) fail(`copy of ${len} bytes overflows the declared ${length} bytes`);
    // Byte by byte: the source may overlap the destination (run-length style copies).
    for (let i = 0; i < len; i++, o++) out[o] = out[o - offset];
  }
  if (o !== length) fail(`produced ${o} bytes, the preamble declares ${length}`);
  return out;
}

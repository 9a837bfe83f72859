/** Just enough of the protobuf wire format to decode TensorFlow's bundle protos by hand. */
import { WeightsFormatError } from './errors.js';

/** A cursor over protobuf / LevelDB bytes with bounds-checked varint and fixed-width reads. */
export class WireReader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    readonly what: string,
    start = 0,
    readonly end = bytes.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  private fail(msg: string): never {
    throw new WeightsFormatError(`${this.what}: ${msg} at byte ${this.pos}`);
  }

  /** An unsigned varint of up to 64 bits as a BigInt. */
  varintBig(): bigint {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.bytes[this.pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asUintN(64, v);
    }
    return this.fail('varint longer than 10 bytes');
  }

  /** An unsigned varint that must be a safe integer (offsets, sizes, lengths). */
  varint(): number {
    // Fast path: up to 7 bytes (49 bits) stays exact in doubles.
    let v = 0;
    const start = this.pos;
    for (let i = 0; i < 7; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.bytes[this.pos++];
      v += (b & 0x7f) * 2 ** (7 * i);
      if (b < 0x80) return v;
    }
    this.pos = start;
    const big = this.varintBig();
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`varint ${big} exceeds 2^53 - 1`);
    return Number(big);
  }

  /** A varint holding a two's-complement int64 (e.g. -1 for an unknown dimension). */
  int64(): number {
    const v = BigInt.asIntN(64, this.varintBig());
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))
      this.fail(`int64 ${v} exceeds 2^53`);
    return Number(v);
  }

  fixed32(): number {
    if (this.pos + 4 > this.end) this.fail('truncated fixed32');
    const b = this.bytes;
    const p = this.pos;
    this.pos += 4;
    return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
  }

  /** `n` bytes as a view. */
  take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.end)
      this.fail(`${n} bytes run past the end (${this.end - this.pos} left)`);
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A length-delimited field's bytes. */
  lengthDelimited(): Uint8Array {
    return this.take(this.varint());
  }

  /** Next field key: field number and wire type. */
  key(): { field: number; wire: number } {
    const k = this.varint();
    return { field: Math.floor(k / 8), wire: k % 8 };
  }

  /** Skips a field of the given wire type. */
  skip(wire: number): void {
    switch (wire) {
      case 0:
        this.varintBig();
        return;
      case 1:
        this.take(8);
        return;
      case 2:
        this.lengthDelimited();
        return;
      case 5:
        this.take(4);
        return;
      default:
        this.fail(`unsupported protobuf wire type ${wire}`);
    }
  }
}

/** Iterates the fields of one message, calling `onField` with a reader positioned at the value. */
export function decodeMessage(
  bytes: Uint8Array,
  what: string,
  onField: (field: number, wire: number, r: WireReader) => boolean,
): void {
  const r = new WireReader(bytes, what);
  while (!r.done) {
    const { field, wire } = r.key();
    if (!onField(field, wire, r)) r.skip(wire);
  }
}

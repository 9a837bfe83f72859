import { HOST_LITTLE_ENDIAN } from './bytes.js';
import { brief, check, WeightsFormatError } from './errors.js';

/** Element types a RawTensor can hold (the union of what safetensors, PyTorch and TF checkpoints store). */
export type DType =
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'float64'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool'
  | 'string';

/** The numeric dtypes (everything but 'string'). */
export type NumericDType = Exclude<DType, 'string'>;

/** Bytes per element of every numeric dtype. */
export const ITEM_SIZE: Readonly<Record<NumericDType, number>> = Object.freeze({
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
});

/** Every DType, in a stable order. */
export const DTYPES: readonly DType[] = Object.freeze([
  ...(Object.keys(ITEM_SIZE) as NumericDType[]),
  'string',
]);

/**
 * One tensor as stored in a file, independent of the format: dtype, shape (row-major) and the raw
 * little-endian element bytes. Readers return views into the file's bytes where they can, so `data`
 * must be treated as read-only. For `dtype: 'string'`, `strings` holds one byte array per element and
 * `data` their concatenation.
 */
export interface RawTensor {
  dtype: DType;
  shape: number[];
  data: Uint8Array;
  strings?: Uint8Array[];
}

/** Tensors by name. Maps built by this package have a null prototype, so any name is a plain key. */
export type RawTensorMap = Record<string, RawTensor>;

/** A new empty RawTensorMap (null prototype: names like `__proto__` or `constructor` are safe keys). */
export function newTensorMap(): RawTensorMap {
  return Object.create(null) as RawTensorMap;
}

/** The typed array `toTypedArray` gives for each dtype (half types as raw Uint16 bits). */
export type TypedArrayOf<D extends NumericDType> = D extends 'float32'
  ? Float32Array
  : D extends 'float64'
    ? Float64Array
    : D extends 'float16' | 'bfloat16'
      ? Uint16Array
      : D extends 'int64'
        ? BigInt64Array
        : D extends 'int32'
          ? Int32Array
          : D extends 'int16'
            ? Int16Array
            : D extends 'int8'
              ? Int8Array
              : Uint8Array;

export type AnyTypedArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** True when `d` is one of the DType names. */
export function isDType(d: unknown): d is DType {
  return typeof d === 'string' && (DTYPES as readonly string[]).includes(d);
}

/** Product of a shape; checks that every dimension is a non-negative safe integer. */
export function numElements(shape: readonly number[], what = 'numElements'): number {
  check(Array.isArray(shape), () => `${what}: shape must be an array, got ${typeof shape}`);
  let n = 1;
  for (const d of shape) {
    check(
      Number.isSafeInteger(d) && d >= 0,
      () => `${what}: shape ${brief(shape)} must hold non-negative integers, got ${brief(d)}`,
    );
    n *= d;
  }
  check(Number.isSafeInteger(n), () => `${what}: shape ${brief(shape)} has more than 2^53 elements`);
  return n;
}

/** Byte length a numeric tensor of this dtype and shape must have. */
export function byteLengthOf(dtype: NumericDType, shape: readonly number[], what = 'byteLengthOf'): number {
  return numElements(shape, what) * ITEM_SIZE[dtype];
}

/**
 * Checks that a RawTensor is consistent (known dtype, valid shape, `data.byteLength` equal to
 * elements x item size, one `strings` entry per element for strings). `what` names the caller
 * and tensor in the error.
 */
export function checkRawTensor(raw: RawTensor, what: string): void {
  check(raw !== null && typeof raw === 'object', () => `${what}: expected a RawTensor object, got ${raw}`);
  check(
    isDType(raw.dtype),
    () => `${what}: unknown dtype ${JSON.stringify(raw.dtype)} (one of ${DTYPES.join(', ')})`,
  );
  const n = numElements(raw.shape, what);
  check(raw.data instanceof Uint8Array, () => `${what}: data must be a Uint8Array`);
  if (raw.dtype === 'string') {
    check(
      Array.isArray(raw.strings) && raw.strings.length === n,
      () =>
        `${what}: string tensor of shape [${raw.shape}] needs ${n} strings, got ${raw.strings?.length ?? 'none'}`,
    );
    return;
  }
  const expected = n * ITEM_SIZE[raw.dtype];
  check(
    raw.data.byteLength === expected,
    () => `${what}: ${raw.dtype} [${raw.shape}] needs ${expected} bytes, got ${raw.data.byteLength}`,
  );
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Builds a RawTensor that views the bytes of a typed array (no copy). The dtype follows the array
 * type (Float32Array -> float32, BigInt64Array -> int64, Uint8Array -> uint8, ...); pass `dtype` for
 * `bool` (Uint8Array of 0/1), `float16`/`bfloat16` (Uint16Array of bit patterns). Plain number arrays
 * are accepted with an explicit dtype (int64 from numbers must be safe integers).
 */
export function fromTypedArray(
  values: AnyTypedArray | readonly number[] | readonly boolean[],
  shape: readonly number[],
  dtype?: NumericDType,
): RawTensor {
  const n = numElements(shape, 'fromTypedArray');
  let d: NumericDType;
  let data: Uint8Array;
  if (!ArrayBuffer.isView(values)) {
    check(dtype !== undefined, () => 'fromTypedArray: a plain array needs an explicit dtype');
    const arr = values as readonly (number | boolean)[];
    d = dtype;
    switch (d) {
      case 'float32':
        data = bytesOf(Float32Array.from(arr, Number));
        break;
      case 'float64':
        data = bytesOf(Float64Array.from(arr, Number));
        break;
      case 'float16':
        data = bytesOf(Uint16Array.from(arr, (v) => float32ToFloat16Bits(Number(v))));
        break;
      case 'bfloat16':
        data = bytesOf(Uint16Array.from(arr, (v) => float32ToBfloat16Bits(Number(v))));
        break;
      case 'int64':
        data = bytesOf(
          BigInt64Array.from(arr, (v) => {
            check(
              Number.isSafeInteger(Number(v)),
              () => `fromTypedArray: int64 value ${v} is not a safe integer`,
            );
            return BigInt(Number(v));
          }),
        );
        break;
      case 'int32':
        data = bytesOf(Int32Array.from(arr, Number));
        break;
      case 'int16':
        data = bytesOf(Int16Array.from(arr, Number));
        break;
      case 'int8':
        data = bytesOf(Int8Array.from(arr, Number));
        break;
      case 'uint8':
        data = bytesOf(Uint8Array.from(arr, Number));
        break;
      case 'bool':
        data = Uint8Array.from(arr, (v) => (v ? 1 : 0));
        break;
    }
  } else {
    values = values as AnyTypedArray;
    const inferred: NumericDType | undefined =
      values instanceof Float32Array
        ? 'float32'
        : values instanceof Float64Array
          ? 'float64'
          : values instanceof BigInt64Array
            ? 'int64'
            : values instanceof Int32Array
              ? 'int32'
              : values instanceof Int16Array
                ? 'int16'
                : values instanceof Int8Array
                  ? 'int8'
                  : values instanceof Uint8Array
                    ? 'uint8'
                    : undefined;
    d = dtype ?? (inferred as NumericDType);
    check(
      d !== undefined,
      () =>
        `fromTypedArray: cannot infer a dtype from ${values.constructor.name}; pass dtype ('float16' or 'bfloat16')`,
    );
    const compatible =
      d === inferred ||
      (d === 'bool' && inferred === 'uint8') ||
      ((d === 'float16' || d === 'bfloat16') && values instanceof Uint16Array);
    check(compatible, () => `fromTypedArray: dtype '${d}' does not match a ${values.constructor.name}`);
    data = bytesOf(values);
  }
  check(
    data.byteLength === n * ITEM_SIZE[d],
    () => `fromTypedArray: shape [${shape}] needs ${n} elements, got ${data.byteLength / ITEM_SIZE[d]}`,
  );
  return { dtype: d, shape: [...shape], data };
}

/** A RawTensor of dtype 'string' from JS strings (UTF-8) or byte arrays. */
export function fromStrings(values: readonly (string | Uint8Array)[], shape: readonly number[]): RawTensor {
  const n = numElements(shape, 'fromStrings');
  check(values.length === n, () => `fromStrings: shape [${shape}] needs ${n} strings, got ${values.length}`);
  const enc = new TextEncoder();
  const parts = values.map((v) => (typeof v === 'string' ? enc.encode(v) : v));
  let total = 0;
  for (const p of parts) total += p.byteLength;
  const data = new Uint8Array(total);
  const strings: Uint8Array[] = [];
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    strings.push(data.subarray(at, at + p.byteLength));
    at += p.byteLength;
  }
  return { dtype: 'string', shape: [...shape], data, strings };
}

function requireLittleEndianHost(what: string): void {
  if (!HOST_LITTLE_ENDIAN) {
    throw new WeightsFormatError(
      `${what}: big-endian hosts are not supported (tensor bytes are little-endian)`,
    );
  }
}

/** The bytes of `u8` in a buffer whose offset is a multiple of `align` (a view when possible, else a copy). */
function aligned(u8: Uint8Array, align: number): Uint8Array {
  return u8.byteOffset % align === 0 ? u8 : u8.slice();
}

/**
 * The elements as a typed array of the matching type (see TypedArrayOf): a view of `raw.data`
 * when its offset is aligned, a copy otherwise. float16 / bfloat16 come back as raw Uint16 bits,
 * int64 as BigInt64Array, bool as Uint8Array (0/1).
 */
export function toTypedArray(raw: RawTensor): AnyTypedArray {
  const what = 'toTypedArray';
  checkRawTensor(raw, what);
  requireLittleEndianHost(what);
  const { data } = raw;
  switch (raw.dtype) {
    case 'float32': {
      const b = aligned(data, 4);
      return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    }
    case 'float64': {
      const b = aligned(data, 8);
      return new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8);
    }
    case 'float16':
    case 'bfloat16': {
      const b = aligned(data, 2);
      return new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
    }
    case 'int64': {
      const b = aligned(data, 8);
      return new BigInt64Array(b.buffer, b.byteOffset, b.byteLength / 8);
    }
    case 'int32': {
      const b = aligned(data, 4);
      return new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    }
    case 'int16': {
      const b = aligned(data, 2);
      return new Int16Array(b.buffer, b.byteOffset, b.byteLength / 2);
    }
    case 'int8':
      return new Int8Array(data.buffer, data.byteOffset, data.byteLength);
    case 'uint8':
    case 'bool':
      return data;
    case 'string':
      throw new WeightsFormatError(`${what}: a string tensor has no typed array; use raw.strings`);
  }
}

// ---------------------------------------------------------------------------------------------
// Half-precision conversions.

let halfTable: Float32Array | null = null;

function halfToFloatSlow(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (e - 15) * (1 + f / 1024);
}

/** All 65536 float16 values as float32 (256 KiB, built on first use). */
function getHalfTable(): Float32Array {
  if (halfTable === null) {
    const t = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) t[h] = halfToFloatSlow(h);
    halfTable = t;
  }
  return halfTable;
}

/** Decodes float16 bit patterns to float32 (exact). */
export function float16BitsToFloat32(bits: Uint16Array): Float32Array {
  const table = getHalfTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}

/** Decodes bfloat16 bit patterns to float32 (exact: bfloat16 is the top half of a float32). */
export function bfloat16BitsToFloat32(bits: Uint16Array): Float32Array {
  const u32 = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) u32[i] = bits[i] << 16;
  return new Float32Array(u32.buffer);
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** float32 -> float16 bits, rounding to nearest even; overflow gives +-Infinity, NaN stays NaN. */
export function float32ToFloat16Bits(value: number): number {
  scratchF32[0] = value;
  const x = scratchU32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the 24-bit significand into 10 bits, round half to even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const kept = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (rest > mid || (rest === mid && kept & 1) ? kept + 1 : kept);
  }
  const h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to Infinity).
  return sign | (rest > 0x1000 || (rest === 0x1000 && h & 1) ? h + 1 : h);
}

/** float32 -> bfloat16 bits, rounding to nearest even; NaN stays NaN. */
export function float32ToBfloat16Bits(value: number): number {
  scratchF32[0] = value;
  const x = scratchU32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Encodes float32 values as float16 bits. */
export function float32ToFloat16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Conversions to the dtypes TF.js holds.

/**
 * The values as a new Float32Array (always a copy, so it never keeps a file buffer alive):
 * float16 / bfloat16 / float64 convert exactly or by rounding, integers and bools convert to their
 * value (int64 beyond 2^24 loses precision as float32 must).
 */
export function toFloat32(raw: RawTensor): Float32Array {
  const arr = toTypedArray(raw);
  switch (raw.dtype) {
    case 'float16':
      return float16BitsToFloat32(arr as Uint16Array);
    case 'bfloat16':
      return bfloat16BitsToFloat32(arr as Uint16Array);
    case 'int64': {
      const big = arr as BigInt64Array;
      const out = new Float32Array(big.length);
      for (let i = 0; i < big.length; i++) out[i] = Number(big[i]);
      return out;
    }
    case 'float32':
      return (arr as Float32Array).slice();
    default:
      return Float32Array.from(arr as Exclude<AnyTypedArray, BigInt64Array | Uint16Array>);
  }
}

/**
 * The values of an integer or bool tensor as a new Int32Array. int64 values must fit in int32
 * (the error names the first one that does not); float dtypes are refused.
 */
export function toInt32(raw: RawTensor, what = 'toInt32'): Int32Array {
  switch (raw.dtype) {
    case 'int64': {
      checkRawTensor(raw, what);
      requireLittleEndianHost(what);
      // Each int64 is (lo, hi) as two int32; it fits iff hi is the sign extension of lo.
      const b = aligned(raw.data, 4);
      const pairs = new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      const out = new Int32Array(pairs.length / 2);
      for (let i = 0; i < out.length; i++) {
        const lo = pairs[2 * i];
        const hi = pairs[2 * i + 1];
        if (hi !== lo >> 31) {
          const v = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
          throw new WeightsFormatError(`${what}: int64 element ${i} = ${v} does not fit in int32`);
        }
        out[i] = lo;
      }
      return out;
    }
    case 'int32':
      return (toTypedArray(raw) as Int32Array).slice();
    case 'int16':
    case 'int8':
    case 'uint8':
    case 'bool':
      return Int32Array.from(toTypedArray(raw) as Int16Array | Int8Array | Uint8Array);
    default:
      throw new WeightsFormatError(`${what}: cannot convert dtype '${raw.dtype}' to int32 without rounding`);
  }
}

/** The TF.js dtype a RawTensor dtype maps to by default. */
export function tfDTypeOf(dtype: DType): 'float32' | 'int32' | 'bool' | 'string' {
  switch (dtype) {
    case 'float32':
    case 'float16':
    case 'bfloat16':
    case 'float64':
      return 'float32';
    case 'bool':
      return 'bool';
    case 'string':
      return 'string';
    default:
      return 'int32';
  }
}

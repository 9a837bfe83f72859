import { describeWithBackends, expectNoLeaks } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';
import {
  bfloat16BitsToFloat32,
  checkRawTensor,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  fromStrings,
  fromTypedArray,
  type RawTensorMap,
  toFloat32,
  toInt32,
  toTypedArray,
} from './raw_tensor.js';
import { fromTfTensors, toTfTensor, toTfTensors } from './tf_convert.js';

describe('half-precision conversions', () => {
  it('float16 -> float32 -> float16 is the identity for every non-NaN pattern', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const f = float16BitsToFloat32(all);
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(f[h])) {
        expect(Number.isNaN(float16BitsToFloat32(Uint16Array.of(float32ToFloat16Bits(f[h])))[0])).toBe(true);
        continue;
      }
      if (float32ToFloat16Bits(f[h]) !== h)
        throw new Error(
          `half 0x${h.toString(16)} -> ${f[h]} -> 0x${float32ToFloat16Bits(f[h]).toString(16)}`,
        );
    }
    expect(f[0x3c00]).toBe(1);
    expect(f[0xc000]).toBe(-2);
    expect(f[0x0001]).toBe(2 ** -24);
    expect(f[0x7c00]).toBe(Number.POSITIVE_INFINITY);
  });

  it('float32 -> float16 rounds to nearest even, overflows to infinity, underflows to zero', () => {
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even (down)
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00);
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff);
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal -> 0
    expect(float32ToFloat16Bits(2 ** -25 * 1.5)).toBe(1);
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
    expect(float32ToFloat16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the normal range
  });

  it('bfloat16 both ways', () => {
    expect(Array.from(bfloat16BitsToFloat32(Uint16Array.of(0x3f80, 0xc000, 0x7f80)))).toEqual([
      1,
      -2,
      Number.POSITIVE_INFINITY,
    ]);
    expect(float32ToBfloat16Bits(1)).toBe(0x3f80);
    expect(float32ToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(float32ToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(Number.isNaN(bfloat16BitsToFloat32(Uint16Array.of(float32ToBfloat16Bits(Number.NaN)))[0])).toBe(
      true,
    );
  });
});

describe('RawTensor helpers', () => {
  it('toTypedArray views aligned data and copies misaligned data', () => {
    const buf = new Uint8Array(13);
    new Float32Array(buf.buffer, 4, 2).set([1.5, -3]);
    const aligned = { dtype: 'float32' as const, shape: [2], data: buf.subarray(4, 12) };
    const a = toTypedArray(aligned) as Float32Array;
    expect(a.buffer).toBe(buf.buffer);
    expect(Array.from(a)).toEqual([1.5, -3]);
    const odd = new Uint8Array(9);
    odd.set(buf.subarray(4, 12), 1);
    const m = toTypedArray({ dtype: 'float32', shape: [2], data: odd.subarray(1) }) as Float32Array;
    expect(m.buffer).not.toBe(odd.buffer);
    expect(Array.from(m)).toEqual([1.5, -3]);
  });

  it('toFloat32 / toInt32 convert every dtype; int64 outside int32 is an error naming the element', () => {
    expect(Array.from(toFloat32(fromTypedArray([1, -2.5], [2], 'float16')))).toEqual([1, -2.5]);
    expect(Array.from(toFloat32(fromTypedArray(new Float64Array([0.1]), [1])))).toEqual([Math.fround(0.1)]);
    expect(Array.from(toFloat32(fromTypedArray(new BigInt64Array([-5n]), [1])))).toEqual([-5]);
    expect(
      Array.from(toInt32(fromTypedArray(new BigInt64Array([-5n, 2147483647n, -2147483648n]), [3]))),
    ).toEqual([-5, 2147483647, -2147483648]);
    expect(() => toInt32(fromTypedArray(new BigInt64Array([1n, 2147483648n]), [2]))).toThrow(
      /int64 element 1 = 2147483648 does not fit in int32/,
    );
    expect(() => toInt32(fromTypedArray(new BigInt64Array([-2147483649n]), [1]))).toThrow(/-2147483649/);
    expect(Array.from(toInt32(fromTypedArray(new Uint8Array([255]), [1])))).toEqual([255]);
    expect(() => toInt32(fromTypedArray(new Float32Array([1]), [1]))).toThrow(
      /cannot convert dtype 'float32' to int32/,
    );
  });

  it('checkRawTensor and fromTypedArray validate', () => {
    expect(() => checkRawTensor({ dtype: 'float32', shape: [3], data: new Uint8Array(8) }, 'x')).toThrow(
      /x: float32 \[3\] needs 12 bytes, got 8/,
    );
    expect(() =>
      checkRawTensor({ dtype: 'complex64' as never, shape: [1], data: new Uint8Array(8) }, 'x'),
    ).toThrow(/unknown dtype "complex64"/);
    expect(() => checkRawTensor({ dtype: 'int8', shape: [1.5], data: new Uint8Array(1) }, 'x')).toThrow(
      /non-negative integers/,
    );
    expect(() => fromTypedArray(new Float32Array(3), [2])).toThrow(/shape \[2\] needs 2 elements, got 3/);
    expect(() => fromTypedArray(new Uint16Array(1), [1])).toThrow(/cannot infer a dtype from Uint16Array/);
    expect(() => fromTypedArray(new Int32Array(1), [1], 'float32')).toThrow(
      /dtype 'float32' does not match a Int32Array/,
    );
    expect(fromStrings(['ab', 'c'], [2]).strings?.map((s) => s.length)).toEqual([2, 1]);
  });
});

describeWithBackends('toTfTensors / fromTfTensors', () => {
  const map = (): RawTensorMap => ({
    f16: fromTypedArray([0.5, -1], [2], 'float16'),
    bf16: fromTypedArray([2, 4], [1, 2], 'bfloat16'),
    f64: fromTypedArray(new Float64Array([1.25]), []),
    i64: fromTypedArray(new BigInt64Array([7n, -7n]), [2]),
    u8: fromTypedArray(new Uint8Array([200]), [1]),
    b: fromTypedArray([true, false], [2], 'bool'),
    s: fromStrings(['hello'], [1]),
  });

  it('maps dtypes as TF.js allows and leaks nothing', async () => {
    const before = tf.memory().numTensors;
    const ts = toTfTensors(map());
    expect(tf.memory().numTensors - before).toBe(7);
    expect(Object.fromEntries(Object.entries(ts).map(([k, t]) => [k, t.dtype]))).toEqual({
      f16: 'float32',
      bf16: 'float32',
      f64: 'float32',
      i64: 'int32',
      u8: 'int32',
      b: 'bool',
      s: 'string',
    });
    expect(Array.from(ts.f16.dataSync())).toEqual([0.5, -1]);
    expect(ts.bf16.shape).toEqual([1, 2]);
    expect(Array.from(ts.i64.dataSync())).toEqual([7, -7]);
    expect(Array.from(ts.b.dataSync())).toEqual([1, 0]);
    const back = await expectNoLeaks(() => fromTfTensors(ts), 'fromTfTensors');
    expect(back.s.strings?.[0]).toEqual(new TextEncoder().encode('hello'));
    expect(back.b.dtype).toBe('bool');
    for (const t of Object.values(ts)) t.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('forces a dtype, selects names, and on error allocates no tensor', async () => {
    const m = map();
    delete m.s;
    const f = toTfTensors(m, { dtype: 'float32', names: ['i64', 'b'] });
    expect(Object.keys(f).sort()).toEqual(['b', 'i64']);
    expect(f.b.dtype).toBe('float32');
    tf.dispose(Object.values(f));
    const bad: RawTensorMap = { ...m, huge: fromTypedArray(new BigInt64Array([1n << 40n]), [1]) };
    await expectNoLeaks(() => {
      expect(() => toTfTensors(bad)).toThrow(
        /toTfTensors: tensor 'huge': int64 element 0 = 1099511627776 does not fit in int32/,
      );
    }, 'failed toTfTensors');
    await expectNoLeaks(() => {
      expect(() => toTfTensors(m, { dtype: 'int32' })).toThrow(/cannot convert dtype 'float16' to int32/);
      expect(() => toTfTensors(m, { names: ['nope'] })).toThrow(/names \[nope\] are not in the map/);
    }, 'failed toTfTensors');
    const one = toTfTensor(m.f64);
    expect(one.shape).toEqual([]);
    one.dispose();
  });
});

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithFixture, readFixture } from '@effdet/testing';
import { memorySource } from './bytes.js';
import { WeightsFormatError } from './errors.js';
import { openSafetensorsFile, readSafetensorsFile, writeSafetensorsFile } from './node.js';
import { DTYPES, fromTypedArray, type NumericDType, type RawTensorMap, toFloat32 } from './raw_tensor.js';
import { openSafetensors, readSafetensors, writeSafetensors } from './safetensors.js';
import { sameBytes } from './testing/compare.js';

/** A safetensors file from a header object and a data section (for corrupt-input tests). */
function rawFile(header: unknown, data = new Uint8Array(0), headerLength?: number): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function sampleOf(dtype: NumericDType, n: number) {
  const ints = Array.from({ length: n }, (_, i) => (i % 2 ? -1 : 1) * i * 3);
  switch (dtype) {
    case 'float32':
      return fromTypedArray(
        Float32Array.from(ints, (v) => v / 7),
        [n],
      );
    case 'float64':
      return fromTypedArray(
        Float64Array.from(ints, (v) => v / 7),
        [n],
      );
    case 'float16':
    case 'bfloat16':
      return fromTypedArray(
        ints.map((v) => v / 4),
        [n],
        dtype,
      );
    case 'int64':
      return fromTypedArray(
        BigInt64Array.from(ints, (v) => BigInt(v) * 10_000_000_000n),
        [n],
      );
    case 'int32':
      return fromTypedArray(
        Int32Array.from(ints, (v) => v * 100_000),
        [n],
      );
    case 'int16':
      return fromTypedArray(Int16Array.from(ints), [n]);
    case 'int8':
      return fromTypedArray(
        Int8Array.from(ints, (v) => v % 100),
        [n],
      );
    case 'uint8':
      return fromTypedArray(
        Uint8Array.from(ints, (v) => Math.abs(v) % 256),
        [n],
      );
    case 'bool':
      return fromTypedArray(
        ints.map((v) => v % 3 === 0),
        [n],
        'bool',
      );
  }
}

describe('safetensors write -> read', () => {
  const numeric = DTYPES.filter((d): d is NumericDType => d !== 'string');

  it('round-trips every dtype, shapes incl. scalars and empty tensors, and metadata', () => {
    const tensors: RawTensorMap = {};
    for (const [i, d] of numeric.entries()) tensors[`t.${d}`] = sampleOf(d, 3 + i);
    tensors.scalar = fromTypedArray(new Float32Array([2.5]), []);
    tensors.empty = fromTypedArray(new Int32Array(0), [0, 4]);
    tensors['2d'] = fromTypedArray(new Float64Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    tensors['0'] = fromTypedArray(new Int8Array([1]), [1]); // integer-like name keeps its place
    const metadata = { format: 'pt', config: '{"a": 1}' };
    const bytes = writeSafetensors(tensors, metadata);
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLen) % 8).toBe(0);
    const back = readSafetensors(bytes);
    expect(back.metadata).toEqual(metadata);
    expect(Object.keys(back.tensors).sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      expect(back.tensors[name].dtype).toBe(t.dtype);
      expect(back.tensors[name].shape).toEqual(t.shape);
      expect(Array.from(back.tensors[name].data)).toEqual(Array.from(t.data));
    }
    // Laid out largest item first, so every tensor is aligned to its item size.
    for (const name of ['t.float64', 't.int64', 't.float32', 't.int32']) {
      const size = name.endsWith('64') ? 8 : 4;
      expect(back.tensors[name].data.byteOffset % size).toBe(0);
    }
  });

  it('refuses string tensors and a tensor named __metadata__', () => {
    expect(() =>
      writeSafetensors({
        s: { dtype: 'string', shape: [1], data: new Uint8Array(1), strings: [new Uint8Array(1)] },
      }),
    ).toThrow(/dtype 'string' cannot be stored in safetensors/);
    expect(() => writeSafetensors({ __metadata__: fromTypedArray(new Float32Array(1), [1]) })).toThrow(
      /reserved/,
    );
    expect(() => writeSafetensors({ a: { dtype: 'float32', shape: [2], data: new Uint8Array(4) } })).toThrow(
      /writeSafetensors: tensor 'a': float32 \[2\] needs 8 bytes, got 4/,
    );
  });

  it('file and range reads agree with memory reads; names such as __proto__ are plain keys', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'effdet-st-'));
    try {
      const proto = '__proto__';
      const tensors: RawTensorMap = Object.create(null);
      tensors[proto] = fromTypedArray(new Float32Array([1, 2]), [2]);
      const ctor = 'constructor';
      tensors[ctor] = fromTypedArray(new Int32Array([3]), [1]);
      tensors.w = fromTypedArray(new Float32Array([4, 5, 6]), [3]);
      const path = join(dir, 'x.safetensors');
      await writeSafetensorsFile(path, tensors, { k: 'v' });
      const all = await readSafetensorsFile(path);
      expect(Object.keys(all.tensors).sort()).toEqual(['__proto__', 'constructor', 'w']);
      expect(Array.from(toFloat32(all.tensors[proto]))).toEqual([1, 2]);
      expect(Object.getPrototypeOf(all.tensors)).toBeNull();
      const one = await readSafetensorsFile(path, { names: ['w'] });
      expect(Object.keys(one.tensors)).toEqual(['w']);
      expect(Array.from(toFloat32(one.tensors.w))).toEqual([4, 5, 6]);
      await expect(readSafetensorsFile(path, { names: ['nope'] })).rejects.toThrow(/no tensor named 'nope'/);
      const reader = await openSafetensorsFile(path);
      expect(reader.entries.map((e) => e.name).sort()).toEqual(['__proto__', 'constructor', 'w']);
      expect((await reader.read('constructor')).dtype).toBe('int32');
      await reader.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeWithFixture('effdet/tf_efficientdet_d0_s1.weights.safetensors', 'safetensors fixtures', (path) => {
  it('reads the F32 d0 weights like the test helper does, from memory and by range', async () => {
    const expected = readFixture(path);
    const mem = readSafetensors(readFileSync(path));
    const file = await readSafetensorsFile(path);
    expect(Object.keys(mem.tensors).length).toBe(expected.tensors.size);
    for (const [name, t] of expected.tensors) {
      expect(mem.tensors[name].shape).toEqual(t.shape);
      expect(sameBytes(toFloat32(mem.tensors[name]), t.data)).toBe(true);
      expect(sameBytes(file.tensors[name].data, mem.tensors[name].data)).toBe(true);
    }
  });

  it('reads the F16 lite0 weights', async () => {
    const lite = path.replace('tf_efficientdet_d0_s1', 'tf_efficientdet_lite0_s2');
    const expected = readFixture(lite);
    const m = await readSafetensorsFile(lite);
    for (const [name, t] of expected.tensors) {
      expect(m.tensors[name].dtype).toBe('float16');
      expect(sameBytes(toFloat32(m.tensors[name]), t.data)).toBe(true);
    }
  });

  it('a selective read touches only the header and the requested range', async () => {
    const bytes = readFileSync(path);
    const reads: [number, number][] = [];
    const src = memorySource(bytes);
    const spy = {
      size: src.size,
      read: (o: number, n: number) => {
        reads.push([o, n]);
        return src.read(o, n);
      },
    };
    const reader = await openSafetensors(spy);
    await reader.readAll(['backbone.conv_stem.weight']);
    expect(reads.length).toBe(3);
    expect(reads[2][1]).toBe(32 * 3 * 3 * 3 * 4);
  });

  it('truncated file: clear error before any tensor is read', () => {
    const bytes = readFileSync(path);
    expect(() => readSafetensors(bytes.subarray(0, bytes.length - 1))).toThrow(/exceed the data section/);
    expect(() => readSafetensors(bytes.subarray(0, 1000))).toThrow(
      /readSafetensors: header length \d+ exceeds file size 1000/,
    );
    expect(() => readSafetensors(bytes.subarray(0, 5))).toThrow(/shorter than the 8-byte header length/);
  });
});

describe('safetensors header validation', () => {
  const entry = (dtype: string, shape: number[], offsets: [number, number]) => ({
    dtype,
    shape,
    data_offsets: offsets,
  });

  it.each([
    [
      'header length beyond the file',
      rawFile({}, new Uint8Array(0), 123456789),
      /header length 123456789 exceeds file size/,
    ],
    [
      'not JSON',
      (() => {
        const b = rawFile({ a: 1 });
        b[12] = 0x7d;
        return b;
      })(),
      /header is not valid JSON/,
    ],
    ['a JSON array', rawFile([1, 2]), /header does not start with '\{'/],
    [
      'unknown dtype',
      rawFile({ a: entry('U16', [1], [0, 2]) }, new Uint8Array(2)),
      /tensor 'a': unsupported dtype 'U16'/,
    ],
    [
      'offsets outside the file',
      rawFile({ a: entry('F32', [2], [0, 8]) }, new Uint8Array(4)),
      /exceed the data section of 4 bytes/,
    ],
    [
      'span not matching the shape',
      rawFile({ a: entry('F32', [3], [0, 8]) }, new Uint8Array(8)),
      /needs 12 bytes but data_offsets \[0, 8\] span 8/,
    ],
    ['begin > end', rawFile({ a: entry('F32', [0], [8, 4]) }, new Uint8Array(8)), /has begin > end/],
    [
      'overlapping tensors',
      rawFile({ a: entry('F32', [2], [0, 8]), b: entry('F32', [2], [4, 12]) }, new Uint8Array(12)),
      /tensors 'a' \[0, 8\) and 'b' \[4, 12\) overlap/,
    ],
    [
      'negative dimension',
      rawFile({ a: entry('F32', [-1], [0, 4]) }, new Uint8Array(4)),
      /non-negative integers/,
    ],
    [
      'non-string metadata',
      rawFile({ __metadata__: { a: 1 } }),
      /__metadata__ value of 'a' must be a string/,
    ],
    [
      'entry without offsets',
      rawFile({ a: { dtype: 'F32', shape: [1] } }, new Uint8Array(4)),
      /data_offsets must be \[begin, end\]/,
    ],
  ])('%s', (_what, bytes, message) => {
    expect(() => readSafetensors(bytes)).toThrow(WeightsFormatError);
    expect(() => readSafetensors(bytes)).toThrow(message);
  });

  it('accepts an empty file header and trailing-space padding', () => {
    const padded = new TextEncoder().encode('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}     ');
    const b = new Uint8Array(8 + padded.length + 2);
    new DataView(b.buffer).setBigUint64(0, BigInt(padded.length), true);
    b.set(padded, 8);
    b.set([7, 9], 8 + padded.length);
    expect(Array.from(readSafetensors(b).tensors.a.data)).toEqual([7, 9]);
    expect(Object.keys(readSafetensors(rawFile({})).tensors)).toEqual([]);
  });

  it('an error in the header allocates nothing: the file is never read past the header', async () => {
    const bad = rawFile({ a: entry('F32', [2], [0, 8]), b: entry('F32', [2], [4, 12]) }, new Uint8Array(12));
    const dir = mkdtempSync(join(tmpdir(), 'effdet-st-'));
    try {
      writeFileSync(join(dir, 'bad.safetensors'), bad);
      await expect(readSafetensorsFile(join(dir, 'bad.safetensors'))).rejects.toThrow(/overlap/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

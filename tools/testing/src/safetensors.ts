import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';

/** One tensor of a safetensors file, decoded to float32 / int32 as TF.js stores it. */
export interface FixtureTensor {
  dtype: 'F32' | 'F16' | 'U8';
  shape: number[];
  data: Float32Array | Int32Array;
}

export interface FixtureFile {
  metadata: Record<string, string>;
  tensors: Map<string, FixtureTensor>;
}

let halfTable: Float32Array | null = null;

/** float16 bits -> float32 value, through a 65536-entry table built on first use. */
function halfToFloat(h: number): number {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) {
      const s = i & 0x8000 ? -1 : 1;
      const e = (i >> 10) & 0x1f;
      const f = i & 0x3ff;
      halfTable[i] =
        e === 0
          ? s * 2 ** -14 * (f / 1024)
          : e === 31
            ? f
              ? Number.NaN
              : s * Number.POSITIVE_INFINITY
            : s * 2 ** (e - 15) * (1 + f / 1024);
    }
  }
  return halfTable[h];
}

/**
 * Reads a safetensors fixture (F32 / F16 / U8 only: what ../shared/fixtures uses). Test helper only;
 * the product reader with every dtype and header validation is `@effdet/weights`.
 */
export function readFixture(path: string): FixtureFile {
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>
  >;
  const base = 8 + headerLen;
  const tensors = new Map<string, FixtureTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = entry as {
      dtype: string;
      shape: number[];
      data_offsets: [number, number];
    };
    const [begin, end] = data_offsets;
    const bytes = buf.subarray(base + begin, base + end);
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array | Int32Array;
    if (dtype === 'F32') {
      data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = bytes.readFloatLE(i * 4);
    } else if (dtype === 'F16') {
      data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = halfToFloat(bytes.readUInt16LE(i * 2));
    } else if (dtype === 'U8') {
      data = new Int32Array(n);
      for (let i = 0; i < n; i++) data[i] = bytes[i];
    } else {
      throw new Error(`readFixture: tensor '${name}' in ${path} has dtype ${dtype}; expected F32, F16 or U8`);
    }
    tensors.set(name, { dtype, shape, data } as FixtureTensor);
  }
  return { metadata, tensors };
}

/** A fixture tensor as a TF.js tensor (float32, or int32 for U8). The caller disposes it. */
export function fixtureTensor(file: FixtureFile, name: string): tf.Tensor {
  const t = file.tensors.get(name);
  if (!t) {
    throw new Error(`fixtureTensor: no tensor '${name}'; have ${[...file.tensors.keys()].join(', ')}`);
  }
  return tf.tensor(t.data, t.shape, t.dtype === 'U8' ? 'int32' : 'float32');
}

/** Every tensor whose name starts with `prefix` (prefix removed), as TF.js tensors. */
export function fixtureTensors(file: FixtureFile, prefix = ''): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const name of file.tensors.keys()) {
    if (name.startsWith(prefix)) out[name.slice(prefix.length)] = fixtureTensor(file, name);
  }
  return out;
}

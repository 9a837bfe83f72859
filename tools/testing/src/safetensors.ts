import { readFileSync } from 'node:fs';
import { readSafetensors, toFloat32 } from '@effdet/weights';
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

/**
 * Reads a safetensors fixture (F32 / F16 / U8: what ../shared/fixtures uses) with `@effdet/weights`, decoded
 * to float32 (U8 to int32) for the tests.
 */
export function readFixture(path: string): FixtureFile {
  const { metadata, tensors: raw } = readSafetensors(new Uint8Array(readFileSync(path)));
  const tensors = new Map<string, FixtureTensor>();
  for (const [name, t] of Object.entries(raw)) {
    if (t.dtype === 'uint8')
      tensors.set(name, { dtype: 'U8', shape: t.shape, data: Int32Array.from(t.data) });
    else if (t.dtype === 'float32' || t.dtype === 'float16') {
      tensors.set(name, { dtype: t.dtype === 'float32' ? 'F32' : 'F16', shape: t.shape, data: toFloat32(t) });
    } else {
      throw new Error(
        `readFixture: tensor '${name}' in ${path} has dtype ${t.dtype}; expected F32, F16 or U8`,
      );
    }
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

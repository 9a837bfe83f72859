import * as tf from '@tensorflow/tfjs-core';
import { check, WeightsFormatError } from './errors.js';
import {
  checkRawTensor,
  fromStrings,
  fromTypedArray,
  type RawTensor,
  type RawTensorMap,
  tfDTypeOf,
  toFloat32,
  toInt32,
} from './raw_tensor.js';

/** Options of toTfTensor / toTfTensors. */
export interface ToTensorOptions {
  /**
   * Force the TF.js dtype of every numeric tensor: 'float32' also converts integer and bool
   * tensors; 'int32' converts bool and integer tensors and refuses float ones. Default: float
   * dtypes -> float32, integers (int64 range-checked) -> int32, bool -> bool, string -> string.
   */
  dtype?: 'float32' | 'int32';
  /** Only these names (a list, or a predicate). Default: every tensor. */
  names?: readonly string[] | ((name: string) => boolean);
}

type HostValues = Float32Array | Int32Array | Uint8Array | Uint8Array[];

/** Converts on the CPU side only, so a bad tensor throws before any tf.Tensor exists. */
function hostValues(
  raw: RawTensor,
  what: string,
  dtype: ToTensorOptions['dtype'],
): { values: HostValues; dtype: 'float32' | 'int32' | 'bool' | 'string' } {
  checkRawTensor(raw, what);
  if (raw.dtype === 'string') {
    check(dtype === undefined, () => `${what}: cannot convert a string tensor to ${dtype}`);
    return { values: raw.strings as Uint8Array[], dtype: 'string' };
  }
  const target = dtype ?? tfDTypeOf(raw.dtype);
  switch (target) {
    case 'float32':
      return { values: toFloat32(raw), dtype: 'float32' };
    case 'int32':
      return { values: toInt32(raw, what), dtype: 'int32' };
    case 'bool':
      return { values: raw.data.slice(), dtype: 'bool' };
    default:
      throw new WeightsFormatError(`${what}: unsupported target dtype ${target}`);
  }
}

function selected(names: ToTensorOptions['names']): (name: string) => boolean {
  if (names === undefined) return () => true;
  if (typeof names === 'function') return names;
  const set = new Set(names);
  return (n) => set.has(n);
}

/** One RawTensor as a tf.Tensor (see ToTensorOptions for the dtype rules). */
export function toTfTensor(
  raw: RawTensor,
  options: Pick<ToTensorOptions, 'dtype'> = {},
  name = 'tensor',
): tf.Tensor {
  const { values, dtype } = hostValues(raw, `toTfTensor(${name})`, options.dtype);
  return tf.tensor(values, raw.shape, dtype);
}

/**
 * Every RawTensor of a map as a tf.Tensor. All conversions (and their checks: dtype, byte length,
 * int64 range) run before the first tensor is created, so an error leaves no tensor behind and
 * nothing has to be disposed; the caller owns (and disposes) the returned tensors.
 * A name listed in `options.names` that the map lacks is an error.
 */
export function toTfTensors(map: RawTensorMap, options: ToTensorOptions = {}): Record<string, tf.Tensor> {
  if (Array.isArray(options.names)) {
    const missing = options.names.filter((n) => !Object.hasOwn(map, n));
    check(
      missing.length === 0,
      () =>
        `toTfTensors: names [${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}] are not in the map`,
    );
  }
  const want = selected(options.names);
  const prepared: [string, HostValues, number[], 'float32' | 'int32' | 'bool' | 'string'][] = [];
  for (const name of Object.keys(map)) {
    if (!want(name)) continue;
    const { values, dtype } = hostValues(map[name], `toTfTensors: tensor '${name}'`, options.dtype);
    prepared.push([name, values, map[name].shape, dtype]);
  }
  const out = Object.create(null) as Record<string, tf.Tensor>;
  try {
    for (const [name, values, shape, dtype] of prepared) out[name] = tf.tensor(values, shape, dtype);
  } catch (e) {
    // Only reachable when the backend itself fails (e.g. out of memory): free what was made.
    for (const t of Object.values(out)) t.dispose();
    throw e;
  }
  return out;
}

/** Reads a tf.Tensor back into a RawTensor (float32 / int32 / bool / string). Disposes nothing. */
export async function fromTfTensor(t: tf.Tensor, name = 'tensor'): Promise<RawTensor> {
  switch (t.dtype) {
    case 'float32':
      return fromTypedArray((await t.data()) as Float32Array, t.shape);
    case 'int32':
      return fromTypedArray((await t.data()) as Int32Array, t.shape);
    case 'bool':
      return fromTypedArray(Uint8Array.from((await t.data()) as Uint8Array), t.shape, 'bool');
    case 'string':
      return fromStrings((await t.bytes()) as Uint8Array[], t.shape);
    default:
      throw new WeightsFormatError(`fromTfTensor: tensor '${name}' has unsupported dtype ${t.dtype}`);
  }
}

/** Reads every tf.Tensor of a map into RawTensors (for saving). Disposes nothing. */
export async function fromTfTensors(tensors: Record<string, tf.Tensor>): Promise<RawTensorMap> {
  const out = Object.create(null) as RawTensorMap;
  for (const name of Object.keys(tensors)) out[name] = await fromTfTensor(tensors[name], name);
  return out;
}

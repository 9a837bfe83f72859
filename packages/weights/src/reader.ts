import { check } from './errors.js';
import type { DType, RawTensor, RawTensorMap } from './raw_tensor.js';

/** The weight file formats this package reads. */
export type WeightsFormat = 'safetensors' | 'pth' | 'pth-legacy' | 'tf-checkpoint' | 'tfjs';

/** Name, dtype and shape of one stored tensor, known before its bytes are read. */
export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
}

/** A name filter: a list of names, or a predicate. */
export type NameFilter = readonly string[] | ((name: string) => boolean);

/**
 * Lazy access to the tensors of one weight file: the entry list is parsed up front, tensor bytes
 * are read on demand (only the ranges asked for, where the format and the source allow it).
 */
export interface WeightsReader {
  readonly format: WeightsFormat;
  /** String metadata (safetensors `__metadata__`, TF.js userDefinedMetadata, checkpoint info). */
  readonly metadata: Record<string, string>;
  readonly entries: readonly TensorInfo[];
  has(name: string): boolean;
  /** One tensor; an unknown name is an error that lists a few known ones. */
  read(name: string): Promise<RawTensor>;
  /** Every tensor, or those the filter selects (a listed name that is missing is an error). */
  readAll(filter?: NameFilter): Promise<RawTensorMap>;
  /** Releases file handles (a no-op for in-memory readers). */
  close(): Promise<void>;
}

/** The entry names a filter selects, in entry order; listed names that do not exist are an error. */
export function selectNames(fn: string, entries: readonly TensorInfo[], filter?: NameFilter): string[] {
  const names = entries.map((e) => e.name);
  if (filter === undefined) return names;
  if (typeof filter === 'function') return names.filter(filter);
  const known = new Set(names);
  const missing = filter.filter((n) => !known.has(n));
  check(
    missing.length === 0,
    () =>
      `${fn}: no tensor named ${missing
        .slice(0, 5)
        .map((n) => `'${n}'`)
        .join(', ')}${missing.length > 5 ? ', ...' : ''}${hint(names)}`,
  );
  return [...filter];
}

/** " (known: a, b, c, ...)" for error messages about unknown names. */
export function hint(names: readonly string[]): string {
  if (names.length === 0) return ' (the file holds no tensors)';
  const shown = names.slice(0, 4).map((n) => `'${n}'`);
  return ` (${names.length} known, e.g. ${shown.join(', ')}${names.length > 4 ? ', ...' : ''})`;
}

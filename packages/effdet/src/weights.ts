import type { LoadStateDictOptions, LoadStateDictResult, Module, StateTensor } from '@effdet/layers';
import { type RawTensorMap, toFloat32 } from '@effdet/weights';

/** Keys a training checkpoint carries that are not model state. */
const SKIP = /(^|\.)num_batches_tracked$/;

/**
 * Loads a PyTorch-named tensor map (any `@effdet/weights` reader: .pth, safetensors, model.json) into a
 * model. Float data goes straight to the variables (no intermediate TF.js tensors for the whole file);
 * `prefix` selects and strips a sub-tree (e.g. `backbone.`). Errors list every mismatched name.
 */
export function loadRawStateDict(
  model: Module,
  raw: RawTensorMap,
  options: LoadStateDictOptions & { prefix?: string } = {},
): LoadStateDictResult {
  const { prefix = '', ...rest } = options;
  const state: Record<string, StateTensor> = {};
  for (const name of Object.keys(raw)) {
    if (!name.startsWith(prefix) || SKIP.test(name)) continue;
    const t = raw[name];
    if (t.dtype === 'string' || t.dtype === 'bool') {
      throw new Error(
        `loadRawStateDict: tensor '${name}' has dtype ${t.dtype}; model weights must be numeric`,
      );
    }
    state[name.slice(prefix.length)] = { shape: t.shape, data: toFloat32(t) };
  }
  return model.loadStateDict(state, rest);
}

import * as tf from '@tensorflow/tfjs-core';

export type BackendChoice = 'wasm' | 'cpu' | 'tensorflow';

/**
 * Registers and selects a TF.js backend. `tensorflow` needs the optional `@tensorflow/tfjs-node` (or
 * `-gpu`) package, which is used when installed and never required.
 */
export async function useBackend(name: BackendChoice = 'wasm'): Promise<string> {
  tf.env().set('IS_TEST', true); // silences the "install tfjs-node" hint; nothing else depends on it
  if (name === 'tensorflow') {
    let loaded = false;
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      try {
        await import(pkg);
        loaded = true;
        break;
      } catch {
        // not installed: try the next one
      }
    }
    if (!loaded) {
      throw new Error(
        "useBackend: backend 'tensorflow' needs @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu installed; use --backend wasm or cpu",
      );
    }
  } else if (name === 'wasm') {
    await import('@tensorflow/tfjs-backend-wasm');
  } else if (name === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
  } else {
    throw new Error(`useBackend: backend must be wasm, cpu or tensorflow, got '${String(name)}'`);
  }
  if (!(await tf.setBackend(name))) throw new Error(`useBackend: backend '${name}' failed to initialise`);
  await tf.ready();
  return tf.getBackend();
}

/**
 * Backend selection. cpu, webgl and wasm are bundled; webgpu is loaded on demand (its own chunk) and only
 * offered when the browser has `navigator.gpu`. The wasm binaries are served under `wasm/` next to the page.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

export type BackendName = 'webgl' | 'wasm' | 'cpu' | 'webgpu';

setWasmPaths(new URL('wasm/', document.baseURI).href);

/** The backends this browser can offer, in menu order. */
export function offeredBackends(): BackendName[] {
  const out: BackendName[] = ['webgl', 'wasm', 'cpu'];
  if ('gpu' in navigator && navigator.gpu) out.push('webgpu');
  return out;
}

/** Switches TF.js to `name` (and waits for it to initialise); throws when it cannot start. */
export async function useBackend(name: BackendName): Promise<string> {
  if (name === 'webgpu' && tf.findBackendFactory('webgpu') === null) {
    await import('@tensorflow/tfjs-backend-webgpu');
  }
  const ok = await tf.setBackend(name);
  await tf.ready();
  if (!ok || tf.getBackend() !== name) throw new Error(`the ${name} backend failed to initialise`);
  return tf.getBackend();
}

/** A short description of the active backend (the GL renderer for webgl). */
export function describeBackend(): string {
  const name = tf.getBackend();
  if (name !== 'webgl') return name;
  try {
    const gl = document.createElement('canvas').getContext('webgl2');
    const ext = gl?.getExtension('WEBGL_debug_renderer_info');
    const renderer = gl && ext ? String(gl.getParameter(ext.UNMASKED_RENDERER_WEBGL)) : 'unknown renderer';
    return `webgl (WebGL ${tf.env().getNumber('WEBGL_VERSION')}, ${renderer})`;
  } catch {
    return 'webgl';
  }
}

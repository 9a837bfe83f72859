import * as tf from '@tensorflow/tfjs-core';

/** Backends every spec runs on. `EFFDET_BACKENDS=cpu` (comma list) narrows the set. */
export const ALL_BACKENDS = ['cpu', 'wasm'] as const;
export type BackendName = (typeof ALL_BACKENDS)[number];

/** The backends that are both requested (EFFDET_BACKENDS) and registered in this process. */
export function availableBackends(): BackendName[] {
  const wanted = (process.env.EFFDET_BACKENDS ?? ALL_BACKENDS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const registered = new Set(Object.keys(tf.engine().registryFactory));
  const found = ALL_BACKENDS.filter((b) => wanted.includes(b) && registered.has(b));
  if (found.length === 0) {
    throw new Error(
      `availableBackends: none of [${wanted.join(', ')}] is registered (registered: ${[...registered].join(', ')})`,
    );
  }
  return found;
}

/**
 * Runs `fn` as a describe block once per available backend (tfjs' `describeWithFlags(ALL_ENVS)` idea).
 * The backend is switched in `beforeAll`, so every `it` inside runs on it.
 */
export function describeWithBackends(name: string, fn: (backend: BackendName) => void): void {
  for (const backend of availableBackends()) {
    describe(`${name} [${backend}]`, () => {
      beforeAll(async () => {
        const ok = await tf.setBackend(backend);
        if (!ok) throw new Error(`describeWithBackends: backend '${backend}' failed to initialise`);
        await tf.ready();
      });
      fn(backend);
    });
  }
}

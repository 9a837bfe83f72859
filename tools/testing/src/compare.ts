import * as tf from '@tensorflow/tfjs-core';

export interface CloseReport {
  maxAbs: number;
  refMaxAbs: number;
  tolerance: number;
  ok: boolean;
}

/**
 * The fixture README's check: `max|a-b| <= rtol * max(1, max|b|)`. Shapes must be equal.
 * Reads both tensors; disposes nothing.
 */
export function closeReport(actual: tf.Tensor, expected: tf.Tensor, rtol = 1e-3): CloseReport {
  if (actual.shape.join(',') !== expected.shape.join(',')) {
    throw new Error(`closeReport: shape [${actual.shape}] differs from expected [${expected.shape}]`);
  }
  const a = actual.dataSync();
  const b = expected.dataSync();
  let maxAbs = 0;
  let refMaxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= maxAbs)) maxAbs = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
    const r = Math.abs(b[i]);
    if (r > refMaxAbs) refMaxAbs = r;
  }
  const tolerance = rtol * Math.max(1, refMaxAbs);
  return { maxAbs, refMaxAbs, tolerance, ok: maxAbs <= tolerance };
}

/** Asserts the fixture tolerance; the message carries the numbers. */
export function expectClose(actual: tf.Tensor, expected: tf.Tensor, rtol = 1e-3, what = 'tensor'): void {
  const r = closeReport(actual, expected, rtol);
  if (!r.ok) {
    throw new Error(
      `${what}: max|a-b| = ${r.maxAbs} exceeds ${r.tolerance} (rtol ${rtol}, max|ref| ${r.refMaxAbs})`,
    );
  }
}

/** Asserts element-wise |a - b| <= atol against literal values. */
export function expectValues(actual: tf.Tensor, expected: number[], atol = 1e-5): void {
  const a = Array.from(actual.dataSync());
  expect(a.length).toBe(expected.length);
  for (let i = 0; i < a.length; i++) {
    if (!(Math.abs(a[i] - expected[i]) <= atol)) {
      throw new Error(
        `expectValues: element ${i} is ${a[i]}, expected ${expected[i]} (atol ${atol})\n got ${a}`,
      );
    }
  }
}

/**
 * Runs `fn` (sync or async) and asserts that `tf.memory().numTensors` is the same afterwards
 * (tfjs-layers' expectNoLeakedTensors). Returns fn's result.
 */
export async function expectNoLeaks<T>(fn: () => T | Promise<T>, what = 'call'): Promise<T> {
  const before = tf.memory().numTensors;
  const out = await fn();
  const after = tf.memory().numTensors;
  if (after !== before) {
    throw new Error(`${what} leaked ${after - before} tensor(s) (${before} before, ${after} after)`);
  }
  return out;
}

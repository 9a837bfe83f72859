/** Element-wise comparison of two float arrays with the fixture README's rule: max|a-b| <= rtol * max(1, max|b|). */
export interface DiffRow {
  name: string;
  shape: number[];
  maxAbs: number;
  /** max|a-b| / max(1, max|b|). */
  maxRel: number;
  pass: boolean;
  note?: string;
}

export function diffArrays(
  name: string,
  shape: number[],
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol = 1e-3,
): DiffRow {
  if (actual.length !== expected.length) {
    return {
      name,
      shape,
      maxAbs: Number.NaN,
      maxRel: Number.NaN,
      pass: false,
      note: `size ${actual.length} != ${expected.length}`,
    };
  }
  let maxAbs = 0;
  let ref = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= maxAbs)) maxAbs = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
    ref = Math.max(ref, Math.abs(expected[i]));
  }
  const maxRel = maxAbs / Math.max(1, ref);
  return { name, shape, maxAbs, maxRel, pass: maxRel <= rtol };
}

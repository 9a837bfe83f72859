import { diffArrays } from './compare.js';

describe('diffArrays (the fixture README rule: max|a-b| <= rtol * max(1, max|b|))', () => {
  it('measures the largest difference relative to max(1, max|expected|)', () => {
    const r = diffArrays('x', [4], [1, 2.002, -3, 0], [1, 2, -3.5, 0]);
    expect(r.maxAbs).toBeCloseTo(0.5, 6);
    expect(r.maxRel).toBeCloseTo(0.5 / 3.5, 6);
    expect(r.pass).toBe(false);
    expect(diffArrays('small', [2], [0.0011, 0], [0.0001, 0], 1e-3).pass).toBe(true);
    expect(diffArrays('small', [2], [0.0021, 0], [0.0001, 0], 1e-3).pass).toBe(false);
  });

  it('fails on NaN and on a size mismatch, saying why', () => {
    const nan = diffArrays('n', [2], [Number.NaN, 0], [1, 0]);
    expect(nan.maxAbs).toBe(Number.POSITIVE_INFINITY);
    expect(nan.pass).toBe(false);
    const size = diffArrays('s', [3], [1, 2], [1, 2, 3]);
    expect(size.pass).toBe(false);
    expect(size.note).toBe('size 2 != 3');
  });
});

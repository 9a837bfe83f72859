import * as tf from '@tensorflow/tfjs-core';
import { matchDetections, rowIou } from './testing_match.js';

const ROWS = [
  [0, 0, 10, 10, 0.9, 1],
  [20, 20, 40, 30, 0.8, 3],
  [5, 5, 15, 25, 0.7, 1],
  [0, 0, 0, 0, 0, 0],
];

describe('matchDetections', () => {
  it('matches identical rows (padding rows match padding)', () => {
    const r = matchDetections(ROWS, ROWS);
    expect(r).toMatchObject({
      matched: 4,
      total: 4,
      sameIndex: 4,
      worstIou: 1,
      worstScoreDiff: 0,
      unmatched: [],
    });
  });

  it('accepts small box and score differences and reports the worst', () => {
    const a = ROWS.map((r) => [...r]);
    a[0][2] = 10.04; // IoU 10 / 10.04
    a[1][4] = 0.8009;
    const r = matchDetections(a.flat(), ROWS.flat());
    expect(r.matched).toBe(4);
    expect(r.worstIou).toBeCloseTo(10 / 10.04, 6);
    expect(r.worstScoreDiff).toBeCloseTo(0.0009, 6);
  });

  it('rejects a different class, a low IoU, a score off by more than 1e-3, and padding against a box', () => {
    const a = ROWS.map((r) => [...r]);
    a[0][5] = 2;
    a[1][2] = 41; // IoU 20/21 < 0.99
    a[2][4] = 0.702;
    a[3] = [1, 1, 2, 2, 0.1, 1];
    const r = matchDetections(a, ROWS);
    expect(r.matched).toBe(0);
    expect(r.unmatched).toEqual([0, 1, 2, 3]);
    expect(r.unmatchedText[0]).toMatch(
      /^image 0 row 0: expected \[0.00, 0.00, 10.00, 10.00, 0.90000, 1.00\], actual row 0 \[/,
    );
  });

  it('matches reordered rows (ties near the cut) through the unused rows', () => {
    const a = [ROWS[1], ROWS[0], ROWS[2], ROWS[3]];
    const r = matchDetections(a, ROWS);
    expect(r.matched).toBe(4);
    expect(r.sameIndex).toBe(2);
  });

  it('compares boxes clipped to a line by their per-axis overlap', () => {
    const e = [798.92, 636, 906.62, 636, 0.8223, 83];
    const a = [798.91, 636, 906.62, 636, 0.8224, 83];
    expect(rowIou(a, 0, e, 0)).toBeGreaterThan(0.99);
    expect(matchDetections(a, e).matched).toBe(1);
    expect(rowIou([0, 636, 10, 636], 0, [0, 600, 10, 600], 0)).toBe(0);
  });

  it('takes [B, R, 6] tensors and counts per image', () => {
    const t = tf.tensor3d([ROWS, ROWS]);
    const b = tf.tensor3d([ROWS, [ROWS[1], ROWS[1], ROWS[2], ROWS[3]]]);
    const r = matchDetections(b, t);
    expect(r.total).toBe(8);
    expect(r.perImage).toEqual([
      { matched: 4, total: 4 },
      { matched: 3, total: 4 },
    ]);
    expect(r.unmatched).toEqual([4]);
    tf.dispose([t, b]);
  });

  it('checks shapes', () => {
    expect(() => matchDetections([1, 2, 3], ROWS)).toThrow(
      /matchDetections: actual must have a multiple of 6 values, got 3/,
    );
    expect(() => matchDetections(ROWS.slice(0, 2), ROWS)).toThrow(
      /actual has 2 rows in 1 image\(s\), expected 4 rows/,
    );
  });
});

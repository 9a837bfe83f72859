import { createRng, hashSeed, Rng } from './index.js';

describe('createRng', () => {
  it('gives the same stream for the same seed and different streams for different seeds', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const sa = Array.from({ length: 64 }, () => a.nextUint32());
    const sb = Array.from({ length: 64 }, () => b.nextUint32());
    const sc = Array.from({ length: 64 }, () => c.nextUint32());
    expect(sa).toEqual(sb);
    expect(sa.filter((v, i) => v === sc[i]).length).toBeLessThan(2);
    expect(a).toBeInstanceOf(Rng);
  });

  it('accepts any safe integer (negative and above 2^32 too) and rejects others', () => {
    const streams = [0, -1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER].map((s) =>
      createRng(s).nextUint32(),
    );
    expect(new Set(streams).size).toBe(streams.length);
    expect(() => createRng(1.5)).toThrow(/createRng: seed must be a safe integer, got 1.5/);
    expect(() => createRng(Number.NaN)).toThrow(/createRng: seed/);
  });

  it('draws uniform values in [0, 1) with the right moments', () => {
    const r = createRng(7);
    const n = 20000;
    let sum = 0;
    let sum2 = 0;
    let lo = 1;
    let hi = 0;
    for (let i = 0; i < n; i++) {
      const v = r.next();
      sum += v;
      sum2 += v * v;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    expect(sum / n).toBeCloseTo(0.5, 1.5);
    expect(sum2 / n - (sum / n) ** 2).toBeCloseTo(1 / 12, 2);
  });

  it('int(a, b) includes both ends; uniform, logUniform, normal, pick, chance behave', () => {
    const r = createRng(3);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const v = r.int(-2, 3);
      expect(Number.isInteger(v) && v >= -2 && v <= 3).toBe(true);
      seen.add(v);
    }
    expect([...seen].sort((a, b) => a - b)).toEqual([-2, -1, 0, 1, 2, 3]);
    for (let i = 0; i < 200; i++) {
      const u = r.uniform(5, 6);
      expect(u >= 5 && u < 6).toBe(true);
      const l = r.logUniform(8, 200);
      expect(l >= 8 && l < 200).toBe(true);
    }
    // log-uniform: as many draws in [8, 40) as in [40, 200)
    let low = 0;
    for (let i = 0; i < 4000; i++) if (r.logUniform(8, 200) < 40) low++;
    expect(low / 4000).toBeGreaterThan(0.46);
    expect(low / 4000).toBeLessThan(0.54);
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < 10000; i++) {
      const z = r.normal();
      s += z;
      s2 += z * z;
    }
    expect(Math.abs(s / 10000)).toBeLessThan(0.05);
    expect(s2 / 10000).toBeGreaterThan(0.93);
    expect(s2 / 10000).toBeLessThan(1.07);
    expect(['a', 'b', 'c']).toContain(r.pick(['a', 'b', 'c']));
    expect(() => r.pick([])).toThrow(/Rng.pick: items must be a non-empty array/);
    expect(() => r.int(3, 2)).toThrow(/Rng.int/);
    let heads = 0;
    for (let i = 0; i < 1000; i++) if (r.chance(0.25)) heads++;
    expect(heads).toBeGreaterThan(200);
    expect(heads).toBeLessThan(300);
  });
});

describe('hashSeed', () => {
  it('is a pure function of the seed and keys, sensitive to each', () => {
    expect(hashSeed(1, 'train', 0)).toBe(hashSeed(1, 'train', 0));
    const variants = [
      hashSeed(1, 'train', 0),
      hashSeed(1, 'train', 1),
      hashSeed(1, 'val', 0),
      hashSeed(2, 'train', 0),
      hashSeed(1, 'train'),
      hashSeed(1, 0, 'train'),
      hashSeed(1),
    ];
    expect(new Set(variants).size).toBe(variants.length);
    for (const v of variants) expect(Number.isInteger(v) && v >= 0 && v < 2 ** 32).toBe(true);
    expect(() => hashSeed(1, 0.5)).toThrow(/hashSeed: seed must be a safe integer, got 0.5/);
  });
});

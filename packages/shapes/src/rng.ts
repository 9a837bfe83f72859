/**
 * A small seeded PRNG (sfc32, seeded through splitmix32) and seed hashing. Everything the generator draws comes
 * from here, never from `Math.random`, so a seed names one image exactly on every platform: the state is four
 * uint32 words updated with 32-bit integer arithmetic only.
 */

function fail(fn: string, arg: string, expected: string, got: unknown): never {
  let g: string;
  try {
    g = typeof got === 'string' ? `'${got}'` : (JSON.stringify(got) ?? String(got));
  } catch {
    g = String(got);
  }
  throw new Error(`${fn}: ${arg} must be ${expected}, got ${g}`);
}

/** murmur3's 32-bit finaliser: a bijective avalanche of a uint32. */
function fmix32(h: number): number {
  let x = h >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The integer seed as two uint32 words (low, high); any safe integer is accepted (negative ones too). */
function seedWords(fn: string, seed: number): [number, number] {
  if (!(typeof seed === 'number' && Number.isSafeInteger(seed))) fail(fn, 'seed', 'a safe integer', seed);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  return [lo, hi];
}

/**
 * Hashes a seed and any number of keys (integers or strings) to one uint32, e.g. `hashSeed(seed, 'val', 17)`.
 * Equal inputs give equal outputs; any change of a key gives an unrelated value.
 */
export function hashSeed(seed: number, ...keys: readonly (number | string)[]): number {
  const [lo, hi] = seedWords('hashSeed', seed);
  let h = fmix32(lo ^ 0x9e3779b9);
  h = fmix32(h ^ Math.imul(hi ^ 0x7f4a7c15, 0x27d4eb2f));
  for (const k of keys) {
    if (typeof k === 'string') {
      h = fmix32(h ^ 0x5bd1e995 ^ k.length);
      for (let i = 0; i < k.length; i++) h = fmix32(h ^ Math.imul(k.charCodeAt(i) + 0x632be5ab, 0x1b873593));
    } else {
      const [a, b] = seedWords('hashSeed', k);
      h = fmix32(h ^ Math.imul(a + 0x68e31da4, 0xcc9e2d51));
      h = fmix32(h ^ Math.imul(b + 0xb5297a4d, 0x1b56c4e9));
    }
  }
  return h;
}

/** A deterministic random stream. `next()` is uniform in [0, 1) with 32 random bits. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    const [lo, hi] = seedWords('createRng', seed);
    // splitmix32 expands each 32-bit half of the seed into two state words, so distinct seeds give distinct
    // states (d is forced odd, which keeps the state away from all zeros).
    const splitmix = (seedWord: number) => {
      let s = seedWord >>> 0;
      return (): number => {
        s = (s + 0x9e3779b9) >>> 0;
        let z = s;
        z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
        z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
        return (z ^ (z >>> 15)) >>> 0;
      };
    };
    const low = splitmix(lo);
    const high = splitmix(hi ^ 0x5851f42d);
    this.a = low();
    this.b = high();
    this.c = low();
    this.d = high() | 1;
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** The next raw uint32 (sfc32). Integer arithmetic only, cheap enough for per-pixel noise. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in [a, b). */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.next();
  }

  /** A uniform integer in [a, b], both ends included. */
  int(a: number, b: number): number {
    if (!(Number.isSafeInteger(a) && Number.isSafeInteger(b) && b >= a)) {
      fail('Rng.int', '[a, b]', 'integers with a <= b', [a, b]);
    }
    return a + Math.floor(this.next() * (b - a + 1));
  }

  /** A standard normal deviate (Box-Muller; one uniform pair per call). */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Log-uniform in [a, b) (a, b > 0): equal probability for each octave. */
  logUniform(a: number, b: number): number {
    if (!(a > 0 && b >= a)) fail('Rng.logUniform', '[a, b]', 'numbers with 0 < a <= b', [a, b]);
    return a * (b / a) ** this.next();
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A uniformly chosen element. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) fail('Rng.pick', 'items', 'a non-empty array', items);
    return items[Math.floor(this.next() * items.length)];
  }
}

/** A PRNG seeded by any safe integer. The same seed always gives the same stream. */
export function createRng(seed: number): Rng {
  return new Rng(seed);
}

// Test-only mutation fuzzing helpers (excluded from the package build): a seeded PRNG, byte-level and
// dictionary mutators, an allocation guard over the typed-array constructors, and a delta-debugging
// minimiser for findings.

/** mulberry32: small, fast, seedable; good enough to drive mutations reproducibly. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform uint32. */
  u32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : this.u32() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }
}

/** Byte values that tend to break parsers. */
export const INTERESTING_BYTES = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe] as const;

/** Values written by the length-field inflation mutator (as u16 / u32 / u64 / varint). */
const INTERESTING_LENGTHS = [
  0,
  1,
  0x7f,
  0x80,
  0xff,
  0x100,
  0x7fff,
  0x8000,
  0xffff,
  0x10000,
  0x7fffffff,
  0x80000000,
  0xffffffff,
  2 ** 32,
  2 ** 40,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 63,
  2 ** 64 - 1,
];

function u64le(v: bigint): number[] {
  const out: number[] = [];
  let x = BigInt.asUintN(64, v);
  for (let i = 0; i < 8; i++) {
    out.push(Number(x & 0xffn));
    x >>= 8n;
  }
  return out;
}

function varintBytes(v: bigint): number[] {
  const out: number[] = [];
  let x = BigInt.asUintN(64, v);
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
  return out;
}

/** A mutation applied to a copy of the input; `what` describes it for reports. */
export interface Mutation {
  what: string;
  apply: (b: Uint8Array) => Uint8Array;
}

function overwrite(b: Uint8Array, at: number, bytes: readonly number[]): Uint8Array {
  const out = b.slice();
  for (let i = 0; i < bytes.length && at + i < out.length; i++) out[at + i] = bytes[i];
  return out;
}

function splice(b: Uint8Array, at: number, del: number, ins: Uint8Array | readonly number[]): Uint8Array {
  const insert = ins instanceof Uint8Array ? ins : Uint8Array.from(ins);
  const out = new Uint8Array(b.length - del + insert.length);
  out.set(b.subarray(0, at));
  out.set(insert, at);
  out.set(b.subarray(at + del), at + insert.length);
  return out;
}

/**
 * Picks one random mutation: bit flips, interesting / random bytes, truncation, chunk duplication,
 * insertion and deletion, length-field inflation (u16 / u32 / u64 LE and varint), dictionary tokens
 * (inserted or overwritten), and a splice with another seed of the same format.
 */
export function randomMutation(
  rng: Rng,
  input: Uint8Array,
  dict: readonly Uint8Array[],
  other?: Uint8Array,
): Mutation {
  const n = input.length;
  const pos = () => rng.int(Math.max(1, n));
  const kind = rng.int(other ? 12 : 11);
  switch (kind) {
    case 0: {
      const at = pos();
      const bit = rng.int(8);
      return { what: `flip bit ${bit} of byte ${at}`, apply: (b) => overwrite(b, at, [b[at] ^ (1 << bit)]) };
    }
    case 1: {
      const at = pos();
      const v = rng.pick(INTERESTING_BYTES);
      return { what: `byte ${at} = 0x${v.toString(16)}`, apply: (b) => overwrite(b, at, [v]) };
    }
    case 2: {
      const at = pos();
      const v = rng.int(256);
      return { what: `byte ${at} = 0x${v.toString(16)} (random)`, apply: (b) => overwrite(b, at, [v]) };
    }
    case 3: {
      // Truncation, biased to both ends (headers at the start, footers / trailing records at the end).
      const len = rng.chance(0.5) ? n - 1 - rng.int(Math.min(n, 64)) : rng.int(n);
      const keep = Math.max(0, len);
      return { what: `truncate to ${keep} bytes`, apply: (b) => b.slice(0, keep) };
    }
    case 4: {
      const at = pos();
      const len = 1 + rng.int(Math.min(64, Math.max(1, n - at)));
      const to = rng.int(n + 1);
      return {
        what: `duplicate [${at}, ${at + len}) at ${to}`,
        apply: (b) => splice(b, Math.min(to, b.length), 0, b.slice(at, at + len)),
      };
    }
    case 5: {
      const at = rng.int(n + 1);
      const len = 1 + rng.int(16);
      const bytes = Array.from({ length: len }, () =>
        rng.chance(0.5) ? rng.pick(INTERESTING_BYTES) : rng.int(256),
      );
      return {
        what: `insert ${len} bytes at ${at}`,
        apply: (b) => splice(b, Math.min(at, b.length), 0, bytes),
      };
    }
    case 6: {
      const at = pos();
      const len = 1 + rng.int(Math.min(32, Math.max(1, n - at)));
      return {
        what: `delete [${at}, ${at + len})`,
        apply: (b) => splice(b, at, Math.min(len, b.length - at), []),
      };
    }
    case 7:
    case 8: {
      // Length-field inflation: a fixed-width little-endian integer or a varint of an interesting size.
      const at = pos();
      const v = BigInt(rng.pick(INTERESTING_LENGTHS));
      const width = rng.pick([2, 4, 8, 0]);
      const bytes = width === 0 ? varintBytes(v) : u64le(v).slice(0, width);
      return {
        what: `${width === 0 ? 'varint' : `u${width * 8}`} ${v} at ${at}`,
        apply: (b) => overwrite(b, at, bytes),
      };
    }
    case 9:
    case 10: {
      if (dict.length === 0) return randomMutation(rng, input, dict, other);
      const tok = rng.pick(dict);
      const at = rng.int(n + 1);
      if (rng.chance(0.5)) {
        return {
          what: `insert token ${JSON.stringify(latin1(tok))} at ${at}`,
          apply: (b) => splice(b, Math.min(at, b.length), 0, tok),
        };
      }
      return {
        what: `overwrite token ${JSON.stringify(latin1(tok))} at ${at}`,
        apply: (b) => overwrite(b, at, [...tok]),
      };
    }
    default: {
      const o = other as Uint8Array;
      const cutA = pos();
      const cutB = rng.int(o.length + 1);
      return {
        what: `splice [0, ${cutA}) + other seed [${cutB}, end)`,
        apply: (b) => {
          const out = new Uint8Array(Math.min(cutA, b.length) + o.length - cutB);
          out.set(b.subarray(0, cutA));
          out.set(o.subarray(cutB), Math.min(cutA, b.length));
          return out;
        },
      };
    }
  }
}

function latin1(b: Uint8Array): string {
  return String.fromCharCode(...b);
}

/** Applies 1..maxStack random mutations; returns the input and the list of mutation descriptions. */
export function mutate(
  rng: Rng,
  seed: Uint8Array,
  dict: readonly Uint8Array[],
  other?: Uint8Array,
  maxStack = 4,
): { bytes: Uint8Array; history: string[] } {
  let b = seed;
  const history: string[] = [];
  const k = 1 + rng.int(maxStack);
  for (let i = 0; i < k; i++) {
    const m = randomMutation(rng, b, dict, other);
    b = m.apply(b);
    history.push(m.what);
  }
  return { bytes: b, history };
}

/** Replaces the value of a random JSON number / string / literal token (structure-aware mutation of text). */
export function mutateJsonText(
  rng: Rng,
  text: string,
  values: readonly string[],
): { text: string; what: string } {
  const tokens: [number, number][] = [];
  const re = /-?\d+(\.\d+)?([eE][+-]?\d+)?|"(?:[^"\\]|\\.)*"|true|false|null|\[|\{/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) tokens.push([m.index, m.index + m[0].length]);
  if (tokens.length === 0) return { text, what: 'no token' };
  const [a, b] = rng.pick(tokens);
  const v = rng.pick(values);
  const short = (x: string) => (x.length > 48 ? `${x.slice(0, 24)}...(${x.length} chars)` : x);
  return {
    text: text.slice(0, a) + v + text.slice(b),
    what: `JSON token ${short(JSON.stringify(text.slice(a, b)))} -> ${short(v)}`,
  };
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Hex dump for reports (cut to `max` bytes). */
export function hex(b: Uint8Array, max = 256): string {
  const s = [...b.subarray(0, max)].map((x) => x.toString(16).padStart(2, '0')).join('');
  return b.length > max ? `${s}... (${b.length} bytes)` : s;
}

/** Thrown by the allocation guard instead of performing an allocation above the budget. */
export class AllocationBudgetError extends Error {
  constructor(
    readonly ctor: string,
    readonly bytes: number,
    readonly budget: number,
  ) {
    super(`allocation guard: new ${ctor} of ${bytes} bytes exceeds the budget of ${budget} bytes`);
    this.name = 'AllocationBudgetError';
  }
}

const GUARDED = [
  'ArrayBuffer',
  'SharedArrayBuffer',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int8Array',
  'Uint16Array',
  'Int16Array',
  'Uint32Array',
  'Int32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
] as const;

type Ctor = { new (...args: unknown[]): unknown; BYTES_PER_ELEMENT?: number };

/**
 * Observes every `new TypedArray(length)` / `new ArrayBuffer(n)` / `TypedArray.from` made through the global
 * constructors while installed: allocations above `budget()` bytes throw an AllocationBudgetError *before*
 * any memory is taken, and the largest request is recorded (`maxBytes`, `tripped`) even when a caller swallows
 * the error. `uninstall()` restores the original constructors.
 */
export class AllocationGuard {
  maxBytes = 0;
  tripped: AllocationBudgetError | null = null;
  budget = Number.POSITIVE_INFINITY;
  private readonly originals = new Map<string, unknown>();

  install(): this {
    const g = globalThis as unknown as Record<string, Ctor>;
    for (const name of GUARDED) {
      const orig = g[name];
      if (typeof orig !== 'function') continue;
      this.originals.set(name, orig);
      const item = orig.BYTES_PER_ELEMENT ?? 1;
      const guard = this;
      g[name] = new Proxy(orig, {
        construct(target, args, newTarget) {
          const a = args[0];
          let n = 0;
          if (typeof a === 'number') n = a;
          else if (
            a !== null &&
            typeof a === 'object' &&
            !(a instanceof (guard.originals.get('ArrayBuffer') as Ctor))
          ) {
            const len = (a as { length?: unknown }).length;
            if (typeof len === 'number') n = len;
          }
          const bytes = (Number.isFinite(n) ? n : 0) * item;
          guard.record(name, bytes);
          return Reflect.construct(target, args, newTarget === g[name] ? target : newTarget);
        },
      }) as Ctor;
    }
    return this;
  }

  record(name: string, bytes: number): void {
    if (bytes > this.maxBytes) this.maxBytes = bytes;
    if (bytes > this.budget) {
      const e = new AllocationBudgetError(name, bytes, this.budget);
      this.tripped ??= e;
      throw e;
    }
  }

  /** Starts a new case with a fresh budget. */
  reset(budget: number): void {
    this.budget = budget;
    this.maxBytes = 0;
    this.tripped = null;
  }

  uninstall(): void {
    const g = globalThis as unknown as Record<string, unknown>;
    for (const [name, orig] of this.originals) g[name] = orig;
    this.originals.clear();
  }

  /** The original (unguarded) constructor, for the harness' own buffers. */
  original<T>(name: (typeof GUARDED)[number]): T {
    return (this.originals.get(name) ?? (globalThis as unknown as Record<string, unknown>)[name]) as T;
  }
}

/**
 * ddmin-style shrinking: repeatedly removes chunks (halves, quarters, ... single bytes) while
 * `stillFails` holds, within `budget` attempts. Returns the smallest failing input found.
 */
export async function minimise(
  input: Uint8Array,
  stillFails: (b: Uint8Array) => Promise<boolean>,
  budget = 400,
): Promise<Uint8Array> {
  let best = input;
  let tries = 0;
  for (let chunk = Math.max(1, best.length >> 1); chunk >= 1 && tries < budget; ) {
    let improved = false;
    for (let at = 0; at < best.length && tries < budget; ) {
      const cand = new Uint8Array(best.length - Math.min(chunk, best.length - at));
      cand.set(best.subarray(0, at));
      cand.set(best.subarray(at + chunk), at);
      tries++;
      if (await stillFails(cand)) {
        best = cand;
        improved = true;
      } else {
        at += chunk;
      }
    }
    if (!improved) chunk >>= 1;
  }
  return best;
}

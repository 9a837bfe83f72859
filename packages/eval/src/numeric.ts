/**
 * Small numeric routines that reproduce numpy's results bit for bit where the evaluators depend on them:
 * `linspace`, stable descending argsort (numpy `kind='mergesort'` on negated keys), `searchsorted(side='left')`,
 * pairwise summation (`np.sum` / `np.mean` on float64) and Python's `'{:.Nf}'` float formatting.
 */

/** `np.linspace(start, stop, num, endpoint)` for float64: `i * step + start`, the last value forced to `stop`. */
export function linspace(start: number, stop: number, num: number, endpoint = true): number[] {
  if (!Number.isInteger(num) || num < 0) {
    throw new RangeError(`linspace: argument 'num' expected a non-negative integer, got ${num}`);
  }
  const div = endpoint ? num - 1 : num;
  const delta = stop - start;
  const out = new Array<number>(num);
  if (div > 0) {
    const step = delta / div;
    for (let i = 0; i < num; i++) out[i] = step === 0 ? (i / div) * delta + start : i * step + start;
  } else {
    for (let i = 0; i < num; i++) out[i] = i * delta + start;
  }
  if (endpoint && num > 1) out[num - 1] = stop;
  return out;
}

/** Python's `round()` on floats: round half to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** numpy's ordering for `<` with NaN sorted last. */
function lessNanLast(a: number, b: number): boolean {
  // biome-ignore lint/suspicious/noSelfCompare: NaN test
  return a < b || (b !== b && a === a);
}

/**
 * Indices that sort `keys` by descending value, ties in original order: `np.argsort(-keys, kind='mergesort')`.
 * NaN keys go last, as numpy places NaN (and -NaN) last.
 */
export function argsortDescStable(keys: ArrayLike<number>): Int32Array {
  const n = keys.length;
  const idx = new Int32Array(n);
  let hasNaN = false;
  for (let i = 0; i < n; i++) {
    idx[i] = i;
    if (Number.isNaN(keys[i])) hasNaN = true;
  }
  if (n < 2) return idx;
  if (hasNaN) {
    idx.sort((i, j) => {
      const a = -keys[i];
      const b = -keys[j];
      if (lessNanLast(a, b)) return -1;
      if (lessNanLast(b, a)) return 1;
      return i - j;
    });
    return idx;
  }
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = -keys[i];
  stableSortIndices(idx, v);
  return idx;
}

/**
 * Stable ascending sort of `idx` by `v[idx[i]]` (no NaN in `v`): insertion sort on runs of 16, then bottom-up
 * merges. Avoids comparator calls, which dominate on large score lists.
 */
function stableSortIndices(idx: Int32Array, v: Float64Array): void {
  const n = idx.length;
  const RUN = 16;
  for (let lo = 0; lo < n; lo += RUN) {
    const hi = Math.min(lo + RUN, n);
    for (let i = lo + 1; i < hi; i++) {
      const x = idx[i];
      const xv = v[x];
      let j = i - 1;
      while (j >= lo && v[idx[j]] > xv) {
        idx[j + 1] = idx[j];
        j--;
      }
      idx[j + 1] = x;
    }
  }
  if (n <= RUN) return;
  let src: Int32Array = idx;
  let dst: Int32Array = new Int32Array(n);
  for (let width = RUN; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let a = lo;
      let b = mid;
      let o = lo;
      while (a < mid && b < hi) {
        // take from the left on ties: stable
        if (v[src[b]] < v[src[a]]) dst[o++] = src[b++];
        else dst[o++] = src[a++];
      }
      while (a < mid) dst[o++] = src[a++];
      while (b < hi) dst[o++] = src[b++];
    }
    const t = src;
    src = dst;
    dst = t;
  }
  if (src !== idx) idx.set(src);
}

/** `np.searchsorted(sorted, v, side='left')` over the first `n` entries: the first index with `sorted[i] >= v`. */
export function searchsortedLeft(sorted: ArrayLike<number>, v: number, n = sorted.length): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (lessNanLast(sorted[mid], v)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** numpy's float64 pairwise summation of `a[start..start+n)` (the `np.add.reduce` inner loop). */
export function pairwiseSum(a: ArrayLike<number>, start = 0, n = a.length - start): number {
  if (n < 8) {
    let res = -0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= 128) {
    let r0 = a[start];
    let r1 = a[start + 1];
    let r2 = a[start + 2];
    let r3 = a[start + 3];
    let r4 = a[start + 4];
    let r5 = a[start + 5];
    let r6 = a[start + 6];
    let r7 = a[start + 7];
    const end8 = n - (n % 8);
    let i = 8;
    for (; i < end8; i += 8) {
      const p = start + i;
      r0 += a[p];
      r1 += a[p + 1];
      r2 += a[p + 2];
      r3 += a[p + 3];
      r4 += a[p + 4];
      r5 += a[p + 5];
      r6 += a[p + 6];
      r7 += a[p + 7];
    }
    let res = r0 + r1 + (r2 + r3) + (r4 + r5 + (r6 + r7));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

/** `np.sum` of a float64 vector (identity 0 added to the pairwise sum). */
export function npSum(a: ArrayLike<number>): number {
  return 0 + pairwiseSum(a, 0, a.length);
}

/** `np.mean` of a float64 vector; NaN for an empty one (numpy warns and returns nan). */
export function npMean(a: ArrayLike<number>): number {
  return npSum(a) / a.length;
}

/**
 * Python's `format(x, '.Nf')`: correctly rounded, ties to even on the exact binary value,
 * `nan`/`inf` spelled as Python does, and `-0.000` kept for negative zero and tiny negatives.
 */
export function formatFixed(x: number, digits: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const neg = x < 0 || Object.is(x, -0);
  const ax = Math.abs(x);
  let s: string;
  const scaled = ax * 10 ** digits;
  // A tie is only possible when the value is a multiple of 2^-(digits+1); toFixed rounds ties away from zero.
  if (Number.isInteger(ax * 2 ** (digits + 1)) && scaled - Math.floor(scaled) === 0.5 && scaled < 2 ** 52) {
    const lo = Math.floor(scaled);
    const r = lo % 2 === 0 ? lo : lo + 1;
    s = (r / 10 ** digits).toFixed(digits);
  } else {
    s = ax.toFixed(digits);
  }
  return neg ? `-${s}` : s;
}

/** Pads like Python's `'{:<N}'` (left) and `'{:>N}'` (right) for strings. */
export function padLeftAlign(s: string, width: number): string {
  return s.length >= width ? s : s + ' '.repeat(width - s.length);
}

export function padRightAlign(s: string, width: number): string {
  return s.length >= width ? s : ' '.repeat(width - s.length) + s;
}

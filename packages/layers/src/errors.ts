/** Thrown for invalid arguments: the message names the function, the argument, what was expected and what came. */
export class EffdetArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EffdetArgumentError';
    Object.setPrototypeOf(this, EffdetArgumentError.prototype);
  }
}

/** Thrown by `loadStateDict` when names or shapes do not match; lists every problem at once. */
export class StateDictError extends Error {
  constructor(
    message: string,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly mismatched: { name: string; expected: number[]; got: number[] }[],
  ) {
    super(message);
    this.name = 'StateDictError';
    Object.setPrototypeOf(this, StateDictError.prototype);
  }
}

/** Throws an EffdetArgumentError with a lazily built message when `cond` is false. */
export function check(cond: unknown, message: () => string): asserts cond {
  if (!cond) throw new EffdetArgumentError(message());
}

/** `[1,2,3]` style shape text for messages. */
export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** Levenshtein distance (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * The `max` candidates closest to an unknown `name` for "did you mean" messages: by edit distance, then
 * alphabetically; only those within half of `name`'s length.
 */
export function closeNames(name: string, candidates: readonly string[], max = 8): string[] {
  return candidates
    .map((c) => ({ c, d: editDistance(name, c) }))
    .filter(({ d }) => d <= Math.max(2, name.length / 2))
    .sort((x, y) => x.d - y.d || (x.c < y.c ? -1 : x.c > y.c ? 1 : 0))
    .slice(0, max)
    .map(({ c }) => c);
}

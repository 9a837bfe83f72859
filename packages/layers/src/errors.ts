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

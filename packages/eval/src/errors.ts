/** Thrown for invalid arguments and malformed inputs; the message names the function, the argument, what was expected and what came. */
export class EvalArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvalArgumentError';
    Object.setPrototypeOf(this, EvalArgumentError.prototype);
  }
}

/** Short human description of a value for error messages. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return v.length > 40 ? `string '${v.slice(0, 37)}...'` : `string '${v}'`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint')
    return `${typeof v} ${String(v)}`;
  if (Array.isArray(v)) return `array of length ${v.length}`;
  if (ArrayBuffer.isView(v))
    return `${v.constructor.name} of length ${(v as unknown as ArrayLike<number>).length}`;
  if (typeof v === 'object') {
    const keys = Object.keys(v as object);
    return `object with keys [${keys.slice(0, 6).join(', ')}${keys.length > 6 ? ', ...' : ''}]`;
  }
  return typeof v;
}

/** Builds the standard error: `fn: argument 'arg' expected ..., got ...`. */
export function argError(fn: string, arg: string, expected: string, got: unknown): EvalArgumentError {
  return new EvalArgumentError(`${fn}: argument '${arg}' expected ${expected}, got ${describeValue(got)}`);
}

/** Throws `argError(...)` when `cond` is false. */
export function check(cond: unknown, fn: string, arg: string, expected: string, got: unknown): asserts cond {
  if (!cond) throw argError(fn, arg, expected, got);
}

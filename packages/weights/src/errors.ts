/**
 * The error every reader and writer of this package throws for a bad argument or a malformed file.
 * The message names the function, the argument or file part, what was expected and what came.
 */
export class WeightsFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WeightsFormatError';
    // Keeps `instanceof` working when compiled to ES5-style classes (tfjs errors.ts does the same).
    Object.setPrototypeOf(this, WeightsFormatError.prototype);
  }
}

/** Throws a WeightsFormatError with `message()` unless `cond` holds (the message is built lazily). */
export function check(cond: unknown, message: () => string): asserts cond {
  if (!cond) throw new WeightsFormatError(message());
}

/**
 * `JSON.stringify` of a value, cut to `max` characters, for error messages. Never throws: values
 * JSON cannot print (BigInt, cycles) fall back to `String`, and values neither can print (nested
 * deeper than the call stack allows) to a short placeholder.
 */
export function brief(value: unknown, max = 60): string {
  let s: string;
  try {
    s = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    try {
      s = String(value);
    } catch {
      s = Array.isArray(value) ? '[...] (nested too deeply to print)' : `(${typeof value}, not printable)`;
    }
  }
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

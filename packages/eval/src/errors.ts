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
  if (Array.isArray(v)) {
    if (v.length <= 8 && v.every((x) => typeof x === 'number')) return `[${v.join(', ')}]`;
    return `array of length ${v.length}`;
  }
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

/**
 * Offset of the first JSON syntax error in `text` (a small recursive-descent scan, run only after `JSON.parse`
 * failed, because V8's messages do not always give the position), or -1 when the scan finds none.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const n = text.length;
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const NUM = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const STR_ESC = /\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/y;
  const value = (depth: number): boolean => {
    ws();
    if (i >= n || depth > 10000) return false;
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return true;
      }
      for (;;) {
        ws();
        if (text[i] !== '"' || !str()) return false;
        ws();
        if (text[i] !== ':') return false;
        i++;
        if (!value(depth + 1)) return false;
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return true;
        } else return false;
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return true;
      }
      for (;;) {
        if (!value(depth + 1)) return false;
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return true;
        } else return false;
      }
    }
    if (c === '"') return str();
    for (const lit of ['true', 'false', 'null']) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return true;
      }
    }
    NUM.lastIndex = i;
    if (NUM.test(text)) {
      i = NUM.lastIndex;
      return true;
    }
    return false;
  };
  const str = (): boolean => {
    i++; // opening quote
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c === 0x5c) {
        STR_ESC.lastIndex = i;
        if (!STR_ESC.test(text)) return false;
        i = STR_ESC.lastIndex;
      } else i++;
    }
    return false;
  };
  if (!value(0)) return Math.min(i, n);
  ws();
  return i < n ? i : -1;
}

/**
 * `JSON.parse` with an error that names the function, the argument (e.g. a file name) and where the text
 * breaks (line and column), instead of the bare `SyntaxError`.
 */
export function parseJsonText(text: string, fn: string, arg: string): unknown {
  if (typeof text !== 'string') throw argError(fn, arg, 'JSON text', text);
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    let where = '';
    if (text.trim() === '') where = ' (the text is empty)';
    else {
      const m = /position (\d+)/.exec(msg);
      const pos = m ? Number(m[1]) : jsonErrorOffset(text);
      if (pos >= 0) {
        let line = 1;
        let lineStart = 0;
        for (let k = 0; k < pos; k++) {
          if (text.charCodeAt(k) === 0x0a) {
            line++;
            lineStart = k + 1;
          }
        }
        where = ` (line ${line}, column ${pos - lineStart + 1}${pos >= text.length ? ': the text ends early, a truncated file?' : ''})`;
      }
    }
    throw new EvalArgumentError(
      `${fn}: argument '${arg}' expected valid JSON, got a syntax error${where}: ${msg}`,
    );
  }
}

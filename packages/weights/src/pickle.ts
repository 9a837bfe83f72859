/**
 * A restricted Python pickle reader (protocols 0-5, the opcodes PyTorch and plain data use).
 * It never runs code: every GLOBAL / STACK_GLOBAL / INST goes through `findGlobal`, which returns a
 * JS stand-in for an allow-listed name or throws. Python values map to JS as:
 * None -> null, bool -> boolean, int -> number (bigint beyond 2^53), float -> number,
 * str -> string, bytes -> Uint8Array, list -> Array, tuple -> PyTuple, dict -> Map, set -> Set.
 */
import { decodeLatin1 } from './bytes.js';
import { brief, check, WeightsFormatError } from './errors.js';

/** A Python tuple (kept distinct from list). */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

/** An allow-listed callable or class: REDUCE / NEWOBJ / INST / OBJ call `call(args)`. */
export class PyCallable {
  constructor(
    /** `module.name`, for messages. */
    readonly qualname: string,
    readonly call: (args: unknown[]) => unknown,
  ) {}
}

/**
 * Inert stand-in for a global outside the allow-list, produced only when the caller asked to
 * tolerate them (see PthOptions.skipUnknownGlobals). Calling it records the arguments; nothing runs.
 */
export class PyOpaque {
  args: unknown[] | null = null;
  state: unknown = undefined;
  constructor(readonly qualname: string) {}
}

export interface UnpickleOptions {
  /** Resolves `module`, `name` of a GLOBAL; throw to refuse. */
  findGlobal: (module: string, name: string) => unknown;
  /** Resolves a persistent id (BINPERSID / PERSID); without it persistent ids are an error. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Where the pickle starts in `bytes`. Default 0. */
  offset?: number;
  /** Name used in error messages. Default 'unpickle'. */
  what?: string;
}

export interface UnpickleResult {
  value: unknown;
  /** Offset just after the STOP opcode (the next pickle, or data, starts there). */
  end: number;
}

const MARK = Symbol('mark');

/** Python-style repr of a short value, for error messages. */
function typeName(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PyTuple) return 'tuple';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Map) return 'dict';
  if (v instanceof PyCallable || v instanceof PyOpaque) return v.qualname;
  if (v instanceof Uint8Array) return 'bytes';
  return typeof v;
}

/**
 * A short description of an unpickled value for error messages, in bounded time: scalars and strings
 * are shown (cut), containers only by kind and size. (`String` or `JSON.stringify` of a pickled value
 * can recurse past the stack or run for ever: the memo lets a small pickle build deep or exponentially
 * shared structures.)
 */
export function describePy(v: unknown): string {
  if (v === null) return 'None';
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return brief(v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v instanceof PyCallable || v instanceof PyOpaque) return v.qualname;
  if (v instanceof Uint8Array) return `bytes of length ${v.length}`;
  if (v instanceof PyTuple) return `a tuple of ${v.items.length}`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v instanceof Map) return `a dict of ${v.size}`;
  if (v instanceof Set) return `a set of ${v.size}`;
  if (typeof v === 'object') return `a ${(v as object).constructor?.name ?? 'object'}`;
  return typeof v;
}

/** Python's default limit on decimal integer literals (sys.int_info.default_max_str_digits). */
const MAX_INT_DIGITS = 4300;

/**
 * Runs one pickle starting at `options.offset` until STOP and returns the top of the stack.
 * Bounds, stack underflow, unknown opcodes and refused globals throw a WeightsFormatError.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): UnpickleResult {
  const fn = options.what ?? 'unpickle';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8');
  let pos = options.offset ?? 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const need = (n: number, what: string): number => {
    if (n < 0 || pos + n > bytes.length) {
      throw new WeightsFormatError(
        `${fn}: pickle truncated reading ${what} at byte ${pos} (needs ${n}, ${bytes.length - pos} left)`,
      );
    }
    const at = pos;
    pos += n;
    return at;
  };
  const take = (n: number, what: string): Uint8Array => {
    const at = need(n, what);
    return bytes.subarray(at, at + n);
  };
  const line = (what: string): string => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0)
      throw new WeightsFormatError(`${fn}: pickle truncated reading ${what} at byte ${pos} (no newline)`);
    const s = decodeLatin1(bytes.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };
  const pop = (): unknown => {
    if (stack.length === 0) throw new WeightsFormatError(`${fn}: pickle stack underflow at byte ${pos - 1}`);
    const v = stack.pop();
    if (v === MARK) throw new WeightsFormatError(`${fn}: unexpected MARK on the stack at byte ${pos - 1}`);
    return v;
  };
  const top = (): unknown => {
    if (stack.length === 0) throw new WeightsFormatError(`${fn}: pickle stack underflow at byte ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (prev === undefined) throw new WeightsFormatError(`${fn}: no MARK to pop at byte ${pos - 1}`);
    stack = prev;
    return items;
  };
  const memoGet = (i: number): unknown => {
    if (!memo.has(i)) throw new WeightsFormatError(`${fn}: memo key ${i} not defined (byte ${pos})`);
    return memo.get(i);
  };
  const callable = (c: unknown, op: string): PyCallable | PyOpaque => {
    if (c instanceof PyCallable || c instanceof PyOpaque) return c;
    throw new WeightsFormatError(`${fn}: ${op} on a ${typeName(c)}, which is not callable (byte ${pos - 1})`);
  };
  const invoke = (c: PyCallable | PyOpaque, args: unknown[]): unknown => {
    if (c instanceof PyOpaque) {
      const o = new PyOpaque(c.qualname);
      o.args = args;
      return o;
    }
    return c.call(args);
  };
  const tupleItems = (t: unknown, op: string): unknown[] => {
    if (t instanceof PyTuple) return t.items;
    throw new WeightsFormatError(`${fn}: ${op} expects a tuple of arguments, got ${typeName(t)}`);
  };
  const setItem = (d: unknown, k: unknown, v: unknown): void => {
    if (!(d instanceof Map))
      throw new WeightsFormatError(`${fn}: SETITEM on a ${typeName(d)} (byte ${pos - 1})`);
    d.set(k, v);
  };
  const appendTo = (l: unknown, items: unknown[]): void => {
    if (!Array.isArray(l))
      throw new WeightsFormatError(`${fn}: APPEND on a ${typeName(l)} (byte ${pos - 1})`);
    for (const x of items) l.push(x);
  };
  const global = (module: string, name: string): unknown => options.findGlobal(module, name);
  const persistent = (pid: unknown): unknown => {
    if (options.persistentLoad === undefined) {
      throw new WeightsFormatError(`${fn}: persistent id found but no persistent_load is available`);
    }
    return options.persistentLoad(pid);
  };
  const long = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    // Building a BigInt byte by byte is quadratic; no tensor file needs integers this large.
    check(b.length <= 1024, () => `${fn}: integer of ${b.length} bytes is too large (at most 1024)`);
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const intText = (s: string, op: string): number | bigint | boolean => {
    if (op === 'INT' && s === '00') return false;
    if (op === 'INT' && s === '01') return true;
    const t = s.endsWith('L') ? s.slice(0, -1) : s;
    // BigInt parsing is superlinear in the digits; no tensor file needs integers this long.
    check(
      t.length <= MAX_INT_DIGITS + 1,
      () => `${fn}: ${op} literal of ${t.length} characters is too long (at most ${MAX_INT_DIGITS} digits)`,
    );
    check(/^[+-]?\d+$/.test(t), () => `${fn}: bad ${op} literal ${brief(s)} at byte ${pos}`);
    const v = BigInt(t);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  for (;;) {
    const at = need(1, 'an opcode');
    const op = bytes[at];
    switch (op) {
      case 0x80: // PROTO
        {
          const p = bytes[need(1, 'PROTO')];
          check(p <= 5, () => `${fn}: unsupported pickle protocol ${p} (0-5 are known)`);
        }
        break;
      case 0x95: // FRAME: a length prefix only; the frame's bytes follow inline.
        need(8, 'FRAME');
        break;
      case 0x2e: // STOP
        return { value: pop(), end: pos };
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length > 0 && stack[stack.length - 1] === MARK) stack.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        check(items.length % 2 === 0, () => `${fn}: DICT with an odd number of items at byte ${at}`);
        const d = new Map();
        for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x6c: {
        // LIST (popMark swaps `stack`, so take the items before pushing)
        const items = popMark();
        stack.push(items);
        break;
      }
      case 0x74: {
        // TUPLE
        const items = popMark();
        stack.push(new PyTuple(items));
        break;
      }
      case 0x85: // TUPLE1
        stack.push(new PyTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([a, b, c]));
        break;
      }
      case 0x91: {
        // FROZENSET
        const items = popMark();
        stack.push(new Set(items));
        break;
      }
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) throw new WeightsFormatError(`${fn}: ADDITEMS on a ${typeName(s)}`);
        for (const x of items) s.add(x);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        appendTo(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendTo(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItem(top(), k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        check(items.length % 2 === 0, () => `${fn}: SETITEMS with an odd number of items at byte ${at}`);
        const d = top();
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4b: // BININT1
        stack.push(bytes[need(1, 'BININT1')]);
        break;
      case 0x4d: // BININT2
        stack.push(view.getUint16(need(2, 'BININT2'), true));
        break;
      case 0x4a: // BININT
        stack.push(view.getInt32(need(4, 'BININT'), true));
        break;
      case 0x8a: // LONG1
        stack.push(long(take(bytes[need(1, 'LONG1 length')], 'LONG1')));
        break;
      case 0x8b: {
        // LONG4
        const n = view.getInt32(need(4, 'LONG4 length'), true);
        stack.push(long(take(n, 'LONG4')));
        break;
      }
      case 0x49: // INT (text)
        stack.push(intText(line('INT'), 'INT'));
        break;
      case 0x4c: // LONG (text)
        stack.push(intText(line('LONG'), 'LONG'));
        break;
      case 0x47: // BINFLOAT (big-endian double)
        stack.push(view.getFloat64(need(8, 'BINFLOAT'), false));
        break;
      case 0x46: {
        // FLOAT (text)
        const s = line('FLOAT');
        const v = Number(s);
        check(
          (s.trim() !== '' && !Number.isNaN(v)) || /nan/i.test(s),
          () => `${fn}: bad FLOAT literal ${brief(s)}`,
        );
        stack.push(v);
        break;
      }
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8.decode(take(bytes[need(1, 'SHORT_BINUNICODE length')], 'SHORT_BINUNICODE')));
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8.decode(take(view.getUint32(need(4, 'BINUNICODE length'), true), 'BINUNICODE')));
        break;
      case 0x8d: {
        // BINUNICODE8
        const n = Number(view.getBigUint64(need(8, 'BINUNICODE8 length'), true));
        stack.push(utf8.decode(take(n, 'BINUNICODE8')));
        break;
      }
      case 0x56: // UNICODE (text, raw-unicode-escape)
        stack.push(rawUnicodeEscape(line('UNICODE'), fn));
        break;
      case 0x53: // STRING (text, a quoted Python 2 str literal)
        stack.push(quotedString(line('STRING'), fn));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str; torch.load decodes as UTF-8)
        stack.push(utf8.decode(take(bytes[need(1, 'SHORT_BINSTRING length')], 'SHORT_BINSTRING')));
        break;
      case 0x54: {
        // BINSTRING
        const n = view.getInt32(need(4, 'BINSTRING length'), true);
        stack.push(utf8.decode(take(n, 'BINSTRING')));
        break;
      }
      case 0x43: // SHORT_BINBYTES
        stack.push(take(bytes[need(1, 'SHORT_BINBYTES length')], 'SHORT_BINBYTES'));
        break;
      case 0x42: // BINBYTES
        stack.push(take(view.getUint32(need(4, 'BINBYTES length'), true), 'BINBYTES'));
        break;
      case 0x8e: // BINBYTES8
        stack.push(take(Number(view.getBigUint64(need(8, 'BINBYTES8 length'), true)), 'BINBYTES8'));
        break;
      case 0x96: // BYTEARRAY8
        stack.push(take(Number(view.getBigUint64(need(8, 'BYTEARRAY8 length'), true)), 'BYTEARRAY8').slice());
        break;
      case 0x71: // BINPUT
        memo.set(bytes[need(1, 'BINPUT')], top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(view.getUint32(need(4, 'LONG_BINPUT'), true), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x70: // PUT (text)
        memo.set(Number(intText(line('PUT'), 'PUT')), top());
        break;
      case 0x68: // BINGET
        stack.push(memoGet(bytes[need(1, 'BINGET')]));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(view.getUint32(need(4, 'LONG_BINGET'), true)));
        break;
      case 0x67: // GET (text)
        stack.push(memoGet(Number(intText(line('GET'), 'GET'))));
        break;
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line('GLOBAL module');
        const name = line('GLOBAL name');
        stack.push(global(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        check(
          typeof module === 'string' && typeof name === 'string',
          () => `${fn}: STACK_GLOBAL expects two strings, got ${typeName(module)} and ${typeName(name)}`,
        );
        stack.push(global(module, name));
        break;
      }
      case 0x69: {
        // INST "module\nname\n" + args since MARK
        const module = line('INST module');
        const name = line('INST name');
        const args = popMark();
        stack.push(invoke(callable(global(module, name), 'INST'), args));
        break;
      }
      case 0x6f: {
        // OBJ: class and args since MARK
        const items = popMark();
        check(items.length >= 1, () => `${fn}: OBJ without a class at byte ${at}`);
        stack.push(invoke(callable(items[0], 'OBJ'), items.slice(1)));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const c = callable(pop(), 'REDUCE');
        stack.push(invoke(c, tupleItems(args, `REDUCE of ${c.qualname}`)));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        const c = callable(pop(), 'NEWOBJ');
        stack.push(invoke(c, tupleItems(args, `NEWOBJ of ${c.qualname}`)));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX: cls, args, kwargs
        const kwargs = pop();
        const args = pop();
        const c = callable(pop(), 'NEWOBJ_EX');
        check(
          kwargs instanceof Map && kwargs.size === 0,
          () => `${fn}: NEWOBJ_EX with keyword arguments is not supported (${c.qualname})`,
        );
        stack.push(invoke(c, tupleItems(args, `NEWOBJ_EX of ${c.qualname}`)));
        break;
      }
      case 0x62: {
        // BUILD: obj.__setstate__(state) or obj.__dict__.update(state)
        const state = pop();
        const obj = top();
        if (obj instanceof PyOpaque) {
          obj.state = state;
        } else if (obj instanceof Map) {
          // e.g. an OrderedDict state_dict carrying `_metadata`: attributes are not needed here.
        } else {
          throw new WeightsFormatError(`${fn}: BUILD on a ${typeName(obj)} is not supported (byte ${at})`);
        }
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistent(pop()));
        break;
      case 0x50: // PERSID (text)
        stack.push(persistent(line('PERSID')));
        break;
      case 0x82:
      case 0x83:
      case 0x84:
        throw new WeightsFormatError(`${fn}: extension-registry opcodes (EXT1/2/4) are refused (byte ${at})`);
      case 0x97:
      case 0x98:
        throw new WeightsFormatError(
          `${fn}: out-of-band buffers (protocol 5 NEXT_BUFFER/READONLY_BUFFER) are not supported`,
        );
      default:
        throw new WeightsFormatError(
          `${fn}: unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} ('${String.fromCharCode(op)}') at byte ${at}`,
        );
    }
  }
}

/**
 * Decodes protocol 0's raw-unicode-escape: `\uXXXX` / `\UXXXXXXXX` escapes, other chars as latin-1.
 * As in Python, an escape beyond U+10FFFF is an error; lone surrogates (`\ud800`) are kept as such.
 */
function rawUnicodeEscape(s: string, fn: string): string {
  return s.replace(
    /\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g,
    (m, u4: string | undefined, u8: string | undefined) => {
      const cp = Number.parseInt((u4 ?? u8) as string, 16);
      check(
        cp <= 0x10ffff,
        () => `${fn}: UNICODE escape ${m} is beyond the last code point U+10FFFF (corrupt pickle)`,
      );
      return String.fromCodePoint(cp);
    },
  );
}

/** Decodes a Python 2 str literal as protocol 0 writes it: 'text' or "text" with backslash escapes. */
function quotedString(s: string, fn: string): string {
  const q = s[0];
  if (s.length < 2 || (q !== "'" && q !== '"') || s[s.length - 1] !== q) {
    throw new WeightsFormatError(`${fn}: STRING opcode argument is not a quoted string: ${s.slice(0, 40)}`);
  }
  const escapes: Record<string, string> = {
    n: '\n',
    r: '\r',
    t: '\t',
    '\\': '\\',
    "'": "'",
    '"': '"',
    '0': '\0',
  };
  return s
    .slice(1, -1)
    .replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_m, e: string) =>
      e.length === 3 ? String.fromCharCode(Number.parseInt(e.slice(1), 16)) : (escapes[e] ?? `\\${e}`),
    );
}

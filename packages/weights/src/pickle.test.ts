import { WeightsFormatError } from './errors.js';
import { PyCallable, PyOpaque, PyTuple, unpickle } from './pickle.js';
import { PICKLE_VECTORS } from './testing/pickle_vectors.js';

const hex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (b) => Number.parseInt(b, 16));

/** A test-only resolver for the few builtins plain-data pickles use at low protocols. */
function plainGlobals(module: string, name: string): unknown {
  const q = `${module}.${name}`;
  switch (q) {
    case 'builtins.set':
    case '__builtin__.set':
      return new PyCallable(q, (a) => new Set(a[0] as unknown[]));
    case '_codecs.encode':
      // bytes at protocol <= 2: _codecs.encode(latin-1 text, 'latin1')
      return new PyCallable(q, (a) => Uint8Array.from(a[0] as string, (c) => c.charCodeAt(0)));
    case 'collections.OrderedDict':
      return new PyCallable(q, () => new Map());
    default:
      throw new WeightsFormatError(`refused ${q}`);
  }
}

/** Python values -> plain JSON-able JS for comparisons. */
function plain(v: unknown): unknown {
  if (v instanceof PyTuple) return { tuple: v.items.map(plain) };
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return { dict: [...v].map(([k, x]) => [plain(k), plain(x)]) };
  if (v instanceof Set) return { set: [...v].map(plain) };
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (typeof v === 'bigint') return { big: v.toString() };
  return v;
}

describe('unpickle: CPython plain-data pickles, protocols 0-5', () => {
  it.each(PICKLE_VECTORS.map((h, p) => [p, h] as const))('protocol %i', (_p, h) => {
    const bytes = hex(h);
    const { value, end } = unpickle(bytes, { findGlobal: plainGlobals });
    expect(end).toBe(bytes.length);
    const m = value as Map<unknown, unknown>;
    expect(plain(m.get('ints'))).toEqual([
      0,
      255,
      256,
      65535,
      65536,
      -1,
      -(2 ** 31),
      2 ** 31,
      { big: (2n ** 53n).toString() },
      { big: (2n ** 70n).toString() },
      { big: (-(2n ** 63n)).toString() },
    ]);
    expect(m.get('float')).toBe(3.25);
    expect(m.get('neg')).toBe(-0.5);
    expect(plain(m.get('flags'))).toEqual({ tuple: [true, false, null] });
    expect(m.get('text')).toBe('ünï');
    expect(plain(m.get('bytes'))).toEqual({ bytes: [0, 1, 255] });
    expect(plain(m.get('tuple1'))).toEqual({ tuple: [1] });
    expect(plain(m.get('tuple3'))).toEqual({ tuple: [1, 2, 3] });
    expect(plain(m.get('tuple5'))).toEqual({ tuple: [1, 2, 3, 4, 5] });
    const nested = m.get('nested') as Map<unknown, unknown>;
    expect(nested.get(1)).toBe('one');
    const two = nested.get('two') as unknown[][];
    expect(two[0]).toBe(two[1]); // the memo shares one list object
    expect(two[0]).toEqual([7, 8]);
    expect(plain(m.get('empty'))).toEqual({ tuple: [{ tuple: [] }, [], { dict: [] }] });
    expect(plain(m.get('set'))).toEqual({ set: [3] });
    expect(plain(m.get('od'))).toEqual({ dict: [['k', 1]] });
  });

  it('refuses any global the resolver refuses, before calling anything', () => {
    // cos\nsystem\n(S'echo pwned'\ntR.  (protocol 0 os.system payload)
    const evil = new TextEncoder().encode("cos\nsystem\n(S'echo pwned'\ntR.");
    let called = false;
    const findGlobal = (m: string, n: string) => {
      if (m === 'os') throw new WeightsFormatError(`refusing ${m}.${n}`);
      called = true;
      return null;
    };
    expect(() => unpickle(evil, { findGlobal })).toThrow(/refusing os.system/);
    expect(called).toBe(false);
  });

  it('opaque placeholders record arguments and state but never run', () => {
    const b = new TextEncoder().encode("cargparse\nNamespace\n)R}S'lr'\nF0.1\nsb.");
    const { value } = unpickle(b, { findGlobal: (m, n) => new PyOpaque(`${m}.${n}`) });
    expect(value).toBeInstanceOf(PyOpaque);
    expect((value as PyOpaque).qualname).toBe('argparse.Namespace');
    expect(plain((value as PyOpaque).state)).toEqual({ dict: [['lr', 0.1]] });
  });

  it.each([
    ['an empty input', [], /pickle truncated reading an opcode/],
    ['a truncated BINUNICODE', [0x80, 2, 0x58, 10, 0, 0, 0, 0x61], /pickle truncated reading BINUNICODE/],
    ['stack underflow', [0x80, 2, 0x52], /pickle stack underflow/],
    ['an unknown opcode', [0x80, 2, 0xff], /unsupported pickle opcode 0xff/],
    ['an undefined memo key', [0x80, 2, 0x68, 5, 0x2e], /memo key 5 not defined/],
    ['extension opcodes', [0x80, 2, 0x82, 1, 0x2e], /EXT1\/2\/4\) are refused/],
    ['protocol 6', [0x80, 6, 0x4e, 0x2e], /unsupported pickle protocol 6/],
    ['a persistent id without a loader', [0x80, 2, 0x4e, 0x51, 0x2e], /no persistent_load/],
    ['REDUCE on data', [0x80, 2, 0x4b, 1, 0x29, 0x52, 0x2e], /REDUCE on a number, which is not callable/],
    ['SETITEM on a list', [0x80, 2, 0x5d, 0x4b, 1, 0x4b, 2, 0x73, 0x2e], /SETITEM on a list/],
    ['POP_MARK without MARK', [0x80, 2, 0x31], /no MARK to pop/],
    ['out-of-band buffers', [0x80, 5, 0x97], /out-of-band buffers/],
  ])('%s is a clear error', (_what, bytes, message) => {
    expect(() => unpickle(Uint8Array.from(bytes), { findGlobal: plainGlobals })).toThrow(message);
  });

  it('STACK_GLOBAL, MEMOIZE, FRAME and BINUNICODE8 (protocol 4 opcodes)', () => {
    const text = [...new TextEncoder().encode('hi')];
    const b = Uint8Array.from([
      0x80,
      4,
      0x95,
      20,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0x8c,
      8,
      ...new TextEncoder().encode('builtins'),
      0x94,
      0x8c,
      3,
      ...new TextEncoder().encode('set'),
      0x94,
      0x93,
      0x94,
      0x8d,
      2,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      ...text,
      0x85,
      0x52,
      0x2e,
    ]);
    const { value } = unpickle(b, { findGlobal: plainGlobals });
    expect(value).toEqual(new Set(['h', 'i']));
  });
});

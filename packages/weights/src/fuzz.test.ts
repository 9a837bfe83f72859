/**
 * Seeded mutation fuzzing of every weights parser over real seed inputs. Every mutated input must end in a
 * result or a WeightsFormatError: any other exception type, an allocation larger than the input justifies,
 * an unhandled promise rejection or a slow case is a finding, reported with its mutation history and a
 * minimised reproducer (hex). Reproduce a run with EFFDET_FUZZ_SEED; scale it with EFFDET_FUZZ_CASES
 * (cases per parser, default 10000); EFFDET_FUZZ_VERBOSE=1 prints per-parser statistics.
 */
import { readFileSync } from 'node:fs';
import { fixturePath } from '@effdet/testing';
import { memorySource, sliceView } from './bytes.js';
import { crc32c, maskCrc } from './crc.js';
import { WeightsFormatError } from './errors.js';
import { nodeInflateRaw } from './node.js';
import { PyCallable, PyTuple, unpickle } from './pickle.js';
import { readPth } from './pth.js';
import { checkRawTensor, fromStrings, fromTypedArray, type RawTensorMap, toFloat32 } from './raw_tensor.js';
import { openSafetensors, readSafetensors, writeSafetensors } from './safetensors.js';
import { snappyDecompress } from './snappy.js';
import {
  bundleEntry,
  bundleHeader,
  PickleBuilder,
  type PickledTensor,
  stateDictPickle,
  writeLegacyPth,
  writeTable,
  writeZip,
  writeZipPth,
} from './testing/builders.js';
import {
  AllocationBudgetError,
  AllocationGuard,
  enc,
  hex,
  minimise,
  mutate,
  mutateJsonText,
  Rng,
} from './testing/fuzz.js';
import { PICKLE_VECTORS } from './testing/pickle_vectors.js';
import { openTfCheckpointIndex, parseTfIndex } from './tf_checkpoint.js';
import { encodeTfjs, readTfjsArtifacts, stringifyModelJson } from './tfjs_format.js';

const SEED = Number(process.env.EFFDET_FUZZ_SEED ?? 0x5eed2024);
const CASES = Number(process.env.EFFDET_FUZZ_CASES ?? 10_000);
const VERBOSE = process.env.EFFDET_FUZZ_VERBOSE === '1';
/** A case slower than this is reported as a (near-)hang: inputs are at most a few KiB. */
const SLOW_MS = 2000;

/** Largest single allocation a case may make: generous for deflate (<= 1032x) and dtype widening. */
function budgetFor(inputBytes: number): number {
  return Math.max(1 << 20, 1100 * inputBytes);
}

/** One seed input and how a (mutated) copy of it is parsed. */
interface Seed {
  label: string;
  bytes: Uint8Array;
  run: (b: Uint8Array) => Promise<unknown>;
  /** Mutate as JSON text half of the time (safetensors headers, model.json). */
  json?: boolean;
  /** Size the allocation budget by this many extra bytes (fixed companions such as a data shard). */
  extraBytes?: number;
}

interface Target {
  name: string;
  seeds: Seed[];
  dict: Uint8Array[];
}

interface Finding {
  target: string;
  seed: string;
  kind: string;
  message: string;
  history: string[];
  input: Uint8Array;
  minimal?: Uint8Array;
}

const JSON_VALUES = [
  '0',
  '-1',
  '1.5',
  '-0',
  '1e308',
  '4294967296',
  '9007199254740991',
  '9007199254740992',
  '18446744073709551616',
  '"x"',
  '""',
  'null',
  'true',
  '[]',
  '{}',
  '[0]',
  '[-1]',
  '[1.5]',
  '[4294967296,4294967296]',
  '[9007199254740991]',
  '[0,9007199254740991]',
  '"F32"',
  '"F16"',
  '"BF16"',
  '"F64"',
  '"I64"',
  '"BOOL"',
  '"U8"',
  '"float32"',
  '"int32"',
  '"bool"',
  '"string"',
  '"uint8"',
  '"uint16"',
  '"float16"',
  '"__proto__"',
  '"constructor"',
  '{"__proto__":{"x":1}}',
  '{"dtype":"uint8","scale":1e308,"min":-1e308}',
  '["../x.bin"]',
  '[""]',
  // Deep nesting (a 24 KB value): recursion in messages or metadata handling must not overflow the stack.
  `${'['.repeat(12_000)}${']'.repeat(12_000)}`,
  `${'{"a":'.repeat(12_000)}1${'}'.repeat(12_000)}`,
];

const PICKLE_TOKENS = [
  '\\U00110000',
  '\\U0010ffff',
  '\\uD800',
  "S'\\x41'\n",
  'L99999999999999999999999999\n',
  'I01\n',
  'F1e999\n',
  'Fnan\n',
  'V\\U0010ffff\n',
  'cos\nsystem\n',
  'c__builtin__\nset\n',
  'ccollections\nOrderedDict\n',
  'ctorch\nFloatStorage\n',
  'ctorch._utils\n_rebuild_tensor_v2\n',
  '\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f',
  '\x8b\xff\xff\xff\x7f',
  '\x8d\xff\xff\xff\xff\xff\xff\x1f\x00',
  'X\xff\xff\xff\xff',
  'T\xff\xff\xff\xff',
  'B\xff\xff\xff\x7f',
  '(',
  't',
  'R',
  '.',
  '0',
  '1',
  '2',
  'h\x00',
  'j\xff\xff\xff\xff',
  'q\x00',
  'r\xff\xff\xff\xff',
  '\x94',
  'b',
  'Q',
  'P1\n',
  'g0\n',
  'p0\n',
  '\x81',
  '\x92',
  'o',
  'i',
  '\x93',
  '\x85',
  '\x86',
  '\x87',
  '}',
  ']',
  ')',
  'e',
  'u',
  's',
  'a',
  '\x8f',
  '\x90',
  '\x91',
  'N',
  '\x88',
  '\x89',
  'K\xff',
  'M\xff\xff',
  'J\xff\xff\xff\xff',
  'J\x00\x00\x00\x80',
];

const JSON_TOKENS = [
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '"',
  '\\u0000',
  '\\ud800',
  '1e308',
  '-1',
  'null',
  '"__proto__"',
  '"data_offsets"',
  '"shape"',
  '"dtype"',
  '"__metadata__"',
  '"weightsManifest"',
  '"quantization"',
  '"paths"',
  '"weights"',
  '"name"',
];

const TF_TOKENS = [
  '\xff\xff\xff\xff\x0f',
  '\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01',
  '\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80',
  '\x57\xfb\x80\x8b\x24\x75\x47\xdb',
  '\x08',
  '\x12',
  '\x18',
  '\x20',
  '\x28',
  '\x35',
  '\x3a',
  '\x01',
  '\x07',
  '\x13',
  '\x0e',
  '/ExponentialMovingAverage',
  '\x12\x04\x08\xff\xff\x03',
  '\x12\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01',
];

const ZIP_TOKENS = [
  'PK\x03\x04',
  'PK\x01\x02',
  'PK\x05\x06',
  'PK\x06\x06',
  'PK\x06\x07',
  '\x01\x00\x18\x00',
  '\xff\xff\xff\xff',
  'archive/data.pkl',
  'constants.pkl',
  'archive/byteorder',
  'big',
  '\x08\x00',
  '\x01\x00',
];

const bytesOf = (tokens: readonly string[]) =>
  tokens.map((t) => Uint8Array.from(t, (c) => c.charCodeAt(0) & 0xff));

function f32(...v: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(v).buffer);
}

/** Touches every tensor of a parsed map the way loaders do (shape / size checks, float conversion). */
function consume(map: RawTensorMap): number {
  let n = 0;
  for (const [name, t] of Object.entries(map)) {
    checkRawTensor(t, `fuzz: ${name}`);
    if (t.dtype !== 'string' && t.dtype !== 'bool') n += toFloat32(t).length;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------
// Seeds

function safetensorsSeeds(): Seed[] {
  const tensors: RawTensorMap = Object.create(null);
  tensors.w = fromTypedArray([1, 2, 3, 4, 5, 6], [2, 3], 'float32');
  tensors.h = fromTypedArray([0.5, -1, 2, 65504], [4], 'float16');
  tensors.bf = fromTypedArray([1.5, -2], [2], 'bfloat16');
  tensors.d = fromTypedArray([3.25], [], 'float64');
  tensors.i = fromTypedArray([7, -8], [2], 'int64');
  tensors.u = fromTypedArray([1, 2, 3], [3], 'uint8');
  tensors.b = fromTypedArray([true, false], [2], 'bool');
  tensors.e = fromTypedArray([], [0, 4], 'float32');
  const file = writeSafetensors(tensors, { model: 'fuzz', config: '{"a":1}' });
  const headerLen = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = file.slice(8, 8 + headerLen);
  const data = file.slice(8 + headerLen);
  const parse = async (b: Uint8Array) => {
    const all = readSafetensors(b);
    consume(all.tensors);
    const reader = await openSafetensors(memorySource(b));
    consume(await reader.readAll());
    if (reader.entries.length > 0) await reader.read(reader.entries[0].name);
  };
  return [
    { label: 'safetensors file', bytes: file, run: parse },
    {
      // Header JSON mutated, then re-framed with a correct length: reaches the header validation.
      label: 'safetensors header JSON',
      bytes: header,
      json: true,
      extraBytes: data.length,
      run: (h) => {
        const out = new Uint8Array(8 + h.length + data.length);
        new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
        out.set(h, 8);
        out.set(data, 8 + h.length);
        return parse(out);
      },
    },
  ];
}

const PTH_TENSORS: PickledTensor[] = [
  { name: 'a', storage: 'FloatStorage', key: '0', numel: 6, offset: 0, shape: [2, 3], stride: [3, 1] },
  // A transposed (non-contiguous) view of the same storage.
  { name: 'at', storage: 'FloatStorage', key: '0', numel: 6, offset: 0, shape: [3, 2], stride: [1, 3] },
  {
    name: 'h',
    storage: 'HalfStorage',
    key: '1',
    numel: 4,
    offset: 1,
    shape: [3],
    stride: [1],
    parameter: true,
  },
  {
    name: 'bn.num_batches_tracked',
    storage: 'LongStorage',
    key: '2',
    numel: 1,
    offset: 0,
    shape: [],
    stride: [],
  },
];
const PTH_STORAGES: Record<string, Uint8Array> = {
  '0': f32(1, 2, 3, 4, 5, 6),
  '1': new Uint8Array(Uint16Array.from([0x3c00, 0x4000, 0xc000, 0x3800]).buffer),
  '2': new Uint8Array(BigInt64Array.from([5n]).buffer),
};

function pthZipSeeds(): Seed[] {
  const pickle = stateDictPickle(PTH_TENSORS, {
    ordered: true,
    wrap: ['state_dict'],
    extras: (p) => p.str('epoch').int(3).str('arch').str('tf_efficientdet_d0'),
  });
  const run = (options: Parameters<typeof readPth>[1]) => async (b: Uint8Array) =>
    consume(await readPth(b, options));
  return [
    { label: 'zip .pth', bytes: writeZipPth(pickle, PTH_STORAGES), run: run({}) },
    { label: 'zip .pth (CRC off)', bytes: writeZipPth(pickle, PTH_STORAGES), run: run({ verifyCrc: false }) },
    {
      label: 'zip64 .pth (CRC off)',
      bytes: writeZipPth(pickle, PTH_STORAGES, { zip64: true }),
      run: run({ verifyCrc: false }),
    },
    {
      label: 'zip .pth, deflated storages',
      bytes: writeZipPth(pickle, PTH_STORAGES, { deflate: true }),
      run: run({ verifyCrc: false }),
    },
    {
      // The Node entry's zlib inflater (what readPthFile / loadWeights use).
      label: 'zip .pth, deflated storages (node zlib)',
      bytes: writeZipPth(pickle, PTH_STORAGES, { deflate: true }),
      run: run({ verifyCrc: false, inflateRaw: nodeInflateRaw }),
    },
    {
      // The pickle mutated, then packed into a valid archive: reaches the VM and the state-dict extraction.
      label: 'data.pkl inside a valid zip',
      bytes: pickle,
      extraBytes: 1024,
      run: async (p) =>
        consume(await readPth(writeZipPth(p, PTH_STORAGES), { skipUnknownGlobals: p.length % 2 === 0 })),
    },
  ];
}

function pthLegacySeeds(): Seed[] {
  const tensors: PickledTensor[] = [
    ...PTH_TENSORS.slice(0, 2),
    // A legacy storage view: elements [1, 4) of storage '1' as its own key.
    {
      name: 'v',
      storage: 'HalfStorage',
      key: '1',
      numel: 4,
      offset: 0,
      shape: [3],
      stride: [1],
      view: ['1v', 1, 3],
    },
    PTH_TENSORS[3],
  ];
  const main = stateDictPickle(tensors, {
    legacy: true,
    wrap: ['model'],
    extras: (p) => p.str('epoch').int(1),
  });
  const storages: [string, number, Uint8Array][] = [
    ['0', 4, PTH_STORAGES['0']],
    ['1', 2, PTH_STORAGES['1']],
    ['2', 8, PTH_STORAGES['2']],
  ];
  return [
    {
      label: 'legacy .pth',
      bytes: writeLegacyPth(main, storages),
      run: async (b) => consume(await readPth(b)),
    },
    {
      label: 'main pickle inside a valid legacy file',
      bytes: main,
      extraBytes: 1024,
      run: async (p) =>
        consume(await readPth(writeLegacyPth(p, storages), { skipUnknownGlobals: p.length % 2 === 1 })),
    },
  ];
}

function tfRead(verifyCrc: boolean, limit = Number.POSITIVE_INFINITY) {
  return async (index: Uint8Array, data: Uint8Array) => {
    parseTfIndex(index, { verifyCrc });
    const ck = openTfCheckpointIndex(
      index,
      async (shard, offset, length) => {
        if (shard !== 0) throw new WeightsFormatError(`fuzz: no shard ${shard}`);
        return sliceView(data, offset, length, 'fuzz shard');
      },
      { verifyCrc },
    );
    let read = 0;
    for (const e of ck.entries) {
      if (read++ >= limit) break;
      const t = await ck.read(e.name);
      if (t.dtype !== 'string' && t.dtype !== 'bool') toFloat32(t);
    }
  };
}

/** A multi-block table (8 entries per block, restarts every 16 keys) with several dtypes and its data. */
function syntheticCheckpoint(): { index: Uint8Array; data: Uint8Array } {
  const parts: Uint8Array[] = [];
  let offset = 0;
  const entries: [string, Uint8Array][] = [['', bundleHeader(1)]];
  const add = (name: string, dtype: number, shape: number[], bytes: Uint8Array) => {
    entries.push([
      name,
      bundleEntry({ dtype, shape, offset, size: bytes.length, crc: maskCrc(crc32c(bytes)) }),
    ]);
    parts.push(bytes);
    offset += bytes.length;
  };
  for (let i = 0; i < 20; i++) add(`net/layer_${i}/kernel`, 1, [2], f32(i, -i));
  add('net/half', 19, [3], new Uint8Array(Uint16Array.from([0x3c00, 0x4000, 0xc000]).buffer));
  add('net/bf16', 14, [1], new Uint8Array(Uint16Array.from([0x3fc0]).buffer));
  add('net/f64', 2, [], new Uint8Array(Float64Array.from([2.5]).buffer));
  add('net/i8', 6, [2], Uint8Array.from([1, 255]));
  add('global_step', 9, [], new Uint8Array(BigInt64Array.from([42n]).buffer));
  add('flag', 10, [2], Uint8Array.from([1, 0]));
  // DT_STRING: varint lengths, masked CRC of the lengths (uint32 LE), bytes.
  const lens = new Uint8Array(Uint32Array.from([2, 1]).buffer);
  const s = Uint8Array.from([
    2,
    1,
    ...new Uint8Array(Uint32Array.from([maskCrc(crc32c(lens))]).buffer),
    104,
    105,
    33,
  ]);
  const crc = maskCrc(crc32c(s.subarray(6), crc32c(s.subarray(2, 6), crc32c(lens))));
  entries.push(['names', bundleEntry({ dtype: 7, shape: [2], offset, size: s.length, crc })]);
  parts.push(s);
  offset += s.length;
  const data = new Uint8Array(offset);
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  return { index: writeTable(entries, { perBlock: 8 }), data };
}

function tfSeeds(): Seed[] {
  const seeds: Seed[] = [];
  const pairs: [string, Uint8Array, Uint8Array][] = [];
  for (const name of ['regression_v1', 'regression_objectbased']) {
    const idx = fixturePath(`tf_checkpoint/tf_written/${name}.index`);
    const dat = fixturePath(`tf_checkpoint/tf_written/${name}.data-00000-of-00001`);
    if (idx && dat) pairs.push([name, readFileSync(idx), readFileSync(dat)]);
  }
  const synth = syntheticCheckpoint();
  pairs.push(['synthetic multi-block', synth.index, synth.data]);
  for (const [name, index, data] of pairs) {
    const index8 = new Uint8Array(index);
    const data8 = new Uint8Array(data);
    seeds.push(
      { label: `${name}.index`, bytes: index8, extraBytes: data8.length, run: (b) => tfRead(true)(b, data8) },
      {
        label: `${name}.index (CRC off)`,
        bytes: index8,
        extraBytes: data8.length,
        run: (b) => tfRead(false)(b, data8),
      },
      {
        label: `${name} data shard`,
        bytes: data8,
        extraBytes: index8.length,
        run: (b) => tfRead(true)(index8, b),
      },
    );
  }
  const minigo = fixturePath('tf_checkpoint/tf_written/minigo.index');
  if (minigo) {
    // Index only (Snappy data block): tensors are read from a zero shard, a few small ones per case.
    const zeros = new Uint8Array(1 << 16);
    const bytes = new Uint8Array(readFileSync(minigo));
    const run = (verify: boolean) => async (b: Uint8Array) => {
      const ck = openTfCheckpointIndex(
        b,
        async (_shard, _offset, length) => {
          if (length > zeros.length)
            throw new WeightsFormatError(`fuzz: ${length} bytes not in the zero shard`);
          return zeros.subarray(0, length);
        },
        { verifyCrc: verify },
      );
      let n = 0;
      for (const e of ck.entries) {
        const info = ck.entry(e.name);
        if (!info || info.size > zeros.length) continue;
        await ck.read(e.name).catch((x: unknown) => {
          if (!(x instanceof WeightsFormatError)) throw x;
        });
        if (++n >= 4) break;
      }
    };
    seeds.push(
      { label: 'minigo.index (Snappy)', bytes, run: run(true) },
      { label: 'minigo.index (Snappy, CRC off)', bytes, run: run(false) },
    );
  }
  return seeds;
}

/** The Snappy-compressed data block of minigo.index (found through the footer and the index block). */
function minigoSnappyBlock(): Uint8Array | null {
  const p = fixturePath('tf_checkpoint/tf_written/minigo.index');
  if (!p) return null;
  const file = new Uint8Array(readFileSync(p));
  let pos = file.length - 48;
  const varint = () => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      const b = file[pos++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
  };
  varint();
  varint();
  const indexOffset = varint();
  pos = indexOffset;
  varint(); // shared
  const nonShared = varint();
  varint(); // value length
  pos += nonShared;
  const blockOffset = varint();
  const blockSize = varint();
  if (file[blockOffset + blockSize] !== 1) throw new Error('minigo.index: first data block is not Snappy');
  return file.slice(blockOffset, blockOffset + blockSize);
}

function tfjsSeeds(): Seed[] {
  const t: RawTensorMap = Object.create(null);
  t.w = fromTypedArray([0.5, -1, 2, 3, 4, 5, 6, 7, -8, 9, 10, 11], [3, 4], 'float32');
  t.i = fromTypedArray([1, -2, 3], [3], 'int32');
  t.b = fromTypedArray([true, false], [2], 'bool');
  t.s = fromStrings(['ab', '', 'cde'], [3]);
  const f: RawTensorMap = Object.create(null);
  f.w = t.w;
  f.v = fromTypedArray([0, 0.25, -0.75], [3], 'float32');
  const seeds: Seed[] = [];
  const variants: [string, ReturnType<typeof encodeTfjs>][] = [
    ['plain, 24-byte shards', encodeTfjs(t, { shardBytes: 24, modelName: 'fuzz', config: { a: [1, 2] } })],
    ['uint8', encodeTfjs(f, { quantization: 'uint8' })],
    ['float16, 8-byte shards', encodeTfjs(f, { quantization: 'float16', shardBytes: 8 })],
  ];
  for (const [label, art] of variants) {
    const json = stringifyModelJson(art.modelJson);
    const shards = new Map(art.shards.map((s) => [s.path, s.data.slice()]));
    const shardBytes = art.shards.reduce((n, s) => n + s.data.length, 0);
    const run = async (j: Uint8Array, sh: Map<string, Uint8Array>) => consume(await readTfjsArtifacts(j, sh));
    seeds.push({
      label: `model.json (${label})`,
      bytes: json,
      json: true,
      extraBytes: shardBytes,
      run: (b) => run(b, shards),
    });
    const first = art.shards[0];
    seeds.push({
      label: `first shard (${label})`,
      bytes: first.data.slice(),
      extraBytes: json.length + shardBytes,
      run: (b) => run(json, new Map([...shards, [first.path, b]])),
    });
  }
  return seeds;
}

function pickleSeeds(): Seed[] {
  const harmless = new Map<string, PyCallable>([
    ['collections.OrderedDict', new PyCallable('collections.OrderedDict', () => new Map())],
    ['_codecs.encode', new PyCallable('_codecs.encode', (a) => a[0])],
    ['__builtin__.set', new PyCallable('__builtin__.set', (a) => new Set(Array.isArray(a[0]) ? a[0] : []))],
    ['builtins.set', new PyCallable('builtins.set', (a) => new Set(Array.isArray(a[0]) ? a[0] : []))],
  ]);
  const findGlobal = (m: string, n: string) => {
    const c = harmless.get(`${m}.${n}`);
    if (c) return c;
    // torch names of the state-dict seed: inert stand-ins that just collect their arguments.
    if (m === 'torch' || m === 'torch._utils') return new PyCallable(`${m}.${n}`, (a) => new PyTuple(a));
    throw new WeightsFormatError(`fuzz: refusing global '${m}.${n}'`);
  };
  const run = async (b: Uint8Array) =>
    unpickle(b, { findGlobal, persistentLoad: (pid) => new PyTuple([pid]), what: 'fuzz' });
  const vectors = PICKLE_VECTORS.map((h, p) => ({
    label: `pickle protocol ${p}`,
    bytes: Uint8Array.from(h.match(/../g) ?? [], (x) => Number.parseInt(x, 16)),
    run,
  }));
  return [
    ...vectors,
    {
      label: 'state-dict pickle (legacy ids)',
      bytes: stateDictPickle(PTH_TENSORS, { legacy: true, ordered: true }),
      run,
    },
  ];
}

// ---------------------------------------------------------------------------------------------------------
// Harness

const guard = new AllocationGuard();
const unhandled: { reason: unknown; during: string }[] = [];
let currentCase = '';
let lastMaxAlloc = 0;
const onUnhandled = (reason: unknown) => {
  unhandled.push({ reason, during: currentCase });
};

interface Stats {
  cases: number;
  ok: number;
  rejected: number;
  ms: number;
  slowestMs: number;
  slowest: string;
  maxAlloc: number;
}

/** Runs one case; returns a finding kind + message, or null when it ended as a result or a WeightsFormatError. */
async function classify(
  seed: Seed,
  input: Uint8Array,
): Promise<{ kind: string; message: string } | 'ok' | 'rejected'> {
  guard.reset(budgetFor(input.length + (seed.extraBytes ?? 0)));
  let error: unknown = null;
  try {
    await seed.run(input);
  } catch (e) {
    error = e;
  }
  const tripped = guard.tripped;
  lastMaxAlloc = guard.maxBytes;
  guard.reset(Number.POSITIVE_INFINITY);
  if (tripped) return { kind: 'excessive allocation', message: tripped.message };
  if (error === null) return 'ok';
  if (error instanceof WeightsFormatError) return 'rejected';
  if (error instanceof AllocationBudgetError) return { kind: 'excessive allocation', message: error.message };
  const e = error as Error;
  return {
    kind: `${e?.constructor?.name ?? typeof e} escaped`,
    message: String(e?.message ?? e).slice(0, 300),
  };
}

async function fuzzTarget(
  target: Target,
  cases: number,
  rng: Rng,
): Promise<{ stats: Stats; findings: Finding[] }> {
  const stats: Stats = { cases: 0, ok: 0, rejected: 0, ms: 0, slowestMs: 0, slowest: '', maxAlloc: 0 };
  const findings: Finding[] = [];
  const seen = new Set<string>();
  const t0 = performance.now();
  for (let i = 0; i < cases; i++) {
    const seed = target.seeds[i % target.seeds.length];
    const others = target.seeds.filter((s) => s !== seed && s.json === seed.json);
    let bytes: Uint8Array;
    let history: string[];
    if (seed.json && rng.chance(0.5)) {
      let text = new TextDecoder().decode(seed.bytes);
      history = [];
      for (let k = 1 + rng.int(3); k > 0; k--) {
        const m = mutateJsonText(rng, text, JSON_VALUES);
        text = m.text;
        history.push(m.what);
      }
      bytes = enc(text);
    } else {
      ({ bytes, history } = mutate(
        rng,
        seed.bytes,
        target.dict,
        others.length ? rng.pick(others).bytes : undefined,
      ));
    }
    currentCase = `${target.name} / ${seed.label} #${i}`;
    const c0 = performance.now();
    const outcome = await classify(seed, bytes);
    const dt = performance.now() - c0;
    stats.cases++;
    stats.maxAlloc = Math.max(stats.maxAlloc, lastMaxAlloc);
    if (dt > stats.slowestMs) {
      stats.slowestMs = dt;
      stats.slowest = `${seed.label}: ${history.join('; ')}`;
    }
    if (outcome === 'ok') stats.ok++;
    else if (outcome === 'rejected') stats.rejected++;
    if (dt > SLOW_MS) {
      findings.push({
        target: target.name,
        seed: seed.label,
        kind: 'slow case',
        message: `${dt.toFixed(0)} ms`,
        history,
        input: bytes,
      });
    }
    if (typeof outcome === 'object') {
      const sig = `${seed.label}|${outcome.kind}|${outcome.message.replace(/\d+/g, 'N')}`;
      if (!seen.has(sig)) {
        seen.add(sig);
        findings.push({ target: target.name, seed: seed.label, ...outcome, history, input: bytes });
      }
    }
  }
  stats.ms = performance.now() - t0;
  // Shrink the first finding of each kind to a small reproducer.
  const minimised = new Set<string>();
  for (const f of findings) {
    const key = `${f.seed}|${f.kind}`;
    if (minimised.has(key) || f.kind === 'slow case') continue;
    minimised.add(key);
    const seed = target.seeds.find((s) => s.label === f.seed) as Seed;
    f.minimal = await minimise(f.input, async (b) => {
      const o = await classify(seed, b);
      return typeof o === 'object' && o.kind === f.kind;
    });
  }
  return { stats, findings };
}

function report(findings: Finding[]): string {
  return findings
    .slice(0, 12)
    .map(
      (f) =>
        `- [${f.target} / ${f.seed}] ${f.kind}: ${f.message}\n    mutations: ${f.history.join('; ')}\n` +
        `    input: ${hex(f.input, 96)}${f.minimal ? `\n    minimised (${f.minimal.length} bytes): ${hex(f.minimal, 160)}` : ''}`,
    )
    .join('\n');
}

// Rejected promises nobody awaits are findings too (and would otherwise crash the jest worker): record them
// for the whole file; let late ones surface before detaching.
beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterAll(async () => {
  await new Promise((r) => setTimeout(r, 50));
  process.off('unhandledRejection', onUnhandled);
});

const TARGETS: (() => Target)[] = [
  () => ({ name: 'safetensors', seeds: safetensorsSeeds(), dict: bytesOf(JSON_TOKENS) }),
  () => ({ name: 'pth (zip)', seeds: pthZipSeeds(), dict: bytesOf([...ZIP_TOKENS, ...PICKLE_TOKENS]) }),
  () => ({ name: 'pth (legacy)', seeds: pthLegacySeeds(), dict: bytesOf(PICKLE_TOKENS) }),
  () => ({ name: 'tf checkpoint', seeds: tfSeeds(), dict: bytesOf(TF_TOKENS) }),
  () => ({ name: 'tfjs model.json + shards', seeds: tfjsSeeds(), dict: bytesOf(JSON_TOKENS) }),
  () => {
    const block = minigoSnappyBlock();
    return {
      name: 'snappy',
      seeds: block
        ? [{ label: 'minigo data block', bytes: block, run: async (b: Uint8Array) => snappyDecompress(b) }]
        : [],
      dict: bytesOf([
        '\xff\xff\xff\xff\x0f',
        '\xfc\xff\xff\xff\xff',
        '\xf0\xff',
        '\x01\x00',
        '\xfe\xff\xff',
        '\x03\xff\xff\xff\xff',
      ]),
    };
  },
  () => ({ name: 'pickle VM', seeds: pickleSeeds(), dict: bytesOf(PICKLE_TOKENS) }),
];

describe(`weights parsers under mutation fuzzing (seed 0x${SEED.toString(16)}, ${CASES} cases per parser)`, () => {
  const all: { name: string; stats: Stats }[] = [];
  beforeAll(() => {
    guard.install();
  });
  afterAll(async () => {
    guard.uninstall();
    if (VERBOSE) {
      const rows = all.map(
        ({ name, stats: s }) =>
          `${name.padEnd(26)} ${String(s.cases).padStart(6)} cases ${String(s.ok).padStart(6)} ok ${String(s.rejected).padStart(6)} rejected ` +
          `${(s.ms / 1000).toFixed(1).padStart(5)} s  slowest ${s.slowestMs.toFixed(1)} ms  max alloc ${s.maxAlloc} B`,
      );
      console.log(`fuzz seed 0x${SEED.toString(16)}\n${rows.join('\n')}`);
    }
  });

  for (const make of TARGETS) {
    const target = make();
    const run = target.seeds.length > 0 ? it : it.skip;
    run(`${target.name}: every mutated input ends in a result or a WeightsFormatError`, async () => {
      const rng = new Rng(
        SEED ^ [...target.name].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619), 2166136261),
      );
      // The unmutated seeds parse.
      for (const s of target.seeds) {
        guard.reset(Number.POSITIVE_INFINITY);
        await s.run(s.bytes);
      }
      const before = unhandled.length;
      const { stats, findings } = await fuzzTarget(target, CASES, rng);
      await new Promise((r) => setTimeout(r, 20));
      all.push({ name: target.name, stats });
      for (const u of unhandled.slice(before)) {
        const e = u.reason as Error;
        findings.push({
          target: target.name,
          seed: u.during,
          kind: 'unhandled promise rejection',
          message: `${e?.constructor?.name}: ${e?.message}`,
          history: [],
          input: new Uint8Array(0),
        });
      }
      expect(stats.cases).toBe(CASES);
      if (findings.length > 0) {
        throw new Error(`${findings.length} finding(s) for ${target.name}:\n${report(findings)}`);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// Minimal reproducers of what the fuzzer (and review of the allocation sites it pointed at) found. Each one
// states the contract: a WeightsFormatError, with no allocation beyond what the input justifies. They fail
// until the readers are fixed (see the report that came with this file).

describe('fuzz findings: minimal reproducers', () => {
  const g = new AllocationGuard();
  beforeAll(() => {
    g.install();
  });
  afterAll(() => {
    g.uninstall();
  });

  /** Runs `f` under a 1 MiB allocation budget; it must reject with a WeightsFormatError. */
  async function expectCleanRejection(f: () => unknown): Promise<void> {
    g.reset(1 << 20);
    let error: unknown = null;
    try {
      await f();
    } catch (e) {
      error = e;
    }
    const tripped = g.tripped;
    g.reset(Number.POSITIVE_INFINITY);
    expect(tripped?.message ?? 'no excessive allocation').toBe('no excessive allocation');
    if (!(error instanceof WeightsFormatError)) {
      throw new Error(
        `expected a WeightsFormatError, got ${error === null ? 'a result' : `${(error as Error).constructor.name}: ${(error as Error).message}`}`,
      );
    }
  }

  const stateDict = (shape: bigint[], stride: number[]) =>
    new PickleBuilder()
      .proto(2)
      .emptyDict()
      .mark()
      .str('w')
      .global('torch._utils', '_rebuild_tensor_v2')
      .mark()
      .mark()
      .str('storage')
      .global('torch', 'FloatStorage')
      .str('0')
      .str('cpu')
      .int(1)
      .tuple()
      .binpersid()
      .int(0)
      .mark()
      .raw(...shape.flatMap((d) => [...new PickleBuilder().long1(d).bytes()]))
      .tuple()
      .mark()
      .raw(...stride.flatMap((d) => [...new PickleBuilder().int(d).bytes()]))
      .tuple()
      .bool(false)
      .global('collections', 'OrderedDict')
      .emptyTuple()
      .reduce()
      .tuple()
      .reduce()
      .setitems()
      .stop()
      .bytes();

  it('snappy: a 7-byte block declaring 4 GiB is rejected before allocating', async () => {
    // preamble varint 0xffffffff, then one literal byte.
    await expectCleanRejection(() =>
      snappyDecompress(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x41)),
    );
  });

  it('TF checkpoint: a DT_STRING entry of shape [2^40] over 6 bytes', async () => {
    for (const dim of [2 ** 40, 2 ** 26]) {
      const index = writeTable([
        ['', bundleHeader(1)],
        ['s', bundleEntry({ dtype: 7, shape: [dim], offset: 0, size: 6 })],
      ]);
      const ck = openTfCheckpointIndex(index, async () => new Uint8Array(6));
      await expectCleanRejection(() => ck.read('s'));
    }
  });

  it("zip: a corrupt deflate stream through the Node entry's zlib inflater", async () => {
    const zip = writeZip([{ name: 'archive/data.pkl', data: enc('hello hello hello'), deflate: true }]);
    zip[30 + 'archive/data.pkl'.length] = 0xff;
    await expectCleanRejection(() => readPth(zip, { inflateRaw: nodeInflateRaw }));
  });

  it('zip: a corrupt deflate stream (in-memory reader, DecompressionStream path)', async () => {
    const zip = writeZip([{ name: 'archive/data.pkl', data: enc('hello hello hello'), deflate: true }]);
    // Local header (30 bytes) + name: the deflate stream starts here; 0xff = final block of reserved type 3.
    zip[30 + 'archive/data.pkl'.length] = 0xff;
    const before = unhandled.length;
    await expectCleanRejection(() => readPth(zip));
    await new Promise((r) => setTimeout(r, 20));
    expect(unhandled.slice(before).map((u) => String(u.reason))).toEqual([]);
  });

  it('zip: a deflated entry declaring 2^53 - 1 (zip64) or 4 GiB of output', async () => {
    const z64 = writeZip([{ name: 'archive/data.pkl', data: enc('hello'), deflate: true }], { zip64: true });
    // The central directory's zip64 extra field holds (size, compressed size, offset); set size to 2^53 - 1.
    const cd = Buffer.from(z64).lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    const extraAt = cd + 46 + 'archive/data.pkl'.length + 4;
    new DataView(z64.buffer).setBigUint64(extraAt, 2n ** 53n - 1n, true);
    await expectCleanRejection(() => readPth(z64));
    const z32 = writeZip([{ name: 'archive/data.pkl', data: enc('hello'), deflate: true }]);
    const cd32 = Buffer.from(z32).lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    new DataView(z32.buffer).setUint32(cd32 + 24, 0xfffffffe, true);
    await expectCleanRejection(() => readPth(z32));
  });

  it('pth: a stride-0 tensor of 2^40 (RangeError) or 2^26 (256 MiB) elements over one stored float', async () => {
    for (const n of [2n ** 40n, 2n ** 26n]) {
      const pkl = stateDict([n], [0]);
      await expectCleanRejection(() => readPth(writeZipPth(pkl, { '0': new Uint8Array(4) })));
      await expectCleanRejection(() => readPth(writeLegacyPth(pkl, [['0', 4, new Uint8Array(4)]])));
    }
  });

  it('pickle: a UNICODE (protocol 0) string with the escape \\U00110000', async () => {
    const pkl = Uint8Array.from([0x56, ...enc('\\U00110000\n'), 0x2e]);
    await expectCleanRejection(() => unpickle(pkl, { findGlobal: () => null }));
    const key = Uint8Array.from([0x7d, 0x56, ...enc('\\U00110000\n'), 0x4e, 0x73, 0x2e]); // {'\U00110000': None}
    await expectCleanRejection(() => readPth(writeZipPth(key, {})));
  });

  it('safetensors: a header value nested 10000 deep (20 KB)', async () => {
    for (const value of [
      `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
      `{"dtype":"F32","shape":${'['.repeat(10_000)}1${']'.repeat(10_000)},"data_offsets":[0,4]}`,
    ]) {
      const h = enc(`{"a":${value}}`);
      const file = new Uint8Array(8 + h.length);
      new DataView(file.buffer).setBigUint64(0, BigInt(h.length), true);
      file.set(h, 8);
      await expectCleanRejection(() => readSafetensors(file));
    }
  });

  it('TF.js: userDefinedMetadata nested 10000 deep', async () => {
    const json = `{"weightsManifest":[],"userDefinedMetadata":{"x":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}}`;
    // A result is fine here (the metadata is data); an escaping RangeError is not.
    g.reset(1 << 20);
    let error: unknown = null;
    try {
      await readTfjsArtifacts(json, {});
    } catch (e) {
      error = e;
    }
    g.reset(Number.POSITIVE_INFINITY);
    if (error !== null && !(error instanceof WeightsFormatError)) {
      throw new Error(
        `expected a result or a WeightsFormatError, got ${(error as Error).constructor.name}: ${(error as Error).message}`,
      );
    }
  });
});

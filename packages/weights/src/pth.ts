/**
 * PyTorch checkpoints written by `torch.save`:
 * - zip format (torch >= 1.6): `<archive>/data.pkl` (the pickled object, tensors as persistent ids
 *   `('storage', StorageType, key, location, numel)`), `<archive>/data/<key>` (raw storage bytes),
 *   `<archive>/version` (and `byteorder` since torch 2.1);
 * - legacy format: pickled magic number, protocol version and sys info, the pickled object, a pickled
 *   list of storage keys, then per storage an int64 element count and the raw bytes.
 * Only an allow-list of globals resolves (OrderedDict, tensor/parameter rebuild functions, typed
 * storages, torch.Size); no Python code ever runs.
 */
import { type ByteSource, dataView, decodeLatin1, memorySource } from './bytes.js';
import { check, WeightsFormatError } from './errors.js';
import { describePy, PyCallable, PyOpaque, PyTuple, unpickle } from './pickle.js';
import {
  ITEM_SIZE,
  type NumericDType,
  newTensorMap,
  type RawTensor,
  type RawTensorMap,
} from './raw_tensor.js';
import { hint, type NameFilter, selectNames, type TensorInfo, type WeightsReader } from './reader.js';
import { type InflateRaw, isZip, openZip, type ZipEntry } from './zip.js';

/** Options of the .pth readers. */
export interface PthOptions {
  /**
   * Pick the EMA weights of a training checkpoint (`state_dict_ema` / `model_ema`); an error when
   * the file has none. Default: the plain weights (`state_dict` / `model`, or the top-level dict).
   */
  ema?: boolean;
  /** Prefixes removed from every name that starts with them. Default: ['module.'] (DataParallel). */
  stripPrefixes?: readonly string[];
  /**
   * Turn globals outside the allow-list into inert placeholders instead of refusing the file (for
   * training checkpoints that also pickle e.g. `argparse.Namespace`). Nothing is executed either way;
   * non-tensor values are dropped. Default: false (refuse, naming the global).
   */
  skipUnknownGlobals?: boolean;
  /** Inflater for deflated zip entries (torch never compresses; re-zipped files may). */
  inflateRaw?: InflateRaw;
  /** Check zip entry CRCs. Default: true. */
  verifyCrc?: boolean;
}

/** Magic number at the start of a legacy torch.save file (pickled LONG1). */
export const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;

const STORAGE_DTYPES: Readonly<Record<string, NumericDType>> = Object.freeze({
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  UntypedStorage: 'uint8',
});

/** `torch.FloatStorage` and friends, as passed in persistent ids. */
class StorageType {
  constructor(
    readonly name: string,
    readonly dtype: NumericDType,
  ) {}
}

/** One storage: `key` names the zip record / legacy block; `elementOffset` is set for legacy views. */
interface StorageRef {
  key: string;
  dtype: NumericDType;
  numel: number;
  rootKey: string;
  elementOffset: number;
}

/** A tensor as rebuilt from the pickle: a strided view of a storage. */
class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

function intOf(v: unknown, what: string): number {
  check(
    typeof v === 'number' && Number.isSafeInteger(v),
    () => `${what}: expected an integer, got ${describePy(v)}`,
  );
  return v;
}

/** A storage key: torch writes strings; integers are accepted as their decimal text. */
function keyOf(v: unknown, what: string): string {
  if (typeof v === 'string') return v;
  check(
    (typeof v === 'number' && Number.isSafeInteger(v)) || typeof v === 'bigint',
    () => `${what}: expected a string key, got ${describePy(v)}`,
  );
  return String(v);
}

/** Largest gathered copy of a non-contiguous view (2 GiB - 1, as a single typed array may hold everywhere). */
const MAX_GATHER_BYTES = 2 ** 31 - 1;

function intTuple(v: unknown, what: string): number[] {
  check(v instanceof PyTuple, () => `${what}: expected a tuple of integers`);
  return v.items.map((x, i) => intOf(x, `${what}[${i}]`));
}

function numelOf(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Counts the items the allow-listed calls copy out of their arguments. The memo lets a pickle pass
 * the same large tuple or dict to thousands of calls for a few bytes each (quadratic time), so the
 * total is bounded by the pickle's size: each item a real checkpoint passes is written once.
 */
type Spend = (items: number, what: string) => void;

function copyBudget(fn: string, pickleBytes: number): Spend {
  const limit = 8 * pickleBytes + (1 << 16);
  let left = limit;
  return (items, what) => {
    left -= items;
    check(
      left >= 0,
      () =>
        `${fn}: ${what}: the pickle's calls copy more than ${limit} items in all, more than its ${pickleBytes} bytes justify (the same arguments passed over and over?)`,
    );
  };
}

/** `_rebuild_tensor(_v2)(storage, storage_offset, size, stride, ...)` with bounds checks. */
function rebuildTensor(args: unknown[], fn: string, spend: Spend): TensorRef {
  const what = `${fn}: _rebuild_tensor_v2`;
  check(args.length >= 4, () => `${what} expects at least 4 arguments, got ${args.length}`);
  const [storage, offsetV, sizeV, strideV] = args;
  for (const t of [sizeV, strideV]) if (t instanceof PyTuple) spend(t.items.length, '_rebuild_tensor_v2');
  check(
    typeof storage === 'object' && storage !== null && 'rootKey' in storage,
    () => `${what}: first argument is not a storage`,
  );
  const s = storage as StorageRef;
  const offset = intOf(offsetV, `${what} storage_offset`);
  const shape = intTuple(sizeV, `${what} size`);
  const stride = intTuple(strideV, `${what} stride`);
  check(
    stride.length === shape.length,
    () => `${what}: size [${shape}] and stride [${stride}] differ in rank`,
  );
  check(
    shape.every((d) => d >= 0) && stride.every((d) => d >= 0) && offset >= 0,
    () => `${what}: negative size, stride or offset`,
  );
  const n = numelOf(shape);
  if (n > 0) {
    let last = offset;
    for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * stride[i];
    check(
      last < s.numel,
      () =>
        `${what}: view (offset ${offset}, size [${shape}], stride [${stride}]) reaches element ${last} of a storage of ${s.numel}`,
    );
    // A view with distinct, non-overlapping elements inside the storage has at most its element count;
    // more means stride-0 (broadcast) or overlapping dimensions, whose copy the file does not bound.
    check(
      n <= s.numel,
      () =>
        `${what}: view (offset ${offset}, size [${shape}], stride [${stride}]) has ${n} elements, more than its storage of ${s.numel} holds (broadcast or overlapping views are not supported)`,
    );
  }
  return new TensorRef(s, offset, shape, stride);
}

/** The allow-list resolver for one pickle of `pickleBytes` bytes. */
function makeFindGlobal(fn: string, skipUnknown: boolean, pickleBytes: number) {
  const spend = copyBudget(fn, pickleBytes);
  const rebuild = new PyCallable('torch._utils._rebuild_tensor_v2', (a) => rebuildTensor(a, fn, spend));
  const allowed: Record<string, unknown> = {
    'collections.OrderedDict': new PyCallable('collections.OrderedDict', (a) => {
      const m = new Map();
      const init = a[0];
      if (init instanceof Map || Array.isArray(init))
        spend(init instanceof Map ? init.size : init.length, 'OrderedDict');
      if (init instanceof Map) for (const [k, v] of init) m.set(k, v);
      else if (Array.isArray(init))
        for (const p of init) if (p instanceof PyTuple && p.items.length === 2) m.set(p.items[0], p.items[1]);
      return m;
    }),
    'torch._utils._rebuild_tensor_v2': rebuild,
    'torch._utils._rebuild_tensor': rebuild,
    'torch._utils._rebuild_parameter': new PyCallable('torch._utils._rebuild_parameter', (a) => a[0]),
    'torch._utils._rebuild_parameter_with_state': new PyCallable(
      'torch._utils._rebuild_parameter_with_state',
      (a) => a[0],
    ),
    'torch.Size': new PyCallable('torch.Size', (a) => (a[0] instanceof PyTuple ? a[0] : new PyTuple([]))),
  };
  for (const [name, dtype] of Object.entries(STORAGE_DTYPES))
    allowed[`torch.${name}`] = new StorageType(name, dtype);
  return (module: string, name: string): unknown => {
    const q = `${module}.${name}`;
    if (Object.hasOwn(allowed, q)) return allowed[q];
    if (skipUnknown) return new PyOpaque(q);
    throw new WeightsFormatError(
      `${fn}: refusing pickle global '${q}': only tensors, state dicts and plain data are loaded (allowed: ${Object.keys(allowed).join(', ')}); pass skipUnknownGlobals to ignore such objects`,
    );
  };
}

/** Decodes a persistent id `('storage', StorageType, key, location, numel[, view_metadata])`. */
function storageFromPid(pid: unknown, fn: string, storages: Map<string, StorageRef>): StorageRef {
  check(pid instanceof PyTuple, () => `${fn}: persistent id must be a tuple`);
  const [kind, type, keyV, , numelV, view] = pid.items;
  check(
    kind === 'storage',
    () => `${fn}: unsupported persistent id kind ${describePy(kind)} (only 'storage')`,
  );
  check(
    type instanceof StorageType,
    () => `${fn}: persistent id names an unknown storage type ${describePy(type)}`,
  );
  const key = keyOf(keyV, `${fn}: persistent id`);
  const numel = intOf(numelV, `${fn}: numel of storage '${key}'`);
  check(numel >= 0, () => `${fn}: storage '${key}' has a negative element count ${numel}`);
  let root = storages.get(key);
  if (root === undefined) {
    root = { key, dtype: type.dtype, numel, rootKey: key, elementOffset: 0 };
    storages.set(key, root);
  } else {
    check(
      root.dtype === type.dtype,
      () => `${fn}: storage '${key}' is used as ${root?.dtype} and ${type.dtype}`,
    );
  }
  if (view === undefined || view === null) return root;
  // Legacy storage views: (view_key, offset, view_size), in elements of the root storage.
  const [viewKey, offV, sizeV] = view instanceof PyTuple ? view.items : [];
  const off = intOf(offV, `${fn}: view offset of storage '${key}'`);
  const size = intOf(sizeV, `${fn}: view size of storage '${key}'`);
  check(
    off >= 0 && size >= 0 && off + size <= numel,
    () => `${fn}: view [${off}, ${off + size}) exceeds storage '${key}' of ${numel} elements`,
  );
  const v: StorageRef = {
    key: keyOf(viewKey, `${fn}: view of storage '${key}'`),
    dtype: type.dtype,
    numel: size,
    rootKey: key,
    elementOffset: off,
  };
  storages.set(v.key, v);
  return v;
}

/** The tensor's bytes: a view when it is a contiguous block of the storage, else a gathered copy. */
function materialise(t: TensorRef, storageBytes: Uint8Array, name: string): RawTensor {
  const { dtype } = t.storage;
  const item = ITEM_SIZE[dtype];
  const shape = [...t.shape];
  const n = numelOf(shape);
  if (n === 0) return { dtype, shape, data: new Uint8Array(0) };
  const base = (t.storage.elementOffset + t.offset) * item;
  let contiguous = true;
  let expected = 1;
  let last = 0;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && t.stride[i] !== expected) contiguous = false;
    expected *= shape[i];
    last += (shape[i] - 1) * t.stride[i];
  }
  // rebuildTensor checked the view against the storage's declared size; this checks it against the
  // bytes actually there, and bounds the gathered copy of a strided view.
  check(
    Number.isSafeInteger(n) && n <= t.storage.numel && base + (last + 1) * item <= storageBytes.byteLength,
    () =>
      `readPth: tensor '${name}' (offset ${t.offset}, size [${shape}], stride [${t.stride}]) exceeds its storage of ${storageBytes.byteLength} bytes`,
  );
  if (contiguous) return { dtype, shape, data: storageBytes.subarray(base, base + n * item) };
  check(
    n * item <= MAX_GATHER_BYTES,
    () =>
      `readPth: tensor '${name}' is a strided view of ${n * item} bytes; copies of more than ${MAX_GATHER_BYTES} bytes are not supported`,
  );
  const out = new Uint8Array(n * item);
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  let src = base;
  for (let k = 0; k < n; k++) {
    for (let b = 0; b < item; b++) out[k * item + b] = storageBytes[src + b];
    // Odometer step over the multi-index, updating the source byte offset incrementally.
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      src += t.stride[d] * item;
      if (idx[d] < shape[d]) break;
      src -= shape[d] * t.stride[d] * item;
      idx[d] = 0;
    }
  }
  return { dtype, shape, data: out };
}

const PLAIN_KEYS = ['state_dict', 'model'];
const EMA_KEYS = ['state_dict_ema', 'model_ema'];

function hasTensors(m: Map<unknown, unknown>): boolean {
  for (const v of m.values()) if (v instanceof TensorRef) return true;
  return false;
}

/** Finds the state dict inside a checkpoint object and flattens it to (name, tensor) pairs. */
function extractStateDict(
  obj: unknown,
  options: PthOptions,
  fn: string,
): { tensors: Map<string, TensorRef>; metadata: Record<string, string> } {
  const metadata: Record<string, string> = Object.create(null);
  if (obj instanceof PyOpaque) {
    throw new WeightsFormatError(
      `${fn}: the file holds a pickled ${obj.qualname} object, not a state dict; save model.state_dict() instead`,
    );
  }
  check(
    obj instanceof Map,
    () => `${fn}: expected a dict of tensors at the top level, got ${obj === null ? 'None' : typeof obj}`,
  );
  for (const [k, v] of obj) {
    if (typeof k === 'string' && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'))
      metadata[k] = String(v);
  }
  const keysOf = (m: Map<unknown, unknown>) =>
    [...m.keys()]
      .slice(0, 10)
      .map((k) => (typeof k === 'string' ? k : describePy(k)))
      .join(', ');
  let dict: Map<unknown, unknown> = obj;
  if (options.ema) {
    const k = EMA_KEYS.find((key) => dict.get(key) instanceof Map || dict.get(key) instanceof PyOpaque);
    if (k === undefined)
      throw new WeightsFormatError(
        `${fn}: ema requested but the checkpoint has no ${EMA_KEYS.join(' / ')} (keys: ${keysOf(dict)})`,
      );
    dict = dict.get(k) as Map<unknown, unknown>;
  } else if (!hasTensors(dict)) {
    const k = PLAIN_KEYS.find((key) => dict.get(key) instanceof Map || dict.get(key) instanceof PyOpaque);
    if (k !== undefined) dict = dict.get(k) as Map<unknown, unknown>;
    else if (EMA_KEYS.some((key) => dict.get(key) instanceof Map)) {
      throw new WeightsFormatError(
        `${fn}: the checkpoint holds only EMA weights (keys: ${keysOf(dict)}); pass { ema: true }`,
      );
    }
  }
  if (dict instanceof PyOpaque) {
    throw new WeightsFormatError(
      `${fn}: the checkpoint holds a pickled ${dict.qualname} object, not a state dict; save model.state_dict() instead`,
    );
  }
  const prefixes = options.stripPrefixes ?? ['module.'];
  const tensors = new Map<string, TensorRef>();
  for (const [k, v] of dict) {
    if (!(v instanceof TensorRef) || typeof k !== 'string') continue;
    let name = k;
    for (const p of prefixes) if (p && name.startsWith(p)) name = name.slice(p.length);
    check(
      !tensors.has(name),
      () => `${fn}: two tensors are named '${name}' after removing prefixes [${prefixes.join(', ')}]`,
    );
    tensors.set(name, v);
  }
  return { tensors, metadata };
}

/** Builds the WeightsReader shared by both formats from the extracted tensors and a storage loader. */
function makeReader(
  format: 'pth' | 'pth-legacy',
  tensors: Map<string, TensorRef>,
  metadata: Record<string, string>,
  loadStorage: (rootKey: string) => Promise<Uint8Array>,
  close: () => Promise<void>,
): WeightsReader {
  const entries: TensorInfo[] = [...tensors].map(([name, t]) => ({
    name,
    dtype: t.storage.dtype,
    shape: [...t.shape],
  }));
  const names = entries.map((e) => e.name);
  const readWith = async (name: string, cache?: Map<string, Promise<Uint8Array>>): Promise<RawTensor> => {
    const t = tensors.get(name);
    if (t === undefined) throw new WeightsFormatError(`readPth: no tensor named '${name}'${hint(names)}`);
    const key = t.storage.rootKey;
    let p = cache?.get(key);
    if (p === undefined) {
      p = loadStorage(key);
      cache?.set(key, p);
    }
    return materialise(t, await p, name);
  };
  return {
    format,
    metadata,
    entries,
    has: (name) => tensors.has(name),
    read: (name) => readWith(name),
    async readAll(filter?: NameFilter) {
      const cache = new Map<string, Promise<Uint8Array>>();
      const out = newTensorMap();
      for (const name of selectNames('readPth', entries, filter)) out[name] = await readWith(name, cache);
      return out;
    },
    close,
  };
}

/** Opens a zip-format .pth: parses data.pkl; storages are read from the archive on demand. */
export async function openPthZip(source: ByteSource, options: PthOptions = {}): Promise<WeightsReader> {
  const fn = 'readPth';
  const zip = await openZip(source, { inflateRaw: options.inflateRaw, verifyCrc: options.verifyCrc });
  const pkl = zip.entries.find((e) => e.name === 'data.pkl' || e.name.endsWith('/data.pkl'));
  if (pkl === undefined) {
    const ts = zip.entries.some((e) => e.name.endsWith('constants.pkl'));
    throw new WeightsFormatError(
      ts
        ? `${fn}: this is a TorchScript archive (constants.pkl, no data.pkl); save model.state_dict() with torch.save instead`
        : `${fn}: zip archive has no data.pkl entry (not a torch.save file)`,
    );
  }
  const prefix = pkl.name.slice(0, pkl.name.length - 'data.pkl'.length);
  const byteorder = zip.get(`${prefix}byteorder`);
  if (byteorder !== undefined) {
    const order = decodeLatin1(await zip.read(byteorder)).trim();
    check(
      order === 'little',
      () => `${fn}: byteorder '${order}' is not supported (only little-endian files)`,
    );
  }
  const version = zip.get(`${prefix}version`);
  const metadataVersion = version ? decodeLatin1(await zip.read(version)).trim() : '';
  const storages = new Map<string, StorageRef>();
  const records = new Map<string, ZipEntry>();
  const pklBytes = await zip.read(pkl);
  const { value } = unpickle(pklBytes, {
    what: fn,
    findGlobal: makeFindGlobal(fn, options.skipUnknownGlobals ?? false, pklBytes.length),
    persistentLoad: (pid) => {
      const s = storageFromPid(pid, fn, storages);
      if (!records.has(s.rootKey)) {
        const rec = zip.get(`${prefix}data/${s.rootKey}`);
        check(
          rec !== undefined,
          () => `${fn}: storage record '${prefix}data/${s.rootKey}' is missing from the archive`,
        );
        const need = s.numel * ITEM_SIZE[s.dtype];
        check(
          rec.size >= need,
          () =>
            `${fn}: storage record '${rec.name}' has ${rec.size} bytes, ${s.numel} ${s.dtype} elements need ${need}`,
        );
        records.set(s.rootKey, rec);
      }
      return s;
    },
  });
  const { tensors, metadata } = extractStateDict(value, options, fn);
  if (metadataVersion) metadata['torch.version'] = metadataVersion;
  return makeReader(
    'pth',
    tensors,
    metadata,
    (key) => zip.read(records.get(key) as ZipEntry),
    async () => {
      await source.close?.();
    },
  );
}

/** True when the bytes start like a legacy torch.save file (PROTO 2, LONG1 of the magic number). */
export function isLegacyPth(head: Uint8Array): boolean {
  const magic = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
  return head.length >= magic.length && magic.every((b, i) => head[i] === b);
}

/** Reads the leading pickles of a legacy file from a growing prefix of the source. */
async function legacyPickles(source: ByteSource, options: PthOptions, fn: string) {
  let chunk = Math.min(source.size, 1 << 20);
  for (;;) {
    const head = await source.read(0, chunk);
    try {
      const storages = new Map<string, StorageRef>();
      const find = makeFindGlobal(fn, options.skipUnknownGlobals ?? false, head.length);
      const noGlobals = (m: string, n: string): unknown => {
        throw new WeightsFormatError(`${fn}: unexpected global '${m}.${n}' in the file header`);
      };
      const magic = unpickle(head, { what: fn, findGlobal: noGlobals });
      check(
        magic.value === LEGACY_MAGIC,
        () => `${fn}: bad legacy magic number ${describePy(magic.value)} (not a torch.save file)`,
      );
      const proto = unpickle(head, { what: fn, findGlobal: noGlobals, offset: magic.end });
      check(
        proto.value === LEGACY_PROTOCOL_VERSION,
        () =>
          `${fn}: unsupported legacy protocol version ${describePy(proto.value)} (expected ${LEGACY_PROTOCOL_VERSION})`,
      );
      const sys = unpickle(head, { what: fn, findGlobal: noGlobals, offset: proto.end });
      check(
        !(sys.value instanceof Map) || sys.value.get('little_endian') !== false,
        () => `${fn}: the file was written on a big-endian machine, which is not supported`,
      );
      const main = unpickle(head, {
        what: fn,
        offset: sys.end,
        findGlobal: find,
        persistentLoad: (pid) => {
          check(
            !(pid instanceof PyTuple) || pid.items[0] !== 'module',
            () =>
              `${fn}: the file pickles module source code (a whole nn.Module); save model.state_dict() instead`,
          );
          return storageFromPid(pid, fn, storages);
        },
      });
      const keys = unpickle(head, { what: fn, findGlobal: noGlobals, offset: main.end });
      check(Array.isArray(keys.value), () => `${fn}: storage key list is not a list`);
      return {
        main: main.value,
        keys: (keys.value as unknown[]).map((k) => keyOf(k, `${fn}: storage key list`)),
        storages,
        dataStart: keys.end,
      };
    } catch (e) {
      const truncated = e instanceof WeightsFormatError && e.message.includes('pickle truncated');
      if (!truncated || chunk >= source.size) throw e;
      chunk = Math.min(source.size, chunk * 4);
    }
  }
}

/**
 * Opens a legacy (pre-1.6 / `_use_new_zipfile_serialization=False`) .pth. Reads the pickles, then
 * walks the storage blocks (one 8-byte read each) to find their offsets; tensor bytes are read on
 * demand.
 */
export async function openPthLegacy(source: ByteSource, options: PthOptions = {}): Promise<WeightsReader> {
  const fn = 'readPth';
  const head = await source.read(0, Math.min(source.size, 512));
  if (head.length >= 262 && decodeLatin1(head.subarray(257, 262)) === 'ustar') {
    throw new WeightsFormatError(`${fn}: tar-format checkpoints (torch < 0.4) are not supported`);
  }
  check(isLegacyPth(head), () => `${fn}: not a legacy torch.save file (magic number missing)`);
  const { main, keys, storages, dataStart } = await legacyPickles(source, options, fn);
  const offsets = new Map<string, { at: number; bytes: number }>();
  let pos = dataStart;
  for (const key of keys) {
    const s = storages.get(key);
    check(
      s !== undefined,
      () => `${fn}: storage '${key}' is listed but no tensor uses it (cannot tell its dtype)`,
    );
    check(
      pos + 8 <= source.size,
      () => `${fn}: file truncated before storage '${key}' (offset ${pos}, size ${source.size})`,
    );
    const count = dataView(await source.read(pos, 8)).getBigInt64(0, true);
    const item = ITEM_SIZE[s.dtype];
    check(
      count >= 0n && count <= BigInt(Number.MAX_SAFE_INTEGER),
      () => `${fn}: storage '${key}' has an invalid element count ${count}`,
    );
    const bytes = Number(count) * item;
    check(
      Number(count) >= s.numel,
      () => `${fn}: storage '${key}' holds ${count} elements but the pickle says ${s.numel}`,
    );
    check(
      pos + 8 + bytes <= source.size,
      () =>
        `${fn}: storage '${key}' [${pos + 8}, ${pos + 8 + bytes}) exceeds file size ${source.size} (truncated?)`,
    );
    offsets.set(key, { at: pos + 8, bytes });
    pos += 8 + bytes;
  }
  const { tensors, metadata } = extractStateDict(main, options, fn);
  for (const t of tensors.values()) {
    check(
      offsets.has(t.storage.rootKey),
      () => `${fn}: storage '${t.storage.rootKey}' is used but not in the key list`,
    );
  }
  return makeReader(
    'pth-legacy',
    tensors,
    metadata,
    (key) => {
      const o = offsets.get(key) as { at: number; bytes: number };
      return source.read(o.at, o.bytes);
    },
    async () => {
      await source.close?.();
    },
  );
}

/** Opens either .pth format (sniffed from the first bytes). */
export async function openPth(source: ByteSource, options: PthOptions = {}): Promise<WeightsReader> {
  const head = await source.read(0, Math.min(source.size, 16));
  if (isZip(head)) return openPthZip(source, options);
  if (isLegacyPth(head)) return openPthLegacy(source, options);
  throw new WeightsFormatError(
    `readPth: neither a zip (PK\\x03\\x04) nor a legacy torch.save file (first bytes ${[...head.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`,
  );
}

/** Reads every tensor of a .pth held in memory (views into `bytes` where contiguous). */
export async function readPth(
  bytes: Uint8Array,
  options: PthOptions & { names?: NameFilter } = {},
): Promise<RawTensorMap> {
  const reader = await openPth(memorySource(bytes), options);
  return reader.readAll(options.names);
}

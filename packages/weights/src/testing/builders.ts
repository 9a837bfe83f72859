// Test-only writers for hand-made fixtures: pickles, zip archives, legacy torch files, TF tables.
// Not part of the package build (excluded in tsconfig.json).
import { deflateRawSync } from 'node:zlib';
import { concatBytes } from '../bytes.js';
import { crc32, crc32c, maskCrc } from '../crc.js';

const enc = new TextEncoder();

function u16(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff];
}
function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}
function u64(n: number): number[] {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return [...b];
}

/** Emits pickle opcodes (protocol 2 style, like torch.save). */
export class PickleBuilder {
  private out: number[] = [];
  private memo = 0;
  raw(...bytes: number[]): this {
    for (const b of bytes) this.out.push(b);
    return this;
  }
  proto(p = 2): this {
    return this.raw(0x80, p);
  }
  mark(): this {
    return this.raw(0x28);
  }
  stop(): this {
    return this.raw(0x2e);
  }
  emptyDict(): this {
    return this.raw(0x7d);
  }
  emptyList(): this {
    return this.raw(0x5d);
  }
  emptyTuple(): this {
    return this.raw(0x29);
  }
  tuple(): this {
    return this.raw(0x74);
  }
  setitems(): this {
    return this.raw(0x75);
  }
  setitem(): this {
    return this.raw(0x73);
  }
  appends(): this {
    return this.raw(0x65);
  }
  reduce(): this {
    return this.raw(0x52);
  }
  none(): this {
    return this.raw(0x4e);
  }
  bool(v: boolean): this {
    return this.raw(v ? 0x88 : 0x89);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.raw(0x4b, n);
    if (n >= 0 && n < 65536) return this.raw(0x4d, ...u16(n));
    return this.raw(0x4a, ...u32(n));
  }
  long1(v: bigint): this {
    const bytes: number[] = [];
    let x = v;
    while (x !== 0n && x !== -1n) {
      bytes.push(Number(x & 0xffn));
      x >>= 8n;
    }
    if (bytes.length === 0 || (v >= 0n && bytes[bytes.length - 1] & 0x80)) bytes.push(v < 0n ? 0xff : 0);
    if (v < 0n && !(bytes[bytes.length - 1] & 0x80)) bytes.push(0xff);
    return this.raw(0x8a, bytes.length, ...bytes);
  }
  float(v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, false);
    return this.raw(0x47, ...b);
  }
  str(s: string): this {
    const b = enc.encode(s);
    this.raw(0x58, ...u32(b.length));
    for (const x of b) this.out.push(x);
    return this;
  }
  global(module: string, name: string): this {
    return this.raw(0x63, ...enc.encode(`${module}\n${name}\n`));
  }
  put(): this {
    return this.raw(0x71, this.memo++ & 0xff);
  }
  get(i: number): this {
    return this.raw(0x68, i);
  }
  binpersid(): this {
    return this.raw(0x51);
  }
  build(): this {
    return this.raw(0x62);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

/** A tensor entry of a hand-made state dict pickle. */
export interface PickledTensor {
  name: string;
  storage: string; // e.g. 'FloatStorage'
  key: string;
  numel: number; // of the storage
  offset: number;
  shape: number[];
  stride: number[];
  /** Legacy views: (view_key, offset, size). */
  view?: [string, number, number];
  parameter?: boolean;
}

/** `{name: tensor, ...extra}` as torch.save pickles a state dict (optionally wrapped in `wrap`). */
export function stateDictPickle(
  tensors: PickledTensor[],
  options: { legacy?: boolean; wrap?: string[]; extras?: (p: PickleBuilder) => void; ordered?: boolean } = {},
): Uint8Array {
  const p = new PickleBuilder().proto(2);
  const open = (wrapKeys: string[]) => {
    p.emptyDict().mark();
    for (const k of wrapKeys) {
      p.str(k);
      body();
    }
    options.extras?.(p);
    p.setitems();
  };
  const body = () => {
    if (options.ordered) p.global('collections', 'OrderedDict').emptyTuple().reduce();
    else p.emptyDict();
    p.mark();
    for (const t of tensors) {
      p.str(t.name);
      if (t.parameter) p.global('torch._utils', '_rebuild_parameter');
      p.global('torch._utils', '_rebuild_tensor_v2');
      p.mark();
      p.mark().str('storage').global('torch', t.storage).str(t.key).str('cpu').int(t.numel);
      if (options.legacy) {
        if (t.view) p.mark().str(t.view[0]).int(t.view[1]).int(t.view[2]).tuple();
        else p.none();
      }
      p.tuple().binpersid();
      p.int(t.offset);
      p.mark();
      for (const d of t.shape) p.int(d);
      p.tuple();
      p.mark();
      for (const d of t.stride) p.int(d);
      p.tuple();
      p.bool(false);
      p.global('collections', 'OrderedDict').emptyTuple().reduce();
      p.tuple().reduce();
      if (t.parameter) {
        // The stack holds [.., name, _rebuild_parameter, tensor]: (tensor, True, OrderedDict()) then REDUCE.
        p.bool(true).global('collections', 'OrderedDict').emptyTuple().reduce().raw(0x87).reduce();
      }
    }
    p.setitems();
    // Like a real state_dict(): OrderedDict state `{'_metadata': OrderedDict()}` applied by BUILD.
    if (options.ordered)
      p.emptyDict()
        .str('_metadata')
        .global('collections', 'OrderedDict')
        .emptyTuple()
        .reduce()
        .setitem()
        .build();
  };
  if (options.wrap) open(options.wrap);
  else {
    body();
    if (options.extras) {
      p.mark();
      options.extras(p);
      p.setitems();
    }
  }
  return p.stop().bytes();
}

/** A zip file entry to write. */
export interface ZipFile {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
}

/**
 * Writes a zip archive (stored or deflated entries). `zip64` adds a zip64 EOCD record and locator
 * and sets the classic EOCD fields to their escape values; `align` pads local headers' extra field
 * so data starts at a multiple of it (as torch does with 64).
 */
export function writeZip(
  files: ZipFile[],
  options: { zip64?: boolean; align?: number; dataDescriptor?: boolean } = {},
): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const f of files) {
    const name = enc.encode(f.name);
    const body = f.deflate ? new Uint8Array(deflateRawSync(f.data)) : f.data;
    const crc = crc32(f.data);
    const method = f.deflate ? 8 : 0;
    const flags = options.dataDescriptor ? 0x08 : 0;
    let extra = new Uint8Array(0);
    if (options.align) {
      const base = offset + 30 + name.length + 4;
      const pad = (options.align - (base % options.align)) % options.align;
      extra = Uint8Array.from([...u16(0x4246), ...u16(pad), ...new Array(pad).fill(0x5a)]);
    }
    const hdrCrc = options.dataDescriptor ? 0 : crc;
    const hdrSizes = options.dataDescriptor ? [0, 0] : [body.length, f.data.length];
    const local = Uint8Array.from([
      ...u32(0x04034b50),
      ...u16(20),
      ...u16(flags),
      ...u16(method),
      ...u16(0),
      ...u16(0),
      ...u32(hdrCrc),
      ...u32(hdrSizes[0]),
      ...u32(hdrSizes[1]),
      ...u16(name.length),
      ...u16(extra.length),
    ]);
    parts.push(local, name, extra, body);
    const localOffset = offset;
    offset += local.length + name.length + extra.length + body.length;
    if (options.dataDescriptor) {
      const dd = Uint8Array.from([
        ...u32(0x08074b50),
        ...u32(crc),
        ...u32(body.length),
        ...u32(f.data.length),
      ]);
      parts.push(dd);
      offset += dd.length;
    }
    const z64 = options.zip64
      ? Uint8Array.from([
          ...u16(1),
          ...u16(24),
          ...u64(f.data.length),
          ...u64(body.length),
          ...u64(localOffset),
        ])
      : new Uint8Array(0);
    central.push(
      Uint8Array.from([
        ...u32(0x02014b50),
        ...u16(45),
        ...u16(45),
        ...u16(flags),
        ...u16(method),
        ...u16(0),
        ...u16(0),
        ...u32(crc),
        ...u32(options.zip64 ? 0xffffffff : body.length),
        ...u32(options.zip64 ? 0xffffffff : f.data.length),
        ...u16(name.length),
        ...u16(z64.length),
        ...u16(0),
        ...u16(0),
        ...u16(0),
        ...u32(0),
        ...u32(options.zip64 ? 0xffffffff : localOffset),
      ]),
      name,
      z64,
    );
  }
  const cd = concatBytes(central);
  const cdOffset = offset;
  const tail: number[] = [];
  if (options.zip64) {
    const recAt = cdOffset + cd.length;
    tail.push(
      ...u32(0x06064b50),
      ...u64(44),
      ...u16(45),
      ...u16(45),
      ...u32(0),
      ...u32(0),
      ...u64(files.length),
      ...u64(files.length),
      ...u64(cd.length),
      ...u64(cdOffset),
    );
    tail.push(...u32(0x07064b50), ...u32(0), ...u64(recAt), ...u32(1));
  }
  tail.push(
    ...u32(0x06054b50),
    ...u16(0),
    ...u16(0),
    ...u16(options.zip64 ? 0xffff : files.length),
    ...u16(options.zip64 ? 0xffff : files.length),
    ...u32(options.zip64 ? 0xffffffff : cd.length),
    ...u32(options.zip64 ? 0xffffffff : cdOffset),
    ...u16(0),
  );
  return concatBytes([...parts, cd, Uint8Array.from(tail)]);
}

/** A zip-format .pth: `archive/data.pkl`, `archive/data/<key>`, `archive/version`. */
export function writeZipPth(
  pickle: Uint8Array,
  storages: Record<string, Uint8Array>,
  options: { deflate?: boolean; zip64?: boolean } = {},
): Uint8Array {
  return writeZip(
    [
      { name: 'archive/data.pkl', data: pickle },
      ...Object.entries(storages).map(([k, data]) => ({
        name: `archive/data/${k}`,
        data,
        deflate: options.deflate,
      })),
      { name: 'archive/version', data: enc.encode('3\n') },
    ],
    { align: 64, zip64: options.zip64, dataDescriptor: true },
  );
}

/** A legacy torch.save file: magic, protocol, sys info, main pickle, key list, storages. */
export function writeLegacyPth(
  main: Uint8Array,
  storages: [key: string, itemSize: number, data: Uint8Array][],
): Uint8Array {
  const magic = new PickleBuilder().proto(2).long1(0x1950a86a20f9469cfc6cn).stop().bytes();
  const version = new PickleBuilder().proto(2).int(1001).stop().bytes();
  const sys = new PickleBuilder()
    .proto(2)
    .emptyDict()
    .mark()
    .str('protocol_version')
    .int(1001)
    .str('little_endian')
    .bool(true)
    .str('type_sizes')
    .emptyDict()
    .mark()
    .str('short')
    .int(2)
    .str('int')
    .int(4)
    .str('long')
    .int(4)
    .setitems()
    .setitems()
    .stop()
    .bytes();
  const keys = new PickleBuilder().proto(2).emptyList().mark();
  for (const [k] of storages) keys.str(k);
  keys.appends().stop();
  const blocks = storages.flatMap(([, item, data]) => [Uint8Array.from(u64(data.length / item)), data]);
  return concatBytes([magic, version, sys, main, keys.bytes(), ...blocks]);
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** Protobuf field helpers for hand-made BundleEntryProto / BundleHeaderProto. */
export const proto = {
  varint: (field: number, v: number) => [...varint(field * 8), ...varint(v)],
  bytes: (field: number, b: number[] | Uint8Array) => [...varint(field * 8 + 2), ...varint(b.length), ...b],
  fixed32: (field: number, v: number) => [...varint(field * 8 + 5), ...u32(v)],
};

/** BundleEntryProto bytes. */
export function bundleEntry(e: {
  dtype: number;
  shape: number[];
  shard?: number;
  offset: number;
  size: number;
  crc?: number;
  slices?: number;
}): Uint8Array {
  const shape = e.shape.flatMap((d) => proto.bytes(2, proto.varint(1, d)));
  return Uint8Array.from([
    ...proto.varint(1, e.dtype),
    ...proto.bytes(2, shape),
    ...(e.shard ? proto.varint(3, e.shard) : []),
    ...(e.offset ? proto.varint(4, e.offset) : []),
    ...proto.varint(5, e.size),
    ...(e.crc !== undefined ? proto.fixed32(6, e.crc) : []),
    ...new Array(e.slices ?? 0).fill(0).flatMap(() => proto.bytes(7, [])),
  ]);
}

/** BundleHeaderProto bytes. */
export function bundleHeader(numShards: number, endianness = 0): Uint8Array {
  return Uint8Array.from([
    ...proto.varint(1, numShards),
    ...(endianness ? proto.varint(2, endianness) : []),
    ...proto.bytes(3, proto.varint(1, 1)),
  ]);
}

function block(entries: [Uint8Array, Uint8Array][], restartInterval: number): Uint8Array {
  const out: number[] = [];
  const restarts: number[] = [];
  let prev: Uint8Array = new Uint8Array(0);
  entries.forEach(([k, v], i) => {
    let shared = 0;
    if (i % restartInterval === 0) restarts.push(out.length);
    else while (shared < prev.length && shared < k.length && prev[shared] === k[shared]) shared++;
    out.push(
      ...varint(shared),
      ...varint(k.length - shared),
      ...varint(v.length),
      ...k.subarray(shared),
      ...v,
    );
    prev = k;
  });
  if (restarts.length === 0) restarts.push(0);
  for (const r of restarts) out.push(...u32(r));
  out.push(...u32(restarts.length));
  return Uint8Array.from(out);
}

/**
 * A LevelDB table with sorted (key, value) entries in blocks of `perBlock` entries, uncompressed,
 * with correct masked CRCs: the layout of a TF `.index` file.
 */
export function writeTable(entries: [string, Uint8Array][], options: { perBlock?: number } = {}): Uint8Array {
  const sorted = [...entries]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => [enc.encode(k), v] as [Uint8Array, Uint8Array]);
  const per = options.perBlock ?? 1000;
  const parts: Uint8Array[] = [];
  let offset = 0;
  const write = (contents: Uint8Array) => {
    const handle = { offset, size: contents.length };
    const typeAndCrc = Uint8Array.from([0, ...u32(maskCrc(crc32c(Uint8Array.of(0), crc32c(contents))))]);
    parts.push(contents, typeAndCrc);
    offset += contents.length + 5;
    return handle;
  };
  const index: [Uint8Array, Uint8Array][] = [];
  for (let i = 0; i < sorted.length; i += per) {
    const chunk = sorted.slice(i, i + per);
    const h = write(block(chunk, 16));
    // Separator: the last key of the block (always >= every key in it).
    index.push([chunk[chunk.length - 1][0], Uint8Array.from([...varint(h.offset), ...varint(h.size)])]);
  }
  const meta = write(block([], 1));
  const idx = write(block(index, 1));
  const footer = new Uint8Array(48);
  footer.set([...varint(meta.offset), ...varint(meta.size), ...varint(idx.offset), ...varint(idx.size)]);
  footer.set([0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb], 40);
  parts.push(footer);
  return concatBytes(parts);
}

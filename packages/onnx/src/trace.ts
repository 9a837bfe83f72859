/**
 * Tracing export: one forward pass runs on the active TF.js backend while every kernel the engine runs at top
 * level (`tf.engine().runKernel`, which every TF.js op calls) is recorded and translated to ONNX nodes.
 *
 * - Tensors derived from the graph input become graph values; every other tensor (weights, BatchNorm-folded
 *   filters, scalars) is a constant, and a kernel whose inputs are all constants is folded: its result is read
 *   back and stored as a constant (e.g. BiFPN's normalised fusion weights).
 * - Values carry a layout: the ONNX tensor holds the TF.js tensor's axes in the order `perm` (onnx axis i =
 *   TF axis perm[i]). Convolutions, pools and resizes run NCHW (perm [0, 3, 1, 2]); elementwise ops keep their
 *   input's layout; Transposes are inserted only where a consumer needs another layout, so an NHWC network
 *   becomes an NCHW graph with one Transpose after the input and one before each output.
 * - Batch-agnostic graphs (dynamic batch) are traced with batch 2 so that the batch axis can be followed
 *   through reshapes; any op that mixes the batch with other axes fails the export.
 * - A kernel without a translation, or with attributes the translation does not cover, throws an error
 *   naming the kernel and the module that ran it: never a silently wrong graph.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dim, GraphBuilder, OnnxDType } from './graph.js';
import type { NodeMessage } from './proto.js';

export type Perm = readonly number[];

/** A value computed from the graph input. */
export interface GraphValue {
  kind: 'value';
  name: string;
  /** TF.js shape at trace time. */
  shape: number[];
  dtype: OnnxDType;
  perm: Perm;
  /** TF axis that holds the batch (null: the value does not depend on the batch). */
  batchAxis: number | null;
}

/** A value that does not depend on the graph input, read back from the backend. */
export interface ConstValue {
  kind: 'const';
  shape: number[];
  dtype: OnnxDType;
  data: Float32Array | Int32Array | Uint8Array;
  /** Initializer names per layout key. */
  names: Map<string, string>;
  /** A name hint (module path + role). */
  hint: string;
}

export type Entry = GraphValue | ConstValue;

/** Thrown for anything the exporter cannot translate faithfully. */
export class OnnxExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxExportError';
  }
}

const NCHW: Perm = [0, 3, 1, 2];
const INT64_MAX = Number.MAX_SAFE_INTEGER;

export function identityPerm(rank: number): number[] {
  return Array.from({ length: rank }, (_, i) => i);
}

function invert(p: Perm): number[] {
  const inv = new Array<number>(p.length);
  p.forEach((a, i) => {
    inv[a] = i;
  });
  return inv;
}

function isIdentity(p: Perm): boolean {
  return p.every((a, i) => a === i);
}

function samePerm(a: Perm, b: Perm): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Host transpose: out axis j = in axis perm[j]. */
export function permuteData<T extends Float32Array | Int32Array | Uint8Array>(
  data: T,
  shape: readonly number[],
  perm: Perm,
): T {
  const rank = shape.length;
  if (isIdentity(perm)) return data.slice() as T;
  const outShape = perm.map((a) => shape[a]);
  const inStrides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1] * shape[i + 1];
  const strideByOut = perm.map((a) => inStrides[a]);
  const out = new (data.constructor as { new (n: number): T })(data.length);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = data[src];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      src += strideByOut[d];
      if (idx[d] < outShape[d]) break;
      src -= strideByOut[d] * idx[d];
      idx[d] = 0;
    }
  }
  return out;
}

function tfDtype(fn: string, t: tf.Tensor): OnnxDType {
  switch (t.dtype) {
    case 'float32':
      return 'float32';
    case 'int32':
      return 'int32';
    case 'bool':
      return 'bool';
    default:
      throw new OnnxExportError(`${fn}: tensors of dtype ${t.dtype} cannot be exported`);
  }
}

type TensorLike = tf.Tensor | undefined | null;

/** What a kernel translation sees. */
interface KernelCall {
  kernel: string;
  /** Named inputs (`x`, `filter`, ...) or positional ones for list kernels (Concat, AddN, Pack). */
  named: Record<string, Entry | undefined>;
  list: Entry[];
  attrs: Record<string, unknown>;
  outputs: tf.Tensor[];
}

type Translation = (t: Tracer, c: KernelCall) => GraphValue[];

/** A 1x1, stride-1, unpadded, ungrouped Conv and its operands (its node can be replaced by a MatMul). */
interface PointwiseConv {
  node: NodeMessage;
  x: GraphValue;
  filter: ConstValue;
  bias?: ConstValue;
}

export interface TracerOptions {
  /** A fixed batch size, or 'dynamic' (a symbolic `batch` dimension). */
  batch: number | 'dynamic';
  /** Store float initializers as float16 (see `exportOnnx`'s `fp16`). */
  fp16Weights?: boolean;
}

/** Records TF.js kernels into a `GraphBuilder`. */
export class Tracer {
  readonly entries = new Map<number, Entry>();
  private readonly transposes = new Map<string, string>();
  private readonly moduleStack: string[] = [];
  readonly kernelCounts = new Map<string, number>();
  private folded = 0;
  /** 1x1 stride-1 convolutions without activation by output name (see `nhwcConcat`). */
  readonly pointwise = new Map<string, PointwiseConv>();
  /** Values that are `src` times a constant scalar, emitted as a 1x1 depthwise Conv (see `scaleByConstant`). */
  readonly scaled = new Map<string, { src: GraphValue; scale: number }>();

  constructor(
    readonly g: GraphBuilder,
    readonly options: TracerOptions,
  ) {}

  get dynamic(): boolean {
    return this.options.batch === 'dynamic';
  }

  /** The module path of the innermost module method running now ('' at top level). */
  get modulePath(): string {
    return this.moduleStack[this.moduleStack.length - 1] ?? '';
  }

  pushModule(path: string): void {
    this.moduleStack.push(path);
    this.g.scope = path;
  }

  popModule(): void {
    this.moduleStack.pop();
    this.g.scope = this.modulePath;
  }

  /** Number of kernels folded into constants. */
  get foldedCount(): number {
    return this.folded;
  }

  /** Registers a graph input tensor. */
  bindInput(t: tf.Tensor, name: string): GraphValue {
    const v: GraphValue = {
      kind: 'value',
      name,
      shape: [...t.shape],
      dtype: tfDtype('bindInput', t),
      perm: identityPerm(t.rank),
      batchAxis: t.rank > 0 ? 0 : null,
    };
    this.entries.set(t.id, v);
    return v;
  }

  /** Registers a tensor as an already-built ONNX value (e.g. after in-graph preprocessing). */
  bindValue(t: tf.Tensor, v: GraphValue): void {
    this.entries.set(t.id, v);
  }

  entryOf(t: tf.Tensor, hint = 'const'): Entry {
    const e = this.entries.get(t.id);
    if (e) return e;
    const dtype = tfDtype('exportOnnx', t);
    const raw = t.dataSync();
    const data =
      dtype === 'float32'
        ? Float32Array.from(raw as Float32Array)
        : dtype === 'int32'
          ? Int32Array.from(raw as Int32Array)
          : Uint8Array.from(raw as Uint8Array);
    const c: ConstValue = { kind: 'const', shape: [...t.shape], dtype, data, names: new Map(), hint };
    this.entries.set(t.id, c);
    return c;
  }

  fail(reason: string): never {
    throw new OnnxExportError(reason);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Layout conversion

  /** The ONNX name of `e` laid out as `perm`. Constants are transposed on the host. */
  as(e: Entry, perm: Perm, role = 'const'): string {
    if (e.shape.length !== perm.length) {
      this.fail(`internal: layout of rank ${perm.length} requested for a rank-${e.shape.length} value`);
    }
    if (e.kind === 'const') return this.constName(e, perm, role);
    if (e.perm.every((a, i) => a === perm[i])) return e.name;
    const key = `${e.name}|${perm.join(',')}`;
    const hit = this.transposes.get(key);
    if (hit) return hit;
    const inv = invert(e.perm);
    const tperm = perm.map((a) => inv[a]);
    const out = this.g.op('Transpose', [e.name], { perm: { ints: tperm } });
    this.transposes.set(key, out);
    return out;
  }

  plain(e: Entry, role = 'const'): string {
    return this.as(e, identityPerm(e.shape.length), role);
  }

  /** The pointwise Conv that computes `e` (NCHW) when nothing else uses its output. */
  private replaceablePointwise(e: Entry): PointwiseConv | undefined {
    if (e.kind !== 'value' || e.shape.length !== 4 || !samePerm(e.perm, NCHW)) return undefined;
    const name = e.name;
    const pw = this.pointwise.get(name);
    const g = this.g;
    if (
      !pw ||
      !g.nodes.includes(pw.node) ||
      g.outputs.some((o) => o.name === name) ||
      g.nodes.some((n) => n !== pw.node && n.input.includes(name))
    ) {
      return undefined;
    }
    return pw;
  }

  /**
   * `[..., Ci]` value `x` (NHWC order) times the Conv's `[Ci, Co]` matrix plus its bias, as one MatMul: the bias
   * rides as an extra matrix row against a column of ones appended to `x` (`rest` = the dims of `x` after the
   * batch), because onnxruntime's Gemm (and MatMul + Add, which it fuses to Gemm) first broadcasts the bias into
   * the output, one more pass over it.
   */
  private pointwiseMatMul(x: string, rest: readonly number[], pw: PointwiseConv): string {
    const g = this.g;
    const [, , ci, co] = pw.filter.shape;
    const bias = pw.bias;
    // HWIO with H = W = 1 is the [Ci, Co] matrix.
    const weights = new Float32Array((ci + (bias ? 1 : 0)) * co);
    weights.set(pw.filter.data as Float32Array);
    let a = x;
    if (bias) {
      weights.set(bias.data as Float32Array, ci * co);
      const dims = [...rest.slice(0, -1), 1];
      const n = sizeOf(dims);
      const b = this.options.batch;
      const ones =
        typeof b === 'number'
          ? g.constant({ dtype: 'float32', dims: [b, ...dims], data: new Float32Array(b * n).fill(1) })
          : g.op('Expand', [
              g.constant({ dtype: 'float32', dims: [1, ...dims], data: new Float32Array(n).fill(1) }),
              g.op(
                'Concat',
                [
                  g.op('Slice', [g.op('Shape', [x], {}, { dtypes: ['int64'] }), g.int64([0]), g.int64([1])]),
                  g.int64(dims),
                ],
                { axis: { i: 0 } },
              ),
            ]);
      a = g.op('Concat', [x, ones], { axis: { i: rest.length } });
    }
    const k = weights.length / co;
    const w: ConstValue = {
      kind: 'const',
      shape: [k, co],
      dtype: 'float32',
      data: weights,
      names: new Map(),
      hint: pw.filter.hint,
    };
    return g.op('MatMul', [a, this.constName(w, [0, 1], 'weight_io')]);
  }

  /**
   * `e` in TF layout (NHWC) for a graph output, once the whole graph is traced. An NCHW value computed by a 1x1
   * Conv that nothing else uses is computed by a MatMul on the Conv's NHWC input instead (see
   * `pointwiseMatMul`): the Transpose then runs on the input (EfficientDet's heads: 64 channels) rather than on
   * the output (810 class channels), and the MatMul writes NHWC directly.
   */
  nhwcOutput(e: Entry): string {
    const pw = this.replaceablePointwise(e);
    if (!pw || e.kind !== 'value' || e.batchAxis !== 0) return this.plain(e);
    this.g.nodes.splice(this.g.nodes.indexOf(pw.node), 1);
    const x = this.plain(pw.x);
    return this.pointwiseMatMul(x, pw.x.shape.slice(1), pw);
  }

  /**
   * The values `es` (NCHW outputs of one shared 1x1 Conv, e.g. EfficientDet's class head on each pyramid level)
   * flattened in NHWC order and concatenated along the positions, computed as ONE MatMul on the concatenated NHWC
   * inputs: `[B, P, Co]` (P = the positions of all levels), which reshapes for free to `[B, P * Co]` (what the
   * post-processing's flatten + Concat of the per-level outputs computes, without transposing or copying the
   * large outputs). Null when the values are not such Conv outputs (or are used elsewhere).
   */
  nhwcConcat(es: readonly Entry[]): { value: string; positions: number; channels: number } | null {
    const g = this.g;
    const pws: PointwiseConv[] = [];
    for (const e of es) {
      const pw = this.replaceablePointwise(e);
      if (!pw || e.kind !== 'value' || e.batchAxis !== 0) return null;
      pws.push(pw);
    }
    const [first] = pws;
    if (!first) return null;
    const same = (a: ConstValue | undefined, b: ConstValue | undefined) =>
      a === b ||
      (a !== undefined &&
        b !== undefined &&
        a.data.length === b.data.length &&
        a.shape.every((d, i) => d === b.shape[i]) &&
        a.data.every((v, i) => v === b.data[i]));
    if (!pws.every((pw) => same(pw.filter, first.filter) && same(pw.bias, first.bias))) return null;
    const [, , ci, co] = first.filter.shape;
    let positions = 0;
    const parts = es.map((e, i) => {
      const hw = e.shape[1] * e.shape[2];
      positions += hw;
      return g.op('Reshape', [this.plain(pws[i].x), g.int64([0, hw, ci])]);
    });
    for (const pw of pws) g.nodes.splice(g.nodes.indexOf(pw.node), 1);
    const cat = parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis: { i: 1 } });
    return { value: this.pointwiseMatMul(cat, [positions, ci], first), positions, channels: co };
  }

  /**
   * `x * s` (or `x / s`) for an NCHW value and a scalar constant, as a 1x1 depthwise Conv whose weights are the
   * scale: onnxruntime's NCHWc layout keeps Conv (and a following Sum) in its blocked format, where a Mul by a
   * scalar forces a reorder to NCHW and back. Chains of scalings (BiFPN's `x * w_i / (sum w + eps)`) fold into
   * one Conv on the first input.
   */
  scaleByConstant(x: GraphValue, s: number, out: tf.Tensor): GraphValue {
    const prev = this.scaled.get(x.name);
    const src = prev?.src ?? x;
    const scale = Math.fround((prev?.scale ?? 1) * s);
    const ch = src.shape[3];
    const w = this.g.constant(
      { dtype: 'float32', dims: [ch, 1, 1, 1], data: new Float32Array(ch).fill(scale) },
      `${this.modulePath || 'const'}.scale`,
    );
    const y = this.g.op('Conv', [src.name, w], {
      group: { i: ch },
      kernel_shape: { ints: [1, 1] },
    });
    this.scaled.set(y, { src, scale });
    return this.value(y, out, NCHW, src.batchAxis);
  }

  /** An initializer for a constant in a layout, optionally reshaped and cast. */
  constName(c: ConstValue, perm: Perm, role = 'const', dims?: readonly number[]): string {
    const key = `${perm.join(',')}|${dims?.join(',') ?? ''}`;
    const hit = c.names.get(key);
    if (hit) return hit;
    const data = permuteData(c.data, c.shape, perm);
    const outDims = dims ?? perm.map((a) => c.shape[a]);
    // Named after the module that uses the constant (the one that computed it may be a parent).
    const base = `${this.modulePath || c.hint}.${role}`;
    const name = this.emitConst(c.dtype, outDims, data, base);
    c.names.set(key, name);
    return name;
  }

  /** Writes host data as an initializer (float16 with a Cast back when `fp16Weights`). */
  emitConst(
    dtype: OnnxDType,
    dims: readonly number[],
    data: Float32Array | Int32Array | Uint8Array,
    base: string,
  ): string {
    if (dtype === 'float32' && this.options.fp16Weights && data.length > 64) {
      const half = this.g.constant({ dtype: 'float16', dims, data: toHalfBits(data as Float32Array) }, base);
      return this.g.op('Cast', [half], { to: { i: 1 } }, { dtypes: ['float32'] });
    }
    if (dtype === 'int32' || dtype === 'bool' || dtype === 'float32') {
      return this.g.constant({ dtype, dims, data }, base);
    }
    return this.fail(`internal: cannot write a ${dtype} constant`);
  }

  /** Output bookkeeping: a graph value for a TF output tensor. */
  value(name: string, t: tf.Tensor, perm: Perm, batchAxis: number | null): GraphValue {
    return { kind: 'value', name, shape: [...t.shape], dtype: tfDtype('exportOnnx', t), perm, batchAxis };
  }

  /** The batch axis of the first graph value among the inputs. */
  batchOf(...es: (Entry | undefined)[]): number | null {
    for (const e of es) if (e?.kind === 'value' && e.batchAxis !== null) return e.batchAxis;
    return null;
  }

  /** In batch-agnostic mode, refuses an op that would fold the batch into other axes. */
  requireBatch(ok: boolean, what: string): void {
    if (!ok && this.dynamic) {
      this.fail(
        `${what} mixes the batch dimension with other axes, so it cannot be exported with a dynamic batch`,
      );
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Recording

  /** Called for each top-level kernel with the TF inputs, attributes and outputs. */
  record(kernel: string, inputs: unknown, attrs: unknown, out: tf.Tensor | tf.Tensor[]): void {
    const outputs = Array.isArray(out) ? out : [out];
    const named: Record<string, Entry | undefined> = {};
    const list: Entry[] = [];
    const isList = Array.isArray(inputs);
    let anyValue = false;
    const hintBase = this.modulePath || 'const';
    for (const [k, v] of Object.entries((inputs ?? {}) as Record<string, TensorLike>)) {
      if (v === undefined || v === null) continue;
      if (!(v instanceof tf.Tensor)) this.fail(`${kernel}: input '${k}' is not a tensor`);
      const e = this.entryOf(v, hintBase);
      if (e.kind === 'value') anyValue = true;
      if (isList) list.push(e);
      else named[k] = e;
    }
    this.kernelCounts.set(kernel, (this.kernelCounts.get(kernel) ?? 0) + 1);
    if (!anyValue) {
      // Constant folding: the result is read back and becomes a constant.
      this.folded++;
      for (const o of outputs) this.entryOf(o, hintBase);
      return;
    }
    const where = `module '${this.modulePath || '(top level)'}'`;
    const translate = TRANSLATIONS[kernel];
    if (!translate) {
      this.fail(
        `exportOnnx: unsupported TF.js kernel '${kernel}' in ${where} (no ONNX translation; supported: ${supportedKernels().join(', ')})`,
      );
    }
    // Attributes the translation does not read would be silently ignored: refuse them.
    const known = KNOWN_ATTRS[kernel] ?? [];
    for (const [k, v] of Object.entries((attrs ?? {}) as Record<string, unknown>)) {
      if (v !== undefined && v !== null && !known.includes(k)) {
        this.fail(
          `exportOnnx: TF.js kernel '${kernel}' in ${where} has the attribute ${k}=${JSON.stringify(v)}, which the ONNX translation does not support`,
        );
      }
    }
    let vals: GraphValue[];
    try {
      vals = translate(this, {
        kernel,
        named,
        list,
        attrs: (attrs ?? {}) as Record<string, unknown>,
        outputs,
      });
    } catch (e) {
      if (!(e instanceof OnnxExportError)) throw e;
      throw new OnnxExportError(
        `exportOnnx: cannot export TF.js kernel '${kernel}' in ${where}: ${e.message}`,
      );
    }
    if (vals.length !== outputs.length)
      this.fail(`internal: ${kernel} produced ${vals.length} of ${outputs.length} outputs`);
    outputs.forEach((o, i) => {
      this.entries.set(o.id, vals[i]);
    });
  }
}

// -------------------------------------------------------------------------------------------------------------
// float16

let f16Scratch: { f: Float32Array; u: Uint32Array } | null = null;

/** float32 -> IEEE float16 bits, round to nearest even. */
export function toHalfBits(data: Float32Array): Uint16Array {
  if (!f16Scratch) {
    const f = new Float32Array(1);
    f16Scratch = { f, u: new Uint32Array(f.buffer) };
  }
  const { f, u } = f16Scratch;
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) {
    f[0] = data[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    let e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let h = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && h & 1)) h++;
      out[i] = sign | h;
      continue;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
    e = h >>> 10;
    out[i] = sign | (e >= 0x1f ? 0x7c00 : h);
  }
  return out;
}

// -------------------------------------------------------------------------------------------------------------
// Translations

function pair(v: unknown, what: string, t: Tracer): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0], v[1]];
  return t.fail(`${what} must be a number or a pair, got ${JSON.stringify(v)}`);
}

/** TF padding -> explicit ONNX pads [top, left, bottom, right] for one 2-D window op. */
function spatialPads(
  t: Tracer,
  what: string,
  pad: unknown,
  inHW: [number, number],
  kernel: [number, number],
  strides: [number, number],
  dilations: [number, number],
): [number, number, number, number] {
  const eff = [0, 1].map((i) => (kernel[i] - 1) * dilations[i] + 1);
  if (pad === 'valid') return [0, 0, 0, 0];
  if (pad === 'same') {
    const p = [0, 1].map((i) => {
      const out = Math.ceil(inHW[i] / strides[i]);
      const total = Math.max((out - 1) * strides[i] + eff[i] - inHW[i], 0);
      const before = Math.floor(total / 2);
      return [before, total - before];
    });
    return [p[0][0], p[1][0], p[0][1], p[1][1]];
  }
  if (typeof pad === 'number') return [pad, pad, pad, pad];
  if (
    Array.isArray(pad) &&
    pad.length === 4 &&
    pad.every((p) => Array.isArray(p) && p.length === 2) &&
    pad[0][0] === 0 &&
    pad[0][1] === 0 &&
    pad[3][0] === 0 &&
    pad[3][1] === 0
  ) {
    return [pad[1][0], pad[2][0], pad[1][1], pad[2][1]];
  }
  return t.fail(`${what}: unsupported padding ${JSON.stringify(pad)}`);
}

/** Checks that the ONNX window op produces the TF output size (so rounding modes agree). */
function checkWindowOut(
  t: Tracer,
  what: string,
  inHW: [number, number],
  pads: [number, number, number, number],
  kernel: [number, number],
  strides: [number, number],
  dilations: [number, number],
  out: tf.Tensor,
): void {
  const oh =
    Math.floor((inHW[0] + pads[0] + pads[2] - ((kernel[0] - 1) * dilations[0] + 1)) / strides[0]) + 1;
  const ow =
    Math.floor((inHW[1] + pads[1] + pads[3] - ((kernel[1] - 1) * dilations[1] + 1)) / strides[1]) + 1;
  if (oh !== out.shape[1] || ow !== out.shape[2]) {
    t.fail(
      `${what}: ONNX would produce ${oh}x${ow} but TF.js produced ${out.shape[1]}x${out.shape[2]} (rounding mode)`,
    );
  }
}

function requireNhwc(t: Tracer, what: string, attrs: Record<string, unknown>): void {
  const f = attrs.dataFormat;
  if (f !== undefined && f !== 'NHWC' && f !== 'channelsLast')
    t.fail(`${what}: only NHWC is supported, got ${String(f)}`);
}

function requireRank4(t: Tracer, what: string, e: Entry | undefined): Entry {
  if (e?.shape.length !== 4)
    t.fail(`${what}: expected a 4-D NHWC input, got ${e ? `[${e.shape.join(', ')}]` : 'none'}`);
  return e as Entry;
}

/** The named computed (graph) input of a kernel; fails for a missing or constant one. */
function computed(t: Tracer, c: KernelCall, ...names: string[]): GraphValue {
  for (const n of names) {
    const e = c.named[n];
    if (e?.kind === 'value') return e;
  }
  return t.fail(`${c.kernel}: expected a computed input '${names.join("' or '")}'`);
}

/** Appends a fused activation (TF.js `activation` attr) to an NCHW value. */
function fusedActivation(t: Tracer, x: string, c: KernelCall): string {
  const act = (c.attrs.activation as string | undefined) ?? 'linear';
  const g = t.g;
  switch (act) {
    case 'linear':
      return x;
    case 'relu':
      return g.op('Relu', [x]);
    case 'relu6':
      return g.op('Clip', [x, g.scalarFloat(0), g.scalarFloat(6)]);
    case 'sigmoid':
      return g.op('Sigmoid', [x]);
    case 'elu':
      return g.op('Elu', [x], { alpha: { f: 1 } });
    case 'leakyrelu':
      return g.op('LeakyRelu', [x], { alpha: { f: (c.attrs.leakyreluAlpha as number | undefined) ?? 0.2 } });
    case 'prelu': {
      const w = c.named.preluActivationWeights;
      if (w?.kind !== 'const') return t.fail(`${c.kernel}: prelu needs constant activation weights`);
      const ch = sizeOf(w.shape);
      return g.op('PRelu', [x, t.constName(w, identityPerm(w.shape.length), 'prelu', [ch, 1, 1])]);
    }
    default:
      return t.fail(`${c.kernel}: unsupported fused activation '${act}'`);
  }
}

function conv(t: Tracer, c: KernelCall, depthwise: boolean): GraphValue[] {
  const what = c.kernel;
  requireNhwc(t, what, c.attrs);
  const x = requireRank4(t, what, c.named.x);
  const f = c.named.filter;
  if (f?.kind !== 'const')
    return t.fail(`${what}: the filter must be a constant (weights), got a computed value`);
  const [kh, kw, ci, co] = f.shape;
  const strides = pair(c.attrs.strides, `${what} strides`, t);
  const dilations = pair(c.attrs.dilations ?? 1, `${what} dilations`, t);
  const inHW: [number, number] = [x.shape[1], x.shape[2]];
  const pads = spatialPads(t, what, c.attrs.pad, inHW, [kh, kw], strides, dilations);
  checkWindowOut(t, what, inHW, pads, [kh, kw], strides, dilations, c.outputs[0]);
  // A 1x1 Conv on a 1x1 map whose input channels are not a multiple of 16 (squeeze-excite's expand Conv after
  // a reduction to e.g. 10 channels): zero channels pad the input and the filter (exact), so that onnxruntime's
  // NCHWc layout takes the Conv and the gate it computes stays in the blocked layout.
  const padIn =
    !depthwise && kh === 1 && kw === 1 && inHW[0] === 1 && inHW[1] === 1 && ci >= 8 && ci % 16 !== 0
      ? 16 - (ci % 16)
      : 0;
  let filter = f;
  let xin = t.as(x, NCHW);
  if (padIn) {
    const data = new Float32Array((ci + padIn) * co);
    data.set(f.data as Float32Array);
    filter = { ...f, shape: [1, 1, ci + padIn, co], data, names: new Map() };
    xin = t.g.op('Pad', [xin, t.g.int64([0, 0, 0, 0, 0, padIn, 0, 0]), t.g.scalarFloat(0)], {
      mode: { s: 'constant' },
    });
  }
  // HWIO -> OIHW; depthwise [kh, kw, C, m] -> [C * m, 1, kh, kw] (output channel c * m + j).
  const w = depthwise
    ? t.constName(f, [2, 3, 0, 1], 'weight', [ci * co, 1, kh, kw])
    : t.constName(filter, [3, 2, 0, 1], 'weight');
  const inputs = [xin, w];
  const b = c.named.bias;
  if (b?.kind === 'const') inputs.push(t.constName(b, [0], 'bias', [sizeOf(b.shape)]));
  let y = t.g.op('Conv', inputs, {
    dilations: { ints: dilations },
    group: { i: depthwise ? ci : 1 },
    kernel_shape: { ints: [kh, kw] },
    pads: { ints: pads },
    strides: { ints: strides },
  });
  if (b?.kind === 'value') {
    if (b.shape.length !== 1) t.fail(`${what}: a computed bias must be 1-D`);
    const b4 = t.g.op('Reshape', [t.plain(b), t.g.int64([1, -1, 1, 1])]);
    y = t.g.op('Add', [y, b4]);
  }
  const conv = y;
  y = fusedActivation(t, y, c);
  if (
    y === conv &&
    !depthwise &&
    !padIn &&
    kh === 1 &&
    kw === 1 &&
    b?.kind !== 'value' &&
    strides.every((v) => v === 1) &&
    dilations.every((v) => v === 1) &&
    pads.every((v) => v === 0) &&
    x.kind === 'value'
  ) {
    t.pointwise.set(y, {
      node: t.g.nodes[t.g.nodes.length - 1],
      x,
      filter: f,
      ...(b?.kind === 'const' ? { bias: b } : {}),
    });
  }
  return [t.value(y, c.outputs[0], NCHW, 0)];
}

function pool(t: Tracer, c: KernelCall, op: 'MaxPool' | 'AveragePool'): GraphValue[] {
  const what = c.kernel;
  requireNhwc(t, what, c.attrs);
  const x = requireRank4(t, what, c.named.x);
  const k = pair(c.attrs.filterSize, `${what} filterSize`, t);
  const s = pair(c.attrs.strides, `${what} strides`, t);
  const inHW: [number, number] = [x.shape[1], x.shape[2]];
  const pads = spatialPads(t, what, c.attrs.pad, inHW, k, s, [1, 1]);
  checkWindowOut(t, what, inHW, pads, k, s, [1, 1], c.outputs[0]);
  const attrs: Record<string, { ints: number[] } | { i: number }> = {
    kernel_shape: { ints: k },
    pads: { ints: pads },
    strides: { ints: s },
  };
  // TF.js averages over the pixels inside the image only.
  if (op === 'AveragePool') attrs.count_include_pad = { i: 0 };
  const y = t.g.op(op, [t.as(x, NCHW)], attrs);
  return [t.value(y, c.outputs[0], NCHW, 0)];
}

function resize(t: Tracer, c: KernelCall, mode: 'nearest' | 'linear'): GraphValue[] {
  const what = c.kernel;
  const x = requireRank4(t, what, c.named.images);
  const [oh, ow] = pair(c.attrs.size, `${what} size`, t);
  const alignCorners = c.attrs.alignCorners === true;
  const halfPixel = c.attrs.halfPixelCenters === true;
  if (alignCorners && halfPixel) t.fail(`${what}: alignCorners and halfPixelCenters cannot both be set`);
  // TF.js nearest: src = floor(dst * in / out) (asymmetric), floor((dst + 0.5) * in / out) (half-pixel: ONNX
  // half_pixel rounded half up), round(dst * (in - 1) / (out - 1)) (align corners: half up).
  // Bilinear: asymmetric / half_pixel (clamped at 0) / align_corners.
  const ctm = alignCorners ? 'align_corners' : halfPixel ? 'half_pixel' : 'asymmetric';
  const attrs: Record<string, { s: string } | { ints: number[] }> = {
    mode: { s: mode },
    coordinate_transformation_mode: { s: ctm },
  };
  if (mode === 'nearest')
    attrs.nearest_mode = { s: alignCorners || halfPixel ? 'round_prefer_ceil' : 'floor' };
  const g = t.g;
  const xin = t.as(x, NCHW);
  const [ih, iw] = [x.shape[1], x.shape[2]];
  if (oh % ih === 0 && ow % iw === 0) {
    // Integer factors: constant scales give the same sizes and source coordinates (scale = out / in) whatever
    // the batch, and onnxruntime runs nearest / asymmetric / floor with constant scales in its NCHWc layout.
    const y = g.op('Resize', [xin, '', g.float([1, 1, oh / ih, ow / iw])], attrs);
    return [t.value(y, c.outputs[0], NCHW, 0)];
  }
  let sizes: string;
  if (g.opset >= 18) {
    attrs.axes = { ints: [2, 3] };
    sizes = g.int64([oh, ow]);
  } else if (!t.dynamic) {
    sizes = g.int64([x.shape[0], x.shape[3], oh, ow]);
  } else {
    const shape = g.op('Shape', [xin], {}, { dtypes: ['int64'] });
    const nc = g.op('Slice', [shape, g.int64([0]), g.int64([2])]);
    sizes = g.op('Concat', [nc, g.int64([oh, ow])], { axis: { i: 0 } });
  }
  const y = g.op('Resize', [xin, '', '', sizes], attrs);
  return [t.value(y, c.outputs[0], NCHW, 0)];
}

/** Chooses the common layout of broadcast operands: that of the first graph value with the output's rank. */
function broadcastPerm(es: Entry[], rank: number): Perm {
  for (const e of es) if (e.kind === 'value' && e.shape.length === rank && !isIdentity(e.perm)) return e.perm;
  return identityPerm(rank);
}

/** An operand for a broadcasting op in layout `perm` of rank `rank` (lower ranks are expanded TF-style). */
function broadcastOperand(t: Tracer, e: Entry, perm: Perm, rank: number): string {
  const r = e.shape.length;
  if (r === rank) return t.as(e, perm);
  if (r === 0) return t.as(e, []);
  const padded = [...new Array<number>(rank - r).fill(1), ...e.shape];
  if (e.kind === 'const') {
    const view: ConstValue = { ...e, shape: padded, names: e.names };
    const key = `bc${rank}|${perm.join(',')}`;
    const hit = e.names.get(key);
    if (hit) return hit;
    const name = t.constName({ ...view, names: new Map() }, perm);
    e.names.set(key, name);
    return name;
  }
  const expanded = t.g.op('Unsqueeze', [t.plain(e), t.g.int64(identityPerm(rank - r))]);
  const v: GraphValue = {
    ...e,
    name: expanded,
    shape: padded,
    perm: identityPerm(rank),
    batchAxis: e.batchAxis === null ? null : e.batchAxis + rank - r,
  };
  return t.as(v, perm);
}

/** A float32 constant holding one value (any rank). */
function scalarOf(e: Entry): number | null {
  return e.kind === 'const' && e.dtype === 'float32' && e.data.length === 1 ? e.data[0] : null;
}

function isNchw4(e: Entry): e is GraphValue {
  return e.kind === 'value' && e.dtype === 'float32' && e.shape.length === 4 && samePerm(e.perm, NCHW);
}

/**
 * Layout-friendly forms of Mul / Div on NCHW maps (onnxruntime's NCHWc transformer keeps only same-shape
 * elementwise ops in its blocked layout): a scalar constant factor becomes a 1x1 depthwise Conv, and a per-channel
 * gate `[B, 1, 1, C]` (squeeze-excite) is first upsampled to the map's size with a nearest Resize (fixed batch
 * only: with a symbolic batch onnxruntime cannot prove the shapes equal). Null: no special form.
 */
function nchwcFriendly(t: Tracer, op: string, es: Entry[], out: tf.Tensor): GraphValue[] | null {
  if ((op !== 'Mul' && op !== 'Div') || es.length !== 2 || out.rank !== 4 || out.dtype !== 'float32')
    return null;
  const [a, b] = es;
  const sb = scalarOf(b);
  if (isNchw4(a) && sb !== null && (op === 'Mul' || sb !== 0)) {
    return [t.scaleByConstant(a, op === 'Mul' ? sb : 1 / sb, out)];
  }
  const sa = scalarOf(a);
  if (op === 'Mul' && isNchw4(b) && sa !== null) return [t.scaleByConstant(b, sa, out)];
  if (op !== 'Mul' || t.dynamic || !isNchw4(a) || !isNchw4(b)) return null;
  const [map, gate] = a.shape[1] * a.shape[2] >= b.shape[1] * b.shape[2] ? [a, b] : [b, a];
  const [n, h, w, ch] = map.shape;
  if (
    gate.shape[0] !== n ||
    gate.shape[1] !== 1 ||
    gate.shape[2] !== 1 ||
    gate.shape[3] !== ch ||
    h * w === 1 ||
    !out.shape.every((d, i) => d === map.shape[i])
  ) {
    return null;
  }
  const up = t.g.op('Resize', [gate.name, '', t.g.float([1, 1, h, w])], {
    mode: { s: 'nearest' },
    coordinate_transformation_mode: { s: 'asymmetric' },
    nearest_mode: { s: 'floor' },
  });
  const y = t.g.op('Mul', a === map ? [map.name, up] : [up, map.name]);
  return [t.value(y, out, NCHW, map.batchAxis)];
}

function elementwise(op: string): Translation {
  return (t, c) => {
    const es = c.list.length ? c.list : Object.values(c.named).filter((e): e is Entry => e !== undefined);
    const out = c.outputs[0];
    const rank = out.rank;
    const special = nchwcFriendly(t, op, es, out);
    if (special) return special;
    const perm = broadcastPerm(es, rank);
    const ins = es.map((e) => broadcastOperand(t, e, perm, rank));
    // TF broadcasting aligns trailing axes: a rank-k operand's axis b is output axis b + rank - k.
    const batched = es.find((e): e is GraphValue => e.kind === 'value' && e.batchAxis !== null);
    const batch = batched ? (batched.batchAxis as number) + rank - batched.shape.length : null;
    const y = t.g.op(op, ins, {}, { dtypes: [tfDtype('exportOnnx', out)] });
    return [t.value(y, out, perm, batch)];
  };
}

/** A unary op that keeps its input's layout. */
function unary(build: (t: Tracer, x: string, c: KernelCall) => string): Translation {
  return (t, c) => {
    const e = c.named.x ?? Object.values(c.named).find((v) => v !== undefined);
    if (e?.kind !== 'value') return t.fail(`${c.kernel}: expected one computed input`);
    const y = build(t, e.name, c);
    return [t.value(y, c.outputs[0], e.perm, e.batchAxis)];
  };
}

function normAxes(axis: unknown, rank: number, t: Tracer, what: string): number[] {
  if (axis === null || axis === undefined) return identityPerm(rank);
  const list = Array.isArray(axis) ? axis : [axis];
  if (!list.every((a) => Number.isInteger(a) && a >= -rank && a < rank)) {
    t.fail(`${what}: bad axis ${JSON.stringify(axis)} for rank ${rank}`);
  }
  return [...new Set(list.map((a: number) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
}

/** The layout after removing TF axes `drop` from a value in layout `perm`. */
function dropAxes(perm: Perm, drop: readonly number[]): number[] {
  const kept = perm.filter((a) => !drop.includes(a));
  return kept.map((a) => a - drop.filter((d) => d < a).length);
}

function reduce(op: string): Translation {
  return (t, c) => {
    const x = computed(t, c, 'x');
    const rank = x.shape.length;
    // TF.js names the reduction axes `reductionIndices` for Max, `axis` elsewhere; null / absent = all axes.
    const axes = normAxes(c.kernel === 'Max' ? c.attrs.reductionIndices : c.attrs.axis, rank, t, c.kernel);
    const keep = c.attrs.keepDims === true;
    if (x.batchAxis !== null) t.requireBatch(!axes.includes(x.batchAxis), `${c.kernel} over the batch axis`);
    const inv = invert(x.perm);
    const onnxAxes = axes.map((a) => inv[a]).sort((a, b) => a - b);
    const g = t.g;
    const axesAsInput = op === 'ReduceSum' || g.opset >= 18;
    let y: string;
    if (op === 'ReduceAll' || op === 'ReduceAny') {
      // bool reductions: Cast to int32 and ReduceMin / ReduceMax.
      const asInt = g.op('Cast', [x.name], { to: { i: 6 } }, { dtypes: ['int32'] });
      const red = op === 'ReduceAll' ? 'ReduceMin' : 'ReduceMax';
      const r =
        g.opset >= 18
          ? g.op(red, [asInt, g.int64(onnxAxes)], { keepdims: { i: keep ? 1 : 0 } })
          : g.op(red, [asInt], { axes: { ints: onnxAxes }, keepdims: { i: keep ? 1 : 0 } });
      y = g.op('Cast', [r], { to: { i: 9 } }, { dtypes: ['bool'] });
    } else if (
      op === 'ReduceMean' &&
      keep &&
      rank === 4 &&
      x.perm.every((a, i) => a === NCHW[i]) &&
      onnxAxes.length === 2 &&
      onnxAxes[0] === 2 &&
      onnxAxes[1] === 3
    ) {
      // Spatial mean of an NCHW map (squeeze-excite): GlobalAveragePool, which onnxruntime's NCHWc layout keeps.
      y = g.op('GlobalAveragePool', [x.name]);
    } else if (axesAsInput) {
      y = g.op(op, [x.name, g.int64(onnxAxes)], { keepdims: { i: keep ? 1 : 0 } });
    } else {
      y = g.op(op, [x.name], { axes: { ints: onnxAxes }, keepdims: { i: keep ? 1 : 0 } });
    }
    const perm = keep ? x.perm : dropAxes(x.perm, axes);
    const batch =
      x.batchAxis === null
        ? null
        : keep
          ? x.batchAxis
          : x.batchAxis - axes.filter((a) => a < (x.batchAxis as number)).length;
    return [t.value(y, c.outputs[0], perm, batch)];
  };
}

function reshape(t: Tracer, c: KernelCall): GraphValue[] {
  const x = computed(t, c, 'x', 'input');
  const out = c.outputs[0];
  const target = [...out.shape];
  let batch: number | null = null;
  if (x.batchAxis !== null) {
    // Find the output axis that holds the batch: the products of the dims before and through it must match.
    const b = x.batchAxis;
    const before = sizeOf(x.shape.slice(0, b));
    const through = before * x.shape[b];
    let acc = 1;
    for (let k = 0; k < target.length; k++) {
      if (acc === before && acc * target[k] === through && target[k] === x.shape[b]) {
        batch = k;
        break;
      }
      acc *= target[k];
    }
    t.requireBatch(batch !== null, `Reshape [${x.shape.join(', ')}] -> [${target.join(', ')}]`);
    if (t.dynamic && batch !== null) target[batch] = -1;
  }
  const y = t.g.op('Reshape', [t.plain(x), t.g.int64(target)]);
  return [t.value(y, out, identityPerm(target.length), batch)];
}

function concat(t: Tracer, c: KernelCall): GraphValue[] {
  const out = c.outputs[0];
  const rank = out.rank;
  const axis = normAxes(c.attrs.axis, rank, t, c.kernel)[0];
  const es = c.list.filter((e) => sizeOf(e.shape) > 0);
  const batch = t.batchOf(...es);
  if (batch !== null) t.requireBatch(axis !== batch, 'Concat along the batch axis');
  const perm = broadcastPerm(es, rank);
  const y = t.g.op(
    'Concat',
    es.map((e) => t.as(e, perm)),
    { axis: { i: invert(perm)[axis] } },
  );
  return [t.value(y, out, perm, batch)];
}

function pack(t: Tracer, c: KernelCall): GraphValue[] {
  const out = c.outputs[0];
  const axis = normAxes(c.attrs.axis, out.rank, t, c.kernel)[0];
  const batch = t.batchOf(...c.list);
  if (batch !== null) t.requireBatch(axis > batch, 'Pack (stack) before the batch axis');
  const parts = c.list.map((e) => t.g.op('Unsqueeze', [t.plain(e), t.g.int64([axis])]));
  const y = parts.length === 1 ? parts[0] : t.g.op('Concat', parts, { axis: { i: axis } });
  return [t.value(y, out, identityPerm(out.rank), batch)];
}

function unpack(t: Tracer, c: KernelCall): GraphValue[] {
  const x = computed(t, c, 'value');
  const rank = x.shape.length;
  const axis = normAxes(c.attrs.axis, rank, t, c.kernel)[0];
  if (x.batchAxis !== null) t.requireBatch(axis !== x.batchAxis, 'Unpack along the batch axis');
  const n = x.shape[axis];
  const onnxAxis = invert(x.perm)[axis];
  const parts = t.g.node(
    'Split',
    [x.name, t.g.int64(new Array<number>(n).fill(1))],
    { axis: { i: onnxAxis } },
    { numOutputs: n },
  );
  const perm = dropAxes(x.perm, [axis]);
  const batch = x.batchAxis === null ? null : x.batchAxis > axis ? x.batchAxis - 1 : x.batchAxis;
  return parts.map((p, i) =>
    t.value(t.g.op('Squeeze', [p, t.g.int64([onnxAxis])]), c.outputs[i], perm, batch),
  );
}

function splitV(t: Tracer, c: KernelCall): GraphValue[] {
  const x = computed(t, c, 'x');
  const axis = normAxes(c.attrs.axis, x.shape.length, t, c.kernel)[0];
  if (x.batchAxis !== null) t.requireBatch(axis !== x.batchAxis, 'Split along the batch axis');
  const sizes = c.outputs.map((o) => o.shape[axis]);
  const onnxAxis = invert(x.perm)[axis];
  const parts = t.g.node(
    'Split',
    [x.name, t.g.int64(sizes)],
    { axis: { i: onnxAxis } },
    { numOutputs: sizes.length },
  );
  return parts.map((p, i) => t.value(p, c.outputs[i], x.perm, x.batchAxis));
}

function slice(t: Tracer, c: KernelCall): GraphValue[] {
  const x = computed(t, c, 'x');
  const rank = x.shape.length;
  const beginRaw = c.attrs.begin;
  const sizeRaw = c.attrs.size;
  const begin = typeof beginRaw === 'number' ? [beginRaw] : (beginRaw as number[]);
  const size = typeof sizeRaw === 'number' ? [sizeRaw] : (sizeRaw as number[]);
  const starts: number[] = [];
  const ends: number[] = [];
  const axes: number[] = [];
  const inv = invert(x.perm);
  for (let a = 0; a < rank; a++) {
    const b = begin[a] ?? 0;
    const s = size[a] === undefined || size[a] === -1 ? x.shape[a] - b : size[a];
    if (b === 0 && s === x.shape[a]) continue;
    if (a === x.batchAxis) t.requireBatch(false, 'Slice along the batch axis');
    starts.push(b);
    ends.push(b + s);
    axes.push(inv[a]);
  }
  if (axes.length === 0) return [t.value(x.name, c.outputs[0], x.perm, x.batchAxis)];
  const g = t.g;
  const y = g.op('Slice', [x.name, g.int64(starts), g.int64(ends), g.int64(axes)]);
  return [t.value(y, c.outputs[0], x.perm, x.batchAxis)];
}

function stridedSlice(t: Tracer, c: KernelCall): GraphValue[] {
  const x = computed(t, c, 'x');
  const a = c.attrs as {
    begin: number[];
    end: number[];
    strides: number[];
    beginMask: number;
    endMask: number;
    ellipsisMask: number;
    newAxisMask: number;
    shrinkAxisMask: number;
  };
  if (a.ellipsisMask || a.newAxisMask) t.fail(`${c.kernel}: ellipsis and new-axis masks are not supported`);
  const rank = x.shape.length;
  const starts: number[] = [];
  const ends: number[] = [];
  const axes: number[] = [];
  const steps: number[] = [];
  const shrink: number[] = [];
  for (let i = 0; i < rank; i++) {
    const dim = x.shape[i];
    const step = a.strides[i] ?? 1;
    let b = (a.beginMask >> i) & 1 || a.begin[i] === undefined ? (step > 0 ? 0 : dim - 1) : a.begin[i];
    let e = (a.endMask >> i) & 1 || a.end[i] === undefined ? (step > 0 ? INT64_MAX : -INT64_MAX) : a.end[i];
    if ((a.shrinkAxisMask >> i) & 1) {
      if (b < 0) b += dim;
      e = b + 1;
      shrink.push(i);
    }
    const full = step === 1 && b === 0 && (e >= dim || e === INT64_MAX);
    if (full) continue;
    if (i === x.batchAxis) t.requireBatch(false, 'StridedSlice along the batch axis');
    starts.push(b);
    ends.push(e);
    axes.push(i);
    steps.push(step);
  }
  const g = t.g;
  let y = t.plain(x);
  if (axes.length) y = g.op('Slice', [y, g.int64(starts), g.int64(ends), g.int64(axes), g.int64(steps)]);
  if (shrink.length) y = g.op('Squeeze', [y, g.int64(shrink)]);
  const out = c.outputs[0];
  const batch =
    x.batchAxis === null ? null : x.batchAxis - shrink.filter((s) => s < (x.batchAxis as number)).length;
  return [t.value(y, out, identityPerm(out.rank), batch)];
}

function transpose(t: Tracer, c: KernelCall): GraphValue[] {
  const x = computed(t, c, 'x');
  const p = c.attrs.perm as number[];
  // Output TF axis j = input TF axis p[j]: relabel the layout, no node needed.
  const pinv = invert(p);
  const perm = x.perm.map((a) => pinv[a]);
  const batch = x.batchAxis === null ? null : pinv[x.batchAxis];
  return [t.value(x.name, c.outputs[0], perm, batch)];
}

function pad(t: Tracer, c: KernelCall): GraphValue[] {
  const x = computed(t, c, 'x');
  const paddings = c.attrs.paddings as [number, number][];
  const g = t.g;
  const begins = x.perm.map((a) => paddings[a][0]);
  const ends = x.perm.map((a) => paddings[a][1]);
  const ins = [x.name, g.int64([...begins, ...ends])];
  let mode = 'constant';
  if (c.kernel === 'MirrorPad') {
    if (c.attrs.mode !== 'reflect')
      t.fail(`${c.kernel}: only 'reflect' is supported, got ${String(c.attrs.mode)}`);
    mode = 'reflect';
  } else {
    const v = (c.attrs.constantValue as number | undefined) ?? 0;
    ins.push(
      x.dtype === 'int32'
        ? g.constant({ dtype: 'int32', dims: [], data: Int32Array.of(v) })
        : g.scalarFloat(v),
    );
  }
  const y = g.op('Pad', ins, { mode: { s: mode } });
  return [t.value(y, c.outputs[0], x.perm, x.batchAxis)];
}

function cast(t: Tracer, c: KernelCall): GraphValue[] {
  const x = computed(t, c, 'x');
  const to = c.attrs.dtype as string;
  const map: Record<string, [number, OnnxDType]> = {
    float32: [1, 'float32'],
    int32: [6, 'int32'],
    bool: [9, 'bool'],
  };
  const m = map[to];
  if (!m) return t.fail(`${c.kernel}: cannot cast to ${to}`);
  // TF.js casts float -> int by truncation toward zero and anything -> bool as `!= 0`, as ONNX Cast does.
  const y = t.g.op('Cast', [x.name], { to: { i: m[0] } }, { dtypes: [m[1]] });
  return [t.value(y, c.outputs[0], x.perm, x.batchAxis)];
}

function matMul(t: Tracer, c: KernelCall): GraphValue[] {
  const a = c.named.a;
  const b = c.named.b;
  if (!a || !b) return t.fail(`${c.kernel}: expected inputs a and b`);
  const g = t.g;
  const ta = c.attrs.transposeA === true;
  const tb = c.attrs.transposeB === true;
  const swapLast = (e: Entry): string => {
    const r = e.shape.length;
    const p = identityPerm(r);
    [p[r - 2], p[r - 1]] = [p[r - 1], p[r - 2]];
    return t.as(e, p, 'weight');
  };
  const an = ta ? swapLast(a) : t.plain(a, 'weight');
  const bn = tb ? swapLast(b) : t.plain(b, 'weight');
  let y = g.op('MatMul', [an, bn]);
  const bias = c.named.bias;
  const out = c.outputs[0];
  if (bias) y = g.op('Add', [y, broadcastOperand(t, bias, identityPerm(out.rank), out.rank)]);
  y = fusedActivation(t, y, c);
  return [t.value(y, out, identityPerm(out.rank), t.batchOf(a, b))];
}

function gather(t: Tracer, c: KernelCall): GraphValue[] {
  const x = c.named.x;
  const idx = c.named.indices;
  if (!x || !idx) return t.fail(`${c.kernel}: expected x and indices`);
  if ((c.attrs.batchDims as number | undefined) ?? 0) t.fail(`${c.kernel}: batchDims is not supported`);
  const axis = normAxes(c.attrs.axis ?? 0, x.shape.length, t, c.kernel)[0];
  if (x.kind === 'value' && x.batchAxis !== null)
    t.requireBatch(axis !== x.batchAxis, 'Gather along the batch axis');
  const y = t.g.op('Gather', [t.plain(x), t.plain(idx)], { axis: { i: axis } });
  const out = c.outputs[0];
  const xb = x.kind === 'value' ? x.batchAxis : null;
  const batch = xb === null ? null : xb < axis ? xb : xb - 1 + idx.shape.length;
  return [t.value(y, out, identityPerm(out.rank), batch)];
}

function fusedBatchNorm(t: Tracer, c: KernelCall): GraphValue[] {
  const x = computed(t, c, 'x');
  const { mean, variance, scale, offset } = c.named;
  if (!mean || !variance || mean.kind !== 'const' || variance.kind !== 'const') {
    return t.fail(`${c.kernel}: mean and variance must be constants (eval mode)`);
  }
  if ((scale && scale.kind !== 'const') || (offset && offset.kind !== 'const')) {
    return t.fail(`${c.kernel}: scale and offset must be constants`);
  }
  const eps = (c.attrs.varianceEpsilon as number | undefined) ?? 0.001;
  const n = Math.max(
    mean.data.length,
    variance.data.length,
    scale?.data.length ?? 1,
    offset?.data.length ?? 1,
  );
  const at = (e: ConstValue | undefined, i: number, dflt: number) =>
    e ? e.data[e.data.length === 1 ? 0 : i] : dflt;
  const mul = new Float32Array(n);
  const add = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = Math.fround(at(scale as ConstValue | undefined, i, 1) / Math.sqrt(at(variance, i, 1) + eps));
    mul[i] = s;
    add[i] = Math.fround(at(offset as ConstValue | undefined, i, 0) - at(mean, i, 0) * s);
  }
  const rank = x.shape.length;
  const mk = (data: Float32Array, role: string): ConstValue => ({
    kind: 'const',
    shape: [n],
    dtype: 'float32',
    data,
    names: new Map(),
    hint: `${t.modulePath || 'batchnorm'}.${role}`,
  });
  const m = broadcastOperand(t, mk(mul, 'bn_scale'), x.perm, rank);
  const a = broadcastOperand(t, mk(add, 'bn_shift'), x.perm, rank);
  const y = t.g.op('Add', [t.g.op('Mul', [x.name, m]), a]);
  return [t.value(y, c.outputs[0], x.perm, x.batchAxis)];
}

function softmax(op: 'Softmax' | 'LogSoftmax'): Translation {
  return (t, c) => {
    const x = computed(t, c, 'logits');
    const rank = x.shape.length;
    const axis = normAxes((op === 'Softmax' ? c.attrs.dim : c.attrs.axis) ?? -1, rank, t, c.kernel)[0];
    if (x.batchAxis !== null) t.requireBatch(axis !== x.batchAxis, `${op} over the batch axis`);
    const y = t.g.op(op, [x.name], { axis: { i: invert(x.perm)[axis] } });
    return [t.value(y, c.outputs[0], x.perm, x.batchAxis)];
  };
}

function expandDims(t: Tracer, c: KernelCall): GraphValue[] {
  const x = computed(t, c, 'input');
  const out = c.outputs[0];
  const dim = normAxes(c.attrs.dim, out.rank, t, c.kernel)[0];
  const y = t.g.op('Unsqueeze', [t.plain(x), t.g.int64([dim])]);
  const batch = x.batchAxis === null ? null : x.batchAxis >= dim ? x.batchAxis + 1 : x.batchAxis;
  return [t.value(y, out, identityPerm(out.rank), batch)];
}

function tile(t: Tracer, c: KernelCall): GraphValue[] {
  const x = computed(t, c, 'x');
  const reps = c.attrs.reps as number[];
  if (x.batchAxis !== null) t.requireBatch(reps[x.batchAxis] === 1, 'Tile along the batch axis');
  const y = t.g.op('Tile', [x.name, t.g.int64(x.perm.map((a) => reps[a]))]);
  return [t.value(y, c.outputs[0], x.perm, x.batchAxis)];
}

function clip(t: Tracer, c: KernelCall): GraphValue[] {
  return unary((tt, x, cc) =>
    tt.g.op('Clip', [
      x,
      tt.g.scalarFloat(cc.attrs.clipValueMin as number),
      tt.g.scalarFloat(cc.attrs.clipValueMax as number),
    ]),
  )(t, c);
}

const simple = (op: string): Translation => unary((t, x) => t.g.op(op, [x]));

const TRANSLATIONS: Record<string, Translation> = {
  Conv2D: (t, c) => conv(t, c, false),
  FusedConv2D: (t, c) => conv(t, c, false),
  DepthwiseConv2dNative: (t, c) => conv(t, c, true),
  FusedDepthwiseConv2D: (t, c) => conv(t, c, true),
  MaxPool: (t, c) => pool(t, c, 'MaxPool'),
  AvgPool: (t, c) => pool(t, c, 'AveragePool'),
  ResizeNearestNeighbor: (t, c) => resize(t, c, 'nearest'),
  ResizeBilinear: (t, c) => resize(t, c, 'linear'),
  Add: elementwise('Add'),
  AddN: elementwise('Sum'),
  Sub: elementwise('Sub'),
  Multiply: elementwise('Mul'),
  RealDiv: elementwise('Div'),
  Maximum: elementwise('Max'),
  Minimum: elementwise('Min'),
  Pow: elementwise('Pow'),
  Equal: elementwise('Equal'),
  Greater: elementwise('Greater'),
  GreaterEqual: elementwise('GreaterOrEqual'),
  Less: elementwise('Less'),
  LessEqual: elementwise('LessOrEqual'),
  LogicalAnd: elementwise('And'),
  LogicalOr: elementwise('Or'),
  Select: elementwise('Where'),
  Prelu: elementwise('PRelu'),
  SquaredDifference: (t, c) => {
    const [d] = elementwise('Sub')(t, c);
    const y = t.g.op('Mul', [d.name, d.name]);
    return [{ ...d, name: y }];
  },
  Sigmoid: simple('Sigmoid'),
  Relu: simple('Relu'),
  Tanh: simple('Tanh'),
  Exp: simple('Exp'),
  Log: simple('Log'),
  Sqrt: simple('Sqrt'),
  Abs: simple('Abs'),
  Neg: simple('Neg'),
  Floor: simple('Floor'),
  Ceil: simple('Ceil'),
  Round: simple('Round'),
  Erf: simple('Erf'),
  Reciprocal: simple('Reciprocal'),
  Sin: simple('Sin'),
  Cos: simple('Cos'),
  Softplus: simple('Softplus'),
  Sign: simple('Sign'),
  Selu: simple('Selu'),
  LogicalNot: unary((t, x) => t.g.op('Not', [x], {}, { dtypes: ['bool'] })),
  Relu6: unary((t, x) => t.g.op('Clip', [x, t.g.scalarFloat(0), t.g.scalarFloat(6)])),
  Elu: unary((t, x) => t.g.op('Elu', [x], { alpha: { f: 1 } })),
  LeakyRelu: unary((t, x, c) =>
    t.g.op('LeakyRelu', [x], { alpha: { f: (c.attrs.alpha as number | undefined) ?? 0.2 } }),
  ),
  Rsqrt: unary((t, x) => t.g.op('Reciprocal', [t.g.op('Sqrt', [x])])),
  Square: unary((t, x) => t.g.op('Mul', [x, x])),
  ClipByValue: clip,
  Identity: (t, c) => {
    const x = computed(t, c, 'x');
    return [t.value(x.name, c.outputs[0], x.perm, x.batchAxis)];
  },
  Cast: cast,
  Reshape: reshape,
  Transpose: transpose,
  Concat: concat,
  Pack: pack,
  Unpack: unpack,
  SplitV: splitV,
  Slice: slice,
  StridedSlice: stridedSlice,
  PadV2: pad,
  MirrorPad: pad,
  Mean: reduce('ReduceMean'),
  Sum: reduce('ReduceSum'),
  Max: reduce('ReduceMax'),
  Min: reduce('ReduceMin'),
  Prod: reduce('ReduceProd'),
  All: reduce('ReduceAll'),
  Any: reduce('ReduceAny'),
  BatchMatMul: matMul,
  _FusedMatMul: matMul,
  GatherV2: gather,
  FusedBatchNorm: fusedBatchNorm,
  Softmax: softmax('Softmax'),
  LogSoftmax: softmax('LogSoftmax'),
  ExpandDims: expandDims,
  Tile: tile,
};

const CONV_ATTRS = ['strides', 'pad', 'dataFormat', 'dilations', 'dimRoundingMode'];
const FUSED_ATTRS = ['activation', 'leakyreluAlpha'];
const REDUCE_ATTRS = ['axis', 'keepDims'];

/** The attributes each translation reads; any other attribute with a value fails the export. */
const KNOWN_ATTRS: Record<string, string[]> = {
  Conv2D: CONV_ATTRS,
  DepthwiseConv2dNative: CONV_ATTRS,
  FusedConv2D: [...CONV_ATTRS, ...FUSED_ATTRS],
  FusedDepthwiseConv2D: [...CONV_ATTRS, ...FUSED_ATTRS],
  MaxPool: ['filterSize', 'strides', 'pad', 'dimRoundingMode'],
  AvgPool: ['filterSize', 'strides', 'pad', 'dimRoundingMode'],
  ResizeNearestNeighbor: ['alignCorners', 'halfPixelCenters', 'size'],
  ResizeBilinear: ['alignCorners', 'halfPixelCenters', 'size'],
  Mean: REDUCE_ATTRS,
  Sum: REDUCE_ATTRS,
  Min: REDUCE_ATTRS,
  Prod: REDUCE_ATTRS,
  All: REDUCE_ATTRS,
  Any: REDUCE_ATTRS,
  Max: ['reductionIndices', 'keepDims'],
  Reshape: ['shape'],
  Transpose: ['perm'],
  Concat: ['axis'],
  Pack: ['axis'],
  Unpack: ['axis'],
  SplitV: ['numOrSizeSplits', 'axis'],
  Slice: ['begin', 'size'],
  StridedSlice: [
    'begin',
    'end',
    'strides',
    'beginMask',
    'endMask',
    'ellipsisMask',
    'newAxisMask',
    'shrinkAxisMask',
  ],
  PadV2: ['paddings', 'constantValue'],
  MirrorPad: ['paddings', 'mode'],
  Cast: ['dtype'],
  ClipByValue: ['clipValueMin', 'clipValueMax'],
  LeakyRelu: ['alpha'],
  BatchMatMul: ['transposeA', 'transposeB'],
  _FusedMatMul: ['transposeA', 'transposeB', ...FUSED_ATTRS],
  GatherV2: ['axis', 'batchDims'],
  FusedBatchNorm: ['varianceEpsilon'],
  Softmax: ['dim'],
  LogSoftmax: ['axis'],
  ExpandDims: ['dim'],
  Tile: ['reps'],
};

/** Kernel names the exporter translates. */
export function supportedKernels(): string[] {
  return Object.keys(TRANSLATIONS).sort();
}

/** Graph output dims for a value: the batch axis symbolic when dynamic. */
export function outputDims(t: Tracer, v: GraphValue): Dim[] {
  return v.shape.map((d, i) => (i === v.batchAxis ? (t.dynamic ? 'batch' : (t.options.batch as number)) : d));
}

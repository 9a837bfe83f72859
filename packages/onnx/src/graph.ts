/**
 * A small ONNX graph builder: typed values, nodes in topological order (each is appended after its inputs
 * exist), initializers (deduplicated constants), attributes, and serialisation to a `ModelProto`.
 */
import {
  type AttributeMessage,
  AttributeType,
  DataType,
  encodeModel,
  type ModelMessage,
  type NodeMessage,
  type TensorMessage,
  type TensorShapeDim,
  type ValueInfo,
} from './proto.js';

/** Element types this package writes. */
export type OnnxDType = 'float32' | 'float16' | 'int32' | 'int64' | 'uint8' | 'bool';

export const ONNX_DTYPE: Record<OnnxDType, number> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  int32: DataType.INT32,
  int64: DataType.INT64,
  uint8: DataType.UINT8,
  bool: DataType.BOOL,
};

/** A dimension: a number, or a symbolic name (`'batch'`). */
export type Dim = number | string;

/** An attribute value with its ONNX type made explicit. */
export type Attr =
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: readonly number[] }
  | { floats: readonly number[] }
  | { t: ConstTensor };

export const attr = {
  i: (v: number): Attr => ({ i: v }),
  f: (v: number): Attr => ({ f: v }),
  s: (v: string): Attr => ({ s: v }),
  ints: (v: readonly number[]): Attr => ({ ints: v }),
  floats: (v: readonly number[]): Attr => ({ floats: v }),
};

/** Host data of a constant. int64 values are given as numbers (exact up to 2^53). */
export interface ConstTensor {
  dtype: OnnxDType;
  dims: readonly number[];
  data: Float32Array | Int32Array | Uint8Array | Uint16Array | readonly number[];
}

/** The opsets this package can write (ai.onnx). */
export const MIN_OPSET = 13;
export const MAX_OPSET = 21;

/** The IR version paired with each opset by the ONNX release that introduced it. */
export function irVersionFor(opset: number): number {
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

const BYTES: Record<OnnxDType, number> = {
  float32: 4,
  float16: 2,
  int32: 4,
  int64: 8,
  uint8: 1,
  bool: 1,
};

/** Little-endian raw bytes of a constant, as `TensorProto.raw_data` stores them. */
export function rawBytes(t: ConstTensor): Uint8Array {
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) {
    throw new Error(
      `rawBytes: a ${t.dtype} tensor of dims [${t.dims.join(', ')}] needs ${n} values, got ${t.data.length}`,
    );
  }
  const out = new Uint8Array(n * BYTES[t.dtype]);
  const view = new DataView(out.buffer);
  const d = t.data;
  switch (t.dtype) {
    case 'float32':
      for (let i = 0; i < n; i++) view.setFloat32(4 * i, d[i], true);
      break;
    case 'int32':
      for (let i = 0; i < n; i++) view.setInt32(4 * i, d[i], true);
      break;
    case 'int64':
      for (let i = 0; i < n; i++) view.setBigInt64(8 * i, BigInt(Math.trunc(d[i])), true);
      break;
    case 'float16':
      // data holds the float16 bit patterns
      for (let i = 0; i < n; i++) view.setUint16(2 * i, d[i], true);
      break;
    case 'uint8':
    case 'bool':
      for (let i = 0; i < n; i++) out[i] = d[i] ? (t.dtype === 'bool' ? 1 : d[i]) : 0;
      break;
  }
  return out;
}

function attrMessage(name: string, a: Attr): AttributeMessage {
  if ('i' in a) return { name, type: AttributeType.INT, i: a.i };
  if ('f' in a) return { name, type: AttributeType.FLOAT, f: a.f };
  if ('s' in a) return { name, type: AttributeType.STRING, s: new TextEncoder().encode(a.s) };
  if ('ints' in a) return { name, type: AttributeType.INTS, ints: [...a.ints] };
  if ('floats' in a) return { name, type: AttributeType.FLOATS, floats: [...a.floats] };
  return {
    name,
    type: AttributeType.TENSOR,
    t: { name: '', dims: [...a.t.dims], data_type: ONNX_DTYPE[a.t.dtype], raw_data: rawBytes(a.t) },
  };
}

function valueInfo(name: string, dtype: OnnxDType, shape: readonly Dim[], doc?: string): ValueInfo {
  const dim: TensorShapeDim[] = shape.map((d) =>
    typeof d === 'number' ? { dim_value: d } : { dim_param: d },
  );
  const v: ValueInfo = { name, type: { tensor_type: { elem_type: ONNX_DTYPE[dtype], shape: { dim } } } };
  if (doc) v.doc_string = doc;
  return v;
}

function constKey(t: ConstTensor): string | null {
  // Small constants (shapes, axes, scalars) are deduplicated by content.
  if (t.data.length > 64) return null;
  return `${t.dtype}|${t.dims.join(',')}|${Array.from(t.data).join(',')}`;
}

export interface NodeOptions {
  /** Output names; default fresh names from the op type. */
  outputs?: string[];
  /** Number of outputs when names are generated (default 1). */
  numOutputs?: number;
  /** Node name; default `${scope}/${op}_${n}`. */
  name?: string;
  /** Element type of each output (for the builder's bookkeeping; default: the first input's). */
  dtypes?: OnnxDType[];
}

/** Builds one ONNX graph. Names are unique; nodes are kept in the order they are added. */
export class GraphBuilder {
  readonly nodes: NodeMessage[] = [];
  readonly initializers: TensorMessage[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  private readonly used = new Set<string>();
  private readonly dtypes = new Map<string, OnnxDType>();
  private readonly constCache = new Map<string, string>();
  private counter = 0;
  /** Prefix of generated node and value names (a module path while tracing). */
  scope = '';

  constructor(readonly opset: number) {
    if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
      throw new Error(`GraphBuilder: opset must be an integer in ${MIN_OPSET}..${MAX_OPSET}, got ${opset}`);
    }
  }

  /** A fresh, unused name derived from `base`. */
  fresh(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_.:/-]/g, '_') || 'v';
    let name = clean;
    while (this.used.has(name)) name = `${clean}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  /** The element type recorded for a value name. */
  dtypeOf(name: string): OnnxDType {
    const d = this.dtypes.get(name);
    if (!d) throw new Error(`GraphBuilder.dtypeOf: unknown value '${name}'`);
    return d;
  }

  has(name: string): boolean {
    return this.dtypes.has(name);
  }

  addInput(name: string, dtype: OnnxDType, shape: readonly Dim[], doc?: string): string {
    if (this.used.has(name)) throw new Error(`GraphBuilder.addInput: the name '${name}' is taken`);
    this.used.add(name);
    this.dtypes.set(name, dtype);
    this.inputs.push(valueInfo(name, dtype, shape, doc));
    return name;
  }

  /** Declares `value` a graph output named `name` (an Identity node renames when needed). */
  addOutput(name: string, value: string, shape: readonly Dim[], doc?: string): void {
    const dtype = this.dtypeOf(value);
    let v = value;
    if (v !== name) {
      if (this.used.has(name)) throw new Error(`GraphBuilder.addOutput: the name '${name}' is taken`);
      this.used.add(name);
      this.nodes.push({
        name: this.fresh(`${name}/Identity`),
        op_type: 'Identity',
        input: [value],
        output: [name],
        attribute: [],
      });
      this.dtypes.set(name, dtype);
      v = name;
    }
    this.outputs.push(valueInfo(v, dtype, shape, doc));
  }

  /** A constant as an initializer; small ones are shared by content. */
  constant(t: ConstTensor, base = 'const'): string {
    const key = constKey(t);
    if (key) {
      const hit = this.constCache.get(key);
      if (hit) return hit;
    }
    const name = this.fresh(base);
    this.initializers.push({
      name,
      dims: [...t.dims],
      data_type: ONNX_DTYPE[t.dtype],
      raw_data: rawBytes(t),
    });
    this.dtypes.set(name, t.dtype);
    if (key) this.constCache.set(key, name);
    return name;
  }

  int64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.constant({ dtype: 'int64', dims, data: values }, 'i64');
  }

  float(values: readonly number[] | Float32Array, dims: readonly number[] = [values.length]): string {
    return this.constant(
      { dtype: 'float32', dims, data: values instanceof Float32Array ? values : Float32Array.from(values) },
      'f32',
    );
  }

  scalarFloat(v: number): string {
    return this.constant({ dtype: 'float32', dims: [], data: Float32Array.of(v) }, 'f32');
  }

  scalarInt64(v: number): string {
    return this.constant({ dtype: 'int64', dims: [], data: [v] }, 'i64');
  }

  /** Appends a node; returns its output names. Inputs must exist ('' = an omitted optional input). */
  node(
    op: string,
    inputs: readonly string[],
    attrs: Record<string, Attr> = {},
    o: NodeOptions = {},
  ): string[] {
    for (const i of inputs) {
      if (i !== '' && !this.dtypes.has(i)) {
        throw new Error(`GraphBuilder.node: ${op} uses '${i}', which is not defined yet`);
      }
    }
    const base = this.scope ? `${this.scope}/${op}` : op;
    const n = o.outputs?.length ?? o.numOutputs ?? 1;
    const outputs =
      o.outputs?.map((name) => {
        if (this.used.has(name)) throw new Error(`GraphBuilder.node: the output name '${name}' is taken`);
        this.used.add(name);
        return name;
      }) ?? Array.from({ length: n }, (_, k) => this.fresh(n === 1 ? base : `${base}:${k}`));
    const first = inputs.find((i) => i !== '');
    outputs.forEach((name, k) => {
      const d = o.dtypes?.[k] ?? o.dtypes?.[0] ?? (first ? this.dtypeOf(first) : undefined);
      if (!d) throw new Error(`GraphBuilder.node: give the output dtype of ${op} (it has no inputs)`);
      this.dtypes.set(name, d);
    });
    this.nodes.push({
      name: o.name ?? this.fresh(`${base}_node`),
      op_type: op,
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attrMessage(k, v)),
    });
    return outputs;
  }

  /** One-output `node`. */
  op(op: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, o: NodeOptions = {}): string {
    return this.node(op, inputs, attrs, o)[0];
  }

  /**
   * Removes nodes none of whose outputs is used (by a node or as a graph output) and initializers no node
   * uses. Export passes that replace a node leave the old one behind; this drops it. Call once the graph is
   * complete (the builder's shared constants may be among the removed initializers).
   */
  prune(): { nodes: number; initializers: number } {
    const live = new Set<string>(this.outputs.map((o) => o.name));
    const keep = new Array<boolean>(this.nodes.length).fill(false);
    for (let k = this.nodes.length - 1; k >= 0; k--) {
      const n = this.nodes[k];
      if (!n.output.some((o) => live.has(o))) continue;
      keep[k] = true;
      for (const i of n.input) if (i !== '') live.add(i);
    }
    const nodes = this.nodes.length;
    const kept = this.nodes.filter((_, k) => keep[k]);
    this.nodes.length = 0;
    this.nodes.push(...kept);
    const inits = this.initializers.length;
    const used = this.initializers.filter((t) => live.has(t.name));
    this.initializers.length = 0;
    this.initializers.push(...used);
    for (const [key, name] of this.constCache) if (!live.has(name)) this.constCache.delete(key);
    return { nodes: nodes - this.nodes.length, initializers: inits - this.initializers.length };
  }

  /** The `ModelProto` as a plain object. */
  toModel(options: {
    graphName: string;
    producerVersion: string;
    metadata?: Record<string, string>;
    docString?: string;
  }): ModelMessage {
    return {
      ir_version: irVersionFor(this.opset),
      opset_import: [{ domain: '', version: this.opset }],
      producer_name: 'effdet-ts',
      producer_version: options.producerVersion,
      model_version: 1,
      doc_string: options.docString ?? '',
      graph: {
        name: options.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
      metadata_props: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    };
  }

  /** Serialised ONNX bytes. */
  encode(options: Parameters<GraphBuilder['toModel']>[0]): Uint8Array {
    return encodeModel(this.toModel(options));
  }
}

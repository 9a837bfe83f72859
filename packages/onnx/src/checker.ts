/**
 * A structural checker for the ONNX files this package writes, following the rules of ONNX's own checker
 * (onnx/checker.cc) for what is used here: IR / opset versions, unique SSA names, topological node order,
 * defined inputs, initializer sizes, attribute types, operator schemas (input / output counts, attribute names,
 * required attributes, the opset an operator and its inputs exist in) and element types along the graph.
 */
import { AttributeType, DataType, decodeModel, type ModelMessage, type NodeMessage } from './proto.js';

export interface CheckReport {
  ok: boolean;
  errors: string[];
  nodes: number;
  opTypes: Record<string, number>;
}

const ELEMENT_SIZE: Record<number, number> = {
  [DataType.FLOAT]: 4,
  [DataType.UINT8]: 1,
  [DataType.INT8]: 1,
  [DataType.INT32]: 4,
  [DataType.INT64]: 8,
  [DataType.BOOL]: 1,
  [DataType.FLOAT16]: 2,
  [DataType.DOUBLE]: 8,
};

const A = AttributeType;
type AttrSpec = Record<string, number>;

interface OpSchema {
  /** Opset version that introduced the op (as used here). */
  since: number;
  inputs: [number, number];
  outputs: [number, number];
  attrs: AttrSpec;
  required?: string[];
  /** Per opset range overrides (e.g. Reduce* taking axes as an input from 18). */
  from?: { opset: number; inputs?: [number, number]; attrs?: AttrSpec }[];
  /** Output element type: 'same' (input 0), 'input1', a fixed DataType, 'to' (Cast), or per output. */
  type?: 'same' | 'input1' | 'to' | number | (number | 'same')[];
  /** Input indices whose element types must equal input 0's. */
  sameTypes?: number[];
}

const INF = Number.POSITIVE_INFINITY;
const unary = (since = 13, attrs: AttrSpec = {}): OpSchema => ({
  since,
  inputs: [1, 1],
  outputs: [1, 1],
  attrs,
  type: 'same',
});
const binary = (since = 13, type: OpSchema['type'] = 'same'): OpSchema => ({
  since,
  inputs: [2, 2],
  outputs: [1, 1],
  attrs: {},
  type,
  sameTypes: [1],
});
const reduce = (axesInputFrom: number): OpSchema => ({
  since: 13,
  inputs: [1, 1],
  outputs: [1, 1],
  attrs: { axes: A.INTS, keepdims: A.INT },
  type: 'same',
  from: [{ opset: axesInputFrom, inputs: [1, 2], attrs: { keepdims: A.INT, noop_with_empty_axes: A.INT } }],
});
const windowAttrs: AttrSpec = {
  auto_pad: A.STRING,
  dilations: A.INTS,
  kernel_shape: A.INTS,
  pads: A.INTS,
  strides: A.INTS,
};

/** The operators this package emits, as of opsets 13-21. */
export const OP_SCHEMAS: Record<string, OpSchema> = {
  Conv: {
    since: 11,
    inputs: [2, 3],
    outputs: [1, 1],
    attrs: { ...windowAttrs, group: A.INT },
    type: 'same',
    sameTypes: [1, 2],
  },
  MaxPool: {
    since: 12,
    inputs: [1, 1],
    outputs: [1, 2],
    attrs: { ...windowAttrs, ceil_mode: A.INT, storage_order: A.INT },
    required: ['kernel_shape'],
    type: ['same', DataType.INT64],
  },
  AveragePool: {
    since: 11,
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: {
      auto_pad: A.STRING,
      ceil_mode: A.INT,
      count_include_pad: A.INT,
      kernel_shape: A.INTS,
      pads: A.INTS,
      strides: A.INTS,
    },
    required: ['kernel_shape'],
    from: [
      {
        opset: 19,
        attrs: { ...windowAttrs, ceil_mode: A.INT, count_include_pad: A.INT },
      },
    ],
    type: 'same',
  },
  GlobalAveragePool: unary(1),
  Relu: unary(),
  Sigmoid: unary(),
  Tanh: unary(),
  Exp: unary(),
  Log: unary(),
  Sqrt: unary(),
  Abs: unary(),
  Neg: unary(),
  Floor: unary(),
  Ceil: unary(),
  Round: unary(11),
  Erf: unary(),
  Reciprocal: unary(),
  Sin: unary(7),
  Cos: unary(7),
  Softplus: unary(1),
  Sign: unary(),
  Not: unary(1),
  Identity: unary(),
  Selu: unary(6, { alpha: A.FLOAT, gamma: A.FLOAT }),
  Elu: unary(6, { alpha: A.FLOAT }),
  LeakyRelu: unary(6, { alpha: A.FLOAT }),
  PRelu: binary(),
  Clip: { since: 13, inputs: [1, 3], outputs: [1, 1], attrs: {}, type: 'same', sameTypes: [1, 2] },
  Add: binary(),
  Sub: binary(),
  Mul: binary(),
  Div: binary(),
  Pow: { since: 13, inputs: [2, 2], outputs: [1, 1], attrs: {}, type: 'same' },
  Equal: binary(13, DataType.BOOL),
  Greater: binary(13, DataType.BOOL),
  GreaterOrEqual: binary(12, DataType.BOOL),
  Less: binary(13, DataType.BOOL),
  LessOrEqual: binary(12, DataType.BOOL),
  And: binary(7, DataType.BOOL),
  Or: binary(7, DataType.BOOL),
  Max: { since: 13, inputs: [1, INF], outputs: [1, 1], attrs: {}, type: 'same', sameTypes: [1, 2, 3] },
  Min: { since: 13, inputs: [1, INF], outputs: [1, 1], attrs: {}, type: 'same', sameTypes: [1, 2, 3] },
  Sum: { since: 13, inputs: [1, INF], outputs: [1, 1], attrs: {}, type: 'same', sameTypes: [1, 2, 3, 4, 5] },
  Where: { since: 9, inputs: [3, 3], outputs: [1, 1], attrs: {}, type: 'input1' },
  Transpose: { since: 13, inputs: [1, 1], outputs: [1, 1], attrs: { perm: A.INTS }, type: 'same' },
  Reshape: {
    since: 13,
    inputs: [2, 2],
    outputs: [1, 1],
    attrs: {},
    from: [{ opset: 14, attrs: { allowzero: A.INT } }],
    type: 'same',
  },
  Concat: {
    since: 13,
    inputs: [1, INF],
    outputs: [1, 1],
    attrs: { axis: A.INT },
    required: ['axis'],
    type: 'same',
  },
  Split: {
    since: 13,
    inputs: [1, 2],
    outputs: [1, INF],
    attrs: { axis: A.INT },
    from: [{ opset: 18, attrs: { axis: A.INT, num_outputs: A.INT } }],
    type: 'same',
  },
  Squeeze: { since: 13, inputs: [1, 2], outputs: [1, 1], attrs: {}, type: 'same' },
  Unsqueeze: { since: 13, inputs: [2, 2], outputs: [1, 1], attrs: {}, type: 'same' },
  Slice: { since: 13, inputs: [3, 5], outputs: [1, 1], attrs: {}, type: 'same' },
  Pad: {
    since: 13,
    inputs: [2, 3],
    outputs: [1, 1],
    attrs: { mode: A.STRING },
    from: [{ opset: 18, inputs: [2, 4] }],
    type: 'same',
  },
  Cast: {
    since: 13,
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: { to: A.INT },
    required: ['to'],
    from: [{ opset: 19, attrs: { to: A.INT, saturate: A.INT } }],
    type: 'to',
  },
  Resize: {
    since: 13,
    inputs: [1, 4],
    outputs: [1, 1],
    attrs: {
      coordinate_transformation_mode: A.STRING,
      cubic_coeff_a: A.FLOAT,
      exclude_outside: A.INT,
      extrapolation_value: A.FLOAT,
      mode: A.STRING,
      nearest_mode: A.STRING,
    },
    from: [
      {
        opset: 18,
        attrs: {
          antialias: A.INT,
          axes: A.INTS,
          coordinate_transformation_mode: A.STRING,
          cubic_coeff_a: A.FLOAT,
          exclude_outside: A.INT,
          extrapolation_value: A.FLOAT,
          keep_aspect_ratio_policy: A.STRING,
          mode: A.STRING,
          nearest_mode: A.STRING,
        },
      },
    ],
    type: 'same',
  },
  ReduceMean: reduce(18),
  ReduceMax: reduce(18),
  ReduceMin: reduce(18),
  ReduceProd: reduce(18),
  ReduceSum: {
    since: 13,
    inputs: [1, 2],
    outputs: [1, 1],
    attrs: { keepdims: A.INT, noop_with_empty_axes: A.INT },
    type: 'same',
  },
  Softmax: unary(13, { axis: A.INT }),
  LogSoftmax: unary(13, { axis: A.INT }),
  MatMul: { since: 13, inputs: [2, 2], outputs: [1, 1], attrs: {}, type: 'same', sameTypes: [1] },
  Gather: { since: 13, inputs: [2, 2], outputs: [1, 1], attrs: { axis: A.INT }, type: 'same' },
  GatherElements: { since: 13, inputs: [2, 2], outputs: [1, 1], attrs: { axis: A.INT }, type: 'same' },
  GatherND: { since: 13, inputs: [2, 2], outputs: [1, 1], attrs: { batch_dims: A.INT }, type: 'same' },
  TopK: {
    since: 11,
    inputs: [2, 2],
    outputs: [2, 2],
    attrs: { axis: A.INT, largest: A.INT, sorted: A.INT },
    type: ['same', DataType.INT64],
  },
  NonMaxSuppression: {
    since: 11,
    inputs: [2, 5],
    outputs: [1, 1],
    attrs: { center_point_box: A.INT },
    type: DataType.INT64,
  },
  ScatterND: {
    since: 13,
    inputs: [3, 3],
    outputs: [1, 1],
    attrs: {},
    from: [{ opset: 16, attrs: { reduction: A.STRING } }],
    type: 'same',
  },
  Expand: { since: 13, inputs: [2, 2], outputs: [1, 1], attrs: {}, type: 'same' },
  Tile: { since: 13, inputs: [2, 2], outputs: [1, 1], attrs: {}, type: 'same' },
  Shape: {
    since: 13,
    inputs: [1, 1],
    outputs: [1, 1],
    attrs: {},
    from: [{ opset: 15, attrs: { start: A.INT, end: A.INT } }],
    type: DataType.INT64,
  },
};

/** Inputs that must be int64 (shape-like operands), per op. */
const INT64_INPUTS: Record<string, number[]> = {
  Reshape: [1],
  Split: [1],
  Squeeze: [1],
  Unsqueeze: [1],
  Slice: [1, 2, 3, 4],
  Pad: [1],
  Resize: [3],
  TopK: [1],
  Expand: [1],
  Tile: [1],
  NonMaxSuppression: [2],
  ScatterND: [1],
  GatherND: [1],
  ReduceSum: [1],
  ReduceMean: [1],
  ReduceMax: [1],
  ReduceMin: [1],
  ReduceProd: [1],
};

function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Checks ONNX bytes (or a decoded model). Never throws: problems are listed in `errors`. */
export function checkOnnxModel(input: Uint8Array | ModelMessage): CheckReport {
  const errors: string[] = [];
  let model: ModelMessage;
  try {
    model = input instanceof Uint8Array ? decodeModel(input) : input;
  } catch (e) {
    return { ok: false, errors: [`not a valid ModelProto: ${(e as Error).message}`], nodes: 0, opTypes: {} };
  }
  const err = (m: string) => {
    if (errors.length < 200) errors.push(m);
  };
  if (!model.ir_version || model.ir_version < 3 || model.ir_version > 11)
    err(`ir_version ${model.ir_version} is not one of 3..11`);
  const opsets = model.opset_import ?? [];
  const main = opsets.find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx');
  if (!main) err('opset_import has no entry for the default domain');
  const opset = main?.version ?? 0;
  const domains = new Set<string>();
  for (const o of opsets) {
    const d = o.domain ?? '';
    if (domains.has(d)) err(`opset_import lists the domain '${d}' twice`);
    domains.add(d);
  }
  const keys = new Set<string>();
  for (const p of model.metadata_props ?? []) {
    if (keys.has(p.key)) err(`metadata_props has the key '${p.key}' twice`);
    keys.add(p.key);
  }
  const g = model.graph;
  if (!g) return { ok: false, errors: [...errors, 'the model has no graph'], nodes: 0, opTypes: {} };
  if (!g.name) err('the graph has no name');
  const types = new Map<string, number>();
  const define = (name: string, type: number, what: string) => {
    if (!name) err(`${what} has an empty name`);
    else if (types.has(name)) err(`'${name}' (${what}) is defined twice`);
    types.set(name, type);
  };
  for (const v of g.input ?? []) {
    const tt = v.type?.tensor_type;
    if (!tt?.elem_type) err(`graph input '${v.name}' has no tensor element type`);
    if (!tt?.shape) err(`graph input '${v.name}' has no shape`);
    define(v.name, tt?.elem_type ?? 0, 'graph input');
  }
  const initNames = new Set<string>();
  for (const t of g.initializer ?? []) {
    if (!t.name) err('an initializer has no name');
    if (initNames.has(t.name)) err(`initializer '${t.name}' is defined twice`);
    initNames.add(t.name);
    const size = ELEMENT_SIZE[t.data_type];
    if (!size) err(`initializer '${t.name}' has unsupported data_type ${t.data_type}`);
    const dims = (t.dims ?? []).map(Number);
    if (dims.some((d) => !Number.isInteger(d) || d < 0))
      err(`initializer '${t.name}' has bad dims [${dims.join(', ')}]`);
    const bytes = t.raw_data?.length ?? 0;
    if (size && bytes !== numel(dims) * size) {
      err(
        `initializer '${t.name}' holds ${bytes} bytes, expected ${numel(dims) * size} for dims [${dims.join(', ')}]`,
      );
    }
    if (!types.has(t.name)) types.set(t.name, t.data_type);
  }
  const opTypes: Record<string, number> = {};
  const nodeNames = new Set<string>();
  (g.node ?? []).forEach((n: NodeMessage, idx) => {
    const where = `node ${idx} '${n.name}' (${n.op_type})`;
    opTypes[n.op_type] = (opTypes[n.op_type] ?? 0) + 1;
    if (n.name) {
      if (nodeNames.has(n.name)) err(`${where}: the node name is used twice`);
      nodeNames.add(n.name);
    }
    if (n.domain && n.domain !== 'ai.onnx') err(`${where}: domain '${n.domain}' is not imported`);
    const s = OP_SCHEMAS[n.op_type];
    const inputs = n.input ?? [];
    const outputs = n.output ?? [];
    if (!s) {
      err(`${where}: no schema for op '${n.op_type}'`);
    } else {
      if (opset < s.since)
        err(`${where}: ${n.op_type} needs opset >= ${s.since}, the model imports ${opset}`);
      const over = (s.from ?? []).filter((f) => opset >= f.opset).at(-1);
      const [imin, imax] = over?.inputs ?? s.inputs;
      const attrsAllowed = over?.attrs ?? s.attrs;
      let last = inputs.length;
      while (last > 0 && inputs[last - 1] === '') last--;
      if (last < imin || last > imax) err(`${where}: ${last} inputs, expected ${imin}..${imax}`);
      if (outputs.length < s.outputs[0] || outputs.length > s.outputs[1]) {
        err(`${where}: ${outputs.length} outputs, expected ${s.outputs[0]}..${s.outputs[1]}`);
      }
      for (let i = 0; i < imin && i < inputs.length; i++)
        if (inputs[i] === '') err(`${where}: required input ${i} is empty`);
      const seen = new Set<string>();
      for (const a of n.attribute ?? []) {
        if (seen.has(a.name)) err(`${where}: attribute '${a.name}' appears twice`);
        seen.add(a.name);
        const want = attrsAllowed[a.name];
        if (want === undefined) err(`${where}: unknown attribute '${a.name}' (opset ${opset})`);
        else if (a.type !== want) err(`${where}: attribute '${a.name}' has type ${a.type}, expected ${want}`);
        const fields = [
          a.f !== undefined && a.type !== A.FLOAT,
          a.i !== undefined && a.type !== A.INT,
          a.s !== undefined && a.type !== A.STRING,
          a.t !== undefined && a.type !== A.TENSOR,
          (a.floats?.length ?? 0) > 0 && a.type !== A.FLOATS,
          (a.ints?.length ?? 0) > 0 && a.type !== A.INTS,
        ];
        if (fields.some(Boolean))
          err(`${where}: attribute '${a.name}' sets a field of another type than ${a.type}`);
      }
      for (const r of s.required ?? [])
        if (!seen.has(r)) err(`${where}: required attribute '${r}' is missing`);
      for (const i of INT64_INPUTS[n.op_type] ?? []) {
        const t = inputs[i] ? types.get(inputs[i]) : undefined;
        if (t !== undefined && t !== DataType.INT64) err(`${where}: input ${i} must be int64, got type ${t}`);
      }
      const t0 = inputs[0] ? types.get(inputs[0]) : undefined;
      for (const i of s.sameTypes ?? []) {
        const t = inputs[i] ? types.get(inputs[i]) : undefined;
        if (t !== undefined && t0 !== undefined && t !== t0)
          err(`${where}: input ${i} has type ${t}, input 0 has ${t0}`);
      }
    }
    for (const i of inputs)
      if (i !== '' && !types.has(i)) err(`${where}: input '${i}' is not defined before the node`);
    outputs.forEach((o, k) => {
      let t = 0;
      const spec = s?.type;
      const t0 = inputs[0] ? (types.get(inputs[0]) ?? 0) : 0;
      if (spec === 'same') t = t0;
      else if (spec === 'input1') t = inputs[1] ? (types.get(inputs[1]) ?? 0) : 0;
      else if (spec === 'to') t = (n.attribute ?? []).find((a) => a.name === 'to')?.i ?? 0;
      else if (typeof spec === 'number') t = spec;
      else if (Array.isArray(spec)) t = spec[k] === 'same' ? t0 : (spec[k] as number);
      if (o !== '') define(o, t, `${where} output ${k}`);
    });
  });
  for (const v of g.output ?? []) {
    if (!types.has(v.name)) err(`graph output '${v.name}' is never produced`);
    const tt = v.type?.tensor_type;
    if (!tt?.elem_type) err(`graph output '${v.name}' has no tensor element type`);
    const t = types.get(v.name);
    if (t && tt?.elem_type && t !== tt.elem_type)
      err(`graph output '${v.name}' is declared type ${tt.elem_type} but computed as ${t}`);
  }
  return { ok: errors.length === 0, errors, nodes: (g.node ?? []).length, opTypes };
}

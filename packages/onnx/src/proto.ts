/**
 * The ONNX protobuf schema through protobufjs (a maintained protobuf library): the vendored `proto/onnx.proto`
 * as a JSON descriptor (`onnx_schema.ts`), encoders and decoders for `ModelProto`, and the enum values used here.
 */
import protobuf from 'protobufjs/light.js';
import { ONNX_SCHEMA } from './onnx_schema.js';

let root: protobuf.Root | null = null;

function schema(): protobuf.Root {
  if (!root) root = protobuf.Root.fromJSON(ONNX_SCHEMA as protobuf.INamespace);
  return root;
}

/** A message type of the ONNX schema, e.g. `onnxType('ModelProto')`. */
export function onnxType(name: string): protobuf.Type {
  return schema().lookupType(`onnx.${name}`);
}

/** `TensorProto.DataType` values. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;

/** `AttributeProto.AttributeType` values. */
export const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
} as const;

/** Plain-object shapes of the messages this package writes (field names as in onnx.proto). */
export interface TensorShapeDim {
  dim_value?: number;
  dim_param?: string;
}

export interface ValueInfo {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: TensorShapeDim[] } } };
  doc_string?: string;
}

export interface TensorMessage {
  name: string;
  dims: number[];
  data_type: number;
  raw_data?: Uint8Array;
}

export interface AttributeMessage {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorMessage;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
}

export interface NodeMessage {
  name: string;
  op_type: string;
  domain?: string;
  input: string[];
  output: string[];
  attribute: AttributeMessage[];
  doc_string?: string;
}

export interface GraphMessage {
  name: string;
  node: NodeMessage[];
  initializer: TensorMessage[];
  input: ValueInfo[];
  output: ValueInfo[];
  value_info?: ValueInfo[];
  doc_string?: string;
}

export interface ModelMessage {
  ir_version: number;
  opset_import: { domain: string; version: number }[];
  producer_name: string;
  producer_version: string;
  model_version?: number;
  doc_string?: string;
  graph: GraphMessage;
  metadata_props: { key: string; value: string }[];
}

/** Serialises a model to the ONNX wire format. */
export function encodeModel(model: ModelMessage): Uint8Array {
  const t = onnxType('ModelProto');
  return t.encode(model as unknown as protobuf.Message).finish();
}

/**
 * Parses ONNX bytes into plain objects (int64 as numbers, enums as numbers, bytes as Uint8Array). Throws on
 * malformed protobuf.
 */
export function decodeModel(bytes: Uint8Array): ModelMessage {
  const t = onnxType('ModelProto');
  const msg = t.decode(bytes);
  return t.toObject(msg, { longs: Number, enums: Number, arrays: true, defaults: false }) as ModelMessage;
}

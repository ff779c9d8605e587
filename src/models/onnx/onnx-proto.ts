/**
 * Encoders for the ONNX protobuf messages the writer needs (field numbers from onnx.proto3):
 * ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto (inline or external data),
 * ValueInfoProto and OperatorSetIdProto.
 */
import { ProtoWriter } from "./protobuf.js";

/** TensorProto.DataType values used here. */
export enum OnnxDataType {
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  INT32 = 6,
  INT64 = 7,
}

/** Bytes per element of each supported data type. */
export const DATA_TYPE_BYTES: Record<OnnxDataType, number> = {
  [OnnxDataType.FLOAT]: 4,
  [OnnxDataType.UINT8]: 1,
  [OnnxDataType.INT8]: 1,
  [OnnxDataType.INT32]: 4,
  [OnnxDataType.INT64]: 8,
};

/** Where an external initializer's bytes live (relative to the model file). */
export interface ExternalLocation {
  location: string;
  offset: number;
  length: number;
}

/** An initializer: raw little-endian bytes inline, or a reference into an external data file. */
export interface TensorDef {
  name: string;
  dataType: OnnxDataType;
  dims: readonly number[];
  raw?: Uint8Array;
  external?: ExternalLocation;
}

/** A node attribute. */
export type AttributeDef =
  | { name: string; type: "int"; value: number }
  | { name: string; type: "float"; value: number }
  | { name: string; type: "string"; value: string }
  | { name: string; type: "ints"; value: readonly number[] }
  | { name: string; type: "floats"; value: readonly number[] }
  | { name: string; type: "tensor"; value: TensorDef };

/** A graph node. */
export interface NodeDef {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name: string;
  domain?: string;
  attributes?: readonly AttributeDef[];
}

/** A graph input/output: tensor element type and shape (numbers fixed, strings symbolic). */
export interface ValueInfoDef {
  name: string;
  elemType: OnnxDataType;
  shape: readonly (number | string)[];
}

/** A whole model. */
export interface ModelDef {
  irVersion: number;
  opsets: readonly { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  graphName: string;
  nodes: readonly NodeDef[];
  initializers: readonly TensorDef[];
  inputs: readonly ValueInfoDef[];
  outputs: readonly ValueInfoDef[];
  metadata?: Record<string, string>;
  docString?: string;
}

function encodeStringStringEntry(key: string, value: string): ProtoWriter {
  return new ProtoWriter().string(1, key).string(2, value);
}

/** Encodes a TensorProto. */
export function encodeTensor(tensor: TensorDef): ProtoWriter {
  const w = new ProtoWriter();
  w.packedInt64(1, tensor.dims);
  w.varint(2, tensor.dataType);
  w.string(8, tensor.name);
  if (tensor.external) {
    if (tensor.raw) throw new Error(`onnx-proto: tensor '${tensor.name}' has both raw and external data`);
    const { location, offset, length } = tensor.external;
    w.message(13, encodeStringStringEntry("location", location));
    w.message(13, encodeStringStringEntry("offset", String(offset)));
    w.message(13, encodeStringStringEntry("length", String(length)));
    w.varint(14, 1); // DataLocation.EXTERNAL
  } else {
    w.bytes(9, tensor.raw ?? new Uint8Array(0));
  }
  return w;
}

function encodeAttribute(attr: AttributeDef): ProtoWriter {
  const w = new ProtoWriter().string(1, attr.name);
  switch (attr.type) {
    case "float":
      return w.float(2, attr.value).varint(20, 1);
    case "int":
      return w.varint(3, attr.value).varint(20, 2);
    case "string":
      return w.string(4, attr.value).varint(20, 3);
    case "tensor":
      return w.message(5, encodeTensor(attr.value)).varint(20, 4);
    case "floats":
      return w.packedFloat(7, attr.value).varint(20, 6);
    case "ints":
      return w.packedInt64(8, attr.value).varint(20, 7);
  }
}

function encodeNode(node: NodeDef): ProtoWriter {
  const w = new ProtoWriter();
  for (const input of node.inputs) w.string(1, input);
  for (const output of node.outputs) w.string(2, output);
  w.string(3, node.name);
  w.string(4, node.opType);
  for (const attr of node.attributes ?? []) w.message(5, encodeAttribute(attr));
  if (node.domain) w.string(7, node.domain);
  return w;
}

function encodeValueInfo(info: ValueInfoDef): ProtoWriter {
  const shape = new ProtoWriter();
  for (const dim of info.shape) {
    const d = new ProtoWriter();
    if (typeof dim === "number") d.varint(1, dim);
    else d.string(2, dim);
    shape.message(1, d);
  }
  const tensorType = new ProtoWriter().varint(1, info.elemType).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, info.name).message(2, type);
}

/** Encodes a ModelProto to bytes. */
export function encodeModel(model: ModelDef): Uint8Array {
  const graph = new ProtoWriter();
  for (const node of model.nodes) graph.message(1, encodeNode(node));
  graph.string(2, model.graphName);
  for (const init of model.initializers) graph.message(5, encodeTensor(init));
  for (const input of model.inputs) graph.message(11, encodeValueInfo(input));
  for (const output of model.outputs) graph.message(12, encodeValueInfo(output));

  const w = new ProtoWriter();
  w.varint(1, model.irVersion);
  w.string(2, model.producerName);
  w.string(3, model.producerVersion);
  if (model.docString) w.string(6, model.docString);
  w.message(7, graph);
  for (const opset of model.opsets) {
    const o = new ProtoWriter();
    if (opset.domain) o.string(1, opset.domain);
    o.varint(2, opset.version);
    w.message(8, o);
  }
  for (const [key, value] of Object.entries(model.metadata ?? {})) w.message(14, encodeStringStringEntry(key, value));
  return w.finish().slice();
}

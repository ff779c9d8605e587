/**
 * A small helper for assembling ONNX graphs: unique value names, nodes, small inline
 * constants, and large initializers stored in an external data file with aligned offsets.
 */
import {
  type AttributeDef,
  DATA_TYPE_BYTES,
  encodeModel,
  type NodeDef,
  OnnxDataType,
  type TensorDef,
  type ValueInfoDef,
} from "./onnx-proto.js";

/** Initializers at least this large go to the external data file. */
const EXTERNAL_THRESHOLD_BYTES = 1024;
/** Large tensors start on 64 KiB boundaries (page- and allocation-granularity aligned, so ORT can mmap them). */
const LARGE_ALIGNMENT = 65536;
const LARGE_TENSOR_BYTES = 1024 * 1024;
/** Smaller external tensors are 64-byte aligned. */
const SMALL_ALIGNMENT = 64;

/** Attribute helpers. */
export const attr = {
  int: (name: string, value: number): AttributeDef => ({ name, type: "int", value }),
  float: (name: string, value: number): AttributeDef => ({ name, type: "float", value }),
  ints: (name: string, value: readonly number[]): AttributeDef => ({ name, type: "ints", value }),
  string: (name: string, value: string): AttributeDef => ({ name, type: "string", value }),
};

type TypedData = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

function bytesOf(data: TypedData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Builds one ONNX graph and serialises it with its external data. */
export class GraphBuilder {
  private readonly nodes: NodeDef[] = [];
  private readonly initializers: TensorDef[] = [];
  private readonly names = new Set<string>();
  private readonly dataChunks: Uint8Array[] = [];
  private dataLength = 0;
  private nodeCounter = 0;

  /**
   * @param externalLocation - file name (relative to the model file) of the external data.
   */
  constructor(private readonly externalLocation: string) {}

  /** Returns `base` or `base_N`, never reusing a name. */
  uniqueName(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  /** Reserves a graph input name. */
  input(name: string): string {
    if (this.names.has(name)) throw new Error(`GraphBuilder: duplicate name '${name}'`);
    this.names.add(name);
    return name;
  }

  /** Adds an initializer; large ones are appended to the external data file. */
  initializer(name: string, dataType: OnnxDataType, dims: readonly number[], data: TypedData): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (data.byteLength !== count * DATA_TYPE_BYTES[dataType]) {
      throw new Error(
        `GraphBuilder: initializer '${name}' dims [${dims.join(", ")}] need ${count * DATA_TYPE_BYTES[dataType]} bytes, ` +
          `got ${data.byteLength}`,
      );
    }
    const unique = this.uniqueName(name);
    const bytes = bytesOf(data);
    if (bytes.byteLength < EXTERNAL_THRESHOLD_BYTES) {
      this.initializers.push({ name: unique, dataType, dims, raw: bytes.slice() });
      return unique;
    }
    const alignment = bytes.byteLength >= LARGE_TENSOR_BYTES ? LARGE_ALIGNMENT : SMALL_ALIGNMENT;
    const padding = (alignment - (this.dataLength % alignment)) % alignment;
    if (padding > 0) {
      this.dataChunks.push(new Uint8Array(padding));
      this.dataLength += padding;
    }
    this.initializers.push({
      name: unique,
      dataType,
      dims,
      external: { location: this.externalLocation, offset: this.dataLength, length: bytes.byteLength },
    });
    this.dataChunks.push(bytes);
    this.dataLength += bytes.byteLength;
    return unique;
  }

  /** float32 initializer. */
  floats(name: string, dims: readonly number[], data: Float32Array): string {
    return this.initializer(name, OnnxDataType.FLOAT, dims, data);
  }

  /** int64 initializer (shapes, axes, indices). */
  int64s(name: string, dims: readonly number[], values: readonly number[]): string {
    return this.initializer(name, OnnxDataType.INT64, dims, BigInt64Array.from(values.map((v) => BigInt(v))));
  }

  /** float32 scalar initializer. */
  scalar(name: string, value: number): string {
    return this.floats(name, [], Float32Array.of(value));
  }

  /**
   * Adds a node and returns its output names.
   * @param outputs - how many outputs (named `${name}_out{i}`), or explicit names.
   */
  node(
    opType: string,
    inputs: readonly string[],
    opts: { name?: string; attributes?: AttributeDef[]; domain?: string; outputs?: number | readonly string[] } = {},
  ): string[] {
    const nodeName = this.uniqueName(opts.name ?? `${opType}_${this.nodeCounter++}`);
    const outputs =
      typeof opts.outputs === "object"
        ? opts.outputs.map((o) => {
            if (this.names.has(o)) throw new Error(`GraphBuilder: duplicate output name '${o}'`);
            this.names.add(o);
            return o;
          })
        : Array.from({ length: opts.outputs ?? 1 }, (_, i) => this.uniqueName(`${nodeName}_out${i}`));
    this.nodes.push({ opType, inputs, outputs, name: nodeName, domain: opts.domain, attributes: opts.attributes });
    return outputs;
  }

  /** Single-output node. */
  op(
    opType: string,
    inputs: readonly string[],
    opts: { name?: string; attributes?: AttributeDef[]; domain?: string; output?: string } = {},
  ): string {
    return this.node(opType, inputs, { ...opts, outputs: opts.output ? [opts.output] : 1 })[0];
  }

  /** Serialises the model; `dataChunks` are the external data file's contents in order. */
  build(opts: {
    graphName: string;
    inputs: ValueInfoDef[];
    outputs: ValueInfoDef[];
    opsets: { domain: string; version: number }[];
    metadata?: Record<string, string>;
    docString?: string;
  }): { model: Uint8Array; dataChunks: Uint8Array[]; dataLength: number } {
    const model = encodeModel({
      irVersion: 8,
      opsets: opts.opsets,
      producerName: "langchain-dpr",
      producerVersion: "0.1.0",
      graphName: opts.graphName,
      nodes: this.nodes,
      initializers: this.initializers,
      inputs: opts.inputs,
      outputs: opts.outputs,
      metadata: opts.metadata,
      docString: opts.docString,
    });
    return { model, dataChunks: this.dataChunks, dataLength: this.dataLength };
  }
}

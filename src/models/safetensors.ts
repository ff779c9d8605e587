/**
 * Reading and writing the safetensors format (https://huggingface.co/docs/safetensors):
 * an 8-byte little-endian header length, a JSON header mapping tensor names to
 * `{ dtype, shape, data_offsets }` (plus optional `__metadata__` string map), then the raw
 * little-endian tensor bytes. Writes F32; reads F32, F16 and BF16 into Float32Array. Integer
 * tensors (I64, I32, I16, I8, U8, BOOL: e.g. the `embeddings.position_ids` buffer older transformers
 * versions saved) are checked like the others but not returned in `tensors`: they are listed in
 * `skipped` (I64 ones are also returned as BigInt64Array in `int64`).
 */
import { readFile } from "node:fs/promises";
import { endianness } from "node:os";
import type { BertWeights, NamedTensor } from "./types.js";
import { writeFileAtomic } from "../utils/atomic-file.js";

/** What {@link parseSafetensors} and {@link readSafetensors} return. */
export interface SafetensorsContents {
  /** The float tensors (F32, F16, BF16), as float32. */
  tensors: BertWeights;
  /** The header's `__metadata__` strings. */
  metadata: Record<string, string>;
  /** Names of the integer tensors, which `tensors` leaves out. */
  skipped: string[];
  /** The I64 tensors among `skipped`, as BigInt64Array. */
  int64: Map<string, { shape: number[]; data: BigInt64Array }>;
  /** Every tensor's dtype as the file gives it (F32, F16, BF16, I64, ...). */
  dtypes: Map<string, string>;
}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const FLOAT_DTYPES = new Set(["F32", "F16", "BF16"]);
/** Refuse absurd headers before trying to parse them (the reference implementation uses 100 MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

function assertLittleEndian(): void {
  if (endianness() !== "LE") throw new Error("safetensors: only little-endian hosts are supported");
}

/** Converts one IEEE 754 half-precision value (as uint16 bits) to a float. */
function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // subnormal or zero
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function decodeTensor(bytes: Uint8Array, dtype: string, count: number): Float32Array {
  const out = new Float32Array(count);
  if (dtype === "F32") {
    new Uint8Array(out.buffer).set(bytes);
  } else if (dtype === "F16") {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  } else {
    // BF16 is the upper half of a float32.
    const u32 = new Uint32Array(out.buffer);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < count; i++) u32[i] = view.getUint16(i * 2, true) << 16;
  }
  return out;
}

/**
 * Parses a safetensors file already in memory.
 * @param source - a path or label used in error messages.
 */
export function parseSafetensors(buffer: Uint8Array, source: string): SafetensorsContents {
  assertLittleEndian();
  const where = `safetensors (${source})`;
  if (buffer.byteLength < 8) throw new Error(`${where}: file is ${buffer.byteLength} bytes, too short for the 8-byte header length`);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > buffer.byteLength) {
    throw new Error(
      `${where}: header length ${headerLength} exceeds the file size ${buffer.byteLength} (truncated or not a safetensors file)`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(buffer.subarray(8, 8 + headerLength)));
  } catch (err) {
    throw new Error(`${where}: header is not valid UTF-8 JSON: ${(err as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new Error(`${where}: header must be a JSON object`);
  }
  const dataStart = 8 + headerLength;
  const dataLength = buffer.byteLength - dataStart;
  const tensors: BertWeights = new Map();
  let metadata: Record<string, string> = {};
  const ranges: Array<[number, number, string]> = [];
  const skipped: string[] = [];
  const int64 = new Map<string, { shape: number[]; data: BigInt64Array }>();
  const dtypes = new Map<string, string>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (
        typeof entry !== "object" ||
        entry === null ||
        Array.isArray(entry) ||
        !Object.values(entry).every((v) => typeof v === "string")
      ) {
        throw new Error(`${where}: __metadata__ must be an object of strings`);
      }
      metadata = { ...(entry as Record<string, string>) };
      continue;
    }
    if (typeof entry !== "object" || entry === null) throw new Error(`${where}: tensor '${name}' has no descriptor object`);
    const { dtype, shape, data_offsets: offsets } = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, dtype)) {
      throw new Error(`${where}: tensor '${name}' has dtype ${JSON.stringify(dtype)}; supported: ${Object.keys(DTYPE_BYTES).join(", ")}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new Error(`${where}: tensor '${name}' has invalid shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
      throw new Error(`${where}: tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    const expectedBytes = count * DTYPE_BYTES[dtype];
    if (end < begin || end - begin !== expectedBytes) {
      throw new Error(
        `${where}: tensor '${name}' ${dtype}${JSON.stringify(shape)} needs ${expectedBytes} bytes but data_offsets ` +
          `[${begin}, ${end}] span ${end - begin}`,
      );
    }
    if (end > dataLength) {
      throw new Error(
        `${where}: tensor '${name}' data_offsets end ${end} is past the end of the data (${dataLength} bytes; file truncated?)`,
      );
    }
    ranges.push([begin, end, name]);
    dtypes.set(name, dtype);
    if (!FLOAT_DTYPES.has(dtype)) {
      skipped.push(name);
      if (dtype === "I64") {
        const data = new BigInt64Array(count);
        new Uint8Array(data.buffer).set(buffer.subarray(dataStart + begin, dataStart + end));
        int64.set(name, { shape: [...(shape as number[])], data });
      }
      continue;
    }
    const bytes = buffer.subarray(dataStart + begin, dataStart + end);
    tensors.set(name, { shape: [...(shape as number[])], data: decodeTensor(bytes, dtype, count) });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) {
      throw new Error(`${where}: tensors '${ranges[i - 1][2]}' and '${ranges[i][2]}' overlap`);
    }
  }
  return { tensors, metadata, skipped, int64, dtypes };
}

/**
 * Reads a safetensors file; F16 and BF16 tensors are widened to float32.
 * @throws Error naming the file and the problem for truncated files, bad headers,
 *   unsupported dtypes, or offsets that do not match the shapes.
 */
export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  let buffer: Buffer;
  try {
    buffer = await readFile(path);
  } catch (err) {
    throw new Error(`readSafetensors: cannot read ${path}: ${(err as Error).message}`);
  }
  return parseSafetensors(buffer, path);
}

/** Encodes tensors as safetensors chunks (header, then each tensor's bytes), F32 only. */
export function encodeSafetensors(tensors: BertWeights, metadata: Record<string, string> = {}): Uint8Array[] {
  assertLittleEndian();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const names = [...tensors.keys()].sort();
  let offset = 0;
  const bodies: Uint8Array[] = [];
  for (const name of names) {
    const tensor = tensors.get(name) as NamedTensor;
    const count = tensor.shape.reduce((a, b) => a * b, 1);
    if (count !== tensor.data.length) {
      throw new Error(
        `writeSafetensors: tensor '${name}' has shape ${JSON.stringify(tensor.shape)} (${count} values) but ${tensor.data.length} values`,
      );
    }
    header[name] = { dtype: "F32", shape: tensor.shape, data_offsets: [offset, offset + tensor.data.byteLength] };
    offset += tensor.data.byteLength;
    bodies.push(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  json += " ".repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8);
  const jsonBytes = Buffer.from(json, "utf8");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(jsonBytes.byteLength));
  return [prefix, jsonBytes, ...bodies];
}

/**
 * Writes float32 tensors to a safetensors file atomically (temp file + rename), so an
 * existing file at `path` stays intact if writing fails.
 */
export async function writeSafetensors(path: string, tensors: BertWeights, metadata: Record<string, string> = {}): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

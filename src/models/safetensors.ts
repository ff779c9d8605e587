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
/**
 * Largest JSON header read, in bytes: 16 MiB. Hugging Face's reference `safetensors` allows 100 MB, but
 * real headers are far smaller (about 20 kB for BERT-base, under 1 MB for a shard of a large model; 16 MiB
 * holds some 150,000 tensor descriptors), and parsing 100 MB of JSON can take seconds and most of a GB.
 * A longer header is refused before it is decoded.
 */
export const SAFETENSORS_MAX_HEADER_BYTES = 16 * 1024 * 1024;
/**
 * Deepest nesting of `{`/`[` a header may have: a valid one has 3 (the header object, a tensor's
 * descriptor, its `shape`/`data_offsets` arrays); 8 leaves room for extra descriptor fields. Checked by a
 * linear scan of the bytes before `JSON.parse`, so deeply nested input costs no parse time or memory.
 */
export const SAFETENSORS_MAX_HEADER_DEPTH = 8;
/**
 * Fewest header bytes per `{`/`[` (after the first 64): a tensor descriptor takes 3 of them in at least
 * 50 bytes. Denser input (e.g. millions of `[]`) is refused by the same scan, before `JSON.parse`.
 */
const MIN_BYTES_PER_CONTAINER = 16;

/**
 * Linear scan of the header bytes, outside strings: the offset of the first `{`/`[` deeper than
 * `maxDepth` (or -1), and how many `{`/`[` there are.
 */
function scanNesting(bytes: Uint8Array, maxDepth: number): { tooDeepAt: number; containers: number } {
  let depth = 0;
  let containers = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      containers++;
      if (++depth > maxDepth) return { tooDeepAt: i, containers };
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return { tooDeepAt: -1, containers };
}

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
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw new Error(
      `${where}: header length ${headerLength} is over the ${SAFETENSORS_MAX_HEADER_BYTES}-byte cap ` +
        `(SAFETENSORS_MAX_HEADER_BYTES, 16 MiB); not a safetensors file or a corrupt one`,
    );
  }
  const headerEnd = 8 + Number(headerLength);
  if (headerEnd > buffer.byteLength) {
    throw new Error(
      `${where}: header length ${headerLength} exceeds the file size ${buffer.byteLength} (truncated or not a safetensors file)`,
    );
  }
  const headerBytes = buffer.subarray(8, headerEnd);
  const { tooDeepAt, containers } = scanNesting(headerBytes, SAFETENSORS_MAX_HEADER_DEPTH);
  if (tooDeepAt >= 0) {
    throw new Error(
      `${where}: header nests deeper than ${SAFETENSORS_MAX_HEADER_DEPTH} levels of {} / [] (at header byte ${tooDeepAt}); ` +
        `a safetensors header has 3 (header, tensor descriptor, shape/data_offsets)`,
    );
  }
  const maxContainers = 64 + Math.floor(headerBytes.length / MIN_BYTES_PER_CONTAINER);
  if (containers > maxContainers) {
    throw new Error(
      `${where}: header of ${headerBytes.length} bytes holds ${containers} objects/arrays, more than ${maxContainers} ` +
        `(64 + one per ${MIN_BYTES_PER_CONTAINER} bytes; a tensor descriptor has 3 in at least 50 bytes): not a safetensors header`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (err) {
    throw new Error(`${where}: header is not valid UTF-8 JSON: ${(err as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new Error(`${where}: header must be a JSON object`);
  }
  const dataStart = headerEnd;
  const dataLength = buffer.byteLength - dataStart;
  let metadata: Record<string, string> = {};
  // Pass 1: check every descriptor (dtype, shape, offsets inside the data, no overlaps) before allocating anything,
  // so the output can never be larger than the data section (twice it for F16/BF16).
  const entries: Array<{ name: string; dtype: string; shape: number[]; begin: number; end: number; count: number }> = [];
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
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${where}: tensor '${name}' has invalid shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
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
    entries.push({ name, dtype, shape: [...(shape as number[])], begin, end, count });
  }
  const byStart = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < byStart.length; i++) {
    const [prev, cur] = [byStart[i - 1], byStart[i]];
    if (cur.begin < prev.end) {
      throw new Error(
        `${where}: tensors '${prev.name}' (data_offsets [${prev.begin}, ${prev.end}]) and '${cur.name}' ` +
          `(data_offsets [${cur.begin}, ${cur.end}]) overlap; each tensor needs its own bytes`,
      );
    }
  }
  // Pass 2: decode.
  const tensors: BertWeights = new Map();
  const skipped: string[] = [];
  const int64 = new Map<string, { shape: number[]; data: BigInt64Array }>();
  const dtypes = new Map<string, string>();
  for (const { name, dtype, shape, begin, end, count } of entries) {
    dtypes.set(name, dtype);
    const bytes = buffer.subarray(dataStart + begin, dataStart + end);
    if (!FLOAT_DTYPES.has(dtype)) {
      skipped.push(name);
      if (dtype === "I64") {
        const data = new BigInt64Array(count);
        new Uint8Array(data.buffer).set(bytes);
        int64.set(name, { shape, data });
      }
      continue;
    }
    tensors.set(name, { shape, data: decodeTensor(bytes, dtype, count) });
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

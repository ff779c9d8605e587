/**
 * The vector shard file (`shard-<i>-of-<n>.vectors`) written by `langchain-dpr encode-shard` and
 * read by `langchain-dpr build-index`: a 256-byte little-endian header, then `count × dims` float32
 * values, row-major (row r is the passage at corpus position `start + r`). Its companion
 * `shard-<i>-of-<n>.ids.jsonl` holds one `{"row", "id"}` object per vector, in the same order.
 *
 * Header (all integers little-endian):
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 8 | magic `DPRSHARD` |
 * | 8 | 4 | format version (1) |
 * | 12 | 4 | dtype (1 = float32) |
 * | 16 | 4 | dims |
 * | 20 | 4 | flags (bit 0: complete) |
 * | 24 | 4 | shard i |
 * | 28 | 4 | shards n |
 * | 32 | 8 | start: corpus position of row 0 |
 * | 40 | 8 | count: rows in this shard |
 * | 48 | 8 | corpus size: passages in the whole corpus |
 * | 56 | 32 | model fingerprint (SHA-256, see fingerprint.ts) |
 * | 88 | 32 | SHA-256 of the corpus file |
 * | 120 | 32 | SHA-256 of the vector bytes after the header |
 * | 152 | 32 | SHA-256 of the ids file |
 * | 184 | 72 | reserved, zero |
 *
 * The shard ranges follow DPR's generate_dense_embeddings.py: shard size `ceil(N / n)`, shard i
 * covers `[i × size, min(N, (i + 1) × size))`, so shards 0..n-1 concatenated are the corpus in order
 * (trailing shards may be empty when n does not divide N evenly).
 *
 * @module
 */
import { open } from "node:fs/promises";
import { join } from "node:path";

/** First 8 bytes of every vector shard file. */
export const SHARD_MAGIC = "DPRSHARD";
/** The format version this module writes and reads. */
export const SHARD_FORMAT_VERSION = 1;
/** dtype code of float32 rows (the only one). */
export const SHARD_DTYPE_FLOAT32 = 1;
/** Bytes before the first vector. */
export const SHARD_HEADER_BYTES = 256;
/** Largest dims accepted in a header (faiss's own limit is far above any BERT width). */
export const SHARD_MAX_DIMS = 65_536;

const FLAG_COMPLETE = 1;
const DIGEST_BYTES = 32;
const ZERO_DIGEST = "0".repeat(2 * DIGEST_BYTES);
const OWNER = "vector shard";

/** The fields of a vector shard file's header. */
export interface ShardHeader {
  /** Floats per vector. */
  dims: number;
  /** Whether the shard was finished (its digests are set). */
  complete: boolean;
  /** This shard's number, 0-based. */
  shard: number;
  /** Number of shards the corpus was split into. */
  shards: number;
  /** Corpus position of the first row. */
  start: number;
  /** Rows (vectors) in the shard. */
  count: number;
  /** Passages in the whole corpus. */
  corpusSize: number;
  /** Model fingerprint, 64 hex characters. */
  modelFingerprint: string;
  /** SHA-256 of the corpus file, 64 hex characters. */
  corpusSha256: string;
  /** SHA-256 of the vector bytes (all zeros until complete). */
  vectorsSha256: string;
  /** SHA-256 of the ids file (all zeros until complete). */
  idsSha256: string;
}

/** The file names of shard `shard` of `shards` in `dir`. */
export interface ShardPaths {
  /** `shard-<i>-of-<n>.vectors` */
  vectors: string;
  /** `shard-<i>-of-<n>.ids.jsonl` */
  ids: string;
  /** `shard-<i>-of-<n>.partial/`: the work folder of an unfinished shard (lock, progress, partial files). */
  partialDir: string;
}

/** The base name `shard-<i>-of-<n>`. */
export function shardBaseName(shard: number, shards: number): string {
  return `shard-${shard}-of-${shards}`;
}

/** Paths of shard `shard` of `shards` inside `dir`. */
export function shardPaths(dir: string, shard: number, shards: number): ShardPaths {
  const base = join(dir, shardBaseName(shard, shards));
  return { vectors: `${base}.vectors`, ids: `${base}.ids.jsonl`, partialDir: `${base}.partial` };
}

/** Parses `shard-<i>-of-<n>.vectors` (or `.partial`); undefined for other names. */
export function parseShardFileName(name: string): { shard: number; shards: number; kind: "vectors" | "partial" } | undefined {
  const m = /^shard-(0|[1-9]\d{0,8})-of-([1-9]\d{0,8})\.(vectors|partial)$/.exec(name);
  if (!m) return undefined;
  return { shard: Number(m[1]), shards: Number(m[2]), kind: m[3] as "vectors" | "partial" };
}

/**
 * The corpus range of shard `shard` of `shards` for a corpus of `corpusSize` passages, as DPR's
 * generate_dense_embeddings.py cuts it: size `ceil(N / n)`, start `i × size`, end `min(N, start + size)`.
 */
export function shardRange(corpusSize: number, shard: number, shards: number): { start: number; count: number } {
  for (const [name, v, min] of [
    ["corpusSize", corpusSize, 0],
    ["shards", shards, 1],
    ["shard", shard, 0],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < min) throw new Error(`shardRange: ${name} must be an integer >= ${min}, got ${v}`);
  }
  if (shard >= shards) throw new Error(`shardRange: shard must be below shards (${shards}), got ${shard}`);
  const size = Math.ceil(corpusSize / shards);
  const start = Math.min(corpusSize, shard * size);
  return { start, count: Math.min(corpusSize, start + size) - start };
}

/** Bytes of a complete shard file with this header. */
export function shardFileBytes(header: Pick<ShardHeader, "count" | "dims">): number {
  return SHARD_HEADER_BYTES + header.count * header.dims * 4;
}

function putDigest(buf: Buffer, offset: number, hex: string, field: string): void {
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new Error(`encodeShardHeader: ${field} must be 64 lowercase hex characters, got ${JSON.stringify(hex)}`);
  buf.write(hex, offset, DIGEST_BYTES, "hex");
}

/** The 256 header bytes of `header`. */
export function encodeShardHeader(header: ShardHeader): Buffer {
  const buf = Buffer.alloc(SHARD_HEADER_BYTES);
  buf.write(SHARD_MAGIC, 0, "latin1");
  buf.writeUInt32LE(SHARD_FORMAT_VERSION, 8);
  buf.writeUInt32LE(SHARD_DTYPE_FLOAT32, 12);
  buf.writeUInt32LE(header.dims, 16);
  buf.writeUInt32LE(header.complete ? FLAG_COMPLETE : 0, 20);
  buf.writeUInt32LE(header.shard, 24);
  buf.writeUInt32LE(header.shards, 28);
  buf.writeBigUInt64LE(BigInt(header.start), 32);
  buf.writeBigUInt64LE(BigInt(header.count), 40);
  buf.writeBigUInt64LE(BigInt(header.corpusSize), 48);
  putDigest(buf, 56, header.modelFingerprint, "modelFingerprint");
  putDigest(buf, 88, header.corpusSha256, "corpusSha256");
  putDigest(buf, 120, header.vectorsSha256, "vectorsSha256");
  putDigest(buf, 152, header.idsSha256, "idsSha256");
  return buf;
}

/** A header field that must be a safe integer. */
function u64(buf: Buffer, offset: number, file: string, field: string): number {
  const v = buf.readBigUInt64LE(offset);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${OWNER}: ${file}: header field ${field} is ${v}, larger than any corpus`);
  return Number(v);
}

/**
 * Decodes and checks a header read from `file` (named in errors): magic, version, dtype, dims in
 * 1..65536, shard < shards, start + count <= corpus size, reserved bytes zero.
 */
export function decodeShardHeader(buf: Uint8Array, file: string): ShardHeader {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < SHARD_HEADER_BYTES) {
    throw new Error(`${OWNER}: ${file} is truncated: expected a ${SHARD_HEADER_BYTES}-byte header, got ${b.length} bytes`);
  }
  const magic = b.toString("latin1", 0, 8);
  if (magic !== SHARD_MAGIC) {
    throw new Error(`${OWNER}: ${file} is not a vector shard file: expected magic ${SHARD_MAGIC}, got ${JSON.stringify(magic)}`);
  }
  const version = b.readUInt32LE(8);
  if (version !== SHARD_FORMAT_VERSION) {
    throw new Error(`${OWNER}: ${file} has format version ${version}; this langchain-dpr reads version ${SHARD_FORMAT_VERSION}`);
  }
  const dtype = b.readUInt32LE(12);
  if (dtype !== SHARD_DTYPE_FLOAT32)
    throw new Error(`${OWNER}: ${file} has dtype code ${dtype}; expected ${SHARD_DTYPE_FLOAT32} (float32)`);
  const dims = b.readUInt32LE(16);
  if (dims < 1 || dims > SHARD_MAX_DIMS) throw new Error(`${OWNER}: ${file} has dims ${dims}; expected 1..${SHARD_MAX_DIMS}`);
  const flags = b.readUInt32LE(20);
  if ((flags & ~FLAG_COMPLETE) !== 0) throw new Error(`${OWNER}: ${file} has unknown header flags 0x${flags.toString(16)}`);
  const shard = b.readUInt32LE(24);
  const shards = b.readUInt32LE(28);
  if (shards < 1 || shard >= shards) throw new Error(`${OWNER}: ${file} says shard ${shard} of ${shards}; expected shard < shards`);
  const start = u64(b, 32, file, "start");
  const count = u64(b, 40, file, "count");
  const corpusSize = u64(b, 48, file, "corpus size");
  if (start + count > corpusSize) {
    throw new Error(
      `${OWNER}: ${file} covers rows [${start}, ${start + count}) of a corpus of ${corpusSize}; expected start + count <= corpus size`,
    );
  }
  for (let i = 184; i < SHARD_HEADER_BYTES; i++) {
    if (b[i] !== 0) throw new Error(`${OWNER}: ${file} has a non-zero reserved header byte at offset ${i}`);
  }
  return {
    dims,
    complete: (flags & FLAG_COMPLETE) !== 0,
    shard,
    shards,
    start,
    count,
    corpusSize,
    modelFingerprint: b.toString("hex", 56, 88),
    corpusSha256: b.toString("hex", 88, 120),
    vectorsSha256: b.toString("hex", 120, 152),
    idsSha256: b.toString("hex", 152, 184),
  };
}

/** The all-zero digest of an unfinished shard's header. */
export const EMPTY_DIGEST = ZERO_DIGEST;

/**
 * Reads and checks the header of a finished shard file, and its size against the header: a
 * shorter or longer file is an error naming both sizes. `file` must exist.
 */
export async function readShardHeader(file: string): Promise<ShardHeader> {
  const handle = await open(file, "r");
  try {
    const size = (await handle.stat()).size;
    const buf = Buffer.alloc(Math.min(size, SHARD_HEADER_BYTES));
    await readFully(handle, buf, 0, file);
    const header = decodeShardHeader(buf, file);
    const expected = shardFileBytes(header);
    if (size !== expected) {
      throw new Error(
        `${OWNER}: ${file} is ${size < expected ? "truncated" : "longer than its header says"}: expected ${expected} bytes ` +
          `(${SHARD_HEADER_BYTES}-byte header + ${header.count} rows × ${header.dims} dims × 4), got ${size}`,
      );
    }
    if (!header.complete) throw new Error(`${OWNER}: ${file} is not marked complete (its encoding never finished)`);
    return header;
  } finally {
    await handle.close();
  }
}

/** Reads exactly `buf.length` bytes at `position`, or throws when the file ends first. */
export async function readFully(
  handle: { read(buf: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }> },
  buf: Uint8Array,
  position: number,
  file: string,
): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await handle.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new Error(`${OWNER}: ${file} ends at byte ${position + done}; expected ${buf.length} bytes at ${position}`);
    done += bytesRead;
  }
}

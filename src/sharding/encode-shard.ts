/**
 * `encodeShard`: encodes shard i of n of a corpus with a DPR passage encoder into a vector shard
 * file (shard-file.ts) and its ids file, resumably. The pattern of DPR's
 * generate_dense_embeddings.py (`shard_id` / `num_shards`): n processes on one machine, or n
 * machines with a shared folder, each encode one contiguous range; `buildIndexFromShards` then
 * builds one FaissDPRStore from all of them.
 *
 * Resuming: the shard is written in chunks of `chunkRows` passages inside `shard-<i>-of-<n>.partial/`
 * (held by a `.lock` of this process). After each chunk both partial files are fsynced and then
 * `progress.json` (rows done, SHA-256 of the vector bytes and of the ids bytes so far) is replaced
 * atomically. A rerun after a kill checks the partial files against those digests, cuts off what
 * was written after the last recorded chunk and continues from there; chunk boundaries are fixed
 * positions of the shard, so the result is bit-identical to an uninterrupted run. The finished
 * files are renamed into place (the `.vectors` rename last: its presence means "complete"); a
 * finished shard is checked and skipped on rerun.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { endianness } from "node:os";
import { mkdir, open, readFile, rename, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";

import type { Document } from "@langchain/core/documents";

import { streamBeirCorpus } from "../data/beir.js";
import { DPREmbeddings } from "../embeddings/dpr-embeddings.js";
import { fsyncDir, writeFileAtomic } from "../utils/atomic-file.js";
import { checksumFile } from "../utils/checksum.js";
import { acquireDirLock } from "../utils/dir-lock.js";
import { pathExists } from "../utils/fs.js";
import { documentPassage, passageDocument, passageEncoderFingerprint, resolveCorpusFile } from "./fingerprint.js";
import {
  decodeShardHeader,
  EMPTY_DIGEST,
  encodeShardHeader,
  readFully,
  readShardHeader,
  SHARD_HEADER_BYTES,
  shardPaths,
  shardRange,
  type ShardHeader,
  type ShardPaths,
} from "./shard-file.js";

const WHO = "encode-shard";

/** Default passages per onnxruntime batch. */
export const DEFAULT_SHARD_BATCH_SIZE = 64;
/** Default passages per chunk (the unit of progress and resume). */
export const DEFAULT_SHARD_CHUNK_ROWS = 1024;

/** Options of {@link encodeShard}. */
export interface EncodeShardOptions {
  /** DPR model folder (its passage encoder encodes). */
  model: string;
  /** BEIR folder (corpus.jsonl) or a BEIR-format corpus.jsonl. */
  corpus: string;
  /** This shard, 0-based. */
  shard: number;
  /** Number of shards. */
  shards: number;
  /** Output folder (shared by all shards). */
  out: string;
  /** Passages per onnxruntime batch (default 64); batches are formed from length-sorted passages of a chunk. */
  batchSize?: number;
  /** Passages per chunk, the unit of progress and resume (default 1024). A resume must use the same value. */
  chunkRows?: number;
  /** onnxruntime intra-op threads (default: one per core). */
  threads?: number;
  /** Run the passage encoder's model_quantized.onnx. */
  quantized?: boolean;
  /** Sleep this long after each chunk (throttling a shared machine; tests). */
  throttleMs?: number;
  /** Called after each chunk. */
  onProgress?: (progress: EncodeShardProgress) => void;
  /** Notes (resume, skip) one line each. */
  log?: (line: string) => void;
}

/** What {@link EncodeShardOptions.onProgress} receives. */
export interface EncodeShardProgress {
  shard: number;
  shards: number;
  /** Rows of this shard written so far (including rows of earlier runs). */
  rowsDone: number;
  /** Rows in this shard. */
  count: number;
  /** Passages encoded by this run per second of this run. */
  passagesPerSecond: number;
}

/** What {@link encodeShard} did. */
export interface EncodeShardResult {
  /** `encoded` from row 0, `resumed` from an earlier run's progress, `skipped`: already complete. */
  status: "encoded" | "resumed" | "skipped";
  vectorsPath: string;
  idsPath: string;
  shard: number;
  shards: number;
  /** Corpus position of the shard's first row. */
  start: number;
  /** Rows in the shard. */
  count: number;
  corpusSize: number;
  dims: number;
  modelFingerprint: string;
  /** Rows encoded by this run. */
  rowsEncoded: number;
  /** Seconds this run spent reading, encoding and writing rows. */
  seconds: number;
  /** rowsEncoded / seconds (0 when nothing was encoded). */
  passagesPerSecond: number;
}

/** The progress file of an unfinished shard (`<shard>.partial/progress.json`). */
interface ShardProgress {
  format: "langchain-dpr-shard-progress";
  version: 1;
  shard: number;
  shards: number;
  start: number;
  count: number;
  corpusSize: number;
  dims: number;
  modelFingerprint: string;
  corpusSha256: string;
  batchSize: number;
  chunkRows: number;
  rowsDone: number;
  vectorsSha256: string;
  idsBytes: number;
  idsSha256: string;
}

interface Settings {
  model: string;
  corpus: string;
  shard: number;
  shards: number;
  out: string;
  batchSize: number;
  chunkRows: number;
  threads?: number;
  quantized: boolean;
  throttleMs: number;
  onProgress?: (progress: EncodeShardProgress) => void;
  log: (line: string) => void;
}

function checkInt(name: string, value: unknown, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new Error(`${WHO}: ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

function settingsOf(o: EncodeShardOptions): Settings {
  for (const key of ["model", "corpus", "out"] as const) {
    if (typeof o[key] !== "string" || o[key] === "")
      throw new Error(`${WHO}: ${key} must be a non-empty path, got ${JSON.stringify(o[key])}`);
  }
  const shards = checkInt("shards", o.shards, 1);
  const shard = checkInt("shard", o.shard, 0);
  if (shard >= shards)
    throw new Error(`${WHO}: shard must be below shards (${shards}), got ${shard}; shards are numbered 0..${shards - 1}`);
  return {
    model: o.model,
    corpus: o.corpus,
    out: o.out,
    shard,
    shards,
    batchSize: checkInt("batchSize", o.batchSize ?? DEFAULT_SHARD_BATCH_SIZE, 1),
    chunkRows: checkInt("chunkRows", o.chunkRows ?? DEFAULT_SHARD_CHUNK_ROWS, 1),
    threads: o.threads === undefined ? undefined : checkInt("threads", o.threads, 1),
    quantized: o.quantized ?? false,
    throttleMs: checkInt("throttleMs", o.throttleMs ?? 0, 0),
    onProgress: o.onProgress,
    log: o.log ?? (() => undefined),
  };
}

/**
 * Encodes shard `shard` of `shards` of the corpus into `<out>/shard-<i>-of-<n>.vectors` and
 * `<out>/shard-<i>-of-<n>.ids.jsonl`, resuming an interrupted run and skipping a finished shard.
 * The shard's range is DPR's: `start = i × ceil(N / n)`. Vectors are those FaissDPRStore.addDocuments
 * computes with DPREmbeddings for the Documents `build-index` makes (title from the corpus).
 *
 * @throws Error naming the file and the fix for: shard >= shards, an empty corpus, a finished shard
 *   or a progress file from another model, corpus, batch size or chunk size, a corpus that changes
 *   length while being read, a non-finite vector (naming the corpus row and id).
 */
export async function encodeShard(options: EncodeShardOptions): Promise<EncodeShardResult> {
  const s = settingsOf(options);
  if (endianness() !== "LE") throw new Error(`${WHO}: vector shard files are little-endian; this host is big-endian`);
  const corpusFile = await resolveCorpusFile(s.corpus, WHO);
  await mkdir(s.out, { recursive: true });
  const paths = shardPaths(s.out, s.shard, s.shards);
  const embeddings = new DPREmbeddings({
    modelPath: s.model,
    batchSize: s.batchSize,
    intraOpNumThreads: s.threads,
    quantized: s.quantized,
  });
  try {
    const fingerprint = await passageEncoderFingerprint(embeddings);
    const corpusSha256 = (await checksumFile(corpusFile)).sha256;
    const job: Job = {
      s,
      paths,
      corpusFile,
      corpusSha256,
      modelFingerprint: fingerprint.digest,
      dims: fingerprint.description.dims,
      embeddings,
    };
    if (await pathExists(paths.vectors)) return await finishedShard(job);
    await mkdir(paths.partialDir, { recursive: true });
    const lock = await acquireDirLock(paths.partialDir, WHO);
    try {
      // another process may have finished it while this one waited for the model
      if (await pathExists(paths.vectors)) return await finishedShard(job);
      return await encodeLocked(job);
    } finally {
      await lock.release();
    }
  } finally {
    await embeddings.dispose();
  }
}

interface Job {
  s: Settings;
  paths: ShardPaths;
  corpusFile: string;
  corpusSha256: string;
  modelFingerprint: string;
  dims: number;
  embeddings: DPREmbeddings;
}

function redo(job: Job): string {
  return `delete ${job.paths.vectors} and ${job.paths.ids} to encode shard ${job.s.shard} again`;
}

/** A shard whose .vectors file exists: checked against this model and corpus, then skipped. */
async function finishedShard(job: Job): Promise<EncodeShardResult> {
  const { s, paths } = job;
  let header: ShardHeader;
  try {
    header = await readShardHeader(paths.vectors);
  } catch (err) {
    throw new Error(`${WHO}: ${(err as Error).message}; ${redo(job)}`);
  }
  const mismatch =
    header.shard !== s.shard || header.shards !== s.shards
      ? `its header says shard ${header.shard} of ${header.shards}`
      : header.modelFingerprint !== job.modelFingerprint
        ? `it was encoded by another model (fingerprint ${header.modelFingerprint.slice(0, 16)}…, --model ${s.model} has ` +
          `${job.modelFingerprint.slice(0, 16)}…)`
        : header.corpusSha256 !== job.corpusSha256
          ? `it was encoded from another corpus (SHA-256 ${header.corpusSha256.slice(0, 16)}…, ${job.corpusFile} has ` +
            `${job.corpusSha256.slice(0, 16)}…)`
          : header.dims !== job.dims
            ? `it has ${header.dims} dims, the model ${job.dims}`
            : undefined;
  if (mismatch) throw new Error(`${WHO}: ${paths.vectors} already exists and ${mismatch}; ${redo(job)}`);
  if (!(await pathExists(paths.ids))) throw new Error(`${WHO}: ${paths.vectors} is complete but ${paths.ids} is missing; ${redo(job)}`);
  const ids = await checksumFile(paths.ids);
  if (ids.sha256 !== header.idsSha256) {
    throw new Error(`${WHO}: ${paths.ids} does not match ${paths.vectors} (SHA-256 differs from the one in its header); ${redo(job)}`);
  }
  s.log(`${WHO}: shard ${s.shard} of ${s.shards} is already complete (${header.count} rows in ${paths.vectors}); skipped`);
  return result(job, "skipped", header, 0, 0);
}

function result(job: Job, status: EncodeShardResult["status"], h: ShardHeader, rowsEncoded: number, seconds: number): EncodeShardResult {
  return {
    status,
    vectorsPath: job.paths.vectors,
    idsPath: job.paths.ids,
    shard: h.shard,
    shards: h.shards,
    start: h.start,
    count: h.count,
    corpusSize: h.corpusSize,
    dims: h.dims,
    modelFingerprint: h.modelFingerprint,
    rowsEncoded,
    seconds,
    passagesPerSecond: seconds > 0 ? rowsEncoded / seconds : 0,
  };
}

/** Passages in a BEIR corpus file (every record parsed and checked by streamBeirCorpus). */
async function countPassages(corpusFile: string): Promise<number> {
  let n = 0;
  for await (const _ of streamBeirCorpus(corpusFile)) n++;
  return n;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Reads `<partial>/progress.json`; undefined when absent; an Error naming the field when malformed. */
async function readProgress(file: string, partialDir: string): Promise<ShardProgress | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  const fix = `delete ${partialDir} to start the shard over`;
  let p: Record<string, unknown>;
  try {
    p = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${WHO}: ${file} is not JSON (${(err as Error).message}); ${fix}`);
  }
  if (typeof p !== "object" || p === null || p.format !== "langchain-dpr-shard-progress" || p.version !== 1) {
    throw new Error(`${WHO}: ${file} is not a version 1 shard progress file; ${fix}`);
  }
  for (const key of ["shard", "shards", "start", "count", "corpusSize", "dims", "batchSize", "chunkRows", "rowsDone", "idsBytes"]) {
    const v = p[key];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      throw new Error(`${WHO}: ${file}: field "${key}" must be an integer >= 0, got ${JSON.stringify(v)}; ${fix}`);
    }
  }
  for (const key of ["modelFingerprint", "corpusSha256", "vectorsSha256", "idsSha256"]) {
    if (typeof p[key] !== "string" || !HEX64.test(p[key] as string)) {
      throw new Error(`${WHO}: ${file}: field "${key}" must be 64 hex characters, got ${JSON.stringify(p[key])}; ${fix}`);
    }
  }
  const q = p as unknown as ShardProgress;
  if (q.rowsDone > q.count) throw new Error(`${WHO}: ${file}: rowsDone ${q.rowsDone} exceeds count ${q.count}; ${fix}`);
  return q;
}

/** Refuses to resume progress made with other settings, naming the setting and the fix. */
function checkResumable(job: Job, p: ShardProgress, file: string): void {
  const { s } = job;
  const fix = `delete ${job.paths.partialDir} to start the shard over`;
  const differs = (what: string, then: string | number, now: string | number, howToKeep?: string) =>
    new Error(`${WHO}: ${file} was written with ${what} ${then}, this run has ${now}; ${howToKeep ? `${howToKeep}, or ` : ""}${fix}`);
  if (p.shard !== s.shard || p.shards !== s.shards) throw differs("shard", `${p.shard} of ${p.shards}`, `${s.shard} of ${s.shards}`);
  if (p.modelFingerprint !== job.modelFingerprint) {
    throw differs(
      "a model of fingerprint",
      `${p.modelFingerprint.slice(0, 16)}…`,
      `${job.modelFingerprint.slice(0, 16)}… (--model ${s.model})`,
    );
  }
  if (p.corpusSha256 !== job.corpusSha256) {
    throw differs("a corpus of SHA-256", `${p.corpusSha256.slice(0, 16)}…`, `${job.corpusSha256.slice(0, 16)}… (${job.corpusFile})`);
  }
  if (p.dims !== job.dims) throw differs("dims", p.dims, job.dims);
  if (p.batchSize !== s.batchSize) throw differs("--batch-size", p.batchSize, s.batchSize, `rerun with --batch-size ${p.batchSize}`);
  if (p.chunkRows !== s.chunkRows) throw differs("--chunk-rows", p.chunkRows, s.chunkRows, `rerun with --chunk-rows ${p.chunkRows}`);
  const range = shardRange(p.corpusSize, s.shard, s.shards);
  if (range.start !== p.start || range.count !== p.count) {
    throw new Error(
      `${WHO}: ${file} says rows [${p.start}, ${p.start + p.count}), expected [${range.start}, ${range.start + range.count}); ${fix}`,
    );
  }
}

/** Feeds `length` bytes of `handle` from `position` into `hash`; false when the file is shorter. */
async function hashRange(handle: FileHandle, position: number, length: number, hash: Hash): Promise<boolean> {
  const size = (await handle.stat()).size;
  if (size < position + length) return false;
  const buf = Buffer.allocUnsafe(Math.min(length, 1 << 22));
  for (let done = 0; done < length;) {
    const n = Math.min(buf.length, length - done);
    await readFully(handle, buf.subarray(0, n), position + done, "partial shard file");
    hash.update(buf.subarray(0, n));
    done += n;
  }
  return true;
}

async function writeAll(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < data.byteLength;) {
    const { bytesWritten } = await handle.write(data, done, data.byteLength - done, position + done);
    done += bytesWritten;
  }
}

async function openOrCreate(file: string): Promise<FileHandle> {
  try {
    return await open(file, "r+");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    return open(file, "w+");
  }
}

async function encodeLocked(job: Job): Promise<EncodeShardResult> {
  const { s, paths } = job;
  const progressFile = join(paths.partialDir, "progress.json");
  const vectorsFile = join(paths.partialDir, "vectors.partial");
  const idsFile = join(paths.partialDir, "ids.partial");
  const previous = await readProgress(progressFile, paths.partialDir);
  if (previous) checkResumable(job, previous, progressFile);
  // killed between the two renames of the finish: the ids file already moved out, the vectors not
  if (previous && previous.rowsDone > 0 && !(await pathExists(idsFile)) && (await pathExists(paths.ids))) await rename(paths.ids, idsFile);

  const corpusSize = previous?.corpusSize ?? (await countPassages(job.corpusFile));
  if (corpusSize === 0) throw new Error(`${WHO}: the corpus ${job.corpusFile} has no passages`);
  const { start, count } = shardRange(corpusSize, s.shard, s.shards);
  const rowBytes = job.dims * 4;
  const header: ShardHeader = {
    dims: job.dims,
    complete: false,
    shard: s.shard,
    shards: s.shards,
    start,
    count,
    corpusSize,
    modelFingerprint: job.modelFingerprint,
    corpusSha256: job.corpusSha256,
    vectorsSha256: EMPTY_DIGEST,
    idsSha256: EMPTY_DIGEST,
  };

  const vh = await openOrCreate(vectorsFile);
  const ih = await openOrCreate(idsFile).catch(async (err: unknown) => {
    await vh.close();
    throw err;
  });
  try {
    let rowsDone = 0;
    let idsBytes = 0;
    let vectorsHash = createHash("sha256");
    let idsHash = createHash("sha256");
    if (previous && previous.rowsDone > 0) {
      const why = await checkPartial(vh, ih, header, previous, vectorsHash, idsHash);
      if (why === undefined) {
        rowsDone = previous.rowsDone;
        idsBytes = previous.idsBytes;
        s.log(`${WHO}: shard ${s.shard} of ${s.shards}: resuming at row ${rowsDone} of ${count} (${paths.partialDir})`);
      } else {
        s.log(`${WHO}: shard ${s.shard} of ${s.shards}: ${why}; starting the shard over`);
        vectorsHash = createHash("sha256");
        idsHash = createHash("sha256");
      }
    }
    // cut off whatever was written after the last recorded chunk
    await vh.truncate(SHARD_HEADER_BYTES + rowsDone * rowBytes);
    await ih.truncate(idsBytes);
    if (rowsDone === 0) await writeAll(vh, encodeShardHeader(header), 0);
    const status = rowsDone > 0 ? "resumed" : "encoded";

    const saveProgress = async (): Promise<void> => {
      const p: ShardProgress = {
        format: "langchain-dpr-shard-progress",
        version: 1,
        shard: s.shard,
        shards: s.shards,
        start,
        count,
        corpusSize,
        dims: job.dims,
        modelFingerprint: job.modelFingerprint,
        corpusSha256: job.corpusSha256,
        batchSize: s.batchSize,
        chunkRows: s.chunkRows,
        rowsDone,
        vectorsSha256: vectorsHash.copy().digest("hex"),
        idsBytes,
        idsSha256: idsHash.copy().digest("hex"),
      };
      await writeFileAtomic(progressFile, `${JSON.stringify(p, null, 2)}\n`);
    };
    await vh.sync();
    await ih.sync();
    await saveProgress();

    const t0 = performance.now();
    let encodedHere = 0;
    const rate = (): number => {
      const sec = (performance.now() - t0) / 1000;
      return sec > 0 ? encodedHere / sec : 0;
    };
    const writeChunk = async (docs: Document[]): Promise<void> => {
      const m = await job.embeddings.embedPassagesMatrix(docs.map(documentPassage));
      if (m.count !== docs.length || m.dim !== job.dims) {
        throw new Error(`${WHO}: the encoder returned ${m.count} × ${m.dim} for ${docs.length} passages of ${job.dims} dims`);
      }
      for (let i = 0; i < m.data.length; i++) {
        if (!Number.isFinite(m.data[i]!)) {
          const r = Math.floor(i / job.dims);
          throw new Error(
            `${WHO}: the vector of corpus row ${start + rowsDone + r} (id ${JSON.stringify(docs[r]!.id)}) has a non-finite value ` +
              `${m.data[i]} at component ${i % job.dims}; the model produced NaN/Infinity (check its weights)`,
          );
        }
      }
      const bytes = new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength);
      const idsText = docs.map((d, j) => `${JSON.stringify({ row: start + rowsDone + j, id: d.id })}\n`).join("");
      const idsBuf = Buffer.from(idsText, "utf8");
      await writeAll(vh, bytes, SHARD_HEADER_BYTES + rowsDone * rowBytes);
      await writeAll(ih, idsBuf, idsBytes);
      await vh.sync();
      await ih.sync();
      vectorsHash.update(bytes);
      idsHash.update(idsBuf);
      rowsDone += docs.length;
      idsBytes += idsBuf.length;
      encodedHere += docs.length;
      await saveProgress();
      s.onProgress?.({ shard: s.shard, shards: s.shards, rowsDone, count, passagesPerSecond: rate() });
      if (s.throttleMs > 0) await new Promise((r) => setTimeout(r, s.throttleMs));
    };

    if (rowsDone < count) {
      const from = start + rowsDone;
      const end = start + count;
      let pos = 0;
      let chunk: Document[] = [];
      for await (const passage of streamBeirCorpus(job.corpusFile)) {
        if (pos >= end) break;
        if (pos++ < from) continue;
        chunk.push(passageDocument(passage));
        if (chunk.length === s.chunkRows || pos === end) {
          await writeChunk(chunk);
          chunk = [];
        }
      }
      if (rowsDone < count) {
        throw new Error(
          `${WHO}: ${job.corpusFile} ended after ${pos} passages; shard ${s.shard} of ${s.shards} needs rows [${start}, ${end}) ` +
            `of ${corpusSize} (the corpus changed while being read?)`,
        );
      }
    }
    const seconds = (performance.now() - t0) / 1000;

    // finish: digests into the header, then the ids file and (last) the vectors file into place
    const done: ShardHeader = { ...header, complete: true, vectorsSha256: vectorsHash.digest("hex"), idsSha256: idsHash.digest("hex") };
    await writeAll(vh, encodeShardHeader(done), 0);
    await vh.sync();
    await vh.close();
    await ih.close();
    await rename(idsFile, paths.ids);
    await fsyncDir(s.out);
    await rename(vectorsFile, paths.vectors);
    await fsyncDir(s.out);
    await rm(paths.partialDir, { recursive: true, force: true });
    return result(job, status, done, encodedHere, seconds);
  } finally {
    await vh.close().catch(() => undefined);
    await ih.close().catch(() => undefined);
  }
}

/**
 * Checks the partial files of an interrupted run against its progress: the header fields and the
 * SHA-256 of the first `rowsDone` rows and `idsBytes` ids bytes (feeding both hashes, so the run
 * continues them). Returns why it cannot resume, or undefined.
 */
async function checkPartial(
  vh: FileHandle,
  ih: FileHandle,
  header: ShardHeader,
  p: ShardProgress,
  vectorsHash: Hash,
  idsHash: Hash,
): Promise<string | undefined> {
  const head = Buffer.alloc(SHARD_HEADER_BYTES);
  if ((await vh.stat()).size < SHARD_HEADER_BYTES) return "the partial vectors file has no header";
  await readFully(vh, head, 0, "partial vectors file");
  let h: ShardHeader;
  try {
    h = decodeShardHeader(head, "partial vectors file");
  } catch (err) {
    return (err as Error).message;
  }
  for (const key of ["dims", "shard", "shards", "start", "count", "corpusSize", "modelFingerprint", "corpusSha256"] as const) {
    if (h[key] !== header[key]) return `the partial vectors file's header has ${key} ${h[key]}, expected ${header[key]}`;
  }
  if (!(await hashRange(vh, SHARD_HEADER_BYTES, p.rowsDone * header.dims * 4, vectorsHash))) {
    return `the partial vectors file is shorter than the ${p.rowsDone} rows its progress file records`;
  }
  if (vectorsHash.copy().digest("hex") !== p.vectorsSha256)
    return "the partial vectors file does not match the SHA-256 in its progress file";
  if (!(await hashRange(ih, 0, p.idsBytes, idsHash)))
    return `the partial ids file is shorter than the ${p.idsBytes} bytes its progress file records`;
  if (idsHash.copy().digest("hex") !== p.idsSha256) return "the partial ids file does not match the SHA-256 in its progress file";
  return undefined;
}

/**
 * `buildIndexFromShards`: one FaissDPRStore from the vector shards `encodeShard` wrote. Every shard
 * is checked first (all n present, one n, one dims, one model, the corpus they were encoded from,
 * their sizes and ids files), an index that needs training is trained on a seeded random sample of
 * rows read from the shards, and all vectors are then added shard by shard in batches, the ids of
 * each row compared with the corpus order, so the whole corpus is never held twice. The result is
 * saved as a FaissDPRStore folder (`FaissDPRStore.load` opens it).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { endianness } from "node:os";
import { open, readdir, type FileHandle } from "node:fs/promises";

import type { Document } from "@langchain/core/documents";
import { Embeddings, type EmbeddingsInterface } from "@langchain/core/embeddings";

import { streamBeirCorpus } from "../data/beir.js";
import { readJsonLines } from "../data/jsonl.js";
import type { Passage } from "../data/types.js";
import { DPREmbeddings } from "../embeddings/dpr-embeddings.js";
import { checksumFile } from "../utils/checksum.js";
import { isDirectory, pathExists } from "../utils/fs.js";
import { SeededRandom } from "../utils/random.js";
import { FaissDPRStore } from "../vectorstores/faiss-dpr-store.js";
import { trainingRule } from "../vectorstores/training-rule.js";
import { passageDocument, passageEncoderFingerprint, resolveCorpusFile } from "./fingerprint.js";
import {
  parseShardFileName,
  readFully,
  readShardHeader,
  SHARD_HEADER_BYTES,
  shardPaths,
  shardRange,
  type ShardHeader,
} from "./shard-file.js";

const WHO = "build-index";

/** Default rows per add (read from a shard, then handed to faiss). */
export const DEFAULT_ADD_BATCH_ROWS = 10_000;
/** Smallest default training sample (when 39 × the centroid count is less). */
export const MIN_DEFAULT_TRAIN_SAMPLE = 100_000;

/** Options of {@link buildIndexFromShards}. */
export interface BuildIndexOptions {
  /** Folder holding `shard-<i>-of-<n>.vectors` and `.ids.jsonl` files. */
  shards: string;
  /** The corpus the shards were encoded from (BEIR folder or corpus.jsonl). */
  corpus: string;
  /** Store folder to write. */
  out: string;
  /** faiss index_factory string (default "Flat"). */
  factory?: string;
  /**
   * Rows the index is trained on when it needs training (default max(39 × its largest centroid
   * count, 100,000), at most the corpus size); drawn at random with {@link seed}.
   */
  trainSample?: number;
  /** Seed of the training sample (default 42). */
  seed?: number;
  /** DPR model folder: when given, the shards must have been encoded by its passage encoder. */
  model?: string;
  /** Whether `model` runs model_quantized.onnx (as encode-shard --quantized). */
  quantized?: boolean;
  /** Default IVF nprobe saved with the store. */
  nprobe?: number;
  /** Default HNSW efSearch saved with the store. */
  efSearch?: number;
  /** faiss OpenMP threads. */
  threads?: number;
  /** Rows per add (default 10,000). */
  addBatchRows?: number;
  /** Called after each add batch. */
  onProgress?: (progress: BuildIndexProgress) => void;
  /** Notes (training) one line each. */
  log?: (line: string) => void;
}

/** What {@link BuildIndexOptions.onProgress} receives. */
export interface BuildIndexProgress {
  /** Vectors added so far. */
  added: number;
  /** Vectors in all shards. */
  total: number;
  /** Vectors added per second. */
  vectorsPerSecond: number;
}

/** One checked shard. */
export interface CheckedShard {
  header: ShardHeader;
  vectorsPath: string;
  idsPath: string;
}

/** The checked shard set of a folder. */
export interface ShardSet {
  /** Shards in order 0..n-1. */
  shards: CheckedShard[];
  dims: number;
  corpusSize: number;
  modelFingerprint: string;
  corpusFile: string;
  corpusSha256: string;
}

/** What {@link buildIndexFromShards} did. */
export interface BuildIndexResult {
  out: string;
  factory: string;
  shards: number;
  count: number;
  dims: number;
  /** Rows the index was trained on (0: it needed no training). */
  trainedOn: number;
  trainSeconds: number;
  addSeconds: number;
  saveSeconds: number;
}

/**
 * Checks every shard of `folder` against each other and against the corpus: all of 0..n-1 present
 * with one n, each file's header and size (truncation named with both sizes), completion, one dims,
 * one model fingerprint (equal to `model`'s when given), ranges that tile the corpus as
 * `shardRange` cuts it, the corpus's SHA-256, and each ids file's SHA-256. The ids themselves are
 * compared with the corpus while building.
 */
export async function checkShards(
  folder: string,
  corpus: string,
  opts: { model?: { digest: string; path: string } } = {},
): Promise<ShardSet> {
  if (!(await isDirectory(folder))) throw new Error(`${WHO}: --shards ${folder} is not a folder`);
  const corpusFile = await resolveCorpusFile(corpus, WHO);
  const names = await readdir(folder);
  const found = names.map((name) => ({ name, parsed: parseShardFileName(name) })).filter((f) => f.parsed !== undefined);
  const vectorFiles = found.filter((f) => f.parsed!.kind === "vectors");
  if (vectorFiles.length === 0) {
    const partial = found.find((f) => f.parsed!.kind === "partial");
    throw new Error(
      `${WHO}: no shard-<i>-of-<n>.vectors files in ${folder}` +
        (partial ? ` (${partial.name} is unfinished: rerun encode-shard for it)` : " (write them with langchain-dpr encode-shard)"),
    );
  }
  const counts = new Map<number, string>();
  for (const f of vectorFiles) if (!counts.has(f.parsed!.shards)) counts.set(f.parsed!.shards, f.name);
  if (counts.size > 1) {
    const list = [...counts].map(([n, name]) => `${name} (${n} shards)`).join(", ");
    throw new Error(`${WHO}: ${folder} mixes shards of different counts: ${list}; keep one set (one --shards value) in the folder`);
  }
  const n = vectorFiles[0]!.parsed!.shards;
  const shards: CheckedShard[] = [];
  for (let i = 0; i < n; i++) {
    const paths = shardPaths(folder, i, n);
    if (!(await pathExists(paths.vectors))) {
      const unfinished = await pathExists(paths.partialDir);
      throw new Error(
        `${WHO}: missing shard ${i} of ${n}: ${paths.vectors} not found` +
          (unfinished
            ? ` (${paths.partialDir} is unfinished: rerun langchain-dpr encode-shard --shard ${i} --shards ${n} to finish it)`
            : ` (encode it with langchain-dpr encode-shard --shard ${i} --shards ${n})`),
      );
    }
    let header: ShardHeader;
    try {
      header = await readShardHeader(paths.vectors);
    } catch (err) {
      throw new Error(`${WHO}: shard ${i} of ${n}: ${(err as Error).message}; encode it again (delete it, then encode-shard --shard ${i})`);
    }
    if (header.shard !== i || header.shards !== n) {
      throw new Error(
        `${WHO}: ${paths.vectors} holds shard ${header.shard} of ${header.shards} by its header, not ${i} of ${n} (renamed?)`,
      );
    }
    if (!(await pathExists(paths.ids)))
      throw new Error(`${WHO}: shard ${i} of ${n}: ${paths.ids} is missing (it is written with the .vectors file)`);
    shards.push({ header, vectorsPath: paths.vectors, idsPath: paths.ids });
  }
  const first = shards[0]!.header;
  for (const { header: h, vectorsPath } of shards) {
    if (h.dims !== first.dims) throw new Error(`${WHO}: ${vectorsPath} has ${h.dims} dims, ${shards[0]!.vectorsPath} has ${first.dims}`);
    if (h.modelFingerprint !== first.modelFingerprint) {
      throw new Error(
        `${WHO}: ${vectorsPath} was encoded by another model than ${shards[0]!.vectorsPath} (fingerprint ` +
          `${h.modelFingerprint.slice(0, 16)}… vs ${first.modelFingerprint.slice(0, 16)}…); encode all shards with one model`,
      );
    }
    if (h.corpusSize !== first.corpusSize || h.corpusSha256 !== first.corpusSha256) {
      throw new Error(
        `${WHO}: ${vectorsPath} was encoded from another corpus than ${shards[0]!.vectorsPath} ` +
          `(${h.corpusSize} passages, SHA-256 ${h.corpusSha256.slice(0, 16)}… vs ${first.corpusSize}, ${first.corpusSha256.slice(0, 16)}…)`,
      );
    }
    const range = shardRange(h.corpusSize, h.shard, h.shards);
    if (range.start !== h.start || range.count !== h.count) {
      throw new Error(
        `${WHO}: ${vectorsPath} covers rows [${h.start}, ${h.start + h.count}); shard ${h.shard} of ${h.shards} of ` +
          `${h.corpusSize} passages is [${range.start}, ${range.start + range.count})`,
      );
    }
  }
  if (opts.model && opts.model.digest !== first.modelFingerprint) {
    throw new Error(
      `${WHO}: the shards were encoded by another model than --model ${opts.model.path} (fingerprint ` +
        `${first.modelFingerprint.slice(0, 16)}… vs ${opts.model.digest.slice(0, 16)}…)`,
    );
  }
  const corpusSha256 = (await checksumFile(corpusFile)).sha256;
  if (corpusSha256 !== first.corpusSha256) {
    throw new Error(
      `${WHO}: the shards were encoded from another corpus than ${corpusFile} (SHA-256 ${first.corpusSha256.slice(0, 16)}… vs ` +
        `${corpusSha256.slice(0, 16)}…); pass the corpus they were encoded from`,
    );
  }
  for (const { header: h, idsPath, vectorsPath } of shards) {
    const ids = await checksumFile(idsPath);
    if (ids.sha256 !== h.idsSha256) {
      throw new Error(
        `${WHO}: ${idsPath} does not match ${vectorsPath} (SHA-256 ${ids.sha256.slice(0, 16)}…, ` +
          `the header records ${h.idsSha256.slice(0, 16)}…)`,
      );
    }
  }
  return { shards, dims: first.dims, corpusSize: first.corpusSize, modelFingerprint: first.modelFingerprint, corpusFile, corpusSha256 };
}

/** Embeddings for stores built from shards without a model: searching by text is refused with the fix. */
export class NoModelEmbeddings extends Embeddings {
  constructor() {
    super({});
  }
  private refuse(): never {
    throw new Error(`${WHO}: no model was given; load the saved store with FaissDPRStore.load(dir, embeddings) to search it`);
  }
  override async embedQuery(): Promise<number[]> {
    this.refuse();
  }
  override async embedDocuments(): Promise<number[][]> {
    this.refuse();
  }
}

function checkInt(name: string, value: number | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${WHO}: ${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

/** `size` distinct row numbers in [0, total), sorted, drawn by Floyd's algorithm with a seeded generator. */
export function sampleRows(total: number, size: number, seed: number): number[] {
  const rng = new SeededRandom(seed);
  const picked = new Set<number>();
  for (let j = total - size; j < total; j++) {
    const t = rng.int(j + 1);
    picked.add(picked.has(t) ? j : t);
  }
  return [...picked].sort((a, b) => a - b);
}

/** Reads the given corpus rows (sorted) from the shards into one row-major matrix. */
async function readRows(set: ShardSet, rows: number[]): Promise<Float32Array> {
  const rowBytes = set.dims * 4;
  const out = new Float32Array(rows.length * set.dims);
  const bytes = new Uint8Array(out.buffer);
  let k = 0;
  for (const { header, vectorsPath } of set.shards) {
    if (k >= rows.length) break;
    const end = header.start + header.count;
    if (rows[k]! >= end) continue;
    const handle = await open(vectorsPath, "r");
    try {
      for (; k < rows.length && rows[k]! < end; k++) {
        const pos = SHARD_HEADER_BYTES + (rows[k]! - header.start) * rowBytes;
        await readFully(handle, bytes.subarray(k * rowBytes, (k + 1) * rowBytes), pos, vectorsPath);
      }
    } finally {
      await handle.close();
    }
  }
  return out;
}

/**
 * Builds a FaissDPRStore from the shards in `options.shards` and saves it to `options.out`.
 *
 * @throws Error naming the shard and what is wrong (see {@link checkShards}); an id in a shard that
 *   differs from the corpus at that row; a corpus id that appears twice; a shard whose vector bytes
 *   no longer match the SHA-256 in its header (nothing is saved then); too few rows to train.
 */
export async function buildIndexFromShards(options: BuildIndexOptions): Promise<BuildIndexResult> {
  if (endianness() !== "LE") throw new Error(`${WHO}: vector shard files are little-endian; this host is big-endian`);
  const factory = options.factory ?? "Flat";
  const seed = checkInt("seed", options.seed, 0) ?? 42;
  const addBatchRows = checkInt("addBatchRows", options.addBatchRows, 1) ?? DEFAULT_ADD_BATCH_ROWS;
  checkInt("trainSample", options.trainSample, 1);
  const log = options.log ?? (() => undefined);

  let embeddings: EmbeddingsInterface;
  let model: { digest: string; path: string } | undefined;
  if (options.model !== undefined) {
    const dpr = new DPREmbeddings({ modelPath: options.model, quantized: options.quantized });
    model = { digest: (await passageEncoderFingerprint(dpr)).digest, path: options.model };
    await dpr.dispose();
    embeddings = dpr;
  } else {
    embeddings = new NoModelEmbeddings();
  }
  const set = await checkShards(options.shards, options.corpus, { model });
  const total = set.corpusSize;
  const rule = trainingRule(factory);
  const store = new FaissDPRStore(embeddings, {
    factory,
    dimensions: set.dims,
    nprobe: options.nprobe,
    efSearch: options.efSearch,
    threads: options.threads,
    trainingSize: rule.required,
    addBatchSize: addBatchRows,
  });
  try {
    let trainedOn = 0;
    const t0 = performance.now();
    if (!store.isTrained) {
      const wanted = options.trainSample ?? Math.max(rule.recommended, MIN_DEFAULT_TRAIN_SAMPLE);
      const size = Math.min(wanted, total);
      if (size < rule.required) {
        throw new Error(
          `${WHO}: "${factory}" needs at least ${rule.required} training vectors (${rule.reason}); ` +
            (total < rule.required ? `the corpus has ${total} passages: use a smaller factory` : `--train-sample is ${size}`),
        );
      }
      log(`${WHO}: training "${factory}" on ${size === total ? `all ${total} rows` : `${size} of ${total} rows drawn with seed ${seed}`}`);
      await store.train(await readRows(set, sampleRows(total, size, seed)));
      trainedOn = size;
    }
    const trainSeconds = (performance.now() - t0) / 1000;
    await store.reserve(total);

    const t1 = performance.now();
    let added = 0;
    for await (const batch of readShardBatches(set, { batchRows: addBatchRows })) {
      const known = await store.getByIds(batch.ids);
      if (known.length > 0) {
        throw new Error(`${WHO}: the corpus id ${JSON.stringify(known[0]!.id)} appears twice (ids must be unique in the index)`);
      }
      await store.addVectors(batch.vectors, batch.documents, { ids: batch.ids });
      added += batch.ids.length;
      const sec = (performance.now() - t1) / 1000;
      options.onProgress?.({ added, total, vectorsPerSecond: sec > 0 ? added / sec : 0 });
    }
    if (store.size !== total) throw new Error(`${WHO}: the store holds ${store.size} documents after adding ${total} rows`);
    const addSeconds = (performance.now() - t1) / 1000;
    const t2 = performance.now();
    await store.save(options.out);
    return {
      out: options.out,
      factory,
      shards: set.shards.length,
      count: total,
      dims: set.dims,
      trainedOn,
      trainSeconds,
      addSeconds,
      saveSeconds: (performance.now() - t2) / 1000,
    };
  } finally {
    await store.dispose();
  }
}

/** One batch of {@link readShardBatches}: consecutive corpus rows with their vectors and Documents. */
export interface ShardBatch {
  /** Corpus position of the first row. */
  start: number;
  /** The shard the rows come from. */
  shard: number;
  /** Row-major `ids.length × dims` vectors. */
  vectors: Float32Array;
  /** The corpus Documents of the rows (see `passageDocument`). */
  documents: Document[];
  /** The corpus ids of the rows. */
  ids: string[];
}

/**
 * Streams a checked shard set (see {@link checkShards}) in corpus order, in batches of at most
 * `batchRows` rows that never straddle two shards: the vectors read from the shard files and the
 * Documents read from the corpus at the same time. While reading it checks each ids line against
 * the corpus (row and id), ids repeated within a batch, the corpus ending early or late, and each
 * shard's vector bytes against the SHA-256 in its header (after the shard's last batch: a consumer
 * must not commit anything before the stream ends). For any store: FaissDPRStore here, a database
 * ingest elsewhere.
 */
export async function* readShardBatches(set: ShardSet, opts: { batchRows?: number } = {}): AsyncGenerator<ShardBatch> {
  const batchRows = checkInt("batchRows", opts.batchRows, 1) ?? DEFAULT_ADD_BATCH_ROWS;
  const corpus = streamBeirCorpus(set.corpusFile)[Symbol.asyncIterator]();
  try {
    for (const shard of set.shards) yield* shardBatches(set, shard, corpus, batchRows);
    const extra = await corpus.next();
    if (!extra.done) {
      throw new Error(
        `${WHO}: ${set.corpusFile} has more than the ${set.corpusSize} passages the shards cover (it changed since they were encoded?)`,
      );
    }
  } finally {
    await corpus.return?.(undefined);
  }
}

async function* shardBatches(
  set: ShardSet,
  shard: CheckedShard,
  corpus: AsyncIterator<Passage>,
  batchRows: number,
): AsyncGenerator<ShardBatch> {
  const { header, vectorsPath, idsPath } = shard;
  const rowBytes = set.dims * 4;
  const hash = createHash("sha256");
  const idLines = readJsonLines(idsPath, WHO, 'a JSON object {"row", "id"}')[Symbol.asyncIterator]();
  const handle: FileHandle = await open(vectorsPath, "r");
  try {
    for (let done = 0; done < header.count;) {
      const n = Math.min(batchRows, header.count - done);
      const documents: Document[] = [];
      const ids: string[] = [];
      const seen = new Set<string>();
      for (let j = 0; j < n; j++) {
        const at = header.start + done + j;
        const next = await corpus.next();
        if (next.done) {
          throw new Error(
            `${WHO}: ${set.corpusFile} ended after ${at} passages; the shards cover ${set.corpusSize} ` +
              `(it changed since they were encoded?)`,
          );
        }
        const line = await idLines.next();
        if (line.done) throw new Error(`${WHO}: ${idsPath} ends after ${done + j} ids; ${vectorsPath} has ${header.count} rows`);
        const rec = line.value.value as { row?: unknown; id?: unknown } | null;
        const where = `${idsPath}:${line.value.line}`;
        if (typeof rec !== "object" || rec === null || rec.row !== at || typeof rec.id !== "string") {
          throw new Error(`${WHO}: ${where}: expected {"row": ${at}, "id": "<string>"}, got ${JSON.stringify(rec)}`);
        }
        const passage = next.value;
        if (rec.id !== passage.id) {
          throw new Error(
            `${WHO}: ${where}: shard ${header.shard} row ${done + j} has id ${JSON.stringify(rec.id)}, but passage ${at} of ` +
              `${set.corpusFile} has id ${JSON.stringify(passage.id)}; the shard does not follow this corpus's order`,
          );
        }
        if (seen.has(passage.id))
          throw new Error(`${WHO}: the corpus id ${JSON.stringify(passage.id)} appears twice (again at passage ${at})`);
        seen.add(passage.id);
        ids.push(passage.id);
        documents.push(passageDocument(passage));
      }
      const vectors = new Float32Array(n * set.dims);
      const bytes = new Uint8Array(vectors.buffer);
      await readFully(handle, bytes, SHARD_HEADER_BYTES + done * rowBytes, vectorsPath);
      hash.update(bytes);
      done += n;
      if (done === header.count) checkDigest(hash.digest("hex"), header, vectorsPath);
      yield { start: header.start + done - n, shard: header.shard, vectors, documents, ids };
    }
    if (header.count === 0) checkDigest(hash.digest("hex"), header, vectorsPath);
    const line = await idLines.next();
    if (!line.done) throw new Error(`${WHO}: ${idsPath} has more lines than the ${header.count} rows of ${vectorsPath}`);
  } finally {
    await idLines.return?.(undefined);
    await handle.close();
  }
}

function checkDigest(digest: string, header: ShardHeader, vectorsPath: string): void {
  if (digest !== header.vectorsSha256) {
    throw new Error(
      `${WHO}: the vectors of ${vectorsPath} do not match the SHA-256 in its header (${digest.slice(0, 16)}… vs ` +
        `${header.vectorsSha256.slice(0, 16)}…): the file changed after it was written; encode shard ${header.shard} again`,
    );
  }
}

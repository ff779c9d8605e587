/**
 * `loadShardsIntoPGVector`: the vector shards `encodeShard` wrote, into a PostgreSQL + pgvector
 * table (DPRPGVectorStore) instead of a FaissDPRStore folder. Every shard is checked first, then
 * read through once in full (ids against the corpus order, each shard's vector SHA-256) before a
 * row is written, since a database commits as it goes; rows then go in batched upserts, so a
 * failed or killed ingest is resumed by running it again: batches whose ids are all stored are
 * skipped, and no row is ever duplicated. An approximate index is built at the end (IVFFlat
 * picks its centroids from the rows).
 *
 * @module
 */
import type { PoolConfig } from "pg";
import { DPREmbeddings } from "../embeddings/dpr-embeddings.js";
import type { DPRPGVectorIndex } from "../pgvector/dpr-pgvector-store.js";
import { checkShards, NoModelEmbeddings, readShardBatches, type BuildIndexProgress } from "./build-index.js";
import { passageEncoderFingerprint } from "./fingerprint.js";

const WHO = "build-index";

/** Options of {@link loadShardsIntoPGVector}. */
export interface PGVectorIngestOptions {
  /** Folder of `shard-<i>-of-<n>.vectors` + `.ids.jsonl`. */
  shards: string;
  /** The corpus the shards were encoded from. */
  corpus: string;
  /** Table to fill (created with text ids and vector(dims) when missing). */
  table: string;
  /** pg pool settings; default `{}`: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, as psql. */
  connection?: PoolConfig;
  /** A DPR model folder: the shards must come from its passage encoder (and the table is checked against it). */
  model?: string;
  quantized?: boolean;
  /** Index to build after loading (default none). */
  index?: DPRPGVectorIndex;
  /** Rows per upsert statement (default 500). */
  chunkRows?: number;
  /** Rows read from the shards at a time (default 5,000). */
  batchRows?: number;
  onProgress?: (p: BuildIndexProgress) => void;
  log?: (line: string) => void;
}

/** What {@link loadShardsIntoPGVector} did. */
export interface PGVectorIngestResult {
  table: string;
  shards: number;
  count: number;
  dims: number;
  /** Rows written now (batches already stored by an earlier run are skipped). */
  written: number;
  skipped: number;
  seconds: number;
  indexSeconds: number;
}

/** Loads checked shards into a pgvector table; see the module comment. */
export async function loadShardsIntoPGVector(options: PGVectorIngestOptions): Promise<PGVectorIngestResult> {
  const log = options.log ?? (() => undefined);
  const batchRows = options.batchRows ?? 5000;
  const dpr = options.model === undefined ? undefined : new DPREmbeddings({ modelPath: options.model, quantized: options.quantized });
  try {
    const model = dpr && { digest: (await passageEncoderFingerprint(dpr)).digest, path: options.model! };
    const set = await checkShards(options.shards, options.corpus, { model });
    log(`${WHO}: checking ${set.shards.length} shards in full (ids against the corpus, vector SHA-256) before writing`);
    for await (const batch of readShardBatches(set, { batchRows })) void batch;
    const { DPRPGVectorStore } = await import("../pgvector/dpr-pgvector-store.js");
    const store = await DPRPGVectorStore.initialize(dpr ?? new NoModelEmbeddings(), {
      tableName: options.table,
      postgresConnectionOptions: options.connection ?? {},
      dimensions: set.dims,
      chunkSize: options.chunkRows ?? 500,
    });
    try {
      const t0 = performance.now();
      let written = 0;
      let skipped = 0;
      for await (const batch of readShardBatches(set, { batchRows })) {
        const stored = await store.getByIds(batch.ids);
        if (stored.length === batch.ids.length) {
          skipped += batch.ids.length;
        } else {
          const vectors = batch.ids.map((_, i) => Array.from(batch.vectors.subarray(i * set.dims, (i + 1) * set.dims)));
          await store.addVectors(vectors, batch.documents, { ids: batch.ids });
          written += batch.ids.length;
        }
        const sec = (performance.now() - t0) / 1000;
        options.onProgress?.({ added: written + skipped, total: set.corpusSize, vectorsPerSecond: sec > 0 ? written / sec : 0 });
      }
      const seconds = (performance.now() - t0) / 1000;
      const t1 = performance.now();
      if (options.index) {
        log(`${WHO}: building the ${options.index.type} index on ${options.table}`);
        await store.createIndex(options.index);
      }
      return {
        table: options.table,
        shards: set.shards.length,
        count: set.corpusSize,
        dims: set.dims,
        written,
        skipped,
        seconds,
        indexSeconds: (performance.now() - t1) / 1000,
      };
    } finally {
      await store.end();
    }
  } finally {
    await dpr?.dispose();
  }
}

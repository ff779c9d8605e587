/**
 * DPR on PostgreSQL + pgvector through LangChain's PGVectorStore (DPRPGVectorStore), against a real
 * server the test starts (PGlite + pgvector 0.8 on 127.0.0.1): exact search equals FaissDPRStore
 * Flat on the bundled corpus, HNSW recall against exact, filters, upsert, delete, the indexing API,
 * and the errors for a wrong distance, dimension, missing extension and dropped connection.
 */
import { Document } from "@langchain/core/documents";
import { InMemoryRecordManager } from "@langchain/community/indexes/memory";
import { index } from "@langchain/core/indexing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBeirCorpus, loadBeirQueries } from "../../src/data/beir.js";
import type { Passage, Query } from "../../src/data/types.js";
import { DEFAULT_DPR_MODEL, DEMO_DATASET } from "../../src/demo/demo.js";
import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { DPRPGVectorStore } from "../../src/pgvector/dpr-pgvector-store.js";
import { FaissDPRStore } from "../../src/vectorstores/faiss-dpr-store.js";
import { HashEmbeddings } from "../vectorstores/helpers.js";
import { startPGliteServer, type PGliteServer } from "./pglite-server.js";

/** Passages of the bundled corpus used (of 1,000) and questions asked. */
const PASSAGES = 400;
const QUESTIONS = 40;

let server: PGliteServer;
let embeddings: DPREmbeddings;
let passages: Passage[];
let docs: Document[];
let vectors: number[][];
let queries: number[][];

beforeAll(async () => {
  server = await startPGliteServer();
  embeddings = new DPREmbeddings({ modelPath: DEFAULT_DPR_MODEL, batchSize: 64 });
  passages = (await loadBeirCorpus(DEMO_DATASET)).slice(0, PASSAGES);
  docs = passages.map((p) => new Document({ id: p.id, pageContent: p.text, metadata: { title: p.title ?? "", n: Number(p.id) % 3 } }));
  vectors = await embeddings.embedDocuments(docs.map((d) => d.pageContent));
  const qs: Query[] = (await loadBeirQueries(DEMO_DATASET)).slice(0, QUESTIONS);
  queries = await Promise.all(qs.map((q) => embeddings.embedQuery(q.text)));
}, 120_000);

afterAll(async () => {
  await embeddings?.dispose();
  await server?.stop();
});

const ids = (hits: [{ id?: string }, number][]) => hits.map(([d]) => d.id);

describe("DPRPGVectorStore on PostgreSQL + pgvector", () => {
  it("exact search ranks as FaissDPRStore Flat: same top 10 ids, inner-product scores within 1e-4", async () => {
    const pg = await DPRPGVectorStore.initialize(embeddings, { pool: server.pool(), tableName: "exact_docs" });
    expect(pg.dimensions).toBe(128);
    await pg.addVectors(vectors, docs);
    const faiss = new FaissDPRStore(embeddings, { factory: "Flat" });
    await faiss.addVectors(vectors, docs);
    for (const q of queries) {
      const want = await faiss.similaritySearchVectorWithScore(q, 10);
      const got = await pg.similaritySearchVectorWithScore(q, 10);
      expect(ids(got)).toEqual(ids(want));
      got.forEach(([, score], i) => expect(score).toBeCloseTo(want[i]![1], 4));
    }
    await faiss.dispose();
  });

  it("an HNSW index with vector_ip_ops is used by the planner and recalls ≥ 0.9 of the exact top 10", async () => {
    const pool = server.pool();
    const pg = await DPRPGVectorStore.initialize(embeddings, {
      pool,
      tableName: "hnsw_docs",
      index: { type: "hnsw", m: 16, efConstruction: 64 },
    });
    await pg.addVectors(vectors, docs);
    const exact: (string | undefined)[][] = [];
    await pool.query("SET enable_indexscan = off"); // PGlite: one session for all connections
    for (const q of queries) exact.push(ids(await pg.similaritySearchVectorWithScore(q, 10)));
    await pool.query("SET enable_indexscan = on; SET enable_seqscan = off");
    try {
      const plan = (await pool.query(`EXPLAIN SELECT id FROM hnsw_docs ORDER BY embedding <#> '[${queries[0]!.join(",")}]' LIMIT 10`)).rows
        .map((r: Record<string, string>) => Object.values(r)[0])
        .join("\n");
      expect(plan).toMatch(/Index Scan using "?hnsw_docs_embedding_hnsw_innerProduct"?/);
      let found = 0;
      for (let i = 0; i < queries.length; i++) {
        const approx = new Set(ids(await pg.similaritySearchVectorWithScore(queries[i]!, 10)));
        found += exact[i]!.filter((id) => approx.has(id)).length;
      }
      const recall = found / (10 * queries.length);
      console.log(
        `pgvector HNSW (m=16, ef_construction=64, ef_search=40) recall@10 vs exact: ${recall.toFixed(3)} over ${QUESTIONS} questions`,
      );
      expect(recall).toBeGreaterThanOrEqual(0.9);
    } finally {
      await pool.query("RESET enable_seqscan; RESET enable_indexscan");
    }
  });

  it("filters by metadata, upserts by id, gets and deletes by id", async () => {
    const pg = await DPRPGVectorStore.initialize(embeddings, { pool: server.pool(), tableName: "crud_docs" });
    await pg.addVectors(vectors.slice(0, 30), docs.slice(0, 30));
    const q = queries[0]!;
    const filtered = await pg.similaritySearchVectorWithScore(q, 5, { n: 1 });
    expect(filtered).toHaveLength(5);
    for (const [d] of filtered) expect(d.metadata.n).toBe(1);
    expect(filtered.map(([d]) => d.id)).toEqual(
      (await pg.similaritySearchVectorWithScore(q, 30))
        .filter(([d]) => d.metadata.n === 1)
        .slice(0, 5)
        .map(([d]) => d.id),
    );
    // upsert: the same id again replaces text, metadata and vector; the count stays
    const target = docs[0]!;
    await pg.addVectors([vectors[1]!], [new Document({ id: target.id, pageContent: "replaced", metadata: { n: 9 } })]);
    const count = async () => Number((await pg.pool.query("SELECT count(*) AS c FROM crud_docs")).rows[0].c);
    expect(await count()).toBe(30);
    const [got] = await pg.getByIds([target.id!, "no-such-id"]).then((r) => [r]);
    expect(got!.map((d) => [d.id, d.pageContent, d.metadata])).toEqual([[target.id, "replaced", { n: 9 }]]);
    const top = await pg.similaritySearchVectorWithScore(vectors[1]!, 2);
    expect(top[0]![1]).toBeCloseTo(top[1]![1], 4); // two rows now hold vector 1
    await pg.delete({ ids: [target.id!, docs[1]!.id!] });
    expect(await count()).toBe(28);
    await pg.delete({ filter: { n: 0 } });
    expect(await count()).toBe(28 - docs.slice(2, 30).filter((d) => d.metadata.n === 0).length);
    await expect(pg.delete({})).rejects.toThrow(/DPRPGVectorStore.delete: give either ids or filter, not neither/);
  });

  it("works under LangChain's indexing API: forceUpdate re-adds ids in place, getByIds reads them back", async () => {
    const pg = await DPRPGVectorStore.initialize(embeddings, { pool: server.pool(), tableName: "indexed_docs" });
    const records = new InMemoryRecordManager();
    await records.createSchema();
    const some = docs.slice(0, 8).map((d) => new Document({ pageContent: d.pageContent, metadata: { ...d.metadata, source: d.id } }));
    const options = { cleanup: "full" as const };
    expect(await index({ docsSource: some, recordManager: records, vectorStore: pg, options })).toEqual({
      numAdded: 8,
      numUpdated: 0,
      numDeleted: 0,
      numSkipped: 0,
    });
    const again = await index({ docsSource: some, recordManager: records, vectorStore: pg, options: { ...options, forceUpdate: true } });
    expect(again).toEqual({ numAdded: 0, numUpdated: 8, numDeleted: 0, numSkipped: 0 });
    expect(Number((await pg.pool.query("SELECT count(*) AS c FROM indexed_docs")).rows[0].c)).toBe(8);
    const keys = await records.listKeys();
    expect((await pg.getByIds(keys)).map((d) => d.id)).toEqual(keys);
  });

  it("a failed ingest resumes without duplicates: adding the same documents again upserts them", async () => {
    const pg = await DPRPGVectorStore.initialize(embeddings, { pool: server.pool(), tableName: "resume_docs", chunkSize: 10 });
    const bad = docs.slice(0, 40).map((d, i) => (i === 25 ? new Document({ ...d, metadata: { note: "nul \u0000 in jsonb" } }) : d));
    await expect(pg.addVectors(vectors.slice(0, 40), bad)).rejects.toThrow(
      /DPRPGVectorStore.addVectors: rows 20..29 into resume_docs on 127.0.0.1:\d+\/postgres: .*\(rows before 20 are stored; adding again is safe: ids upsert\)/,
    );
    const count = async () => Number((await pg.pool.query("SELECT count(*) AS c FROM resume_docs")).rows[0].c);
    expect(await count()).toBe(20);
    await pg.addVectors(vectors.slice(0, 40), docs.slice(0, 40));
    expect(await count()).toBe(40);
  });
});

describe("DPRPGVectorStore refuses what would rank wrongly or fail later", () => {
  it("refuses cosine or euclidean for an unnormalised DPR model, unless allowUnnormalized", async () => {
    expect(embeddings.normalize).toBe(false);
    for (const distanceStrategy of ["cosine", "euclidean"] as const) {
      await expect(DPRPGVectorStore.initialize(embeddings, { pool: server.pool(), tableName: "nope", distanceStrategy })).rejects.toThrow(
        new RegExp(`distanceStrategy "${distanceStrategy}" with a DPR model whose vectors are not normalised.*"innerProduct"`),
      );
    }
    const allowed = await DPRPGVectorStore.initialize(embeddings, {
      pool: server.pool(),
      tableName: "cosine_docs",
      distanceStrategy: "cosine",
      allowUnnormalized: true,
    });
    expect(allowed.distanceStrategy).toBe("cosine");
  });

  it("names a table whose vector dimension differs from the model's, and vectors of the wrong length or not finite", async () => {
    const pool = server.pool();
    await pool.query("CREATE TABLE small_docs (id text PRIMARY KEY, text text, metadata jsonb, embedding vector(64))");
    await expect(DPRPGVectorStore.initialize(embeddings, { pool, tableName: "small_docs" })).rejects.toThrow(
      /table small_docs on 127\.0\.0\.1:\d+\/postgres does not fit: its column "embedding" is vector\(64\), but the model's vectors have 128 dimensions/,
    );
    expect((await pool.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]); // the caller's pool is left open
    const store = await DPRPGVectorStore.initialize(new HashEmbeddings(8), { pool: server.pool(), tableName: "hash_docs" });
    expect(store.dimensions).toBe(8);
    const doc = new Document({ pageContent: "x", id: "x" });
    await expect(store.addVectors([[1, 2, 3]], [doc])).rejects.toThrow(/vector 0 has 3 dimensions, expected 8/);
    await expect(store.addVectors([[1, 2, 3, 4, 5, 6, 7, NaN]], [doc])).rejects.toThrow(
      /vector 0 has a non-finite value \(NaN\) at component 7/,
    );
    await expect(store.similaritySearchVectorWithScore([1, 2], 3)).rejects.toThrow(/the query vector has 2 dimensions, expected 8/);
  });

  it("names the server when it has no pgvector extension", async () => {
    const bare = await startPGliteServer({ withVector: false });
    try {
      await expect(DPRPGVectorStore.initialize(embeddings, { pool: bare.pool(), tableName: "docs" })).rejects.toThrow(
        /the PostgreSQL server of docs on 127\.0\.0\.1:\d+\/postgres has no pgvector extension .*apt install postgresql-<version>-pgvector/,
      );
    } finally {
      await bare.stop();
    }
  });

  it("a dropped connection is an error naming the table and server, not a hang", async () => {
    const own = await startPGliteServer();
    try {
      const store = await DPRPGVectorStore.initialize(new HashEmbeddings(8), { pool: own.pool(), tableName: "dropped_docs" });
      await store.addVectors([[1, 0, 0, 0, 0, 0, 0, 0]], [new Document({ pageContent: "a", id: "a" })]);
      await own.dropConnections();
      await expect(store.similaritySearchVectorWithScore([1, 0, 0, 0, 0, 0, 0, 0], 1)).rejects.toThrow(
        /DPRPGVectorStore.search: dropped_docs on 127\.0\.0\.1:\d+\/postgres: /,
      );
    } finally {
      await own.stop();
    }
  });
});

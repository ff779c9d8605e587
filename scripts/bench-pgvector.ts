/**
 * pgvector (through DPRPGVectorStore, on PGlite: PostgreSQL + pgvector compiled to WASM, served on
 * 127.0.0.1) beside FaissDPRStore's engine in the same process, on the same vectors: exact search
 * (faiss Flat, the baseline and the ground truth), faiss HNSW32, faiss IVF-PQ, pgvector exact (a
 * sequential scan) and pgvector HNSW (vector_ip_ops). Reports build time, rows/s, bytes per row
 * on disk (table + TOAST, index), one-query p50/p95 and recall@k against exact.
 *
 *   npx tsx scripts/bench-pgvector.ts [--n 20000] [--d 768] [--queries 100] [--k 10] [--m 16]
 *        [--ef-construction 64] [--ef-search 40,100,200] [--json out.json]
 *
 * Data: the generator of bench-faiss (unit vectors around n/100 centres; queries from the same centres).
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { Document } from "@langchain/core/documents";
import { FakeEmbeddings } from "@langchain/core/utils/testing";
import { FaissIndex } from "../src/native/faiss-index.js";
import { DPRPGVectorStore } from "../src/pgvector/dpr-pgvector-store.js";
import { seededUniform } from "../src/utils/random.js";
import { startPGliteServer } from "../test/pgvector/pglite-server.js";
import { gaussFill, pointsAround, recallAt, summary } from "./bench-vectors.js";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}
const n = Number(arg("n", "20000"));
const d = Number(arg("d", "768"));
const nq = Number(arg("queries", "100"));
const k = Number(arg("k", "10"));
const m = Number(arg("m", "16"));
const efConstruction = Number(arg("ef-construction", "64"));
const efSearch = arg("ef-search", "40,100,200").split(",").map(Number);
const json = process.argv.includes("--json") ? arg("json", "") : undefined;

interface Row {
  system: string;
  setting: string;
  build_s?: number;
  rows_per_s?: number;
  bytes_per_row?: number;
  p50_ms?: number;
  p95_ms?: number;
  recall?: number;
}
const rows: Row[] = [];
const log = (s: string) => process.stderr.write(`${s}\n`);

/** Times each query (one at a time); returns labels (k per query) and the per-query times. */
async function timeQueries(
  run: (q: Float32Array) => Promise<bigint[]>,
  queries: Float32Array,
): Promise<{ labels: BigInt64Array; ms: number[] }> {
  const labels = new BigInt64Array(nq * k).fill(-1n);
  const times: number[] = [];
  for (let i = 0; i < nq; i++) {
    const q = queries.subarray(i * d, (i + 1) * d);
    const t = performance.now();
    const got = await run(q);
    times.push(performance.now() - t);
    got.slice(0, k).forEach((l, j) => (labels[i * k + j] = l));
  }
  return { labels, ms: times };
}

async function main(): Promise<void> {
  const centres = new Float32Array(Math.max(1, Math.floor(n / 100)) * d);
  gaussFill(centres, seededUniform(1));
  const data = pointsAround(centres, d, n, 2, 0.6);
  const queries = pointsAround(centres, d, nq, 3, 0.6);
  const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(i));
  log(`n=${n} d=${d} queries=${nq} k=${k}; ${cpus().length} × ${cpus()[0]?.model ?? "?"}; Node ${process.version}`);

  // faiss Flat: ground truth and the latency baseline
  const flat = FaissIndex.create(d, "IDMap2,Flat");
  let t = performance.now();
  await flat.add(data, ids);
  const flatBuild = (performance.now() - t) / 1000;
  const searchFaiss = (index: FaissIndex, knobs?: { efSearch?: number; nprobe?: number }) => async (q: Float32Array) =>
    Array.from((await index.search(q, k, knobs)).labels);
  const exact = await timeQueries(searchFaiss(flat), queries);
  const flatT = summary(exact.ms);
  rows.push({
    system: "faiss (ours)",
    setting: "Flat (exact)",
    build_s: flatBuild,
    rows_per_s: n / flatBuild,
    bytes_per_row: 4 * d,
    ...pq(flatT),
    recall: 1,
  });

  // faiss HNSW32
  const hnsw = FaissIndex.create(d, "IDMap2,HNSW32");
  t = performance.now();
  await hnsw.add(data, ids);
  const hnswBuild = (performance.now() - t) / 1000;
  for (const ef of [16, 64, 256]) {
    const r = await timeQueries(searchFaiss(hnsw, { efSearch: ef }), queries);
    rows.push({
      system: "faiss (ours)",
      setting: `HNSW32 efSearch ${ef}`,
      build_s: hnswBuild,
      rows_per_s: n / hnswBuild,
      ...pq(summary(r.ms)),
      recall: recallAt(k, exact.labels, r.labels, nq),
    });
  }
  await hnsw.dispose();

  // faiss IVF-PQ (64 bytes per vector + 8-byte id; "np": no polysemous training, as bench-faiss)
  const nlist = Math.max(16, 2 ** Math.round(Math.log2(Math.sqrt(n))));
  const ivfpq = FaissIndex.create(d, `IVF${nlist},PQ64np`);
  t = performance.now();
  await ivfpq.train(data.subarray(0, Math.min(n, Math.max(39 * nlist, 256 * 39)) * d));
  await ivfpq.add(data, ids);
  const ivfpqBuild = (performance.now() - t) / 1000;
  for (const nprobe of [4, 16, 64]) {
    const r = await timeQueries(searchFaiss(ivfpq, { nprobe }), queries);
    rows.push({
      system: "faiss (ours)",
      setting: `IVF${nlist},PQ64np nprobe ${nprobe}`,
      build_s: ivfpqBuild,
      rows_per_s: n / ivfpqBuild,
      bytes_per_row: 64 + 8,
      ...pq(summary(r.ms)),
      recall: recallAt(k, exact.labels, r.labels, nq),
    });
  }
  await ivfpq.dispose();
  await flat.dispose();

  // pgvector on PGlite, through DPRPGVectorStore
  const server = await startPGliteServer();
  const pool = server.pool(1);
  try {
    const store = await DPRPGVectorStore.initialize(new FakeEmbeddings(), { pool, tableName: "bench", dimensions: d, chunkSize: 200 });
    t = performance.now();
    const chunk = 2000;
    for (let s = 0; s < n; s += chunk) {
      const e = Math.min(n, s + chunk);
      const vectors = Array.from({ length: e - s }, (_, i) => Array.from(data.subarray((s + i) * d, (s + i + 1) * d)));
      const docs = vectors.map((_, i) => new Document({ pageContent: "", id: String(s + i) }));
      await store.addVectors(vectors, docs);
    }
    const insertS = (performance.now() - t) / 1000;
    const size = async (sql: string) => Number((await pool.query(sql)).rows[0].b);
    const tableBytes = await size(`SELECT pg_table_size('bench') AS b`);
    const searchPg = async (q: Float32Array) =>
      (await store.similaritySearchVectorWithScore(Array.from(q), k)).map(([doc]) => BigInt(doc.id!));
    await pool.query("SET enable_indexscan = off");
    const seq = await timeQueries(searchPg, queries);
    rows.push({
      system: "pgvector (PGlite)",
      setting: "no index (seq scan, exact)",
      build_s: insertS,
      rows_per_s: n / insertS,
      bytes_per_row: tableBytes / n,
      ...pq(summary(seq.ms)),
      recall: recallAt(k, exact.labels, seq.labels, nq),
    });
    await pool.query("RESET enable_indexscan; SET enable_seqscan = off");
    t = performance.now();
    await store.createIndex({ type: "hnsw", m, efConstruction });
    const indexS = (performance.now() - t) / 1000;
    const indexBytes = (await size(`SELECT pg_indexes_size('bench') AS b`)) - (await size(`SELECT pg_relation_size('bench_pkey') AS b`));
    for (const ef of efSearch) {
      await pool.query(`SET hnsw.ef_search = ${ef}`);
      const r = await timeQueries(searchPg, queries);
      rows.push({
        system: "pgvector (PGlite)",
        setting: `HNSW m ${m}, ef_construction ${efConstruction}, ef_search ${ef}`,
        build_s: indexS,
        rows_per_s: n / indexS,
        bytes_per_row: indexBytes / n,
        ...pq(summary(r.ms)),
        recall: recallAt(k, exact.labels, r.labels, nq),
      });
    }
  } finally {
    await server.stop();
  }

  const f = (x: number | undefined, digits = 2) => (x === undefined ? "" : x.toFixed(digits));
  console.log(
    `\nbench-pgvector: n=${n}, d=${d}, ${nq} queries one at a time, k=${k}; ` +
      `${cpus().length} × ${cpus()[0]?.model ?? "?"}, Node ${process.version}`,
  );
  console.log("\n| system | setting | build s | rows/s | bytes/row | p50 ms | p95 ms | × Flat p50 | recall@k |");
  console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    const ratio = r.p50_ms === undefined ? "" : (r.p50_ms / flatT.p50).toFixed(1);
    console.log(
      `| ${r.system} | ${r.setting} | ${f(r.build_s, 1)} | ${f(r.rows_per_s, 0)} | ${f(r.bytes_per_row, 0)} | ` +
        `${f(r.p50_ms)} | ${f(r.p95_ms)} | ${ratio} | ${f(r.recall, 3)} |`,
    );
  }
  if (json) writeFileSync(json, JSON.stringify({ n, d, queries: nq, k, rows }, null, 2));
}

function pq(s: { p50: number; p95: number }): { p50_ms: number; p95_ms: number } {
  return { p50_ms: s.p50, p95_ms: s.p95 };
}

await main();

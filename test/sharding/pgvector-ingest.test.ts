/**
 * build-index --pgvector: shards into a PostgreSQL + pgvector table (PGlite on 127.0.0.1): the table
 * searches as a FaissDPRStore built by addDocuments; a failed ingest is resumed by running it again
 * (stored batches skipped, no duplicates); a damaged shard writes nothing.
 */
import { copyFile, mkdir, mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Document } from "@langchain/core/documents";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { DPRPGVectorStore } from "../../src/pgvector/dpr-pgvector-store.js";
import { runBuildIndexCli } from "../../src/sharding/cli.js";
import { encodeShard } from "../../src/sharding/encode-shard.js";
import { loadShardsIntoPGVector } from "../../src/sharding/pgvector-ingest.js";
import { SHARD_HEADER_BYTES } from "../../src/sharding/shard-file.js";
import { FaissDPRStore } from "../../src/vectorstores/faiss-dpr-store.js";
import { startPGliteServer, type PGliteServer } from "../pgvector/pglite-server.js";
import { makeCorpus, writeCorpus, writeTinyModel, type CorpusRecord } from "./helpers.js";

const N = 90;
let tmp: string;
let records: CorpusRecord[];
let corpus: string;
let model: string;
let shards: string;
let embeddings: DPREmbeddings;
let server: PGliteServer;
const savedEnv = { ...process.env };

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "dpr-pg-ingest-"));
  records = makeCorpus(N, 7);
  corpus = await writeCorpus(join(tmp, "beir"), records);
  model = await writeTinyModel(join(tmp, "model"), records);
  shards = join(tmp, "shards");
  for (let i = 0; i < 3; i++) await encodeShard({ model, corpus, out: shards, shard: i, shards: 3, chunkRows: 20 });
  embeddings = new DPREmbeddings({ modelPath: model });
  server = await startPGliteServer();
  Object.assign(process.env, { PGHOST: server.host, PGPORT: String(server.port), PGUSER: "postgres", PGDATABASE: "postgres" });
}, 120_000);
afterAll(async () => {
  process.env = savedEnv;
  await embeddings?.dispose();
  await server?.stop();
  await rm(tmp, { recursive: true, force: true });
});

const count = async (table: string) => Number((await server.pool(1).query(`SELECT count(*) AS c FROM ${table}`)).rows[0].c);

describe("build-index --pgvector", () => {
  it("loads 3 shards into a table that searches as a FaissDPRStore built by addDocuments (ids, scores, documents)", async () => {
    const out: string[] = [];
    const io = { stdout: (s: string) => void out.push(s), stderr: () => undefined };
    const code = await runBuildIndexCli(
      ["--shards", shards, "--corpus", corpus, "--pgvector", "sharded", "--model", model, "--pg-index", "hnsw:8:32", "--no-progress"],
      io,
    );
    expect(code).toBe(0);
    expect(out.join("")).toMatch(/loaded 90 vectors × \d+ from 3 shards into sharded: 90 written, 0 already stored/);
    const docs = records.map(
      (r) => new Document({ pageContent: r.text, metadata: { ...(r.metadata ?? {}), ...(r.title ? { title: r.title } : {}) }, id: r._id }),
    );
    const faiss = new FaissDPRStore(embeddings);
    await faiss.addDocuments(docs);
    const pg = await DPRPGVectorStore.initialize(embeddings, { pool: server.pool(), tableName: "sharded" });
    for (const query of ["vitamin deficiency scurvy", "insulin glucose liver", "virus"]) {
      const want = await faiss.similaritySearchWithScore(query, 5);
      const got = await pg.similaritySearchWithScore(query, 5);
      expect(got.map(([d]) => d.id)).toEqual(want.map(([d]) => d.id));
      got.forEach(([d, s], i) => {
        expect(s).toBeCloseTo(want[i]![1], 4);
        expect(d.pageContent).toBe(want[i]![0].pageContent);
        expect(d.metadata).toEqual(want[i]![0].metadata);
      });
    }
    await faiss.dispose();
  });

  it("a failed ingest is resumed by running it again: stored batches are skipped, no row is duplicated", async () => {
    const pool = server.pool(1);
    // rows 45..89 cannot go in yet: a CHECK constraint refuses them, as a full disk or dropped connection would
    await pool.query("CREATE TABLE resumed (id text PRIMARY KEY, text text, metadata jsonb, embedding vector(32))");
    const dims = (await embeddings.embedQuery("x")).length;
    if (dims !== 32) await pool.query(`ALTER TABLE resumed ALTER COLUMN embedding TYPE vector(${dims})`);
    const late = records.slice(45).map((r) => `'${r._id}'`);
    await pool.query(`ALTER TABLE resumed ADD CONSTRAINT not_yet CHECK (id NOT IN (${late.join(",")}))`);
    const options = { shards, corpus, table: "resumed", batchRows: 15 };
    await expect(loadShardsIntoPGVector(options)).rejects.toThrow(/DPRPGVectorStore.addVectors: rows 0..14 into resumed .*not_yet/);
    expect(await count("resumed")).toBe(45);
    await pool.query("ALTER TABLE resumed DROP CONSTRAINT not_yet");
    const r = await loadShardsIntoPGVector(options);
    expect(r).toMatchObject({ count: 90, written: 45, skipped: 45 });
    expect(await count("resumed")).toBe(90);
  });

  it("checks every shard in full before writing: a flipped vector byte writes nothing", async () => {
    const bad = join(tmp, "bad-shards");
    await mkdir(bad);
    for (const i of [0, 1, 2])
      for (const ext of ["vectors", "ids.jsonl"])
        await copyFile(join(shards, `shard-${i}-of-3.${ext}`), join(bad, `shard-${i}-of-3.${ext}`));
    const f = await open(join(bad, "shard-2-of-3.vectors"), "r+");
    const b = Buffer.alloc(1);
    await f.read(b, 0, 1, SHARD_HEADER_BYTES + 40);
    b[0]! ^= 0xff;
    await f.write(b, 0, 1, SHARD_HEADER_BYTES + 40);
    await f.close();
    await expect(loadShardsIntoPGVector({ shards: bad, corpus, table: "never" })).rejects.toThrow(
      /shard-2-of-3.vectors do not match the SHA-256 in its header/,
    );
    expect(Number((await server.pool(1).query("SELECT count(*) AS c FROM pg_tables WHERE tablename = 'never'")).rows[0].c)).toBe(0);
  });

  it("takes exactly one of --out and --pgvector, and refuses faiss-only flags with --pgvector", async () => {
    const err: string[] = [];
    const io = { stdout: () => undefined, stderr: (s: string) => void err.push(s) };
    expect(await runBuildIndexCli(["--shards", shards, "--corpus", corpus], io)).toBe(2);
    expect(await runBuildIndexCli(["--shards", shards, "--corpus", corpus, "--pgvector", "t", "--factory", "HNSW32"], io)).toBe(2);
    expect(await runBuildIndexCli(["--shards", shards, "--corpus", corpus, "--pgvector", "t", "--pg-index", "annoy"], io)).toBe(2);
    expect(err.join("")).toMatch(
      /give one of --out <store folder> or --pgvector <table>, got neither[\s\S]*--factory applies to a FaissDPRStore[\s\S]*--pg-index must be hnsw/,
    );
  });
});

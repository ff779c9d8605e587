/**
 * `serve --pgvector <table>`: stateless server replicas over one PostgreSQL + pgvector table (the
 * connection from PG* variables). Two replicas answer alike, and a document written through a
 * third store is seen by both without a restart.
 */
import { Document } from "@langchain/core/documents";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBeirCorpus } from "../../src/data/beir.js";
import { DEFAULT_DPR_MODEL, DEMO_DATASET } from "../../src/demo/demo.js";
import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { DPRPGVectorStore } from "../../src/pgvector/dpr-pgvector-store.js";
import { parseServeArgs, startServe, type ServeHandle } from "../../src/server/cli.js";
import { startPGliteServer, type PGliteServer } from "./pglite-server.js";

let server: PGliteServer;
let embeddings: DPREmbeddings;
let writer: DPRPGVectorStore;
const replicas: ServeHandle[] = [];
const savedEnv = { ...process.env };

beforeAll(async () => {
  server = await startPGliteServer();
  embeddings = new DPREmbeddings({ modelPath: DEFAULT_DPR_MODEL });
  writer = await DPRPGVectorStore.initialize(embeddings, { pool: server.pool(), tableName: "served" });
  const passages = (await loadBeirCorpus(DEMO_DATASET)).slice(0, 60);
  await writer.addDocuments(passages.map((p) => new Document({ id: p.id, pageContent: p.text, metadata: { title: p.title ?? "" } })));
  Object.assign(process.env, { PGHOST: server.host, PGPORT: String(server.port), PGUSER: "postgres", PGDATABASE: "postgres" });
  for (let i = 0; i < 2; i++) {
    const opts = parseServeArgs(["--model", DEFAULT_DPR_MODEL, "--pgvector", "served", "--port", "0"])!;
    replicas.push(await startServe(opts));
  }
}, 120_000);

afterAll(async () => {
  for (const r of replicas) {
    await r.app.close();
    await r.close();
  }
  process.env = savedEnv;
  await embeddings?.dispose();
  await server?.stop();
});

async function retrieve(r: ServeHandle, query: string, k = 5): Promise<{ id: string; score: number }[]> {
  const res = await fetch(`${r.url}/retrieve`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, k }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { documents: { id: string; score: number }[] }).documents.map(({ id, score }) => ({ id, score }));
}

describe("serve --pgvector", () => {
  it("two replicas over one table answer alike, with the store's inner-product scores", async () => {
    expect(replicas.map((r) => r.description)).toEqual(["pgvector table served", "pgvector table served"]);
    const query = "does folic acid protect against heart defects?";
    const [a, b] = await Promise.all(replicas.map((r) => retrieve(r, query)));
    expect(a).toHaveLength(5);
    expect(b).toEqual(a);
    const direct = await writer.similaritySearchWithScore(query, 5);
    expect(a.map((d) => d.id)).toEqual(direct.map(([d]) => d.id));
    a.forEach((d, i) => expect(d.score).toBeCloseTo(direct[i]![1], 4));
  });

  it("a document written through another store is served by every replica at once (no cache, no restart)", async () => {
    const text = "Zebrafish fin regeneration depends on blastema formation after amputation.";
    await writer.addDocuments([new Document({ id: "new-zebrafish", pageContent: text, metadata: { title: "" } })]);
    for (const r of replicas) expect((await retrieve(r, text, 1))[0]!.id).toBe("new-zebrafish");
    await writer.delete({ ids: ["new-zebrafish"] });
    for (const r of replicas) expect((await retrieve(r, text, 1))[0]!.id).not.toBe("new-zebrafish");
  });

  it("takes exactly one of --index and --pgvector", () => {
    expect(() => parseServeArgs(["--model", "m"])).toThrow(/give one of --index <FaissDPRStore dir> or --pgvector <table> .*got neither/);
    expect(() => parseServeArgs(["--model", "m", "--index", "i", "--pgvector", "t"])).toThrow(/not both/);
  });
});

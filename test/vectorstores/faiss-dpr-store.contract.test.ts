/**
 * Vector-store contract (add, search ordering, delete, save/load, filter, MMR) run on real faiss
 * indexes of each kind through FaissDPRStore.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Document } from "@langchain/core/documents";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaissDPRStore, type FaissDPRStoreParams } from "../../src/vectorstores/faiss-dpr-store.js";
import { HashEmbeddings, clustered, dot, exactTopK, rows } from "./helpers.js";

const D = 16;
const N = 1200;
const data = clustered(N, D, 12, 7);
const docs = Array.from({ length: N }, (_, i) => new Document({ pageContent: `passage ${i}`, metadata: { group: i % 3, n: i } }));
const ids = docs.map((_, i) => `doc-${i}`);
const queryRows = Array.from({ length: 20 }, (_, i) => i * 59);
const queries = new Float32Array(queryRows.length * D);
queryRows.forEach((r, j) => queries.set(data.subarray(r * D, (r + 1) * D), j * D));
const truth = exactTopK(data, queries, D, 10);

interface Kind {
  factory: string;
  params: FaissDPRStoreParams;
  /** exact scores and order (no quantisation, exhaustive probing) */
  exact: boolean;
  /** stored vectors are kept exactly (scores exact, MMR similarities exact) */
  lossless: boolean;
}
const KINDS: Kind[] = [
  { factory: "Flat", params: {}, exact: true, lossless: true },
  { factory: "IVF8,Flat", params: { nprobe: 8 }, exact: true, lossless: true },
  { factory: "HNSW16", params: { efSearch: 128 }, exact: false, lossless: true },
  { factory: "IVF8,PQ8x4np", params: { nprobe: 8 }, exact: false, lossless: false },
  { factory: "IVF8,SQ8", params: { nprobe: 8 }, exact: false, lossless: false },
  { factory: "OPQ8,IVF8,PQ8x4np", params: { nprobe: 8, trainingSize: N }, exact: false, lossless: false },
];

describe.each(KINDS)("FaissDPRStore contract on $factory", ({ factory, params, exact, lossless }) => {
  let store: FaissDPRStore;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "faiss-contract-"));
    store = new FaissDPRStore(new HashEmbeddings(D), { factory, dimensions: D, ...params });
    const returned = await store.addVectors(data, docs, { ids });
    expect(returned).toEqual(ids);
  });
  afterAll(async () => {
    await store.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("ranks by inner product, best first, with the exact dot products as scores", async () => {
    const results = await store.searchVectors(queries, { k: 10 });
    let top1 = 0;
    let overlap = 0;
    results.forEach((hits, q) => {
      expect(hits).toHaveLength(10);
      for (let i = 1; i < hits.length; i++) expect(hits[i - 1]![1]).toBeGreaterThanOrEqual(hits[i]![1] - 1e-6);
      const qv = queries.subarray(q * D, (q + 1) * D);
      for (const [doc, score] of hits) {
        const row = Number(doc.id!.slice(4));
        expect(doc.metadata.n).toBe(row);
        const expected = dot(qv, data.subarray(row * D, (row + 1) * D));
        // quantised indexes score against the decoded vector
        expect(Math.abs(score - expected)).toBeLessThan(lossless ? 1e-4 : 0.15);
      }
      if (hits.slice(0, lossless ? 1 : 10).some(([doc]) => doc.id === `doc-${queryRows[q]}`)) top1++;
      const got = hits.map(([doc]) => Number(doc.id!.slice(4)));
      overlap += got.filter((r) => truth[q]!.includes(r)).length / 10;
      if (exact) expect(got).toEqual(truth[q]);
    });
    // recall@10 against exact search: 1 for exact kinds, high for HNSW at efSearch 128
    expect(overlap / queryRows.length).toBeGreaterThanOrEqual(exact ? 1 : lossless ? 0.9 : 0.4);
    // a stored vector is its own nearest neighbour (self inner product = 1 for unit vectors);
    // quantised codes blur a tight cluster, so there: within the top 10
    expect(top1 / queryRows.length).toBeGreaterThanOrEqual(lossless ? 1 : 0.6);
  });

  it("similaritySearchVectorWithScore returns k documents with ids and metadata", async () => {
    const q = Array.from(queries.subarray(0, D));
    const hits = await store.similaritySearchVectorWithScore(q, 3);
    expect(hits).toHaveLength(3);
    expect(hits[0]![0]).toBeInstanceOf(Document);
    if (lossless) {
      expect(hits[0]![0].id).toBe("doc-0");
      expect(hits[0]![1]).toBeCloseTo(1, 4);
    }
  });

  it("filters by metadata equality and by predicate, still returning k documents", async () => {
    const [byGroup] = await store.searchVectors(queries.subarray(0, D), { k: 10, filter: { group: 1 } });
    expect(byGroup).toHaveLength(10);
    for (const [doc] of byGroup!) expect(doc.metadata.group).toBe(1);
    // only 24 of 1200 documents pass: the store must grow its over-fetch to find 10
    const [rare] = await store.searchVectors(queries.subarray(0, D), { k: 10, filter: (doc) => (doc.metadata.n as number) % 50 === 0 });
    expect(rare).toHaveLength(10);
    for (const [doc] of rare!) expect((doc.metadata.n as number) % 50).toBe(0);
    for (let i = 1; i < rare!.length; i++) expect(rare![i - 1]![1]).toBeGreaterThanOrEqual(rare![i]![1] - 1e-6);
  });

  it.runIf(lossless)("MMR skips a near-duplicate that plain search ranks second", async () => {
    const local = new FaissDPRStore(new HashEmbeddings(D), { factory, dimensions: D, ...params });
    // the first 1200 rows plus a near copy of row 0
    const dup = new Float32Array(data.subarray(0, D));
    dup[0]! += 0.001;
    const all = new Float32Array((N + 1) * D);
    all.set(data);
    all.set(dup, N * D);
    await local.addVectors(all, [...docs, new Document({ pageContent: "copy of 0", metadata: { n: -1 } })], { ids: [...ids, "dup-0"] });
    const q = data.subarray(0, D);
    // candidates: the pair is among the 20 nearest on every kind (quantised ones give the copy
    // the same code as the original, so the two tie)
    const [plain] = await local.searchVectors(q, { k: 20 });
    const plainIds = plain!.map(([doc]) => doc.id);
    expect(plainIds).toEqual(expect.arrayContaining(["doc-0", "dup-0"]));
    expect(plainIds.slice(0, 2)).toEqual(expect.arrayContaining(["doc-0", "dup-0"]));
    const mmr = await local.maxMarginalRelevanceSearchByVector(q, { k: 3, fetchK: 20, lambda: 0.25 });
    expect(mmr).toHaveLength(3);
    const mmrIds = mmr.map((doc) => doc.id);
    expect(mmrIds.filter((id) => id === "doc-0" || id === "dup-0")).toHaveLength(1);
    await local.dispose();
  });

  it.runIf(!lossless)("MMR returns k distinct candidates, re-ranked away from plain order", async () => {
    const q = data.subarray(0, D);
    const [plain] = await store.searchVectors(q, { k: 20 });
    const mmr = await store.maxMarginalRelevanceSearchByVector(q, { k: 5, fetchK: 20, lambda: 0 });
    const ids = mmr.map((doc) => doc.id);
    expect(new Set(ids).size).toBe(5);
    const pool = plain!.map(([doc]) => doc.id);
    for (const id of ids) expect(pool).toContain(id);
    // λ = 0 is pure diversity: after the first pick it avoids the nearest neighbours of that pick
    expect(ids.slice(1)).not.toEqual(pool.slice(1, 5));
  });

  it("deletes by id: deleted documents never come back, k results still do, ids stay stable", async () => {
    const q = queries.subarray(D, 2 * D); // row 59
    const [before] = await store.searchVectors(q, { k: 10 });
    const gone = before!.slice(0, 5).map(([doc]) => doc.id!);
    const keep = before!.slice(5).map(([doc]) => doc.id!);
    await store.delete({ ids: gone });
    expect(store.size).toBe(N - 5);
    if (factory.startsWith("HNSW")) expect(store.tombstoneCount).toBe(5);
    const [after] = await store.searchVectors(q, { k: 10 });
    expect(after).toHaveLength(10);
    const afterIds = after!.map(([doc]) => doc.id!);
    for (const id of gone) expect(afterIds).not.toContain(id);
    if (exact) expect(afterIds.slice(0, 5)).toEqual(keep);
    else expect(afterIds.filter((id) => keep.includes(id)).length).toBeGreaterThanOrEqual(lossless ? 4 : 2);
    // an untouched document still maps to its own vector
    const [self] = await store.searchVectors(queries.subarray(2 * D, 3 * D), { k: 1 });
    if (lossless) expect(self![0]![0].id).toBe(`doc-${queryRows[2]}`);
  });

  it("round-trips through save/load with the same ids, scores and deletions", async () => {
    const before = await store.searchVectors(queries, { k: 5 });
    await store.save(dir);
    const loaded = await FaissDPRStore.load(dir, new HashEmbeddings(D));
    expect(loaded.size).toBe(store.size);
    expect(loaded.factory).toBe(factory);
    const after = await loaded.searchVectors(queries, { k: 5 });
    after.forEach((hits, q) => {
      expect(hits.map(([doc]) => doc.id)).toEqual(before[q]!.map(([doc]) => doc.id));
      hits.forEach(([doc, score], i) => {
        expect(score).toBeCloseTo(before[q]![i]![1], 5);
        expect(doc.metadata).toEqual(before[q]![i]![0].metadata);
      });
    });
    // adding after load continues the label sequence: no collision with existing ids
    await loaded.addVectors([Array.from(data.subarray(0, D))], [new Document({ pageContent: "again" })], { ids: ["again"] });
    const [hit] = await loaded.searchVectors(data.subarray(0, D), { k: lossless ? 2 : 10 });
    expect(hit!.map(([doc]) => doc.id)).toEqual(expect.arrayContaining(lossless ? ["again", "doc-0"] : ["again"]));
    await loaded.dispose();
  });
});

describe("FaissDPRStore input shapes", () => {
  it("uses the rows of a Float32Array[] as queries", async () => {
    const store = await FaissDPRStore.fromVectors(rows(data, D), docs, new HashEmbeddings(D), { factory: "Flat" });
    const res = await store.searchVectors(rows(queries, D).slice(0, 2), { k: 1 });
    expect(res.map((r) => r[0]![0].metadata.n)).toEqual([queryRows[0], queryRows[1]]);
    await store.dispose();
  });
});

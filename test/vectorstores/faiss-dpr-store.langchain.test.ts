/**
 * FaissDPRStore as LangChain code uses it: asRetriever's default k on a small store, an empty
 * store, ScoreThresholdRetriever's growing k, the indexing API re-adding ids (upsert), getByIds,
 * and MMR's similarity (cosine exactly as @langchain/core's maximalMarginalRelevance, or inner product).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ScoreThresholdRetriever } from "@langchain/classic/retrievers/score_threshold";
import { Document } from "@langchain/core/documents";
import { RecordManager, index, type ListKeyOptions, type UpdateOptions } from "@langchain/core/indexing";
import { maximalMarginalRelevance } from "@langchain/core/utils/math";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FaissDPRStore } from "../../src/vectorstores/faiss-dpr-store.js";
import { HashEmbeddings, clustered, rows, withWarnings } from "./helpers.js";

const D = 16;
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "faiss-langchain-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const texts = ["dense passage retrieval with bert", "cooking pasta at home", "faiss inner product search"];

/**
 * A record manager kept in memory (the contract of @langchain/core's RecordManager, as
 * @langchain/community's InMemoryRecordManager), on a strictly increasing clock so "updated
 * before the run started" never depends on two calls landing in the same millisecond.
 */
class CountingRecordManager extends RecordManager {
  override lc_namespace = ["langchain-dpr", "test", "record-manager"];
  private clock = 0;
  readonly records = new Map<string, { updatedAt: number; groupId: string | null }>();
  async createSchema(): Promise<void> {}
  async getTime(): Promise<number> {
    return ++this.clock;
  }
  async update(keys: string[], options?: UpdateOptions): Promise<void> {
    const now = await this.getTime();
    if (options?.timeAtLeast !== undefined && now < options.timeAtLeast)
      throw new Error(`clock went back: ${now} < ${options.timeAtLeast}`);
    keys.forEach((key, i) => {
      const old = this.records.get(key);
      if (old) old.updatedAt = now;
      else this.records.set(key, { updatedAt: now, groupId: options?.groupIds?.[i] ?? null });
    });
  }
  async exists(keys: string[]): Promise<boolean[]> {
    return keys.map((key) => this.records.has(key));
  }
  async listKeys(options: ListKeyOptions = {}): Promise<string[]> {
    const keys = [...this.records]
      .filter(
        ([, r]) =>
          (options.before === undefined || r.updatedAt < options.before) && (options.after === undefined || r.updatedAt > options.after),
      )
      .filter(([, r]) => !options.groupIds || options.groupIds.includes(r.groupId))
      .map(([key]) => key);
    return keys.slice(0, options.limit ?? keys.length);
  }
  async deleteKeys(keys: string[]): Promise<void> {
    for (const key of keys) this.records.delete(key);
  }
}

describe("FaissDPRStore k beyond the store", () => {
  it("asRetriever() (k 4) on 3 documents returns the 3, warning once per store", async () => {
    const store = await FaissDPRStore.fromTexts(texts, {}, new HashEmbeddings(D));
    const { result, warnings } = await withWarnings(async () => {
      const first = await store.asRetriever().invoke("faiss inner product");
      const second = await store.asRetriever().invoke("pasta");
      return [first, second];
    });
    expect(result[0]!.map((d) => d.pageContent)[0]).toBe("faiss inner product search");
    expect(result[0]).toHaveLength(3);
    expect(result[1]![0]!.pageContent).toBe("cooking pasta at home");
    expect(warnings).toEqual([
      "FaissDPRStore: k (4) is greater than the number of stored documents (3), setting k to 3 (warned once per store)",
    ]);
  });

  it("an empty store returns no documents from search, MMR and a retriever, without a warning", async () => {
    const store = new FaissDPRStore(new HashEmbeddings(D));
    const { result, warnings } = await withWarnings(async () => [
      await store.similaritySearch("anything"),
      await store.similaritySearchWithScore("anything", 10),
      await store.maxMarginalRelevanceSearch("anything", { k: 4 }),
      await store.asRetriever().invoke("anything"),
    ]);
    expect(result).toEqual([[], [], [], []]);
    expect(warnings).toEqual([]);
    // a store whose documents were all deleted is empty too
    const emptied = await FaissDPRStore.fromTexts(texts, {}, new HashEmbeddings(D));
    await emptied.delete({ ids: (await emptied.similaritySearch("x", 3)).map((d) => d.id!) });
    expect(await emptied.similaritySearchWithScore("pasta", 2)).toEqual([]);
  });

  it("ScoreThresholdRetriever (k grows by 10 until fewer come back) stops on a 3-document store", async () => {
    const store = await FaissDPRStore.fromTexts(texts, {}, new HashEmbeddings(D));
    const retriever = ScoreThresholdRetriever.fromVectorStore(store, { minSimilarityScore: -1, kIncrement: 10, maxK: 100 });
    const spy = vi.spyOn(store, "similaritySearchWithScore");
    const { result } = await withWarnings(() => retriever.invoke("dense retrieval"));
    expect(result).toHaveLength(3);
    expect(spy.mock.calls.map((c) => c[1])).toEqual([10]); // one round: 3 < 10 ends the loop
    expect(result[0]!.pageContent).toBe("dense passage retrieval with bert");
  });
});

describe("FaissDPRStore upsert by id", () => {
  it("replaces a stored id's document and vector; getByIds reads documents back in the order asked", async () => {
    for (const factory of ["Flat", "HNSW8"]) {
      const store = await FaissDPRStore.fromDocuments(
        texts.map((t, i) => new Document({ pageContent: t, metadata: { v: 1 }, id: `t${i}` })),
        new HashEmbeddings(D),
        { factory },
      );
      const ids = await store.addDocuments([new Document({ pageContent: "gardening in spring", metadata: { v: 2 } })], { ids: ["t1"] });
      expect(ids).toEqual(["t1"]);
      expect(store.size).toBe(3);
      const [top] = await store.similaritySearchWithScore("gardening in spring", 1);
      expect(top![0]).toMatchObject({ id: "t1", pageContent: "gardening in spring", metadata: { v: 2 } });
      expect(top![1]).toBeCloseTo(1, 5);
      expect((await store.similaritySearch("cooking pasta", 3)).map((d) => d.pageContent)).not.toContain("cooking pasta at home");
      // HNSW cannot remove the old vector: it is a tombstone until compact()
      expect(store.tombstoneCount).toBe(factory === "HNSW8" ? 1 : 0);
      expect(store.faissIndex!.ntotal).toBe(factory === "HNSW8" ? 4 : 3);
      const got = await store.getByIds(["t2", "nope", "t1"]);
      expect(got.map((d) => [d.id, d.pageContent])).toEqual([
        ["t2", "faiss inner product search"],
        ["t1", "gardening in spring"],
      ]);
      got[0]!.metadata.v = 99; // a returned copy: the store is unchanged
      expect((await store.getByIds(["t2"]))[0]!.metadata.v).toBe(1);
      const dir = path.join(tmp, `upsert-${factory}`);
      await store.save(dir);
      const loaded = await FaissDPRStore.load(dir, new HashEmbeddings(D));
      expect((await loaded.getByIds(["t0", "t1", "t2"])).map((d) => d.metadata.v)).toEqual([1, 2, 1]);
      await loaded.compact();
      expect(loaded.faissIndex!.ntotal).toBe(3);
      await store.dispose();
      await loaded.dispose();
    }
  });

  it("refuses an id twice in one call, changing nothing", async () => {
    const store = await FaissDPRStore.fromTexts(texts, {}, new HashEmbeddings(D));
    const before = store.version;
    await expect(
      store.addDocuments([new Document({ pageContent: "a" }), new Document({ pageContent: "b" })], { ids: ["x", "x"] }),
    ).rejects.toThrow(/FaissDPRStore.addDocuments: duplicate document id "x" within one call/);
    expect(store.size).toBe(3);
    expect(store.version).toBe(before);
  });

  it("searches running during upserts see each id exactly once, old or new", async () => {
    const n = 200;
    const data = clustered(n, D, 4, 3);
    const docs = (version: number) => Array.from({ length: n }, (_, i) => new Document({ pageContent: `p${i}`, metadata: { version } }));
    const ids = Array.from({ length: n }, (_, i) => `p${i}`);
    const store = new FaissDPRStore(new HashEmbeddings(D), { dimensions: D });
    await store.addVectors(data, docs(0), { ids });
    const queries = rows(data, D).slice(0, 8);
    let stop = false;
    const seen: string[][] = [];
    const searcher = (async () => {
      while (!stop) {
        for (const hits of await store.searchVectors(queries, { k: 20 }))
          seen.push(hits.map(([doc]) => `${doc.id}@${doc.metadata.version}`));
      }
    })();
    for (let version = 1; version <= 5; version++) await store.addVectors(data, docs(version), { ids });
    stop = true;
    await searcher;
    expect(seen.length).toBeGreaterThan(8);
    const versions = new Set<string>();
    for (const list of seen) {
      expect(list).toHaveLength(20);
      const idsOnly = list.map((s) => s.split("@")[0]);
      expect(new Set(idsOnly).size).toBe(idsOnly.length);
      // one search reads the documents in one step: all of one version
      const listVersions = new Set(list.map((s) => s.split("@")[1]));
      expect(listVersions.size).toBe(1);
      versions.add([...listVersions][0]!);
    }
    expect(versions.size).toBeGreaterThan(1); // the searches did overlap the upserts
    expect(store.size).toBe(n);
    expect(store.faissIndex!.ntotal).toBe(n);
    expect((await store.getByIds(ids)).every((d) => d.metadata.version === 5)).toBe(true);
  });

  it("LangChain's index() with forceUpdate and cleanup 'full' re-adds the same ids, then removes stale ones", async () => {
    const store = new FaissDPRStore(new HashEmbeddings(D));
    const records = new CountingRecordManager();
    const source = texts.map((t, i) => new Document({ pageContent: t, metadata: { source: `s${i}` } }));
    expect(await index({ docsSource: source, recordManager: records, vectorStore: store, options: { cleanup: "full" } })).toEqual({
      numAdded: 3,
      numUpdated: 0,
      numDeleted: 0,
      numSkipped: 0,
    });
    const uids = [...records.records.keys()];
    expect((await store.getByIds(uids)).map((d) => d.pageContent)).toEqual(texts);
    // the same documents again, forced: every id is added again and replaces itself
    expect(
      await index({ docsSource: source, recordManager: records, vectorStore: store, options: { cleanup: "full", forceUpdate: true } }),
    ).toEqual({
      numAdded: 0,
      numUpdated: 3,
      numDeleted: 0,
      numSkipped: 0,
    });
    expect(store.size).toBe(3);
    // one document changed, one dropped: the changed one is a new id, the two stale ids are deleted
    const next = [source[0]!, new Document({ pageContent: "cooking rice at home", metadata: { source: "s1" } })];
    expect(await index({ docsSource: next, recordManager: records, vectorStore: store, options: { cleanup: "full" } })).toEqual({
      numAdded: 1,
      numUpdated: 0,
      numDeleted: 2,
      numSkipped: 1,
    });
    expect(store.size).toBe(2);
    expect((await store.similaritySearch("cooking rice", 1))[0]!.pageContent).toBe("cooking rice at home");
    // incremental cleanup by source: a changed s1 replaces s1's old document only
    const inc = new FaissDPRStore(new HashEmbeddings(D));
    const incRecords = new CountingRecordManager();
    const opts = { cleanup: "incremental" as const, sourceIdKey: "source" };
    await index({ docsSource: source, recordManager: incRecords, vectorStore: inc, options: opts });
    expect(await index({ docsSource: [next[1]!], recordManager: incRecords, vectorStore: inc, options: opts })).toEqual({
      numAdded: 1,
      numUpdated: 0,
      numDeleted: 1,
      numSkipped: 0,
    });
    expect((await inc.similaritySearch("home", 3)).map((d) => d.pageContent).sort()).toEqual([
      "cooking rice at home",
      "dense passage retrieval with bert",
      "faiss inner product search",
    ]);
    // a lost record manager: indexing the same documents re-adds ids the store already holds
    expect(await index({ docsSource: next, recordManager: new CountingRecordManager(), vectorStore: store })).toMatchObject({
      numAdded: 2,
    });
    expect(store.size).toBe(2);
  });
});

describe("FaissDPRStore MMR similarity", () => {
  // query along x; A points the same way (short), B is long and 45° off, C is B's near twin, E is
  // short and 90° off. Inner product favours the long vectors; cosine the directions.
  const q = [1, 0, 0];
  const vectors: Record<string, number[]> = {
    A: [1, 0, 0],
    B: [3, 3, 0],
    C: [3, 3.1, 0],
    E: [0, 0, 1],
  };
  async function store(mmrSimilarity?: "cosine" | "inner_product"): Promise<FaissDPRStore> {
    const ids = Object.keys(vectors);
    return FaissDPRStore.fromVectors(
      ids.map((id) => vectors[id]!),
      ids.map((id) => new Document({ pageContent: id, id })),
      new HashEmbeddings(3),
      mmrSimilarity ? { mmrSimilarity } : {},
    );
  }

  it("picks by direction with cosine (the default) and by length with inner products", async () => {
    const pick = async (s: FaissDPRStore, lambda: number) =>
      (await s.maxMarginalRelevanceSearchByVector(q, { k: 2, fetchK: 4, lambda })).map((d) => d.id);
    const cos = await store();
    const ip = await store("inner_product");
    expect(cos.mmrSimilarity).toBe("cosine");
    // cosine: A (cos 1) first; then B scores 0.5·0.707 − 0.5·0.707 = 0, E 0.5·0 − 0.5·0 = 0,
    // C 0.5·0.696 − 0.5·0.696 = 0: a three-way tie at 0 goes to the earliest candidate, B (IP rank 1)
    expect(await pick(cos, 0.5)).toEqual(["A", "B"]);
    // inner product: B (q·B = 3) and C (3) lead A (1); B first (rank order), then C's
    // redundancy with B is 18.3 (A: 3, E: 0), so E (0.5·0 − 0.5·0 = 0) beats A (0.5 − 1.5 = −1)
    expect(await pick(ip, 0.5)).toEqual(["B", "E"]);
    // with λ = 0.9 relevance dominates under cosine, and inner products pick the long twins
    expect(await pick(cos, 0.9)).toEqual(["A", "B"]);
    expect(await pick(ip, 0.9)).toEqual(["B", "C"]);
    await expect(FaissDPRStore.fromTexts(["x"], {}, new HashEmbeddings(3), { mmrSimilarity: "l2" as never })).rejects.toThrow(
      /mmrSimilarity must be "cosine" or "inner_product", got "l2"/,
    );
  });

  it("with cosine, picks exactly what @langchain/core's maximalMarginalRelevance picks from the same candidates", async () => {
    const d = 24;
    const n = 300;
    // unnormalised vectors (norms 0.5..3) so cosine and inner product differ
    const data = clustered(n, d, 6, 41, 0.9);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) data[i * d + j]! *= 0.5 + (i % 6) / 2;
    const s = await FaissDPRStore.fromVectors(
      data,
      Array.from({ length: n }, (_, i) => new Document({ pageContent: `v${i}`, id: String(i) })),
      new HashEmbeddings(d),
      { dimensions: d },
    );
    const ipStore = new FaissDPRStore(new HashEmbeddings(d), { dimensions: d, mmrSimilarity: "inner_product" });
    await ipStore.mergeFrom(s);
    let compared = 0;
    let reordered = 0;
    let differsFromInnerProduct = 0;
    for (const [qi, lambda, k, fetchK] of [
      [3, 0.5, 5, 20],
      [77, 0.2, 8, 40],
      [150, 0.9, 4, 10],
      [299, 0, 6, 30],
      [12, 1, 3, 20],
    ] as const) {
      const query = Array.from(data.subarray(qi * d, (qi + 1) * d), (x, j) => x + 0.05 * Math.cos(j + qi));
      const [cands] = await s.searchVectors([query], { k: fetchK });
      const candVectors = cands!.map(([doc]) => Array.from(data.subarray(Number(doc.id) * d, (Number(doc.id) + 1) * d)));
      const expected = maximalMarginalRelevance(query, candVectors, lambda, k).map((i) => cands![i]![0].id);
      const got = (await s.maxMarginalRelevanceSearchByVector(query, { k, fetchK, lambda })).map((doc) => doc.id);
      expect(got).toEqual(expected);
      compared++;
      if (
        got.join() !==
        cands!
          .slice(0, k)
          .map(([doc]) => doc.id)
          .join()
      )
        reordered++;
      const byIp = (await ipStore.maxMarginalRelevanceSearchByVector(query, { k, fetchK, lambda })).map((doc) => doc.id);
      if (byIp.join() !== got.join()) differsFromInnerProduct++;
    }
    expect(compared).toBe(5);
    expect(reordered).toBeGreaterThanOrEqual(3); // MMR did move away from plain ranking
    expect(differsFromInnerProduct).toBeGreaterThanOrEqual(2); // and the similarity choice mattered
  });
});

import { describe, expect, it } from "vitest";
import { Document } from "@langchain/core/documents";
import { DPRRetriever } from "../../src/retrievers/dpr-retriever.js";
import { CORPUS, HashEmbeddings, OverlapReranker, VersionedMemoryStore } from "./helpers.js";

async function setup(delayMs = 0) {
  const embeddings = new HashEmbeddings(64, delayMs);
  const store = await VersionedMemoryStore.fromDocs(CORPUS, embeddings);
  return { embeddings, store };
}

const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

describe("DPRRetriever", () => {
  it("returns the k documents with the highest inner product; scores and timings in the result, not in metadata", async () => {
    const { embeddings, store } = await setup();
    const retriever = new DPRRetriever({ vectorStore: store, k: 3 });
    const docs = await retriever.invoke("vitamin C scurvy");
    expect(docs).toHaveLength(3);
    const q = embeddings.embed("vitamin C scurvy");
    const expected = CORPUS.map((d) => ({ id: d.id, s: dot(q, embeddings.embed(d.pageContent)) }))
      .sort((a, b) => b.s - a.s)
      .slice(0, 3);
    expect(docs.map((d) => d.id)).toEqual(expected.map((e) => e.id));
    // The stored metadata, nothing per-query: the same passage compares equal across queries.
    docs.forEach((d) => expect(d.metadata).toEqual(CORPUS.find((c) => c.id === d.id)!.metadata));
    const { documents, scores, timings } = await retriever.retrieve("vitamin C scurvy", { useCache: false });
    expect(documents.map((d) => d.id)).toEqual(expected.map((e) => e.id));
    scores.forEach((s, i) => expect(s).toBeCloseTo(expected[i]!.s, 10));
    expect(timings.cacheHit).toBe(false);
    expect(timings.encodeMs).toBeGreaterThanOrEqual(0);
    expect(timings.searchMs).toBeGreaterThanOrEqual(0);
    expect(timings.rerankMs).toBe(0);
    expect(timings.totalMs).toBeGreaterThanOrEqual(timings.encodeMs + timings.searchMs - 1e-6);
    // Scores in metadata when asked for, per retriever or per call.
    const withScores = await new DPRRetriever({ vectorStore: store, k: 3, includeScores: true }).invoke("vitamin C scurvy");
    withScores.forEach((d, i) => expect(d.metadata.score).toBeCloseTo(expected[i]!.s, 10));
    const perCall = await retriever.retrieve("vitamin C scurvy", { includeScores: true });
    expect(perCall.timings.cacheHit).toBe(true);
    perCall.documents.forEach((d, i) => expect(d.metadata.score).toBe(scores[i]));
    expect(CORPUS.every((c) => !("score" in c.metadata))).toBe(true); // inputs never written
  });

  it("serves a repeated query from the cache without encoding or searching, whitespace and case normalised", async () => {
    const { embeddings, store } = await setup();
    const retriever = new DPRRetriever({ vectorStore: store, k: 3 });
    const first = await retriever.retrieve("Vitamin C  scurvy");
    const second = await retriever.retrieve("  vitamin c scurvy ");
    expect(embeddings.queryCalls).toBe(1);
    expect(store.searchCalls).toBe(1);
    expect(second.documents.map((d) => d.id)).toEqual(first.documents.map((d) => d.id));
    expect(second.scores).toEqual(first.scores);
    expect(second.timings).toMatchObject({ cacheHit: true, encodeMs: 0, searchMs: 0, rerankMs: 0 });
    const stats = retriever.getStats();
    expect(stats).toMatchObject({ requests: 2, cacheHits: 1, cacheMisses: 1, hitRate: 0.5, cacheSize: 1 });
  });

  it("keeps case in the key when caseSensitive is set", async () => {
    const { embeddings, store } = await setup();
    const retriever = new DPRRetriever({ vectorStore: store, k: 2, cache: { caseSensitive: true } });
    await retriever.invoke("Scurvy");
    await retriever.invoke("scurvy");
    expect(embeddings.queryCalls).toBe(2);
  });

  it("keys the cache on k and on the filter as stable JSON", async () => {
    const { embeddings, store } = await setup();
    const retriever = new DPRRetriever({ vectorStore: store, k: 3 });
    await retriever.retrieve("vitamin", { k: 2 });
    await retriever.retrieve("vitamin", { k: 3 });
    expect(embeddings.queryCalls).toBe(2);
    const a = await retriever.retrieve("vitamin", { filter: { topic: "nutrition", x: 1 } });
    const b = await retriever.retrieve("vitamin", { filter: { x: 1, topic: "nutrition" } });
    expect(embeddings.queryCalls).toBe(3);
    expect(b.timings.cacheHit).toBe(true);
    expect(a.documents.every((d) => d.metadata.topic === "nutrition")).toBe(true);
    const c = await retriever.retrieve("vitamin", { filter: { topic: "food" } });
    expect(c.timings.cacheHit).toBe(false);
    expect(c.documents.map((d) => d.id)).toEqual(["d3"]);
  });

  it("invalidates the cache when the store's version changes, and returns the new document", async () => {
    const { embeddings, store } = await setup();
    const retriever = new DPRRetriever({ vectorStore: store, k: 1 });
    const before = await retriever.invoke("yellow fever mosquito virus");
    await store.addDocuments([
      new Document({ pageContent: "Yellow fever virus is spread by mosquito bites.", metadata: { id: "d9" }, id: "d9" }),
    ]);
    const after = await retriever.retrieve("yellow fever mosquito virus");
    expect(embeddings.queryCalls).toBe(2);
    expect(after.timings.cacheHit).toBe(false);
    expect(before[0]!.id).not.toBe("d9");
    expect(after.documents[0]!.id).toBe("d9");
    expect(retriever.getStats().invalidations).toBe(1);
    await store.delete({ ids: ["d9"] });
    const afterDelete = await retriever.invoke("yellow fever mosquito virus");
    expect(afterDelete[0]!.id).toBe(before[0]!.id);
  });

  it("expires entries after the TTL and evicts the least recently used beyond maxEntries", async () => {
    const { embeddings, store } = await setup();
    let now = 1_000;
    const retriever = new DPRRetriever({ vectorStore: store, k: 1, cache: { ttlMs: 100, maxEntries: 2, now: () => now } });
    await retriever.invoke("scurvy");
    now += 99;
    await retriever.invoke("scurvy");
    expect(embeddings.queryCalls).toBe(1);
    now += 1; // 100 ms after insertion: expired
    await retriever.invoke("scurvy");
    expect(embeddings.queryCalls).toBe(2);
    await retriever.invoke("insulin"); // cache: scurvy, insulin
    await retriever.invoke("scurvy"); // hit → scurvy most recent
    await retriever.invoke("malaria"); // evicts insulin
    expect(embeddings.queryCalls).toBe(4);
    await retriever.invoke("scurvy");
    expect(embeddings.queryCalls).toBe(4);
    await retriever.invoke("insulin");
    expect(embeddings.queryCalls).toBe(5);
    expect(retriever.getStats().cacheSize).toBe(2);
  });

  it("bypasses the cache for a store without a version unless assumeStaticStore is set", async () => {
    const embeddings = new HashEmbeddings();
    const store = await VersionedMemoryStore.fromDocs(CORPUS, embeddings);
    const unversioned = new Proxy(store, {
      get: (t, p) => (p === "version" ? undefined : Reflect.get(t, p, t)),
    });
    const plain = new DPRRetriever({ vectorStore: unversioned, k: 1 });
    await plain.invoke("scurvy");
    await plain.invoke("scurvy");
    expect(embeddings.queryCalls).toBe(2);
    expect(plain.getStats()).toMatchObject({ cacheBypassed: 2, cacheHits: 0 });

    const trusting = new DPRRetriever({ vectorStore: unversioned, k: 1, cache: { assumeStaticStore: true } });
    await trusting.invoke("scurvy");
    await trusting.invoke("scurvy");
    expect(embeddings.queryCalls).toBe(3);
    await trusting.addDocuments([new Document({ pageContent: "scurvy scurvy scurvy", metadata: { id: "s" }, id: "s" })]);
    const docs = await trusting.invoke("scurvy");
    expect(embeddings.queryCalls).toBe(4);
    expect(docs[0]!.id).toBe("s");
  });

  it("does not cache with cache: false or useCache: false", async () => {
    const { embeddings, store } = await setup();
    const off = new DPRRetriever({ vectorStore: store, k: 1, cache: false });
    await off.invoke("scurvy");
    await off.invoke("scurvy");
    const on = new DPRRetriever({ vectorStore: store, k: 1 });
    await on.retrieve("scurvy", { useCache: false });
    await on.retrieve("scurvy", { useCache: false });
    expect(embeddings.queryCalls).toBe(4);
  });

  it("reranks fetchK candidates and returns the top k in the reranker's order", async () => {
    const { store } = await setup();
    const reranker = new OverlapReranker(10, 5);
    const retriever = new DPRRetriever({ vectorStore: store, k: 2, fetchK: 8, reranker });
    const dense = await new DPRRetriever({ vectorStore: store, k: 8, cache: false, includeScores: true }).invoke(
      "lemons sailors scurvy voyages",
    );
    const r = await retriever.retrieve("lemons sailors scurvy voyages");
    expect(r.documents).toHaveLength(2);
    expect(r.documents[0]!.id).toBe("d6"); // 4 query words
    expect(r.documents[0]!.metadata.relevanceScore).toBe(4);
    expect(r.documents[0]!.metadata).not.toHaveProperty("score");
    expect(r.scores[0]).toBeCloseTo(dense.find((d) => d.id === "d6")!.metadata.score, 12); // the dense score it was found with
    expect(r.timings.rerankMs).toBeGreaterThanOrEqual(4);
    const noRerank = await retriever.retrieve("lemons sailors scurvy voyages", { rerank: false });
    expect(noRerank.documents.map((d) => d.id)).toEqual(dense.slice(0, 2).map((d) => d.id));
    expect(noRerank.timings.rerankMs).toBe(0);
    expect(reranker.calls).toBe(1);
    expect(retriever.getStats().rerank.count).toBe(1);
  });

  it("reports running percentiles per stage", async () => {
    const { store } = await setup(2);
    const retriever = new DPRRetriever({ vectorStore: store, k: 1, cache: false });
    for (let i = 0; i < 20; i++) await retriever.invoke(`query ${i}`);
    const s = retriever.getStats();
    expect(s.encode.count).toBe(20);
    expect(s.encode.p50).toBeGreaterThanOrEqual(1.5);
    expect(s.encode.p95).toBeGreaterThanOrEqual(s.encode.p50);
    expect(s.total.p50).toBeGreaterThanOrEqual(s.encode.p50);
    expect(Number.isNaN(s.hitRate)).toBe(true);
  });

  it("rejects bad input with messages naming the problem", async () => {
    const { store } = await setup();
    const retriever = new DPRRetriever({ vectorStore: store });
    await expect(retriever.retrieve("  ")).rejects.toThrow("DPRRetriever: query must be a non-empty string");
    await expect(retriever.retrieve("x", { k: 0 })).rejects.toThrow("DPRRetriever: k must be an integer ≥ 1, got 0");
    await expect(retriever.retrieve("x", { rerank: true })).rejects.toThrow(/rerank was requested but no reranker/);
    expect(() => new DPRRetriever({ vectorStore: store, fetchK: 1.5 })).toThrow(/fetchK must be an integer ≥ 1, got 1.5/);
  });

  it("aborts between stages and caches nothing", async () => {
    const { embeddings, store } = await setup(20);
    const retriever = new DPRRetriever({ vectorStore: store, k: 1 });
    const controller = new AbortController();
    const p = retriever.retrieve("scurvy", { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("client went away")), 5);
    await expect(p).rejects.toMatchObject({ name: "AbortError", message: /client went away/ });
    expect(store.searchCalls).toBe(0);
    expect(retriever.getStats().cacheSize).toBe(0);
    await retriever.invoke("scurvy");
    expect(embeddings.queryCalls).toBe(2);
  });
});

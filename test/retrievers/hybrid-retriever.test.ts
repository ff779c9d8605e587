import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Document, type DocumentInterface } from "@langchain/core/documents";
import { HybridRetriever, type ScoredSearcher } from "../../src/retrievers/hybrid-retriever.js";
import { TwoStageRetriever } from "../../src/retrievers/two-stage-retriever.js";
import { DPRRetriever } from "../../src/retrievers/dpr-retriever.js";
import { BM25Retriever } from "../../src/retrievers/bm25/bm25-retriever.js";
import { reciprocalRankFusion } from "../../src/retrievers/fusion.js";
import { makeRealStack, OverlapReranker, type RealStack } from "./helpers.js";

/** A side that returns a fixed ranking (hand-built), whatever the query. */
function fixedSide(rows: Array<[string, number]>): ScoredSearcher & { depths: number[] } {
  const depths: number[] = [];
  return {
    depths,
    async searchWithScores(_q: string, depth: number) {
      depths.push(depth);
      return rows
        .slice(0, depth)
        .map(([id, s]): [DocumentInterface, number] => [new Document({ pageContent: `text of ${id}`, metadata: { id, score: s }, id }), s]);
    },
  };
}

describe("HybridRetriever on hand-built rankings", () => {
  const dense = () =>
    fixedSide([
      ["a", 0.9],
      ["b", 0.8],
      ["c", 0.5],
    ]);
  const sparse = () =>
    fixedSide([
      ["c", 12],
      ["d", 8],
      ["a", 4],
    ]);

  it("fuses by RRF (k=60) with exact scores, deduplicates by id and records per-side ranks", async () => {
    const hybrid = new HybridRetriever({ dense: dense(), sparse: sparse(), k: 4, includeScores: true });
    const docs = await hybrid.invoke("anything");
    expect(docs.map((d) => d.id)).toEqual(["a", "c", "b", "d"]);
    expect(docs[0]!.metadata).toMatchObject({
      fusedScore: 1 / 61 + 1 / 63,
      fusion: "rrf",
      denseRank: 1,
      sparseRank: 3,
      denseScore: 0.9,
      sparseScore: 4,
    });
    expect(docs[2]!.metadata).toMatchObject({ fusedScore: 1 / 62, denseRank: 2, sparseRank: null, sparseScore: null });
    expect(docs[0]!.metadata.score).toBeUndefined();
  });

  it("keeps per-query numbers out of metadata by default; the fused scores are in retrieve()'s result", async () => {
    const hybrid = new HybridRetriever({ dense: dense(), sparse: sparse(), k: 4 });
    const r = await hybrid.retrieve("anything");
    expect(r.documents.map((d) => d.id)).toEqual(["a", "c", "b", "d"]);
    expect(r.documents.map((d) => d.metadata)).toEqual(["a", "c", "b", "d"].map((id) => ({ id }))); // side scores dropped too
    [1 / 61 + 1 / 63, 1 / 61 + 1 / 63, 1 / 62, 1 / 62].forEach((e, i) => expect(r.scores[i]).toBeCloseTo(e, 15));
    const perCall = await hybrid.retrieve("anything", { includeScores: true });
    expect(perCall.documents[0]!.metadata.fusedScore).toBe(r.scores[0]);
  });

  it("fuses by min-max linear combination with alpha", async () => {
    const hybrid = new HybridRetriever({ dense: dense(), sparse: sparse(), k: 4, fusion: "linear", alpha: 0.7, includeScores: true });
    const docs = await hybrid.invoke("anything");
    // dense min-max: a 1, b 0.75, c 0 ; sparse: c 1, d 0.5, a 0
    expect(docs.map((d) => d.id)).toEqual(["a", "b", "c", "d"]);
    const s = docs.map((d) => d.metadata.fusedScore as number);
    [0.7, 0.7 * 0.75, 0.3, 0.3 * 0.5].forEach((e, i) => expect(s[i]).toBeCloseTo(e, 12));
  });

  it("takes each side to its own depth and returns k", async () => {
    const d = dense();
    const sp = sparse();
    const hybrid = new HybridRetriever({ dense: d, sparse: sp, k: 2, denseK: 1, sparseK: 2 });
    const docs = await hybrid.invoke("q");
    expect(d.depths).toEqual([1]);
    expect(sp.depths).toEqual([2]);
    // dense: a(1) ; sparse: c(1), d(2) → a and c tie at 1/61 → id order
    expect(docs.map((x) => x.id)).toEqual(["a", "c"]);
  });

  it("throws when a result has no id, and for bad parameters", async () => {
    const noId: ScoredSearcher = { searchWithScores: async () => [[new Document({ pageContent: "x" }), 1]] };
    await expect(new HybridRetriever({ dense: noId, sparse: sparse() }).invoke("q")).rejects.toThrow(
      "HybridRetriever: dense result at rank 1 has no id (set Document.id or metadata.id, or pass getId)",
    );
    expect(() => new HybridRetriever({ dense: dense(), sparse: sparse(), alpha: 1.5 })).toThrow(/alpha must be in \[0, 1\], got 1.5/);
    expect(() => new HybridRetriever({ dense: dense(), sparse: {} as never })).toThrow(/params.sparse must be a vector store, a retriever/);
  });
});

describe("HybridRetriever and TwoStageRetriever over FaissDPRStore + DPREmbeddings + BM25", () => {
  let stack: RealStack;
  beforeAll(async () => {
    stack = await makeRealStack();
  });
  afterAll(async () => {
    await stack?.cleanup();
  });

  it("equals RRF of the store's and the BM25 index's own rankings", async () => {
    const q = "lemons scurvy sailors";
    const hybrid = new HybridRetriever({
      dense: stack.store,
      sparse: new BM25Retriever({ index: stack.bm25 }),
      k: 5,
      denseK: 5,
      sparseK: 4,
      includeScores: true,
    });
    const got = await hybrid.invoke(q);
    const denseRank = await stack.store.similaritySearchWithScore(q, 5);
    const sparseRank = stack.bm25.search(q, 4);
    const expected = reciprocalRankFusion([denseRank.map(([d]) => ({ id: d.id! })), sparseRank.map((h) => ({ id: h.id }))], { limit: 5 });
    expect(got.map((d) => d.id)).toEqual(expected.map((e) => e.id));
    got.forEach((d, i) => expect(d.metadata.fusedScore).toBeCloseTo(expected[i]!.score, 12));
    // BM25's top document ("d6": every query word) is in the fused list with its BM25 score
    const d6 = got.find((d) => d.id === "d6")!;
    expect(d6.metadata.sparseRank).toBe(1);
    expect(d6.metadata.sparseScore).toBeCloseTo(sparseRank[0]!.score, 10);
    expect(new Set(got.map((d) => d.id)).size).toBe(got.length);
  });

  it("applies a metadata filter to both sides", async () => {
    const hybrid = new HybridRetriever({ dense: stack.store, sparse: stack.bm25, k: 8 });
    const docs = await hybrid.retrieve("vitamin C scurvy lemons", { filter: { topic: "nutrition" } });
    expect(docs.documents.length).toBeGreaterThan(0);
    expect(docs.documents.every((d) => d.metadata.topic === "nutrition")).toBe(true);
    expect(new Set(docs.documents.map((d) => d.id))).toEqual(new Set(["d1", "d2", "d7"]));
    const byPredicate = await hybrid.retrieve("vitamin C scurvy lemons", { filter: (d: DocumentInterface) => d.metadata.topic === "food" });
    expect(byPredicate.documents.map((d) => d.id)).toEqual(["d3"]);
  });

  it("linear fusion with alpha = 1 follows the dense ranking, alpha = 0 the BM25 ranking", async () => {
    const q = "vitamin C deficiency";
    const denseOnly = await new HybridRetriever({
      dense: stack.store,
      sparse: stack.bm25,
      fusion: "linear",
      alpha: 1,
      k: 3,
      denseK: 8,
      sparseK: 8,
    }).invoke(q);
    const sparseOnly = await new HybridRetriever({
      dense: stack.store,
      sparse: stack.bm25,
      fusion: "linear",
      alpha: 0,
      k: 3,
      denseK: 8,
      sparseK: 8,
    }).invoke(q);
    expect(denseOnly.map((d) => d.id)).toEqual((await stack.store.similaritySearchWithScore(q, 3)).map(([d]) => d.id));
    expect(sparseOnly.map((d) => d.id)).toEqual(stack.bm25.search(q, 3).map((h) => h.id));
  });

  it("two-stage: hybrid top-100 (clamped to the corpus) → reranker → top-k in the reranker's order", async () => {
    const hybrid = new HybridRetriever({ dense: stack.store, sparse: stack.bm25, k: 10 });
    const reranker = new OverlapReranker(10);
    const twoStage = new TwoStageRetriever({ firstStage: hybrid, reranker, candidates: 100, k: 2 });
    const r = await twoStage.retrieve("sailors voyages scurvy lack");
    // overlap: d6 sailors+voyages+scurvy = 3, d1 scurvy+lack = 2, every other passage ≤ 1
    expect(r.documents.map((d) => d.id)).toEqual(["d6", "d1"]);
    expect(r.documents.map((d) => d.metadata.relevanceScore)).toEqual([3, 2]);
    const fused = await hybrid.retrieve("sailors voyages scurvy lack", { k: 100 });
    r.scores.forEach((s, i) => expect(s).toBe(fused.scores[fused.documents.findIndex((d) => d.id === r.documents[i]!.id)]));
    expect(r.timings.encodeMs).toBeGreaterThan(0);
    // without the reranker: the first stage's top k
    const plain = new TwoStageRetriever({ firstStage: hybrid, k: 2 });
    const first = await hybrid.retrieve("sailors lemons voyages scurvy", { k: 2 });
    expect((await plain.invoke("sailors lemons voyages scurvy")).map((d) => d.id)).toEqual(first.documents.map((d) => d.id));
  });

  it("DPRRetriever + CrossEncoderReranker: top k of fetchK candidates in the cross-encoder's score order", async () => {
    const q = "vitamin C deficiency and scurvy";
    const retriever = new DPRRetriever({ vectorStore: stack.store, k: 3, fetchK: 6, reranker: stack.reranker, cache: false });
    const got = await retriever.retrieve(q);
    const candidates = (await stack.store.similaritySearchWithScore(q, 6)).map(([d]) => d);
    const scores = await stack.reranker.scorePairs(
      q,
      candidates.map((d) => d.pageContent),
    );
    const expected = candidates
      .map((d, i) => ({ id: d.id, s: scores[i]!, i }))
      .sort((a, b) => b.s - a.s || a.i - b.i)
      .slice(0, 3);
    expect(got.documents.map((d) => d.id)).toEqual(expected.map((e) => e.id));
    got.documents.forEach((d, i) => expect(d.metadata.relevanceScore).toBeCloseTo(expected[i]!.s, 5));
    // the reranker really reorders here (fixed seeds): its top 3 is not the dense top 3
    expect(got.documents.map((d) => d.id)).not.toEqual(candidates.slice(0, 3).map((d) => d.id));
    expect(got.timings.rerankMs).toBeGreaterThan(0);
  });

  it("DPRRetriever over FaissDPRStore returns the store's top k with its inner-product scores", async () => {
    const retriever = new DPRRetriever({ vectorStore: stack.store, k: 3, cache: { assumeStaticStore: true } });
    const q = "insulin and blood sugar";
    const got = await retriever.retrieve(q);
    const expected = await stack.store.similaritySearchWithScore(q, 3);
    expect(got.documents.map((d) => d.id)).toEqual(expected.map(([d]) => d.id));
    got.scores.forEach((s, i) => expect(s).toBeCloseTo(expected[i]![1], 5));
    const again = await retriever.retrieve(q);
    expect(again.timings.cacheHit).toBe(true);
    // fetchK beyond the store size is clamped instead of failing
    const reranking = new DPRRetriever({ vectorStore: stack.store, k: 3, fetchK: 100, reranker: new OverlapReranker(10), cache: false });
    expect(await reranking.invoke(q)).toHaveLength(3);
  });
});

/**
 * The LangChain behaviours a user relies on, exercised through @langchain/core and
 * @langchain/classic on the real classes (tiny random model, real faiss, real ONNX):
 * MultiQueryRetriever de-duplication, callbacks with child runs, streamEvents, the timings event;
 * the store under asRetriever (k beyond the store, an empty store), ScoreThresholdRetriever, the
 * indexing API with forceUpdate (upsert by id, getByIds), MMR, ParentDocumentRetriever,
 * EnsembleRetriever, ContextualCompressionRetriever with the reranker's LangChain argument order,
 * BM25Retriever.fromDocuments, LCEL batch and stream; and migration: a folder written now by
 * @langchain/community's FaissStore and a LangChain Python save_local folder (index.pkl from
 * scripts/gen-langchain-fixtures.py) opened and searched through a retriever.
 *
 * Edge cases of each behaviour are in the component suites (test/vectorstores/*.langchain.test.ts,
 * langchain-import.test.ts, test/retrievers, test/rerankers); this file is the user's-eye tour.
 */
import { copyFile, mkdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import { Document, type DocumentInterface } from "@langchain/core/documents";
import { Embeddings } from "@langchain/core/embeddings";
import { index } from "@langchain/core/indexing";
import { RunnableLambda } from "@langchain/core/runnables";
import { InMemoryStore } from "@langchain/core/stores";
import type { StreamEvent } from "@langchain/core/tracers/log_stream";
import { maximalMarginalRelevance } from "@langchain/core/utils/math";
import { FakeListChatModel } from "@langchain/core/utils/testing";
import { ContextualCompressionRetriever } from "@langchain/classic/retrievers/contextual_compression";
import { EnsembleRetriever } from "@langchain/classic/retrievers/ensemble";
import { MultiQueryRetriever } from "@langchain/classic/retrievers/multi_query";
import { ParentDocumentRetriever } from "@langchain/classic/retrievers/parent_document";
import { ScoreThresholdRetriever } from "@langchain/classic/retrievers/score_threshold";
import { InMemoryRecordManager } from "@langchain/community/indexes/memory";
import { FaissStore } from "@langchain/community/vectorstores/faiss";
import { RecursiveCharacterTextSplitter } from "@langchain/textsplitters";
import { FaissDPRStore } from "../../src/vectorstores/faiss-dpr-store.js";
import { DPRRetriever } from "../../src/retrievers/dpr-retriever.js";
import { HybridRetriever } from "../../src/retrievers/hybrid-retriever.js";
import { TwoStageRetriever } from "../../src/retrievers/two-stage-retriever.js";
import { BM25Retriever } from "../../src/retrievers/bm25/bm25-retriever.js";
import { RETRIEVAL_TIMINGS_EVENT, type RetrievalTimings } from "../../src/retrievers/types.js";
import { CORPUS, makeRealStack, type RealStack } from "../retrievers/helpers.js";
import { dot, withWarnings } from "../vectorstores/helpers.js";

/** Records every run start with its parent, by name, and the custom events. */
class RunRecorder extends BaseCallbackHandler {
  name = "run-recorder";
  runs: Array<{ kind: string; name: string; runId: string; parentRunId?: string }> = [];
  custom: Array<{ event: string; data: unknown; runId: string }> = [];
  ended = new Set<string>();

  override handleRetrieverStart(
    retriever: { id: string[] },
    _query: string,
    runId: string,
    parentRunId?: string,
    _tags?: string[],
    _metadata?: Record<string, unknown>,
    name?: string,
  ): void {
    this.runs.push({ kind: "retriever", name: name ?? retriever.id.at(-1)!, runId, parentRunId });
  }

  // @langchain/core calls handlers with (chain, inputs, runId, parentRunId, tags, metadata, runType,
  // runName), whatever the declared parameter names say.
  override handleChainStart(chain: { id: string[] }, _inputs: unknown, runId: string, parentRunId?: string): void {
    this.runs.push({ kind: "chain", name: chain.id.at(-1)!, runId, parentRunId });
  }

  override handleRetrieverEnd(_documents: unknown, runId: string): void {
    this.ended.add(runId);
  }

  override handleChainEnd(_outputs: unknown, runId: string): void {
    this.ended.add(runId);
  }

  override handleCustomEvent(event: string, data: unknown, runId: string): void {
    this.custom.push({ event, data, runId });
  }

  byName(name: string) {
    const found = this.runs.filter((r) => r.name === name);
    if (found.length === 0) throw new Error(`no run named ${name}; runs: ${this.runs.map((r) => r.name).join(", ")}`);
    return found;
  }
}

describe("LangChain behaviours: retrievers", () => {
  let stack: RealStack;
  beforeAll(async () => {
    stack = await makeRealStack();
  });
  afterAll(async () => {
    await stack?.cleanup();
  });

  it("MultiQueryRetriever keeps one document per passage: no per-query numbers in metadata", async () => {
    const retriever = new DPRRetriever({ vectorStore: stack.store, k: 4, cache: false });
    const queries = ["vitamin C and scurvy", "lemons on long voyages", "what do citrus fruits contain"];
    const llm = new FakeListChatModel({ responses: [queries.join("\n")] });
    const multi = MultiQueryRetriever.fromLLM({ llm, retriever, queryCount: 3 });
    const docs = await multi.invoke("why did sailors get scurvy?");
    const perQuery = await Promise.all(queries.map((q) => retriever.invoke(q)));
    const distinct = new Set(perQuery.flat().map((d) => d.id));
    expect(perQuery.flat().length).toBeGreaterThan(distinct.size); // the queries overlap
    expect(docs).toHaveLength(distinct.size);
    expect(new Set(docs.map((d) => d.id))).toEqual(distinct);
    // The same holds for a hybrid retriever, whose fusion numbers stay out of metadata too.
    const hybrid = new HybridRetriever({ dense: stack.store, sparse: stack.bm25, k: 4 });
    const hybridDocs = await MultiQueryRetriever.fromLLM({
      llm: new FakeListChatModel({ responses: [queries.join("\n")] }),
      retriever: hybrid,
    }).invoke("x");
    const hybridDistinct = new Set((await Promise.all(queries.map((q) => hybrid.invoke(q)))).flat().map((d) => d.id));
    expect(hybridDocs).toHaveLength(hybridDistinct.size);
  });

  it("callbacks see the stages as child runs: TwoStage → first stage (Hybrid → BM25) → CrossEncoderReranker", async () => {
    const hybrid = new HybridRetriever({ dense: stack.store, sparse: new BM25Retriever({ index: stack.bm25 }), k: 10 });
    const twoStage = new TwoStageRetriever({ firstStage: hybrid, reranker: stack.reranker, candidates: 6, k: 3 });
    const recorder = new RunRecorder();
    const docs = await twoStage.invoke("lemons and scurvy", { callbacks: [recorder] });
    expect(docs).toHaveLength(3);
    const [top] = recorder.byName("TwoStageRetriever");
    const [first] = recorder.byName("HybridRetriever");
    const [bm25] = recorder.byName("BM25Retriever");
    const [rerank] = recorder.byName("CrossEncoderReranker");
    expect(top!.parentRunId).toBeUndefined();
    expect(first!.parentRunId).toBe(top!.runId);
    expect(bm25!.parentRunId).toBe(first!.runId);
    expect(rerank!.parentRunId).toBe(top!.runId);
    expect(rerank!.kind).toBe("chain");
    for (const r of recorder.runs) expect(recorder.ended.has(r.runId)).toBe(true);
    // Timings are a custom event of each retrieval run, never document metadata.
    const timings = recorder.custom.filter((c) => c.event === RETRIEVAL_TIMINGS_EVENT);
    expect(timings.map((t) => t.runId).sort()).toEqual([top!.runId, first!.runId, bm25!.runId].sort());
    const topTimings = timings.find((t) => t.runId === top!.runId)!.data as RetrievalTimings;
    expect(topTimings.rerankMs).toBeGreaterThan(0);
    expect(topTimings.totalMs).toBeGreaterThanOrEqual(topTimings.rerankMs);
    for (const d of docs) expect(d.metadata).not.toHaveProperty("latency");
  });

  it("retrieve() with callbacks is a retriever run like invoke, with the reranker as its child", async () => {
    const retriever = new DPRRetriever({ vectorStore: stack.store, k: 2, fetchK: 5, reranker: stack.reranker, cache: false });
    const recorder = new RunRecorder();
    const r = await retriever.retrieve("insulin", { callbacks: [recorder] });
    expect(r.documents).toHaveLength(2);
    const [run] = recorder.byName("DPRRetriever");
    expect(recorder.byName("CrossEncoderReranker")[0]!.parentRunId).toBe(run!.runId);
    expect(recorder.custom).toEqual([{ event: RETRIEVAL_TIMINGS_EVENT, data: r.timings, runId: run!.runId }]);
    // Without callbacks no run is recorded by this handler.
    const before = recorder.runs.length;
    await retriever.retrieve("insulin");
    expect(recorder.runs.length).toBe(before);
  });

  it("streamEvents (v2) shows the retriever, its reranker and the timings event", async () => {
    const retriever = new DPRRetriever({ vectorStore: stack.store, k: 2, fetchK: 5, reranker: stack.reranker, cache: false });
    const events: StreamEvent[] = [];
    for await (const e of retriever.streamEvents("malaria mosquitoes", { version: "v2" })) events.push(e);
    const kinds = events.map((e) => `${e.event}:${e.name}`);
    expect(kinds).toContain("on_retriever_start:DPRRetriever");
    expect(kinds).toContain("on_chain_start:CrossEncoderReranker");
    expect(kinds).toContain("on_chain_end:CrossEncoderReranker");
    expect(kinds).toContain(`on_custom_event:${RETRIEVAL_TIMINGS_EVENT}`);
    const end = events.find((e) => e.event === "on_retriever_end")!;
    const output = (end.data as { output: Array<{ metadata: Record<string, unknown> }> }).output;
    expect(output).toHaveLength(2);
    // The reranker's run opens and closes inside the retriever's run, before its timings and its end.
    const at = (kind: string) => kinds.indexOf(kind);
    expect(at("on_retriever_start:DPRRetriever")).toBe(0);
    expect(at("on_chain_start:CrossEncoderReranker")).toBeLessThan(at("on_chain_end:CrossEncoderReranker"));
    expect(at("on_chain_end:CrossEncoderReranker")).toBeLessThan(at(`on_custom_event:${RETRIEVAL_TIMINGS_EVENT}`));
    expect(at(`on_custom_event:${RETRIEVAL_TIMINGS_EVENT}`)).toBeLessThan(at("on_retriever_end:DPRRetriever"));
    const timings = events.find((e) => e.event === "on_custom_event")!.data as RetrievalTimings;
    expect(timings.cacheHit).toBe(false);
    expect(timings.rerankMs).toBeGreaterThan(0);
  });
});

describe("LangChain behaviours: FaissDPRStore with the DPR model", () => {
  let stack: RealStack;
  beforeAll(async () => {
    stack = await makeRealStack();
  });
  afterAll(async () => {
    await stack?.cleanup();
  });

  it("asRetriever() (default k 4) on 3 documents returns them with one warning; an empty store returns []", async () => {
    const small = await FaissDPRStore.fromDocuments(CORPUS.slice(0, 3), stack.embeddings);
    const { result, warnings } = await withWarnings(async () => [
      await small.asRetriever().invoke("vitamin C"),
      await small.asRetriever().invoke("rickets"),
      await new FaissDPRStore(stack.embeddings).asRetriever().invoke("anything"),
    ]);
    expect(result[0]!.map((d) => d.id).sort()).toEqual(["d1", "d2", "d3"]);
    expect(result[1]).toHaveLength(3);
    expect(result[2]).toEqual([]);
    expect(warnings).toEqual([
      "FaissDPRStore: k (4) is greater than the number of stored documents (3), setting k to 3 (warned once per store)",
    ]);
    // ScoreThresholdRetriever grows k by kIncrement until fewer come back: one round on 3 documents
    const threshold = ScoreThresholdRetriever.fromVectorStore(small, { minSimilarityScore: -1e9, kIncrement: 10, maxK: 100 });
    expect((await withWarnings(() => threshold.invoke("vitamin C"))).result).toHaveLength(3);
  });

  it("the indexing API (community InMemoryRecordManager) with forceUpdate re-adds ids in place; getByIds reads them back", async () => {
    const store = new FaissDPRStore(stack.embeddings);
    const records = new InMemoryRecordManager();
    await records.createSchema();
    const docs = CORPUS.map((d) => new Document({ pageContent: d.pageContent, metadata: { source: d.id } }));
    const first = await index({ docsSource: docs, recordManager: records, vectorStore: store, options: { cleanup: "full" } });
    expect(first).toEqual({ numAdded: 8, numUpdated: 0, numDeleted: 0, numSkipped: 0 });
    const again = await index({
      docsSource: docs,
      recordManager: records,
      vectorStore: store,
      options: { cleanup: "full", forceUpdate: true },
    });
    expect(again).toEqual({ numAdded: 0, numUpdated: 8, numDeleted: 0, numSkipped: 0 });
    expect(store.size).toBe(8);
    const keys = await records.listKeys();
    const back = await store.getByIds(keys);
    expect(back.map((d) => d.id)).toEqual(keys);
    expect(back.map((d) => d.metadata.source).sort()).toEqual(CORPUS.map((d) => d.id).sort());
    // the same ranking as a store built directly: upserts replaced vectors, they did not duplicate
    const direct = await store.similaritySearchWithScore("lemons and scurvy", 8);
    const reference = await stack.store.similaritySearchWithScore("lemons and scurvy", 8);
    expect(direct.map(([d]) => d.metadata.source)).toEqual(reference.map(([d]) => d.id));
    direct.forEach(([, score], i) => expect(score).toBeCloseTo(reference[i]![1], 5));
  });

  it("asRetriever({ searchType: 'mmr' }) picks what @langchain/core's maximalMarginalRelevance picks (cosine)", async () => {
    const query = "vitamin deficiency diseases";
    const mmr = await stack.store.asRetriever({ searchType: "mmr", k: 3, searchKwargs: { fetchK: 8, lambda: 0.3 } }).invoke(query);
    const q = await stack.embeddings.embedQuery(query);
    const candidates = await stack.store.similaritySearchVectorWithScore(q, 8);
    const vectors = await stack.embeddings.embedDocuments(candidates.map(([d]) => d.pageContent));
    const expected = maximalMarginalRelevance(q, vectors, 0.3, 3).map((i) => candidates[i]![0].id);
    expect(mmr.map((d) => d.id)).toEqual(expected);
  });

  it("ParentDocumentRetriever stores chunks in FaissDPRStore and returns their parents", async () => {
    const parents = [
      new Document({
        pageContent: `${CORPUS[0]!.pageContent} ${CORPUS[2]!.pageContent} ${CORPUS[5]!.pageContent}`,
        metadata: { topic: "scurvy" },
      }),
      new Document({ pageContent: `${CORPUS[3]!.pageContent} ${CORPUS[4]!.pageContent}`, metadata: { topic: "anatomy" } }),
    ];
    const retriever = new ParentDocumentRetriever({
      vectorstore: new FaissDPRStore(stack.embeddings),
      byteStore: new InMemoryStore<Uint8Array>(),
      childSplitter: new RecursiveCharacterTextSplitter({ chunkSize: 70, chunkOverlap: 0 }),
      childK: 2,
    });
    await retriever.addDocuments(parents);
    const child = retriever.vectorstore as FaissDPRStore;
    expect(child.size).toBeGreaterThan(parents.length); // split into sentences
    const got = await retriever.invoke(CORPUS[4]!.pageContent);
    expect(got[0]!.metadata.topic).toBe("anatomy"); // the chunk's own text finds its parent first
    expect(got.map((d) => d.pageContent)).toContain(parents[1]!.pageContent);
  });

  it("EnsembleRetriever over a DPR retriever and BM25Retriever.fromDocuments, reranked in ContextualCompressionRetriever", async () => {
    const bm25 = await BM25Retriever.fromDocuments(CORPUS, { k: 4 });
    const ensemble = new EnsembleRetriever({ retrievers: [stack.store.asRetriever({ k: 4 }), bm25], weights: [0.5, 0.5] });
    const fused = await ensemble.invoke("scurvy lemons");
    expect(fused.length).toBeGreaterThanOrEqual(4);
    expect(fused.map((d) => d.id)).toContain("d6"); // BM25's best match survives fusion
    const compressed = await new ContextualCompressionRetriever({ baseRetriever: ensemble, baseCompressor: stack.reranker }).invoke(
      "scurvy lemons",
    );
    // LangChain's reranker argument order: rerank(documents, query, { topN })
    const reranked = await stack.reranker.rerank(fused, "scurvy lemons", { topN: fused.length });
    expect(compressed.map((d) => d.id)).toEqual(reranked.map((r) => fused[r.index]!.id));
    expect(compressed.map((d) => d.metadata.relevanceScore)).toEqual(reranked.map((r) => r.relevanceScore));
  });

  it("in LCEL: batch and stream through retriever.pipe(...)", async () => {
    const chain = new DPRRetriever({ vectorStore: stack.store, k: 2, cache: false }).pipe(
      RunnableLambda.from((docs: DocumentInterface[]) => docs.map((d) => d.id).join(",")),
    );
    const questions = ["insulin", "malaria mosquitoes", "bones"];
    const batched = await chain.batch(questions);
    const single = await Promise.all(questions.map((q) => chain.invoke(q)));
    expect(batched).toEqual(single);
    const chunks: string[] = [];
    for await (const c of await chain.stream("insulin")) chunks.push(c);
    expect(chunks.join("")).toBe(single[0]);
  });
});

describe("LangChain behaviours: migrating from other LangChain stores", () => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const FIX = path.join(here, "..", "fixtures", "langchain");
  let stack: RealStack;
  beforeAll(async () => {
    stack = await makeRealStack();
  });
  afterAll(async () => {
    await stack?.cleanup();
  });

  it("a @langchain/community FaissStore built with DPREmbeddings opens converted and ranks as FaissDPRStore does", async () => {
    const dir = path.join(stack.root, "faissstore");
    const community = await FaissStore.fromDocuments(CORPUS, stack.embeddings);
    await community.save(dir);
    await expect(FaissDPRStore.loadFromFaissStore(dir, stack.embeddings)).rejects.toThrow(
      /is an L2 index .*Pass \{ metric: "convert-to-inner-product" \}/,
    );
    const migrated = await FaissDPRStore.loadFromFaissStore(dir, stack.embeddings, { metric: "convert-to-inner-product" });
    expect(migrated.size).toBe(CORPUS.length);
    for (const q of ["scurvy", "blood sugar", "mosquitoes and malaria"]) {
      const got = await new DPRRetriever({ vectorStore: migrated, k: 5, cache: false, includeScores: true }).invoke(q);
      const want = await stack.store.similaritySearchWithScore(q, 5);
      // FaissStore gives documents its own uuids (not Document.id); the metadata came along
      expect(got.map((d) => d.metadata.id)).toEqual(want.map(([d]) => d.id));
      got.forEach((d, i) => expect(d.metadata.score as number).toBeCloseTo(want[i]![1], 4));
    }
    // the migrated store is a FaissDPRStore: it saves and loads in our format
    await migrated.save(path.join(stack.root, "migrated"));
    expect((await FaissDPRStore.load(path.join(stack.root, "migrated"), stack.embeddings)).size).toBe(CORPUS.length);
  });

  it("a LangChain Python save_local folder opens and serves a retriever with faiss's inner-product ranking", async () => {
    const corpus = JSON.parse(await readFile(path.join(FIX, "corpus.json"), "utf8")) as {
      dims: number;
      documents: Array<{ id: string; page_content: string }>;
      vectors: number[][];
    };
    // index.faiss as Python's faiss writes it (faiss-node is the same library), index.pkl from the generator
    const dir = path.join(stack.root, "python");
    await mkdir(dir, { recursive: true });
    await copyFile(path.join(FIX, "python", "index.pkl"), path.join(dir, "index.pkl"));
    const faissNode = createRequire(import.meta.url)("faiss-node") as {
      IndexFlatIP: new (d: number) => { add(x: number[]): void; write(f: string): void };
    };
    const flat = new faissNode.IndexFlatIP(corpus.dims);
    for (const v of corpus.vectors) flat.add(v);
    flat.write(path.join(dir, "index.faiss"));
    /** Embeds a document id as its stored vector (the fixture's vectors stand for a model's). */
    class FixtureEmbeddings extends Embeddings {
      constructor() {
        super({});
      }
      async embedQuery(text: string): Promise<number[]> {
        return corpus.vectors[corpus.documents.findIndex((d) => d.id === text)]!;
      }
      async embedDocuments(texts: string[]): Promise<number[][]> {
        return Promise.all(texts.map((t) => this.embedQuery(t)));
      }
    }
    const store = await FaissDPRStore.loadFromPythonSaveLocal(dir, new FixtureEmbeddings());
    const retriever = store.asRetriever({ k: 3 });
    const queries = ["doc-apple", "doc-dpr", "doc-pasta"];
    const results = await retriever.batch(queries);
    results.forEach((docs, qi) => {
      const q = corpus.vectors[corpus.documents.findIndex((d) => d.id === queries[qi])]!;
      const byIp = corpus.documents.map((d, i) => [dot(q, corpus.vectors[i]!), d.page_content] as const).sort((a, b) => b[0] - a[0]);
      expect(docs.map((d) => d.pageContent)).toEqual(byIp.slice(0, 3).map(([, text]) => text));
    });
  });
});

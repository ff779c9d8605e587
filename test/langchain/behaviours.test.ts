/**
 * The LangChain behaviours a user relies on, exercised through @langchain/core and
 * @langchain/classic on the real classes (tiny random model, real faiss, real ONNX):
 * MultiQueryRetriever de-duplication, callbacks with child runs, streamEvents, the timings event.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import type { StreamEvent } from "@langchain/core/tracers/log_stream";
import { FakeListChatModel } from "@langchain/core/utils/testing";
import { MultiQueryRetriever } from "@langchain/classic/retrievers/multi_query";
import { DPRRetriever } from "../../src/retrievers/dpr-retriever.js";
import { HybridRetriever } from "../../src/retrievers/hybrid-retriever.js";
import { TwoStageRetriever } from "../../src/retrievers/two-stage-retriever.js";
import { BM25Retriever } from "../../src/retrievers/bm25/bm25-retriever.js";
import { RETRIEVAL_TIMINGS_EVENT, type RetrievalTimings } from "../../src/retrievers/types.js";
import { makeRealStack, type RealStack } from "../retrievers/helpers.js";

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
    const hybridDocs = await MultiQueryRetriever.fromLLM({ llm: new FakeListChatModel({ responses: [queries.join("\n")] }), retriever: hybrid }).invoke("x");
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

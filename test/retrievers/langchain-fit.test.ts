import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DocumentInterface } from "@langchain/core/documents";
import { ChatPromptTemplate } from "@langchain/core/prompts";
import { RunnableLambda, RunnablePassthrough, RunnableSequence } from "@langchain/core/runnables";
import { StringOutputParser } from "@langchain/core/output_parsers";
import { FakeListChatModel } from "@langchain/core/utils/testing";
import type { BaseMessage } from "@langchain/core/messages";
import { ContextualCompressionRetriever } from "@langchain/classic/retrievers/contextual_compression";
import { EnsembleRetriever } from "@langchain/classic/retrievers/ensemble";
import { DPRRetriever } from "../../src/retrievers/dpr-retriever.js";
import { HybridRetriever } from "../../src/retrievers/hybrid-retriever.js";
import { BM25Retriever } from "../../src/retrievers/bm25/bm25-retriever.js";
import { reciprocalRankFusion } from "../../src/retrievers/fusion.js";
import { makeRealStack, OverlapReranker, type RealStack } from "./helpers.js";

const formatDocs = (docs: DocumentInterface[]) => docs.map((d) => `[${d.id}] ${d.pageContent}`).join("\n");

describe("LangChain fit (real FaissDPRStore + DPREmbeddings + BM25)", () => {
  let stack: RealStack;
  beforeAll(async () => {
    stack = await makeRealStack();
  });
  afterAll(async () => {
    await stack?.cleanup();
  });

  it("an LCEL RAG chain: DPRRetriever → prompt → chat model → string", async () => {
    const retriever = new DPRRetriever({ vectorStore: stack.store, k: 2 });
    const prompt = ChatPromptTemplate.fromMessages([
      ["system", "Answer from the context only.\n\nContext:\n{context}"],
      ["human", "{question}"],
    ]);
    const model = new FakeListChatModel({ responses: ["Scurvy comes from a lack of vitamin C."] });
    const seen: BaseMessage[][] = [];
    const chain = RunnableSequence.from([
      { context: retriever.pipe(formatDocs), question: new RunnablePassthrough() },
      prompt,
      RunnableLambda.from((p: { toChatMessages(): BaseMessage[] }) => {
        seen.push(p.toChatMessages());
        return p;
      }),
      model,
      new StringOutputParser(),
    ]);
    const question = "what causes scurvy?";
    const answer = await chain.invoke(question);
    expect(answer).toBe("Scurvy comes from a lack of vitamin C.");
    const expectedDocs = await stack.store.similaritySearchWithScore(question, 2);
    const system = String(seen[0]![0]!.content);
    const human = String(seen[0]![1]!.content);
    expect(system).toContain(formatDocs(expectedDocs.map(([d]) => d)));
    expect(human).toBe(question);
  });

  it("the same chain runs over the HybridRetriever, and batch() works", async () => {
    const hybrid = new HybridRetriever({ dense: stack.store, sparse: stack.bm25, k: 2 });
    const chain = RunnableSequence.from([hybrid, RunnableLambda.from((docs: DocumentInterface[]) => docs.map((d) => d.id))]);
    const [a, b] = await chain.batch(["insulin blood sugar", "malaria mosquitoes"]);
    expect(a).toEqual((await hybrid.invoke("insulin blood sugar")).map((d) => d.id));
    expect(b).toEqual((await hybrid.invoke("malaria mosquitoes")).map((d) => d.id));
  });

  it("ContextualCompressionRetriever: DPRRetriever candidates reordered by a reranker", async () => {
    const base = new DPRRetriever({ vectorStore: stack.store, k: 8, cache: false });
    const compression = new ContextualCompressionRetriever({ baseRetriever: base, baseCompressor: new OverlapReranker(2) });
    const docs = await compression.invoke("sailors voyages scurvy lack");
    // overlap: d6 sailors+voyages+scurvy = 3, d1 scurvy+lack = 2, every other passage ≤ 1
    expect(docs.map((d) => d.id)).toEqual(["d6", "d1"]);
    expect(docs.map((d) => d.metadata.relevanceScore)).toEqual([3, 2]);
    expect(docs[0]!.metadata).not.toHaveProperty("score"); // per-query numbers only with includeScores
    const scored = new DPRRetriever({ vectorStore: stack.store, k: 8, cache: false, includeScores: true });
    const withScores = await new ContextualCompressionRetriever({ baseRetriever: scored, baseCompressor: new OverlapReranker(2) }).invoke(
      "sailors voyages scurvy lack",
    );
    expect(typeof withScores[0]!.metadata.score).toBe("number"); // the dense score survives the compressor
  });

  it("EnsembleRetriever over DPRRetriever and BM25Retriever orders by weighted RRF", async () => {
    const dense = new DPRRetriever({ vectorStore: stack.store, k: 4 });
    const sparse = new BM25Retriever({ index: stack.bm25, k: 4 });
    const ensemble = new EnsembleRetriever({ retrievers: [dense, sparse], weights: [0.7, 0.3] });
    const q = "vitamin D bone health";
    const docs = await ensemble.invoke(q);
    const d = await dense.invoke(q);
    const s = await sparse.invoke(q);
    const expected = reciprocalRankFusion([d.map((x) => ({ id: x.id! })), s.map((x) => ({ id: x.id! }))], { weights: [0.7, 0.3] });
    expect(new Set(docs.map((x) => x.id))).toEqual(new Set(expected.map((e) => e.id)));
    const score = new Map(expected.map((e) => [e.id, e.score]));
    const got = docs.map((x) => score.get(x.id!)!);
    for (let i = 1; i < got.length; i++) expect(got[i]!).toBeLessThanOrEqual(got[i - 1]! + 1e-15);
  });

  it("FaissDPRStore.asRetriever() and DPRRetriever agree", async () => {
    const q = "heart pumps blood";
    const viaStore = await stack.store.asRetriever(3).invoke(q);
    const viaDpr = await new DPRRetriever({ vectorStore: stack.store, k: 3 }).invoke(q);
    expect(viaDpr.map((x) => x.id)).toEqual(viaStore.map((x) => x.id));
  });
});

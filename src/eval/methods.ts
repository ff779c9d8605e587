/**
 * The evaluated methods, built from the classes an application ships: BM25Retriever, DPRRetriever
 * and HybridRetriever as first stages, TwoStageRetriever with the reranker as the second, so the
 * reported numbers exercise the shipped code.
 *
 * @module
 */
import type { DocumentInterface } from "@langchain/core/documents";
import type { BaseDocumentCompressor } from "@langchain/core/retrievers/document_compressors";

import { TwoStageRetriever } from "../retrievers/two-stage-retriever.js";
import type { RetrievalResult, RetrievalService } from "../retrievers/types.js";

const WHO = "evaluate";

/** The methods the evaluator knows, in report order. */
export const EVALUATION_METHODS = ["bm25", "dpr", "hybrid", "bm25+rerank", "dpr+rerank", "hybrid+rerank"] as const;

/** One retrieval method: a first stage (bm25, dpr, hybrid), optionally followed by the reranker. */
export type EvaluationMethod = (typeof EVALUATION_METHODS)[number];

/** A first stage. */
export type FirstStage = "bm25" | "dpr" | "hybrid";

/** Latency stages, in pipeline order: those of {@link RetrievalTimings}. */
export const LATENCY_STAGES = ["encode", "search", "rerank"] as const;

/** One latency stage. */
export type LatencyStage = (typeof LATENCY_STAGES)[number];

/** The first stage of each method. */
export const FIRST_STAGE: Record<EvaluationMethod, FirstStage> = {
  bm25: "bm25",
  dpr: "dpr",
  hybrid: "hybrid",
  "bm25+rerank": "bm25",
  "dpr+rerank": "dpr",
  "hybrid+rerank": "hybrid",
};

/** The stages each first stage runs (hybrid's search is HybridRetriever's: both searches and the fusion). */
export const STAGES_OF: Record<FirstStage, LatencyStage[]> = {
  bm25: ["search"],
  dpr: ["encode", "search"],
  hybrid: ["encode", "search"],
};

/** Whether a method needs the DPR model. */
export function methodNeedsDpr(method: EvaluationMethod): boolean {
  return FIRST_STAGE[method] !== "bm25";
}

/** Whether a method needs the reranker. */
export function methodNeedsReranker(method: EvaluationMethod): boolean {
  return method.endsWith("+rerank");
}

/** Parses and checks a method name. */
export function parseMethod(name: string): EvaluationMethod {
  const m = name.trim();
  if (!(EVALUATION_METHODS as readonly string[]).includes(m)) {
    throw new Error(`${WHO}: unknown method "${m}" (known: ${EVALUATION_METHODS.join(", ")})`);
  }
  return m as EvaluationMethod;
}

/** One ranked passage of a run. */
export interface RankedHit {
  id: string;
  score: number;
}

/** The ranked ids and scores of a first stage's result (documents without an id are an error). */
export function hitsOf(result: RetrievalResult, stage: FirstStage): RankedHit[] {
  return result.documents.map((d, i) => {
    const id = d.id ?? d.metadata?.id;
    if (typeof id !== "string") throw new Error(`${WHO}: the ${stage} stage returned a document without an id at rank ${i + 1}`);
    const score = result.scores[i];
    if (typeof score !== "number" || !Number.isFinite(score)) {
      throw new Error(`${WHO}: the ${stage} stage returned no finite score for passage "${id}" (got ${String(score)})`);
    }
    return { id, score };
  });
}

/**
 * Reranks a first stage's result with the shipped TwoStageRetriever: its top `rerankDepth` go to
 * the reranker, which must return all of them (a LangChain reranker's `topN` at least
 * `rerankDepth`). Returns the run for this query: the reranked head by the reranker's
 * `metadata.relevanceScore` (its order when it sets none), then the first stage's other results
 * in their order with scores below every reranked one, so trec_eval's score order keeps them
 * after the head; and the reranking time.
 */
export async function rerankFirstStage(
  query: string,
  first: RetrievalResult,
  stage: FirstStage,
  reranker: BaseDocumentCompressor,
  rerankDepth: number,
): Promise<{ hits: RankedHit[]; rerankMs: number }> {
  const firstHits = hitsOf(first, stage);
  const headSize = Math.min(rerankDepth, firstHits.length);
  if (headSize === 0) return { hits: [], rerankMs: 0 };
  const replay: RetrievalService = {
    retrieve: async (_q, options) => ({
      documents: first.documents.slice(0, options?.k),
      scores: first.scores.slice(0, options?.k),
      timings: first.timings,
    }),
  };
  const twoStage = new TwoStageRetriever({ firstStage: replay, reranker, candidates: headSize, k: headSize });
  const { documents, timings } = await twoStage.retrieve(query);
  if (documents.length !== headSize) {
    throw new Error(
      `${WHO}: the reranker returned ${documents.length} of the ${headSize} candidates it was given; ` +
        `set its topN to at least rerankDepth (${rerankDepth}) so that every candidate is scored`,
    );
  }
  const head = documents.map((d: DocumentInterface, i): RankedHit => {
    const id = d.id ?? d.metadata?.id;
    if (typeof id !== "string") throw new Error(`${WHO}: the reranker returned a document without an id at rank ${i + 1}`);
    const s = d.metadata?.relevanceScore;
    if (s !== undefined && (typeof s !== "number" || !Number.isFinite(s))) {
      throw new Error(`${WHO}: the reranker returned a non-finite relevanceScore (${String(s)}) for passage "${id}"`);
    }
    return { id, score: typeof s === "number" ? s : headSize - i };
  });
  // trec_eval orders by score, then by id descending: keep the reranker's order among equal scores.
  head.sort((a, b) => b.score - a.score || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const inHead = new Set(head.map((h) => h.id));
  let floor = head[head.length - 1]!.score;
  const tail = firstHits.filter((h) => !inHead.has(h.id)).map((h) => ({ id: h.id, score: --floor }));
  return { hits: [...head, ...tail], rerankMs: timings.rerankMs };
}

/**
 * TwoStageRetriever: the design article's recipe — a first stage (dense or hybrid) fetches many
 * candidates (top-100), an optional reranker (a cross-encoder) reorders them, the top `k` (10)
 * are returned.
 *
 * @module
 */
import { BaseRetriever, type BaseRetrieverInput, type BaseRetrieverInterface } from "@langchain/core/retrievers";
import type { CallbackManagerForRetrieverRun } from "@langchain/core/callbacks/manager";
import { inRetrieverRun } from "../utils/callbacks.js";
import type { DocumentInterface } from "@langchain/core/documents";
import type { BaseDocumentCompressor } from "@langchain/core/retrievers/document_compressors";
import { checkK } from "./dpr-retriever.js";
import {
  isRetrievalService,
  carryScores,
  nowMs,
  reportTimings,
  throwIfAborted,
  withMetadata,
  type RetrievalResult,
  type RetrievalService,
  type RetrieveOptions,
} from "./types.js";

/** Parameters of {@link TwoStageRetriever}. */
export interface TwoStageRetrieverParams extends BaseRetrieverInput {
  /**
   * First stage. A {@link RetrievalService} (DPRRetriever, HybridRetriever) is asked for
   * `candidates` documents; a plain retriever is invoked and its output truncated to `candidates`
   * (so configure its own k to at least that).
   */
  firstStage: RetrievalService | BaseRetrieverInterface;
  /** Optional second stage; without it the first stage's top `k` are returned. */
  reranker?: BaseDocumentCompressor;
  /** Candidates from the first stage. Default 100. */
  candidates?: number;
  /** Documents returned. Default 10. */
  k?: number;
  /**
   * Write `metadata.firstStageRank` (1-based) and `metadata.score` (the first stage's score) into
   * the returned documents. Default false; both are in {@link TwoStageRetriever.retrieve}'s result.
   */
  includeScores?: boolean;
}

/**
 * First stage top-`candidates` → optional reranker → top-`k`. Returned documents are the first
 * stage's with the reranker's `metadata.relevanceScore`; `includeScores` adds
 * `metadata.firstStageRank` (1-based) and `metadata.score`. {@link retrieve} gives the timings
 * (encode/search from the first stage, rerank from the second); with callbacks the first stage and
 * the reranker are child runs and the timings a `retrieval_timings` custom event.
 *
 * @example
 * ```ts
 * const twoStage = new TwoStageRetriever({ firstStage: hybrid, reranker: crossEncoder, candidates: 100, k: 10 });
 * ```
 */
export class TwoStageRetriever extends BaseRetriever implements RetrievalService {
  static override lc_name(): string {
    return "TwoStageRetriever";
  }

  override lc_namespace = ["langchain_dpr", "retrievers", "two_stage"];

  firstStage: RetrievalService | BaseRetrieverInterface;

  reranker: BaseDocumentCompressor | undefined;

  candidates = 100;

  k = 10;

  includeScores = false;

  constructor(fields: TwoStageRetrieverParams) {
    super(fields);
    if (!isRetrievalService(fields?.firstStage) && typeof (fields?.firstStage as BaseRetrieverInterface)?.invoke !== "function") {
      throw new Error("TwoStageRetriever: params.firstStage must be a retriever");
    }
    this.firstStage = fields.firstStage;
    this.reranker = fields.reranker;
    this.candidates = fields.candidates ?? this.candidates;
    this.k = fields.k ?? this.k;
    this.includeScores = fields.includeScores ?? this.includeScores;
    checkK("TwoStageRetriever", "candidates", this.candidates);
    checkK("TwoStageRetriever", "k", this.k);
  }

  get hasReranker(): boolean {
    return this.reranker !== undefined;
  }

  override async _getRelevantDocuments(query: string, runManager?: CallbackManagerForRetrieverRun): Promise<DocumentInterface[]> {
    return (await this.retrieveInRun(query, {}, runManager)).documents;
  }

  /**
   * Retrieves with per-call options; returns the documents, their first-stage scores and the
   * timings. With `options.callbacks` the call is a retriever run like `invoke`.
   */
  async retrieve(query: string, options: RetrieveOptions = {}): Promise<RetrievalResult> {
    return inRetrieverRun(this, query, options.callbacks, (run) => this.retrieveInRun(query, options, run));
  }

  private async retrieveInRun(
    query: string,
    options: RetrieveOptions,
    run: CallbackManagerForRetrieverRun | undefined,
  ): Promise<RetrievalResult> {
    const t0 = nowMs();
    const k = options.k ?? this.k;
    checkK("TwoStageRetriever", "k", k);
    const rerank = (options.rerank ?? true) && this.reranker !== undefined;
    if (options.rerank === true && this.reranker === undefined) {
      throw new Error("TwoStageRetriever: rerank was requested but no reranker is configured");
    }
    const depth = rerank ? Math.max(this.candidates, k) : k;
    let encodeMs = 0;
    let searchMs = 0;
    let candidates: DocumentInterface[];
    let candidateScores: Array<number | null>;
    const firstStageCallbacks = run?.getChild("first_stage");
    if (isRetrievalService(this.firstStage)) {
      const r = await this.firstStage.retrieve(query, {
        k: depth,
        filter: options.filter,
        rerank: false,
        useCache: options.useCache,
        signal: options.signal,
        includeScores: false,
        callbacks: firstStageCallbacks,
      });
      candidates = r.documents;
      candidateScores = r.documents.map((_, i) => r.scores?.[i] ?? null);
      encodeMs = r.timings.encodeMs;
      searchMs = r.timings.searchMs;
    } else {
      candidates = (await this.firstStage.invoke(query, { callbacks: firstStageCallbacks })).slice(0, depth);
      candidateScores = candidates.map((d) => (typeof d.metadata?.score === "number" ? d.metadata.score : null));
      searchMs = nowMs() - t0;
    }
    throwIfAborted(options.signal, "TwoStageRetriever");
    const t1 = nowMs();
    let docs: DocumentInterface[];
    let scores: Array<number | null>;
    let ranks: number[];
    if (rerank) {
      docs = (await this.reranker!.compressDocuments(candidates, query, run?.getChild("rerank"))).slice(0, k);
      const positions = carryScores(
        candidates,
        candidates.map((_, i) => i),
        docs,
      );
      scores = positions.map((p) => (p === null ? null : candidateScores[p]!));
      ranks = positions.map((p) => (p === null ? 0 : p + 1));
    } else {
      docs = candidates.slice(0, k);
      scores = candidateScores.slice(0, k);
      ranks = docs.map((_, i) => i + 1);
    }
    const rerankMs = rerank ? nowMs() - t1 : 0;
    throwIfAborted(options.signal, "TwoStageRetriever");
    const timings = { encodeMs, searchMs, rerankMs, totalMs: nowMs() - t0, cacheHit: false };
    await reportTimings(run, timings);
    const include = options.includeScores ?? this.includeScores;
    return {
      documents: docs.map((d, i) =>
        include ? withMetadata(d, { firstStageRank: ranks[i]! > 0 ? ranks[i] : null, score: scores[i] }) : withMetadata(d, {}),
      ),
      scores,
      timings,
    };
  }
}

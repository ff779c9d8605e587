/**
 * TwoStageRetriever: the design article's recipe — a first stage (dense or hybrid) fetches many
 * candidates (top-100), an optional reranker (a cross-encoder) reorders them, the top `k` (10)
 * are returned.
 *
 * @module
 */
import { BaseRetriever, type BaseRetrieverInput, type BaseRetrieverInterface } from "@langchain/core/retrievers";
import type { CallbackManagerForRetrieverRun } from "@langchain/core/callbacks/manager";
import type { DocumentInterface } from "@langchain/core/documents";
import type { BaseDocumentCompressor } from "@langchain/core/retrievers/document_compressors";
import { checkK } from "./dpr-retriever.js";
import {
  nowMs,
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
}

function isService(x: unknown): x is RetrievalService {
  return typeof x === "object" && x !== null && typeof (x as RetrievalService).retrieve === "function";
}

/**
 * First stage top-`candidates` → optional reranker → top-`k`. Returned documents carry
 * `metadata.firstStageRank` (1-based) and `metadata.latency` (encode/search from the first stage,
 * rerank from the second).
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

  constructor(fields: TwoStageRetrieverParams) {
    super(fields);
    if (!isService(fields?.firstStage) && typeof (fields?.firstStage as BaseRetrieverInterface)?.invoke !== "function") {
      throw new Error("TwoStageRetriever: params.firstStage must be a retriever");
    }
    this.firstStage = fields.firstStage;
    this.reranker = fields.reranker;
    this.candidates = fields.candidates ?? this.candidates;
    this.k = fields.k ?? this.k;
    checkK("TwoStageRetriever", "candidates", this.candidates);
    checkK("TwoStageRetriever", "k", this.k);
  }

  get hasReranker(): boolean {
    return this.reranker !== undefined;
  }

  override async _getRelevantDocuments(
    query: string,
    _runManager?: CallbackManagerForRetrieverRun,
  ): Promise<DocumentInterface[]> {
    return (await this.retrieve(query)).documents;
  }

  async retrieve(query: string, options: RetrieveOptions = {}): Promise<RetrievalResult> {
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
    if (isService(this.firstStage)) {
      const r = await this.firstStage.retrieve(query, {
        k: depth,
        filter: options.filter,
        rerank: false,
        useCache: options.useCache,
        signal: options.signal,
      });
      candidates = r.documents;
      encodeMs = r.timings.encodeMs;
      searchMs = r.timings.searchMs;
    } else {
      candidates = (await this.firstStage.invoke(query)).slice(0, depth);
      searchMs = nowMs() - t0;
    }
    throwIfAborted(options.signal, "TwoStageRetriever");
    candidates = candidates.map((d, i) => {
      const { latency: _l, ...meta } = d.metadata;
      return withMetadata({ pageContent: d.pageContent, metadata: meta, id: d.id }, { firstStageRank: i + 1 });
    });
    const t1 = nowMs();
    const docs = rerank ? (await this.reranker!.compressDocuments(candidates, query)).slice(0, k) : candidates.slice(0, k);
    const rerankMs = rerank ? nowMs() - t1 : 0;
    throwIfAborted(options.signal, "TwoStageRetriever");
    const timings = { encodeMs, searchMs, rerankMs, totalMs: nowMs() - t0, cacheHit: false };
    return { documents: docs.map((d) => withMetadata(d, { latency: { ...timings } })), timings };
  }
}

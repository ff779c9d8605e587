/**
 * Types shared by the retrievers and the HTTP server.
 *
 * @module
 */
import { Document, type DocumentInterface } from "@langchain/core/documents";

/** Per-request latency breakdown, in milliseconds. Stages that did not run are 0. */
export interface RetrievalTimings {
  /** Query encoding (question encoder). */
  encodeMs: number;
  /** Vector (and, for hybrid, BM25) search. */
  searchMs: number;
  /** Second-stage reranking. */
  rerankMs: number;
  /** The whole call, cache lookup included. */
  totalMs: number;
  /** Whether the documents came from the query cache (then encode/search/rerank are 0). */
  cacheHit: boolean;
}

/** Per-call options of {@link RetrievalService.retrieve}. */
export interface RetrieveOptions<Filter = unknown> {
  /** Number of documents to return (defaults to the retriever's `k`). */
  k?: number;
  /** Metadata filter passed to the vector store (plain JSON objects are cacheable). */
  filter?: Filter;
  /** Run the reranker (default: true when the retriever has one). */
  rerank?: boolean;
  /** Use the query cache for this call (default true when the cache is enabled). */
  useCache?: boolean;
  /** Aborts between stages: the call rejects with an `AbortError` and caches nothing. */
  signal?: AbortSignal;
}

/** What {@link RetrievalService.retrieve} resolves to. */
export interface RetrievalResult {
  documents: DocumentInterface[];
  timings: RetrievalTimings;
}

/**
 * A retriever the HTTP server can serve: returns documents plus a latency breakdown.
 * {@link DPRRetriever}, {@link HybridRetriever} and {@link TwoStageRetriever} implement it.
 */
export interface RetrievalService {
  retrieve(query: string, options?: RetrieveOptions): Promise<RetrievalResult>;
  /** Whether a reranker is configured (the server reports it in /health). */
  readonly hasReranker?: boolean;
}

/** Clones a document, adding metadata fields (never mutates the input or a cached copy). */
export function withMetadata(doc: DocumentInterface, extra: Record<string, unknown>): DocumentInterface {
  return new Document({ pageContent: doc.pageContent, metadata: { ...doc.metadata, ...extra }, id: doc.id });
}

/** Throws an `AbortError` (DOMException name) when the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, module: string): void {
  if (signal?.aborted) {
    const reason = signal.reason instanceof Error ? `: ${signal.reason.message}` : "";
    const err = new Error(`${module}: retrieval aborted${reason}`);
    err.name = "AbortError";
    throw err;
  }
}

/** High-resolution clock in milliseconds. */
export function nowMs(): number {
  return performance.now();
}

/**
 * Clamps a search depth to the store's document count when the store exposes a numeric `size`
 * (FaissDPRStore does, and rejects k above it). Returns 0 for an empty store.
 */
export function clampDepth(store: unknown, depth: number): number {
  const size = (store as { size?: unknown } | null)?.size;
  return typeof size === "number" && Number.isInteger(size) && size >= 0 ? Math.min(depth, size) : depth;
}

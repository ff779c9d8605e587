/**
 * Types shared by the retrievers and the HTTP server.
 *
 * @module
 */
import type { CallbackManagerForRetrieverRun, Callbacks } from "@langchain/core/callbacks/manager";
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
  /**
   * Write this call's scores into the returned documents' metadata (default: the retriever's
   * `includeScores`, false). Scores are always in {@link RetrievalResult.scores}.
   */
  includeScores?: boolean;
  /**
   * Callbacks for this call: it then runs as a retriever run (as `invoke` does), its stages as
   * child runs, and its timings as a {@link RETRIEVAL_TIMINGS_EVENT} custom event.
   */
  callbacks?: Callbacks;
}

/** What {@link RetrievalService.retrieve} resolves to. */
export interface RetrievalResult {
  documents: DocumentInterface[];
  /**
   * Per document, the first-stage score it was retrieved with (the store's inner product, the
   * fused score of a hybrid search), null where the stage gave none. A reranker's score is in
   * `metadata.relevanceScore`, where LangChain's rerankers put it.
   */
  scores: Array<number | null>;
  timings: RetrievalTimings;
}

/**
 * Name of the custom callback event a retrieval run emits with its {@link RetrievalTimings}
 * (`handleCustomEvent`; `on_custom_event` in `streamEvents`). Timings travel there and in
 * {@link RetrievalResult.timings}, never in document metadata.
 */
export const RETRIEVAL_TIMINGS_EVENT = "retrieval_timings";

/** Emits the timings event on a run (no-op without one). */
export async function reportTimings(run: CallbackManagerForRetrieverRun | undefined, timings: RetrievalTimings): Promise<void> {
  await run?.handleCustomEvent(RETRIEVAL_TIMINGS_EVENT, { ...timings });
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

/** Whether `x` has a `retrieve(query, options)` method (a {@link RetrievalService}). */
export function isRetrievalService(x: unknown): x is RetrievalService {
  return typeof x === "object" && x !== null && typeof (x as RetrievalService).retrieve === "function";
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
 * (FaissDPRStore does; it would also lower k itself, but warns once when it has to). Returns 0 for an
 * empty store, so callers skip the search.
 */
export function clampDepth(store: unknown, depth: number): number {
  const size = (store as { size?: unknown } | null)?.size;
  return typeof size === "number" && Number.isInteger(size) && size >= 0 ? Math.min(depth, size) : depth;
}

/**
 * The first-stage score of each document a second stage returned: matched to its candidate by
 * object, else by id and content (rerankers return copies), null when none matches.
 */
export function carryScores(
  candidates: readonly DocumentInterface[],
  scores: ReadonlyArray<number | null>,
  outputs: readonly DocumentInterface[],
): Array<number | null> {
  const byRef = new Map<DocumentInterface, number>();
  const byKey = new Map<string, number[]>();
  candidates.forEach((d, i) => {
    byRef.set(d, i);
    const key = JSON.stringify([d.id ?? null, d.pageContent]);
    const list = byKey.get(key);
    if (list === undefined) byKey.set(key, [i]);
    else list.push(i);
  });
  const used = new Set<number>();
  return outputs.map((d) => {
    let i = byRef.get(d);
    if (i === undefined || used.has(i)) i = byKey.get(JSON.stringify([d.id ?? null, d.pageContent]))?.find((j) => !used.has(j));
    if (i === undefined) return null;
    used.add(i);
    return scores[i] ?? null;
  });
}

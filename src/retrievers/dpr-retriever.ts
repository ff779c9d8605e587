/**
 * DPRRetriever: a LangChain retriever over any vector store (FaissDPRStore in production) with
 * an optional second-stage reranker, a query cache (LRU + TTL, invalidated when the store
 * changes), a per-call latency breakdown (in the result and a callback event) and running latency
 * statistics.
 *
 * @module
 */
import { BaseRetriever, type BaseRetrieverInput } from "@langchain/core/retrievers";
import type { CallbackManagerForRetrieverRun } from "@langchain/core/callbacks/manager";
import { inRetrieverRun } from "../utils/callbacks.js";
import type { DocumentInterface } from "@langchain/core/documents";
import type { VectorStoreInterface } from "@langchain/core/vectorstores";
import type { BaseDocumentCompressor } from "@langchain/core/retrievers/document_compressors";
import { LRUCache, normalizeQuery, stableStringify } from "./query-cache.js";
import { LatencyWindow, type LatencySummary } from "./latency-stats.js";
import {
  carryScores,
  clampDepth,
  nowMs,
  reportTimings,
  throwIfAborted,
  withMetadata,
  type RetrievalResult,
  type RetrievalService,
  type RetrievalTimings,
  type RetrieveOptions,
} from "./types.js";

/** Query cache settings of {@link DPRRetriever}. */
export interface QueryCacheOptions {
  /** Maximum cached queries (LRU eviction). Default 1000. */
  maxEntries?: number;
  /** Entry lifetime in ms (0 = no expiry). Default 300 000. */
  ttlMs?: number;
  /** Keep case when normalising queries for the key. Default false (keys are lower-cased). */
  caseSensitive?: boolean;
  /**
   * Cache even when the store exposes no version (see {@link storeVersion}). Only safe when
   * nothing modifies the store except through this retriever's `addDocuments`/`invalidateCache`.
   * Default false: such stores are served uncached rather than possibly stale.
   */
  assumeStaticStore?: boolean;
  /** Clock for TTL (tests). Default `Date.now`. */
  now?: () => number;
}

/** Parameters of {@link DPRRetriever}. */
export interface DPRRetrieverParams<V extends VectorStoreInterface = VectorStoreInterface> extends BaseRetrieverInput {
  /** The store to search; its `embeddings.embedQuery` encodes questions. */
  vectorStore: V;
  /** Documents returned per query. Default 10. */
  k?: number;
  /** Candidates fetched for the reranker (the design article's top-100). Default 100; at least `k`. */
  fetchK?: number;
  /** Optional second stage, e.g. CrossEncoderReranker; must return documents best first. */
  reranker?: BaseDocumentCompressor;
  /** Default metadata filter (the store's filter type). */
  filter?: V["FilterType"];
  /** Query cache settings, or false to disable caching. Default: enabled with defaults. */
  cache?: QueryCacheOptions | false;
  /** Size of the window the running percentiles are computed over. Default 1024. */
  statsWindow?: number;
  /**
   * Write the store's score into each returned document as `metadata.score`. Default false:
   * documents carry the stored metadata only (plus the reranker's `relevanceScore`), so equal
   * passages compare equal across queries (MultiQueryRetriever de-duplicates on metadata) and no
   * per-query numbers reach a prompt. Scores are always in {@link DPRRetriever.retrieve}'s result.
   */
  includeScores?: boolean;
}

/** Running statistics of a {@link DPRRetriever}. Times in ms. */
export interface DPRRetrieverStats {
  requests: number;
  cacheHits: number;
  cacheMisses: number;
  /** Requests that could not use the cache (disabled, unversioned store, function filter, opted out). */
  cacheBypassed: number;
  /** cacheHits / (cacheHits + cacheMisses); NaN before the first cacheable request. */
  hitRate: number;
  cacheSize: number;
  /** Number of times the cache was cleared because the store version changed. */
  invalidations: number;
  encode: LatencySummary;
  search: LatencySummary;
  rerank: LatencySummary;
  total: LatencySummary;
}

/** The store-version hook {@link DPRRetriever} looks for (FaissDPRStore provides `version`). */
export interface VersionedStore {
  /** Increases (or changes) whenever documents are added, deleted, merged or loaded. */
  readonly version?: number | bigint | string;
  /** Alternative spelling some stores use. */
  readonly generation?: number | bigint | string;
  getVersion?(): number | bigint | string;
}

/**
 * The store's current version as a string, or undefined when it exposes none
 * (`version`, `generation` or `getVersion()`).
 */
export function storeVersion(store: unknown): string | undefined {
  if (store === null || typeof store !== "object") return undefined;
  const s = store as VersionedStore;
  const pick = (v: unknown): string | undefined =>
    typeof v === "number" || typeof v === "bigint" || typeof v === "string" ? String(v) : undefined;
  if (typeof s.getVersion === "function") return pick(s.getVersion());
  return pick(s.version) ?? pick(s.generation);
}

interface CachedResult {
  documents: ReadonlyArray<Readonly<{ pageContent: string; metadata: Record<string, unknown>; id?: string }>>;
  scores: ReadonlyArray<number | null>;
}

/**
 * Retriever over a vector store with optional reranking, a query cache and latency figures.
 *
 * The search depth (k, or fetchK when reranking) is clamped to the store's `size` when it has
 * one, so a small index returns all its documents instead of failing.
 *
 * Each returned document is a copy of the stored one, plus `metadata.relevanceScore` when the
 * reranker set it, plus `metadata.score` (the store's score: inner product for FaissDPRStore) only
 * with `includeScores`. {@link retrieve} returns the scores and the latency breakdown
 * `{encodeMs, searchMs, rerankMs, totalMs, cacheHit}`; a run with callbacks also reports the
 * timings as the `retrieval_timings` custom event, and the reranker runs as a child run.
 *
 * Cache key: normalised query (NFC, trimmed, whitespace collapsed, lower-cased unless
 * `caseSensitive`) + k + rerank flag + filter (stable JSON) + store version. When the store's
 * version changes the whole cache is cleared. Stores without a version are not cached unless
 * `assumeStaticStore` is set; filters that are functions are never cached.
 *
 * @example
 * ```ts
 * const retriever = new DPRRetriever({ vectorStore: store, k: 10, reranker, fetchK: 100 });
 * const docs = await retriever.invoke("what causes scurvy?");
 * const { documents, scores, timings } = await retriever.retrieve("what causes scurvy?", { k: 5 });
 * retriever.getStats().search.p95;
 * ```
 */
export class DPRRetriever<V extends VectorStoreInterface = VectorStoreInterface> extends BaseRetriever implements RetrievalService {
  static override lc_name(): string {
    return "DPRRetriever";
  }

  override lc_namespace = ["langchain_dpr", "retrievers", "dpr"];

  vectorStore: V;

  k = 10;

  fetchK = 100;

  reranker: BaseDocumentCompressor | undefined;

  filter: V["FilterType"] | undefined;

  includeScores = false;

  private readonly cache: LRUCache<CachedResult> | undefined;

  private readonly caseSensitive: boolean = false;

  private readonly assumeStaticStore: boolean = false;

  /** Bumped by {@link invalidateCache} and by adds through this retriever. */
  private localGeneration = 0;

  private lastVersion: string | undefined;

  private readonly counters = { requests: 0, cacheHits: 0, cacheMisses: 0, cacheBypassed: 0, invalidations: 0 };

  private readonly windows: Record<"encode" | "search" | "rerank" | "total", LatencyWindow>;

  constructor(fields: DPRRetrieverParams<V>) {
    super(fields);
    if (fields?.vectorStore === undefined || fields.vectorStore === null) {
      throw new Error("DPRRetriever: params.vectorStore is required");
    }
    this.vectorStore = fields.vectorStore;
    this.k = fields.k ?? this.k;
    this.fetchK = fields.fetchK ?? this.fetchK;
    this.reranker = fields.reranker;
    this.filter = fields.filter;
    this.includeScores = fields.includeScores ?? this.includeScores;
    checkK("DPRRetriever", "k", this.k);
    checkK("DPRRetriever", "fetchK", this.fetchK);
    if (fields.cache !== false) {
      const c = fields.cache ?? {};
      this.cache = new LRUCache<CachedResult>({ maxEntries: c.maxEntries, ttlMs: c.ttlMs, now: c.now });
      this.caseSensitive = c.caseSensitive ?? false;
      this.assumeStaticStore = c.assumeStaticStore ?? false;
    }
    const w = fields.statsWindow ?? 1024;
    this.windows = {
      encode: new LatencyWindow(w),
      search: new LatencyWindow(w),
      rerank: new LatencyWindow(w),
      total: new LatencyWindow(w),
    };
  }

  /** Whether a reranker is configured. */
  get hasReranker(): boolean {
    return this.reranker !== undefined;
  }

  /** LangChain entry point: {@link retrieve} with the retriever's defaults. */
  override async _getRelevantDocuments(query: string, runManager?: CallbackManagerForRetrieverRun): Promise<DocumentInterface[]> {
    return (await this.retrieveInRun(query, {}, runManager)).documents;
  }

  /**
   * Retrieves documents for `query` with per-call options and returns them with their scores and
   * the latency breakdown. With `options.callbacks` the call is a retriever run like `invoke`.
   * Rejects for an empty query or an invalid k.
   */
  async retrieve(query: string, options: RetrieveOptions<V["FilterType"]> = {}): Promise<RetrievalResult> {
    return inRetrieverRun(this, query, options.callbacks, (run) => this.retrieveInRun(query, options, run));
  }

  private async retrieveInRun(
    query: string,
    options: RetrieveOptions<V["FilterType"]>,
    run: CallbackManagerForRetrieverRun | undefined,
  ): Promise<RetrievalResult> {
    const t0 = nowMs();
    if (typeof query !== "string" || query.trim().length === 0) {
      throw new Error("DPRRetriever: query must be a non-empty string");
    }
    const k = options.k ?? this.k;
    checkK("DPRRetriever", "k", k);
    const filter = options.filter ?? this.filter;
    const rerank = (options.rerank ?? true) && this.reranker !== undefined;
    if (options.rerank === true && this.reranker === undefined) {
      throw new Error("DPRRetriever: rerank was requested but no reranker is configured");
    }
    throwIfAborted(options.signal, "DPRRetriever");
    this.counters.requests++;

    const key = this.cacheKey(query, k, rerank, filter, options.useCache ?? true);
    if (key !== undefined) {
      const hit = this.cache!.get(key);
      if (hit !== undefined) {
        this.counters.cacheHits++;
        const timings: RetrievalTimings = { encodeMs: 0, searchMs: 0, rerankMs: 0, totalMs: nowMs() - t0, cacheHit: true };
        this.windows.total.record(timings.totalMs);
        await reportTimings(run, timings);
        return this.result(hit.documents, hit.scores, timings, options);
      }
      this.counters.cacheMisses++;
    } else {
      this.counters.cacheBypassed++;
    }

    const t1 = nowMs();
    const vector = await this.vectorStore.embeddings.embedQuery(query);
    const t2 = nowMs();
    throwIfAborted(options.signal, "DPRRetriever");
    const depth = clampDepth(this.vectorStore, rerank ? Math.max(this.fetchK, k) : k);
    const hits = depth === 0 ? [] : await this.vectorStore.similaritySearchVectorWithScore(vector, depth, filter);
    const t3 = nowMs();
    throwIfAborted(options.signal, "DPRRetriever");
    let docs: DocumentInterface[] = hits.map(([doc]) => doc);
    let scores: Array<number | null> = hits.map(([, score]) => score);
    let t4 = t3;
    if (rerank) {
      const reranked = (await this.reranker!.compressDocuments(docs, query, run?.getChild("rerank"))).slice(0, k);
      scores = carryScores(docs, scores, reranked);
      docs = reranked;
      t4 = nowMs();
      throwIfAborted(options.signal, "DPRRetriever");
    } else {
      docs = docs.slice(0, k);
      scores = scores.slice(0, k);
    }
    const timings: RetrievalTimings = {
      encodeMs: t2 - t1,
      searchMs: t3 - t2,
      rerankMs: t4 - t3,
      totalMs: nowMs() - t0,
      cacheHit: false,
    };
    this.windows.encode.record(timings.encodeMs);
    this.windows.search.record(timings.searchMs);
    if (rerank) this.windows.rerank.record(timings.rerankMs);
    this.windows.total.record(timings.totalMs);
    if (key !== undefined) {
      // Only cache if the store did not change while we were computing.
      if (this.cacheKey(query, k, rerank, filter, true) === key) {
        this.cache!.set(key, {
          documents: docs.map((d) => Object.freeze({ pageContent: d.pageContent, metadata: { ...d.metadata }, id: d.id })),
          scores: [...scores],
        });
      }
    }
    await reportTimings(run, timings);
    return this.result(docs, scores, timings, options);
  }

  /** Fresh documents (never the cached or stored objects), with scores in metadata when asked for. */
  private result(
    docs: CachedResult["documents"],
    scores: ReadonlyArray<number | null>,
    timings: RetrievalTimings,
    options: RetrieveOptions<V["FilterType"]>,
  ): RetrievalResult {
    const include = options.includeScores ?? this.includeScores;
    return {
      documents: docs.map((d, i) => withMetadata(d, include && scores[i] !== null ? { score: scores[i] } : {})),
      scores: [...scores],
      timings,
    };
  }

  /**
   * Adds documents to the underlying store and invalidates the cache (also for stores that
   * expose no version).
   */
  async addDocuments(documents: DocumentInterface[], options?: Record<string, unknown>): Promise<string[] | void> {
    try {
      return await this.vectorStore.addDocuments(documents, options);
    } finally {
      this.invalidateCache();
    }
  }

  /** Drops every cached result (call after changing the store behind the retriever's back). */
  invalidateCache(): void {
    this.localGeneration++;
    this.cache?.clear();
  }

  /** Running statistics: cache hit rate and per-stage percentiles over the recent window. */
  getStats(): DPRRetrieverStats {
    const { cacheHits, cacheMisses } = this.counters;
    return {
      ...this.counters,
      hitRate: cacheHits + cacheMisses === 0 ? NaN : cacheHits / (cacheHits + cacheMisses),
      cacheSize: this.cache?.size ?? 0,
      encode: this.windows.encode.summary(),
      search: this.windows.search.summary(),
      rerank: this.windows.rerank.summary(),
      total: this.windows.total.summary(),
    };
  }

  /** Resets counters and latency windows (not the cache). */
  resetStats(): void {
    for (const key of Object.keys(this.counters) as Array<keyof typeof this.counters>) this.counters[key] = 0;
    for (const w of Object.values(this.windows)) w.reset();
  }

  /** The cache key for a call, or undefined when the call cannot be cached. Clears on version change. */
  private cacheKey(query: string, k: number, rerank: boolean, filter: V["FilterType"] | undefined, useCache: boolean): string | undefined {
    if (this.cache === undefined || !useCache) return undefined;
    if (typeof filter === "function") return undefined;
    let version = storeVersion(this.vectorStore);
    if (version === undefined) {
      if (!this.assumeStaticStore) return undefined;
      version = "static";
    }
    version = `${version}/${this.localGeneration}`;
    if (this.lastVersion !== undefined && this.lastVersion !== version) {
      this.cache.clear();
      this.counters.invalidations++;
    }
    this.lastVersion = version;
    let filterKey: string;
    try {
      filterKey = filter === undefined ? "" : stableStringify(filter);
    } catch {
      return undefined; // a filter JSON cannot represent is not cacheable
    }
    return JSON.stringify([normalizeQuery(query, this.caseSensitive), k, rerank, filterKey, version]);
  }
}

/** Validates a positive integer count. */
export function checkK(module: string, name: string, k: unknown): void {
  if (typeof k !== "number" || !Number.isInteger(k) || k < 1) {
    throw new Error(`${module}: ${name} must be an integer ≥ 1, got ${String(k)}`);
  }
}

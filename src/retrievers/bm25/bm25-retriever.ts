import { BaseRetriever, type BaseRetrieverInput } from "@langchain/core/retrievers";
import { Document, type DocumentInterface } from "@langchain/core/documents";
import type { CallbackManagerForRetrieverRun } from "@langchain/core/callbacks/manager";
import type { Passage } from "../../data/types.js";
import { inRetrieverRun } from "../../utils/callbacks.js";
import { nowMs, reportTimings, throwIfAborted, type RetrievalResult, type RetrievalService, type RetrieveOptions } from "../types.js";
import { BM25Index, type BM25IndexParams } from "./bm25-index.js";

const OWNER = "BM25Retriever";

/** Metadata on each document the {@link BM25Retriever} returns. */
export interface BM25DocumentMetadata extends Record<string, unknown> {
  /** Passage id. */
  id: string;
  /** Passage title ("" when none). */
  title: string;
  /** BM25 score, only with `includeScores`. */
  score?: number;
}

/** Parameters of {@link BM25Retriever}. */
export interface BM25RetrieverParams extends BaseRetrieverInput {
  /** The index to search; it must store passages (`storePassages`, the default). */
  index: BM25Index;
  /** Number of documents to return (default 10). */
  k?: number;
  /**
   * Write the BM25 score into each document as `metadata.score`. Default false, as LangChain's
   * community BM25Retriever: documents then carry only the passage's metadata, `id` and `title`.
   * {@link BM25Retriever.retrieve} always returns the scores.
   */
  includeScores?: boolean;
}

/** Options of {@link BM25Retriever.fromDocuments} and {@link BM25Retriever.fromPassages}. */
export type BM25RetrieverFromParams = Omit<BM25RetrieverParams, "index"> & { indexParams?: BM25IndexParams };

/**
 * A LangChain retriever over a {@link BM25Index}. Each `Document` has the passage text as
 * `pageContent`, the passage's own metadata plus `metadata.id` and `metadata.title`, and
 * `metadata.score` with `includeScores`.
 *
 * @example
 * const retriever = BM25Retriever.fromDocuments(docs, { k: 5 });
 * const docs = await retriever.invoke("statins and muscle pain");
 * const { documents, scores } = await retriever.retrieve("statins and muscle pain", { k: 20 });
 */
export class BM25Retriever extends BaseRetriever<BM25DocumentMetadata> implements RetrievalService {
  static override lc_name(): string {
    return "BM25Retriever";
  }

  lc_namespace = ["langchain_dpr", "retrievers", "bm25"];

  k = 10;

  includeScores = false;

  index: BM25Index;

  readonly hasReranker = false;

  constructor(params: BM25RetrieverParams) {
    super(params);
    if (!(params?.index instanceof BM25Index)) throw new Error(`${OWNER}: params.index must be a BM25Index`);
    if (!params.index.storePassages) {
      throw new Error(`${OWNER}: the index was built with storePassages: false, so it cannot return documents`);
    }
    this.index = params.index;
    if (params.k !== undefined) this.k = params.k;
    this.includeScores = params.includeScores ?? this.includeScores;
    checkK(this.k, "k");
  }

  /** Builds an index over `passages` and a retriever on it. */
  static async fromPassages(
    passages: Iterable<Passage> | AsyncIterable<Passage>,
    params: BM25RetrieverFromParams = {},
  ): Promise<BM25Retriever> {
    const { indexParams, ...rest } = params;
    const index = await BM25Index.fromPassages(passages, indexParams);
    return new this({ ...rest, index });
  }

  /**
   * Builds an index over LangChain documents (as the community BM25Retriever does) and a retriever
   * on it. A document's id is `doc.id`, else `metadata.id`, else its position ("0", "1", ...); its
   * title is `metadata.title` when that is a string. Ids must be unique.
   */
  static async fromDocuments(documents: DocumentInterface[], params: BM25RetrieverFromParams = {}): Promise<BM25Retriever> {
    if (!Array.isArray(documents)) throw new Error(`${OWNER}: fromDocuments takes an array of documents, got ${typeof documents}`);
    const passages = documents.map((doc, i): Passage => {
      if (doc === null || typeof doc !== "object" || typeof doc.pageContent !== "string") {
        throw new Error(`${OWNER}: documents[${i}] must be a Document with a string pageContent`);
      }
      const meta = doc.metadata ?? {};
      const rawId = doc.id ?? meta.id;
      const id = typeof rawId === "string" && rawId.length > 0 ? rawId : typeof rawId === "number" ? String(rawId) : String(i);
      return { id, title: typeof meta.title === "string" ? meta.title : "", text: doc.pageContent, metadata: { ...meta } };
    });
    return this.fromPassages(passages, params);
  }

  override async _getRelevantDocuments(
    query: string,
    runManager?: CallbackManagerForRetrieverRun,
  ): Promise<Document<BM25DocumentMetadata>[]> {
    return (await this.retrieveInRun(query, {}, runManager)).documents as Document<BM25DocumentMetadata>[];
  }

  /**
   * Searches with per-call options (`k`, `includeScores`, `signal`, `callbacks`); returns the
   * documents with their BM25 scores and the search time. A filter is refused: filter the
   * documents, or use HybridRetriever, which filters its BM25 side.
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
    checkK(k, "k");
    if (options.filter !== undefined) throw new Error(`${OWNER}: a filter is not supported here; HybridRetriever filters its BM25 side`);
    if (options.rerank === true)
      throw new Error(`${OWNER}: rerank was requested but no reranker is configured (wrap it in TwoStageRetriever)`);
    throwIfAborted(options.signal, OWNER);
    const include = options.includeScores ?? this.includeScores;
    const hits = this.index.search(query, k);
    const documents = hits.map((hit) => {
      const passage = this.index.getPassage(hit.id);
      if (!passage) throw new Error(`${OWNER}: passage "${hit.id}" missing from the index store`);
      const metadata: BM25DocumentMetadata = { ...(passage.metadata ?? {}), id: hit.id, title: passage.title };
      if (include) metadata.score = hit.score;
      return new Document<BM25DocumentMetadata>({ pageContent: passage.text, metadata, id: hit.id });
    });
    const searchMs = nowMs() - t0;
    const timings = { encodeMs: 0, searchMs, rerankMs: 0, totalMs: searchMs, cacheHit: false };
    await reportTimings(run, timings);
    return { documents, scores: hits.map((h) => h.score), timings };
  }
}

function checkK(k: unknown, name: string): void {
  if (typeof k !== "number" || !Number.isInteger(k) || k < 1)
    throw new Error(`${OWNER}: ${name} must be a positive integer, got ${String(k)}`);
}

/**
 * Public settings and option types of FaissDPRStore, and the internal stored-document shape.
 *
 * @module
 */
import type { FaissSearchKnobs } from "../native/faiss-index.js";
import type { MetadataFilter } from "../retrievers/filter.js";

/**
 * Metadata filter: every key of an object must be deep-equal to the document's metadata value, or
 * a predicate over the document (the rule of `src/retrievers/filter.ts`, shared with HybridRetriever).
 */
export type FaissDPRFilter = MetadataFilter;

/**
 * How MMR measures relevance (query ↔ candidate) and redundancy (candidate ↔ picked candidate).
 * - `"cosine"` (default): as LangChain's `maximalMarginalRelevance` (@langchain/core/utils/math)
 *   and Python's FAISS store; both terms lie in [-1, 1], so λ means the same whatever the vector norms.
 * - `"inner_product"`: the raw dot products the store ranks by. With unnormalised vectors (DPR's
 *   are not unit length) redundancy scales with the squared norm of the documents and can swamp
 *   relevance, so λ loses its meaning; equal to cosine for unit vectors.
 */
export type MMRSimilarity = "cosine" | "inner_product";

/** Settings of a FaissDPRStore. */
export interface FaissDPRStoreParams {
  /**
   * faiss index_factory description, always built with the inner-product metric:
   * "Flat" (exact, default), "IVF{nlist},Flat", "HNSW{M}", "IVF{nlist},PQ{m}np",
   * "OPQ{m},IVF{nlist},PQ{m}np", "IVF{nlist},SQ8", ...
   */
  factory?: string;
  /** Vector dimension; otherwise taken from the first vectors added. */
  dimensions?: number;
  /** Default IVF lists probed per query (per-query override: {@link FaissDPRSearchOptions.nprobe}). */
  nprobe?: number;
  /** Default HNSW efSearch (per-query override: {@link FaissDPRSearchOptions.efSearch}). */
  efSearch?: number;
  /** OpenMP threads for faiss, process-wide (1 suits single-query serving on a busy machine). */
  threads?: number;
  /**
   * Vectors needed in the first add to train an untrained index automatically. Default: faiss's
   * advice of 39 per centroid (`trainingRule`); may be lowered down to the hard minimum.
   */
  trainingSize?: number;
  /** Vectors per native add call (also per embedding call in addDocuments). Default 10,000. */
  addBatchSize?: number;
  /** With a filter, first fetch k × this many candidates, growing ×4 until k pass. Default 4. */
  filterOverFetch?: number;
  /** Similarity MMR uses for relevance and redundancy. Default `"cosine"` (see {@link MMRSimilarity}). */
  mmrSimilarity?: MMRSimilarity;
}

/** Options of `FaissDPRStore.searchVectors`. */
export interface FaissDPRSearchOptions extends FaissSearchKnobs {
  /**
   * Number of results per query, an integer ≥ 1. Larger than the number of stored documents, it is
   * lowered to that number (with a one-time console warning), as LangChain's FaissStore does.
   */
  k: number;
  /** Metadata filter. */
  filter?: FaissDPRFilter;
}

/** Options of `FaissDPRStore.addVectors` and `addDocuments`. */
export interface FaissDPRAddOptions {
  /**
   * Document ids (else `document.id`, else a random UUID). An id already in the store replaces
   * that document and its vector (upsert); an id may appear only once per call.
   */
  ids?: string[];
}

/**
 * What `FaissDPRStore.loadFromFaissStore` / `loadFromPythonSaveLocal` do with the source index's metric:
 * - `"inner_product"` (default): open only inner-product indexes; an L2 index is refused, naming the file.
 * - `"convert-to-inner-product"`: also open L2 indexes, copying their vectors as they are into an
 *   inner-product index. **This changes the ranking**: L2 ranks by smallest distance, inner product
 *   by largest dot product, and the two agree only when all vectors have the same length (e.g.
 *   normalised embeddings, `normalize_L2=True` in Python). Scores become inner products (higher is better).
 */
export type FaissDPRImportMetric = "inner_product" | "convert-to-inner-product";

/** Options of `FaissDPRStore.loadFromFaissStore` and `loadFromPythonSaveLocal`: the new store's settings, plus: */
export interface FaissDPRImportOptions extends FaissDPRStoreParams {
  /** The source index's metric handling. Default `"inner_product"` (an L2 index is refused). */
  metric?: FaissDPRImportMetric;
  /** Python `save_local`'s `index_name`: the files are `<indexName>.faiss` and `<indexName>.pkl`. Default "index". */
  indexName?: string;
}

/** Vectors in any of the accepted shapes: rows, or one row-major Float32Array of n × d. */
export type VectorRows = number[][] | Float32Array[] | Float32Array;

/** A stored document (internal). */
export interface StoredDoc {
  id: string;
  pageContent: string;
  metadata: Record<string, unknown>;
}

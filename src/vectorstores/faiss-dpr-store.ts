/**
 * FaissDPRStore: a LangChain vector store over faiss, scored by inner product (DPR's dot product).
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { Document, type DocumentInterface } from "@langchain/core/documents";
import type { EmbeddingsInterface } from "@langchain/core/embeddings";
import { SaveableVectorStore, type MaxMarginalRelevanceSearchOptions } from "@langchain/core/vectorstores";
import { FaissIndex, type FaissIndexInfo, type FaissSearchKnobs, type FaissSearchResult } from "../native/faiss-index.js";
import { trainingRule, type TrainingRule } from "./training-rule.js";

const OWNER = "FaissDPRStore";
const FORMAT = "langchain-dpr/faiss-dpr-store";
const FORMAT_VERSION = 1;
const MANIFEST = "manifest.json";

/** Metadata filter: every key must equal (===, or deep-equal for arrays/objects), or a predicate over the document. */
export type FaissDPRFilter = Record<string, unknown> | ((doc: DocumentInterface) => boolean);

/** Settings of a {@link FaissDPRStore}. */
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
   * advice of 39 per centroid ({@link trainingRule}); may be lowered down to the hard minimum.
   */
  trainingSize?: number;
  /** Vectors per native add call (also per embedding call in addDocuments). Default 10,000. */
  addBatchSize?: number;
  /** With a filter, first fetch k × this many candidates, growing ×4 until k pass. Default 4. */
  filterOverFetch?: number;
}

/** Options of {@link FaissDPRStore.searchVectors}. */
export interface FaissDPRSearchOptions extends FaissSearchKnobs {
  /** Number of results per query (1..number of stored documents). */
  k: number;
  /** Metadata filter. */
  filter?: FaissDPRFilter;
}

/** Options of {@link FaissDPRStore.addVectors}. */
export interface FaissDPRAddOptions {
  /** Document ids (else `document.id`, else a random UUID). Must be new to the store. */
  ids?: string[];
}

/** Vectors in any of the accepted shapes: rows, or one row-major Float32Array of n × d. */
export type VectorRows = number[][] | Float32Array[] | Float32Array;

/** Embeddings that can hand back a Float32Array directly (DPREmbeddings does). */
interface MatrixEmbeddings {
  embedPassagesMatrix?(passages: Array<{ title?: string; text: string }>): Promise<{ data: Float32Array; dim: number }>;
  embedQueryVector?(query: string): Promise<Float32Array>;
}

interface StoredDoc {
  id: string;
  pageContent: string;
  metadata: Record<string, unknown>;
}

interface Manifest {
  format: string;
  version: number;
  generation: string;
  indexFile: string;
  docsFile: string;
  factory: string;
  dimensions: number;
  metric: string;
  ntotal: number;
  count: number;
  nextLabel: number;
  tombstones: number[];
  nprobe?: number;
  efSearch?: number;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  return ka.every((key) => deepEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, "r");
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * A LangChain vector store on faiss (through langchain-dpr's own native addon), for DPR vectors.
 *
 * **Scores are inner products: higher means more similar** (DPR was trained with dot-product
 * similarity). This differs from LangChain's FaissStore, which returns L2 distances.
 *
 * - Any faiss factory string; untrained indexes train on the first batch when it has at least
 *   `trainingSize` vectors, or through {@link train}.
 * - Vectors go to faiss as Float32Array slices (no per-element copies); add, train and search run
 *   off the event loop.
 * - Ids are stable across {@link delete}, {@link save} and {@link load}. HNSW cannot remove vectors:
 *   deleted ones are tombstoned (filtered out at search with over-fetch) until {@link compact}.
 * - {@link save} is atomic: files of a new generation, then an atomic manifest rename.
 *
 * @example
 * ```ts
 * const store = await FaissDPRStore.fromTexts(texts, metadatas, embeddings, { factory: "IVF256,Flat", nprobe: 16 });
 * const hits = await store.similaritySearchWithScore("what is dense retrieval?", 5); // [doc, dot product][]
 * await store.save("./index");
 * const again = await FaissDPRStore.load("./index", embeddings);
 * ```
 */
export class FaissDPRStore extends SaveableVectorStore {
  declare FilterType: FaissDPRFilter;

  /** faiss index_factory description. */
  factory = "Flat";
  /** Default IVF nprobe (undefined: the value stored in the index, 1 for a new one). */
  nprobe: number | undefined = undefined;
  /** Default HNSW efSearch (undefined: the value stored in the index, 16 for a new one). */
  efSearch: number | undefined = undefined;
  /** Vectors per native add call. */
  addBatchSize = 10_000;
  /** Initial over-fetch factor for filtered search. */
  filterOverFetch = 4;
  /** Auto-train threshold (see {@link FaissDPRStoreParams.trainingSize}). */
  trainingSize: number;

  private index: FaissIndex | undefined;
  private dims: number | undefined;
  private readonly docs = new Map<number, StoredDoc>();
  private readonly labelOf = new Map<string, number>();
  private readonly tombstones = new Set<number>();
  private nextLabel = 0;
  /** Incremented by every change of the stored vectors (see {@link version}). */
  private changeCount = 0;
  /** Serialises mutations of the store (adds, deletes, merges, saves). */
  private mutex: Promise<unknown> = Promise.resolve();

  _vectorstoreType(): string {
    return "faiss-dpr";
  }

  constructor(embeddings: EmbeddingsInterface, params: FaissDPRStoreParams = {}) {
    super(embeddings, params);
    this.factory = params.factory ?? this.factory;
    this.nprobe = params.nprobe ?? this.nprobe;
    this.efSearch = params.efSearch ?? this.efSearch;
    this.addBatchSize = params.addBatchSize ?? this.addBatchSize;
    this.filterOverFetch = params.filterOverFetch ?? this.filterOverFetch;
    const rule = trainingRule(this.factory);
    this.trainingSize = params.trainingSize ?? rule.recommended;
    for (const [name, v] of Object.entries({ nprobe: this.nprobe, efSearch: this.efSearch }) as [string, number | undefined][]) {
      if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new Error(`${OWNER}: ${name} must be an integer ≥ 1, got ${v}`);
    }
    if (!Number.isInteger(this.addBatchSize) || this.addBatchSize < 1) {
      throw new Error(`${OWNER}: addBatchSize must be an integer ≥ 1, got ${this.addBatchSize}`);
    }
    if (!(this.filterOverFetch >= 1)) throw new Error(`${OWNER}: filterOverFetch must be ≥ 1, got ${this.filterOverFetch}`);
    if (!Number.isInteger(this.trainingSize) || this.trainingSize < rule.required) {
      throw new Error(
        `${OWNER}: trainingSize ${this.trainingSize} is below the minimum ${rule.required} for "${this.factory}" (${rule.reason})`,
      );
    }
    if (params.threads !== undefined) FaissIndex.setNumThreads(params.threads);
    if (params.dimensions !== undefined) this.ensureIndex(params.dimensions);
  }

  // -------------------------------------------------------------------------------------------
  // state

  /**
   * A counter that grows with every change of what search can return (add, delete, compact,
   * train, merge, dispose). Caches such as DPRRetriever's key on it, so a changed store never
   * serves stale results.
   */
  get version(): number {
    return this.changeCount;
  }

  /** Number of live (not deleted) documents. */
  get size(): number {
    return this.docs.size;
  }

  /** Vector dimension, once known. */
  get dimensions(): number | undefined {
    return this.dims;
  }

  /** Structure of the faiss index (kind, nlist, ...), once created. */
  get indexInfo(): FaissIndexInfo | undefined {
    return this.index?.info;
  }

  /** Whether the index is ready to take vectors (trained, or needs no training). */
  get isTrained(): boolean {
    return this.index?.isTrained ?? false;
  }

  /** Training needs of this store's factory string. */
  get trainingRule(): TrainingRule {
    return trainingRule(this.factory);
  }

  /** The underlying index (advanced use; calls on it are serialised with the store's own). */
  get faissIndex(): FaissIndex | undefined {
    return this.index;
  }

  private ensureIndex(d: number): FaissIndex {
    if (this.index) return this.index;
    if (!Number.isInteger(d) || d <= 0) throw new Error(`${OWNER}: dimensions must be a positive integer, got ${d}`);
    try {
      this.index = FaissIndex.create(d, this.factory);
    } catch (e) {
      throw new Error(`${OWNER}: cannot build index "${this.factory}": ${(e as Error).message}`);
    }
    this.dims = d;
    return this.index;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.mutex.then(fn, fn);
    this.mutex = run.catch(() => undefined);
    return run;
  }

  // -------------------------------------------------------------------------------------------
  // vectors in

  /** Packs rows into one Float32Array (n × d), validating shape; a Float32Array passes through. */
  private toMatrix(vectors: VectorRows, what: string): { data: Float32Array; n: number; d: number } {
    if (vectors instanceof Float32Array) {
      const d = this.dims;
      if (vectors.length === 0) throw new Error(`${OWNER}.${what}: no vectors given`);
      if (d === undefined) {
        throw new Error(`${OWNER}.${what}: a flat Float32Array needs the store's dimension (set params.dimensions)`);
      }
      if (vectors.length % d !== 0) {
        throw new Error(`${OWNER}.${what}: Float32Array of ${vectors.length} values is not a multiple of the dimension ${d}`);
      }
      return { data: vectors, n: vectors.length / d, d };
    }
    if (!Array.isArray(vectors) || vectors.length === 0) throw new Error(`${OWNER}.${what}: no vectors given`);
    const d = this.dims ?? vectors[0]!.length;
    if (d === 0) throw new Error(`${OWNER}.${what}: vector 0 is empty`);
    const data = new Float32Array(vectors.length * d);
    vectors.forEach((row, i) => {
      if (row.length !== d) {
        throw new Error(`${OWNER}.${what}: vector ${i} has ${row.length} dimensions, expected ${d}${this.dims ? " (store dimension)" : ""}`);
      }
      data.set(row, i * d);
    });
    return { data, n: vectors.length, d };
  }

  private static checkFinite(data: Float32Array, d: number, what: string): void {
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v - v !== 0) {
        throw new Error(`${OWNER}.${what}: vector ${Math.floor(i / d)} has a non-finite value (${v}) at component ${i % d}`);
      }
    }
  }

  /**
   * Reserves room for `total` vectors before a bulk load (Flat/HNSW storage and the id map), so the
   * index does not grow by copying: peak memory stays near the raw vector bytes. Needs the dimension.
   */
  async reserve(total: number): Promise<void> {
    if (!Number.isInteger(total) || total < 0) throw new Error(`${OWNER}.reserve: total must be an integer ≥ 0, got ${total}`);
    if (this.dims === undefined) throw new Error(`${OWNER}.reserve: the dimension is not known yet (set params.dimensions)`);
    await this.ensureIndex(this.dims).reserve(total);
  }

  /** Trains the index explicitly (IVF, PQ, OPQ, SQ). Needs at least `trainingRule.required` vectors. */
  async train(vectors: VectorRows): Promise<void> {
    return this.exclusive(async () => {
      const { data, n, d } = this.toMatrix(vectors, "train");
      if (this.dims !== undefined && d !== this.dims) {
        throw new Error(`${OWNER}.train: vectors have ${d} dimensions, the store has ${this.dims}`);
      }
      const index = this.ensureIndex(d);
      const rule = trainingRule(this.factory);
      if (n < rule.required) {
        throw new Error(`${OWNER}.train: "${this.factory}" needs at least ${rule.required} training vectors, got ${n} (${rule.reason})`);
      }
      if (index.ntotal > 0) throw new Error(`${OWNER}.train: the index already holds ${index.ntotal} vectors`);
      await index.train(data);
      this.changeCount++;
    });
  }

  /**
   * Adds vectors with their documents. Accepts number[][] rows, Float32Array rows, or one
   * row-major Float32Array (n × d). Returns the document ids.
   */
  override async addVectors(vectors: VectorRows, documents: DocumentInterface[], options?: FaissDPRAddOptions): Promise<string[]> {
    return this.exclusive(() => this.addVectorsUnlocked(vectors, documents, options));
  }

  private async addVectorsUnlocked(vectors: VectorRows, documents: DocumentInterface[], options?: FaissDPRAddOptions): Promise<string[]> {
    const { data, n, d } = this.toMatrix(vectors, "addVectors");
    if (documents.length !== n) {
      throw new Error(`${OWNER}.addVectors: ${n} vectors but ${documents.length} documents`);
    }
    if (this.dims !== undefined && d !== this.dims) {
      throw new Error(`${OWNER}.addVectors: vectors have ${d} dimensions, the store has ${this.dims}`);
    }
    if (options?.ids && options.ids.length !== n) {
      throw new Error(`${OWNER}.addVectors: ${n} documents but ${options.ids.length} ids`);
    }
    // ids: validate before touching the index
    const ids = documents.map((doc, i) => options?.ids?.[i] ?? doc.id ?? randomUUID());
    const seen = new Set<string>();
    ids.forEach((id, i) => {
      if (typeof id !== "string" || id.length === 0) throw new Error(`${OWNER}.addVectors: id of document ${i} must be a non-empty string`);
      if (this.labelOf.has(id) || seen.has(id)) throw new Error(`${OWNER}.addVectors: duplicate document id "${id}"`);
      seen.add(id);
    });
    FaissDPRStore.checkFinite(data, d, "addVectors");
    const index = this.ensureIndex(d);
    if (!index.isTrained) {
      const rule = trainingRule(this.factory);
      if (n < this.trainingSize) {
        throw new Error(
          `${OWNER}.addVectors: "${this.factory}" must be trained first: this batch has ${n} vectors, ` +
            `auto-training needs at least ${this.trainingSize} (${rule.reason}). ` +
            `Add a larger first batch, call train(vectors), or lower trainingSize (minimum ${rule.required}).`,
        );
      }
      await index.train(data);
    }
    const labels = new BigInt64Array(n);
    for (let i = 0; i < n; i++) labels[i] = BigInt(this.nextLabel + i);
    for (let start = 0; start < n; start += this.addBatchSize) {
      const end = Math.min(n, start + this.addBatchSize);
      await index.add(data.subarray(start * d, end * d), labels.subarray(start, end));
    }
    for (let i = 0; i < n; i++) {
      const doc = documents[i]!;
      const label = this.nextLabel + i;
      this.docs.set(label, { id: ids[i]!, pageContent: doc.pageContent, metadata: { ...(doc.metadata ?? {}) } });
      this.labelOf.set(ids[i]!, label);
    }
    this.nextLabel += n;
    this.changeCount++;
    return ids;
  }

  /**
   * Embeds and adds documents, in batches of `addBatchSize`. Uses the embeddings object's
   * Float32Array path (`embedPassagesMatrix`, with `metadata.title` as the title) when it has one.
   */
  override async addDocuments(documents: DocumentInterface[], options?: FaissDPRAddOptions): Promise<string[]> {
    if (documents.length === 0) throw new Error(`${OWNER}.addDocuments: no documents given`);
    const out: string[] = [];
    for (let start = 0; start < documents.length; start += this.addBatchSize) {
      const batch = documents.slice(start, start + this.addBatchSize);
      const ids = options?.ids?.slice(start, start + this.addBatchSize);
      const vectors = await this.embedPassages(batch);
      out.push(...(await this.addVectors(vectors, batch, ids ? { ids } : undefined)));
    }
    return out;
  }

  private async embedPassages(docs: DocumentInterface[]): Promise<VectorRows> {
    const emb = this.embeddings as EmbeddingsInterface & MatrixEmbeddings;
    if (typeof emb.embedPassagesMatrix === "function") {
      const m = await emb.embedPassagesMatrix(
        docs.map((doc) => ({
          text: doc.pageContent,
          title: typeof doc.metadata?.title === "string" ? (doc.metadata.title as string) : undefined,
        })),
      );
      if (this.dims === undefined) this.ensureIndex(m.dim);
      if (m.dim !== this.dims) throw new Error(`${OWNER}.addDocuments: embeddings have ${m.dim} dimensions, the store has ${this.dims}`);
      return m.data;
    }
    return this.embeddings.embedDocuments(docs.map((doc) => doc.pageContent));
  }

  private async embedQueryVector(query: string): Promise<Float32Array> {
    const emb = this.embeddings as EmbeddingsInterface & MatrixEmbeddings;
    if (typeof emb.embedQueryVector === "function") return emb.embedQueryVector(query);
    return Float32Array.from(await this.embeddings.embedQuery(query));
  }

  // -------------------------------------------------------------------------------------------
  // search

  private matches(filter: FaissDPRFilter | undefined, doc: StoredDoc): boolean {
    if (!filter) return true;
    if (typeof filter === "function") {
      return filter(new Document({ pageContent: doc.pageContent, metadata: doc.metadata, id: doc.id }));
    }
    return Object.entries(filter).every(([key, value]) => deepEqual(doc.metadata[key], value));
  }

  private toDocument(doc: StoredDoc): Document {
    return new Document({ pageContent: doc.pageContent, metadata: { ...doc.metadata }, id: doc.id });
  }

  /**
   * Core search: for each query, up to k live documents passing the filter, best first, as
   * (label, score, row index into the fetched vectors). Over-fetches by the number of tombstones
   * (so k live results come back from exact indexes) and, with a filter, grows the fetch size ×4
   * until k documents pass or every stored vector was considered.
   */
  private async searchLabels(
    queries: Float32Array,
    nq: number,
    options: FaissDPRSearchOptions,
    withVectors: boolean,
  ): Promise<{ hits: Array<Array<{ label: number; score: number; vector?: Float32Array }>> }> {
    const index = this.index;
    const { k } = options;
    if (!Number.isInteger(k) || k < 1) throw new Error(`${OWNER}: k must be an integer ≥ 1, got ${k}`);
    if (!index || this.docs.size === 0) throw new Error(`${OWNER}: the store is empty`);
    if (k > this.docs.size) {
      throw new Error(`${OWNER}: k=${k} exceeds the number of stored documents (${this.docs.size})`);
    }
    const d = this.dims!;
    if (queries.length !== nq * d) {
      throw new Error(`${OWNER}: query vectors have ${queries.length / nq} dimensions, the store has ${d}`);
    }
    FaissDPRStore.checkFinite(queries, d, "search");
    const knobs: FaissSearchKnobs = { nprobe: options.nprobe ?? this.nprobe, efSearch: options.efSearch ?? this.efSearch };
    for (const [name, v] of Object.entries(knobs) as [string, number | undefined][]) {
      if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new Error(`${OWNER}: ${name} must be an integer ≥ 1, got ${v}`);
    }
    const ntotal = index.ntotal;
    const hits: Array<Array<{ label: number; score: number; vector?: Float32Array }>> = new Array(nq);
    let pending = Array.from({ length: nq }, (_, i) => i);
    let fetch = Math.min(ntotal, options.filter ? Math.ceil(k * this.filterOverFetch) + this.tombstones.size : k + this.tombstones.size);
    for (;;) {
      const qs = new Float32Array(pending.length * d);
      pending.forEach((q, j) => qs.set(queries.subarray(q * d, (q + 1) * d), j * d));
      let res: FaissSearchResult;
      let vectors: Float32Array | undefined;
      if (withVectors) {
        const r = await index.searchAndReconstruct(qs, fetch, knobs);
        res = r;
        vectors = r.vectors;
      } else {
        res = await index.search(qs, fetch, knobs);
      }
      const next: number[] = [];
      pending.forEach((q, j) => {
        const list: Array<{ label: number; score: number; vector?: Float32Array }> = [];
        let exhausted = false;
        for (let r = 0; r < fetch && list.length < k; r++) {
          const pos = j * fetch + r;
          const label = Number(res.labels[pos]);
          if (label < 0) {
            exhausted = true;
            break;
          }
          const doc = this.docs.get(label);
          if (!doc || !this.matches(options.filter, doc)) continue;
          list.push({ label, score: res.distances[pos]!, vector: vectors?.subarray(pos * d, (pos + 1) * d) });
        }
        hits[q] = list;
        if (list.length < k && !exhausted && fetch < ntotal) next.push(q);
      });
      if (next.length === 0) break;
      pending = next;
      fetch = Math.min(ntotal, fetch * 4);
    }
    // An approximate index may run dry before k filtered documents turn up (IVF lists not
    // probed, HNSW graph regions not reached). With a filter, score the admitted documents
    // exactly instead: a restrictive filter makes that set small.
    if (options.filter) {
      const short = hits.map((list, q) => (list.length < k ? q : -1)).filter((q) => q >= 0);
      if (short.length > 0) await this.exactFilteredFallback(queries, short, hits, k, options.filter, withVectors);
    }
    return { hits };
  }

  private async exactFilteredFallback(
    queries: Float32Array,
    short: number[],
    hits: Array<Array<{ label: number; score: number; vector?: Float32Array }>>,
    k: number,
    filter: FaissDPRFilter,
    withVectors: boolean,
  ): Promise<void> {
    const d = this.dims!;
    const admitted: number[] = [];
    for (const [label, doc] of this.docs) if (this.matches(filter, doc)) admitted.push(label);
    if (admitted.length === 0) return;
    const vectors = await this.index!.reconstruct(BigInt64Array.from(admitted, (l) => BigInt(l)));
    for (const q of short) {
      const qv = queries.subarray(q * d, (q + 1) * d);
      const scored = admitted.map((label, i) => {
        const v = vectors.subarray(i * d, (i + 1) * d);
        let s = 0;
        for (let j = 0; j < d; j++) s += qv[j]! * v[j]!;
        return { label, score: s, vector: withVectors ? v : undefined };
      });
      scored.sort((a, b) => b.score - a.score || a.label - b.label);
      hits[q] = scored.slice(0, k);
    }
  }

  /**
   * Batched search over query vectors (rows or one row-major Float32Array). Returns, per query,
   * up to k [document, score] pairs; **score = inner product, higher is better**. Fewer than k
   * come back only when the filter admits fewer documents (or an approximate index finds fewer).
   */
  async searchVectors(queries: VectorRows, options: FaissDPRSearchOptions): Promise<Array<Array<[Document, number]>>> {
    if (!this.index) throw new Error(`${OWNER}: the store is empty`);
    const { data, n } = this.toMatrix(queries, "searchVectors");
    const { hits } = await this.searchLabels(data, n, options, false);
    return hits.map((list) => list.map((h) => [this.toDocument(this.docs.get(h.label)!), h.score] as [Document, number]));
  }

  /** Batched text search: embeds each query with the query encoder, then {@link searchVectors}. */
  async similaritySearchBatch(queries: string[], options: FaissDPRSearchOptions): Promise<Array<Array<[Document, number]>>> {
    if (queries.length === 0) throw new Error(`${OWNER}.similaritySearchBatch: no queries given`);
    const vectors = await Promise.all(queries.map((q) => this.embedQueryVector(q)));
    return this.searchVectors(vectors, options);
  }

  /**
   * k most similar documents to a query vector. **Score = inner product (higher is better).**
   * Throws when k < 1 or k exceeds the number of stored documents.
   */
  override async similaritySearchVectorWithScore(query: number[], k: number, filter?: FaissDPRFilter): Promise<[Document, number][]> {
    const [first] = await this.searchVectors([query], { k, filter });
    return first!;
  }

  /**
   * Maximal marginal relevance: fetches `fetchK` candidates (20 by default, clamped to the store
   * size) by inner product, then picks k trading relevance (λ) against similarity to the ones
   * already picked (1 − λ). Similarities between documents are inner products of the stored
   * vectors (approximate for PQ/SQ indexes).
   */
  override async maxMarginalRelevanceSearch(
    query: string,
    options: MaxMarginalRelevanceSearchOptions<this["FilterType"]>,
  ): Promise<Document[]> {
    const q = await this.embedQueryVector(query);
    return this.maxMarginalRelevanceSearchByVector(q, options);
  }

  /** {@link maxMarginalRelevanceSearch} from a query vector. */
  async maxMarginalRelevanceSearchByVector(
    query: number[] | Float32Array,
    options: MaxMarginalRelevanceSearchOptions<this["FilterType"]>,
  ): Promise<Document[]> {
    const k = options.k;
    const lambda = options.lambda ?? 0.5;
    if (!(lambda >= 0 && lambda <= 1)) throw new Error(`${OWNER}: lambda must be in [0, 1], got ${lambda}`);
    if (!Number.isInteger(k) || k < 1) throw new Error(`${OWNER}: k must be an integer ≥ 1, got ${k}`);
    const fetchK = Math.min(this.docs.size, Math.max(k, options.fetchK ?? 20));
    const qv = query instanceof Float32Array ? query : Float32Array.from(query);
    const { hits } = await this.searchLabels(qv, 1, { k: fetchK, filter: options.filter as FaissDPRFilter | undefined }, true);
    const cands = hits[0]!;
    const d = this.dims!;
    const dot = (a: Float32Array, b: Float32Array): number => {
      let s = 0;
      for (let i = 0; i < d; i++) s += a[i]! * b[i]!;
      return s;
    };
    const chosen: number[] = [];
    const maxSim = new Float64Array(cands.length).fill(-Infinity);
    const used = new Uint8Array(cands.length);
    while (chosen.length < Math.min(k, cands.length)) {
      let best = -1;
      let bestScore = -Infinity;
      for (let i = 0; i < cands.length; i++) {
        if (used[i]) continue;
        const redundancy = chosen.length === 0 ? 0 : maxSim[i]!;
        const score = lambda * cands[i]!.score - (1 - lambda) * redundancy;
        if (score > bestScore) {
          bestScore = score;
          best = i;
        }
      }
      used[best] = 1;
      chosen.push(best);
      for (let i = 0; i < cands.length; i++) {
        if (!used[i]) maxSim[i] = Math.max(maxSim[i]!, dot(cands[i]!.vector!, cands[best]!.vector!));
      }
    }
    return chosen.map((i) => this.toDocument(this.docs.get(cands[i]!.label)!));
  }

  // -------------------------------------------------------------------------------------------
  // delete, merge, compact

  /**
   * Deletes documents by id. Unknown ids are an error (nothing is deleted then). On HNSW, which
   * cannot remove vectors, the vectors are tombstoned: search skips them (over-fetching to still
   * return k), and {@link compact} rebuilds the index without them.
   */
  override async delete(params: { ids: string[] }): Promise<void> {
    return this.exclusive(async () => {
      if (!params || !Array.isArray(params.ids)) throw new Error(`${OWNER}.delete: expected { ids: string[] }`);
      const unknown = params.ids.filter((id) => !this.labelOf.has(id));
      if (unknown.length > 0) {
        throw new Error(`${OWNER}.delete: unknown document id(s): ${unknown.slice(0, 5).map((u) => `"${u}"`).join(", ")}${unknown.length > 5 ? ", ..." : ""}`);
      }
      const labels = [...new Set(params.ids.map((id) => this.labelOf.get(id)!))];
      if (labels.length === 0 || !this.index) return;
      if (this.index.info.canRemove) {
        const removed = await this.index.removeIds(BigInt64Array.from(labels, (l) => BigInt(l)));
        if (removed !== labels.length) {
          throw new Error(`${OWNER}.delete: faiss removed ${removed} vectors, expected ${labels.length} (index out of sync)`);
        }
      } else {
        for (const l of labels) this.tombstones.add(l);
      }
      for (const l of labels) {
        this.labelOf.delete(this.docs.get(l)!.id);
        this.docs.delete(l);
      }
      this.changeCount++;
    });
  }

  /** Number of deleted vectors still inside an HNSW index (see {@link compact}). */
  get tombstoneCount(): number {
    return this.tombstones.size;
  }

  /** Copies live vectors in label order (batched), for merge and compact. */
  private async *liveVectors(batch: number): AsyncGenerator<{ labels: number[]; data: Float32Array }> {
    const labels = [...this.docs.keys()].sort((a, b) => a - b);
    for (let i = 0; i < labels.length; i += batch) {
      const part = labels.slice(i, i + batch);
      const data = await this.index!.reconstruct(BigInt64Array.from(part, (l) => BigInt(l)));
      yield { labels: part, data };
    }
  }

  /**
   * Rebuilds the index without tombstoned vectors (HNSW after deletes). Ids are kept. Exact for
   * Flat / HNSW(Flat) / IVF-Flat; PQ / SQ vectors are re-encoded from their reconstruction.
   */
  async compact(): Promise<void> {
    return this.exclusive(async () => {
      if (!this.index || this.tombstones.size === 0) return;
      const fresh = FaissIndex.create(this.dims!, this.factory);
      try {
        let trained = fresh.isTrained;
        for await (const { labels, data } of this.liveVectors(this.addBatchSize)) {
          if (!trained) {
            await fresh.train(data);
            trained = true;
          }
          await fresh.add(data, BigInt64Array.from(labels, (l) => BigInt(l)));
        }
      } catch (e) {
        await fresh.dispose();
        throw e;
      }
      const old = this.index;
      this.index = fresh;
      this.tombstones.clear();
      this.changeCount++;
      await old.dispose();
    });
  }

  /**
   * Copies every document and vector of `other` into this store (other is unchanged). Document
   * ids must not collide. Vectors are read back from other's index (exact for Flat, HNSW and
   * IVF-Flat; the PQ / SQ reconstruction otherwise) and added here with new internal labels.
   */
  async mergeFrom(other: FaissDPRStore): Promise<void> {
    if (other === this) throw new Error(`${OWNER}.mergeFrom: cannot merge a store into itself`);
    if (!other.index || other.docs.size === 0) return;
    if (this.dims !== undefined && other.dims !== this.dims) {
      throw new Error(`${OWNER}.mergeFrom: dimensions differ (${this.dims} here, ${other.dims} in the other store)`);
    }
    const clash = [...other.labelOf.keys()].find((id) => this.labelOf.has(id));
    if (clash !== undefined) throw new Error(`${OWNER}.mergeFrom: document id "${clash}" exists in both stores`);
    await other.exclusive(async () => {
      for await (const { labels, data } of other.liveVectors(this.addBatchSize)) {
        const docs = labels.map((l) => other.toDocument(other.docs.get(l)!));
        await this.addVectors(this.dims === undefined ? FaissDPRStore.rows(data, other.dims!) : data, docs, {
          ids: docs.map((doc) => doc.id!),
        });
      }
    });
  }

  private static rows(data: Float32Array, d: number): Float32Array[] {
    const out: Float32Array[] = [];
    for (let i = 0; i < data.length; i += d) out.push(data.subarray(i, i + d));
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // persistence

  /**
   * Saves to `directory` atomically: the index and documents are written as files of a new
   * generation (index.<gen>.faiss, plain faiss format; docs.<gen>.jsonl, one document per line),
   * fsynced, then manifest.json is replaced by rename. A crash at any point leaves the previous
   * manifest and its files intact. Older generations are removed afterwards.
   */
  override async save(directory: string): Promise<void> {
    return this.exclusive(async () => {
      if (!this.index || this.dims === undefined) throw new Error(`${OWNER}.save: the store is empty (nothing to save)`);
      await mkdir(directory, { recursive: true });
      const generation = `${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
      const indexFile = `index.${generation}.faiss`;
      const docsFile = `docs.${generation}.jsonl`;
      await this.index.write(path.join(directory, indexFile));
      await this.writeDocs(path.join(directory, docsFile));
      const manifest: Manifest = {
        format: FORMAT,
        version: FORMAT_VERSION,
        generation,
        indexFile,
        docsFile,
        factory: this.factory,
        dimensions: this.dims,
        metric: this.index.metric,
        ntotal: this.index.ntotal,
        count: this.docs.size,
        nextLabel: this.nextLabel,
        tombstones: [...this.tombstones].sort((a, b) => a - b),
        nprobe: this.nprobe,
        efSearch: this.efSearch,
      };
      const tmp = path.join(directory, `${MANIFEST}.tmp-${generation}`);
      const h = await open(tmp, "w");
      try {
        await h.writeFile(JSON.stringify(manifest, null, 2));
        await h.sync();
      } finally {
        await h.close();
      }
      await rename(tmp, path.join(directory, MANIFEST));
      await fsyncDir(directory);
      // clean older generations and leftovers of interrupted saves
      for (const name of await readdir(directory)) {
        const ours = /^(index\..+\.faiss|docs\..+\.jsonl|manifest\.json\.tmp-.+)$/.test(name);
        if (ours && name !== indexFile && name !== docsFile) await rm(path.join(directory, name), { force: true });
      }
    });
  }

  private async writeDocs(file: string): Promise<void> {
    const h = await open(file, "w");
    try {
      let chunk: string[] = [];
      let chunkChars = 0;
      const labels = [...this.docs.keys()].sort((a, b) => a - b);
      for (const label of labels) {
        const doc = this.docs.get(label)!;
        const line = JSON.stringify({ label, id: doc.id, pageContent: doc.pageContent, metadata: doc.metadata });
        chunk.push(line);
        chunkChars += line.length;
        if (chunkChars > 1 << 20) {
          await h.write(chunk.join("\n") + "\n");
          chunk = [];
          chunkChars = 0;
        }
      }
      if (chunk.length > 0) await h.write(chunk.join("\n") + "\n");
      await h.sync();
    } finally {
      await h.close();
    }
  }

  /**
   * Loads a store saved by {@link save}. Checks that the index's dimension, metric and vector
   * count and the document count agree with the manifest, naming whatever does not.
   */
  static override async load(directory: string, embeddings: EmbeddingsInterface): Promise<FaissDPRStore> {
    const manifestPath = path.join(directory, MANIFEST);
    let text: string;
    try {
      text = await readFile(manifestPath, "utf8");
    } catch (e) {
      throw new Error(`${OWNER}.load: ${manifestPath} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); not a saved ${OWNER} folder?`);
    }
    let m: Manifest;
    try {
      m = JSON.parse(text) as Manifest;
    } catch (e) {
      throw new Error(`${OWNER}.load: ${manifestPath} is not valid JSON: ${(e as Error).message}`);
    }
    if (m.format !== FORMAT || m.version !== FORMAT_VERSION) {
      throw new Error(`${OWNER}.load: ${manifestPath} has format ${m.format} v${m.version}, expected ${FORMAT} v${FORMAT_VERSION}`);
    }
    const indexPath = path.join(directory, m.indexFile);
    try {
      await stat(indexPath);
    } catch {
      throw new Error(`${OWNER}.load: index file ${indexPath} named by the manifest is missing`);
    }
    const index = await FaissIndex.read(indexPath).catch((e: Error) => {
      throw new Error(`${OWNER}.load: ${e.message}`);
    });
    const problems: string[] = [];
    if (index.d !== m.dimensions) problems.push(`dimension: index ${index.d}, manifest ${m.dimensions}`);
    if (index.metric !== m.metric || index.metric !== "inner_product") {
      problems.push(`metric: index ${index.metric}, manifest ${m.metric} (expected inner_product)`);
    }
    if (index.ntotal !== m.ntotal) problems.push(`vector count: index ${index.ntotal}, manifest ${m.ntotal}`);
    if (m.ntotal - m.tombstones.length !== m.count) {
      problems.push(`manifest: ${m.ntotal} vectors − ${m.tombstones.length} deleted ≠ ${m.count} documents`);
    }
    if (problems.length > 0) {
      await index.dispose();
      throw new Error(`${OWNER}.load: ${directory} is inconsistent: ${problems.join("; ")}`);
    }
    const store = new this(embeddings, { factory: m.factory, nprobe: m.nprobe, efSearch: m.efSearch, trainingSize: Math.max(1, trainingRule(m.factory).required) });
    store.index = index;
    store.dims = m.dimensions;
    store.nextLabel = m.nextLabel;
    for (const t of m.tombstones) store.tombstones.add(t);
    const docsPath = path.join(directory, m.docsFile);
    try {
      await stat(docsPath);
    } catch {
      await index.dispose();
      throw new Error(`${OWNER}.load: documents file ${docsPath} named by the manifest is missing`);
    }
    const lines = createInterface({ input: createReadStream(docsPath, { encoding: "utf8" }), crlfDelay: Infinity });
    let lineNo = 0;
    try {
      for await (const line of lines) {
        lineNo++;
        if (line.length === 0) continue;
        let rec: { label: number; id: string; pageContent: string; metadata: Record<string, unknown> };
        try {
          rec = JSON.parse(line);
        } catch (e) {
          throw new Error(`${docsPath} line ${lineNo} is not valid JSON (${(e as Error).message})`);
        }
        if (!Number.isInteger(rec.label) || typeof rec.id !== "string" || typeof rec.pageContent !== "string") {
          throw new Error(`${docsPath} line ${lineNo} lacks label/id/pageContent`);
        }
        store.docs.set(rec.label, { id: rec.id, pageContent: rec.pageContent, metadata: rec.metadata ?? {} });
        store.labelOf.set(rec.id, rec.label);
      }
    } catch (e) {
      await index.dispose();
      throw new Error(`${OWNER}.load: ${(e as Error).message}`);
    }
    if (store.docs.size !== m.count) {
      await index.dispose();
      throw new Error(`${OWNER}.load: document count: ${docsPath} has ${store.docs.size}, manifest and index say ${m.count}`);
    }
    return store;
  }

  // -------------------------------------------------------------------------------------------
  // factories

  /** Builds a store from texts (metadata: one object for all, or one per text). */
  static override async fromTexts(
    texts: string[],
    metadatas: object[] | object,
    embeddings: EmbeddingsInterface,
    params?: FaissDPRStoreParams,
  ): Promise<FaissDPRStore> {
    const docs = texts.map(
      (text, i) =>
        new Document({
          pageContent: text,
          metadata: (Array.isArray(metadatas) ? (metadatas[i] ?? {}) : metadatas) as Record<string, unknown>,
        }),
    );
    return this.fromDocuments(docs, embeddings, params);
  }

  /** Builds a store from documents. */
  static override async fromDocuments(docs: DocumentInterface[], embeddings: EmbeddingsInterface, params?: FaissDPRStoreParams): Promise<FaissDPRStore> {
    const store = new this(embeddings, params);
    await store.addDocuments(docs);
    return store;
  }

  /** Builds a store from precomputed vectors. */
  static async fromVectors(
    vectors: VectorRows,
    docs: DocumentInterface[],
    embeddings: EmbeddingsInterface,
    params?: FaissDPRStoreParams,
  ): Promise<FaissDPRStore> {
    const store = new this(embeddings, params);
    await store.addVectors(vectors, docs);
    return store;
  }

  /** Frees the native index. */
  async dispose(): Promise<void> {
    await this.index?.dispose();
    this.index = undefined;
    this.changeCount++;
  }
}

/**
 * FaissDPRStore: a LangChain vector store over faiss, scored by inner product (DPR's dot product).
 * This file is the LangChain-facing class; the work is in ./state.ts (contents, upsert, delete,
 * compact), ./search.ts (over-fetch, filters, exact fallback), ./mmr.ts, ./embed.ts,
 * ./persistence.ts (save, load) and ./langchain-import.ts (other LangChain FAISS folders).
 * Filters follow ../retrievers/filter.ts.
 *
 * @module
 */
import { Document, type DocumentInterface } from "@langchain/core/documents";
import type { EmbeddingsInterface } from "@langchain/core/embeddings";
import { SaveableVectorStore, type MaxMarginalRelevanceSearchOptions } from "@langchain/core/vectorstores";
import { FaissIndex, type FaissIndexInfo } from "../native/faiss-index.js";
import { embedPassages, embedQuery } from "./embed.js";
import { readFaissStoreFolder, readPythonSaveLocalFolder, type ImportedFolder } from "./langchain-import.js";
import { OWNER, rowViews, toMatrix } from "./matrix.js";
import { selectMMR } from "./mmr.js";
import { readSavedStore, saveStore, type FaissDPRLoadOptions } from "./persistence.js";
import { searchLabels } from "./search.js";
import { resolveIds } from "./ids.js";
import { StoreState } from "./state.js";
import { trainingRule, type TrainingRule } from "./training-rule.js";
import type {
  FaissDPRAddOptions,
  FaissDPRFilter,
  FaissDPRImportOptions,
  FaissDPRSearchOptions,
  FaissDPRStoreParams,
  MMRSimilarity,
  VectorRows,
} from "./types.js";

export type {
  FaissDPRAddOptions,
  FaissDPRFilter,
  FaissDPRImportMetric,
  FaissDPRImportOptions,
  FaissDPRSearchOptions,
  FaissDPRStoreParams,
  MMRSimilarity,
  VectorRows,
} from "./types.js";

function checkPositiveInt(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new Error(`${OWNER}: ${name} must be an integer ≥ 1, got ${v}`);
}

/**
 * A LangChain vector store on faiss (through langchain-dpr's own native addon), for DPR vectors.
 *
 * **Scores are inner products: higher means more similar** (DPR was trained with dot-product
 * similarity). This differs from LangChain's FaissStore, which returns L2 distances.
 *
 * - Any faiss factory string; untrained indexes train on the first batch when it has at least
 *   `trainingSize` vectors, or through {@link train}.
 * - k larger than the number of stored documents is lowered to it (warned once); an empty store
 *   returns no results, as LangChain's FaissStore and MemoryVectorStore do.
 * - Adding an id that is already stored replaces that document and vector (upsert, as LangChain's
 *   indexing API expects); {@link getByIds} reads documents back.
 * - Ids are stable across {@link delete}, {@link save} and {@link load}. HNSW cannot remove vectors:
 *   deleted or replaced ones are tombstoned (skipped at search with over-fetch) until {@link compact}.
 * - {@link save} is atomic: files of a new generation, then an atomic manifest rename.
 * - {@link loadFromFaissStore} and {@link loadFromPythonSaveLocal} open LangChain.js FaissStore and
 *   LangChain Python FAISS folders.
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
  /** Similarity MMR uses (see {@link MMRSimilarity}). */
  mmrSimilarity: MMRSimilarity = "cosine";

  private readonly state = new StoreState();
  /** Serialises mutations of the store (adds, deletes, merges, saves). */
  private mutex: Promise<unknown> = Promise.resolve();
  private warnedK = false;

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
    this.mmrSimilarity = params.mmrSimilarity ?? this.mmrSimilarity;
    const rule = trainingRule(this.factory);
    this.trainingSize = params.trainingSize ?? rule.recommended;
    checkPositiveInt("nprobe", this.nprobe);
    checkPositiveInt("efSearch", this.efSearch);
    checkPositiveInt("addBatchSize", this.addBatchSize);
    if (!(this.filterOverFetch >= 1)) throw new Error(`${OWNER}: filterOverFetch must be ≥ 1, got ${this.filterOverFetch}`);
    if (this.mmrSimilarity !== "cosine" && this.mmrSimilarity !== "inner_product") {
      throw new Error(`${OWNER}: mmrSimilarity must be "cosine" or "inner_product", got ${JSON.stringify(this.mmrSimilarity)}`);
    }
    if (!Number.isInteger(this.trainingSize) || this.trainingSize < rule.required) {
      throw new Error(
        `${OWNER}: trainingSize ${this.trainingSize} is below the minimum ${rule.required} for "${this.factory}" (${rule.reason})`,
      );
    }
    if (params.threads !== undefined) FaissIndex.setNumThreads(params.threads);
    if (params.dimensions !== undefined) this.state.ensureIndex(params.dimensions, this.factory);
  }

  // -------------------------------------------------------------------------------------------
  // state

  /**
   * A counter that grows with every change of what search can return (add, delete, compact,
   * train, merge, dispose). Caches such as DPRRetriever's key on it, so a changed store never
   * serves stale results.
   */
  get version(): number {
    return this.state.changeCount;
  }

  /** Number of live (not deleted) documents. */
  get size(): number {
    return this.state.docs.size;
  }

  /** Vector dimension, once known. */
  get dimensions(): number | undefined {
    return this.state.dims;
  }

  /** Structure of the faiss index (kind, nlist, ...), once created. */
  get indexInfo(): FaissIndexInfo | undefined {
    return this.state.index?.info;
  }

  /** Whether the index is ready to take vectors (trained, or needs no training). */
  get isTrained(): boolean {
    return this.state.index?.isTrained ?? false;
  }

  /** Training needs of this store's factory string. */
  get trainingRule(): TrainingRule {
    return trainingRule(this.factory);
  }

  /** The underlying index (advanced use; calls on it are serialised with the store's own). */
  get faissIndex(): FaissIndex | undefined {
    return this.state.index;
  }

  /** Number of deleted or replaced vectors still inside an HNSW index (see {@link compact}). */
  get tombstoneCount(): number {
    return this.state.tombstones.size;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.mutex.then(fn, fn);
    this.mutex = run.catch(() => undefined);
    return run;
  }

  /** Checks k (an integer ≥ 1) and lowers it to the number of live documents, warning once per store. */
  private clampK(k: number): number {
    if (!Number.isInteger(k) || k < 1) throw new Error(`${OWNER}: k must be an integer ≥ 1, got ${k}`);
    if (this.state.disposed) throw new Error(`${OWNER}: the store was disposed`);
    const size = this.state.docs.size;
    if (k <= size) return k;
    if (size > 0 && !this.warnedK) {
      this.warnedK = true;
      console.warn(
        `${OWNER}: k (${k}) is greater than the number of stored documents (${size}), setting k to ${size} (warned once per store)`,
      );
    }
    return size;
  }

  // -------------------------------------------------------------------------------------------
  // vectors in

  /**
   * Reserves room for `total` vectors before a bulk load (Flat/HNSW storage and the id map), so the
   * index does not grow by copying: peak memory stays near the raw vector bytes. Needs the dimension.
   */
  async reserve(total: number): Promise<void> {
    if (!Number.isInteger(total) || total < 0) throw new Error(`${OWNER}.reserve: total must be an integer ≥ 0, got ${total}`);
    if (this.state.dims === undefined) throw new Error(`${OWNER}.reserve: the dimension is not known yet (set params.dimensions)`);
    await this.state.ensureIndex(this.state.dims, this.factory).reserve(total);
  }

  /** Trains the index explicitly (IVF, PQ, OPQ, SQ). Needs at least `trainingRule.required` vectors. */
  async train(vectors: VectorRows): Promise<void> {
    return this.exclusive(async () => {
      const { data, n, d } = toMatrix(vectors, this.state.dims, "train");
      const index = this.state.ensureIndex(d, this.factory);
      const rule = trainingRule(this.factory);
      if (n < rule.required) {
        throw new Error(`${OWNER}.train: "${this.factory}" needs at least ${rule.required} training vectors, got ${n} (${rule.reason})`);
      }
      if (index.ntotal > 0) throw new Error(`${OWNER}.train: the index already holds ${index.ntotal} vectors`);
      await index.train(data);
      this.state.changeCount++;
    });
  }

  /**
   * Adds vectors with their documents; a document whose id is already stored is replaced (its old
   * vector removed, atomically for concurrent searches). Accepts number[][] rows, Float32Array rows,
   * or one row-major Float32Array (n × d). Returns the document ids.
   */
  override async addVectors(vectors: VectorRows, documents: DocumentInterface[], options?: FaissDPRAddOptions): Promise<string[]> {
    return this.exclusive(async () => {
      const m = toMatrix(vectors, this.state.dims, "addVectors");
      if (documents.length !== m.n) throw new Error(`${OWNER}.addVectors: ${m.n} vectors but ${documents.length} documents`);
      const ids = resolveIds(documents, options?.ids, "addVectors");
      await this.state.upsert(m, documents, ids, {
        factory: this.factory,
        trainingSize: this.trainingSize,
        addBatchSize: this.addBatchSize,
      });
      return ids;
    });
  }

  /**
   * Embeds and adds (or replaces, by id) documents, in batches of `addBatchSize`. Uses the
   * embeddings object's Float32Array path (`embedPassagesMatrix`, with `metadata.title` as the
   * title) when it has one.
   */
  override async addDocuments(documents: DocumentInterface[], options?: FaissDPRAddOptions): Promise<string[]> {
    if (documents.length === 0) throw new Error(`${OWNER}.addDocuments: no documents given`);
    const ids = resolveIds(documents, options?.ids, "addDocuments");
    for (let start = 0; start < documents.length; start += this.addBatchSize) {
      const batch = documents.slice(start, start + this.addBatchSize);
      const vectors = await this.embedPassages(batch);
      await this.addVectors(vectors, batch, { ids: ids.slice(start, start + this.addBatchSize) });
    }
    return ids;
  }

  private async embedPassages(docs: DocumentInterface[]): Promise<VectorRows> {
    const { rows, dim } = await embedPassages(this.embeddings, docs);
    if (dim !== undefined) {
      if (this.state.dims === undefined) this.state.ensureIndex(dim, this.factory);
      if (dim !== this.state.dims)
        throw new Error(`${OWNER}.addDocuments: embeddings have ${dim} dimensions, the store has ${this.state.dims}`);
    }
    return rows;
  }

  /** The stored documents with these ids, in the order asked; unknown ids are skipped. */
  async getByIds(ids: string[]): Promise<Document[]> {
    if (!Array.isArray(ids)) throw new Error(`${OWNER}.getByIds: expected an array of ids, got ${typeof ids}`);
    return ids.flatMap((id) => {
      const label = typeof id === "string" ? this.state.labelOf.get(id) : undefined;
      return label === undefined ? [] : [this.state.toDocument(this.state.docs.get(label)!)];
    });
  }

  // -------------------------------------------------------------------------------------------
  // search

  /**
   * Batched search over query vectors (rows or one row-major Float32Array). Returns, per query,
   * up to k [document, score] pairs; **score = inner product, higher is better**. Fewer than k
   * come back when the store holds fewer documents (k is lowered, warned once), when the filter
   * admits fewer, or when an approximate index finds fewer; an empty store returns empty lists.
   */
  async searchVectors(queries: VectorRows, options: FaissDPRSearchOptions): Promise<Array<Array<[Document, number]>>> {
    const k = this.clampK(options.k);
    const { data, n } = toMatrix(queries, this.state.dims, "searchVectors");
    if (k === 0 || !this.state.index) return Array.from({ length: n }, () => []);
    const knobs = { nprobe: options.nprobe ?? this.nprobe, efSearch: options.efSearch ?? this.efSearch };
    const hits = await searchLabels(this.state, data, n, {
      k,
      filter: options.filter,
      knobs,
      filterOverFetch: this.filterOverFetch,
      withVectors: false,
    });
    return hits.map((list) => list.map((h) => [this.state.toDocument(h.doc), h.score] as [Document, number]));
  }

  /** Batched text search: embeds each query with the query encoder, then {@link searchVectors}. */
  async similaritySearchBatch(queries: string[], options: FaissDPRSearchOptions): Promise<Array<Array<[Document, number]>>> {
    if (queries.length === 0) throw new Error(`${OWNER}.similaritySearchBatch: no queries given`);
    const vectors = await Promise.all(queries.map((q) => embedQuery(this.embeddings, q)));
    return this.searchVectors(
      vectors.map((v) => (v instanceof Float32Array ? v : Float32Array.from(v))),
      options,
    );
  }

  /**
   * k most similar documents to a query vector. **Score = inner product (higher is better).**
   * Throws when k < 1; k beyond the stored documents is lowered to their number (warned once).
   */
  override async similaritySearchVectorWithScore(query: number[], k: number, filter?: FaissDPRFilter): Promise<[Document, number][]> {
    const [first] = await this.searchVectors([query], { k, filter });
    return first!;
  }

  /**
   * Maximal marginal relevance: fetches `fetchK` candidates (20 by default, clamped to the store
   * size) by inner product, then picks k trading relevance (λ) against similarity to the ones
   * already picked (1 − λ), measured by {@link mmrSimilarity} (cosine by default, exactly as
   * @langchain/core's `maximalMarginalRelevance`). Candidate vectors are the stored ones
   * (approximate for PQ/SQ indexes).
   */
  override async maxMarginalRelevanceSearch(
    query: string,
    options: MaxMarginalRelevanceSearchOptions<this["FilterType"]>,
  ): Promise<Document[]> {
    return this.maxMarginalRelevanceSearchByVector(await embedQuery(this.embeddings, query), options);
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
    const fetchK = Math.min(this.state.docs.size, Math.max(k, options.fetchK ?? 20));
    if (fetchK === 0 || !this.state.index) return [];
    const { data } = toMatrix(
      [query instanceof Float32Array ? query : Float32Array.from(query)],
      this.state.dims,
      "maxMarginalRelevanceSearch",
    );
    const knobs = { nprobe: this.nprobe, efSearch: this.efSearch };
    const [cands] = await searchLabels(this.state, data, 1, {
      k: fetchK,
      filter: options.filter as FaissDPRFilter | undefined,
      knobs,
      filterOverFetch: this.filterOverFetch,
      withVectors: true,
    });
    const picks = selectMMR(
      query,
      cands!.map((c) => c.vector!),
      k,
      lambda,
      this.mmrSimilarity,
    );
    return picks.map((i) => this.state.toDocument(cands![i]!.doc));
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
      await this.state.delete(params.ids);
    });
  }

  /**
   * Rebuilds the index without tombstoned vectors (HNSW after deletes or replacements). Ids are
   * kept. Exact for Flat / HNSW(Flat) / IVF-Flat; PQ / SQ vectors are re-encoded from their reconstruction.
   */
  async compact(): Promise<void> {
    return this.exclusive(() => this.state.compact(this.factory, this.addBatchSize));
  }

  /**
   * Copies every document and vector of `other` into this store (other is unchanged). Document
   * ids must not collide. Vectors are read back from other's index (exact for Flat, HNSW and
   * IVF-Flat; the PQ / SQ reconstruction otherwise) and added here with new internal labels.
   */
  async mergeFrom(other: FaissDPRStore): Promise<void> {
    if (other === this) throw new Error(`${OWNER}.mergeFrom: cannot merge a store into itself`);
    const src = other.state;
    if (!src.index || src.docs.size === 0) return;
    if (this.state.dims !== undefined && src.dims !== this.state.dims) {
      throw new Error(`${OWNER}.mergeFrom: dimensions differ (${this.state.dims} here, ${src.dims} in the other store)`);
    }
    const clash = [...src.labelOf.keys()].find((id) => this.state.labelOf.has(id));
    if (clash !== undefined) throw new Error(`${OWNER}.mergeFrom: document id "${clash}" exists in both stores`);
    await other.exclusive(async () => {
      for await (const { labels, data } of src.liveVectors(this.addBatchSize)) {
        const docs = labels.map((l) => src.toDocument(src.docs.get(l)!));
        await this.addVectors(this.state.dims === undefined ? rowViews(data, src.dims!) : data, docs, { ids: docs.map((doc) => doc.id!) });
      }
    });
  }

  // -------------------------------------------------------------------------------------------
  // persistence

  /**
   * Saves to `directory` atomically: the index and documents are written as files of a new
   * generation (index.<gen>.faiss, plain faiss format; docs.<gen>.jsonl, one document per line),
   * fsynced, then manifest.json (with each file's size and SHA-256) is replaced by rename. A crash
   * at any point leaves the previous manifest and its files intact. Older generations and leftovers
   * of interrupted saves are removed. One save at a time per folder: a save holds `<directory>/.lock`,
   * and one that finds a live holder (another process) throws naming it.
   */
  override async save(directory: string): Promise<void> {
    return this.exclusive(() =>
      saveStore(this.state, directory, {
        factory: this.factory,
        nprobe: this.nprobe,
        efSearch: this.efSearch,
        mmrSimilarity: this.mmrSimilarity,
      }),
    );
  }

  /**
   * Loads a store saved by {@link save}. Checks each file's size and SHA-256 against the manifest
   * before reading it (`options.verifyChecksums: false` skips the hash), then that the index's
   * dimension, metric and vector count and every document line (label, id, content, metadata) agree
   * with the manifest, naming whatever does not. Removes leftovers of interrupted saves when no save
   * is running and the folder is writable.
   */
  static override async load(
    directory: string,
    embeddings: EmbeddingsInterface,
    options: FaissDPRLoadOptions = {},
  ): Promise<FaissDPRStore> {
    const saved = await readSavedStore(directory, options);
    const { factory } = saved.settings;
    const store = new this(embeddings, { ...saved.settings, trainingSize: Math.max(1, trainingRule(factory).required) });
    store.state.adopt(saved);
    return store;
  }

  /**
   * Opens a LangChain.js FaissStore folder (@langchain/community's `save`: `faiss.index` +
   * `docstore.json`) as a new store with the same documents, ids and vectors. FaissStore builds
   * L2 indexes, so this needs `{ metric: "convert-to-inner-product" }` (see
   * {@link FaissDPRImportOptions.metric}); other options configure the new store (factory, ...).
   */
  static async loadFromFaissStore(
    directory: string,
    embeddings: EmbeddingsInterface,
    options: FaissDPRImportOptions = {},
  ): Promise<FaissDPRStore> {
    const { metric = "inner_product", indexName: _unused, ...params } = options;
    return this.fromImported(await readFaissStoreFolder(directory, metric), embeddings, params);
  }

  /**
   * Opens a LangChain Python `FAISS.save_local` folder (`index.faiss` + `index.pkl`) as a new store
   * with the same documents, ids and vectors. index.pkl is read by a restricted pickle reader that
   * executes nothing and refuses any class but LangChain's Document / InMemoryDocstore (and pathlib
   * paths). Python's FAISS is L2 unless built with `MAX_INNER_PRODUCT`: an L2 index needs
   * `{ metric: "convert-to-inner-product" }` (see {@link FaissDPRImportOptions.metric}).
   */
  static async loadFromPythonSaveLocal(
    directory: string,
    embeddings: EmbeddingsInterface,
    options: FaissDPRImportOptions = {},
  ): Promise<FaissDPRStore> {
    const { metric = "inner_product", indexName = "index", ...params } = options;
    return this.fromImported(await readPythonSaveLocalFolder(directory, metric, indexName), embeddings, params);
  }

  private static async fromImported(
    folder: ImportedFolder,
    embeddings: EmbeddingsInterface,
    params: FaissDPRStoreParams,
  ): Promise<FaissDPRStore> {
    if (params.dimensions !== undefined && params.dimensions !== folder.dims) {
      throw new Error(`${OWNER}: the folder's vectors have ${folder.dims} dimensions, params.dimensions is ${params.dimensions}`);
    }
    const store = new this(embeddings, { ...params, dimensions: folder.dims });
    if (folder.ids.length > 0) await store.addVectors(folder.vectors, folder.documents, { ids: folder.ids });
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
  static override async fromDocuments(
    docs: DocumentInterface[],
    embeddings: EmbeddingsInterface,
    params?: FaissDPRStoreParams,
  ): Promise<FaissDPRStore> {
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

  /** Frees the native index; the store cannot be searched or changed afterwards. */
  async dispose(): Promise<void> {
    await this.state.dispose();
  }
}

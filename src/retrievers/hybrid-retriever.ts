/**
 * HybridRetriever: dense (vector store) + sparse (BM25) retrieval fused by reciprocal rank
 * fusion or a normalised linear combination. Without fusion options it uses the fusion stored
 * with the dense side's DPR model (dpr_config.json `fusion`, see src/models/fusion-config.ts),
 * else RRF with k 60.
 *
 * @module
 */
import { BaseRetriever, type BaseRetrieverInput, type BaseRetrieverInterface } from "@langchain/core/retrievers";
import type { CallbackManagerForRetrieverRun, Callbacks } from "@langchain/core/callbacks/manager";
import { inRetrieverRun } from "../utils/callbacks.js";
import type { DocumentInterface } from "@langchain/core/documents";
import type { VectorStoreInterface } from "@langchain/core/vectorstores";
import { fuseDenseSparse, type FusedItem, type FusionSetting, type RankedItem, type ScoreNormalization } from "./fusion.js";
import type { FusionProvenance, ModelFusion } from "../models/fusion-config.js";
import { checkK } from "./dpr-retriever.js";
import { matchesFilter } from "./filter.js";
import { BM25Index } from "./bm25/bm25-index.js";
import { Document } from "@langchain/core/documents";
import {
  isRetrievalService,
  clampDepth,
  nowMs,
  reportTimings,
  throwIfAborted,
  withMetadata,
  type RetrievalResult,
  type RetrievalService,
  type RetrieveOptions,
} from "./types.js";

/**
 * One side of a hybrid search. A vector store is searched with its own embeddings
 * (`embedQuery` + `similaritySearchVectorWithScore`, scores taken from the store). A
 * {@link RetrievalService} (BM25Retriever, DPRRetriever) is asked for the side's depth and its
 * returned scores used. Any other retriever is invoked and its documents' `metadata.score` used
 * as scores; its own `k` bounds how many it returns, and the side's depth then truncates. A
 * {@link BM25Index} (built with stored passages) is searched to the side's depth directly, as is
 * an object with `searchWithScores(query, depth)`.
 */
export type HybridSide = VectorStoreInterface | BaseRetrieverInterface | ScoredSearcher | BM25Index;

/** Anything that returns `[document, score]` pairs best first for a depth. */
export interface ScoredSearcher {
  searchWithScores(query: string, depth: number): Promise<Array<[DocumentInterface, number]>>;
}

/** Fusion method of {@link HybridRetriever}. */
export type FusionMethod = "rrf" | "linear";

/**
 * Embeddings that know the fusion tuned for their model: DPREmbeddings reads it from its
 * dpr_config.json (`storedFusion()`).
 */
export interface FusionSource {
  storedFusion(): Promise<ModelFusion | undefined>;
}

/** The fusion a {@link HybridRetriever} uses and where it came from ({@link HybridRetriever.resolveFusion}). */
export interface ResolvedFusion {
  setting: FusionSetting;
  /**
   * `"options"`: the constructor was given a fusion option (`fusion`, `rrfK`, `rrfWeights`, `alpha`,
   * `normalization`); `"model"`: the dense side's model stores one (dpr_config.json `fusion`);
   * `"default"`: neither, RRF with k 60 and equal weights.
   */
  source: "options" | "model" | "default";
  /** For `"model"`: the model folder, when the embeddings have a `modelPath`. */
  modelPath?: string;
  /** For `"model"`: where the stored fusion was tuned, when the file says. */
  tunedOn?: FusionProvenance;
}

const FUSION_OPTIONS = ["fusion", "rrfK", "rrfWeights", "alpha", "normalization"] as const;

/** The {@link HybridRetriever} fusion options that describe `setting` (the inverse of its `resolveFusion().setting`). */
export function fusionOptions(setting: FusionSetting): Pick<HybridRetrieverParams, (typeof FUSION_OPTIONS)[number]> {
  return setting.method === "rrf"
    ? { fusion: "rrf", rrfK: setting.k, rrfWeights: [...setting.weights] }
    : { fusion: "linear", alpha: setting.alpha, normalization: setting.normalization };
}

/** Parameters of {@link HybridRetriever}. */
export interface HybridRetrieverParams extends BaseRetrieverInput {
  /** Dense side (usually a FaissDPRStore). */
  dense: HybridSide;
  /** Sparse side (usually a BM25Retriever). */
  sparse: HybridSide;
  /** Documents returned. Default 10. */
  k?: number;
  /** Candidates taken from the dense side. Default 100. */
  denseK?: number;
  /** Candidates taken from the sparse side. Default 100. */
  sparseK?: number;
  /**
   * `"rrf"` or `"linear"`. When this and every other fusion option (`rrfK`, `rrfWeights`, `alpha`,
   * `normalization`) are left out, the fusion stored with the dense side's model is used (a vector
   * store, or a DPRRetriever over one, whose embeddings have `storedFusion()`, as DPREmbeddings do,
   * and whose dpr_config.json has `fusion`); without one, `"rrf"`. Any fusion option given here
   * wins over the stored fusion as a whole (the two are never mixed).
   */
  fusion?: FusionMethod;
  /** RRF constant. Default 60. */
  rrfK?: number;
  /** RRF weights `[dense, sparse]`. Default `[1, 1]`. */
  rrfWeights?: [number, number];
  /** Linear fusion: weight of the dense side; the sparse side gets `1 - alpha`. Default 0.5. */
  alpha?: number;
  /** Linear fusion normalisation per side. Default `"minmax"`. */
  normalization?: ScoreNormalization;
  /**
   * Metadata filter: passed to a vector-store dense side, and applied to the sparse side's results
   * (the rule of `matchesFilter`: an object whose every key deep-equals the document's metadata
   * value, or a predicate over the document). The sparse side is not over-fetched, so a restrictive filter can
   * leave fewer than `sparseK` sparse candidates.
   */
  filter?: unknown;
  /**
   * Document identity for deduplication. Default: `doc.id`, else `metadata.id`, else
   * `metadata._id`; a document with none is an error.
   */
  getId?: (doc: DocumentInterface) => string | undefined;
  /**
   * Write the fusion's numbers into each returned document's metadata: `fusedScore`, `fusion`,
   * `denseRank`/`denseScore`, `sparseRank`/`sparseScore` (null when that side did not return it).
   * Default false; the fused scores are always in {@link HybridRetriever.retrieve}'s result.
   */
  includeScores?: boolean;
}

function isVectorStore(x: unknown): x is VectorStoreInterface {
  return (
    typeof x === "object" &&
    x !== null &&
    typeof (x as VectorStoreInterface).similaritySearchVectorWithScore === "function" &&
    typeof (x as VectorStoreInterface).embeddings?.embedQuery === "function"
  );
}

/** The embeddings of a dense side that may know a stored fusion: a vector store's, or a DPRRetriever's store's. */
function fusionSourceOf(side: HybridSide): (FusionSource & { modelPath?: unknown }) | undefined {
  const store = isVectorStore(side) ? side : (side as { vectorStore?: unknown }).vectorStore;
  const embeddings = isVectorStore(store) ? (store.embeddings as unknown) : undefined;
  return typeof (embeddings as Partial<FusionSource> | undefined)?.storedFusion === "function"
    ? (embeddings as FusionSource & { modelPath?: unknown })
    : undefined;
}

function isScoredSearcher(x: unknown): x is ScoredSearcher {
  return typeof x === "object" && x !== null && typeof (x as ScoredSearcher).searchWithScores === "function";
}

function isRetriever(x: unknown): x is BaseRetrieverInterface {
  return typeof x === "object" && x !== null && typeof (x as BaseRetrieverInterface).invoke === "function";
}

/** The metadata-filter rule of ./filter.ts (every key deep-equal, or a predicate), re-exported where it used to live. */
export { matchesFilter };

/** The default id rule: `doc.id`, then `metadata.id`, then `metadata._id`. */
export function defaultDocumentId(doc: DocumentInterface): string | undefined {
  const m = doc.metadata ?? {};
  for (const v of [doc.id, m.id, m._id]) {
    if (typeof v === "string" && v.length > 0) return v;
    if (typeof v === "number" && Number.isFinite(v)) return String(v);
  }
  return undefined;
}

/**
 * Hybrid dense + sparse retriever. Each side is searched (in parallel) to its depth, results are
 * deduplicated by id and fused. A document found by both sides keeps the dense side's content and
 * metadata (a side's own `metadata.score` is dropped). With `includeScores` each document also
 * carries `metadata.fusedScore`, `metadata.fusion` (method), and per side `denseRank`/`denseScore`,
 * `sparseRank`/`sparseScore` (null when the side did not return it). With callbacks, sides that are
 * retrievers run as child runs and the timings are a `retrieval_timings` custom event.
 *
 * Fusion: the constructor's options when any is given; else the fusion stored with the dense
 * side's DPR model (dpr_config.json `fusion`, e.g. tuned by `langchain-dpr evaluate --tune-fusion`),
 * read on the first query (or by {@link resolveFusion}) and then written into this object's fusion
 * fields; else RRF with k 60. Set fusion through the constructor: fields assigned afterwards are
 * overwritten by a stored fusion on the first query.
 *
 * @example
 * ```ts
 * const hybrid = new HybridRetriever({ dense: faissStore, sparse: bm25Retriever, k: 10, fusion: "rrf" });
 * const docs = await hybrid.invoke("vitamin C and scurvy");
 * ```
 */
export class HybridRetriever extends BaseRetriever implements RetrievalService {
  static override lc_name(): string {
    return "HybridRetriever";
  }

  override lc_namespace = ["langchain_dpr", "retrievers", "hybrid"];

  dense: HybridSide;

  sparse: HybridSide;

  k = 10;

  denseK = 100;

  sparseK = 100;

  fusion: FusionMethod = "rrf";

  rrfK = 60;

  rrfWeights: [number, number] = [1, 1];

  alpha = 0.5;

  normalization: ScoreNormalization = "minmax";

  filter: unknown;

  getId: (doc: DocumentInterface) => string | undefined = defaultDocumentId;

  includeScores = false;

  readonly hasReranker = false;

  /** Whether the constructor was given a fusion option (then a stored fusion is never used). */
  private readonly fusionFromOptions: boolean;

  private fusionResolved?: Promise<ResolvedFusion>;

  constructor(fields: HybridRetrieverParams) {
    super(fields);
    for (const side of ["dense", "sparse"] as const) {
      const s = fields?.[side];
      if (!(s instanceof BM25Index) && !isVectorStore(s) && !isScoredSearcher(s) && !isRetriever(s)) {
        throw new Error(
          `HybridRetriever: params.${side} must be a vector store, a retriever, a BM25Index or an object with ` +
            `searchWithScores(query, depth)`,
        );
      }
      if (s instanceof BM25Index && !s.storePassages) {
        throw new Error(`HybridRetriever: params.${side} is a BM25Index built with storePassages: false, so it cannot return documents`);
      }
    }
    this.dense = fields.dense;
    this.sparse = fields.sparse;
    this.k = fields.k ?? this.k;
    this.denseK = fields.denseK ?? this.denseK;
    this.sparseK = fields.sparseK ?? this.sparseK;
    this.fusion = fields.fusion ?? this.fusion;
    this.rrfK = fields.rrfK ?? this.rrfK;
    this.rrfWeights = fields.rrfWeights ?? this.rrfWeights;
    this.alpha = fields.alpha ?? this.alpha;
    this.normalization = fields.normalization ?? this.normalization;
    this.filter = fields.filter;
    this.getId = fields.getId ?? this.getId;
    this.includeScores = fields.includeScores ?? this.includeScores;
    this.fusionFromOptions = FUSION_OPTIONS.some((key) => fields[key] !== undefined);
    checkK("HybridRetriever", "k", this.k);
    checkK("HybridRetriever", "denseK", this.denseK);
    checkK("HybridRetriever", "sparseK", this.sparseK);
    if (this.fusion !== "rrf" && this.fusion !== "linear") {
      throw new Error(`HybridRetriever: fusion must be "rrf" or "linear", got ${JSON.stringify(this.fusion)}`);
    }
    if (!(this.alpha >= 0 && this.alpha <= 1)) {
      throw new Error(`HybridRetriever: alpha must be in [0, 1], got ${this.alpha}`);
    }
  }

  /** The fusion this retriever's fields describe now. */
  private currentSetting(): FusionSetting {
    return this.fusion === "rrf"
      ? { method: "rrf", k: this.rrfK, weights: [...this.rrfWeights] }
      : { method: "linear", alpha: this.alpha, normalization: this.normalization };
  }

  /**
   * The fusion this retriever uses and where it came from (see the class notes). Reads the dense
   * model's stored fusion once (queries call this first) and copies it into the fusion fields;
   * concurrent first calls share one read, and a failed read is retried by the next call.
   */
  async resolveFusion(): Promise<ResolvedFusion> {
    this.fusionResolved ??= this.loadFusion().catch((err: unknown) => {
      this.fusionResolved = undefined;
      throw new Error(`HybridRetriever: cannot read the dense model's stored fusion: ${(err as Error).message}`);
    });
    return this.fusionResolved;
  }

  private async loadFusion(): Promise<ResolvedFusion> {
    if (this.fusionFromOptions) return { setting: this.currentSetting(), source: "options" };
    const source = fusionSourceOf(this.dense);
    const stored = source ? await source.storedFusion() : undefined;
    if (stored === undefined) return { setting: this.currentSetting(), source: "default" }; // the class defaults: RRF, k 60
    const { tunedOn, ...setting } = stored;
    Object.assign(this, fusionOptions(setting));
    const modelPath = typeof source?.modelPath === "string" ? source.modelPath : undefined;
    return { setting: this.currentSetting(), source: "model", ...(modelPath ? { modelPath } : {}), ...(tunedOn ? { tunedOn } : {}) };
  }

  override async _getRelevantDocuments(query: string, runManager?: CallbackManagerForRetrieverRun): Promise<DocumentInterface[]> {
    return (await this.retrieveInRun(query, {}, runManager)).documents;
  }

  /**
   * Searches both sides, fuses, and returns the top `k` with their fused scores and timings
   * (encode = dense encoding). With `options.callbacks` the call is a retriever run like `invoke`.
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
    if (typeof query !== "string" || query.trim().length === 0) {
      throw new Error("HybridRetriever: query must be a non-empty string");
    }
    if (options.rerank === true) {
      throw new Error("HybridRetriever: rerank was requested but no reranker is configured (wrap it in TwoStageRetriever)");
    }
    const k = options.k ?? this.k;
    checkK("HybridRetriever", "k", k);
    throwIfAborted(options.signal, "HybridRetriever");
    const filter = options.filter ?? this.filter;
    let encodeMs = 0;
    const denseRun = async (): Promise<Array<[DocumentInterface, number | undefined]>> => {
      if (isVectorStore(this.dense)) {
        const te = nowMs();
        const v = await this.dense.embeddings.embedQuery(query);
        encodeMs = nowMs() - te;
        const depth = clampDepth(this.dense, this.denseK);
        return depth === 0 ? [] : this.dense.similaritySearchVectorWithScore(v, depth, filter as never);
      }
      return this.searchSide(this.dense, query, this.denseK, run?.getChild("dense"));
    };
    const sparseRun = async () => {
      const hits = await this.searchSide(this.sparse, query, this.sparseK, run?.getChild("sparse"));
      return filter === undefined ? hits : hits.filter(([doc]) => matchesFilter(filter, doc));
    };
    const [denseHits, sparseHits] = await Promise.all([denseRun(), sparseRun(), this.resolveFusion()]);
    const tSearch = nowMs();
    throwIfAborted(options.signal, "HybridRetriever");
    const fused = this.fuse(denseHits, sparseHits, k);
    const include = options.includeScores ?? this.includeScores;
    const documents = fused.map((f) => {
      const { score: _dropped, ...rest } = f.item!.metadata;
      const extra = include
        ? {
            fusedScore: f.score,
            fusion: this.fusion,
            denseRank: f.ranks[0],
            denseScore: f.scores[0],
            sparseRank: f.ranks[1],
            sparseScore: f.scores[1],
          }
        : {};
      return withMetadata({ pageContent: f.item!.pageContent, metadata: rest, id: f.item!.id ?? f.id }, extra);
    });
    const totalMs = nowMs() - t0;
    const timings = { encodeMs, searchMs: tSearch - t0 - encodeMs, rerankMs: 0, totalMs, cacheHit: false };
    await reportTimings(run, timings);
    return { documents, scores: fused.map((f) => f.score), timings };
  }

  /**
   * Fuses two `[doc, score]` lists by this retriever's fusion fields and returns the top `k` (a
   * stored fusion is in those fields once {@link resolveFusion} has run; queries run it first).
   */
  fuse(
    denseHits: ReadonlyArray<[DocumentInterface, number | undefined]>,
    sparseHits: ReadonlyArray<[DocumentInterface, number | undefined]>,
    k: number,
  ): FusedItem<DocumentInterface>[] {
    const toRanked = (hits: ReadonlyArray<[DocumentInterface, number | undefined]>, side: string) =>
      hits.map(([doc, score], i): RankedItem<DocumentInterface> => {
        const id = this.getId(doc);
        if (id === undefined) {
          throw new Error(`HybridRetriever: ${side} result at rank ${i + 1} has no id (set Document.id or metadata.id, or pass getId)`);
        }
        return { id, score, item: doc };
      });
    return fuseDenseSparse(toRanked(denseHits, "dense"), toRanked(sparseHits, "sparse"), this.currentSetting(), k);
  }

  private async searchSide(
    side: HybridSide,
    query: string,
    depth: number,
    callbacks: Callbacks | undefined,
  ): Promise<Array<[DocumentInterface, number | undefined]>> {
    if (side instanceof BM25Index) {
      return side.search(query, depth).map((hit): [DocumentInterface, number] => {
        const p = side.getPassage(hit.id);
        if (!p) throw new Error(`HybridRetriever: BM25 passage "${hit.id}" is missing from the index store`);
        const doc = new Document({ pageContent: p.text, metadata: { ...(p.metadata ?? {}), id: hit.id, title: p.title }, id: hit.id });
        return [doc, hit.score];
      });
    }
    if (isScoredSearcher(side)) return (await side.searchWithScores(query, depth)).slice(0, depth);
    if (isVectorStore(side)) {
      const d = clampDepth(side, depth);
      return d === 0 ? [] : side.similaritySearchWithScore(query, d);
    }
    if (isRetrievalService(side)) {
      // DPRRetriever, BM25Retriever, another HybridRetriever: searched to the side's depth, as a child run.
      const r = await side.retrieve(query, { k: depth, includeScores: false, callbacks });
      return r.documents.map((d, i): [DocumentInterface, number | undefined] => [d, r.scores?.[i] ?? undefined]);
    }
    const docs = await (side as BaseRetrieverInterface).invoke(query, { callbacks });
    return docs.slice(0, depth).map((d): [DocumentInterface, number | undefined] => {
      const s = d.metadata?.score;
      return [d, typeof s === "number" ? s : undefined];
    });
  }
}

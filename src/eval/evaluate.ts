/**
 * Retrieval evaluation over a BEIR folder: BM25, DPR, hybrid and reranked variants on the same
 * queries, scored with trec_eval's definitions ({@link evaluateRun}) and timed per stage. Each
 * method runs the classes an application ships (see ./methods.ts): BM25Retriever, DPRRetriever
 * and HybridRetriever, and TwoStageRetriever with the reranker for the +rerank methods.
 *
 * Stages (milliseconds per query, measured one query at a time as a server would run them; the
 * retrievers' own {@link RetrievalTimings}):
 * - `encode`: the question encoder (DPR methods; DPR and hybrid each encode the query, as they
 *   would when deployed apart);
 * - `search`: the FAISS search, the BM25 search, or for hybrid both searches and the fusion;
 * - `rerank`: the reranker over the first stage's top `rerankDepth` candidates.
 *
 * Hybrid fusion: the `hybrid`/`alpha`/`rrfK` parameters when given; else, with `tuneFusion`, the
 * setting chosen on dev questions in this run (./tune-hybrid.ts; questions tuned on are left out
 * of every method's figures); else the fusion stored with the DPR model (dpr_config.json), which
 * HybridRetriever picks up itself; else RRF with k 60. The report says which and where from.
 *
 * A method's total is the sum of its stages. Reranking runs in a second pass over all queries,
 * so that the cross-encoder's threads do not compete with (and slow down) the first stages. The
 * corpus is encoded once (progress reported through `onProgress`); nothing is cached on disk.
 *
 * @module
 */
import { cpus, platform, arch } from "node:os";
import { basename, resolve } from "node:path";

import { Document } from "@langchain/core/documents";
import type { BaseDocumentCompressor } from "@langchain/core/retrievers/document_compressors";

import { loadBeirDataset, type BeirDataset } from "../data/beir.js";
import type { Qrels } from "../data/types.js";
import { DPREmbeddings } from "../embeddings/dpr-embeddings.js";
import { BM25Retriever } from "../retrievers/bm25/bm25-retriever.js";
import { DPRRetriever } from "../retrievers/dpr-retriever.js";
import type { FusionProvenance } from "../models/fusion-config.js";
import { describeFusion, type FusionSetting } from "../retrievers/fusion.js";
import { fusionOptions, HybridRetriever } from "../retrievers/hybrid-retriever.js";
import { percentile } from "../retrievers/latency-stats.js";
import type { RetrievalResult, RetrievalService } from "../retrievers/types.js";
import { FaissDPRStore } from "../vectorstores/faiss-dpr-store.js";
import { articleHitRateAt, DEFAULT_CUTOFFS, evaluateRun, type Run } from "./metrics.js";
import {
  EVALUATION_METHODS,
  FIRST_STAGE,
  LATENCY_STAGES,
  STAGES_OF,
  hitsOf,
  methodNeedsDpr,
  methodNeedsReranker,
  parseMethod,
  rerankFirstStage,
  type EvaluationMethod,
  type FirstStage,
  type LatencyStage,
  type RankedHit,
} from "./methods.js";
import {
  checkTuningOptions,
  runFusionTuning,
  selectDevQuestions,
  type FusionTuningOptions,
  type FusionTuningReport,
} from "./tune-hybrid.js";

export {
  EVALUATION_METHODS,
  LATENCY_STAGES,
  methodNeedsDpr,
  methodNeedsReranker,
  parseMethod,
  type EvaluationMethod,
  type LatencyStage,
} from "./methods.js";

const WHO = "evaluate";

/** How the hybrid method fuses the dense and BM25 lists. */
export type HybridFusion = "rrf" | "linear";

/** Progress events, for a CLI to print (the evaluator itself prints nothing). */
export interface EvaluationProgress {
  phase: "load" | "bm25-index" | "encode-corpus" | "faiss-index" | "tune-fusion" | "queries" | "rerank" | "done";
  /** Items done in this phase (passages or queries). */
  done: number;
  /** Items in this phase. */
  total: number;
  message: string;
}

/** Parameters of {@link RetrievalEvaluator}. */
export interface RetrievalEvaluatorParams {
  /** A BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv). */
  dataset: string;
  /** Qrels split (default "test"). */
  split?: string;
  /** DPR model folder (question + passage encoders); needed by dpr, hybrid and their rerank variants. */
  dprModelPath?: string;
  /** Ready embeddings instead of {@link dprModelPath} (the caller disposes them). */
  embeddings?: DPREmbeddings;
  /** Question length cap in tokens for a model loaded from {@link dprModelPath} (default: its dpr_config.json). */
  maxQueryLength?: number;
  /** Passage length cap in tokens for a model loaded from {@link dprModelPath} (default: its dpr_config.json). */
  maxPassageLength?: number;
  /** Cross-encoder folder, loaded with the project's CrossEncoderReranker; needed by the +rerank methods. */
  crossEncoderPath?: string;
  /**
   * A ready reranker instead of {@link crossEncoderPath} (the caller disposes it): any LangChain
   * `BaseDocumentCompressor` that returns the documents it is given best first (CrossEncoderReranker,
   * CohereRerank, ...), with its `topN` at least {@link rerankDepth} so that every candidate is
   * scored. Its `metadata.relevanceScore` is the run's score when it sets one.
   */
  reranker?: BaseDocumentCompressor;
  /** Methods to run (default: every method the given models allow). */
  methods?: EvaluationMethod[];
  /** faiss index_factory string for the dense index (default "Flat": exact inner product). */
  indexFactory?: string;
  /**
   * OpenMP threads for faiss, process-wide (default: faiss's own, one per core). Queries are
   * searched one at a time; on a busy machine 1 avoids OpenMP's thread wake-up cost.
   */
  faissThreads?: number;
  /**
   * Hybrid fusion. When this, {@link alpha} and {@link rrfK} are all left out: the fusion tuned by
   * {@link tuneFusion}, else the one stored with the DPR model, else "rrf" (k 60).
   */
  hybrid?: HybridFusion;
  /** Linear fusion: weight of the dense side, BM25 gets 1 - alpha (default 0.5). */
  alpha?: number;
  /** RRF constant (default 60). */
  rrfK?: number;
  /**
   * Choose the hybrid fusion on dev questions first (a named split, or a seeded share of the
   * evaluated split that is then left out of every method's figures) and run the hybrid methods
   * with it. Needs a DPR model; excludes {@link hybrid}, {@link alpha} and {@link rrfK}.
   */
  tuneFusion?: FusionTuningOptions;
  /** Results kept per query and per first stage (default 100). */
  depth?: number;
  /** First-stage candidates the cross-encoder rescores (default 100, at most depth). */
  rerankDepth?: number;
  /** Evaluate only the first N judged queries, in queries.jsonl order (default: all). */
  maxQueries?: number;
  /** Passages per corpus-encoding call (default 256; progress is reported after each). */
  encodeChunkSize?: number;
  /** Progress callback. */
  onProgress?: (event: EvaluationProgress) => void;
}

/** The fusion the hybrid methods ran with, and where it came from. */
export interface HybridFusionReport {
  setting: FusionSetting;
  /**
   * `"options"`: the hybrid/alpha/rrfK parameters (--hybrid, --alpha, --rrf-k); `"tuned"`: chosen on
   * dev questions in this run; `"model"`: the DPR model's dpr_config.json; `"default"`: RRF, k 60.
   */
  source: "options" | "tuned" | "model" | "default";
  /** E.g. `linear (alpha 0.15 dense, minmax)`. */
  description: string;
  /** For `"model"`: the model folder. */
  modelPath?: string;
  /** For `"model"`: where the stored fusion was tuned, when its file says. */
  tunedOn?: FusionProvenance;
}

/** p50/p95/mean of one stage, in milliseconds (0 for a stage the method does not run). */
export interface StageLatency {
  p50: number;
  p95: number;
  mean: number;
}

/** Results of one method. */
export interface MethodResult {
  method: EvaluationMethod;
  /** Mean metrics, keyed like "ndcg@10". */
  metrics: Record<string, number>;
  /** The design article's "recall": relevant hits in the top 10 / (10 × queries). */
  articleRecallAt10: number;
  /** Latency per stage and in total. */
  latency: Record<LatencyStage | "total", StageLatency>;
  /** Stages this method runs. */
  stages: LatencyStage[];
  /** Metrics per evaluated query id. */
  perQuery: Record<string, Record<string, number>>;
  /** Judged queries with no result (scored 0). */
  missingQueries: string[];
}

/** Everything an evaluation produced (serialisable to JSON as is, except `runs`). */
export interface EvaluationReport {
  dataset: {
    path: string;
    name: string;
    split: string;
    passages: number;
    /** Queries judged in the split. */
    judgedQueries: number;
    /** Queries evaluated (after maxQueries, with at least one relevant passage). */
    evaluatedQueries: number;
    /** Selected queries skipped because none of their judged passages is relevant. */
    skippedQueries: string[];
  };
  settings: {
    methods: EvaluationMethod[];
    depth: number;
    rerankDepth: number;
    indexFactory: string;
    faissThreads: number | null;
    /** The hybrid methods' fusion; null when no hybrid method ran. */
    hybrid: HybridFusionReport | null;
    maxQueries: number | null;
    dprModel: string | null;
    dprDimension: number | null;
    crossEncoder: string | null;
    cutoffs: typeof DEFAULT_CUTOFFS;
  };
  /** The fusion tuning of this run (dev questions, the whole grid, the best setting); null without tuning. */
  fusionTuning: FusionTuningReport | null;
  /** Index construction costs. */
  build: {
    bm25Ms: number;
    corpusEncodeMs: number | null;
    passagesPerSecond: number | null;
    faissAddMs: number | null;
  };
  methods: MethodResult[];
  machine: { cpuModel: string; cpus: number; platform: string; node: string };
  startedAt: string;
  elapsedMs: number;
  /** The runs (query → passage → score), for TREC files; not part of the JSON. */
  runs: Map<EvaluationMethod, Run>;
}

/**
 * Loads the project's CrossEncoderReranker from a folder, keeping `topN` candidates (imported
 * lazily so that evaluations without a cross-encoder never load it).
 */
export async function loadCrossEncoder(dir: string, topN: number): Promise<BaseDocumentCompressor & { dispose(): Promise<void> }> {
  const { CrossEncoderReranker } = await import("../rerankers/cross-encoder-reranker.js");
  const reranker = new CrossEncoderReranker({ modelPath: dir, topN });
  await reranker.ready();
  return reranker;
}

/** Where a hybrid fusion came from, in words (for progress lines and the report). */
export function describeSource(f: Pick<HybridFusionReport, "source" | "modelPath" | "tunedOn">): string {
  switch (f.source) {
    case "options":
      return "set by --hybrid/--alpha/--rrf-k";
    case "tuned":
      return "tuned on dev questions in this run";
    case "model": {
      const t = f.tunedOn;
      const tuned = t ? `, tuned on ${t.questions} questions of ${t.dataset} (${t.split}, ${t.metric} ${t.score.toFixed(4)})` : "";
      return `stored in ${f.modelPath ?? "the model"}/dpr_config.json${tuned}`;
    }
    default:
      return "default: no fusion given and none stored with the model";
  }
}

function checkPositiveInt(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${WHO}: ${name} must be a positive integer, got ${value}`);
}

function summarise(samples: Float64Array | number[]): StageLatency {
  if (samples.length === 0) return { p50: 0, p95: 0, mean: 0 };
  let sum = 0;
  for (const v of samples) sum += v;
  return { p50: percentile(samples, 50), p95: percentile(samples, 95), mean: sum / samples.length };
}

/**
 * Runs every selected method over a BEIR split and measures quality and latency.
 *
 * @example
 * ```ts
 * const evaluator = new RetrievalEvaluator({ dataset: "datasets/scifact", dprModelPath: "models/dpr" });
 * const report = await evaluator.evaluate();
 * console.log(report.methods.map((m) => [m.method, m.metrics["ndcg@10"]]));
 * await evaluator.dispose();
 * ```
 */
export class RetrievalEvaluator {
  dataset: string;

  split = "test";

  dprModelPath?: string;

  maxQueryLength?: number;

  maxPassageLength?: number;

  crossEncoderPath?: string;

  methods?: EvaluationMethod[];

  indexFactory = "Flat";

  faissThreads?: number;

  hybrid: HybridFusion = "rrf";

  alpha = 0.5;

  rrfK = 60;

  depth = 100;

  rerankDepth = 100;

  maxQueries?: number;

  encodeChunkSize = 256;

  onProgress?: (event: EvaluationProgress) => void;

  tuneFusion?: FusionTuningOptions;

  /** Whether hybrid, alpha or rrfK was given (then neither a tuned nor a stored fusion is used). */
  private readonly fusionGiven: boolean;

  private embeddings?: DPREmbeddings;

  private ownsEmbeddings = false;

  private reranker?: BaseDocumentCompressor;

  private ownsReranker = false;

  constructor(params: RetrievalEvaluatorParams) {
    if (typeof params?.dataset !== "string" || params.dataset === "") throw new Error(`${WHO}: dataset (a BEIR folder) is required`);
    this.dataset = params.dataset;
    this.split = params.split ?? this.split;
    this.dprModelPath = params.dprModelPath;
    this.maxQueryLength = params.maxQueryLength;
    this.maxPassageLength = params.maxPassageLength;
    this.crossEncoderPath = params.crossEncoderPath;
    this.embeddings = params.embeddings;
    this.reranker = params.reranker;
    this.methods = params.methods;
    this.indexFactory = params.indexFactory ?? this.indexFactory;
    this.faissThreads = params.faissThreads;
    this.hybrid = params.hybrid ?? this.hybrid;
    this.alpha = params.alpha ?? this.alpha;
    this.rrfK = params.rrfK ?? this.rrfK;
    this.depth = params.depth ?? this.depth;
    this.rerankDepth = params.rerankDepth ?? Math.min(this.rerankDepth, this.depth);
    this.maxQueries = params.maxQueries;
    this.encodeChunkSize = params.encodeChunkSize ?? this.encodeChunkSize;
    this.onProgress = params.onProgress;
    this.tuneFusion = params.tuneFusion;
    this.fusionGiven = params.hybrid !== undefined || params.alpha !== undefined || params.rrfK !== undefined;

    checkPositiveInt(this.depth, "depth");
    checkPositiveInt(this.rerankDepth, "rerankDepth");
    checkPositiveInt(this.encodeChunkSize, "encodeChunkSize");
    if (this.maxQueries !== undefined) checkPositiveInt(this.maxQueries, "maxQueries");
    if (this.faissThreads !== undefined) checkPositiveInt(this.faissThreads, "faissThreads");
    if (this.maxQueryLength !== undefined) checkPositiveInt(this.maxQueryLength, "maxQueryLength");
    if (this.maxPassageLength !== undefined) checkPositiveInt(this.maxPassageLength, "maxPassageLength");
    if (this.embeddings !== undefined && (this.maxQueryLength !== undefined || this.maxPassageLength !== undefined)) {
      throw new Error(
        `${WHO}: maxQueryLength/maxPassageLength apply to a model loaded from dprModelPath; set them on the embeddings object instead`,
      );
    }
    if (
      this.dprModelPath === undefined &&
      this.embeddings === undefined &&
      (this.maxQueryLength !== undefined || this.maxPassageLength !== undefined)
    ) {
      throw new Error(
        `${WHO}: maxQueryLength/maxPassageLength (--max-query-length/--max-passage-length) need a DPR model (--dpr <model dir>)`,
      );
    }
    if (this.rerankDepth > this.depth) {
      throw new Error(
        `${WHO}: rerankDepth (${this.rerankDepth}) cannot exceed depth (${this.depth}): the reranker only sees first-stage results`,
      );
    }
    if (this.hybrid !== "rrf" && this.hybrid !== "linear") {
      throw new Error(`${WHO}: hybrid fusion must be "rrf" or "linear", got ${JSON.stringify(this.hybrid)}`);
    }
    if (!(Number.isFinite(this.alpha) && this.alpha >= 0 && this.alpha <= 1))
      throw new Error(`${WHO}: alpha must be in [0, 1], got ${this.alpha}`);
    if (!(Number.isFinite(this.rrfK) && this.rrfK >= 0)) throw new Error(`${WHO}: rrfK must be a finite number ≥ 0, got ${this.rrfK}`);
    if (this.dprModelPath !== undefined && this.embeddings !== undefined)
      throw new Error(`${WHO}: give dprModelPath or embeddings, not both`);
    if (this.crossEncoderPath !== undefined && this.reranker !== undefined)
      throw new Error(`${WHO}: give crossEncoderPath or reranker, not both`);
    if (this.tuneFusion !== undefined) {
      if (!this.hasDpr) throw new Error(`${WHO}: fusion tuning (--tune-fusion) needs a DPR model (--dpr <model dir>)`);
      if (this.fusionGiven) {
        throw new Error(
          `${WHO}: fusion tuning (--tune-fusion) chooses the hybrid fusion; leave out hybrid, alpha and rrfK (--hybrid, --alpha, --rrf-k)`,
        );
      }
      checkTuningOptions(this.tuneFusion, this.split);
    }
    // Resolve the method list now so that bad combinations fail before any work.
    this.methods = this.resolveMethods();
  }

  private get hasDpr(): boolean {
    return this.dprModelPath !== undefined || this.embeddings !== undefined;
  }

  private get hasReranker(): boolean {
    return this.crossEncoderPath !== undefined || this.reranker !== undefined;
  }

  private resolveMethods(): EvaluationMethod[] {
    if (this.methods === undefined) {
      return EVALUATION_METHODS.filter((m) => (!methodNeedsDpr(m) || this.hasDpr) && (!methodNeedsReranker(m) || this.hasReranker));
    }
    if (!Array.isArray(this.methods) || this.methods.length === 0) throw new Error(`${WHO}: methods must be a non-empty list`);
    const seen = new Set<EvaluationMethod>();
    for (const raw of this.methods) {
      const m = parseMethod(raw);
      if (seen.has(m)) throw new Error(`${WHO}: method "${m}" listed twice`);
      if (methodNeedsDpr(m) && !this.hasDpr) throw new Error(`${WHO}: method "${m}" needs a DPR model (--dpr <model dir>)`);
      if (methodNeedsReranker(m) && !this.hasReranker)
        throw new Error(`${WHO}: method "${m}" needs a cross-encoder (--cross-encoder <dir>)`);
      seen.add(m);
    }
    return EVALUATION_METHODS.filter((m) => seen.has(m));
  }

  private progress(phase: EvaluationProgress["phase"], done: number, total: number, message: string): void {
    this.onProgress?.({ phase, done, total, message });
  }

  /** Loads the data, builds the indexes, runs every method on every selected query. */
  async evaluate(): Promise<EvaluationReport> {
    const startedAt = new Date();
    const t0 = performance.now();
    const methods = this.methods!;
    const tuning = this.tuneFusion; // tuning needs BM25 and the dense index whatever the methods
    const needDpr = methods.some(methodNeedsDpr) || tuning !== undefined;
    const needRerank = methods.some(methodNeedsReranker);
    const firstStages = new Set(methods.map((m) => FIRST_STAGE[m]));
    const needBm25 = firstStages.has("bm25") || firstStages.has("hybrid") || tuning !== undefined;
    const needDense = firstStages.has("dpr") || firstStages.has("hybrid") || tuning !== undefined;

    this.progress("load", 0, 1, `loading ${this.dataset} (${this.split})`);
    const data: BeirDataset = await loadBeirDataset(this.dataset, this.split);
    if (data.corpus.length === 0) throw new Error(`${WHO}: the corpus of ${this.dataset} is empty`);
    const selected = this.maxQueries === undefined ? data.queries : data.queries.slice(0, this.maxQueries);
    if (selected.length === 0) throw new Error(`${WHO}: no judged queries in split "${this.split}" of ${this.dataset}`);
    // Questions tuned on never count in the test figures.
    const dev = tuning && (await selectDevQuestions(this.dataset, this.split, selected, data.qrels, tuning));
    const queries = dev ? selected.filter((q) => !dev.excluded.has(q.id)) : selected;
    if (queries.length === 0) {
      throw new Error(`${WHO}: every selected question of split "${this.split}" is also a dev question; nothing is left to test`);
    }
    const qrels: Qrels = new Map(queries.map((q) => [q.id, data.qrels.get(q.id)!]));
    const passageIds = new Set<string>();
    for (const p of data.corpus) {
      if (passageIds.has(p.id)) throw new Error(`${WHO}: passage id "${p.id}" appears twice in ${this.dataset}/corpus.jsonl`);
      passageIds.add(p.id);
    }
    this.progress(
      "load",
      1,
      1,
      `${data.corpus.length} passages, ${queries.length} of ${data.queries.length} judged queries` +
        (dev ? `; ${dev.questions.length} dev questions for fusion tuning, ${dev.excluded.size} of them left out of the test` : ""),
    );

    // BM25 (the shipped BM25Retriever: the bm25 method and hybrid's sparse side)
    let bm25: BM25Retriever | undefined;
    let bm25Ms = 0;
    if (needBm25) {
      const tb = performance.now();
      bm25 = await BM25Retriever.fromPassages(data.corpus, { k: this.depth });
      bm25Ms = performance.now() - tb;
      this.progress("bm25-index", data.corpus.length, data.corpus.length, `BM25 index built in ${(bm25Ms / 1000).toFixed(1)} s`);
    }

    // Dense
    let store: FaissDPRStore | undefined;
    let embeddings: DPREmbeddings | undefined;
    let corpusEncodeMs: number | null = null;
    let faissAddMs: number | null = null;
    let dim: number | null = null;
    if (needDpr && needDense) {
      embeddings = await this.openEmbeddings();
      dim = await embeddings.dimension();
      const n = data.corpus.length;
      const matrix = new Float32Array(n * dim);
      const te = performance.now();
      for (let start = 0; start < n; start += this.encodeChunkSize) {
        const chunk = data.corpus.slice(start, start + this.encodeChunkSize);
        const m = await embeddings.embedPassagesMatrix(chunk.map((p) => (p.title ? { title: p.title, text: p.text } : { text: p.text })));
        if (m.count !== chunk.length || m.dim !== dim) {
          throw new Error(`${WHO}: the passage encoder returned ${m.count}×${m.dim} for ${chunk.length} passages of dimension ${dim}`);
        }
        matrix.set(m.data, start * dim);
        const done = start + chunk.length;
        const secs = (performance.now() - te) / 1000;
        this.progress("encode-corpus", done, n, `encoded ${done}/${n} passages (${(done / secs).toFixed(1)}/s)`);
      }
      corpusEncodeMs = performance.now() - te;
      const ta = performance.now();
      store = new FaissDPRStore(embeddings, { factory: this.indexFactory, dimensions: dim, threads: this.faissThreads });
      const docs = data.corpus.map((p) => new Document({ pageContent: p.text, metadata: p.title ? { title: p.title } : {}, id: p.id }));
      await store.addVectors(matrix, docs, { ids: data.corpus.map((p) => p.id) });
      faissAddMs = performance.now() - ta;
      this.progress(
        "faiss-index",
        n,
        n,
        `faiss "${this.indexFactory}" index of ${n} × ${dim} built in ${(faissAddMs / 1000).toFixed(1)} s`,
      );
    }

    // The first stages, as an application builds them.
    const stages = new Map<FirstStage, RetrievalService>();
    if (bm25) stages.set("bm25", bm25);
    if (store && firstStages.has("dpr"))
      stages.set("dpr", new DPRRetriever({ vectorStore: store, k: this.depth, fetchK: this.depth, cache: false }));
    let fusionTuning: FusionTuningReport | null = null;
    if (dev && store && bm25) {
      this.progress("tune-fusion", 0, dev.questions.length, `tuning the hybrid fusion on ${dev.questions.length} dev questions`);
      const dense = new DPRRetriever({ vectorStore: store, k: this.depth, fetchK: this.depth, cache: false });
      fusionTuning = await runFusionTuning({ sparse: bm25, dense }, dev, tuning!, this.dataset, this.depth);
      const t = fusionTuning;
      this.progress(
        "tune-fusion",
        dev.questions.length,
        dev.questions.length,
        `best of ${t.grid.length} settings on ${t.questions} dev questions: ${describeFusion(t.best.setting)}, ${t.metric} ` +
          `${t.best.score.toFixed(4)} (BM25 alone ${t.bm25Score.toFixed(4)}, dense alone ${t.denseScore.toFixed(4)})`,
      );
    }
    let hybridFusion: HybridFusionReport | null = null;
    if (store && bm25 && firstStages.has("hybrid")) {
      const setting: FusionSetting | undefined = fusionTuning
        ? fusionTuning.best.setting
        : this.fusionGiven
          ? this.hybrid === "rrf"
            ? { method: "rrf", k: this.rrfK, weights: [1, 1] }
            : { method: "linear", alpha: this.alpha, normalization: "minmax" }
          : undefined; // HybridRetriever reads the model's stored fusion, else RRF k 60
      const hybrid = new HybridRetriever({
        dense: store,
        sparse: bm25,
        k: this.depth,
        denseK: this.depth,
        sparseK: this.depth,
        ...(setting ? fusionOptions(setting) : {}),
      });
      stages.set("hybrid", hybrid);
      const resolved = await hybrid.resolveFusion();
      const source = fusionTuning ? "tuned" : resolved.source;
      hybridFusion = { ...resolved, source, description: describeFusion(resolved.setting) };
      this.progress("queries", 0, queries.length, `hybrid fusion: ${describeFusion(resolved.setting)} (${describeSource(hybridFusion)})`);
    }
    const reranker = needRerank ? await this.openReranker() : undefined;

    // Warm-up (session start-up and first-call costs are not query latency).
    const warm = queries[0]!.text;
    for (const s of stages.values()) await s.retrieve(warm);
    if (reranker) await reranker.compressDocuments([new Document({ pageContent: data.corpus[0]!.text, id: data.corpus[0]!.id })], warm);

    const nq = queries.length;
    const rerankFor = new Set<FirstStage>(methods.filter(methodNeedsReranker).map((m) => FIRST_STAGE[m]));
    const lists = new Map<EvaluationMethod, RankedHit[][]>(methods.map((m) => [m, []]));
    const times: Record<string, Float64Array> = {};
    const timer = (name: string): Float64Array => (times[name] ??= new Float64Array(nq));

    // Pass 1: first stages, one query at a time. Pass 2: reranking. Separate passes keep the
    // cross-encoder's threads from competing with the first stages' (and their latencies) the
    // way a deployment without a reranker would see them.
    const firsts: Array<Map<FirstStage, RetrievalResult>> = new Array(nq);
    for (let qi = 0; qi < nq; qi++) {
      const q = queries[qi]!;
      const first = new Map<FirstStage, RetrievalResult>();
      firsts[qi] = first;
      for (const [name, service] of stages) {
        const r = await service.retrieve(q.text);
        timer(`${name}.encode`)[qi] = r.timings.encodeMs;
        timer(`${name}.search`)[qi] = r.timings.searchMs;
        first.set(name, r);
      }
      for (const m of methods) if (!methodNeedsReranker(m)) lists.get(m)!.push(hitsOf(first.get(FIRST_STAGE[m])!, FIRST_STAGE[m]));
      if ((qi + 1) % 25 === 0 || qi + 1 === nq) this.progress("queries", qi + 1, nq, `ran ${qi + 1}/${nq} queries`);
    }
    if (reranker) {
      for (let qi = 0; qi < nq; qi++) {
        const q = queries[qi]!;
        for (const stage of rerankFor) {
          const { hits, rerankMs } = await rerankFirstStage(q.text, firsts[qi]!.get(stage)!, stage, reranker, this.rerankDepth);
          timer(`${stage}.rerank`)[qi] = rerankMs;
          lists.get(`${stage}+rerank` as EvaluationMethod)!.push(hits);
        }
        if ((qi + 1) % 25 === 0 || qi + 1 === nq) this.progress("rerank", qi + 1, nq, `reranked ${qi + 1}/${nq} queries`);
      }
    }

    const stageSamples = (m: EvaluationMethod, stage: LatencyStage): Float64Array | undefined => {
      const fs = FIRST_STAGE[m];
      if (stage === "rerank") return methodNeedsReranker(m) ? times[`${fs}.rerank`] : undefined;
      return STAGES_OF[fs].includes(stage) ? times[`${fs}.${stage}`] : undefined;
    };

    const runs = new Map<EvaluationMethod, Run>();
    const results: MethodResult[] = [];
    let skipped: string[] = [];
    for (const m of methods) {
      const perQueryLists = lists.get(m)!;
      const run: Run = new Map();
      queries.forEach((q, i) => run.set(q.id, new Map(perQueryLists[i]!.map((h) => [h.id, h.score]))));
      runs.set(m, run);
      const ev = evaluateRun(run, qrels, { cutoffs: DEFAULT_CUTOFFS });
      skipped = ev.skippedQueries;
      const total = new Float64Array(nq);
      const latency = {} as Record<LatencyStage | "total", StageLatency>;
      const stages: LatencyStage[] = [];
      for (const stage of LATENCY_STAGES) {
        const s = stageSamples(m, stage);
        latency[stage] = s ? summarise(s) : { p50: 0, p95: 0, mean: 0 };
        if (s) {
          stages.push(stage);
          for (let i = 0; i < nq; i++) total[i]! += s[i]!;
        }
      }
      latency.total = summarise(total);
      results.push({
        method: m,
        metrics: ev.mean,
        articleRecallAt10: articleHitRateAt(run, qrels, 10),
        latency,
        stages,
        perQuery: Object.fromEntries(ev.perQuery),
        missingQueries: ev.missingQueries,
      });
    }
    this.progress("done", nq, nq, `evaluated ${methods.length} methods on ${nq} queries`);

    const cpuList = cpus();
    return {
      dataset: {
        path: resolve(this.dataset),
        name: basename(resolve(this.dataset)),
        split: this.split,
        passages: data.corpus.length,
        judgedQueries: data.queries.length,
        evaluatedQueries: nq - skipped.length,
        skippedQueries: skipped,
      },
      settings: {
        methods,
        depth: this.depth,
        rerankDepth: this.rerankDepth,
        indexFactory: this.indexFactory,
        faissThreads: this.faissThreads ?? null,
        hybrid: hybridFusion,
        maxQueries: this.maxQueries ?? null,
        dprModel: this.dprModelPath !== undefined ? resolve(this.dprModelPath) : this.embeddings ? "(embeddings object)" : null,
        dprDimension: dim,
        crossEncoder: this.crossEncoderPath !== undefined ? resolve(this.crossEncoderPath) : this.reranker ? "(reranker object)" : null,
        cutoffs: DEFAULT_CUTOFFS,
      },
      build: {
        bm25Ms,
        corpusEncodeMs,
        passagesPerSecond: corpusEncodeMs === null ? null : data.corpus.length / (corpusEncodeMs / 1000),
        faissAddMs,
      },
      fusionTuning,
      methods: results,
      machine: {
        cpuModel: cpuList[0]?.model ?? "unknown",
        cpus: cpuList.length,
        platform: `${platform()}-${arch()}`,
        node: process.version,
      },
      startedAt: startedAt.toISOString(),
      elapsedMs: performance.now() - t0,
      runs,
    };
  }

  private async openEmbeddings(): Promise<DPREmbeddings> {
    if (!this.embeddings) {
      this.embeddings = new DPREmbeddings({
        modelPath: this.dprModelPath!,
        maxQueryLength: this.maxQueryLength,
        maxPassageLength: this.maxPassageLength,
      });
      this.ownsEmbeddings = true;
    }
    await this.embeddings.ready();
    return this.embeddings;
  }

  private async openReranker(): Promise<BaseDocumentCompressor> {
    if (!this.reranker) {
      this.reranker = await loadCrossEncoder(this.crossEncoderPath!, this.rerankDepth);
      this.ownsReranker = true;
    }
    return this.reranker;
  }

  /** Frees the models this evaluator loaded (not those passed in). */
  async dispose(): Promise<void> {
    if (this.ownsEmbeddings) await this.embeddings?.dispose();
    if (this.ownsReranker) await (this.reranker as { dispose?: () => Promise<void> } | undefined)?.dispose?.();
    this.ownsEmbeddings = this.ownsReranker = false;
    if (this.dprModelPath !== undefined) this.embeddings = undefined;
    if (this.crossEncoderPath !== undefined) this.reranker = undefined;
  }
}

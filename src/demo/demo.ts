/**
 * The main job a new user runs first (`npm start`): index the bundled PubMedQA corpus with the
 * default DPR model, answer a few questions (top passages with scores, encode / search / rerank
 * milliseconds), and print the BM25 vs DPR vs hybrid (vs reranked) table on the bundled test
 * questions.
 *
 * The default models live in `src/assets/models/` (trained by the commands in their
 * `training.json`). When a default model is not there (a checkout before the trained model was
 * added), a randomly initialised model of the same layout is built on the fly into
 * `.cache/demo/`, and the demo says loudly that its retrieval figures mean nothing.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Document } from "@langchain/core/documents";
import { loadBeirCorpus, loadBeirQueries } from "../data/beir.js";
import type { Passage } from "../data/types.js";
import { DPREmbeddings } from "../embeddings/dpr-embeddings.js";
import { RetrievalEvaluator, type EvaluationReport } from "../eval/evaluate.js";
import { createRandomDPRModel } from "../testing/random-models.js";
import { CrossEncoderReranker } from "../rerankers/cross-encoder-reranker.js";
import { DPRRetriever } from "../retrievers/dpr-retriever.js";
import { ProgressBar } from "../utils/progress.js";
import { DEMO_DATASET, DEFAULT_DPR_MODEL, DEFAULT_CROSS_ENCODER } from "../models/defaults.js";
import { FaissDPRStore } from "../vectorstores/faiss-dpr-store.js";

export { ASSETS_DIR, DEMO_DATASET, DEFAULT_DPR_MODEL, DEFAULT_CROSS_ENCODER } from "../models/defaults.js";
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Candidates the cross-encoder rescores (the dense top 20), in the demo and its evaluation. */
const RERANK_DEPTH = 20;

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** DPR model folder. Default: the shipped model, else a random one built on the fly. */
  dprModel?: string;
  /** Cross-encoder folder. Default: the shipped one, else a random one built on the fly. */
  crossEncoder?: string;
  /** Questions answered in full. Default 3. */
  questions?: number;
  /** Passages shown per question. Default 3. */
  topK?: number;
  /** Where fallback models are written. Default `<package>/.cache/demo`. */
  cacheDir?: string;
  /** Output (default console.log). */
  print?: (line: string) => void;
}

/** What {@link runDemo} did, for tests and callers. */
export interface DemoResult {
  dprModel: string;
  /** The cross-encoder folder used, or null when there is none (no reranking). */
  crossEncoder: string | null;
  /** True when the DPR model is a random fallback (its figures mean nothing). */
  randomDpr: boolean;
  /** True when there is no trained cross-encoder: the demo then does not rerank. */
  noCrossEncoder: boolean;
  indexed: number;
  answers: Array<{
    question: string;
    top: Array<{ id: string; score: number; relevanceScore?: number }>;
    encodeMs: number;
    searchMs: number;
    rerankMs: number;
  }>;
  report: EvaluationReport;
}

async function resolveModels(opts: DemoOptions, passages: Passage[], print: (l: string) => void) {
  const cacheDir = opts.cacheDir ?? join(ROOT, ".cache", "demo");
  let randomDpr = false;
  let noCrossEncoder = false;
  let dprModel = opts.dprModel ?? DEFAULT_DPR_MODEL;
  const crossEncoder = opts.crossEncoder ?? DEFAULT_CROSS_ENCODER;
  const texts = () => passages.map((p) => p.text);
  if (opts.dprModel === undefined && !existsSync(DEFAULT_DPR_MODEL)) {
    dprModel = join(cacheDir, "random-dpr");
    randomDpr = true;
    if (!existsSync(dprModel)) {
      print(`No shipped DPR model at ${DEFAULT_DPR_MODEL}: building a random one in ${dprModel} ...`);
      await mkdir(cacheDir, { recursive: true });
      await createRandomDPRModel(dprModel, {
        shape: "tiny",
        texts: texts(),
        vocabSize: 4000,
        safetensors: false,
        dprConfig: { maxPassageLength: 128 },
      });
    }
  }
  if (opts.crossEncoder === undefined && !existsSync(DEFAULT_CROSS_ENCODER)) {
    noCrossEncoder = true;
  }
  return { dprModel, crossEncoder: noCrossEncoder ? undefined : crossEncoder, randomDpr, noCrossEncoder };
}

function snippet(text: string, max = 110): string {
  const t = text.replace(/\s+/g, " ").trim();
  return t.length <= max ? t : `${t.slice(0, max - 1)}…`;
}

function fmt(n: number, digits = 3): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "–";
}

/** Runs the demo; prints as it goes and returns what it measured. */
export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const print = opts.print ?? ((l: string) => console.log(l));
  const nQuestions = opts.questions ?? 3;
  const topK = opts.topK ?? 3;

  const passages = await loadBeirCorpus(DEMO_DATASET);
  const queries = await loadBeirQueries(DEMO_DATASET);
  print(`langchain-dpr demo: ${passages.length} PubMedQA abstracts (MIT), ${queries.length} test questions`);

  const { dprModel, crossEncoder, randomDpr, noCrossEncoder } = await resolveModels(opts, passages, print);
  print(`DPR model:     ${dprModel}`);
  print(`cross-encoder: ${crossEncoder ?? `none (no trained cross-encoder at ${DEFAULT_CROSS_ENCODER}): answers are not reranked`}`);
  if (randomDpr) {
    print("WARNING: random-weight fallback DPR model: the pipeline runs end to end, but the DPR figures below mean nothing.");
  }

  const embeddings = new DPREmbeddings({ modelPath: dprModel });
  const reranker = crossEncoder === undefined ? undefined : new CrossEncoderReranker({ modelPath: crossEncoder, topN: RERANK_DEPTH });
  const store = new FaissDPRStore(embeddings, { factory: "Flat" });
  try {
    // 1. Index the corpus with a progress bar.
    const bar = new ProgressBar({ label: "indexing" });
    const chunk = 64;
    const t0 = performance.now();
    for (let i = 0; i < passages.length; i += chunk) {
      const docs = passages
        .slice(i, i + chunk)
        .map((p) => new Document({ pageContent: p.text, metadata: { id: p.id, ...(p.title ? { title: p.title } : {}) }, id: p.id }));
      await store.addDocuments(docs);
      bar.update(Math.min(i + chunk, passages.length), passages.length, "passages");
    }
    bar.done();
    const indexMs = performance.now() - t0;
    print(`indexed ${store.size} passages in ${(indexMs / 1000).toFixed(1)} s (${((store.size * 1000) / indexMs).toFixed(0)} passages/s)`);

    // 2. Answer a few questions: dense top-20 → cross-encoder → top-k (dense top-k without one).
    const retriever = new DPRRetriever({ vectorStore: store, k: topK, fetchK: RERANK_DEPTH, reranker });
    const answers: DemoResult["answers"] = [];
    for (const q of queries.slice(0, nQuestions)) {
      const { documents: docs, scores, timings: lat } = await retriever.retrieve(q.text);
      print("");
      print(`Q: ${q.text}`);
      const rerankLine = reranker ? ` · rerank ${fmt(lat.rerankMs, 1)} ms` : "";
      print(`   encode ${fmt(lat.encodeMs, 1)} ms · search ${fmt(lat.searchMs, 1)} ms${rerankLine}`);
      const top = docs.map((d, rank) => {
        const id = String(d.id ?? d.metadata.id);
        const score = scores[rank] ?? NaN;
        const relevanceScore = d.metadata.relevanceScore === undefined ? undefined : Number(d.metadata.relevanceScore);
        const relevant = `q${id}` === q.id ? "  ← the question's own abstract" : "";
        const rerankScore = relevanceScore === undefined ? "" : ` · rerank ${fmt(relevanceScore)}`;
        print(`   ${rank + 1}. [${id}] dot ${fmt(score)}${rerankScore}  ${snippet(d.pageContent)}${relevant}`);
        return { id, score, relevanceScore };
      });
      answers.push({ question: q.text, top, encodeMs: lat.encodeMs, searchMs: lat.searchMs, rerankMs: lat.rerankMs });
    }

    // 3. BM25 vs DPR vs hybrid (vs reranked) on the bundled test questions.
    print("");
    print(`Retrieval quality on the ${queries.length} bundled test questions (trec_eval definitions):`);
    const evaluator = new RetrievalEvaluator({
      dataset: DEMO_DATASET,
      split: "test",
      embeddings,
      reranker,
      methods: reranker ? ["bm25", "dpr", "dpr+rerank", "hybrid", "hybrid+rerank"] : ["bm25", "dpr", "hybrid"],
      rerankDepth: RERANK_DEPTH,
    });
    const report = await evaluator.evaluate();
    await evaluator.dispose();
    print("");
    print("| method | nDCG@10 | Recall@10 | MRR@10 | Recall@100 | p50 ms/query |");
    print("|---|---|---|---|---|---|");
    for (const m of report.methods) {
      print(
        `| ${m.method} | ${fmt(m.metrics["ndcg@10"]!)} | ${fmt(m.metrics["recall@10"]!)} | ${fmt(m.metrics["mrr@10"]!)} ` +
          `| ${fmt(m.metrics["recall@100"]!)} | ${fmt(m.latency.total.p50, 1)} |`,
      );
    }
    if (randomDpr) print("(random-weight DPR model: the DPR and hybrid rows are a pipeline check, not a result)");
    return { dprModel, crossEncoder: crossEncoder ?? null, randomDpr, noCrossEncoder, indexed: store.size, answers, report };
  } finally {
    await store.dispose();
    await reranker?.dispose();
    await embeddings.dispose();
  }
}

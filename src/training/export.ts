/**
 * From trained TF.js encoders to what the plugin loads, and evaluation of such a folder:
 *
 * - {@link exportTrainedModel}: a DPR model folder (saveDPRModel: ONNX, tokenizer, config.json,
 *   safetensors, dpr_config.json; optional int8) plus `training.json` (arguments, data, metrics, git
 *   commit), which DPREmbeddings loads directly;
 * - {@link evaluateModelDir}: recall@k, MRR@10 and nDCG@10 of a model folder on a dev set, by
 *   DPREmbeddings (onnxruntime, much faster than TF.js inference) and exact dot-product search.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { DPREmbeddings } from "../embeddings/dpr-embeddings.js";
import { evaluateRun, type Run } from "../eval/metrics.js";
import { writeFileAtomic } from "../utils/atomic-file.js";
import { saveDPRModel, type DPRModelConfig } from "../models/model-dir.js";
import type { Passage, Qrels, Query } from "../data/types.js";
import type { BertTokenizer } from "../tokenizers/bert-tokenizer.js";
import type { BertConfig, BertWeights } from "../models/types.js";
import { isShared, type DualEncoderTF } from "./gradients.js";
import { l2Normalize, type BertEncoderTF, type PoolingTF } from "./bert-tf.js";
import { encodePassage, padEncodings } from "./batches.js";
import { releaseFreeGpuBuffers, sequencePadMultiple } from "./webgpu.js";
import type { TitleJoin } from "../models/model-dir.js";
import * as tf from "@tensorflow/tfjs-core";

/** File name of the training metadata written beside dpr_config.json. */
export const TRAINING_METADATA_FILE = "training.json";

/** The current git commit of the working directory, or undefined outside a repository. */
export function gitCommit(cwd = process.cwd()): string | undefined {
  try {
    return (
      execFileSync("git", ["rev-parse", "HEAD"], { cwd, stdio: ["ignore", "pipe", "ignore"] })
        .toString()
        .trim() || undefined
    );
  } catch {
    return undefined;
  }
}

/** Options of {@link exportTrainedModel}. */
export interface ExportTrainedModelParams {
  encoders: DualEncoderTF;
  tokenizer: BertTokenizer;
  dprConfig: Partial<DPRModelConfig>;
  /** Also write model_quantized.onnx (int8 per-column weights). */
  quantize?: boolean;
  /** Written to training.json (arguments, data, metrics ...). */
  metadata: Record<string, unknown>;
}

/**
 * Writes a DPR model folder from trained encoders (replacing `dir` atomically), then `training.json`
 * in it (atomically).
 */
export async function exportTrainedModel(dir: string, params: ExportTrainedModelParams): Promise<void> {
  const { encoders } = params;
  await exportModelWeights(dir, {
    ...params,
    config: encoders.question.config,
    question: await encoders.question.toWeights(),
    passage: isShared(encoders) ? undefined : await encoders.passage.toWeights(),
  });
}

/** Arguments of {@link exportModelWeights}: weights instead of TF.js encoders. */
export interface ExportModelWeightsParams extends Omit<ExportTrainedModelParams, "encoders"> {
  config: BertConfig;
  question: BertWeights;
  /** Separate passage-encoder weights; omitted: one shared encoder. */
  passage?: BertWeights;
}

/**
 * The one writer of a training run's model folder: `saveDPRModel` (replacing `dir` atomically), then
 * `training.json` with the metadata, the git commit and the time (atomically).
 */
export async function exportModelWeights(dir: string, params: ExportModelWeightsParams): Promise<void> {
  const side = (w: BertWeights) => ({ config: params.config, weights: w, onnx: { quantize: params.quantize } });
  await saveDPRModel(dir, {
    question: side(params.question),
    passage: params.passage ? side(params.passage) : undefined,
    tokenizer: params.tokenizer,
    dprConfig: params.dprConfig,
  });
  const metadata = { ...params.metadata, gitCommit: params.metadata["gitCommit"] ?? gitCommit(), writtenAt: new Date().toISOString() };
  await writeFileAtomic(join(dir, TRAINING_METADATA_FILE), [Buffer.from(JSON.stringify(metadata, null, 2) + "\n")]);
}

/** Queries, passages and judgements to evaluate on. */
export interface DevSet {
  queries: Query[];
  corpus: Passage[];
  qrels: Qrels;
}

/** Metrics reported by {@link evaluateModelDir}. */
export const DEV_CUTOFFS = { recall: [1, 5, 10, 20, 100], mrr: [10], ndcg: [10] } as const;

/** Exact top-k by dot product: `q [nq × dim]` against `p [np × dim]`. */
export function exactDotProductRun(
  queryIds: readonly string[],
  q: Float32Array,
  passageIds: readonly string[],
  p: Float32Array,
  dim: number,
  k: number,
): Run {
  const run: Run = new Map();
  const np = passageIds.length;
  const scores = new Float32Array(np);
  for (let i = 0; i < queryIds.length; i++) {
    const qo = i * dim;
    for (let j = 0; j < np; j++) {
      let s = 0;
      const po = j * dim;
      for (let d = 0; d < dim; d++) s += q[qo + d]! * p[po + d]!;
      scores[j] = s;
    }
    const order = Array.from({ length: np }, (_, j) => j)
      .sort((a, b) => scores[b]! - scores[a]!)
      .slice(0, k);
    run.set(queryIds[i]!, new Map(order.map((j) => [passageIds[j]!, scores[j]!])));
  }
  return run;
}

/**
 * Evaluates a DPR model folder on a dev set: passages and queries embedded by DPREmbeddings, exact
 * dot-product top-100, trec_eval-style recall@{1,5,10,20,100}, MRR@10, nDCG@10.
 */
export async function evaluateModelDir(dir: string, dev: DevSet, opts: { batchSize?: number } = {}): Promise<Record<string, number>> {
  const embeddings = new DPREmbeddings({ modelPath: dir, batchSize: opts.batchSize ?? 32 });
  try {
    const p = await embeddings.embedPassagesMatrix(dev.corpus.map((x) => ({ title: x.title, text: x.text })));
    const q = await embeddings.embedQueriesMatrix(dev.queries.map((x) => x.text));
    const run = exactDotProductRun(
      dev.queries.map((x) => x.id),
      q.data,
      dev.corpus.map((x) => x.id),
      p.data,
      p.dim,
      100,
    );
    const judged: Qrels = new Map(dev.queries.filter((x) => dev.qrels.has(x.id)).map((x) => [x.id, dev.qrels.get(x.id)!]));
    return evaluateRun(run, judged, {
      cutoffs: { recall: [...DEV_CUTOFFS.recall], mrr: [...DEV_CUTOFFS.mrr], ndcg: [...DEV_CUTOFFS.ndcg] },
    }).mean;
  } finally {
    await embeddings.dispose();
  }
}

/** How the texts of {@link evaluateEncoders} are tokenised and pooled (what dpr_config.json records). */
export interface EncoderEvalOptions {
  pooling: PoolingTF;
  maxQueryLength: number;
  maxPassageLength: number;
  titleJoin: TitleJoin;
  /** L2-normalise the vectors (default false). */
  normalize?: boolean;
  /** Prepended to questions / passages (default ""). */
  queryPrompt?: string;
  passagePrompt?: string;
  /** Rows per forward pass (default 64). */
  batchSize?: number;
}

/** Embeds token rows with a TF.js encoder in length-sorted batches; rows in input order. */
async function embedRows(
  enc: BertEncoderTF,
  rows: { inputIds: number[]; attentionMask: number[]; tokenTypeIds: number[] }[],
  pooling: PoolingTF,
  batchSize: number,
  padId: number,
  normalize: boolean,
): Promise<Float32Array> {
  const dim = enc.config.hidden_size;
  const out = new Float32Array(rows.length * dim);
  const order = rows.map((_, i) => i).sort((a, b) => rows[a]!.inputIds.length - rows[b]!.inputIds.length);
  for (let s = 0; s < order.length; s += batchSize) {
    const idx = order.slice(s, s + batchSize);
    const inputs = padEncodings(
      idx.map((i) => rows[i]!),
      padId,
      { multiple: sequencePadMultiple(), max: enc.config.max_position_embeddings },
    );
    const emb = tf.tidy(() => {
      const v = enc.encode(inputs, { training: false, pooling });
      return normalize ? l2Normalize(v) : v;
    });
    const data = (await emb.data()) as Float32Array;
    emb.dispose();
    idx.forEach((row, j) => out.set(data.subarray(j * dim, (j + 1) * dim), row * dim));
  }
  return out;
}

/**
 * Evaluates dual encoders on a dev set on the active TF.js backend, without exporting: the same
 * tokenisation as DPREmbeddings (question alone; `[CLS] title [SEP] text [SEP]` passages), the same
 * pooling, exact dot-product top-100 and the metrics of {@link evaluateModelDir}. On a GPU this is far
 * faster than onnxruntime on the CPU; the exported ONNX graph gives the same vectors (tested ≤ 1e-3).
 */
export async function evaluateEncoders(
  encoders: DualEncoderTF,
  tokenizer: BertTokenizer,
  dev: DevSet,
  opts: EncoderEvalOptions,
): Promise<Record<string, number>> {
  const padId = tokenizer.tokenToIdOrUndefined("[PAD]") ?? 0;
  const batch = opts.batchSize ?? 64;
  const pRows = dev.corpus.map((p) => encodePassage(tokenizer, p, opts.maxPassageLength, opts.titleJoin, opts.passagePrompt));
  const qRows = dev.queries.map((q) => tokenizer.encode((opts.queryPrompt ?? "") + q.text, null, { maxLength: opts.maxQueryLength }));
  const p = await embedRows(encoders.passage, pRows, opts.pooling, batch, padId, opts.normalize ?? false);
  const q = await embedRows(encoders.question, qRows, opts.pooling, batch, padId, opts.normalize ?? false);
  releaseFreeGpuBuffers();
  const dim = encoders.question.config.hidden_size;
  const run = exactDotProductRun(
    dev.queries.map((x) => x.id),
    q,
    dev.corpus.map((x) => x.id),
    p,
    dim,
    100,
  );
  const judged: Qrels = new Map(dev.queries.filter((x) => dev.qrels.has(x.id)).map((x) => [x.id, dev.qrels.get(x.id)!]));
  return evaluateRun(run, judged, { cutoffs: { recall: [...DEV_CUTOFFS.recall], mrr: [...DEV_CUTOFFS.mrr], ndcg: [...DEV_CUTOFFS.ndcg] } })
    .mean;
}

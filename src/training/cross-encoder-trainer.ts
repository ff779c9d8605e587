/**
 * Cross-encoder training: a BERT sequence classifier (one relevance logit per
 * `[CLS] question [SEP] passage [SEP]` pair, exactly as {@link CrossEncoderReranker} scores it) learnt
 * from each question's labelled positives and its (mined) hard negatives, then exported to the folder
 * layout the reranker loads.
 *
 * Data: {@link TrainingExample}s (DPR JSON from `scripts/mine-hard-negatives.ts`, or mined on the fly).
 * Each (question, positive) makes one *group*: the positive and `negatives` negatives, drawn for every
 * epoch with a seeded generator from the example's hard negatives (then its plain negatives); a group
 * short of negatives is filled with other questions' positives (random in-corpus negatives).
 *
 * Losses:
 * - `listwise` (default): softmax cross-entropy of the positive among its group's `1 + n` logits;
 * - `binary`: binary cross-entropy on every pair's logit (label 1 for the positive, 0 for negatives).
 *
 * Recipe pieces are the dual-encoder trainer's: {@link AdamW} (decoupled decay, none on biases and
 * LayerNorm), {@link linearSchedule} warm-up/decay, {@link clipByGlobalNorm}, {@link SeededRandom};
 * dropout masks are seeded per step. Passages join their title with a space (the reranker's default
 * `titleJoin: "space"`).
 *
 * @module
 */
import "@tensorflow/tfjs"; // registers TF.js's gradient functions (not part of tfjs-core)
import * as tf from "@tensorflow/tfjs-core";
import { appendFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { Passage, TrainingExample } from "../data/types.js";
import { writeFileAtomic } from "../utils/atomic-file.js";
import type { BertConfig, BertWeights } from "../models/types.js";
import { expectedBertWeightShapes, randomBertWeights } from "../models/weights.js";
import { writeCrossEncoderDir } from "../rerankers/cross-encoder-dir.js";
import { BertTokenizer, type Encoding } from "../tokenizers/bert-tokenizer.js";
import { ProgressBar } from "../utils/progress.js";
import { BertEncoderTF, type BertInputsTF } from "./bert-tf.js";
import { padEncodings, passageKey } from "./batches.js";
import { matchHeadInit, type MatchHeadOptions, type MatchHeadReport } from "./match-head.js";
import { gitCommit, TRAINING_METADATA_FILE } from "./export.js";
import { AdamW, linearSchedule } from "./optimizer.js";
import { applyUpdate, readScalars } from "./update.js";
import { guardGpuWork, sequencePadMultiple } from "./webgpu.js";
import { SeededRandom } from "./random.js";

const WHO = "CrossEncoderTrainer";

/** The training objective. */
export type CrossEncoderLoss = "binary" | "listwise";

/** One question with its positive and its negatives, as scored in a step. */
export interface CrossEncoderGroup {
  question: string;
  positive: Passage;
  negatives: Passage[];
}

/** Parameters of {@link CrossEncoderTrainer}. */
export interface CrossEncoderTrainerParams {
  /** Where the model folder (`model/`) and `train-log.jsonl` go. */
  outputDir: string;
  tokenizer: BertTokenizer;
  config: BertConfig;
  /**
   * Starting weights (canonical names): a BERT/DPR encoder (the pooler and a one-logit classifier
   * are added, freshly initialised, when missing) or a cross-encoder's. Omit to start from random
   * weights (from scratch).
   */
  weights?: BertWeights;
  /**
   * Rewrites one attention head of the starting weights into a lexical match head before training
   * ({@link matchHeadInit}): `true` for its defaults, or its options. For models without a pretrained
   * language model behind them (from scratch, or from our bi-encoders), which otherwise do not leave
   * their starting loss for hundreds of updates. Default off.
   */
  matchHead?: boolean | MatchHeadOptions;
  train: readonly TrainingExample[];
  /** Default `listwise`. */
  loss?: CrossEncoderLoss;
  /** Negatives per positive in a group (default 3). */
  negatives?: number;
  /** Groups (questions) per update (default 8): `batch × (1 + negatives)` pairs. */
  batchSize?: number;
  epochs?: number;
  /** Stop after this many updates (default: epochs × groups / batch). */
  maxSteps?: number;
  /** Peak learning rate (default 2e-5). */
  lr?: number;
  warmupSteps?: number;
  /** Warm-up as a fraction of the updates when `warmupSteps` is not given (default 0.1). */
  warmupRatio?: number;
  weightDecay?: number;
  /** Global-norm clipping bound (default 1.0); 0 disables. */
  maxGradNorm?: number;
  /** Max tokens of a pair (default 256, capped at max_position_embeddings); written as the tokenizer's model_max_length. */
  maxLength?: number;
  /** Overrides the config's hidden and attention dropout. */
  dropout?: number;
  seed?: number;
  /** Also write model_quantized.onnx (int8). */
  quantize?: boolean;
  /** Progress bar on stderr (default: tty when stderr is one, else lines); false silences. */
  progress?: boolean | "lines";
  /** Extra metadata for training.json. */
  metadata?: Record<string, unknown>;
  /** Called after each update. */
  onStep?: (record: CrossEncoderStepRecord) => void;
}

/** What is reported after each update (and written to train-log.jsonl). */
export interface CrossEncoderStepRecord {
  type: "step";
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  pairs: number;
  pairsPerSec: number;
  elapsedSec: number;
}

/** Ranking quality of a model on groups (see {@link CrossEncoderTrainer.evaluateGroups}). */
export interface GroupRankingStats {
  /** Share of (positive, negative) pairs where the positive scores higher. */
  pairwiseAccuracy: number;
  /** Mean reciprocal rank of the positive within its group. */
  mrr: number;
  /** Share of groups whose positive scores highest. */
  top1: number;
  /** Mean loss (the trainer's objective, no dropout). */
  loss: number;
}

/** What {@link CrossEncoderTrainer.train} returns. */
export interface CrossEncoderTrainResult {
  steps: number;
  /** The exported cross-encoder folder. */
  modelDir: string;
  firstLoss: number;
  lastLoss: number;
  seconds: number;
}

/** The passage text a cross-encoder reads: `title text` (the reranker's `titleJoin: "space"`). */
export function crossEncoderPassageText(p: Passage): string {
  return p.title.trim().length > 0 ? `${p.title} ${p.text}`.trim() : p.text;
}

/**
 * The groups of one epoch: per (example, positive), `n` negatives sampled with `random` from the
 * example's hard negatives, then its plain negatives, then other examples' positives. A negative
 * never equals one of the example's positives (by id, or by title and text when ids are missing).
 */
export function buildCrossEncoderGroups(examples: readonly TrainingExample[], n: number, random: SeededRandom): CrossEncoderGroup[] {
  const allPositives = examples.flatMap((e) => e.positives);
  const groups: CrossEncoderGroup[] = [];
  for (const ex of examples) {
    const own = new Set(ex.positives.map(passageKey));
    const seen = new Set<string>();
    const pool = (list: readonly Passage[]) =>
      list.filter((p) => {
        const k = passageKey(p);
        if (own.has(k) || seen.has(k)) return false;
        seen.add(k);
        return true;
      });
    const hard = pool(ex.hardNegatives);
    const plain = pool(ex.negatives);
    for (const positive of ex.positives) {
      const picked = random.shuffle([...hard]).slice(0, n);
      if (picked.length < n) picked.push(...random.shuffle([...plain]).slice(0, n - picked.length));
      let guard = 0;
      const taken = new Set(picked.map(passageKey));
      while (picked.length < n && allPositives.length > 0 && guard++ < 20 * n) {
        const p = allPositives[random.int(allPositives.length)]!;
        const k = passageKey(p);
        if (own.has(k) || taken.has(k)) continue;
        taken.add(k);
        picked.push(p);
      }
      if (picked.length < n) {
        throw new Error(`${WHO}: cannot find ${n} negatives for question "${ex.question.slice(0, 60)}" (the data holds too few distinct passages)`);
      }
      groups.push({ question: ex.question, positive, negatives: picked });
    }
  }
  return groups;
}

/**
 * The loss of `logits` `[G·(1+n), 1]` laid out group by group (positive first): listwise softmax CE
 * of the positive, or the mean binary CE of all pairs.
 */
export function crossEncoderLoss(logits: tf.Tensor2D, groups: number, perGroup: number, kind: CrossEncoderLoss): tf.Scalar {
  return tf.tidy(() => {
    if (logits.shape[0] !== groups * perGroup) {
      throw new Error(`${WHO}: ${logits.shape[0]} logits for ${groups} groups of ${perGroup}`);
    }
    const z = tf.reshape(tf.slice(logits, [0, 0], [groups * perGroup, 1]), [groups, perGroup]);
    if (kind === "listwise") {
      const logProbs = tf.logSoftmax(z, -1);
      return tf.neg(tf.mean(tf.slice(logProbs, [0, 0], [groups, 1]))) as tf.Scalar;
    }
    const labels = tf.concat([tf.ones([groups, 1]), tf.zeros([groups, perGroup - 1])], 1);
    // BCE with logits, stable form: max(z, 0) − z·y + log(1 + exp(−|z|))
    const bce = tf.add(tf.sub(tf.relu(z), tf.mul(z, labels)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
    return tf.mean(bce) as tf.Scalar;
  });
}

/**
 * Adds what a cross-encoder needs and an encoder lacks: the BERT pooler and a one-logit classifier,
 * initialised as BERT does (normal(0, initializer_range), biases 0), seeded.
 * @throws Error when the weights have a classifier with more than one label.
 */
export function withClassifierHead(config: BertConfig, weights: BertWeights, seed: number): BertWeights {
  const classifier = weights.get("classifier.weight");
  if (classifier && classifier.shape[0] !== 1) {
    throw new Error(`${WHO}: the starting weights have a classifier with ${classifier.shape[0]} labels; a reranker needs exactly 1`);
  }
  if (weights.has("pooler.dense.weight") && classifier) return weights;
  const H = config.hidden_size;
  const std = config.initializer_range ?? 0.02;
  const random = new SeededRandom(seed);
  const normal = (n: number): Float32Array => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = random.normal() * std;
    return out;
  };
  const head: BertWeights = new Map([
    ["pooler.dense.weight", { shape: [H, H], data: normal(H * H) }],
    ["pooler.dense.bias", { shape: [H], data: new Float32Array(H) }],
    ["classifier.weight", { shape: [1, H], data: normal(H) }],
    ["classifier.bias", { shape: [1], data: new Float32Array(1) }],
  ]);
  const out: BertWeights = new Map(weights);
  for (const [name, t] of head) if (!out.has(name)) out.set(name, t);
  return out;
}

/**
 * Trains a cross-encoder (see the module documentation) and exports it.
 *
 * @example
 * ```ts
 * const examples = await readDprJson("scifact-train-bm25.json");
 * const init = await loadInitialModel("models/dpr-scifact");            // its passage encoder is used
 * const trainer = new CrossEncoderTrainer({ outputDir: "runs/ce", tokenizer: init.tokenizer, config: init.config,
 *   weights: init.passage ?? init.question, train: examples, loss: "listwise", negatives: 3, epochs: 1 });
 * const { modelDir } = await trainer.train();                          // runs/ce/model: CrossEncoderReranker loads it
 * ```
 */
export class CrossEncoderTrainer {
  outputDir: string;
  loss: CrossEncoderLoss = "listwise";
  negatives = 3;
  batchSize = 8;
  epochs = 1;
  maxSteps?: number;
  lr = 2e-5;
  warmupSteps?: number;
  warmupRatio = 0.1;
  weightDecay = 0.01;
  maxGradNorm = 1.0;
  maxLength = 256;
  seed = 42;
  quantize = false;
  progress: boolean | "lines" | undefined;
  metadata: Record<string, unknown> = {};
  onStep?: (record: CrossEncoderStepRecord) => void;

  /** What the lexical match head measured when `matchHead` was set (also in training.json). */
  readonly matchHead?: MatchHeadReport;
  /** The model being trained (TF.js). */
  readonly encoder: BertEncoderTF;
  /** The tokenizer, with `modelMaxLength` set to {@link maxLength}. */
  readonly tokenizer: BertTokenizer;
  readonly config: BertConfig;
  private readonly examples: readonly TrainingExample[];

  constructor(params: CrossEncoderTrainerParams) {
    if (params === null || typeof params !== "object") throw new Error(`${WHO}: params must be an object`);
    if (typeof params.outputDir !== "string" || params.outputDir === "") throw new Error(`${WHO}: outputDir must be a folder path`);
    this.outputDir = params.outputDir;
    this.loss = params.loss ?? this.loss;
    this.negatives = params.negatives ?? this.negatives;
    this.batchSize = params.batchSize ?? this.batchSize;
    this.epochs = params.epochs ?? this.epochs;
    this.maxSteps = params.maxSteps;
    this.lr = params.lr ?? this.lr;
    this.warmupSteps = params.warmupSteps;
    this.warmupRatio = params.warmupRatio ?? this.warmupRatio;
    this.weightDecay = params.weightDecay ?? this.weightDecay;
    this.maxGradNorm = params.maxGradNorm ?? this.maxGradNorm;
    this.seed = params.seed ?? this.seed;
    this.quantize = params.quantize ?? this.quantize;
    this.progress = params.progress;
    this.metadata = params.metadata ?? this.metadata;
    this.onStep = params.onStep;
    if (this.loss !== "binary" && this.loss !== "listwise") throw new Error(`${WHO}: loss must be "binary" or "listwise", got ${JSON.stringify(this.loss)}`);
    const int = (v: number | undefined, name: string, min: number) => {
      if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new Error(`${WHO}: ${name} must be an integer >= ${min}, got ${v}`);
    };
    int(this.negatives, "negatives", 1);
    int(this.batchSize, "batchSize", 1);
    int(this.epochs, "epochs", 1);
    int(this.maxSteps, "maxSteps", 1);
    int(this.warmupSteps, "warmupSteps", 0);
    if (!(this.lr > 0)) throw new Error(`${WHO}: lr must be > 0, got ${this.lr}`);
    if (!(this.warmupRatio >= 0 && this.warmupRatio < 1)) throw new Error(`${WHO}: warmupRatio must be in [0, 1), got ${this.warmupRatio}`);
    if (!Array.isArray(params.train) || params.train.length === 0) throw new Error(`${WHO}: train must be a non-empty list of examples`);
    params.train.forEach((ex, i) => {
      if (typeof ex?.question !== "string" || !Array.isArray(ex.positives) || ex.positives.length === 0) {
        throw new Error(`${WHO}: train[${i}] needs a question and at least one positive`);
      }
    });
    this.examples = params.train;
    const config: BertConfig = { ...params.config };
    if (params.dropout !== undefined) {
      if (!(params.dropout >= 0 && params.dropout < 1)) throw new Error(`${WHO}: dropout must be in [0, 1), got ${params.dropout}`);
      config.hidden_dropout_prob = params.dropout;
      config.attention_probs_dropout_prob = params.dropout;
    }
    this.maxLength = Math.min(params.maxLength ?? this.maxLength, config.max_position_embeddings);
    int(this.maxLength, "maxLength", 3);
    if (params.tokenizer.vocabSize > config.vocab_size) {
      throw new Error(`${WHO}: the tokenizer has ${params.tokenizer.vocabSize} entries but config vocab_size is ${config.vocab_size}`);
    }
    this.tokenizer = BertTokenizer.fromVocab(params.tokenizer.getVocab(), { ...params.tokenizer.options, modelMaxLength: this.maxLength });
    this.config = { ...config, num_labels: 1 };
    let weights = params.weights ? withClassifierHead(config, params.weights, this.seed + 1) : randomBertWeights(config, { seed: this.seed, numLabels: 1, pooler: true });
    if (params.matchHead) {
      const built = matchHeadInit(config, weights, params.matchHead === true ? {} : params.matchHead);
      weights = built.weights;
      this.matchHead = built.report;
    }
    // Only the tensors of a BERT classifier (drops e.g. a DPR projection the folder may hold).
    const wanted = expectedBertWeightShapes(config, { pooler: true, numLabels: 1 });
    const kept: BertWeights = new Map([...weights].filter(([name]) => wanted.has(name)));
    this.encoder = BertEncoderTF.fromWeights(config, kept, { name: "cross-encoder" });
  }

  /** Tokenised pairs of groups, positive first in each group, padded to one length. */
  tokenizeGroups(groups: readonly CrossEncoderGroup[]): BertInputsTF {
    const encodings: Encoding[] = [];
    for (const g of groups) {
      for (const p of [g.positive, ...g.negatives]) encodings.push(this.tokenizer.encode(g.question, crossEncoderPassageText(p), { maxLength: this.maxLength }));
    }
    return padEncodings(encodings, this.tokenizer.padId, { multiple: sequencePadMultiple(), max: this.maxLength });
  }

  /** Logits (no dropout) of `(question, passage)` pairs, as the exported ONNX model gives them. */
  async scorePairs(question: string, passages: readonly Passage[]): Promise<number[]> {
    if (passages.length === 0) return [];
    const inputs = padEncodings(passages.map((p) => this.tokenizer.encode(question, crossEncoderPassageText(p), { maxLength: this.maxLength })), this.tokenizer.padId, {
      multiple: sequencePadMultiple(), max: this.maxLength,
    });
    const logits = tf.tidy(() => this.encoder.forward(inputs, { training: false }).logits!);
    try {
      return Array.from(await logits.data());
    } finally {
      logits.dispose();
    }
  }

  /**
   * Ranking quality on groups (inference mode): pairwise accuracy, MRR and top-1 of the positive
   * within its group, and the mean loss.
   */
  async evaluateGroups(groups: readonly CrossEncoderGroup[], chunk = 8): Promise<GroupRankingStats> {
    let pairs = 0, wins = 0, rr = 0, top1 = 0, lossSum = 0;
    for (let s = 0; s < groups.length; s += chunk) {
      const part = groups.slice(s, s + chunk);
      const per = 1 + part[0]!.negatives.length;
      if (part.some((g) => g.negatives.length !== per - 1)) throw new Error(`${WHO}: evaluateGroups needs groups with equal negative counts`);
      const inputs = this.tokenizeGroups(part);
      const [logits, lossT] = tf.tidy(() => {
        const l = this.encoder.forward(inputs, { training: false }).logits!;
        return [l, crossEncoderLoss(l, part.length, per, this.loss)];
      });
      const scores = (await logits.data()) as Float32Array;
      logits.dispose();
      const [loss] = await readScalars(lossT);
      lossSum += loss * part.length;
      part.forEach((_, g) => {
        const pos = scores[g * per]!;
        let above = 0;
        for (let j = 1; j < per; j++) {
          const neg = scores[g * per + j]!;
          pairs++;
          if (pos > neg) wins++;
          if (neg >= pos) above++;
        }
        rr += 1 / (1 + above);
        if (above === 0) top1++;
      });
    }
    return { pairwiseAccuracy: wins / pairs, mrr: rr / groups.length, top1: top1 / groups.length, loss: lossSum / groups.length };
  }

  /** Groups of epoch `epoch` (seeded by the run seed and the epoch). */
  groupsForEpoch(epoch: number): CrossEncoderGroup[] {
    const random = new SeededRandom(SeededRandom.mix(this.seed, 1000 + epoch));
    return random.shuffle(buildCrossEncoderGroups(this.examples, this.negatives, random));
  }

  /**
   * Trains, then writes `outputDir/model` (CrossEncoderReranker layout + training.json).
   * @throws Error when the loss is not finite.
   */
  async train(): Promise<CrossEncoderTrainResult> {
    await mkdir(this.outputDir, { recursive: true });
    const logPath = join(this.outputDir, "train-log.jsonl");
    await writeFile(logPath, "");
    const firstEpoch = this.groupsForEpoch(0);
    const perEpoch = Math.ceil(firstEpoch.length / this.batchSize);
    const total = this.maxSteps ?? perEpoch * this.epochs;
    const warmup = this.warmupSteps ?? Math.floor(total * this.warmupRatio);
    const schedule = linearSchedule({ lr: this.lr, warmupSteps: Math.min(warmup, total), totalSteps: total });
    const named = this.encoder.namedVariables;
    const byVarName = new Map<string, string>();
    for (const [name, v] of named) byVarName.set(v.name, name);
    const optimizer = new AdamW(named, { weightDecay: this.weightDecay });
    const bar =
      this.progress === false ? undefined : new ProgressBar({ label: "cross-encoder", mode: this.progress === "lines" ? "lines" : undefined });
    const perGroup = 1 + this.negatives;
    const t0 = performance.now();
    let step = 0, firstLoss = NaN, lastLoss = NaN;
    try {
      for (let epoch = 0; step < total; epoch++) {
        const groups = epoch === 0 ? firstEpoch : this.groupsForEpoch(epoch);
        for (let s = 0; s < groups.length && step < total; s += this.batchSize) {
          const part = groups.slice(s, s + this.batchSize);
          const inputs = this.tokenizeGroups(part);
          const ts = performance.now();
          this.encoder.reseedDropout(SeededRandom.mix(this.seed, step));
          const lr = schedule(step);
          const what = `training update ${step + 1} (batch ${part.length}: ${part.length * perGroup} pairs × ${(inputs.inputIds as number[][])[0]?.length ?? 0} tokens)`;
          const { loss, gradNorm } = await guardGpuWork(what, () => {
            const { value, grads } = tf.variableGrads(
              () => crossEncoderLoss(this.encoder.forward(inputs, { training: true }).logits!, part.length, perGroup, this.loss),
              [...named.values()],
            );
            const byName = new Map<string, tf.Tensor>();
            for (const [varName, g] of Object.entries(grads)) {
              const name = byVarName.get(varName);
              if (name === undefined) g.dispose();
              else byName.set(name, g);
            }
            return applyUpdate({ loss: value, grads: byName, optimizer, lr, maxGradNorm: this.maxGradNorm });
          });
          if (!Number.isFinite(loss)) throw new Error(`${WHO}: loss is ${loss} at step ${step}; lower the learning rate`);
          step++;
          if (Number.isNaN(firstLoss)) firstLoss = loss;
          lastLoss = loss;
          const pairs = part.length * perGroup;
          const record: CrossEncoderStepRecord = {
            type: "step",
            step,
            epoch,
            loss,
            lr,
            gradNorm,
            pairs,
            pairsPerSec: pairs / ((performance.now() - ts) / 1000),
            elapsedSec: (performance.now() - t0) / 1000,
          };
          await appendFile(logPath, JSON.stringify(record) + "\n");
          this.onStep?.(record);
          bar?.update(step, total, `loss ${loss.toFixed(4)} ${record.pairsPerSec.toFixed(1)} pairs/s`);
        }
      }
    } finally {
      optimizer.dispose();
      bar?.done();
    }
    const seconds = (performance.now() - t0) / 1000;
    const modelDir = join(this.outputDir, "model");
    await this.export(modelDir, {
      steps: step,
      seconds,
      firstLoss,
      lastLoss,
    });
    return { steps: step, modelDir, firstLoss, lastLoss, seconds };
  }

  /**
   * Writes the current weights as a cross-encoder folder (config.json with
   * BertForSequenceClassification and num_labels 1, tokenizer, model.onnx, model.safetensors,
   * optional model_quantized.onnx) plus training.json; CrossEncoderReranker loads it.
   */
  async export(dir: string, extra: Record<string, unknown> = {}): Promise<void> {
    await writeCrossEncoderDir(dir, {
      config: this.config,
      weights: await this.encoder.toWeights(),
      tokenizer: this.tokenizer,
      quantize: this.quantize,
      safetensors: true,
    });
    const metadata = {
      kind: "cross-encoder",
      loss: this.loss,
      negatives: this.negatives,
      batchSize: this.batchSize,
      epochs: this.epochs,
      maxSteps: this.maxSteps,
      lr: this.lr,
      warmupRatio: this.warmupRatio,
      warmupSteps: this.warmupSteps,
      weightDecay: this.weightDecay,
      maxGradNorm: this.maxGradNorm,
      maxLength: this.maxLength,
      seed: this.seed,
      backend: tf.getBackend(),
      trainExamples: this.examples.length,
      ...(this.matchHead ? { matchHead: this.matchHead } : {}),
      ...this.metadata,
      ...extra,
      gitCommit: this.metadata["gitCommit"] ?? gitCommit(),
      writtenAt: new Date().toISOString(),
    };
    await writeFileAtomic(join(dir, TRAINING_METADATA_FILE), [Buffer.from(JSON.stringify(metadata, null, 2) + "\n")]);
  }

  /** Frees the TF.js variables. */
  dispose(): void {
    this.encoder.dispose();
  }
}

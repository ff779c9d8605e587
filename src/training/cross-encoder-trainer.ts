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
 * Training runs the dual-encoder trainer's loop ({@link runTrainingLoop}): AdamW (decoupled decay,
 * none on biases and LayerNorm), linear warm-up/decay, global-norm clipping, train-log.jsonl,
 * checkpoints every N updates and at each epoch's end (`<out>/checkpoint/`), exact resume, a time
 * budget. Dropout masks are seeded per update. Passages join their title with a space (the
 * reranker's default `titleJoin: "space"`).
 *
 * @module
 */
import "@tensorflow/tfjs"; // registers TF.js's gradient functions (not part of tfjs-core)
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import type { Passage, TrainingExample } from "../data/types.js";
import { writeFileAtomic } from "../utils/atomic-file.js";
import type { BertConfig, BertWeights } from "../models/types.js";
import { expectedBertWeightShapes, randomBertWeights } from "../models/weights.js";
import { writeCrossEncoderDir } from "../rerankers/cross-encoder-dir.js";
import { BertTokenizer, type Encoding } from "../tokenizers/bert-tokenizer.js";
import { BertEncoderTF, type BertInputsTF } from "./bert-tf.js";
import { padEncodings } from "./batches.js";
import {
  buildCrossEncoderGroups,
  crossEncoderLoss,
  crossEncoderPassageText,
  withClassifierHead,
  type CrossEncoderGroup,
  type CrossEncoderLoss,
} from "./cross-encoder-data.js";
import { matchHeadInit, type MatchHeadOptions, type MatchHeadReport } from "./match-head.js";
import { readCheckpoint } from "./checkpoint.js";
import { gitCommit, TRAINING_METADATA_FILE } from "./export.js";
import { CHECKPOINT_DIR, runTrainingLoop, type TrainingLoopResult } from "./loop.js";
import { AdamW } from "./optimizer.js";
import { DEFAULT_MAX_GRAD_NORM, requireFraction, requireInteger, requirePositive, runLength, warmupLinearSchedule } from "./recipe.js";
import { readScalars } from "./update.js";
import { sequencePadMultiple } from "./webgpu.js";
import { SeededRandom } from "./random.js";

const WHO = "CrossEncoderTrainer";

export {
  buildCrossEncoderGroups,
  crossEncoderLoss,
  crossEncoderPassageText,
  withClassifierHead,
  type CrossEncoderGroup,
  type CrossEncoderLoss,
} from "./cross-encoder-data.js";

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
  /** Train exactly this many updates, through as many epochs as they need (overrides `epochs`; see {@link runLength}). */
  maxSteps?: number;
  /** Peak learning rate (default 2e-5). */
  lr?: number;
  warmupSteps?: number;
  /** Warm-up as a fraction of the updates when `warmupSteps` is not given (default 0.1). */
  warmupRatio?: number;
  weightDecay?: number;
  /** Global-norm clipping bound (default {@link DEFAULT_MAX_GRAD_NORM}.crossEncoder, 1.0); 0 disables. */
  maxGradNorm?: number;
  /** Max tokens of a pair (default 256, capped at max_position_embeddings); written as the tokenizer's model_max_length. */
  maxLength?: number;
  /** Overrides the config's hidden and attention dropout. */
  dropout?: number;
  seed?: number;
  /** Also write model_quantized.onnx (int8). */
  quantize?: boolean;
  /** Checkpoint every N updates as well as at each epoch's end (default 0: epoch ends only). */
  checkpointEvery?: number;
  /** Stop after the update that crosses this many minutes (the export still runs). */
  maxMinutes?: number;
  /** Sleep this long after each update (to share a busy machine; tests use it to kill mid-run). */
  throttleMs?: number;
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

/** Options of {@link CrossEncoderTrainer.train}. */
export interface CrossEncoderTrainOptions {
  /** Continue from `outputDir/checkpoint` (error when there is none, or when its settings differ). */
  resume?: boolean;
}

/** What {@link CrossEncoderTrainer.train} returns. */
export interface CrossEncoderTrainResult {
  /** Updates done in all (a resumed run counts the checkpoint's). */
  steps: number;
  /** Epochs completed. */
  epochs: number;
  /** The exported cross-encoder folder. */
  modelDir: string;
  /** First and last loss of this process (NaN when no update ran). */
  firstLoss: number;
  lastLoss: number;
  /** Seconds of training in this process. */
  seconds: number;
  /** The checkpoint's update count when resumed. */
  resumedFromStep?: number;
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
  maxGradNorm: number = DEFAULT_MAX_GRAD_NORM.crossEncoder;
  maxLength = 256;
  seed = 42;
  quantize = false;
  checkpointEvery = 0;
  maxMinutes?: number;
  throttleMs = 0;
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
    this.checkpointEvery = params.checkpointEvery ?? this.checkpointEvery;
    this.maxMinutes = params.maxMinutes;
    this.throttleMs = params.throttleMs ?? this.throttleMs;
    this.progress = params.progress;
    this.metadata = params.metadata ?? this.metadata;
    this.onStep = params.onStep;
    if (this.loss !== "binary" && this.loss !== "listwise")
      throw new Error(`${WHO}: loss must be "binary" or "listwise", got ${JSON.stringify(this.loss)}`);
    const int = (v: number | undefined, name: string, min: number) => requireInteger(WHO, v, name, min);
    int(this.negatives, "negatives", 1);
    int(this.batchSize, "batchSize", 1);
    int(this.epochs, "epochs", 1);
    int(this.maxSteps, "maxSteps", 1);
    int(this.warmupSteps, "warmupSteps", 0);
    int(this.checkpointEvery, "checkpointEvery", 0);
    int(this.throttleMs, "throttleMs", 0);
    requirePositive(WHO, this.maxMinutes, "maxMinutes");
    requirePositive(WHO, this.lr, "lr");
    requireFraction(WHO, this.warmupRatio, "warmupRatio");
    if (!Array.isArray(params.train) || params.train.length === 0) throw new Error(`${WHO}: train must be a non-empty list of examples`);
    params.train.forEach((ex, i) => {
      if (typeof ex?.question !== "string" || !Array.isArray(ex.positives) || ex.positives.length === 0) {
        throw new Error(`${WHO}: train[${i}] needs a question and at least one positive`);
      }
    });
    this.examples = params.train;
    const config: BertConfig = { ...params.config };
    if (params.dropout !== undefined) {
      requireFraction(WHO, params.dropout, "dropout");
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
    let weights = params.weights
      ? withClassifierHead(config, params.weights, this.seed + 1)
      : randomBertWeights(config, { seed: this.seed, numLabels: 1, pooler: true });
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
      for (const p of [g.positive, ...g.negatives])
        encodings.push(this.tokenizer.encode(g.question, crossEncoderPassageText(p), { maxLength: this.maxLength }));
    }
    return padEncodings(encodings, this.tokenizer.padId, { multiple: sequencePadMultiple(), max: this.maxLength });
  }

  /** Logits (no dropout) of `(question, passage)` pairs, as the exported ONNX model gives them. */
  async scorePairs(question: string, passages: readonly Passage[]): Promise<number[]> {
    if (passages.length === 0) return [];
    const inputs = padEncodings(
      passages.map((p) => this.tokenizer.encode(question, crossEncoderPassageText(p), { maxLength: this.maxLength })),
      this.tokenizer.padId,
      {
        multiple: sequencePadMultiple(),
        max: this.maxLength,
      },
    );
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
    let pairs = 0,
      wins = 0,
      rr = 0,
      top1 = 0,
      lossSum = 0;
    for (let s = 0; s < groups.length; s += chunk) {
      const part = groups.slice(s, s + chunk);
      const per = 1 + part[0]!.negatives.length;
      if (part.some((g) => g.negatives.length !== per - 1))
        throw new Error(`${WHO}: evaluateGroups needs groups with equal negative counts`);
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
   * Trains ({@link runTrainingLoop} with this trainer's groups and loss), then writes
   * `outputDir/model` (CrossEncoderReranker layout + training.json). With `resume`, continues from
   * `outputDir/checkpoint` exactly (same data and settings required; checked).
   * @throws Error naming the problem (no checkpoint, settings differ from the checkpoint's, loss not finite).
   */
  async train(opts: CrossEncoderTrainOptions = {}): Promise<CrossEncoderTrainResult> {
    const firstEpoch = this.groupsForEpoch(0);
    const { totalSteps, maxEpochs } = runLength({
      epochs: this.epochs,
      stepsPerEpoch: Math.ceil(firstEpoch.length / this.batchSize),
      maxSteps: this.maxSteps,
    });
    const { schedule, warmupSteps } = warmupLinearSchedule({
      lr: this.lr,
      warmupSteps: this.warmupSteps,
      warmupRatio: this.warmupRatio,
      totalSteps,
    });
    const fingerprint = {
      batchSize: this.batchSize,
      seed: this.seed,
      epochs: this.epochs,
      totalSteps,
      lr: this.lr,
      warmupSteps,
      loss: this.loss,
      negatives: this.negatives,
      maxLength: this.maxLength,
      trainGroups: firstEpoch.length,
      vocabSize: this.tokenizer.vocabSize,
    };
    const resume = opts.resume ? await readCheckpoint(join(this.outputDir, CHECKPOINT_DIR), WHO, fingerprint) : undefined;
    if (resume) this.encoder.assignWeights(resume.weights, join(resume.dir, "weights.safetensors"));
    const named = this.encoder.namedVariables;
    const byVarName = new Map<string, string>();
    for (const [name, v] of named) byVarName.set(v.name, name);
    const optimizer = new AdamW(named, { weightDecay: this.weightDecay });
    const perGroup = 1 + this.negatives;
    let run: TrainingLoopResult;
    try {
      run = await runTrainingLoop<{ groups: CrossEncoderGroup[]; inputs: BertInputsTF }, CrossEncoderStepRecord>({
        who: WHO,
        outputDir: this.outputDir,
        totalSteps,
        maxEpochs,
        optimizer,
        schedule,
        maxGradNorm: this.maxGradNorm,
        plan: (epoch) => {
          const groups = epoch === 0 ? firstEpoch : this.groupsForEpoch(epoch);
          return {
            batches: Math.ceil(groups.length / this.batchSize),
            batch: (i) => {
              const part = groups.slice(i * this.batchSize, (i + 1) * this.batchSize);
              return { groups: part, inputs: this.tokenizeGroups(part) };
            },
          };
        },
        step: ({ groups, inputs }, step) => {
          this.encoder.reseedDropout(SeededRandom.mix(this.seed, step));
          const { value, grads } = tf.variableGrads(
            () => crossEncoderLoss(this.encoder.forward(inputs, { training: true }).logits!, groups.length, perGroup, this.loss),
            [...named.values()],
          );
          const byName = new Map<string, tf.Tensor>();
          for (const [varName, g] of Object.entries(grads)) {
            const name = byVarName.get(varName);
            if (name === undefined) g.dispose();
            else byName.set(name, g);
          }
          return { loss: value, grads: byName };
        },
        describeBatch: ({ groups, inputs }) =>
          `batch ${groups.length}: ${groups.length * perGroup} pairs × ${(inputs.inputIds as number[][])[0]?.length ?? 0} tokens`,
        record: (u, { groups }) => {
          const pairs = groups.length * perGroup;
          return {
            type: "step",
            step: u.step,
            epoch: u.epoch,
            loss: u.loss,
            lr: u.lr,
            gradNorm: u.gradNorm,
            pairs,
            pairsPerSec: pairs / Math.max(u.seconds, 1e-6),
            elapsedSec: u.elapsedSec,
          };
        },
        progressText: (r) => `loss ${r.loss.toFixed(4)} ${r.pairsPerSec.toFixed(1)} pairs/s`,
        progress: this.progress,
        progressLabel: "cross-encoder",
        checkpoint: {
          every: this.checkpointEvery,
          fingerprint,
          weights: () => this.encoder.toWeights(),
          fields: {
            config: this.config,
            rng: { scheme: "groups of epoch e = shuffle(mix(seed, 1000 + e)); dropout of update s = mix(seed, s)" },
          },
        },
        resume,
        maxMinutes: this.maxMinutes,
        throttleMs: this.throttleMs,
        logEpochs: false,
        onStep: (record) => this.onStep?.(record),
      });
    } finally {
      optimizer.dispose();
    }
    const modelDir = join(this.outputDir, "model");
    const { steps, epochs, firstLoss, lastLoss, seconds, resumedFromStep } = run;
    await this.export(modelDir, { steps, seconds, firstLoss, lastLoss, ...(resumedFromStep !== undefined ? { resumedFromStep } : {}) });
    return { steps, epochs, modelDir, firstLoss, lastLoss, seconds, resumedFromStep };
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
      checkpointEvery: this.checkpointEvery,
      maxMinutes: this.maxMinutes,
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

/**
 * The DPR trainer: fine-tunes (or pretrains) a dual encoder in TF.js and exports what DPREmbeddings
 * loads.
 *
 * Recipe: NLL of each question's positive over in-batch negatives plus shared hard negatives
 * (dot-product scores, optional temperature); AdamW with decoupled weight decay (not on biases and
 * LayerNorm); linear warm-up then linear decay; global-norm gradient clipping; dropout; GradCache for
 * large batches in small memory; shared or separate encoders.
 *
 * Determinism and resume: the epoch's batch order is a function of (seed, epoch) and each step's
 * dropout masks of (seed, step), so a run resumed from a checkpoint (weights + AdamW moments + step,
 * epoch and position in the epoch) draws exactly the batches and masks the uninterrupted run would.
 *
 * Output folder:
 * ```
 * checkpoint/          latest checkpoint (weights.safetensors, optimizer.safetensors, state.json)
 * model/               the model to use: best epoch on the dev set, else the last weights
 * last/                the last weights (only when a dev set selects model/)
 * train-log.jsonl      one JSON object per step (loss, lr, grad norm, examples/s) and per epoch (metrics)
 * ```
 */
import "@tensorflow/tfjs"; // registers TF.js's gradient functions (not part of tfjs-core)
import * as tf from "@tensorflow/tfjs-core";
import { rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { TrainingExample } from "../data/types.js";
import type { TitleJoin } from "../models/model-dir.js";
import type { BertConfig, BertWeights } from "../models/types.js";
import type { BertTokenizer } from "../tokenizers/bert-tokenizer.js";
import { BertEncoderTF } from "./bert-tf.js";
import { planEpoch, tokenizeBatch, type PlannedBatch, type TokenizedBatch } from "./batches.js";
import { readCheckpoint, type LoadedCheckpoint } from "./checkpoint.js";
import { evaluateEncoders, evaluateModelDir, exportTrainedModel, gitCommit, type DevSet } from "./export.js";
import { computeDprGradients, namedTrainableVariables, type DualEncoderTF } from "./gradients.js";
import type { DistillationParams } from "./distillation.js";
import type { DistillationTarget } from "./loss.js";
import { CHECKPOINT_DIR, runTrainingLoop, type DevEvaluation, type EpochRecord, type LoopView } from "./loop.js";
import { AdamW } from "./optimizer.js";
import { DEFAULT_MAX_GRAD_NORM, requireFraction, requireInteger, requirePositive, runLength, warmupLinearSchedule } from "./recipe.js";
import { sequencePadMultiple } from "./webgpu.js";
import { SeededRandom } from "./random.js";
import { moveDirAtomically } from "../utils/atomic-file.js";

export type { EpochRecord } from "./loop.js";

const WHO = "DPRTrainer";

/** Where the initial weights come from. */
export interface TrainerInit {
  config: BertConfig;
  /** Question encoder weights (also the passage encoder's start when `passage` is omitted). */
  question?: BertWeights;
  passage?: BertWeights;
  /** When no weights are given: random initialisation with this seed (default: the run seed). */
  initSeed?: number;
}

/** Training data: a fixed list, or a function giving each epoch's examples (e.g. ICT pairs). */
export type TrainerData = readonly TrainingExample[] | ((epoch: number) => readonly TrainingExample[]);

/** What the trainer reports after each step (also written to the JSON log). */
export interface StepRecord {
  type: "step";
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  examples: number;
  hardNegatives: number;
  examplesPerSec: number;
  elapsedSec: number;
}

/** Parameters of {@link DPRTrainer}. */
export interface DPRTrainerParams {
  /** Output folder (checkpoint/, model/, last/, train-log.jsonl). */
  outputDir: string;
  tokenizer: BertTokenizer;
  init: TrainerInit;
  train: TrainerData;
  /** Dev set evaluated after each epoch; selects model/ by {@link selectMetric}. */
  dev?: DevSet;
  /** One encoder for questions and passages (default false: two, as DPR). */
  shared?: boolean;
  epochs?: number;
  /** Train exactly this many updates, through as many epochs as they need (overrides `epochs`; see {@link runLength}). */
  maxSteps?: number;
  batchSize?: number;
  lr?: number;
  /** Warm-up updates; default `warmupRatio` × total. */
  warmupSteps?: number;
  warmupRatio?: number;
  weightDecay?: number;
  /** Global-norm clipping bound (default {@link DEFAULT_MAX_GRAD_NORM}.dualEncoder, 2.0: DPR's); 0 disables. */
  maxGradNorm?: number;
  temperature?: number;
  /** Hard negatives per question taken from the examples (default 1). */
  hardNegatives?: number;
  maxQueryLength?: number;
  maxPassageLength?: number;
  titleJoin?: TitleJoin;
  /** Pooling of both encoders (default "cls", as DPR; "mean" learns faster from scratch; "max"). */
  pooling?: "cls" | "mean" | "max";
  /**
   * L2-normalise the vectors (training loss and export), as a model that scores by cosine does
   * (bge, e5); pair it with a temperature such as 0.05. Default false (DPR: raw dot products).
   */
  normalize?: boolean;
  /** Prepended to every question (e.g. "query: "), in training, evaluation and the exported config. */
  queryPrompt?: string;
  /** Prepended to every passage (e.g. "passage: "). */
  passagePrompt?: string;
  /** Overrides the config's hidden and attention dropout. */
  dropout?: number;
  seed?: number;
  /** GradCache chunk size (rows per forward/backward); omit for plain steps. */
  gradCacheChunk?: number;
  /**
   * Listwise distillation from a teacher (e.g. `bm25Teacher` of ./distillation.ts): the loss becomes
   * `(1 − weight)·NLL + weight·KL(teacher softmax ‖ model softmax)` over each question's row of the batch.
   */
  distillation?: DistillationParams;
  /** Checkpoint every N updates (0: only at the end of each epoch). Default 0. */
  checkpointEvery?: number;
  /** Dev metric that selects the best epoch (default "ndcg@10"). */
  selectMetric?: string;
  /**
   * How the dev set is evaluated after each epoch: "onnx" (export, then DPREmbeddings on
   * onnxruntime: fastest on a CPU) or "backend" (the TF.js encoders on the training backend, no
   * export: fastest on a GPU; the best epoch is exported afterwards). Default: "backend" on webgpu,
   * else "onnx".
   */
  devEvaluation?: "onnx" | "backend";
  /** Stop after this many minutes (checked after each update; the epoch's dev evaluation and the export still run). */
  maxMinutes?: number;
  /** Also write int8 ONNX graphs. */
  quantize?: boolean;
  /** Progress bar on stderr (default: when stderr is a TTY, else a line every 10 s). `false` silences. */
  progress?: boolean | "lines";
  /** Sleep this long after each update (to share a busy machine; tests use it to kill mid-run). */
  throttleMs?: number;
  /** Extra metadata for training.json (command-line arguments, data description...). */
  metadata?: Record<string, unknown>;
  /** Called after each update. */
  onStep?: (record: StepRecord) => void;
  /** Called after each epoch. */
  onEpoch?: (record: EpochRecord) => void;
}

/** Options of {@link DPRTrainer.train}. */
export interface TrainOptions {
  /** Continue from outputDir/checkpoint (error when there is none). */
  resume?: boolean;
}

/** What {@link DPRTrainer.train} returns. */
export interface TrainResult {
  steps: number;
  epochs: number;
  /** Path of the model folder to use. */
  modelDir: string;
  /** Dev metrics per epoch (when a dev set was given). */
  history: EpochRecord[];
  bestEpoch?: number;
  /** First and last step losses of this process (NaN when no step ran). */
  firstLoss: number;
  lastLoss: number;
  resumedFromStep?: number;
}

/** "batch 32: 32 questions × 32 tokens, 64 passages × 128 tokens" (for error messages). */
function describeBatch(batch: { questions: { inputIds: unknown }; passages: { inputIds: unknown } }, chunk: number | undefined): string {
  const dims = (m: unknown): [number, number] => (Array.isArray(m) ? [m.length, (m[0] as unknown[] | undefined)?.length ?? 0] : [0, 0]);
  const [nq, lq] = dims(batch.questions.inputIds);
  const [np, lp] = dims(batch.passages.inputIds);
  return `batch ${nq}: ${nq} questions × ${lq} tokens, ${np} passages × ${lp} tokens${chunk ? `, GradCache chunk ${chunk}` : ""}`;
}

/**
 * Trains a DPR dual encoder. Select a TF.js backend first (`selectBackend`).
 *
 * @example
 * ```ts
 * await selectBackend();
 * const trainer = new DPRTrainer({ outputDir: "runs/scifact", tokenizer, init: { config, question: weights },
 *   train: examples, dev, epochs: 3, batchSize: 32, hardNegatives: 1 });
 * const { modelDir } = await trainer.train();           // or train({ resume: true }) after a kill
 * const embeddings = new DPREmbeddings({ modelPath: modelDir });
 * ```
 */
export class DPRTrainer {
  epochs = 1;
  batchSize = 32;
  lr = 2e-5;
  warmupRatio = 0.1;
  weightDecay = 0.01;
  maxGradNorm: number = DEFAULT_MAX_GRAD_NORM.dualEncoder;
  temperature = 1;
  hardNegatives = 1;
  maxQueryLength = 64;
  maxPassageLength = 256;
  titleJoin: TitleJoin = "pair";
  pooling: "cls" | "mean" | "max" = "cls";
  normalize = false;
  queryPrompt = "";
  passagePrompt = "";
  seed = 42;
  checkpointEvery = 0;
  selectMetric = "ndcg@10";
  quantize = false;
  throttleMs = 0;
  shared = false;

  readonly params: DPRTrainerParams;
  readonly outputDir: string;

  constructor(params: DPRTrainerParams) {
    this.params = params;
    this.outputDir = resolve(params.outputDir);
    for (const key of [
      "epochs",
      "batchSize",
      "lr",
      "warmupRatio",
      "weightDecay",
      "maxGradNorm",
      "temperature",
      "hardNegatives",
      "maxQueryLength",
      "maxPassageLength",
      "titleJoin",
      "pooling",
      "normalize",
      "queryPrompt",
      "passagePrompt",
      "seed",
      "checkpointEvery",
      "selectMetric",
      "quantize",
      "throttleMs",
      "shared",
    ] as const) {
      const v = params[key];
      if (v !== undefined) (this as Record<string, unknown>)[key] = v;
    }
    requireInteger(WHO, this.epochs, "epochs", 1);
    requireInteger(WHO, this.batchSize, "batchSize", 1);
    requireInteger(WHO, this.hardNegatives, "hardNegatives", 0);
    requireInteger(WHO, this.checkpointEvery, "checkpointEvery", 0);
    requireInteger(WHO, this.maxQueryLength, "maxQueryLength", 3);
    requireInteger(WHO, this.maxPassageLength, "maxPassageLength", 4);
    requireInteger(WHO, params.maxSteps, "maxSteps", 1);
    requireInteger(WHO, params.gradCacheChunk, "gradCacheChunk", 1);
    requirePositive(WHO, params.maxMinutes, "maxMinutes");
    if (params.devEvaluation !== undefined && params.devEvaluation !== "onnx" && params.devEvaluation !== "backend") {
      throw new Error(`${WHO}: devEvaluation must be "onnx" or "backend", got ${JSON.stringify(params.devEvaluation)}`);
    }
    requirePositive(WHO, this.lr, "lr");
    requirePositive(WHO, this.temperature, "temperature");
    requireFraction(WHO, this.warmupRatio, "warmupRatio");
    requireFraction(WHO, params.dropout, "dropout");
    if (params.distillation) {
      const { weight = 0.5, temperature = 1 } = params.distillation;
      if (!(weight >= 0 && weight <= 1)) throw new Error(`${WHO}: distillation weight must be in [0, 1], got ${weight}`);
      requirePositive(WHO, temperature, "distillation temperature");
    }
    const c = params.init.config;
    if (this.maxQueryLength > c.max_position_embeddings || this.maxPassageLength > c.max_position_embeddings) {
      throw new Error(
        `${WHO}: maxQueryLength ${this.maxQueryLength} / maxPassageLength ${this.maxPassageLength} exceed the model's ` +
          `max_position_embeddings ${c.max_position_embeddings}`,
      );
    }
    if (params.tokenizer.vocabSize > c.vocab_size) {
      throw new Error(`${WHO}: the tokenizer has ${params.tokenizer.vocabSize} entries but the model's vocab_size is ${c.vocab_size}`);
    }
    if (params.init.passage && this.shared) throw new Error(`${WHO}: shared is set but separate passage weights were given`);
  }

  /** The examples of an epoch. */
  private examplesFor(epoch: number): readonly TrainingExample[] {
    const t = this.params.train;
    const examples = typeof t === "function" ? t(epoch) : t;
    if (examples.length === 0) throw new Error(`${WHO}: no training examples (epoch ${epoch})`);
    return examples;
  }

  private planFor(epoch: number): { examples: readonly TrainingExample[]; plan: PlannedBatch[] } {
    const examples = this.examplesFor(epoch);
    return { examples, plan: planEpoch(examples, { batchSize: this.batchSize, seed: this.seed, epoch }) };
  }

  /** Model config with the dropout override applied. */
  private modelConfig(): BertConfig {
    const c = { ...this.params.init.config };
    if (this.params.dropout !== undefined) {
      c.hidden_dropout_prob = this.params.dropout;
      c.attention_probs_dropout_prob = this.params.dropout;
    }
    return c;
  }

  /** Settings that must match between a checkpoint and a resumed run. */
  private fingerprint(totalSteps: number, firstEpochSize: number): Record<string, unknown> {
    return {
      batchSize: this.batchSize,
      seed: this.seed,
      epochs: this.epochs,
      totalSteps,
      lr: this.lr,
      shared: this.shared,
      hardNegatives: this.hardNegatives,
      maxQueryLength: this.maxQueryLength,
      maxPassageLength: this.maxPassageLength,
      gradCacheChunk: this.params.gradCacheChunk ?? null,
      firstEpochExamples: firstEpochSize,
      temperature: this.temperature,
      // Only when set, so checkpoints written before distillation existed still resume.
      ...(this.params.distillation ? { distillation: this.distillationSettings() } : {}),
    };
  }

  private buildEncoders(config: BertConfig, q?: BertWeights, p?: BertWeights): DualEncoderTF {
    const initSeed = this.params.init.initSeed ?? this.seed;
    // A dual encoder pools the hidden states itself: a BERT pooler or classifier head in the starting
    // weights (bge, DPR checkpoints carry one) would get no gradient, so it is left out.
    const encoderOnly = (w: BertWeights) => new Map([...w].filter(([n]) => !n.startsWith("pooler.") && !n.startsWith("classifier.")));
    const make = (w: BertWeights | undefined, name: string, seedOffset: number) =>
      w
        ? BertEncoderTF.fromWeights(config, encoderOnly(w), { name })
        : BertEncoderTF.fromConfig(config, { name, initSeed: initSeed * 1000 + seedOffset });
    const question = make(q, "q", 0);
    if (this.shared) return { question, passage: question };
    // Separate encoders both start from the question weights unless passage weights are given.
    return { question, passage: make(p ?? q, "p", q ? 0 : 1) };
  }

  /** How the dev set is evaluated (see {@link DPRTrainerParams.devEvaluation}). */
  get devEvaluation(): "onnx" | "backend" {
    return this.params.devEvaluation ?? (tf.getBackend() === "webgpu" ? "backend" : "onnx");
  }

  private get dprConfig() {
    return {
      pooling: this.pooling,
      maxQueryLength: this.maxQueryLength,
      maxPassageLength: this.maxPassageLength,
      titleJoin: this.titleJoin,
      normalize: this.normalize,
      queryPrompt: this.queryPrompt,
      passagePrompt: this.passagePrompt,
    };
  }

  /** The distillation settings (teacher name, weight, temperature), or undefined without a teacher. */
  private distillationSettings(): { teacher: string; weight: number; temperature: number } | undefined {
    const d = this.params.distillation;
    return d && { teacher: d.teacher.name, weight: d.weight ?? 0.5, temperature: d.temperature ?? 1 };
  }

  /** The teacher's scores of one batch (every question against every passage of the batch). */
  private distillationTarget(batch: TokenizedBatch): DistillationTarget | undefined {
    const d = this.params.distillation;
    if (!d) return undefined;
    return { scores: d.teacher.score(batch.questionTexts, batch.passageList), weight: d.weight ?? 0.5, temperature: d.temperature ?? 1 };
  }

  /** Hyper-parameters as written to training.json. */
  describe(): Record<string, unknown> {
    return {
      epochs: this.epochs,
      maxSteps: this.params.maxSteps,
      batchSize: this.batchSize,
      lr: this.lr,
      warmupSteps: this.params.warmupSteps,
      warmupRatio: this.warmupRatio,
      weightDecay: this.weightDecay,
      maxGradNorm: this.maxGradNorm,
      temperature: this.temperature,
      hardNegatives: this.hardNegatives,
      distillation: this.distillationSettings(),
      maxQueryLength: this.maxQueryLength,
      maxPassageLength: this.maxPassageLength,
      titleJoin: this.titleJoin,
      pooling: this.pooling,
      normalize: this.normalize,
      queryPrompt: this.queryPrompt,
      passagePrompt: this.passagePrompt,
      dropout: this.params.dropout,
      seed: this.seed,
      gradCacheChunk: this.params.gradCacheChunk,
      shared: this.shared,
      checkpointEvery: this.checkpointEvery,
      selectMetric: this.selectMetric,
      backend: tf.getBackend(),
      devEvaluation: this.params.dev ? this.devEvaluation : undefined,
      maxMinutes: this.params.maxMinutes,
    };
  }

  /**
   * Runs the training ({@link runTrainingLoop} with this trainer's batches and DPR loss). With
   * `resume`, continues from `outputDir/checkpoint` (same data and settings required; checked)
   * losing only the updates made after that checkpoint.
   * @throws Error naming the problem (no checkpoint, settings differ from the checkpoint's, loss not finite).
   */
  async train(opts: TrainOptions = {}): Promise<TrainResult> {
    const out = this.outputDir;
    const config = this.modelConfig();
    const first = this.planFor(0);
    const { totalSteps, maxEpochs } = runLength({ epochs: this.epochs, stepsPerEpoch: first.plan.length, maxSteps: this.params.maxSteps });
    const { schedule } = warmupLinearSchedule({
      lr: this.lr,
      warmupSteps: this.params.warmupSteps,
      warmupRatio: this.warmupRatio,
      totalSteps,
    });
    const fingerprint = this.fingerprint(totalSteps, first.examples.length);
    const resume = opts.resume ? await readCheckpoint(join(out, CHECKPOINT_DIR), WHO, fingerprint) : undefined;
    const encoders = resume
      ? this.encodersFrom(config, resume)
      : this.buildEncoders(config, this.params.init.question, this.params.init.passage);
    const optimizer = new AdamW(namedTrainableVariables(encoders), { weightDecay: this.weightDecay });
    const metadata = (view: Pick<LoopView, "step" | "history" | "bestEpoch">, extra: Record<string, unknown>) => ({
      ...this.params.metadata,
      hyperparameters: this.describe(),
      config,
      steps: view.step,
      totalSteps,
      history: view.history,
      bestEpoch: view.bestEpoch,
      gitCommit: gitCommit(),
      ...extra,
    });
    const exportTo = (dir: string, meta: Record<string, unknown>) =>
      exportTrainedModel(dir, {
        encoders,
        tokenizer: this.params.tokenizer,
        dprConfig: this.dprConfig,
        quantize: this.quantize,
        metadata: meta,
      });
    const tokenizeOptions = {
      maxQueryLength: this.maxQueryLength,
      maxPassageLength: this.maxPassageLength,
      titleJoin: this.titleJoin,
      hardNegatives: this.hardNegatives,
      padMultiple: sequencePadMultiple(),
      queryPrompt: this.queryPrompt,
      passagePrompt: this.passagePrompt,
    };
    try {
      const run = await runTrainingLoop<TokenizedBatch, StepRecord>({
        who: WHO,
        outputDir: out,
        totalSteps,
        maxEpochs,
        optimizer,
        schedule,
        maxGradNorm: this.maxGradNorm,
        plan: (epoch) => {
          const { examples, plan } = epoch === 0 ? first : this.planFor(epoch);
          return { batches: plan.length, batch: (i) => tokenizeBatch(this.params.tokenizer, examples, plan[i]!, tokenizeOptions) };
        },
        step: (batch, step) =>
          computeDprGradients({
            encoders,
            questions: batch.questions,
            passages: batch.passages,
            pooling: this.pooling,
            temperature: this.temperature,
            normalize: this.normalize,
            training: true,
            chunkSize: this.params.gradCacheChunk,
            dropoutSeed: SeededRandom.mix(this.seed, step, 0xd20),
            teacher: this.distillationTarget(batch),
          }),
        describeBatch: (batch) => describeBatch(batch, this.params.gradCacheChunk),
        record: (u, batch) => ({
          type: "step",
          step: u.step,
          epoch: u.epoch,
          loss: u.loss,
          lr: u.lr,
          gradNorm: u.gradNorm,
          examples: batch.size,
          hardNegatives: batch.hardNegatives,
          examplesPerSec: batch.size / Math.max(u.seconds, 1e-6),
          elapsedSec: u.elapsedSec,
        }),
        progressText: (r) => `ep ${r.epoch + 1}/${this.epochs} loss ${r.loss.toFixed(4)} ${r.examplesPerSec.toFixed(1)} ex/s`,
        checkpoint: {
          every: this.checkpointEvery,
          fingerprint,
          weights: () => this.checkpointWeights(encoders),
          fields: {
            seed: this.seed,
            shared: this.shared,
            config,
            rng: { scheme: "batch order = shuffle(mix(seed, epoch)); dropout of step s = mix(seed, s)" },
          },
        },
        resume,
        maxMinutes: this.params.maxMinutes,
        throttleMs: this.throttleMs,
        progress: this.params.progress,
        dev: this.params.dev
          ? this.devHook(encoders, this.params.dev, (dir, view, epoch) => exportTo(dir, metadata(view, { epoch })))
          : undefined,
        onStep: this.params.onStep,
        onEpoch: this.params.onEpoch,
      });
      const lastDir = this.params.dev ? join(out, "last") : join(out, "model");
      await exportTo(lastDir, metadata({ step: run.steps, history: run.history, bestEpoch: run.bestEpoch }, { final: true }));
      return {
        steps: run.steps,
        epochs: run.epochs,
        modelDir: join(out, "model"),
        history: run.history,
        bestEpoch: run.bestEpoch,
        firstLoss: run.firstLoss,
        lastLoss: run.lastLoss,
        resumedFromStep: run.resumedFromStep,
      };
    } finally {
      optimizer.dispose();
      encoders.question.dispose();
      encoders.passage.dispose();
    }
  }

  /** The encoders of a checkpoint (weights named `encoder/…`, or `question/…` and `passage/…`). */
  private encodersFrom(config: BertConfig, checkpoint: LoadedCheckpoint): DualEncoderTF {
    const side = (prefix: string): BertWeights => {
      const w: BertWeights = new Map();
      for (const [name, t] of checkpoint.weights) if (name.startsWith(prefix)) w.set(name.slice(prefix.length), t);
      return w;
    };
    return checkpoint.state["shared"] === true
      ? this.buildEncoders(config, side("encoder/"))
      : this.buildEncoders(config, side("question/"), side("passage/"));
  }

  /** The weights a checkpoint holds: `encoder/…` (shared) or `question/…` and `passage/…`. */
  private async checkpointWeights(encoders: DualEncoderTF): Promise<BertWeights> {
    const weights: BertWeights = new Map();
    const sides: [string, BertEncoderTF][] = this.shared
      ? [["encoder/", encoders.question]]
      : [
          ["question/", encoders.question],
          ["passage/", encoders.passage],
        ];
    for (const [prefix, e] of sides) for (const [n, t] of await e.toWeights()) weights.set(prefix + n, t);
    return weights;
  }

  /**
   * The dev evaluation of each epoch: "onnx" exports to a temporary folder and evaluates it with
   * onnxruntime; "backend" evaluates the TF.js encoders and exports only a best epoch. A best epoch
   * becomes `model/`.
   */
  private devHook(
    encoders: DualEncoderTF,
    dev: DevSet,
    exportTo: (dir: string, view: LoopView, epoch: number) => Promise<void>,
  ): DevEvaluation {
    const tmpDir = (epoch: number) => join(this.outputDir, `.eval-epoch-${epoch}`);
    const c = this.dprConfig;
    return {
      selectMetric: this.selectMetric,
      evaluate: async (epoch, view) => {
        if (this.devEvaluation === "backend") return evaluateEncoders(encoders, this.params.tokenizer, dev, c);
        await exportTo(tmpDir(epoch), view, epoch);
        return evaluateModelDir(tmpDir(epoch), dev);
      },
      keep: async (epoch, best, view) => {
        if (!best) return rm(tmpDir(epoch), { recursive: true, force: true });
        if (this.devEvaluation === "backend") await exportTo(tmpDir(epoch), view, epoch);
        await moveDirAtomically(tmpDir(epoch), join(this.outputDir, "model"));
      },
      summary: (m) =>
        `recall@1 ${m["recall@1"]?.toFixed(4)} recall@20 ${m["recall@20"]?.toFixed(4)} MRR@10 ` +
        `${m["mrr@10"]?.toFixed(4)} nDCG@10 ${m["ndcg@10"]?.toFixed(4)}`,
    };
  }
}

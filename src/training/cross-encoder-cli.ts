/**
 * The cross-encoder training command line, `langchain-dpr train-cross-encoder` (src/cli/;
 * scripts/train-cross-encoder.ts is a thin wrapper over the same dispatcher): {@link runCrossEncoderCli}
 * loads DPR JSON (e.g. from `langchain-dpr mine`) or mines negatives on the fly from a BEIR folder,
 * loads the starting model, trains, exports.
 *
 * @module
 */
import { stat } from "node:fs/promises";
import { loadBeirCorpus, loadBeirDataset } from "../data/beir.js";
import { readDprJson } from "../data/dpr.js";
import type { TrainingExample } from "../data/types.js";
import type { BertConfig, BertWeights } from "../models/types.js";
import type { BertTokenizer } from "../tokenizers/bert-tokenizer.js";
import { BACKEND_ORDER, describeBackend, selectBackend, type BackendChoice } from "./backend.js";
import { CrossEncoderTrainer, type CrossEncoderLoss } from "./cross-encoder-trainer.js";
import { loadInitialModel, runTokenizer, scratchModel } from "./init.js";
import { formatMiningStats } from "./mining-cli.js";
import { HardNegativeMiner, type MiningMethod } from "./mining.js";
import { ictExamples, spanExamples } from "./pretrain.js";
import {
  parseCliArgs,
  parseNumberFlag,
  PROCESS_IO,
  runCommandLine,
  UsageError,
  type CliIO,
  type NumberFlagRule,
} from "../utils/cli-args.js";
import { CROSS_ENCODER_USAGE as USAGE } from "../cli/usage.js";

const WHO = "train-cross-encoder";

/** Usage text of the CLI (`langchain-dpr train-cross-encoder`). */
export const CROSS_ENCODER_USAGE = USAGE;

/** Parsed command line. */
export interface CrossEncoderCliOptions {
  data: string;
  out: string;
  split: string;
  mode: "supervised" | "ict" | "span";
  draws: number;
  mine: MiningMethod;
  mineModel?: string;
  skipTop?: number;
  depth?: number;
  margin?: number;
  minePerQuestion?: number;
  init?: string;
  initSide: "passage" | "question";
  scratch?: { hidden: number; layers: number; heads: number; ffn: number; maxLen: number; vocabSize: number };
  corpus?: string;
  loss: CrossEncoderLoss;
  negatives?: number;
  batch?: number;
  epochs?: number;
  maxSteps?: number;
  lr?: number;
  warmupRatio?: number;
  warmupSteps?: number;
  weightDecay?: number;
  clip?: number;
  maxLength?: number;
  dropout?: number;
  seed?: number;
  quantize: boolean;
  matchHead: boolean;
  /** Checkpoint every N updates as well as at each epoch's end. */
  checkpointEvery?: number;
  /** Continue from `<out>/checkpoint`. */
  resume: boolean;
  /** Stop after the update that crosses X minutes (the export still runs). */
  maxMinutes?: number;
  /** Sleep N ms after each update. */
  throttleMs?: number;
  backend?: BackendChoice;
  threads?: number;
  progress: boolean;
  quiet: boolean;
}

function numberArg(text: string | undefined, flag: string, opts: NumberFlagRule = {}): number | undefined {
  return parseNumberFlag(WHO, flag, text, opts);
}

const STRING = { type: "string" } as const;
const BOOL = { type: "boolean" } as const;
const FLAGS = {
  data: STRING,
  out: STRING,
  split: STRING,
  mode: STRING,
  draws: STRING,
  mine: STRING,
  "mine-model": STRING,
  "skip-top": STRING,
  depth: STRING,
  margin: STRING,
  "mine-per-question": STRING,
  init: STRING,
  "init-side": STRING,
  hidden: STRING,
  layers: STRING,
  heads: STRING,
  ffn: STRING,
  "max-len": STRING,
  "vocab-size": STRING,
  corpus: STRING,
  loss: STRING,
  negatives: STRING,
  batch: STRING,
  epochs: STRING,
  "max-steps": STRING,
  lr: STRING,
  "warmup-ratio": STRING,
  "warmup-steps": STRING,
  "weight-decay": STRING,
  clip: STRING,
  "max-length": STRING,
  dropout: STRING,
  seed: STRING,
  quantize: BOOL,
  "match-head": BOOL,
  backend: STRING,
  threads: STRING,
  "checkpoint-every": STRING,
  resume: BOOL,
  "max-minutes": STRING,
  "throttle-ms": STRING,
  "no-progress": BOOL,
  quiet: BOOL,
  help: BOOL,
} as const;

function parseFlags(argv: string[]) {
  return parseCliArgs(WHO, { args: argv, options: FLAGS }).values;
}

/** Parses the CLI's arguments; null for `--help`. Throws a {@link UsageError} naming the bad flag. */
export function parseCrossEncoderArgs(argv: string[]): CrossEncoderCliOptions | null {
  const values = parseFlags(argv);
  if (values.help) return null;
  if (!values.data) throw new UsageError(`${WHO}: --data <dpr.json | BEIR folder> is required`);
  if (!values.out) throw new UsageError(`${WHO}: --out <folder> is required`);
  const loss = values.loss ?? "listwise";
  const mode = values.mode ?? "supervised";
  if (mode !== "supervised" && mode !== "ict" && mode !== "span")
    throw new UsageError(`${WHO}: --mode must be supervised, ict or span, got "${mode}"`);
  if (loss !== "listwise" && loss !== "binary") throw new UsageError(`${WHO}: --loss must be binary or listwise, got "${loss}"`);
  const mine = values.mine ?? "bm25";
  if (mine !== "bm25" && mine !== "dense") throw new UsageError(`${WHO}: --mine must be bm25 or dense, got "${mine}"`);
  if (mine === "dense" && !values["mine-model"]) throw new UsageError(`${WHO}: --mine dense needs --mine-model <DPR model folder>`);
  const initSide = values["init-side"] ?? "passage";
  if (initSide !== "passage" && initSide !== "question")
    throw new UsageError(`${WHO}: --init-side must be passage or question, got "${initSide}"`);
  const backend = values.backend as BackendChoice | undefined;
  if (backend !== undefined && !BACKEND_ORDER.includes(backend))
    throw new UsageError(`${WHO}: --backend must be one of ${BACKEND_ORDER.join(", ")}, got "${backend}"`);
  const int = (flag: keyof typeof FLAGS, min = 1) => numberArg(values[flag] as string | undefined, `--${flag}`, { integer: true, min });
  const shapeFlags = ["hidden", "layers", "heads", "ffn", "max-len", "vocab-size"] as const;
  const given = shapeFlags.filter((f) => values[f] !== undefined);
  let scratch: CrossEncoderCliOptions["scratch"];
  if (values.init && given.length > 0)
    throw new UsageError(`${WHO}: --init and --${given[0]} exclude each other (a shape is for training from scratch)`);
  if (!values.init) {
    scratch = {
      hidden: int("hidden") ?? 128,
      layers: int("layers") ?? 2,
      heads: int("heads") ?? 2,
      ffn: int("ffn") ?? 512,
      maxLen: int("max-len") ?? 256,
      vocabSize: int("vocab-size") ?? 8000,
    };
  }
  return {
    data: values.data,
    out: values.out,
    split: values.split ?? "train",
    mode,
    draws: int("draws") ?? 1,
    mine,
    mineModel: values["mine-model"],
    skipTop: int("skip-top", 0),
    depth: int("depth"),
    margin: numberArg(values.margin, "--margin", { min: 0 }),
    minePerQuestion: int("mine-per-question"),
    init: values.init,
    initSide,
    scratch,
    corpus: values.corpus,
    loss,
    negatives: int("negatives"),
    batch: int("batch"),
    epochs: int("epochs"),
    maxSteps: int("max-steps"),
    lr: numberArg(values.lr, "--lr"),
    warmupRatio: numberArg(values["warmup-ratio"], "--warmup-ratio", { min: 0 }),
    warmupSteps: int("warmup-steps", 0),
    weightDecay: numberArg(values["weight-decay"], "--weight-decay", { min: 0 }),
    clip: numberArg(values.clip, "--clip", { min: 0 }),
    maxLength: int("max-length", 3),
    dropout: numberArg(values.dropout, "--dropout", { min: 0 }),
    seed: int("seed", 0),
    quantize: values.quantize ?? false,
    matchHead: values["match-head"] ?? false,
    checkpointEvery: int("checkpoint-every", 0),
    resume: values.resume ?? false,
    maxMinutes: numberArg(values["max-minutes"], "--max-minutes", { min: 0 }),
    throttleMs: int("throttle-ms", 0),
    backend,
    threads: int("threads"),
    progress: !(values["no-progress"] ?? false),
    quiet: values.quiet ?? false,
  };
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    throw new Error(`${WHO}: ${path} does not exist`);
  }
}

/**
 * Runs the CLI; returns the exit code (0 ok, 1 runtime error, 2 usage error: the message and the
 * usage on stderr). Never throws.
 */
export async function runCrossEncoderCli(argv: string[], io: CliIO = PROCESS_IO): Promise<number> {
  return runCommandLine({ who: WHO, usage: CROSS_ENCODER_USAGE, io }, () => trainCrossEncoder(argv, io));
}

async function trainCrossEncoder(argv: string[], io: CliIO): Promise<number> {
  const o = parseCrossEncoderArgs(argv);
  if (o === null) {
    io.stdout(CROSS_ENCODER_USAGE);
    return 0;
  }
  const log = o.quiet ? () => undefined : (line: string) => io.stderr(`${line}\n`);
  const { info } = await selectBackend({ prefer: o.backend, threads: o.threads, log: o.quiet ? false : undefined });
  let examples: TrainingExample[];
  let dataInfo: Record<string, unknown>;
  const dataIsBeir = await isDir(o.data);
  if (o.mode !== "supervised") {
    if (!dataIsBeir) throw new Error(`--mode ${o.mode} needs a BEIR folder (its corpus.jsonl), got the file ${o.data}`);
    const corpus = await loadBeirCorpus(o.data);
    const make = o.mode === "ict" ? ictExamples : spanExamples;
    examples = [];
    for (let draw = 0; draw < o.draws; draw++) examples.push(...make(corpus, { seed: o.seed ?? 42, epoch: draw }));
    if (examples.length === 0)
      throw new Error(
        `--mode ${o.mode}: ${o.data} gave no pairs (passages too short${o.mode === "ict" ? " or without sentence breaks" : ""})`,
      );
    dataInfo = { beir: o.data, mode: o.mode, draws: o.draws, pairs: examples.length };
  } else if (dataIsBeir) {
    const dataset = await loadBeirDataset(o.data, o.split);
    const miner = new HardNegativeMiner({
      method: o.mine,
      modelPath: o.mineModel,
      skipTop: o.skipTop,
      depth: o.depth,
      margin: o.margin,
      perQuestion: o.minePerQuestion,
      log,
    });
    const mined = await miner.mine(dataset);
    log(`${WHO}: mined ${formatMiningStats(mined.stats)}`);
    examples = mined.examples;
    dataInfo = { beir: o.data, split: o.split, mining: { rules: miner.rules, ...mined.stats } };
  } else {
    examples = await readDprJson(o.data);
    dataInfo = { dprJson: o.data };
  }
  let config: BertConfig, tokenizer: BertTokenizer, weights: BertWeights | undefined, source: string;
  if (o.init) {
    const init = await loadInitialModel(o.init);
    config = init.config;
    tokenizer = init.tokenizer;
    weights = o.initSide === "passage" ? (init.passage ?? init.question) : init.question;
    source = `${init.source}${init.passage ? ` (${o.initSide} encoder)` : ""}`;
  } else {
    const corpusDir = o.corpus ?? (dataIsBeir ? o.data : undefined);
    const texts = corpusDir
      ? (await loadBeirCorpus(corpusDir)).flatMap((p) => [p.title, p.text])
      : examples.flatMap((e) => [...e.positives, ...e.hardNegatives].flatMap((p) => [p.title, p.text]));
    const built = scratchModel({ ...o.scratch!, texts });
    config = built.config;
    // The vocabulary is saved with the run so that --resume uses exactly the same one.
    tokenizer = await runTokenizer(o.out, built.tokenizer, o.resume);
    source = `scratch ${JSON.stringify(o.scratch)} (vocabulary from ${corpusDir ?? o.data})`;
  }
  log(`${WHO}: ${examples.length} questions; model from ${source}`);
  const trainer = new CrossEncoderTrainer({
    outputDir: o.out,
    tokenizer,
    config,
    weights,
    train: examples,
    loss: o.loss,
    negatives: o.negatives,
    batchSize: o.batch,
    epochs: o.epochs,
    maxSteps: o.maxSteps,
    lr: o.lr,
    warmupRatio: o.warmupRatio,
    warmupSteps: o.warmupSteps,
    weightDecay: o.weightDecay,
    maxGradNorm: o.clip,
    maxLength: o.maxLength,
    dropout: o.dropout,
    seed: o.seed,
    matchHead: o.matchHead,
    quantize: o.quantize,
    progress: o.progress && !o.quiet ? undefined : false,
    checkpointEvery: o.checkpointEvery,
    maxMinutes: o.maxMinutes,
    throttleMs: o.throttleMs,
    metadata: { args: argv, data: dataInfo, init: source, backend: describeBackend(info) },
  });
  try {
    const result = await trainer.train({ resume: o.resume });
    const resumed = result.resumedFromStep !== undefined ? ` (resumed at update ${result.resumedFromStep})` : "";
    log(
      `${WHO}: ${result.steps} updates${resumed} in ${result.seconds.toFixed(1)} s, loss ${result.firstLoss.toFixed(4)} ` +
        `-> ${result.lastLoss.toFixed(4)}; model: ${result.modelDir}`,
    );
    if (o.quiet) return 0;
    io.stdout(`${result.modelDir}\n`);
  } finally {
    trainer.dispose();
  }
  return 0;
}

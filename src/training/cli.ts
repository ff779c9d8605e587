/**
 * The command line of `langchain-dpr train` and `langchain-dpr pretrain` (src/cli/; scripts/train-dpr.ts
 * and scripts/pretrain-dpr.ts): parses arguments, loads data and the starting model, runs
 * {@link DPRTrainer}, prints where the model folder is. Usage text: src/cli/usage.ts.
 */
import { join, resolve } from "node:path";
import { loadBeirCorpus, loadBeirDataset } from "../data/beir.js";
import { holdOutShare } from "../data/holdout.js";
import type { Passage, TrainingExample } from "../data/types.js";
import type { TitleJoin } from "../models/model-dir.js";
import { exportModelWeights, type DevSet } from "./export.js";
import { lexicalInitWeights } from "./lexical-init.js";
import { bm25Teacher, type DistillationParams } from "./distillation.js";
import type { BertTokenizer } from "../tokenizers/bert-tokenizer.js";
import { selectBackend, BACKEND_ORDER, type BackendChoice } from "./backend.js";
import { detectDataSource, examplesFromBeir, loadTrainingExamples, passageKey } from "./batches.js";
import { readDprJson } from "../data/dpr.js";
import { loadInitialModel, runTokenizer, scratchModel, type InitialModel } from "./init.js";
import { cropExamples, ictExamples } from "./pretrain.js";
import { DPRTrainer, type TrainerData } from "./trainer.js";
import { parseCliArgs, parseNumberFlag, PROCESS_IO, runCommandLine, UsageError, type CliIO } from "../utils/cli-args.js";
import { PRETRAIN_USAGE, TRAIN_USAGE } from "../cli/usage.js";

const WHO = "train-dpr";

/** `--init lexical`: a from-scratch shape with lexically initialised weights (./lexical-init.ts). */
export const LEXICAL_INIT = "lexical";

function num(v: string | undefined, name: string, integer = false): number | undefined {
  return parseNumberFlag(WHO, `--${name}`, v, { integer });
}

/**
 * Runs the training command line (`langchain-dpr train`, or `pretrain` with `defaults.mode` "ict");
 * returns the exit code: 0 done, 1 runtime error, 2 usage error (message and usage on stderr).
 * Never throws.
 */
export async function runTrainCli(argv: string[], defaults: { mode?: string } = {}, io: CliIO = PROCESS_IO): Promise<number> {
  const usage = defaults.mode === "ict" ? PRETRAIN_USAGE : TRAIN_USAGE;
  return runCommandLine({ who: WHO, usage, io }, () => train(argv, defaults, usage, io));
}

async function train(argv: string[], defaults: { mode?: string }, usage: string, io: CliIO): Promise<number> {
  const { values } = parseCliArgs(WHO, {
    args: argv,
    options: {
      data: { type: "string" },
      split: { type: "string", default: "train" },
      mode: { type: "string" },
      "dev-split": { type: "string" },
      "dev-fraction": { type: "string" },
      negatives: { type: "string" },
      out: { type: "string" },
      init: { type: "string" },
      "init-only": { type: "boolean" },
      "idf-power": { type: "string" },
      "lexical-scale": { type: "string" },
      "residual-std": { type: "string" },
      distill: { type: "string" },
      "distill-weight": { type: "string" },
      "distill-temperature": { type: "string" },
      hidden: { type: "string" },
      layers: { type: "string" },
      heads: { type: "string" },
      ffn: { type: "string" },
      "max-len": { type: "string" },
      "vocab-size": { type: "string" },
      shared: { type: "boolean" },
      pooling: { type: "string" },
      "title-join": { type: "string" },
      normalize: { type: "boolean" },
      "query-prompt": { type: "string" },
      "passage-prompt": { type: "string" },
      epochs: { type: "string" },
      "max-steps": { type: "string" },
      batch: { type: "string" },
      lr: { type: "string" },
      "warmup-ratio": { type: "string" },
      "warmup-steps": { type: "string" },
      "weight-decay": { type: "string" },
      clip: { type: "string" },
      temperature: { type: "string" },
      "hard-negatives": { type: "string" },
      dropout: { type: "string" },
      "q-len": { type: "string" },
      "p-len": { type: "string" },
      seed: { type: "string" },
      "grad-cache": { type: "string" },
      "checkpoint-every": { type: "string" },
      resume: { type: "boolean" },
      quantize: { type: "boolean" },
      "select-metric": { type: "string" },
      backend: { type: "string" },
      threads: { type: "string" },
      "max-minutes": { type: "string" },
      "dev-eval": { type: "string" },
      "no-progress": { type: "boolean" },
      "throttle-ms": { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    io.stdout(usage);
    return 0;
  }
  if (!values.data || !values.out) throw new UsageError(`${WHO}: --data and --out are required`);
  const mode = values.mode ?? defaults.mode ?? "supervised";
  if (!["supervised", "ict", "crop"].includes(mode))
    throw new UsageError(`train-dpr: --mode must be supervised, ict or crop, got '${mode}'`);
  const backend = values.backend as BackendChoice | undefined;
  if (backend !== undefined && !BACKEND_ORDER.includes(backend))
    throw new UsageError(`train-dpr: --backend must be one of ${BACKEND_ORDER.join(", ")}, got '${backend}'`);
  if (values["dev-eval"] !== undefined && !["onnx", "backend"].includes(values["dev-eval"]))
    throw new UsageError(`train-dpr: --dev-eval must be onnx or backend, got '${values["dev-eval"]}'`);
  if (values.pooling !== undefined && !["cls", "mean", "max"].includes(values.pooling))
    throw new UsageError(`train-dpr: --pooling must be cls, mean or max, got '${values.pooling}'`);
  if (values["title-join"] !== undefined && !["pair", "space", "none"].includes(values["title-join"]))
    throw new UsageError(`train-dpr: --title-join must be pair, space or none, got '${values["title-join"]}'`);
  const seed = num(values.seed, "seed", true) ?? 42;
  const out = resolve(values.out);

  // Data.
  const source = await detectDataSource(values.data, values.split);
  let corpus: Passage[] | undefined;
  let examples: TrainingExample[] = [];
  let dev: DevSet | undefined;
  const dataInfo: Record<string, unknown> = { path: resolve(values.data), kind: source.kind, mode };
  if (source.kind === "beir") {
    if (mode === "supervised") {
      const ds = await loadBeirDataset(source.dir, source.split);
      corpus = ds.corpus;
      let queries = ds.queries;
      const fraction = num(values["dev-fraction"], "dev-fraction");
      if (fraction !== undefined) {
        if (!(fraction > 0 && fraction < 1)) throw new UsageError(`train-dpr: --dev-fraction must be in (0, 1), got ${fraction}`);
        const { dev: devQueries, rest } = holdOutShare(queries, fraction, seed);
        const nDev = devQueries.length;
        const devIds = new Set(devQueries.map((q) => q.id));
        queries = rest;
        dev = { queries: devQueries, corpus, qrels: new Map([...ds.qrels].filter(([id]) => devIds.has(id))) };
        // The ids let `evaluate --tune-fusion --dev-split <split> --dev-fraction F --dev-seed S` be checked against them.
        dataInfo["dev"] = { heldOutOf: source.split, fraction, seed, queries: nDev, questionIds: devQueries.map((q) => q.id) };
      }
      const built = examplesFromBeir({ ...ds, queries });
      examples = built.examples;
      dataInfo["split"] = source.split;
      dataInfo["trainQueries"] = queries.length;
      if (built.skipped.missingPassages > 0)
        io.stderr(`train-dpr: ${built.skipped.missingPassages} judged passages are missing from the corpus (skipped)\n`);
    } else {
      corpus = await loadBeirCorpus(source.dir);
    }
    if (values["dev-split"]) {
      if (dev) throw new UsageError("train-dpr: give --dev-split or --dev-fraction, not both");
      const d = await loadBeirDataset(source.dir, values["dev-split"]);
      dev = { queries: d.queries, corpus: d.corpus, qrels: d.qrels };
      dataInfo["dev"] = { split: values["dev-split"], queries: d.queries.length };
    }
  } else {
    if (mode !== "supervised") throw new UsageError(`train-dpr: --mode ${mode} needs a BEIR folder (its corpus), got ${source.kind}`);
    if (values["dev-split"] || values["dev-fraction"]) throw new UsageError("train-dpr: --dev-split / --dev-fraction need a BEIR folder");
    examples = await loadTrainingExamples(source);
  }

  if (values.negatives) {
    if (mode !== "supervised") throw new UsageError("train-dpr: --negatives applies to supervised training only");
    const mined = await readDprJson(values.negatives);
    const byQuestion = new Map<string, Passage[]>();
    for (const m of mined) if (m.hardNegatives.length > 0) byQuestion.set(m.question, m.hardNegatives);
    let attached = 0;
    examples = examples.map((e) => {
      const extra = byQuestion.get(e.question);
      if (!extra) return e;
      attached++;
      const own = new Set(e.positives.map(passageKey));
      return { ...e, hardNegatives: [...e.hardNegatives, ...extra.filter((n) => !own.has(passageKey(n)))] };
    });
    if (attached === 0) throw new Error(`train-dpr: no question of ${values.negatives} matches a training question`);
    dataInfo["negatives"] = { path: resolve(values.negatives), examplesWithNegatives: attached };
  }

  // Model.
  let init: InitialModel | undefined;
  let tokenizer: BertTokenizer;
  let config;
  const lexical = values.init === LEXICAL_INIT;
  if (!lexical) {
    for (const flag of ["idf-power", "lexical-scale", "residual-std"] as const)
      if (values[flag] !== undefined) throw new UsageError(`train-dpr: --${flag} applies to --init ${LEXICAL_INIT} only`);
  }
  if (values.init && !lexical) {
    init = await loadInitialModel(values.init);
    tokenizer = init.tokenizer;
    config = init.config;
    dataInfo["init"] = init.source;
  } else {
    const shape = {
      hidden: num(values.hidden, "hidden", true),
      layers: num(values.layers, "layers", true),
      heads: num(values.heads, "heads", true),
      ffn: num(values.ffn, "ffn", true),
    };
    for (const [k, v] of Object.entries(shape))
      if (v === undefined) throw new UsageError(`train-dpr: without --init, give the model shape: --${k} is missing`);
    const maxLen = num(values["max-len"], "max-len", true) ?? 512;
    const texts = corpus
      ? corpus.flatMap((p) => [p.title, p.text])
      : examples.flatMap((e) => [e.question, ...e.positives.flatMap((p) => [p.title, p.text])]);
    const built = scratchModel({
      ...(shape as Record<keyof typeof shape, number>),
      maxLen,
      vocabSize: num(values["vocab-size"], "vocab-size", true) ?? 8192,
      texts,
      dropout: num(values.dropout, "dropout"),
    });
    config = built.config;
    // The vocabulary is saved with the run so that --resume uses exactly the same one.
    tokenizer = await runTokenizer(out, built.tokenizer, values.resume === true);
    dataInfo["init"] =
      `${lexical ? "lexical init" : "scratch"}: hidden ${shape.hidden}, layers ${shape.layers}, heads ${shape.heads}, ffn ` +
      `${shape.ffn}, max-len ${maxLen}, vocab ${config.vocab_size} (buildWordPieceVocab on the ${corpus ? "corpus" : "training texts"})`;
  }

  let train: TrainerData;
  if (mode === "supervised") {
    train = examples;
    dataInfo["examples"] = examples.length;
  } else {
    const c = corpus!;
    train = mode === "ict" ? (epoch: number) => ictExamples(c, { seed, epoch }) : (epoch: number) => cropExamples(c, { seed, epoch });
    if (mode === "ict" && ictExamples(c, { seed, epoch: 0 }).length === 0) {
      throw new Error(
        `train-dpr: --mode ict found no passage with two sentences in ${values.data} (sentences end in . ! or ? ` +
          `followed by a capital or digit; a corpus without punctuation, e.g. NFCorpus's preprocessed text, needs --mode ` +
          `crop)`,
      );
    }
    dataInfo["corpusPassages"] = c.length;
  }

  const { info } = await selectBackend({ prefer: backend, threads: num(values.threads, "threads", true) });
  const qLen = num(values["q-len"], "q-len", true) ?? 64;
  const pLen = num(values["p-len"], "p-len", true) ?? Math.min(256, config.max_position_embeddings);
  const pooling = (values.pooling as "cls" | "mean" | "max" | undefined) ?? init?.settings?.pooling ?? (lexical ? "mean" : undefined);
  // How texts are tokenised and pooled: the starting model's own settings (pooling, normalisation, prompts,
  // titles) unless overridden; the trainer, the lexical calibration and --init-only all use these.
  const textSettings = {
    maxQueryLength: Math.min(qLen, config.max_position_embeddings),
    maxPassageLength: pLen,
    titleJoin: (values["title-join"] as TitleJoin | undefined) ?? init?.settings?.titleJoin,
    pooling,
    normalize: values.normalize ?? init?.settings?.normalize,
    queryPrompt: values["query-prompt"] ?? init?.settings?.queryPrompt,
    passagePrompt: values["passage-prompt"] ?? init?.settings?.passagePrompt,
  };
  if (lexical) {
    if (pooling !== "mean")
      throw new UsageError(`train-dpr: --init ${LEXICAL_INIT} needs --pooling mean (its scores are token averages), got ${pooling}`);
    const calibration = typeof train === "function" ? train(0) : train;
    const built = lexicalInitWeights({
      config,
      tokenizer,
      corpus: corpus ?? examples.flatMap((e) => e.positives),
      idfPower: num(values["idf-power"], "idf-power"),
      scale: num(values["lexical-scale"], "lexical-scale"),
      residualStd: num(values["residual-std"], "residual-std"),
      seed,
      calibration,
      batchSize: num(values.batch, "batch", true),
      temperature: num(values.temperature, "temperature"),
      ...textSettings,
    });
    init = { config, tokenizer, question: built.weights, source: String(dataInfo["init"]) };
    dataInfo["lexicalInit"] = built.info;
    const { scale, scaleFrom, calibrationLoss, chanceLoss } = built.info;
    const loss = calibrationLoss === undefined ? "" : `, in-batch loss ${calibrationLoss.toFixed(3)} vs chance ${chanceLoss!.toFixed(3)}`;
    io.stderr(`train-dpr: lexical init: scale ${scale.toFixed(3)} (${scaleFrom}${loss})\n`);
  }
  if (values["init-only"]) {
    if (!init) throw new UsageError("train-dpr: --init-only needs --init (a model folder or lexical)");
    const dir = join(out, "model");
    const dprConfig = Object.fromEntries(Object.entries(textSettings).filter(([, v]) => v !== undefined));
    await exportModelWeights(dir, {
      config,
      question: init.question,
      passage: init.passage && !values.shared ? init.passage : undefined,
      tokenizer,
      dprConfig,
      quantize: values.quantize,
      metadata: { args: argv, data: dataInfo, initOnly: true },
    });
    io.stderr("train-dpr: --init-only: wrote the starting model without training\n");
    io.stdout(`${dir}\n`);
    return 0;
  }
  let distillation: DistillationParams | undefined;
  if (values.distill !== undefined) {
    if (values.distill !== "bm25") throw new UsageError(`train-dpr: --distill must be bm25, got '${values.distill}'`);
    if (!corpus) throw new UsageError("train-dpr: --distill bm25 needs a BEIR folder (its corpus is the teacher's index)");
    distillation = {
      teacher: await bm25Teacher(corpus),
      weight: num(values["distill-weight"], "distill-weight"),
      temperature: num(values["distill-temperature"], "distill-temperature"),
    };
    dataInfo["distillation"] = { teacher: "bm25", corpusPassages: corpus.length };
  } else {
    for (const flag of ["distill-weight", "distill-temperature"] as const)
      if (values[flag] !== undefined) throw new UsageError(`train-dpr: --${flag} applies with --distill only`);
  }
  const trainer = new DPRTrainer({
    outputDir: out,
    tokenizer,
    init: { config, question: init?.question, passage: init?.passage },
    train,
    dev,
    shared: values.shared,
    epochs: num(values.epochs, "epochs", true),
    maxSteps: num(values["max-steps"], "max-steps", true),
    batchSize: num(values.batch, "batch", true),
    lr: num(values.lr, "lr"),
    warmupRatio: num(values["warmup-ratio"], "warmup-ratio"),
    warmupSteps: num(values["warmup-steps"], "warmup-steps", true),
    weightDecay: num(values["weight-decay"], "weight-decay"),
    maxGradNorm: num(values.clip, "clip"),
    temperature: num(values.temperature, "temperature"),
    hardNegatives: num(values["hard-negatives"], "hard-negatives", true),
    ...textSettings,
    dropout: values.init && !lexical ? num(values.dropout, "dropout") : undefined,
    seed,
    gradCacheChunk: num(values["grad-cache"], "grad-cache", true),
    distillation,
    checkpointEvery: num(values["checkpoint-every"], "checkpoint-every", true),
    selectMetric: values["select-metric"],
    quantize: values.quantize,
    progress: values["no-progress"] ? false : undefined,
    throttleMs: num(values["throttle-ms"], "throttle-ms", true),
    maxMinutes: num(values["max-minutes"], "max-minutes"),
    devEvaluation: values["dev-eval"] as "onnx" | "backend" | undefined,
    metadata: { args: argv, data: dataInfo, backend: info },
  });
  const started = Date.now();
  const result = await trainer.train({ resume: values.resume });
  io.stderr(
    `train-dpr: ${result.steps} updates in ${((Date.now() - started) / 1000).toFixed(1)} s` +
      `${result.resumedFromStep !== undefined ? ` (resumed at update ${result.resumedFromStep})` : ""}; ` +
      `loss ${result.firstLoss.toFixed(4)} → ${result.lastLoss.toFixed(4)}` +
      `${result.bestEpoch !== undefined ? `; best dev epoch ${result.bestEpoch + 1}` : ""}\n`,
  );
  io.stdout(`${result.modelDir}\n`);
  return 0;
}

/**
 * Runs the CLI as a process main and exits with its code (training may leave wasm worker threads
 * that would keep the process alive).
 */
export function mainTrainCli(defaults: { mode?: string } = {}): void {
  void runTrainCli(process.argv.slice(2), defaults).then((code) => process.exit(code));
}

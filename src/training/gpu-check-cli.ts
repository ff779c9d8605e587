/**
 * The GPU check (`langchain-dpr gpu-check`, scripts/gpu-check.ts): what a GPU machine runs to show that training works there and
 * how fast, writing every result to `<out>/report.json` as it goes (a stage that fails is recorded and
 * the next one runs):
 *
 * - `env`: the backend and adapter that load, Node and TF.js versions;
 * - `agree`: {@link checkBackendAgreement} against cpu (forward, gradients, one AdamW update);
 * - `speed`: {@link benchmarkTrainingStep} for each shape × batch;
 * - `e2e`: from scratch on a BEIR folder with the trainer's CLI: BM25 hard negatives, ICT pretraining
 *   on the corpus, fine-tuning on the train split (dev: 10% of it), each for a share of the minutes
 *   given, then test metrics of the best model, evaluated on the training backend.
 */
import { mkdir, readFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { loadBeirDataset } from "../data/beir.js";
import { writeFileAtomic } from "../utils/atomic-file.js";
import { parseCliArgs, parseNumberFlag, PROCESS_IO, runCommandLine, UsageError, type CliIO } from "../utils/cli-args.js";
import { GPU_CHECK_STAGES, GPU_CHECK_USAGE as USAGE } from "../cli/usage.js";
import { BACKEND_ORDER, describeBackend, selectBackend, type BackendChoice } from "./backend.js";
import { BertEncoderTF } from "./bert-tf.js";
import { runTrainCli } from "./cli.js";
import { evaluateEncoders } from "./export.js";
import { BENCH_SHAPES, benchmarkTrainingStep, checkBackendAgreement, type BenchShape, type StepBenchRow } from "./gpu-check.js";
import { loadInitialModel } from "./init.js";
import { runMiningCli } from "./mining-cli.js";
import { ictExamples } from "./pretrain.js";

const WHO = "gpu-check";
const STAGES = GPU_CHECK_STAGES;
type Stage = (typeof STAGES)[number];

/** What report.json holds. */
export interface GpuCheckReport {
  startedAt: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
  backend?: string;
  stages: Partial<Record<Stage, { ok: boolean; seconds: number; error?: string; result?: unknown }>>;
}

function list(text: string | undefined, fallback: string): string[] {
  return (text ?? fallback)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function parseGpuCheckArgs(argv: string[]) {
  const S = { type: "string" } as const;
  return parseCliArgs(WHO, {
    args: argv,
    options: {
      out: S,
      stages: S,
      backend: S,
      shapes: S,
      batches: S,
      "q-len": S,
      "p-len": S,
      steps: S,
      data: S,
      warm: S,
      "grad-cache": S,
      shared: { type: "boolean" },
      "e2e-minutes": S,
      "e2e-shape": S,
      "budget-seconds": S,
      "agree-shapes": S,
      help: { type: "boolean" },
    },
  }).values;
}

/**
 * Runs the check; returns the exit code: 0 every stage run passed, 1 a stage failed (see
 * report.json) or a runtime error, 2 usage error (the message and the usage on stderr). Never throws.
 */
export async function runGpuCheckCli(argv: string[], io: CliIO = PROCESS_IO): Promise<number> {
  return runCommandLine({ who: WHO, usage: USAGE, io }, () => gpuCheck(argv, io));
}

async function gpuCheck(argv: string[], io: CliIO): Promise<number> {
  const values = parseGpuCheckArgs(argv);
  if (values.help) {
    io.stdout(USAGE);
    return 0;
  }
  if (!values.out) throw new UsageError(`${WHO}: --out is required`);
  const stages = list(values.stages, STAGES.join(",")) as Stage[];
  for (const s of stages) if (!STAGES.includes(s)) throw new UsageError(`${WHO}: unknown stage '${s}'; expected ${STAGES.join(", ")}`);
  const backend = (values.backend ?? "webgpu") as BackendChoice;
  if (!BACKEND_ORDER.includes(backend))
    throw new UsageError(`${WHO}: --backend must be one of ${BACKEND_ORDER.join(", ")}, got '${backend}'`);
  const shapes = list(values.shapes, Object.keys(BENCH_SHAPES).join(",")) as BenchShape[];
  for (const s of shapes)
    if (!(s in BENCH_SHAPES)) throw new UsageError(`${WHO}: unknown shape '${s}'; expected ${Object.keys(BENCH_SHAPES).join(", ")}`);
  const batches = list(values.batches, "32,64,128").map((b) => parseNumberFlag(WHO, "--batches", b, { integer: true, min: 1 })!);
  const qLen = parseNumberFlag(WHO, "--q-len", values["q-len"], { integer: true, min: 4 }) ?? 32;
  const pLen = parseNumberFlag(WHO, "--p-len", values["p-len"], { integer: true, min: 4 }) ?? 128;
  const steps = parseNumberFlag(WHO, "--steps", values.steps, { integer: true, min: 1 }) ?? 5;
  const warm = parseNumberFlag(WHO, "--warm", values.warm, { integer: true, min: 0 }) ?? 2;
  const gradCache = parseNumberFlag(WHO, "--grad-cache", values["grad-cache"], { integer: true, min: 1 });
  const minutes = parseNumberFlag(WHO, "--e2e-minutes", values["e2e-minutes"], { min: 0.1 }) ?? 4;
  const budget = parseNumberFlag(WHO, "--budget-seconds", values["budget-seconds"], { min: 1 }) ?? Infinity;
  if (stages.includes("e2e") && !values.data) throw new UsageError(`${WHO}: the e2e stage needs --data <BEIR folder>`);
  if (values["e2e-shape"] !== undefined && !(values["e2e-shape"] in E2E_SHAPES)) {
    throw new UsageError(`${WHO}: --e2e-shape must be one of ${Object.keys(E2E_SHAPES).join(", ")}, got '${values["e2e-shape"]}'`);
  }
  for (const shape of list(values["agree-shapes"], "tiny")) {
    if (!["tiny", "h256"].includes(shape)) throw new UsageError(`${WHO}: --agree-shapes: unknown shape '${shape}'; expected tiny, h256`);
  }
  const out = resolve(values.out);
  await mkdir(out, { recursive: true });
  const started = performance.now();
  const left = () => budget - (performance.now() - started) / 1000;
  const report: GpuCheckReport = {
    startedAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "?",
      memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    stages: {},
  };
  const save = () => writeFileAtomic(join(out, "report.json"), JSON.stringify(report, null, 2) + "\n");
  const log = (line: string) => io.stderr(`${WHO} [${((performance.now() - started) / 1000).toFixed(0)} s]: ${line}\n`);
  let failed = false;
  const stage = async (name: Stage, run: () => Promise<unknown>) => {
    if (!stages.includes(name)) return;
    const t0 = performance.now();
    log(`${name} ...`);
    try {
      const result = await run();
      report.stages[name] = { ok: true, seconds: +((performance.now() - t0) / 1000).toFixed(1), result };
      log(`${name} done in ${report.stages[name]!.seconds} s`);
    } catch (err) {
      failed = true;
      const error = err instanceof Error ? err.message : String(err);
      report.stages[name] = { ok: false, seconds: +((performance.now() - t0) / 1000).toFixed(1), error };
      log(`${name} FAILED: ${error}`);
    }
    await save();
  };

  await stage("env", async () => {
    const { info } = await selectBackend({ prefer: backend, log: false, allowSoftwareAdapter: true });
    report.backend = describeBackend(info);
    log(report.backend);
    return { backend: info, tfjs: tf.version_core };
  });

  await stage("agree", async () => {
    const rows = [];
    const agreeShapes = list(values["agree-shapes"], "tiny");
    const settings = { tiny: [8, 128], h256: [4, 64] } as const;
    for (const shape of agreeShapes) {
      if (!(shape in settings)) throw new Error(`--agree-shapes: unknown shape '${shape}'; expected tiny, h256`);
      const [batch, len] = settings[shape as keyof typeof settings];
      const r = await checkBackendAgreement({ candidate: backend, shape: shape as BenchShape, batch, qLen, pLen: Math.min(pLen, len) });
      log(
        `agree ${shape}: loss ${r.loss.relativeDifference.toExponential(2)}, embeddings ${r.embeddings.toExponential(2)}, ` +
          `gradients ${r.gradients.worst.toExponential(2)} (${r.gradients.worstTensor}), AdamW ` +
          `${r.adamwUpdate.toExponential(2)}: ${r.pass ? "pass" : "FAIL"}`,
      );
      rows.push(r);
    }
    if (rows.some((r) => !r.pass))
      throw Object.assign(new Error(`${backend} differs from cpu by more than ${rows[0]!.tolerance}`), { rows });
    return rows;
  });

  const speedRows: StepBenchRow[] = [];
  await stage("speed", async () => {
    await selectBackend({ prefer: backend, log: false, allowSoftwareAdapter: true });
    const errors: string[] = [];
    for (const shape of shapes) {
      for (const batch of batches) {
        if (left() < 60) {
          errors.push(`${shape} batch ${batch}: skipped (budget)`);
          continue;
        }
        try {
          const row = await benchmarkTrainingStep({
            shape,
            batch,
            qLen,
            pLen,
            steps,
            warm,
            gradCache,
            shared: values.shared,
            maxSeconds: Number.isFinite(budget) ? Math.min(60, left() / 4) : undefined,
          });
          speedRows.push(row);
          log(
            `speed ${shape} batch ${batch}: ${row.msPerStep} ms/update (first ${row.firstStepMs} ms), ${row.questionsPerSec} q/s, ` +
              `${row.tflops} TFLOP/s, ${row.programsPerStep ?? "-"} programs`,
          );
        } catch (err) {
          errors.push(`${shape} batch ${batch}: ${err instanceof Error ? err.message : String(err)}`);
          log(`speed ${shape} batch ${batch} failed: ${errors[errors.length - 1]}`);
        }
        report.stages.speed = { ok: true, seconds: 0, result: { rows: speedRows, errors } };
        await save();
      }
    }
    return { rows: speedRows, errors };
  });

  await stage("e2e", async () => {
    const seconds = Math.min(minutes * 60, left() - 90);
    if (seconds < 10)
      throw new Error(`not enough time left for e2e: ${seconds.toFixed(0)} s of training (budget left ${left().toFixed(0)} s)`);
    const shape = (values["e2e-shape"] ?? "h256") as keyof typeof E2E_SHAPES;
    return runEndToEnd({
      data: resolve(values.data!),
      out: join(out, "e2e"),
      backend,
      seconds,
      speed: speedRows,
      log,
      recipe: E2E_SHAPES[shape],
      shape,
    });
  });

  await save();
  log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s; report: ${join(out, "report.json")}`);
  return failed ? 1 : 0;
}

interface EndToEndParams {
  data: string;
  out: string;
  backend: BackendChoice;
  /** Training seconds in all (pretraining + fine-tuning). */
  seconds: number;
  speed: StepBenchRow[];
  log: (line: string) => void;
  recipe: E2ERecipe;
  shape: BenchShape;
}

interface E2ERecipe {
  hidden: number;
  layers: number;
  heads: number;
  ffn: number;
  maxLen: number;
  vocab: number;
  qLen: number;
  pLen: number;
  ictBatch: number;
  ftBatch: number;
  lr: string;
}

/** The e2e recipes: from scratch, shared encoder, mean pooling (what worked from scratch here). */
const E2E_SHAPES: Record<"h256" | "tiny", E2ERecipe> = {
  h256: {
    hidden: 256,
    layers: 4,
    heads: 4,
    ffn: 1024,
    maxLen: 256,
    vocab: 8192,
    qLen: 32,
    pLen: 256,
    ictBatch: 128,
    ftBatch: 64,
    lr: "5e-4",
  },
  tiny: {
    hidden: 128,
    layers: 2,
    heads: 2,
    ffn: 512,
    maxLen: 128,
    vocab: 4096,
    qLen: 32,
    pLen: 128,
    ictBatch: 32,
    ftBatch: 16,
    lr: "5e-4",
  },
};

/** Updates that fit in `seconds` at the measured speed of the shape (scaled to the batch and lengths), else a guess. */
function updatesIn(seconds: number, batch: number, p: EndToEndParams): number {
  const rows = p.speed.filter((r) => r.shape === p.shape);
  const near = rows.sort((a, b) => Math.abs(a.batch - batch) - Math.abs(b.batch - batch))[0];
  // Work scales with batch × passage length; leave a third of the time to dev evaluations and exports.
  const msPerUpdate = near ? near.msPerStep * (batch / near.batch) * (p.recipe.pLen / near.pLen) : 1000;
  return Math.max(1, Math.floor((seconds * 1000 * 0.66) / msPerUpdate));
}

async function runEndToEnd(p: EndToEndParams): Promise<Record<string, unknown>> {
  const E2E = p.recipe;
  await mkdir(p.out, { recursive: true });
  const common = [
    "--backend",
    p.backend,
    "--no-progress",
    "--seed",
    "42",
    "--q-len",
    String(E2E.qLen),
    "--p-len",
    String(E2E.pLen),
    "--pooling",
    "mean",
    "--shared",
    "--lr",
    E2E.lr,
  ];
  const ds = await loadBeirDataset(p.data, "train");
  const passages = ds.corpus.length;
  // 1. BM25 hard negatives for the train questions (ranks 4-100, 5 per question), in JavaScript.
  const negatives = join(p.out, "bm25-negatives.json");
  const mined = await runMiningCli([
    "--dataset",
    p.data,
    "--split",
    "train",
    "--method",
    "bm25",
    "--skip-top",
    "3",
    "--depth",
    "100",
    "--per-question",
    "5",
    "--out",
    negatives,
    "--quiet",
  ]);
  if (mined !== 0) throw new Error(`mining BM25 negatives failed (exit ${mined})`);
  // 2. Pretraining on the corpus, from scratch, for 45% of the time: ICT, or random crops for a corpus
  //    without sentence punctuation (NFCorpus), where ICT finds no pairs.
  const mode = ictExamples(ds.corpus, { seed: 42, epoch: 0 }).length > 0 ? "ict" : "crop";
  const ictSeconds = p.seconds * 0.45;
  const ictPerEpoch = Math.max(1, Math.floor(passages / E2E.ictBatch));
  const ictEpochs = Math.max(1, Math.floor(updatesIn(ictSeconds, E2E.ictBatch, p) / ictPerEpoch));
  const ict = join(p.out, "ict");
  p.log(
    `e2e: ${mode} pretraining, ${ictEpochs} epochs of ${ictPerEpoch} updates (batch ${E2E.ictBatch}), at most ` +
      `${(ictSeconds / 60).toFixed(1)} min`,
  );
  const t0 = performance.now();
  let code = await runTrainCli([
    "--data",
    p.data,
    "--mode",
    mode,
    "--dev-split",
    "train",
    "--out",
    ict,
    "--hidden",
    String(E2E.hidden),
    "--layers",
    String(E2E.layers),
    "--heads",
    String(E2E.heads),
    "--ffn",
    String(E2E.ffn),
    "--max-len",
    String(E2E.maxLen),
    "--vocab-size",
    String(E2E.vocab),
    "--batch",
    String(E2E.ictBatch),
    "--epochs",
    String(ictEpochs),
    "--max-minutes",
    String(ictSeconds / 60),
    ...common,
  ]);
  if (code !== 0) throw new Error(`${mode} pretraining exited ${code}`);
  const ictMinutes = (performance.now() - t0) / 60000;
  // 3. Fine-tuning on the train questions (10% held out as dev), one BM25 hard negative each.
  const ftSeconds = Math.max(30, p.seconds - ictMinutes * 60);
  const trainPairs = [...ds.qrels.values()].reduce((n, m) => n + [...m.values()].filter((g) => g > 0).length, 0);
  const ftPerEpoch = Math.max(1, Math.floor((trainPairs * 0.9) / E2E.ftBatch));
  const ftEpochs = Math.max(1, Math.floor(updatesIn(ftSeconds, E2E.ftBatch * 1.5, p) / ftPerEpoch));
  const ft = join(p.out, "ft");
  p.log(
    `e2e: fine-tuning, ${ftEpochs} epochs of ~${ftPerEpoch} updates (batch ${E2E.ftBatch} + 1 BM25 negative each), at ` +
      `most ${(ftSeconds / 60).toFixed(1)} min`,
  );
  const t1 = performance.now();
  code = await runTrainCli([
    "--data",
    p.data,
    "--dev-fraction",
    "0.1",
    "--init",
    join(ict, "model"),
    "--out",
    ft,
    "--negatives",
    negatives,
    "--hard-negatives",
    "1",
    "--batch",
    String(E2E.ftBatch),
    "--epochs",
    String(ftEpochs),
    "--max-minutes",
    String(ftSeconds / 60),
    ...common,
  ]);
  if (code !== 0) throw new Error(`fine-tuning exited ${code}`);
  const ftMinutes = (performance.now() - t1) / 60000;
  // 4. Test metrics of the selected model, on the training backend.
  const test = await loadBeirDataset(p.data, "test");
  const model = await loadInitialModel(join(ft, "model"));
  const enc = BertEncoderTF.fromWeights(model.config, model.question, { name: "eval" });
  let metrics: Record<string, number>;
  try {
    metrics = await evaluateEncoders({ question: enc, passage: enc }, model.tokenizer, test, {
      pooling: "mean",
      maxQueryLength: E2E.qLen,
      maxPassageLength: E2E.pLen,
      titleJoin: "pair",
    });
  } finally {
    enc.dispose();
  }
  p.log(`e2e: test nDCG@10 ${metrics["ndcg@10"]?.toFixed(4)}, recall@100 ${metrics["recall@100"]?.toFixed(4)}`);
  const history = async (dir: string) => {
    try {
      return (JSON.parse(await readFile(join(dir, "model", "training.json"), "utf8")) as { history?: unknown }).history;
    } catch {
      return undefined;
    }
  };
  return {
    devHistory: { ict: await history(ict), fineTune: await history(ft) },
    recipe: { ...E2E, pretraining: mode, ictEpochs, ftEpochs, negatives: "BM25 ranks 4-100, 5 mined, 1 used per question" },
    minutes: { ict: +ictMinutes.toFixed(2), fineTune: +ftMinutes.toFixed(2) },
    model: join(ft, "model"),
    test: metrics,
  };
}

/** Runs the CLI as a process main and exits with its code (TF.js backends may keep the process alive). */
export function mainGpuCheckCli(): void {
  void runGpuCheckCli(process.argv.slice(2)).then((code) => process.exit(code));
}

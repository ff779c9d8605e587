/**
 * The evaluation command line, `langchain-dpr evaluate` (src/cli/; scripts/evaluate.ts is a thin
 * wrapper over the same dispatcher): {@link runEvaluateCli} parses arguments with clear errors,
 * evaluates, and writes the report, JSON, SVG plots (when the optional vega packages are installed)
 * and TREC runs; with `--tune-fusion`, also fusion-tuning.json and, with `--write-fusion`, the
 * chosen fusion into the DPR model's dpr_config.json.
 *
 * @module
 */
import { access, constants, mkdir, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";

import { writeFileAtomic } from "../utils/atomic-file.js";
import { fusionToJson, writeModelFusion } from "../models/fusion-config.js";
import { parseTuningMetric } from "./fusion-tuning.js";
import { tunedModelFusion, type FusionTuningOptions } from "./tune-hybrid.js";
import {
  parseMethod,
  RetrievalEvaluator,
  type EvaluationProgress,
  type EvaluationReport,
  type HybridFusion,
  type RetrievalEvaluatorParams,
} from "./evaluate.js";
import { latencySpec, recallCurveSpec, renderSvg } from "./plots.js";
import { DEFAULT_REPORT_FILES, renderMarkdownReport, reportToJson } from "./report.js";
import { writeTrecRun } from "./trec.js";
import { parseCliArgs, parseNumberFlag, runCommandLine, UsageError, type CliIO } from "../utils/cli-args.js";
import { installCommand } from "../utils/optional-peer.js";
import { describeFusion } from "../retrievers/fusion.js";
import { EVALUATE_USAGE as USAGE } from "../cli/usage.js";

const WHO = "evaluate";

/** Usage text of the evaluation CLI (`langchain-dpr evaluate`). */
export const EVALUATE_USAGE = USAGE;

/** Parsed command line. */
export interface EvaluateCliOptions {
  evaluator: RetrievalEvaluatorParams;
  outDir: string;
  trecRuns: boolean;
  quiet: boolean;
  /** `--write-fusion`: store the tuned fusion in the DPR model's dpr_config.json. */
  writeFusion: boolean;
}

/** File name of the fusion tuning record in the output folder. */
export const FUSION_TUNING_FILE = "fusion-tuning.json";

function positiveInt(text: string | undefined, flag: string): number | undefined {
  return parseNumberFlag(WHO, flag, text, { integer: true, min: 1 });
}

/**
 * Parses the evaluation CLI's arguments. Throws a {@link UsageError} naming the bad flag; returns
 * null for `--help`.
 */
export function parseEvaluateArgs(argv: string[]): EvaluateCliOptions | null {
  const { values } = parseCliArgs(WHO, {
    args: argv,
    options: {
      dataset: { type: "string" },
      split: { type: "string" },
      dpr: { type: "string" },
      "cross-encoder": { type: "string" },
      methods: { type: "string" },
      index: { type: "string" },
      "max-query-length": { type: "string" },
      "faiss-threads": { type: "string" },
      "max-passage-length": { type: "string" },
      hybrid: { type: "string" },
      alpha: { type: "string" },
      "rrf-k": { type: "string" },
      depth: { type: "string" },
      "rerank-depth": { type: "string" },
      "max-queries": { type: "string" },
      out: { type: "string" },
      "trec-runs": { type: "boolean" },
      "tune-fusion": { type: "boolean" },
      "dev-split": { type: "string" },
      "dev-fraction": { type: "string" },
      "dev-seed": { type: "string" },
      "tune-metric": { type: "string" },
      "write-fusion": { type: "boolean" },
      quiet: { type: "boolean" },
      help: { type: "boolean" },
    },
  });
  if (values.help) return null;
  if (!values.dataset) throw new UsageError(`${WHO}: --dataset <BEIR folder> is required`);
  const split = values.split ?? "test";
  const hybrid = values.hybrid;
  if (hybrid !== undefined && hybrid !== "rrf" && hybrid !== "linear") {
    throw new UsageError(`${WHO}: --hybrid must be rrf or linear, got "${hybrid}"`);
  }
  let alpha: number | undefined;
  if (values.alpha !== undefined) {
    alpha = Number(values.alpha);
    if (values.alpha.trim() === "" || !Number.isFinite(alpha) || alpha < 0 || alpha > 1)
      throw new UsageError(`${WHO}: --alpha must be a number in [0, 1], got "${values.alpha}"`);
    if (hybrid !== "linear") throw new UsageError(`${WHO}: --alpha only applies to --hybrid linear`);
  }
  let rrfK: number | undefined;
  if (values["rrf-k"] !== undefined) {
    rrfK = Number(values["rrf-k"]);
    if (values["rrf-k"].trim() === "" || !Number.isFinite(rrfK) || rrfK < 0)
      throw new UsageError(`${WHO}: --rrf-k must be a number ≥ 0, got "${values["rrf-k"]}"`);
  }
  const methods = values.methods
    ?.split(",")
    .filter((m) => m.trim() !== "")
    .map((m) => {
      try {
        return parseMethod(m);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    });
  if (methods !== undefined && methods.length === 0) throw new UsageError(`${WHO}: --methods lists no method`);
  const depth = positiveInt(values.depth, "--depth");
  const rerankDepth = positiveInt(values["rerank-depth"], "--rerank-depth");
  const maxQueries = positiveInt(values["max-queries"], "--max-queries");
  const tuneFusion = parseTuningFlags(values, split);
  const name = basename(resolve(values.dataset));
  return {
    evaluator: {
      dataset: values.dataset,
      split,
      dprModelPath: values.dpr,
      maxQueryLength: positiveInt(values["max-query-length"], "--max-query-length"),
      maxPassageLength: positiveInt(values["max-passage-length"], "--max-passage-length"),
      crossEncoderPath: values["cross-encoder"],
      methods,
      indexFactory: values.index,
      faissThreads: positiveInt(values["faiss-threads"], "--faiss-threads"),
      hybrid: hybrid as HybridFusion | undefined,
      alpha,
      rrfK,
      tuneFusion,
      depth,
      rerankDepth: rerankDepth ?? (depth !== undefined ? Math.min(100, depth) : undefined),
      maxQueries,
    },
    outDir: values.out ?? join("eval-results", `${name}-${split}`),
    trecRuns: values["trec-runs"] ?? false,
    quiet: values.quiet ?? false,
    writeFusion: values["write-fusion"] ?? false,
  };
}

/** The fusion-tuning flags; undefined without --tune-fusion. Throws a {@link UsageError} naming the flags. */
function parseTuningFlags(values: Record<string, string | boolean | undefined>, split: string): FusionTuningOptions | undefined {
  const str = (flag: string) => values[flag] as string | undefined;
  const tuningOnly = ["dev-split", "dev-fraction", "dev-seed", "tune-metric", "write-fusion"].filter((f) => values[f] !== undefined);
  if (!values["tune-fusion"]) {
    if (tuningOnly.length > 0) {
      throw new UsageError(
        `${WHO}: ${tuningOnly.map((f) => `--${f}`).join(", ")} only appl${tuningOnly.length === 1 ? "ies" : "y"} with --tune-fusion`,
      );
    }
    return undefined;
  }
  const given = ["hybrid", "alpha", "rrf-k"].filter((f) => values[f] !== undefined);
  if (given.length > 0) {
    throw new UsageError(
      `${WHO}: --tune-fusion chooses the hybrid fusion itself; leave out ${given.map((f) => `--${f}`).join(", ")} ` +
        `(or drop --tune-fusion to run the fusion you name)`,
    );
  }
  if (!values.dpr) throw new UsageError(`${WHO}: --tune-fusion needs a DPR model (--dpr <model dir>)`);
  const devSplit = str("dev-split");
  const fractionText = str("dev-fraction");
  if (devSplit === undefined && fractionText === undefined) {
    throw new UsageError(
      `${WHO}: --tune-fusion needs --dev-split NAME (tune on another qrels split, e.g. dev), --dev-fraction F (hold F of ` +
        `the --split questions out of the test figures and tune on them), or both (the share F of split NAME that ` +
        `train --dev-fraction F --seed S held out; --dev-seed S, default 42)`,
    );
  }
  if (devSplit !== undefined && fractionText === undefined && devSplit === split) {
    throw new UsageError(
      `${WHO}: --dev-split ${devSplit} is the evaluated --split: tuning on the test questions inflates the test figures; ` +
        `name another split, or use --dev-fraction to hold questions out of it`,
    );
  }
  let devFraction: number | undefined;
  if (fractionText !== undefined) {
    devFraction = Number(fractionText);
    if (fractionText.trim() === "" || !(devFraction > 0 && devFraction < 1)) {
      throw new UsageError(`${WHO}: --dev-fraction must be a number in (0, 1), e.g. 0.2, got "${fractionText}"`);
    }
  }
  const seed = parseNumberFlag(WHO, "--dev-seed", str("dev-seed"), { integer: true, min: 0 });
  if (seed !== undefined && devFraction === undefined) throw new UsageError(`${WHO}: --dev-seed only applies with --dev-fraction`);
  const metric = str("tune-metric");
  if (metric !== undefined) {
    try {
      parseTuningMetric(metric);
    } catch (err) {
      throw new UsageError(`${WHO}: --tune-metric: ${(err as Error).message.replace(/^tuneFusion: /, "")}`);
    }
  }
  return { devSplit, devFraction, seed, metric };
}

/** Paths written by {@link writeEvaluationOutputs}. */
export interface WrittenOutputs {
  markdown: string;
  json: string;
  /** The recall@k plot; undefined when the plots were skipped. */
  recallSvg?: string;
  /** The latency plot; undefined when the plots were skipped. */
  latencySvg?: string;
  /** fusion-tuning.json; undefined when the run did not tune the fusion. */
  fusionTuning?: string;
  trecRuns: string[];
  /** The Markdown written to {@link markdown}. */
  markdownText: string;
  /** Why the SVG plots were not drawn (the optional vega packages are missing); undefined when they were. */
  plotsSkipped?: string;
}

/** Options of {@link writeEvaluationOutputs}. */
export interface WriteEvaluationOptions {
  /** Also write one TREC run per method. Default false. */
  trecRuns?: boolean;
  /**
   * Draw the SVG plots. Default: when the optional `plots` packages (vega, vega-lite) are installed;
   * without them the report is written without its plots and says so.
   */
  plots?: boolean;
  /** Where the tuned fusion was stored (`--write-fusion`), recorded in fusion-tuning.json. */
  fusionStoredIn?: string;
}

/**
 * Writes the report (report.md), the JSON (results.json), the two SVG plots (when the optional vega
 * packages are installed), fusion-tuning.json (when the run tuned the fusion: dev questions, the
 * whole grid, the best setting and its dpr_config.json entry) and, optionally, one TREC run per
 * method into `outDir` (created if needed). Every file is written atomically.
 */
export async function writeEvaluationOutputs(
  report: EvaluationReport,
  outDir: string,
  options: WriteEvaluationOptions = {},
): Promise<WrittenOutputs> {
  try {
    await mkdir(outDir, { recursive: true });
  } catch (err) {
    throw new Error(`${WHO}: cannot create output folder ${outDir}: ${(err as Error).message}`);
  }
  const f = DEFAULT_REPORT_FILES;
  const install = installCommand("plots");
  const plots = options.plots ?? install === undefined;
  const plotsSkipped = plots
    ? undefined
    : `SVG plots not drawn: ` +
      `${install === undefined ? "turned off" : `the optional packages vega and vega-lite are not installed (${install})`}`;
  const markdownText = renderMarkdownReport(report, plots ? f : null, plotsSkipped && `${plotsSkipped}.`);
  const out: WrittenOutputs = { markdown: join(outDir, f.markdown), json: join(outDir, f.json), trecRuns: [], markdownText, plotsSkipped };
  if (plots) {
    out.recallSvg = join(outDir, f.recallSvg);
    out.latencySvg = join(outDir, f.latencySvg);
    const [recallSvg, latencySvg] = await Promise.all([renderSvg(recallCurveSpec(report)), renderSvg(latencySpec(report))]);
    await writeFileAtomic(out.recallSvg, recallSvg);
    await writeFileAtomic(out.latencySvg, latencySvg);
  }
  await writeFileAtomic(out.json, JSON.stringify(reportToJson(report), null, 2) + "\n");
  if (report.fusionTuning) {
    out.fusionTuning = join(outDir, FUSION_TUNING_FILE);
    const record = {
      format: "langchain-dpr-fusion-tuning",
      version: 1,
      ...report.fusionTuning,
      dprConfigFusion: fusionToJson(tunedModelFusion(report.fusionTuning)),
      storedIn: options.fusionStoredIn ?? null,
    };
    await writeFileAtomic(out.fusionTuning, JSON.stringify(record, null, 2) + "\n");
  }
  await writeFileAtomic(out.markdown, markdownText);
  if (options.trecRuns) {
    for (const [method, run] of report.runs) {
      const path = join(outDir, `${method}.trec`);
      await writeTrecRun(path, run, method.replace(/\+/g, "_"));
      out.trecRuns.push(path);
    }
  }
  return out;
}

/** Where the CLI writes. */
export type CliStreams = CliIO;

const PROCESS_STREAMS: CliStreams = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

function progressPrinter(stderr: (t: string) => void): (e: EvaluationProgress) => void {
  let lastPrint = 0;
  return (e) => {
    const now = performance.now();
    // Encoding progress at most twice a second; every other phase as it comes.
    if (e.phase === "encode-corpus" && e.done < e.total && now - lastPrint < 500) return;
    lastPrint = now;
    stderr(`[${e.phase}] ${e.message}\n`);
  };
}

/**
 * Runs the CLI: parses `argv`, evaluates, writes the outputs, prints the report to stdout and
 * progress to stderr. Returns the exit code: 0 ok; 1 runtime error (a path that is not a folder, a
 * model that does not load, an unknown split; the message on stderr); 2 usage error (a bad flag or
 * a combination the evaluator rejects; the message and the usage on stderr). Never throws.
 */
export async function runEvaluateCli(argv: string[], streams: CliStreams = PROCESS_STREAMS): Promise<number> {
  return runCommandLine({ who: WHO, usage: EVALUATE_USAGE, io: streams }, async () => {
    const options = parseEvaluateArgs(argv);
    if (options === null) {
      streams.stdout(EVALUATE_USAGE);
      return 0;
    }
    let evaluator: RetrievalEvaluator;
    try {
      // The evaluator's constructor only checks settings (methods against the models given, depths).
      evaluator = new RetrievalEvaluator({ ...options.evaluator, onProgress: options.quiet ? undefined : progressPrinter(streams.stderr) });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    try {
      for (const [flag, path] of [
        ["--dataset", options.evaluator.dataset],
        ["--dpr", options.evaluator.dprModelPath],
        ["--cross-encoder", options.evaluator.crossEncoderPath],
      ] as const) {
        if (path === undefined) continue;
        const s = await stat(path).catch(() => undefined);
        if (!s?.isDirectory()) throw new Error(`${WHO}: ${flag} ${path} is not a folder`);
      }
      const dprDir = options.evaluator.dprModelPath;
      if (options.writeFusion && dprDir !== undefined) {
        // Fail before the run, not after it, when the model folder cannot take the result.
        await access(dprDir, constants.W_OK).catch(() => {
          throw new Error(`${WHO}: --write-fusion: the model folder ${dprDir} is not writable; copy the model or leave out --write-fusion`);
        });
      }
      const report = await evaluator.evaluate();
      let storedIn: string | undefined;
      let storeError: unknown;
      if (options.writeFusion && report.fusionTuning && dprDir !== undefined) {
        try {
          storedIn = await writeModelFusion(dprDir, tunedModelFusion(report.fusionTuning));
        } catch (err) {
          storeError = err;
        }
      }
      const written = await writeEvaluationOutputs(report, options.outDir, { trecRuns: options.trecRuns, fusionStoredIn: storedIn });
      streams.stdout(written.markdownText);
      if (written.plotsSkipped) streams.stderr(`${WHO}: ${written.plotsSkipped}; the report is written without them\n`);
      const files = [
        written.markdown,
        written.json,
        written.recallSvg,
        written.latencySvg,
        written.fusionTuning,
        ...written.trecRuns,
      ].filter((f) => f !== undefined);
      streams.stderr(`wrote ${files.join(", ")}\n`);
      if (storeError !== undefined) throw storeError;
      const t = report.fusionTuning;
      if (t && storedIn) streams.stderr(`stored the tuned fusion (${describeFusion(t.best.setting)}) in ${storedIn}\n`);
      else if (t)
        streams.stderr(`the tuned fusion was not stored with the model (add --write-fusion to store it in its dpr_config.json)\n`);
      return 0;
    } finally {
      await evaluator.dispose();
    }
  });
}

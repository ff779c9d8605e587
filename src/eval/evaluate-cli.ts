/**
 * The evaluation command line (scripts/evaluate.ts is a thin wrapper over {@link runEvaluateCli}):
 * argument parsing with clear errors, and writing the report, JSON, SVG plots and TREC runs.
 *
 * @module
 */
import { mkdir, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";

import { writeFileAtomic } from "../utils/atomic-file.js";
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
import { parseNumberFlag } from "../utils/cli-args.js";

const WHO = "evaluate";

/** Usage text of the evaluation CLI. */
export const EVALUATE_USAGE = `usage: npx tsx scripts/evaluate.ts --dataset <BEIR folder> [options]

  --dataset DIR          BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)   (required)
  --split NAME           qrels split (default test)
  --dpr DIR              DPR model folder: enables dpr, hybrid (and their +rerank variants)
  --cross-encoder DIR    cross-encoder folder: enables the +rerank methods
  --methods LIST         comma-separated: bm25,dpr,hybrid,bm25+rerank,dpr+rerank,hybrid+rerank
                         (default: every method the given models allow)
  --max-query-length N   question token cap (default: the model's dpr_config.json)
  --max-passage-length N passage token cap (default: the model's dpr_config.json)
  --index FACTORY        faiss index_factory string (default Flat)
  --faiss-threads N      OpenMP threads for faiss (default: one per core)
  --hybrid rrf|linear    hybrid fusion (default rrf)
  --alpha X              linear fusion weight of the dense side, in [0, 1] (default 0.5)
  --rrf-k N              RRF constant (default 60)
  --depth N              results per query and first stage (default 100)
  --rerank-depth N       candidates the cross-encoder rescores (default min(100, depth))
  --max-queries N        evaluate only the first N judged queries
  --out DIR              output folder (default eval-results/<dataset>-<split>)
  --trec-runs            also write one TREC run file per method (<method>.trec)
  --quiet                no progress on stderr
  --help                 this text
`;

/** Parsed command line. */
export interface EvaluateCliOptions {
  evaluator: RetrievalEvaluatorParams;
  outDir: string;
  trecRuns: boolean;
  quiet: boolean;
}

function positiveInt(text: string | undefined, flag: string): number | undefined {
  return parseNumberFlag(WHO, flag, text, { integer: true, min: 1 });
}

/**
 * Parses the evaluation CLI's arguments. Throws an Error naming the bad flag; returns null for
 * `--help`.
 */
export function parseEvaluateArgs(argv: string[]): EvaluateCliOptions | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
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
        quiet: { type: "boolean" },
        help: { type: "boolean" },
      },
    }));
  } catch (err) {
    throw new Error(`${WHO}: ${(err as Error).message.replace(/\. To specify a positional argument.*$/s, "")}`);
  }
  if (values.help) return null;
  if (!values.dataset) throw new Error(`${WHO}: --dataset <BEIR folder> is required`);
  const split = values.split ?? "test";
  const hybrid = values.hybrid ?? "rrf";
  if (hybrid !== "rrf" && hybrid !== "linear") throw new Error(`${WHO}: --hybrid must be rrf or linear, got "${hybrid}"`);
  let alpha: number | undefined;
  if (values.alpha !== undefined) {
    alpha = Number(values.alpha);
    if (values.alpha.trim() === "" || !Number.isFinite(alpha) || alpha < 0 || alpha > 1) throw new Error(`${WHO}: --alpha must be a number in [0, 1], got "${values.alpha}"`);
    if (hybrid !== "linear") throw new Error(`${WHO}: --alpha only applies to --hybrid linear`);
  }
  let rrfK: number | undefined;
  if (values["rrf-k"] !== undefined) {
    rrfK = Number(values["rrf-k"]);
    if (values["rrf-k"].trim() === "" || !Number.isFinite(rrfK) || rrfK < 0) throw new Error(`${WHO}: --rrf-k must be a number ≥ 0, got "${values["rrf-k"]}"`);
  }
  const methods = values.methods
    ?.split(",")
    .filter((m) => m.trim() !== "")
    .map(parseMethod);
  if (methods !== undefined && methods.length === 0) throw new Error(`${WHO}: --methods lists no method`);
  const depth = positiveInt(values.depth, "--depth");
  const rerankDepth = positiveInt(values["rerank-depth"], "--rerank-depth");
  const maxQueries = positiveInt(values["max-queries"], "--max-queries");
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
      hybrid: hybrid as HybridFusion,
      alpha,
      rrfK,
      depth,
      rerankDepth: rerankDepth ?? (depth !== undefined ? Math.min(100, depth) : undefined),
      maxQueries,
    },
    outDir: values.out ?? join("eval-results", `${name}-${split}`),
    trecRuns: values["trec-runs"] ?? false,
    quiet: values.quiet ?? false,
  };
}

/** Paths written by {@link writeEvaluationOutputs}. */
export interface WrittenOutputs {
  markdown: string;
  json: string;
  recallSvg: string;
  latencySvg: string;
  trecRuns: string[];
}

/**
 * Writes the report (report.md), the JSON (results.json), the two SVG plots and, optionally, one
 * TREC run per method into `outDir` (created if needed). Every file is written atomically.
 */
export async function writeEvaluationOutputs(report: EvaluationReport, outDir: string, options: { trecRuns?: boolean } = {}): Promise<WrittenOutputs> {
  try {
    await mkdir(outDir, { recursive: true });
  } catch (err) {
    throw new Error(`${WHO}: cannot create output folder ${outDir}: ${(err as Error).message}`);
  }
  const f = DEFAULT_REPORT_FILES;
  const out: WrittenOutputs = {
    markdown: join(outDir, f.markdown),
    json: join(outDir, f.json),
    recallSvg: join(outDir, f.recallSvg),
    latencySvg: join(outDir, f.latencySvg),
    trecRuns: [],
  };
  const [recallSvg, latencySvg] = await Promise.all([renderSvg(recallCurveSpec(report)), renderSvg(latencySpec(report))]);
  await writeFileAtomic(out.recallSvg, recallSvg);
  await writeFileAtomic(out.latencySvg, latencySvg);
  await writeFileAtomic(out.json, JSON.stringify(reportToJson(report), null, 2) + "\n");
  await writeFileAtomic(out.markdown, renderMarkdownReport(report));
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
export interface CliStreams {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

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
 * progress to stderr. Returns the exit code (0 ok, 1 failure, 2 bad arguments); never throws.
 */
export async function runEvaluateCli(argv: string[], streams: CliStreams = PROCESS_STREAMS): Promise<number> {
  let options: EvaluateCliOptions | null;
  try {
    options = parseEvaluateArgs(argv);
  } catch (err) {
    streams.stderr(`${(err as Error).message}\n\n${EVALUATE_USAGE}`);
    return 2;
  }
  if (options === null) {
    streams.stdout(EVALUATE_USAGE);
    return 0;
  }
  let evaluator: RetrievalEvaluator;
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
    evaluator = new RetrievalEvaluator({ ...options.evaluator, onProgress: options.quiet ? undefined : progressPrinter(streams.stderr) });
  } catch (err) {
    streams.stderr(`${(err as Error).message}\n\n${EVALUATE_USAGE}`);
    return 2;
  }
  try {
    const report = await evaluator.evaluate();
    const written = await writeEvaluationOutputs(report, options.outDir, { trecRuns: options.trecRuns });
    streams.stdout(renderMarkdownReport(report));
    streams.stderr(`wrote ${[written.markdown, written.json, written.recallSvg, written.latencySvg, ...written.trecRuns].join(", ")}\n`);
    return 0;
  } catch (err) {
    const msg = (err as Error).message;
    streams.stderr(`${msg.startsWith(`${WHO}:`) ? "" : `${WHO}: `}${msg}\n`);
    return 1;
  } finally {
    await evaluator.dispose();
  }
}

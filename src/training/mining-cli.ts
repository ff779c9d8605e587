/**
 * The hard-negative mining command line (scripts/mine-hard-negatives.ts is a thin wrapper over
 * {@link runMiningCli}).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { writeFileAtomic } from "../utils/atomic-file.js";
import { loadBeirDataset } from "../data/beir.js";
import { HardNegativeMiner, writeMinedDprJson, type HardNegativeMinerParams, type MiningStats } from "./mining.js";
import { parseNumberFlag } from "../utils/cli-args.js";

const WHO = "mine-hard-negatives";

/** Usage text of the mining CLI. */
export const MINING_USAGE = `usage: npx tsx scripts/mine-hard-negatives.ts --dataset <BEIR folder> --out <file.json> [options]

  --dataset DIR        BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)   (required)
  --split NAME         qrels split whose questions are mined (default train)
  --out FILE           DPR JSON to write (required)
  --method bm25|dense  first-stage retriever (default bm25)
  --model DIR          DPR model folder (required for --method dense)
  --skip-top N         never take ranks 1..N (default 0)
  --depth D            deepest rank considered (default 100)
  --margin M           drop candidates within M of (or above) the best positive's score:
                       relative for bm25 (score >= s+ * (1 - M) dropped, M in [0, 1)),
                       absolute for dense (score >= s+ - M dropped)
  --per-question N     hard negatives per question (default 10)
  --sample top|random  best-ranked survivors, or a seeded random sample of them (default top)
  --seed S             seed of --sample random (default 42)
  --batch-size N       dense: texts per onnxruntime batch (default 64)
  --stats FILE         also write the run's counts and timings as JSON
  --quiet              no progress on stderr
  --help               this text
`;

/** Parsed command line. */
export interface MiningCliOptions {
  dataset: string;
  split: string;
  out: string;
  statsPath?: string;
  quiet: boolean;
  miner: HardNegativeMinerParams;
}

function intArg(text: string | undefined, flag: string, min: number): number | undefined {
  return parseNumberFlag(WHO, flag, text, { integer: true, min });
}

/** Parses the mining CLI's arguments; null for `--help`. Throws an Error naming the bad flag. */
export function parseMiningArgs(argv: string[]): MiningCliOptions | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        dataset: { type: "string" },
        split: { type: "string" },
        out: { type: "string" },
        method: { type: "string" },
        model: { type: "string" },
        "skip-top": { type: "string" },
        depth: { type: "string" },
        margin: { type: "string" },
        "per-question": { type: "string" },
        sample: { type: "string" },
        seed: { type: "string" },
        "batch-size": { type: "string" },
        stats: { type: "string" },
        quiet: { type: "boolean" },
        help: { type: "boolean" },
      },
    }));
  } catch (err) {
    throw new Error(`${WHO}: ${(err as Error).message.replace(/\. To specify a positional argument.*$/s, "")}`);
  }
  if (values.help) return null;
  if (!values.dataset) throw new Error(`${WHO}: --dataset <BEIR folder> is required`);
  if (!values.out) throw new Error(`${WHO}: --out <file.json> is required`);
  const method = values.method ?? "bm25";
  if (method !== "bm25" && method !== "dense") throw new Error(`${WHO}: --method must be bm25 or dense, got "${method}"`);
  if (method === "dense" && !values.model) throw new Error(`${WHO}: --method dense needs --model <DPR model folder>`);
  if (method === "bm25" && values.model) throw new Error(`${WHO}: --model only applies to --method dense`);
  let margin: number | undefined;
  if (values.margin !== undefined) {
    margin = Number(values.margin);
    if (values.margin.trim() === "" || !Number.isFinite(margin) || margin < 0) throw new Error(`${WHO}: --margin must be a number >= 0, got "${values.margin}"`);
  }
  const sample = values.sample ?? "top";
  if (sample !== "top" && sample !== "random") throw new Error(`${WHO}: --sample must be top or random, got "${sample}"`);
  return {
    dataset: values.dataset,
    split: values.split ?? "train",
    out: values.out,
    statsPath: values.stats,
    quiet: values.quiet ?? false,
    miner: {
      method,
      modelPath: values.model,
      skipTop: intArg(values["skip-top"], "--skip-top", 0),
      depth: intArg(values.depth, "--depth", 1),
      margin,
      perQuestion: intArg(values["per-question"], "--per-question", 1),
      sample,
      seed: intArg(values.seed, "--seed", 0),
      batchSize: intArg(values["batch-size"], "--batch-size", 1),
    },
  };
}

/** One line summary of a mining run. */
export function formatMiningStats(stats: MiningStats): string {
  return (
    `${stats.method}: ${stats.questions} questions, ${stats.negatives} negatives ` +
    `(${stats.questionsShort} short, ${stats.questionsEmpty} empty; dropped ${stats.droppedPositives} positives, ` +
    `${stats.droppedDuplicates} duplicates, ${stats.droppedByMargin} by margin); ` +
    `index ${stats.indexSeconds.toFixed(2)} s, search ${stats.searchSeconds.toFixed(2)} s ` +
    `(${stats.queriesPerSecond.toFixed(0)} q/s), select ${stats.selectSeconds.toFixed(2)} s`
  );
}

/** Runs the mining CLI; returns the process exit code (0 ok, 1 failure, 2 bad arguments). */
export async function runMiningCli(argv: string[]): Promise<number> {
  let options: MiningCliOptions | null;
  try {
    options = parseMiningArgs(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${MINING_USAGE}`);
    return 2;
  }
  if (options === null) {
    process.stdout.write(MINING_USAGE);
    return 0;
  }
  const log = options.quiet ? undefined : (line: string) => process.stderr.write(`${line}\n`);
  try {
    const t0 = performance.now();
    const dataset = await loadBeirDataset(options.dataset, options.split);
    const loadSeconds = (performance.now() - t0) / 1000;
    log?.(`${WHO}: loaded ${dataset.corpus.length} passages and ${dataset.queries.length} ${options.split} questions in ${loadSeconds.toFixed(2)} s`);
    const miner = new HardNegativeMiner({ ...options.miner, log });
    const { examples, stats } = await miner.mine(dataset);
    const t1 = performance.now();
    await writeMinedDprJson(options.out, examples);
    const writeSeconds = (performance.now() - t1) / 1000;
    const totalSeconds = (performance.now() - t0) / 1000;
    log?.(`${WHO}: ${formatMiningStats(stats)}; wrote ${options.out} in ${writeSeconds.toFixed(2)} s; total ${totalSeconds.toFixed(2)} s`);
    if (options.statsPath) {
      const record = { dataset: options.dataset, split: options.split, out: options.out, rules: miner.rules, ...stats, loadSeconds, writeSeconds, totalSeconds };
      await writeFileAtomic(options.statsPath, JSON.stringify(record, null, 2) + "\n");
    }
    return 0;
  } catch (err) {
    process.stderr.write(`${WHO}: ${(err as Error).message}\n`);
    return 1;
  }
}

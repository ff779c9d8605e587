/**
 * The hard-negative mining command line, `langchain-dpr mine` (src/cli/; scripts/mine-hard-negatives.ts
 * is a thin wrapper over the same dispatcher): {@link runMiningCli}.
 *
 * @module
 */
import { writeFileAtomic } from "../utils/atomic-file.js";
import { loadBeirDataset } from "../data/beir.js";
import { HardNegativeMiner, writeMinedDprJson, type HardNegativeMinerParams, type MiningStats } from "./mining.js";
import { parseCliArgs, parseNumberFlag, PROCESS_IO, runCommandLine, UsageError, type CliIO } from "../utils/cli-args.js";
import { MINE_USAGE } from "../cli/usage.js";

const WHO = "mine-hard-negatives";

/** Usage text of the mining CLI (`langchain-dpr mine`). */
export const MINING_USAGE = MINE_USAGE;

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

/** Parses the mining CLI's arguments; null for `--help`. Throws a {@link UsageError} naming the bad flag. */
export function parseMiningArgs(argv: string[]): MiningCliOptions | null {
  const { values } = parseCliArgs(WHO, {
    args: argv,
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
  });
  if (values.help) return null;
  if (!values.dataset) throw new UsageError(`${WHO}: --dataset <BEIR folder> is required`);
  if (!values.out) throw new UsageError(`${WHO}: --out <file.json> is required`);
  const method = values.method ?? "bm25";
  if (method !== "bm25" && method !== "dense") throw new UsageError(`${WHO}: --method must be bm25 or dense, got "${method}"`);
  if (method === "dense" && !values.model) throw new UsageError(`${WHO}: --method dense needs --model <DPR model folder>`);
  if (method === "bm25" && values.model) throw new UsageError(`${WHO}: --model only applies to --method dense`);
  let margin: number | undefined;
  if (values.margin !== undefined) {
    margin = Number(values.margin);
    if (values.margin.trim() === "" || !Number.isFinite(margin) || margin < 0)
      throw new UsageError(`${WHO}: --margin must be a number >= 0, got "${values.margin}"`);
  }
  const sample = values.sample ?? "top";
  if (sample !== "top" && sample !== "random") throw new UsageError(`${WHO}: --sample must be top or random, got "${sample}"`);
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

/**
 * Runs the mining CLI; returns the exit code (0 ok, 1 runtime error, 2 usage error: the message and
 * the usage on stderr). Never throws.
 */
export async function runMiningCli(argv: string[], io: CliIO = PROCESS_IO): Promise<number> {
  return runCommandLine({ who: WHO, usage: MINING_USAGE, io }, async () => {
    const options = parseMiningArgs(argv);
    if (options === null) {
      io.stdout(MINING_USAGE);
      return 0;
    }
    const log = options.quiet ? undefined : (line: string) => io.stderr(`${line}\n`);
    const t0 = performance.now();
    const dataset = await loadBeirDataset(options.dataset, options.split);
    const loadSeconds = (performance.now() - t0) / 1000;
    log?.(
      `${WHO}: loaded ${dataset.corpus.length} passages and ${dataset.queries.length} ${options.split} questions in ` +
        `${loadSeconds.toFixed(2)} s`,
    );
    const miner = new HardNegativeMiner({ ...options.miner, log });
    const { examples, stats } = await miner.mine(dataset);
    const t1 = performance.now();
    await writeMinedDprJson(options.out, examples);
    const writeSeconds = (performance.now() - t1) / 1000;
    const totalSeconds = (performance.now() - t0) / 1000;
    log?.(`${WHO}: ${formatMiningStats(stats)}; wrote ${options.out} in ${writeSeconds.toFixed(2)} s; total ${totalSeconds.toFixed(2)} s`);
    if (options.statsPath) {
      const record = {
        dataset: options.dataset,
        split: options.split,
        out: options.out,
        rules: miner.rules,
        ...stats,
        loadSeconds,
        writeSeconds,
        totalSeconds,
      };
      await writeFileAtomic(options.statsPath, JSON.stringify(record, null, 2) + "\n");
    }
    return 0;
  });
}

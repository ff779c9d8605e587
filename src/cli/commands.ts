/**
 * The subcommands of `langchain-dpr`: name, one-line summary, usage, the optional peers each needs
 * (checked before its module is imported), and how to run it. Every module is imported lazily, so
 * that `langchain-dpr serve` never loads TF.js and `langchain-dpr train` never loads fastify.
 *
 * @module
 */
import type { CliIO } from "../utils/cli-args.js";
import type { OptionalFeature } from "../utils/optional-peer.js";
import {
  BUILD_INDEX_USAGE,
  BUILD_NATIVE_USAGE,
  CROSS_ENCODER_USAGE,
  DEMO_USAGE,
  ENCODE_SHARD_USAGE,
  EVALUATE_USAGE,
  EXPORT_USAGE,
  GPU_CHECK_USAGE,
  MAKE_RANDOM_MODEL_USAGE,
  MINE_USAGE,
  PRETRAIN_USAGE,
  SERVE_USAGE,
  TRAIN_USAGE,
} from "./usage.js";

/** One subcommand. */
export interface CliCommand {
  name: string;
  /** One line for `langchain-dpr --help`. */
  summary: string;
  /** What `langchain-dpr <name> --help` prints. */
  usage: string;
  /** Optional peer features it needs (src/utils/optional-peer.ts); checked before `run` imports anything. */
  peers: readonly OptionalFeature[];
  /** Whether the process stays up after `run` returns 0 (the server). */
  keepsRunning?: boolean;
  /** Imports the command's module and runs it; returns the exit code (0, 1 or 2; build-native: the script's). */
  run(argv: string[], io: CliIO): Promise<number>;
}

/** Every subcommand, in the order `--help` lists them. */
export const COMMANDS: readonly CliCommand[] = [
  {
    name: "train",
    summary: "fine-tune a DPR dual encoder (TF.js) on BEIR, DPR JSON or JSONL pairs",
    usage: TRAIN_USAGE,
    peers: ["training"],
    run: async (argv, io) => (await import("../training/cli.js")).runTrainCli(argv, {}, io),
  },
  {
    name: "pretrain",
    summary: "unsupervised pretraining on a corpus alone (inverse cloze task or crops)",
    usage: PRETRAIN_USAGE,
    peers: ["training"],
    run: async (argv, io) => (await import("../training/cli.js")).runTrainCli(argv, { mode: "ict" }, io),
  },
  {
    name: "mine",
    summary: "mine hard negatives with BM25 or a DPR model; writes DPR JSON",
    usage: MINE_USAGE,
    peers: [],
    run: async (argv, io) => (await import("../training/mining-cli.js")).runMiningCli(argv, io),
  },
  {
    name: "train-cross-encoder",
    summary: "train a cross-encoder reranker (TF.js) from mined negatives or a corpus",
    usage: CROSS_ENCODER_USAGE,
    peers: ["training"],
    run: async (argv, io) => (await import("../training/cross-encoder-cli.js")).runCrossEncoderCli(argv, io),
  },
  {
    name: "evaluate",
    summary: "BM25 vs DPR vs hybrid vs reranked on a BEIR folder: report, JSON, plots",
    usage: EVALUATE_USAGE,
    peers: [],
    run: async (argv, io) => (await import("../eval/evaluate-cli.js")).runEvaluateCli(argv, io),
  },
  {
    name: "encode-shard",
    summary: "encode shard i of n of a corpus into a vector shard file (resumable; run n in parallel)",
    usage: ENCODE_SHARD_USAGE,
    peers: [],
    run: async (argv, io) => (await import("../sharding/cli.js")).runEncodeShardCli(argv, io),
  },
  {
    name: "build-index",
    summary: "build a FaissDPRStore (any factory) from the vector shards of encode-shard",
    usage: BUILD_INDEX_USAGE,
    peers: [],
    run: async (argv, io) => (await import("../sharding/cli.js")).runBuildIndexCli(argv, io),
  },
  {
    name: "serve",
    summary: "HTTP retrieval server over a DPR model and a saved FaissDPRStore",
    usage: SERVE_USAGE,
    peers: ["server"],
    keepsRunning: true,
    run: async (argv, io) => (await import("../server/cli.js")).runServe(argv, io),
  },
  {
    name: "demo",
    summary: "the demo (npm start): bundled PubMedQA, the default models, answers and a table",
    usage: DEMO_USAGE,
    peers: [],
    run: async (argv, io) => (await import("./demo.js")).runDemoCli(argv, io),
  },
  {
    name: "export",
    summary: "safetensors checkpoint (HF BERT/DPR, or ours) → ONNX model folder",
    usage: EXPORT_USAGE,
    peers: [],
    run: async (argv, io) => (await import("./export.js")).runExportCli(argv, io),
  },
  {
    name: "make-random-model",
    summary: "write a randomly initialised DPR model folder (tests, benchmarks)",
    usage: MAKE_RANDOM_MODEL_USAGE,
    peers: [],
    run: async (argv, io) => (await import("./make-random-model.js")).runMakeRandomModelCli(argv, io),
  },
  {
    name: "gpu-check",
    summary: "check training on a GPU: agreement with cpu, speed, end-to-end run",
    usage: GPU_CHECK_USAGE,
    peers: ["training"],
    run: async (argv, io) => (await import("../training/gpu-check-cli.js")).runGpuCheckCli(argv, io),
  },
  {
    name: "build-native",
    summary: "build the native faiss addons against the system faiss",
    usage: BUILD_NATIVE_USAGE,
    peers: [],
    run: async (argv, io) => (await import("./build-native.js")).runBuildNativeCli(argv, io),
  },
];

/** The command called `name`, if any. */
export function findCommand(name: string | undefined): CliCommand | undefined {
  return COMMANDS.find((c) => c.name === name);
}

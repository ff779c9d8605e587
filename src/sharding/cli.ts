/**
 * The command lines `langchain-dpr encode-shard` ({@link runEncodeShardCli}) and
 * `langchain-dpr build-index` ({@link runBuildIndexCli}); scripts/encode-shard.ts and
 * scripts/build-index.ts run them through the dispatcher.
 *
 * @module
 */
import { Writable } from "node:stream";

import { BUILD_INDEX_USAGE, ENCODE_SHARD_USAGE } from "../cli/usage.js";
import { parseCliArgs, parseNumberFlag, PROCESS_IO, runCommandLine, UsageError, type CliIO } from "../utils/cli-args.js";
import { ProgressBar } from "../utils/progress.js";
import type { DPRPGVectorIndex } from "../pgvector/dpr-pgvector-store.js";
import { buildIndexFromShards } from "./build-index.js";
import { loadShardsIntoPGVector } from "./pgvector-ingest.js";
import { encodeShard } from "./encode-shard.js";

/** A progress bar on the CLI's stderr: the process's own (TTY-aware) or a line writer for captured output. */
function progressBar(io: CliIO, label: string, enabled: boolean): ProgressBar {
  if (!enabled) return new ProgressBar({ mode: "off" });
  if (io === PROCESS_IO) return new ProgressBar({ label });
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      io.stderr(String(chunk));
      callback();
    },
  });
  return new ProgressBar({ label, stream, mode: "lines" });
}

function required(who: string, values: Record<string, unknown>, names: string[]): void {
  for (const name of names) {
    if (values[name] === undefined || values[name] === "") throw new UsageError(`${who}: --${name} is required`);
  }
}

/** `langchain-dpr encode-shard`; returns the exit code (0 ok, 1 runtime error, 2 usage error). Never throws. */
export async function runEncodeShardCli(argv: string[], io: CliIO = PROCESS_IO): Promise<number> {
  const who = "encode-shard";
  return runCommandLine({ who, usage: ENCODE_SHARD_USAGE, io }, async () => {
    const { values } = parseCliArgs(who, {
      args: argv,
      options: {
        model: { type: "string" },
        corpus: { type: "string" },
        shard: { type: "string" },
        shards: { type: "string" },
        out: { type: "string" },
        "batch-size": { type: "string" },
        "chunk-rows": { type: "string" },
        threads: { type: "string" },
        quantized: { type: "boolean", default: false },
        "throttle-ms": { type: "string" },
        "no-progress": { type: "boolean", default: false },
        help: { type: "boolean" },
      },
    });
    if (values.help) {
      io.stdout(ENCODE_SHARD_USAGE);
      return 0;
    }
    required(who, values, ["model", "corpus", "shard", "shards", "out"]);
    const shards = parseNumberFlag(who, "--shards", values.shards, { integer: true, min: 1 })!;
    const shard = parseNumberFlag(who, "--shard", values.shard, { integer: true, min: 0 })!;
    if (shard >= shards) {
      throw new UsageError(`${who}: --shard must be below --shards (${shards}), got ${shard}; shards are numbered 0..${shards - 1}`);
    }
    const bar = progressBar(io, `shard ${shard}/${shards}`, !values["no-progress"]);
    const r = await encodeShard({
      model: values.model!,
      corpus: values.corpus!,
      shard,
      shards,
      out: values.out!,
      batchSize: parseNumberFlag(who, "--batch-size", values["batch-size"], { integer: true, min: 1 }),
      chunkRows: parseNumberFlag(who, "--chunk-rows", values["chunk-rows"], { integer: true, min: 1 }),
      threads: parseNumberFlag(who, "--threads", values.threads, { integer: true, min: 1 }),
      quantized: values.quantized,
      throttleMs: parseNumberFlag(who, "--throttle-ms", values["throttle-ms"], { integer: true, min: 0 }),
      onProgress: (p) => bar.update(p.rowsDone, p.count, `${p.passagesPerSecond.toFixed(1)} passages/s`),
      log: (line) => {
        bar.clear();
        io.stderr(`${line}\n`);
      },
    });
    bar.done();
    const rows = r.count > 0 ? `rows ${r.start} to ${r.start + r.count - 1}` : "no rows";
    const rate =
      r.rowsEncoded > 0 ? `, ${r.rowsEncoded} encoded in ${r.seconds.toFixed(1)} s (${r.passagesPerSecond.toFixed(1)} passages/s)` : "";
    io.stdout(
      `shard ${r.shard} of ${r.shards} ${r.status}: ${rows} of ${r.corpusSize} (${r.count} × ${r.dims})${rate} → ${r.vectorsPath}\n`,
    );
    return 0;
  });
}

/** `langchain-dpr build-index`; returns the exit code (0 ok, 1 runtime error, 2 usage error). Never throws. */
export async function runBuildIndexCli(argv: string[], io: CliIO = PROCESS_IO): Promise<number> {
  const who = "build-index";
  return runCommandLine({ who, usage: BUILD_INDEX_USAGE, io }, async () => {
    const { values } = parseCliArgs(who, {
      args: argv,
      options: {
        shards: { type: "string" },
        corpus: { type: "string" },
        out: { type: "string" },
        pgvector: { type: "string" },
        "pg-index": { type: "string" },
        factory: { type: "string" },
        "train-sample": { type: "string" },
        seed: { type: "string" },
        model: { type: "string" },
        quantized: { type: "boolean", default: false },
        nprobe: { type: "string" },
        "ef-search": { type: "string" },
        threads: { type: "string" },
        "add-batch": { type: "string" },
        "no-progress": { type: "boolean", default: false },
        help: { type: "boolean" },
      },
    });
    if (values.help) {
      io.stdout(BUILD_INDEX_USAGE);
      return 0;
    }
    required(who, values, ["shards", "corpus"]);
    if (!values.out === !values.pgvector) {
      throw new UsageError(`${who}: give one of --out <store folder> or --pgvector <table>, ${values.out ? "not both" : "got neither"}`);
    }
    if (values.quantized && !values.model) throw new UsageError(`${who}: --quantized applies to --model; pass --model too`);
    const bar = progressBar(io, "adding", !values["no-progress"]);
    const log = (line: string) => {
      bar.clear();
      io.stderr(`${line}\n`);
    };
    if (values.pgvector !== undefined) {
      for (const flag of ["factory", "train-sample", "seed", "nprobe", "ef-search", "threads"] as const) {
        if (values[flag] !== undefined) throw new UsageError(`${who}: --${flag} applies to a FaissDPRStore (--out), not to --pgvector`);
      }
      const r = await loadShardsIntoPGVector({
        shards: values.shards!,
        corpus: values.corpus!,
        table: values.pgvector,
        model: values.model,
        quantized: values.quantized,
        index: parsePgIndex(who, values["pg-index"]),
        batchRows: parseNumberFlag(who, "--add-batch", values["add-batch"], { integer: true, min: 1 }),
        onProgress: (p) => bar.update(p.added, p.total, `${Math.round(p.vectorsPerSecond)} rows/s`),
        log,
      });
      bar.done();
      io.stdout(
        `loaded ${r.count} vectors × ${r.dims} from ${r.shards} shards into ${r.table}: ${r.written} written, ` +
          `${r.skipped} already stored, in ${r.seconds.toFixed(1)} s` +
          (r.indexSeconds > 0 ? `; index built in ${r.indexSeconds.toFixed(1)} s` : "") +
          "\n",
      );
      return 0;
    }
    if (values["pg-index"] !== undefined) throw new UsageError(`${who}: --pg-index applies to --pgvector`);
    const r = await buildIndexFromShards({
      shards: values.shards!,
      corpus: values.corpus!,
      out: values.out!,
      factory: values.factory,
      trainSample: parseNumberFlag(who, "--train-sample", values["train-sample"], { integer: true, min: 1 }),
      seed: parseNumberFlag(who, "--seed", values.seed, { integer: true, min: 0 }),
      model: values.model,
      quantized: values.quantized,
      nprobe: parseNumberFlag(who, "--nprobe", values.nprobe, { integer: true, min: 1 }),
      efSearch: parseNumberFlag(who, "--ef-search", values["ef-search"], { integer: true, min: 1 }),
      threads: parseNumberFlag(who, "--threads", values.threads, { integer: true, min: 1 }),
      addBatchRows: parseNumberFlag(who, "--add-batch", values["add-batch"], { integer: true, min: 1 }),
      onProgress: (p) => bar.update(p.added, p.total, `${Math.round(p.vectorsPerSecond)} vectors/s`),
      log,
    });
    bar.done();
    const trained = r.trainedOn > 0 ? `, trained on ${r.trainedOn} rows in ${r.trainSeconds.toFixed(1)} s` : "";
    io.stdout(
      `built "${r.factory}" from ${r.shards} shards: ${r.count} vectors × ${r.dims}${trained}, added in ${r.addSeconds.toFixed(1)} s, ` +
        `saved in ${r.saveSeconds.toFixed(1)} s → ${r.out}\n`,
    );
    return 0;
  });
}

/** `--pg-index hnsw[:M[:efConstruction]] | ivfflat:<lists> | none` (default none). */
function parsePgIndex(who: string, text: string | undefined): DPRPGVectorIndex | undefined {
  if (text === undefined || text === "none") return undefined;
  const [type, a, b] = text.split(":");
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  if (type === "hnsw" && [a, b].every((v) => v === undefined || /^\d+$/.test(v))) return { type, m: num(a), efConstruction: num(b) };
  if (type === "ivfflat" && a !== undefined && /^\d+$/.test(a) && b === undefined) return { type, lists: Number(a) };
  throw new UsageError(`${who}: --pg-index must be hnsw[:M[:efConstruction]], ivfflat:<lists> or none, got ${JSON.stringify(text)}`);
}

/**
 * The `langchain-dpr serve` command: loads a DPR model + a saved FaissDPRStore (+ optional BM25
 * index for hybrid search) and serves them over HTTP. {@link runServe} is what the dispatcher
 * (src/cli/) runs; scripts/serve.ts is a thin wrapper over the same dispatcher.
 *
 * @module
 */
import type { FastifyInstance } from "fastify";
import type { VectorStoreInterface } from "@langchain/core/vectorstores";
import { open } from "node:fs/promises";
import { isIP } from "node:net";
import { DPREmbeddings } from "../embeddings/dpr-embeddings.js";
import { FaissDPRStore } from "../vectorstores/faiss-dpr-store.js";
import { BM25Index } from "../retrievers/bm25/bm25-index.js";
import { DPRRetriever } from "../retrievers/dpr-retriever.js";
import { HybridRetriever, type FusionMethod, type ResolvedFusion } from "../retrievers/hybrid-retriever.js";
import { describeFusion } from "../retrievers/fusion.js";
import type { RetrievalResult, RetrievalService, RetrieveOptions } from "../retrievers/types.js";
import { CrossEncoderReranker } from "../rerankers/cross-encoder-reranker.js";
import { TwoStageRetriever } from "../retrievers/two-stage-retriever.js";
import { createServer, installGracefulShutdown } from "./server.js";
import { isLoopbackAddress, normalizeAllowedHosts, normalizeCorsOrigins, validateServerToken, type AllowedHosts } from "./security.js";
import { parseCliArgs, parseNumberFlag, PROCESS_IO, runCommandLine, UsageError, type CliIO } from "../utils/cli-args.js";
import { SERVE_USAGE as USAGE } from "../cli/usage.js";

/** Parsed `serve` options. */
export interface ServeOptions {
  model: string;
  /** A saved FaissDPRStore folder; or, instead, {@link pgvector}. */
  index?: string;
  /** A pgvector table (DPRPGVectorStore) to search instead of --index; the connection comes from PG* variables. */
  pgvector?: string;
  bm25?: string;
  reranker?: string;
  /** `--fusion`; undefined: the fusion stored in the model's dpr_config.json, else RRF (k 60). */
  fusion?: FusionMethod;
  /** `--alpha` (needs `--fusion linear`); undefined: 0.5 for `--fusion linear`. */
  alpha?: number;
  host: string;
  port: number;
  k: number;
  maxK: number;
  fetchK: number;
  maxQueryLength: number;
  maxConcurrent: number;
  maxQueue: number;
  timeoutMs: number;
  cache: boolean;
  cacheSize: number;
  cacheTtlMs: number;
  threads?: number;
  quantized: boolean;
  extraLatencyMs: number;
  drainTimeoutMs: number;
  log: boolean;
  /** `--allowed-hosts`: "auto" (default), "all", or host names. */
  allowedHosts: AllowedHosts;
  /** `--cors-origins`: origins whose pages may read answers (default none). */
  corsOrigins: string[];
  /** `--public-metrics`: with a token, leave /metrics open. */
  publicMetrics: boolean;
  /** `--token-file`: where the bearer token is read from (see {@link resolveServeToken}). */
  tokenFile?: string;
  /** The bearer token itself, set by {@link resolveServeToken}; never taken from the command line. */
  token?: string;
}

/** The environment variable that may hold the server's bearer token. */
export const SERVER_TOKEN_ENV = "DPR_SERVER_TOKEN";

/** Largest token file read, in bytes (a token is at most 4096 characters, plus a newline). */
const MAX_TOKEN_FILE_BYTES = 8192;

function list(flag: string, text: string): string[] {
  const entries = text.split(",").map((e) => e.trim());
  if (entries.some((e) => e === "")) {
    throw new UsageError(`serve: ${flag} must be a comma-separated list without empty entries, got ${JSON.stringify(text)}`);
  }
  return entries;
}

function hostList(text: string): string[] {
  const entries = list("--allowed-hosts", text);
  const word = entries.find((e) => e === "all" || e === "auto");
  if (word !== undefined)
    throw new UsageError(`serve: --allowed-hosts ${word} cannot be combined with host names, got ${JSON.stringify(text)}`);
  return entries;
}

/** Runs a validator from security.ts and turns its Error into a UsageError (exit 2 with the usage). */
function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Usage text of `langchain-dpr serve`. */
export const SERVE_USAGE = USAGE;

function int(name: string, v: string | undefined, def: number, min: number): number {
  return parseNumberFlag("serve", `--${name}`, v, { integer: true, min }) ?? def;
}

/** Parses command-line arguments; null for `--help`. Throws a {@link UsageError} naming the bad option. */
export function parseServeArgs(argv: string[]): ServeOptions | null {
  const { values } = parseCliArgs("serve", {
    args: argv,
    options: {
      model: { type: "string" },
      index: { type: "string" },
      pgvector: { type: "string" },
      bm25: { type: "string" },
      reranker: { type: "string" },
      fusion: { type: "string" },
      alpha: { type: "string" },
      host: { type: "string" },
      port: { type: "string" },
      k: { type: "string" },
      "max-k": { type: "string" },
      "fetch-k": { type: "string" },
      "max-query-length": { type: "string" },
      "max-concurrent": { type: "string" },
      "max-queue": { type: "string" },
      "timeout-ms": { type: "string" },
      "no-cache": { type: "boolean" },
      "cache-size": { type: "string" },
      "cache-ttl-ms": { type: "string" },
      threads: { type: "string" },
      quantized: { type: "boolean" },
      "extra-latency-ms": { type: "string" },
      "drain-timeout-ms": { type: "string" },
      log: { type: "boolean" },
      "allowed-hosts": { type: "string" },
      "cors-origins": { type: "string" },
      "public-metrics": { type: "boolean" },
      "token-file": { type: "string" },
      token: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) return null;
  if (values.token !== undefined) {
    throw new UsageError(
      `serve: --token is not accepted: other users of this machine can read a command line (ps); ` +
        `put the token in a file readable only by you and pass --token-file <file>, or set ${SERVER_TOKEN_ENV}`,
    );
  }
  if (!values.model) throw new UsageError("serve: --model <dpr model dir> is required");
  if (!values.index === !values.pgvector) {
    throw new UsageError(
      `serve: give one of --index <FaissDPRStore dir> or --pgvector <table> (PostgreSQL from PGHOST, PGPORT, PGUSER, ` +
        `PGPASSWORD, PGDATABASE), ${values.index ? "not both" : "got neither"}`,
    );
  }
  const fusion = values.fusion as FusionMethod | undefined;
  if (fusion !== undefined && fusion !== "rrf" && fusion !== "linear")
    throw new UsageError(`serve: --fusion must be rrf or linear, got ${JSON.stringify(values.fusion)}`);
  const alpha = values.alpha === undefined ? undefined : Number(values.alpha);
  if (alpha !== undefined && !(values.alpha!.trim() !== "" && alpha >= 0 && alpha <= 1))
    throw new UsageError(`serve: --alpha must be in [0, 1], got ${JSON.stringify(values.alpha)}`);
  if (alpha !== undefined && fusion !== "linear") throw new UsageError(`serve: --alpha only applies to --fusion linear`);
  const hostsText = values["allowed-hosts"];
  const allowedHosts: AllowedHosts =
    hostsText === undefined
      ? "auto"
      : hostsText.trim() === "all" || hostsText.trim() === "auto"
        ? (hostsText.trim() as "all" | "auto")
        : asUsage(() => normalizeAllowedHosts(hostList(hostsText), "serve: --allowed-hosts"));
  const corsText = values["cors-origins"];
  const corsOrigins =
    corsText === undefined ? [] : asUsage(() => normalizeCorsOrigins(list("--cors-origins", corsText), "serve: --cors-origins"));
  if (values["token-file"] === "") throw new UsageError("serve: --token-file needs a file path, got an empty string");
  return {
    model: values.model,
    index: values.index,
    pgvector: values.pgvector,
    bm25: values.bm25,
    reranker: values.reranker,
    fusion,
    alpha,
    host: values.host ?? "127.0.0.1",
    port: int("port", values.port, 8080, 0),
    k: int("k", values.k, 10, 1),
    maxK: int("max-k", values["max-k"], 100, 1),
    fetchK: int("fetch-k", values["fetch-k"], 100, 1),
    maxQueryLength: int("max-query-length", values["max-query-length"], 1000, 1),
    maxConcurrent: int("max-concurrent", values["max-concurrent"], 4, 1),
    maxQueue: int("max-queue", values["max-queue"], 16, 0),
    timeoutMs: int("timeout-ms", values["timeout-ms"], 10_000, 1),
    cache: !values["no-cache"],
    cacheSize: int("cache-size", values["cache-size"], 1000, 1),
    cacheTtlMs: int("cache-ttl-ms", values["cache-ttl-ms"], 300_000, 0),
    threads: values.threads === undefined ? undefined : int("threads", values.threads, 1, 1),
    quantized: values.quantized ?? false,
    extraLatencyMs: int("extra-latency-ms", values["extra-latency-ms"], 0, 0),
    drainTimeoutMs: int("drain-timeout-ms", values["drain-timeout-ms"], 30_000, 1),
    log: values.log ?? false,
    allowedHosts,
    corsOrigins,
    publicMetrics: values["public-metrics"] ?? false,
    tokenFile: values["token-file"],
  };
}

/**
 * The bearer token of `serve`: read from `--token-file` (a regular file of at most 8 KiB; surrounding
 * whitespace and the final newline are dropped) or from `DPR_SERVER_TOKEN`; undefined when neither
 * is set. Both at once, an empty value, or a token that {@link validateServerToken} refuses is an
 * error naming the source; the token never appears in a message. A token file that group or others
 * may read gets a warning through `warn`.
 */
export async function resolveServeToken(
  opts: Pick<ServeOptions, "tokenFile">,
  env: NodeJS.ProcessEnv = process.env,
  warn: (message: string) => void = () => {},
): Promise<string | undefined> {
  const fromEnv = env[SERVER_TOKEN_ENV];
  if (opts.tokenFile !== undefined && fromEnv !== undefined) {
    throw new UsageError(`serve: both --token-file and ${SERVER_TOKEN_ENV} are set; use one of them (unset ${SERVER_TOKEN_ENV})`);
  }
  if (fromEnv !== undefined) {
    if (fromEnv === "") throw new Error(`serve: ${SERVER_TOKEN_ENV} is set but empty; set it to the token or unset it`);
    return validateServerToken(fromEnv, `serve: ${SERVER_TOKEN_ENV}`);
  }
  if (opts.tokenFile === undefined) return undefined;
  const path = opts.tokenFile;
  let text: string;
  let handle;
  try {
    handle = await open(path, "r");
  } catch (e) {
    throw new Error(`serve: --token-file ${path}: cannot open it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error(`serve: --token-file ${path} is not a regular file`);
    if (stat.size > MAX_TOKEN_FILE_BYTES) {
      throw new Error(`serve: --token-file ${path} is ${stat.size} bytes; a token file holds one token of at most 4096 characters`);
    }
    if (process.platform !== "win32" && (stat.mode & 0o077) !== 0) {
      warn(
        `serve: warning: --token-file ${path} can be read by group or others (mode ${(stat.mode & 0o777).toString(8)}); ` +
          `chmod 600 ${path}\n`,
      );
    }
    text = (await handle.readFile({ encoding: "utf8" })).trim();
  } finally {
    await handle.close();
  }
  if (text === "") throw new Error(`serve: --token-file ${path} is empty; write the token into it (e.g. openssl rand -hex 32 > ${path})`);
  return validateServerToken(text, `serve: --token-file ${path}`);
}

/** Wraps a service so each retrieval first sleeps `ms` (a testing aid for load shedding/shutdown). */
export function withExtraLatency(service: RetrievalService, ms: number): RetrievalService {
  if (ms <= 0) return service;
  return {
    hasReranker: service.hasReranker,
    async retrieve(query: string, options?: RetrieveOptions): Promise<RetrievalResult> {
      await new Promise((r) => setTimeout(r, ms));
      const r = await service.retrieve(query, options);
      return { ...r, timings: { ...r.timings, totalMs: r.timings.totalMs + ms } };
    },
  };
}

/** What {@link startServe} built. */
export interface ServeHandle {
  app: FastifyInstance;
  url: string;
  embeddings: DPREmbeddings;
  /** The store searched: a FaissDPRStore (--index) or a DPRPGVectorStore (--pgvector). */
  store: VectorStoreInterface;
  /** "N documents" or "pgvector table T", for the listening line. */
  description: string;
  /** With --bm25: the hybrid fusion served and where it came from (--fusion/--alpha, the model's dpr_config.json, or the default). */
  fusion?: ResolvedFusion;
  close(): Promise<void>;
}

/**
 * The store to serve: a saved FaissDPRStore, or a pgvector table shared by any number of server
 * replicas (stateless: connection settings from the PG* environment variables, as psql reads them).
 */
async function openStore(
  opts: ServeOptions,
  embeddings: DPREmbeddings,
): Promise<{ store: VectorStoreInterface; description: string; closeStore(): Promise<void> }> {
  if (opts.pgvector !== undefined) {
    const { DPRPGVectorStore } = await import("../pgvector/dpr-pgvector-store.js");
    const store = await DPRPGVectorStore.initialize(embeddings, { tableName: opts.pgvector, postgresConnectionOptions: {} });
    return { store, description: `pgvector table ${opts.pgvector}`, closeStore: () => store.end() };
  }
  const store = await FaissDPRStore.load(opts.index!, embeddings);
  return { store, description: `${store.size} documents`, closeStore: () => store.dispose() };
}

/** Loads the model and indexes, builds the server and starts listening. */
export async function startServe(opts: ServeOptions): Promise<ServeHandle> {
  const embeddings = new DPREmbeddings({ modelPath: opts.model, intraOpNumThreads: opts.threads, quantized: opts.quantized });
  await embeddings.ready(); // fail fast on a bad model folder, and warm the sessions
  const { store, description, closeStore } = await openStore(opts, embeddings);
  let reranker: CrossEncoderReranker | undefined;
  if (opts.reranker) {
    // topN = maxK so that any k a request may ask for survives the reranker
    reranker = new CrossEncoderReranker({ modelPath: opts.reranker, topN: opts.maxK, intraOpNumThreads: opts.threads });
    await reranker.ready();
  }
  let service: RetrievalService;
  let fusion: ResolvedFusion | undefined;
  if (opts.bm25) {
    const bm25 = await BM25Index.load(opts.bm25);
    const hybrid = new HybridRetriever({
      dense: store,
      sparse: bm25,
      k: opts.k,
      denseK: opts.fetchK,
      sparseK: opts.fetchK,
      // Without --fusion/--alpha: the fusion stored with the model (dpr_config.json), else RRF k 60.
      ...(opts.fusion !== undefined ? { fusion: opts.fusion } : {}),
      ...(opts.alpha !== undefined ? { alpha: opts.alpha } : {}),
    });
    fusion = await hybrid.resolveFusion(); // fail fast on a bad stored fusion, and say which one is served
    service = reranker ? new TwoStageRetriever({ firstStage: hybrid, reranker, candidates: opts.fetchK, k: opts.k }) : hybrid;
  } else {
    service = new DPRRetriever({
      vectorStore: store,
      k: opts.k,
      fetchK: opts.fetchK,
      reranker,
      // The server never modifies a loaded FaissDPRStore, so cached answers cannot go stale; a
      // pgvector table is shared and may change under it: not cached.
      cache:
        opts.cache && opts.pgvector === undefined ? { maxEntries: opts.cacheSize, ttlMs: opts.cacheTtlMs, assumeStaticStore: true } : false,
    });
  }
  service = withExtraLatency(service, opts.extraLatencyMs);
  const app = createServer({
    retriever: service,
    defaultK: Math.min(opts.k, opts.maxK),
    maxK: opts.maxK,
    maxQueryLength: opts.maxQueryLength,
    maxConcurrent: opts.maxConcurrent,
    maxQueue: opts.maxQueue,
    requestTimeoutMs: opts.timeoutMs,
    logger: opts.log,
    allowedHosts: opts.allowedHosts,
    listenHost: isIP(opts.host) === 0 ? opts.host : undefined,
    token: opts.token,
    publicMetrics: opts.publicMetrics,
    corsOrigins: opts.corsOrigins,
  });
  const address = await app.listen({ host: opts.host, port: opts.port });
  const close = async () => {
    await reranker?.dispose();
    await closeStore();
    await embeddings.dispose();
  };
  return { app, url: address, embeddings, store, description, fusion, close };
}

/**
 * The CLI: parse, start, print the address, drain on SIGTERM/SIGINT (exit 0, or 1 past
 * --drain-timeout-ms). Returns 0 once listening (the server keeps the process alive), 1 when it
 * could not start, 2 on a usage error (the message and the usage on stderr). Never throws.
 */
export async function runServe(argv: string[], io: CliIO = PROCESS_IO): Promise<number> {
  return runCommandLine({ who: "serve", usage: SERVE_USAGE, io }, async () => {
    const parsed = parseServeArgs(argv);
    if (parsed === null) {
      io.stdout(SERVE_USAGE);
      return 0;
    }
    const opts = { ...parsed, token: await resolveServeToken(parsed, process.env, io.stderr) };
    const handle = await startServe(opts);
    installGracefulShutdown(handle.app, { timeoutMs: opts.drainTimeoutMs, onClosed: handle.close });
    const f = handle.fusion;
    const from = f?.source === "model" ? "from the model's dpr_config.json" : f?.source === "options" ? "from --fusion/--alpha" : "default";
    const mode = `${f ? `hybrid ${describeFusion(f.setting)}, ${from}` : "dense"}${opts.reranker ? " + reranker" : ""}`;
    const access = opts.token === undefined ? "no token" : opts.publicMetrics ? "token required, /metrics open" : "token required";
    io.stdout(`listening on ${handle.url} (${mode}, ${handle.description}, ${access})\n`);
    const address = handle.app.server.address();
    if (opts.token === undefined && typeof address === "object" && address !== null && !isLoopbackAddress(address.address)) {
      io.stderr(
        `serve: warning: listening on ${address.address} without a token: anyone who can reach port ${address.port} can query ` +
          `the index and read /stats and /metrics; set --token-file <file> or ${SERVER_TOKEN_ENV}\n`,
      );
    }
    return 0;
  });
}

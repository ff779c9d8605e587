/**
 * Downloads model repositories from a Hugging Face hub (or any server with the same URL
 * layout) into a local cache folder.
 *
 * Files are fetched from `{endpoint}/{repo}/resolve/{revision}/{path}`. The list of files
 * comes from `{endpoint}/api/models/{repo}/revision/{revision}` when the server offers it,
 * else the known file names of the model folder format are probed one by one (404 = absent).
 *
 * What is fetched, per encoder folder of the repository (the top level, question_encoder/,
 * passage_encoder/, ctx_encoder/, encoder/, 0_Transformer/): the configs and tokenizer files, the
 * sentence-transformers files (modules.json, N_Pooling/config.json, sentence_bert_config.json,
 * config_sentence_transformers.json), and ONE weights source, in this order of preference:
 * `model.safetensors` (or its sharded index and shards), `pytorch_model.bin` (or its index and
 * shards), else the ONNX graph (`model.onnx` / `onnx/model.onnx` with its external data). TensorFlow,
 * Flax, Rust and OpenVINO files are never fetched. Weights without a graph are exported to ONNX in
 * the cache once (this project's ONNX writer).
 *
 * Cache safety: every file is streamed to a temporary file in its destination folder, its
 * size checked against Content-Length, then renamed into place; a `.complete.json` marker
 * is written last. A folder without the marker is never returned, and an interrupted
 * download leaves no partial file under a real name; the next call resumes by fetching
 * only what is missing.
 */
import { mkdir, readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, posix } from "node:path";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";

import { writeFileAtomic, writeStreamAtomic } from "../utils/atomic-file.js";
import { readBertCheckpoint } from "./checkpoint.js";
import { exportBertOnnx } from "./onnx/bert-graph.js";
import { isFile } from "../utils/fs.js";

/** Settings of {@link downloadModel}. */
export interface HubDownloadParams {
  /** Branch, tag or commit (default "main"). */
  revision?: string;
  /** Hub base URL (default: the HF_ENDPOINT environment variable, else https://huggingface.co). */
  endpoint?: string;
  /** Cache folder (default: LANGCHAIN_DPR_CACHE, else ~/.cache/langchain-dpr). */
  cacheDir?: string;
  /** Access token sent as a Bearer header (default: the HF_TOKEN environment variable). */
  token?: string;
  /** Exact repository paths to fetch instead of listing the repository. */
  files?: string[];
  /** Fetch model_quantized.onnx instead of model.onnx. */
  quantized?: boolean;
  /** Extra attempts per file after a failed transfer (default 2). */
  retries?: number;
  /** fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
}

const OWNER = "hub";
const MARKER = ".complete.json";
const ENCODER_PREFIXES = ["", "question_encoder/", "passage_encoder/", "ctx_encoder/", "encoder/", "0_Transformer/"];
const SMALL_FILES = [
  "config.json",
  "vocab.txt",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "modules.json",
  "sentence_bert_config.json",
  "config_sentence_transformers.json",
];
/** Weights sources of an encoder folder, in order of preference (the index files name their shards). */
const WEIGHT_SOURCES = ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"];

/** The default cache folder: `$LANGCHAIN_DPR_CACHE` or `~/.cache/langchain-dpr`. */
export function defaultCacheDir(): string {
  return process.env.LANGCHAIN_DPR_CACHE || join(homedir(), ".cache", "langchain-dpr");
}

/** The default hub endpoint: `$HF_ENDPOINT` or https://huggingface.co. */
export function defaultEndpoint(): string {
  return process.env.HF_ENDPOINT || "https://huggingface.co";
}

/** True for strings shaped like a hub repository id (`owner/name`). */
export function isHubId(ref: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/.test(ref) && !ref.includes("..");
}

/** URL of one file of a repository. */
export function hubFileUrl(endpoint: string, repo: string, revision: string, path: string): string {
  const enc = path.split("/").map(encodeURIComponent).join("/");
  return `${endpoint.replace(/\/+$/, "")}/${repo}/resolve/${encodeURIComponent(revision)}/${enc}`;
}

/** Folder of a repository revision inside the cache. */
export function cachedModelDir(cacheDir: string, repo: string, revision: string): string {
  return join(cacheDir, `models--${repo.replace("/", "--")}`, revision.replace(/[^\w.-]/g, "_"));
}

function checkRepoPath(path: string): string {
  const norm = posix.normalize(path);
  if (norm.startsWith("../") || norm === ".." || posix.isAbsolute(norm) || norm.includes("\0")) {
    throw new Error(`${OWNER}: refusing file path '${path}' outside the model folder`);
  }
  return norm;
}

/**
 * Picks the files to fetch out of a repository listing (see the module documentation). A folder of
 * ours (model.onnx beside model.safetensors) keeps its graph; a Hugging Face repository gets its
 * safetensors, else its PyTorch file, else its ONNX export. Shards are added once their index is read.
 */
export function selectModelFiles(listing: string[], opts: { quantized?: boolean } = {}): string[] {
  const set = new Set(listing);
  const out: string[] = [];
  if (set.has("dpr_config.json")) out.push("dpr_config.json");
  for (const f of listing) if (/^\d+_Pooling\/config\.json$/.test(f)) out.push(f);
  for (const prefix of ENCODER_PREFIXES) {
    if (!set.has(`${prefix}config.json`)) continue;
    for (const f of SMALL_FILES) if (set.has(prefix + f) && !out.includes(prefix + f)) out.push(prefix + f);
    const base = opts.quantized ? "model_quantized.onnx" : "model.onnx";
    const onnx = [prefix + base, `${prefix}onnx/${base}`].find((p) => set.has(p));
    const weights = WEIGHT_SOURCES.map((w) => prefix + w).find((p) => set.has(p));
    // Our own folders carry model.onnx at the top of the encoder folder: use it as is. Otherwise
    // prefer the weights (exported here with our writer) over a third party's ONNX export.
    const ours = set.has(prefix + base);
    if (weights && !ours) {
      out.push(weights);
    } else if (onnx) {
      out.push(onnx);
      for (const data of [`${onnx}.data`, `${onnx}_data`, onnx.replace(/\.onnx$/, ".onnx_data")]) {
        if (set.has(data) && !out.includes(data)) out.push(data);
      }
      if (set.has(`${prefix}model.safetensors`)) out.push(`${prefix}model.safetensors`);
    }
  }
  return out;
}

/** The shard files a downloaded `*.index.json` names (relative to the repository). */
async function shardsOf(indexPath: string, repoPath: string): Promise<string[]> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(indexPath, "utf8"));
  } catch (err) {
    throw new Error(`${OWNER}: ${repoPath} is not valid JSON: ${(err as Error).message}`);
  }
  const map = (json as { weight_map?: unknown }).weight_map;
  if (typeof map !== "object" || map === null) throw new Error(`${OWNER}: ${repoPath} has no weight_map object`);
  const dir = posix.dirname(repoPath) === "." ? "" : `${posix.dirname(repoPath)}/`;
  const shards = new Set<string>();
  for (const v of Object.values(map as Record<string, unknown>)) {
    if (typeof v !== "string") throw new Error(`${OWNER}: ${repoPath}: weight_map values must be file names, got ${JSON.stringify(v)}`);
    shards.add(checkRepoPath(dir + v));
  }
  return [...shards];
}

/** Candidate paths probed when the server has no listing API. */
function probeCandidates(quantized: boolean): string[] {
  const base = quantized ? "model_quantized.onnx" : "model.onnx";
  const out = ["dpr_config.json"];
  for (const prefix of ENCODER_PREFIXES) {
    for (const f of SMALL_FILES) out.push(prefix + f);
    for (const p of [prefix + base, `${prefix}onnx/${base}`]) out.push(p, `${p}.data`, `${p}_data`);
  }
  return out;
}

interface Ctx {
  endpoint: string;
  repo: string;
  revision: string;
  headers: Record<string, string>;
  fetch: typeof fetch;
  retries: number;
}

async function listRepository(ctx: Ctx): Promise<string[] | null> {
  const url = `${ctx.endpoint.replace(/\/+$/, "")}/api/models/${ctx.repo}/revision/${encodeURIComponent(ctx.revision)}`;
  let res: Response;
  try {
    res = await ctx.fetch(url, { headers: ctx.headers });
  } catch (err) {
    throw new Error(`${OWNER}: cannot reach ${url}: ${(err as Error).message}`);
  }
  if (res.status === 401 || res.status === 403) {
    throw new Error(`${OWNER}: ${ctx.repo} at ${ctx.endpoint} needs authorisation (HTTP ${res.status}); set HF_TOKEN or pass token`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    return null;
  }
  try {
    const json = (await res.json()) as { siblings?: Array<{ rfilename?: unknown }> };
    if (!Array.isArray(json.siblings)) return null;
    return json.siblings.map((s) => s.rfilename).filter((f): f is string => typeof f === "string");
  } catch {
    return null;
  }
}

/**
 * Downloads one file atomically. Returns false when the server answers 404 and the file is
 * optional. Throws on other HTTP errors, dropped connections and size mismatches; the
 * destination is untouched in every failure case.
 */
async function downloadFile(ctx: Ctx, path: string, dest: string, optional: boolean): Promise<boolean> {
  const url = hubFileUrl(ctx.endpoint, ctx.repo, ctx.revision, path);
  let res: Response;
  try {
    res = await ctx.fetch(url, { headers: ctx.headers, redirect: "follow" });
  } catch (err) {
    throw new Error(`${OWNER}: GET ${url} failed: ${(err as Error).message}`);
  }
  if (res.status === 404 && optional) {
    await res.body?.cancel();
    return false;
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new Error(`${OWNER}: GET ${url} answered HTTP ${res.status}`);
  }
  const lengthHeader = res.headers.get("content-length");
  const expected = lengthHeader !== null && res.headers.get("content-encoding") === null ? Number(lengthHeader) : undefined;
  await mkdir(dirname(dest), { recursive: true });
  try {
    await writeStreamAtomic(dest, async (write) => {
      let received = 0;
      for await (const chunk of Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>)) {
        received += (chunk as Uint8Array).byteLength;
        await write(chunk as Uint8Array);
      }
      if (expected !== undefined && Number.isFinite(expected) && received !== expected) {
        throw new Error(`received ${received} of ${expected} bytes`);
      }
    });
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    const detail = (err as Error).message + (cause ? ` (${cause.message})` : "");
    throw new Error(`${OWNER}: download of ${url} was interrupted: ${detail}`);
  }
  return true;
}

async function withRetries<T>(ctx: Ctx, fn: () => Promise<T>): Promise<T> {
  let lastErr: unknown;
  for (let attempt = 0; attempt <= ctx.retries; attempt++) {
    try {
      return await fn();
    } catch (err) {
      lastErr = err;
      if (/HTTP (4\d\d)/.test((err as Error).message)) break; // client errors don't get better
      if (attempt < ctx.retries) await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
    }
  }
  throw lastErr;
}

/**
 * For encoder folders that have weights (safetensors, PyTorch, sharded or not) but no ONNX graph
 * (e.g. the facebook/dpr-* repositories), writes `model.onnx` from the weights: a sequence classifier
 * (cross-encoder) keeps its head and gets `logits`; an encoder gets DPR's CLS pooler (other poolings
 * run on `last_hidden_state`, which every graph has).
 */
export async function exportMissingOnnx(modelDir: string, files: string[], opts: { quantized?: boolean } = {}): Promise<string[]> {
  const written: string[] = [];
  for (const prefix of ENCODER_PREFIXES) {
    if (!WEIGHT_SOURCES.some((w) => files.includes(prefix + w))) continue;
    const graphs = ["model.onnx", "onnx/model.onnx", "model_quantized.onnx", "onnx/model_quantized.onnx"];
    if (graphs.some((g) => files.includes(prefix + g))) continue;
    const dir = join(modelDir, prefix);
    const { config, weights } = await readBertCheckpoint(dir, OWNER);
    const classifier =
      weights.has("classifier.weight") && (config.architectures ?? []).some((a) => a.endsWith("ForSequenceClassification"));
    const onnx = classifier ? { pooler: "bert" as const, classifier: true } : { pooler: "cls" as const };
    await exportBertOnnx(dir, config, weights, { ...onnx, quantize: opts.quantized });
    written.push(`${prefix}model.onnx`);
    if (opts.quantized) written.push(`${prefix}model_quantized.onnx`);
  }
  return written;
}

/**
 * Downloads `repo` (e.g. `"acme/dpr-scifact"`) into the cache and returns the local folder.
 * A revision already complete in the cache is returned without any network access.
 * @throws Error naming the URL on HTTP errors, dropped connections or truncated files, and
 *   when the repository has none of the model folder format's files.
 */
export async function downloadModel(repo: string, params: HubDownloadParams = {}): Promise<string> {
  if (!isHubId(repo)) throw new Error(`${OWNER}: '${repo}' is not a repository id like owner/name`);
  const revision = params.revision ?? "main";
  const cacheDir = params.cacheDir ?? defaultCacheDir();
  const dir = cachedModelDir(cacheDir, repo, revision);
  const markerPath = join(dir, MARKER);
  try {
    const marker = JSON.parse(await readFile(markerPath, "utf8")) as { quantized?: boolean };
    if (Boolean(marker.quantized) === Boolean(params.quantized)) return dir;
  } catch {
    // not complete yet
  }
  const token = params.token ?? process.env.HF_TOKEN;
  const ctx: Ctx = {
    endpoint: params.endpoint ?? defaultEndpoint(),
    repo,
    revision,
    headers: token ? { authorization: `Bearer ${token}` } : {},
    fetch: params.fetch ?? fetch,
    retries: params.retries ?? 2,
  };
  let files: string[];
  let optional: boolean;
  if (params.files) {
    files = params.files.map(checkRepoPath);
    optional = false;
  } else {
    const listing = await listRepository(ctx);
    if (listing) {
      files = selectModelFiles(listing.map(checkRepoPath), { quantized: params.quantized });
      optional = false;
    } else {
      files = probeCandidates(Boolean(params.quantized));
      optional = true;
    }
  }
  const got: string[] = [];
  const queue = [...files];
  for (let i = 0; i < queue.length; i++) {
    const path = queue[i]!;
    const dest = join(dir, path);
    if ((await isFile(dest)) || (await withRetries(ctx, () => downloadFile(ctx, path, dest, optional)))) {
      got.push(path);
      // A sharded checkpoint: its index names the shard files, fetched next (never optional).
      if (path.endsWith(".index.json")) for (const shard of await shardsOf(dest, path)) if (!queue.includes(shard)) queue.push(shard);
    }
  }
  if (!got.some((f) => f.endsWith("config.json"))) {
    throw new Error(`${OWNER}: ${repo}@${revision} at ${ctx.endpoint} has no model folder files (config.json, vocab.txt, model.onnx, ...)`);
  }
  got.push(...(await exportMissingOnnx(dir, got, { quantized: params.quantized })));
  const marker = { repo, revision, endpoint: ctx.endpoint, quantized: Boolean(params.quantized), files: got };
  await writeFileAtomic(markerPath, [new TextEncoder().encode(JSON.stringify(marker, null, 2) + "\n")]);
  return dir;
}

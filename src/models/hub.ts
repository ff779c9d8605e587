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
 * Cache safety: every file is streamed to a temporary file in its destination folder and checked
 * before it is renamed into place: its size against `Content-Length` and `X-Linked-Size`, its
 * SHA-256 against `X-Linked-Etag`, a 64-hex-digit ETag and the caller's `sha256`, its format where
 * that can tell a truncated body (JSON, safetensors, ONNX, zip, UTF-8 text), and the running total
 * against `maxDownloadBytes`. Each verified file is recorded (size, SHA-256, the checks it passed) in
 * `.progress.json`, and a `.complete.json` marker with the same records is written last. A folder
 * without the marker is never returned; an interrupted download leaves no partial file under a real
 * name, the next call fetches only what is missing, and removes temporary files of killed
 * downloads. {@link loadFromHub} re-fetches, once, cached files that no SHA-256 vouched for when
 * loading them fails.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, posix } from "node:path";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";

import { writeFileAtomic, writeStreamAtomic } from "../utils/atomic-file.js";
import { readBertCheckpoint } from "./checkpoint.js";
import {
  expectationOf,
  formatCheckFor,
  isSha256Hex,
  removeStaleTemps,
  repoFolderName,
  repoIdProblem,
  revisionFolderName,
  revisionProblem,
} from "./hub-integrity.js";
import { exportBertOnnx } from "./onnx/bert-graph.js";

/** Default of {@link HubDownloadParams.maxDownloadBytes}: 8 GiB. */
export const DEFAULT_MAX_DOWNLOAD_BYTES = 8 * 1024 ** 3;

/** Settings of {@link downloadModel}. */
export interface HubDownloadParams {
  /** Branch, tag or commit (default "main"). */
  revision?: string;
  /** Hub base URL (default: the HF_ENDPOINT environment variable, else https://huggingface.co). */
  endpoint?: string;
  /** Cache folder (default: LANGCHAIN_DPR_CACHE, else ~/.cache/langchain-dpr). */
  cacheDir?: string;
  /**
   * Access token sent as a Bearer header (default: the HF_TOKEN environment variable); never sent to
   * another origin a redirect leads to.
   */
  token?: string;
  /** Exact repository paths to fetch instead of listing the repository. */
  files?: string[];
  /** Fetch model_quantized.onnx instead of model.onnx. */
  quantized?: boolean;
  /** Extra attempts per file after a failed transfer (default 2). */
  retries?: number;
  /** fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
  /**
   * Most bytes the files of one repository revision may total, cached and downloaded together
   * (default {@link DEFAULT_MAX_DOWNLOAD_BYTES}, 8 GiB). Enforced while the bytes stream, not only
   * from the announced sizes.
   */
  maxDownloadBytes?: number;
  /**
   * Expected SHA-256 digests (64 hex digits) of repository files, by path (`{ "model.safetensors": "ab12…" }`).
   * A file that does not match is not stored; a cached one that does not match is fetched again.
   */
  sha256?: Record<string, string>;
}

const OWNER = "hub";
const MARKER = ".complete.json";
const PROGRESS = ".progress.json";
const MAX_REDIRECTS = 10;
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

/** True for strings shaped like a hub repository id (`owner/name`, without '--' or '..', as Hugging Face requires). */
export function isHubId(ref: string): boolean {
  return repoIdProblem(ref) === null;
}

/** URL of one file of a repository. */
export function hubFileUrl(endpoint: string, repo: string, revision: string, path: string): string {
  const enc = path.split("/").map(encodeURIComponent).join("/");
  return `${endpoint.replace(/\/+$/, "")}/${repo}/resolve/${encodeURIComponent(revision)}/${enc}`;
}

/**
 * Folder of a repository revision inside the cache: `models--{owner}--{name}/{revision}`, the
 * revision's characters other than letters, digits, `_`, `-` and `.` written as `%XX` (UTF-8 bytes),
 * so that two repositories or two revisions never share a folder.
 * @throws Error when the repository id or the revision is not valid (see {@link isHubId}).
 */
export function cachedModelDir(cacheDir: string, repo: string, revision: string): string {
  const repoProblem = repoIdProblem(repo);
  if (repoProblem) throw new Error(`${OWNER}: '${repo}' is not a repository id: ${repoProblem}`);
  const revProblem = revisionProblem(revision);
  if (revProblem) throw new Error(`${OWNER}: revision ${JSON.stringify(revision)} of ${repo} is not valid: ${revProblem}`);
  return join(cacheDir, repoFolderName(repo), revisionFolderName(revision));
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

/** What the cache records of one file: its size, SHA-256 and the checks it passed. */
interface FileEntry {
  size: number;
  sha256: string;
  /**
   * `size:content-length`, `size:x-linked-size`, `sha256:x-linked-etag`, `sha256:etag`, `sha256:caller`,
   * `format:json|utf-8|safetensors|onnx|zip`, `refetched-identical` (a second download gave the same
   * bytes), or `exported` (written here from the weights).
   */
  checks: string[];
}

/** `.complete.json` (written last) and `.progress.json` (after each file). Markers before version 2 have no entries. */
interface CacheRecord {
  version?: number;
  repo?: unknown;
  revision?: unknown;
  endpoint?: string;
  quantized?: boolean;
  files?: unknown;
  entries?: Record<string, FileEntry>;
}

interface Ctx {
  endpoint: string;
  repo: string;
  revision: string;
  dir: string;
  headers: Record<string, string>;
  fetch: typeof fetch;
  retries: number;
  quantized: boolean;
  maxBytes: number;
  sha256: Map<string, string>;
  files?: string[];
}

/** An error of the download itself; `retry` false when another attempt cannot help. */
class HubError extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
  ) {
    super(message);
  }
}

function makeCtx(repo: string, params: HubDownloadParams): Ctx {
  const repoProblem = repoIdProblem(repo);
  if (repoProblem) throw new Error(`${OWNER}: '${repo}' is not a repository id like owner/name: ${repoProblem}`);
  const revision = params.revision ?? "main";
  const dir = cachedModelDir(params.cacheDir ?? defaultCacheDir(), repo, revision);
  const maxBytes = params.maxDownloadBytes ?? DEFAULT_MAX_DOWNLOAD_BYTES;
  if (!(Number.isSafeInteger(maxBytes) && maxBytes > 0) && maxBytes !== Infinity) {
    throw new Error(`${OWNER}: maxDownloadBytes must be a positive integer (bytes) or Infinity, got ${String(maxBytes)}`);
  }
  const sha256 = new Map<string, string>();
  for (const [path, hex] of Object.entries(params.sha256 ?? {})) {
    if (!isSha256Hex(hex))
      throw new Error(`${OWNER}: sha256["${path}"] must be 64 hex digits (a SHA-256 digest), got ${JSON.stringify(hex)}`);
    sha256.set(checkRepoPath(path), hex.toLowerCase());
  }
  const token = params.token ?? process.env.HF_TOKEN;
  return {
    endpoint: params.endpoint ?? defaultEndpoint(),
    repo,
    revision,
    dir,
    headers: token ? { authorization: `Bearer ${token}` } : {},
    fetch: params.fetch ?? fetch,
    retries: params.retries ?? 2,
    quantized: Boolean(params.quantized),
    maxBytes,
    sha256,
    files: params.files?.map(checkRepoPath),
  };
}

const MAX_LISTING_BYTES = 16 * 1024 * 1024;

/** Reads a response body as text, refusing more than `max` bytes (counted while it streams). */
async function readCappedText(res: Response, max: number): Promise<string | null> {
  if (!res.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>)) {
    size += (chunk as Uint8Array).byteLength;
    if (size > max) return null;
    chunks.push(chunk as Uint8Array);
  }
  return Buffer.concat(chunks).toString("utf8");
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
    const text = await readCappedText(res, MAX_LISTING_BYTES);
    if (text === null) return null;
    const json = JSON.parse(text) as { siblings?: Array<{ rfilename?: unknown }> };
    if (!Array.isArray(json.siblings)) return null;
    return json.siblings.map((s) => s?.rfilename).filter((f): f is string => typeof f === "string");
  } catch {
    return null;
  }
}

/**
 * GET with redirects followed here (up to 10), so that the headers of every hop can be read: the
 * hub's resolve response carries `X-Linked-Size` and `X-Linked-Etag` of an LFS file, the CDN it
 * redirects to does not. The token is only sent to the endpoint's origin.
 */
async function getFollowing(ctx: Ctx, url: string, checkHop: (hop: Response) => void): Promise<{ res: Response; hops: Response[] }> {
  const hops: Response[] = [];
  const origin = new URL(url).origin;
  let current = url;
  for (;;) {
    const headers = { "accept-encoding": "identity", ...(new URL(current).origin === origin ? ctx.headers : {}) };
    let res: Response;
    try {
      res = await ctx.fetch(current, { headers, redirect: "manual" });
      // A fetch that hides redirects (a browser's): let it follow them; the hops' headers are lost.
      if (res.type === "opaqueredirect") res = await ctx.fetch(current, { headers, redirect: "follow" });
    } catch (err) {
      throw new HubError(`${OWNER}: GET ${current} failed: ${(err as Error).message}`, true);
    }
    const location = res.headers.get("location");
    if (res.status < 300 || res.status >= 400 || location === null) return { res, hops };
    await res.body?.cancel();
    checkHop(res);
    if (hops.length >= MAX_REDIRECTS) throw new HubError(`${OWNER}: GET ${url} was redirected more than ${MAX_REDIRECTS} times`, false);
    hops.push(res);
    current = new URL(location, current).href;
  }
}

/**
 * Downloads one file atomically and returns what was verified of it, or null when the server answers
 * 404 and the file is optional. Throws on other HTTP errors, dropped connections, sizes or SHA-256
 * digests other than announced, bodies that are not a whole file of their format, and bytes past
 * `budget`; the destination is untouched in every failure case.
 */
async function downloadFile(ctx: Ctx, path: string, dest: string, optional: boolean, budget: number): Promise<FileEntry | null> {
  const url = hubFileUrl(ctx.endpoint, ctx.repo, ctx.revision, path);
  const limitHint = `maxDownloadBytes (${ctx.maxBytes}) for ${ctx.repo}@${ctx.revision}; pass a larger maxDownloadBytes to allow it`;
  const checkAnnounced = (announced: { bytes: number; from: string } | undefined) => {
    if (announced && announced.bytes > budget) {
      const size = `${announced.bytes} bytes (${announced.from})`;
      throw new HubError(`${OWNER}: GET ${url}: the file is ${size}, over the ${budget} bytes left of ${limitHint}`, false);
    }
  };
  // A size announced on a redirect (the hub's X-Linked-Size) is checked before the redirect is followed.
  const linkedSize = (hop: Response) => expectationOf([hop], hop).sizes.find((s) => s.from === "x-linked-size");
  const { res, hops } = await getFollowing(ctx, url, (hop) => checkAnnounced(linkedSize(hop)));
  if (res.status === 404 && optional) {
    await res.body?.cancel();
    return null;
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new HubError(`${OWNER}: GET ${url} answered HTTP ${res.status}`, res.status < 400 || res.status >= 500);
  }
  const expect = expectationOf(hops, res);
  const given = ctx.sha256.get(path);
  if (given) expect.sha256.unshift({ hex: given, from: "caller" });
  const sizes = new Set(expect.sizes.map((s) => s.bytes));
  if (sizes.size > 1) {
    await res.body.cancel();
    const said = expect.sizes.map((s) => `${s.from} ${s.bytes}`).join(", ");
    throw new HubError(`${OWNER}: GET ${url}: the response headers disagree on the size (${said}); the file was not fetched`, false);
  }
  try {
    checkAnnounced(expect.sizes[0]);
  } catch (err) {
    await res.body.cancel();
    throw err;
  }
  const hash = createHash("sha256");
  const format = formatCheckFor(path);
  const checks: string[] = [];
  let received = 0;
  let digest = "";
  await mkdir(dirname(dest), { recursive: true });
  try {
    await writeStreamAtomic(dest, async (write) => {
      for await (const chunk of Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>)) {
        const bytes = chunk as Uint8Array;
        received += bytes.byteLength;
        if (received > budget) {
          throw new HubError(`${OWNER}: GET ${url}: stopped after ${received} bytes, over the ${budget} bytes left of ${limitHint}`, false);
        }
        hash.update(bytes);
        format?.update(bytes);
        await write(bytes);
      }
      for (const { bytes, from } of expect.sizes) {
        if (received !== bytes) throw new Error(`received ${received} of the ${bytes} bytes ${from} announced`);
        checks.push(`size:${from}`);
      }
      digest = hash.digest("hex");
      for (const { hex, from } of expect.sha256) {
        if (digest !== hex) {
          const source = from === "caller" ? `the caller's sha256["${path}"]` : `the ${from === "etag" ? "ETag" : "X-Linked-Etag"} header`;
          throw new HubError(
            `${OWNER}: GET ${url}: the content's SHA-256 is ${digest}, ${source} says ${hex}; the file was not stored`,
            true,
          );
        }
        checks.push(`sha256:${from}`);
      }
      let formatName: string | undefined;
      try {
        formatName = format?.finish();
      } catch (err) {
        throw new HubError(`${OWNER}: GET ${url}: ${path} ${(err as Error).message}; the file was not stored`, true);
      }
      if (formatName) checks.push(`format:${formatName}`);
    });
  } catch (err) {
    if (err instanceof HubError) throw err;
    const cause = (err as { cause?: Error }).cause;
    const detail = (err as Error).message + (cause ? ` (${cause.message})` : "");
    throw new HubError(`${OWNER}: download of ${url} was interrupted: ${detail}`, true);
  }
  return { size: received, sha256: digest, checks };
}

async function withRetries<T>(ctx: Ctx, fn: () => Promise<T>): Promise<T> {
  let lastErr: unknown;
  for (let attempt = 0; attempt <= ctx.retries; attempt++) {
    try {
      return await fn();
    } catch (err) {
      lastErr = err;
      if (err instanceof HubError && !err.retry) break; // client errors and limits don't get better
      if (attempt < ctx.retries) await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
    }
  }
  throw lastErr;
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

async function readRecord(path: string): Promise<CacheRecord | undefined> {
  try {
    const json = JSON.parse(await readFile(path, "utf8")) as unknown;
    return typeof json === "object" && json !== null && !Array.isArray(json) ? (json as CacheRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a record is of this repository (ids are case-insensitive on the hub) and revision. */
function recordIsOf(ctx: Ctx, record: CacheRecord): boolean {
  return typeof record.repo === "string" && record.repo.toLowerCase() === ctx.repo.toLowerCase() && record.revision === ctx.revision;
}

function entriesOf(record: CacheRecord): Map<string, FileEntry> {
  const out = new Map<string, FileEntry>();
  const entries = record.entries;
  if (typeof entries !== "object" || entries === null) return out;
  for (const [path, e] of Object.entries(entries)) {
    const ok = Number.isSafeInteger(e?.size) && isSha256Hex(e?.sha256) && Array.isArray(e?.checks);
    if (ok) out.set(path, { size: e.size, sha256: e.sha256, checks: e.checks.filter((c): c is string => typeof c === "string") });
  }
  return out;
}

/** Whether the file an entry describes is still there with its recorded size and matches the caller's digest. */
async function entryHolds(ctx: Ctx, path: string, entry: FileEntry): Promise<boolean> {
  const given = ctx.sha256.get(path);
  if (given !== undefined && given !== entry.sha256) return false;
  return (await sizeOf(join(ctx.dir, path))) === entry.size;
}

function checkGivenDigestsUsed(ctx: Ctx, files: string[]): void {
  const unknown = [...ctx.sha256.keys()].filter((p) => !files.includes(p));
  if (unknown.length > 0) {
    const names = unknown.map((p) => `'${p}'`).join(", ");
    throw new Error(`${OWNER}: sha256 names ${names}, not among the files of ${ctx.repo}@${ctx.revision} (${files.join(", ")})`);
  }
}

/**
 * Reads the cache folder's records. `complete`: the marker is this revision's, every file it lists is
 * there with its recorded size (and the caller's digest), and it was made with the same `quantized`.
 * `trusted`: the recorded files that still hold, which a download does not fetch again.
 */
async function readCache(ctx: Ctx): Promise<{ complete: boolean; trusted: Map<string, FileEntry> }> {
  const trusted = new Map<string, FileEntry>();
  const marker = await readRecord(join(ctx.dir, MARKER));
  if (marker && !recordIsOf(ctx, marker)) {
    const { repo, revision } = marker;
    const sameFolder =
      typeof repo === "string" &&
      typeof revision === "string" &&
      repoIdProblem(repo) === null &&
      revisionProblem(revision) === null &&
      (repoFolderName(repo) + "/" + revisionFolderName(revision)).toLowerCase() ===
        (repoFolderName(ctx.repo) + "/" + revisionFolderName(ctx.revision)).toLowerCase();
    // Two valid names that lead here differ only in case: a case-insensitive file system (macOS, Windows).
    if (sameFolder) {
      throw new Error(
        `${OWNER}: the cache folder ${ctx.dir} holds ${repo}@${revision}, not ${ctx.repo}@${ctx.revision}: ` +
          "their names differ only in case, which this file system does not tell apart; use another cacheDir for one of them",
      );
    }
    // Written by an earlier version, whose folder names were not one-to-one (v1/x and v1_x shared one;
    // earlier names never hold '%', today's escapes always do): the folder is not this revision's.
    await rm(ctx.dir, { recursive: true, force: true });
    return { complete: false, trusted };
  }
  if (marker) {
    const files = Array.isArray(marker.files) ? marker.files.filter((f): f is string => typeof f === "string") : [];
    const sameBuild = Boolean(marker.quantized) === ctx.quantized;
    if (marker.entries === undefined) {
      // A marker written before files were recorded: complete as it was, unless digests are asked for.
      if (sameBuild && ctx.sha256.size === 0) return { complete: true, trusted };
    } else {
      for (const [path, entry] of entriesOf(marker)) if (await entryHolds(ctx, path, entry)) trusted.set(path, entry);
      if (sameBuild && files.length > 0 && files.every((f) => trusted.has(f))) {
        checkGivenDigestsUsed(ctx, files);
        return { complete: true, trusted };
      }
    }
  }
  const progress = await readRecord(join(ctx.dir, PROGRESS));
  if (progress && recordIsOf(ctx, progress)) {
    for (const [path, entry] of entriesOf(progress))
      if (!trusted.has(path) && (await entryHolds(ctx, path, entry))) trusted.set(path, entry);
  }
  return { complete: false, trusted };
}

async function writeRecord(path: string, record: CacheRecord): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(record, null, 2) + "\n");
}

function totalSize(entries: Map<string, FileEntry>, except?: string): number {
  let total = 0;
  for (const [path, e] of entries) if (path !== except && !e.checks.includes("exported")) total += e.size;
  return total;
}

function isVouched(entry: FileEntry): boolean {
  return entry.checks.some((c) => c.startsWith("sha256:") || c === "refetched-identical");
}

/**
 * Re-fetches, once, those of `paths` that may be damaged: a file whose bytes no longer hash to its
 * record, and a file no SHA-256 vouched for and not already fetched twice. A second download that
 * gives the same bytes marks the file `refetched-identical` (it is not fetched again). Returns the
 * paths whose bytes changed; `entries` is updated.
 */
async function refetchSuspects(ctx: Ctx, entries: Map<string, FileEntry>, paths: string[]): Promise<string[]> {
  const changed: string[] = [];
  for (const path of paths) {
    const entry = entries.get(path);
    if (entry?.checks.includes("exported")) continue;
    const dest = join(ctx.dir, path);
    const size = await sizeOf(dest);
    const current = size === undefined ? undefined : await sha256OfFile(dest);
    const intact = entry !== undefined && size === entry.size && current === entry.sha256;
    if (intact && isVouched(entry)) continue;
    const budget = ctx.maxBytes - totalSize(entries, path);
    const fresh = await withRetries(ctx, () => downloadFile(ctx, path, dest, false, budget));
    if (!fresh) continue;
    if (fresh.sha256 === current) fresh.checks.push("refetched-identical");
    else changed.push(path);
    entries.set(path, fresh);
  }
  return changed;
}

async function exportAndRecord(ctx: Ctx, got: string[], entries: Map<string, FileEntry>): Promise<string[]> {
  const written = await exportMissingOnnx(ctx.dir, got, { quantized: ctx.quantized });
  for (const path of written) {
    const file = join(ctx.dir, path);
    entries.set(path, { size: (await sizeOf(file)) ?? 0, sha256: await sha256OfFile(file), checks: ["exported"] });
  }
  return written;
}

/** Writes `.complete.json` (the files and their records) and drops `.progress.json`. */
async function writeMarker(ctx: Ctx, files: string[], entries: Map<string, FileEntry>): Promise<void> {
  const record: CacheRecord = {
    version: 2,
    repo: ctx.repo,
    revision: ctx.revision,
    endpoint: ctx.endpoint,
    quantized: ctx.quantized,
    files,
    entries: Object.fromEntries(files.filter((f) => entries.has(f)).map((f) => [f, entries.get(f)!])),
  };
  await writeRecord(join(ctx.dir, MARKER), record);
  await rm(join(ctx.dir, PROGRESS), { force: true });
}

async function fetchRevision(ctx: Ctx, trusted: Map<string, FileEntry>): Promise<void> {
  await mkdir(ctx.dir, { recursive: true });
  await removeStaleTemps(ctx.dir);
  let files: string[];
  let optional: boolean;
  const listing = ctx.files ? null : await listRepository(ctx);
  if (ctx.files) {
    files = ctx.files;
    optional = false;
  } else if (listing) {
    files = selectModelFiles(listing.map(checkRepoPath), { quantized: ctx.quantized });
    optional = false;
  } else {
    files = probeCandidates(ctx.quantized);
    optional = true;
  }
  await fetchFiles(ctx, files, optional, trusted);
}

function progressOf(ctx: Ctx, entries: Map<string, FileEntry>): CacheRecord {
  return { version: 2, repo: ctx.repo, revision: ctx.revision, entries: Object.fromEntries(entries) };
}

async function fetchFiles(ctx: Ctx, files: string[], optional: boolean, trusted: Map<string, FileEntry>): Promise<void> {
  const entries = new Map<string, FileEntry>();
  const got: string[] = [];
  const queue = [...files];
  for (let i = 0; i < queue.length; i++) {
    const path = queue[i]!;
    const dest = join(ctx.dir, path);
    let entry: FileEntry | null | undefined = trusted.get(path);
    const fetched = !entry;
    // A cached file matching the caller's digest (recorded when it was downloaded) is vouched for by it.
    if (entry && ctx.sha256.has(path) && !entry.checks.includes("sha256:caller")) {
      entry = { ...entry, checks: [...entry.checks, "sha256:caller"] };
    }
    if (!entry) {
      const budget = ctx.maxBytes - totalSize(entries);
      entry = await withRetries(ctx, () => downloadFile(ctx, path, dest, optional, budget));
    }
    if (!entry) continue;
    entries.set(path, entry);
    if (fetched) {
      await writeRecord(join(ctx.dir, PROGRESS), progressOf(ctx, entries));
    }
    if (totalSize(entries) > ctx.maxBytes) {
      throw new Error(
        `${OWNER}: the files of ${ctx.repo}@${ctx.revision} total ${totalSize(entries)} bytes, over maxDownloadBytes (${ctx.maxBytes}); ` +
          "pass a larger maxDownloadBytes to allow it",
      );
    }
    got.push(path);
    // A sharded checkpoint: its index names the shard files, fetched next (never optional).
    if (path.endsWith(".index.json")) for (const shard of await shardsOf(dest, path)) if (!queue.includes(shard)) queue.push(shard);
  }
  if (!got.some((f) => f.endsWith("config.json"))) {
    throw new Error(
      `${OWNER}: ${ctx.repo}@${ctx.revision} at ${ctx.endpoint} has no model folder files (config.json, vocab.txt, model.onnx, ...)`,
    );
  }
  checkGivenDigestsUsed(ctx, got);
  let exported: string[];
  try {
    exported = await exportAndRecord(ctx, got, entries);
  } catch (err) {
    // The weights may be a body cut where no header or format check could tell: fetch them once more.
    // A second download with the same bytes is recorded, so that the next call does not fetch it again.
    const weights = got.filter((p) => /\.(safetensors|bin)$/.test(p));
    const changed = await refetchSuspects(ctx, entries, weights);
    await writeRecord(join(ctx.dir, PROGRESS), progressOf(ctx, entries));
    if (changed.length === 0) throw err;
    exported = await exportAndRecord(ctx, got, entries);
  }
  await writeMarker(ctx, [...got, ...exported], entries);
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
 * @throws Error naming the URL on HTTP errors, dropped connections, truncated files, sizes or SHA-256
 *   digests other than the server or the caller announced, and files past `maxDownloadBytes`; and
 *   when the repository has none of the model folder format's files.
 */
export async function downloadModel(repo: string, params: HubDownloadParams = {}): Promise<string> {
  const ctx = makeCtx(repo, params);
  const { complete, trusted } = await readCache(ctx);
  if (!complete) await fetchRevision(ctx, trusted);
  return ctx.dir;
}

/**
 * Re-fetches, once, the files of a complete cached revision that could be why loading it failed: those
 * whose bytes no longer hash to what the cache recorded, and those no SHA-256 (header or caller)
 * vouched for, unless an earlier repair already fetched them twice with the same result. Weights that
 * change are exported to ONNX again. A marker written before file records existed (older versions)
 * has its whole revision fetched again. Returns the repository paths whose bytes changed (empty:
 * the cache is not at fault).
 */
export async function repairCachedModel(repo: string, params: HubDownloadParams = {}): Promise<string[]> {
  const ctx = makeCtx(repo, params);
  const markerPath = join(ctx.dir, MARKER);
  const marker = await readRecord(markerPath);
  if (!marker || !recordIsOf(ctx, marker)) return [];
  const files = Array.isArray(marker.files) ? marker.files.filter((f): f is string => typeof f === "string") : [];
  if (marker.entries === undefined) {
    await rm(markerPath, { force: true });
    await fetchRevision(ctx, new Map());
    return files;
  }
  const entries = entriesOf(marker);
  const downloaded = files.filter((f) => !entries.get(f)?.checks.includes("exported"));
  const changed = await refetchSuspects(ctx, entries, downloaded);
  const exported = files.filter((f) => entries.get(f)?.checks.includes("exported"));
  let reexport = changed.length > 0;
  for (const path of exported) {
    const file = join(ctx.dir, path);
    const intact = (await sizeOf(file)) === entries.get(path)!.size && (await sha256OfFile(file)) === entries.get(path)!.sha256;
    if (!intact) reexport = true;
  }
  if (reexport) {
    for (const path of exported) entries.delete(path);
    const written = await exportAndRecord(ctx, downloaded, entries);
    changed.push(...written.filter((p) => !changed.includes(p)));
    await writeMarker(ctx, [...downloaded, ...written], entries);
  } else {
    await writeMarker(ctx, files, entries);
  }
  return changed;
}

/**
 * Runs `load`; when it throws and `repos` (hub ids whose cached folders `load` reads) is not empty,
 * repairs their cached folders ({@link repairCachedModel}) and runs `load` once more if any file
 * changed, else throws the first error.
 */
export async function retryAfterRepair<T>(repos: string[], params: HubDownloadParams, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if (repos.length === 0) throw err;
    const changed: string[] = [];
    try {
      for (const repo of new Set(repos)) changed.push(...(await repairCachedModel(repo, params)));
    } catch (repairErr) {
      const also = `fetching the cached files of ${repos.join(", ")} again failed too: ${(repairErr as Error).message}`;
      throw new Error(`${(err as Error).message} (${also})`, { cause: err });
    }
    if (changed.length === 0) throw err;
    return await load();
  }
}

/** The keys {@link splitHubParams} moves out of a loader's parameters (`quantized` is copied: both use it). */
export type HubOnlyKey = Exclude<keyof HubDownloadParams, "quantized">;

// A Record, so that a key added to HubDownloadParams and not here fails to compile.
const HUB_KEYS: Record<HubOnlyKey, true> = {
  revision: true,
  endpoint: true,
  cacheDir: true,
  token: true,
  files: true,
  retries: true,
  fetch: true,
  maxDownloadBytes: true,
  sha256: true,
};

/**
 * Splits a loader's parameters into the hub download settings (with `quantized`, which both use) and
 * the rest, so that every {@link HubDownloadParams} key reaches {@link downloadModel}.
 */
export function splitHubParams<T extends HubDownloadParams>(params: T): { hub: HubDownloadParams; rest: Omit<T, HubOnlyKey> } {
  const hub: Record<string, unknown> = { quantized: params.quantized };
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) {
    if (Object.hasOwn(HUB_KEYS, key)) hub[key] = value;
    else rest[key] = value;
  }
  return { hub: hub as HubDownloadParams, rest: rest as Omit<T, HubOnlyKey> };
}

/**
 * Downloads `repo` (see {@link downloadModel}) and returns what `load` makes of the folder. When `load`
 * throws, the cached files that could be at fault are fetched again once ({@link repairCachedModel});
 * if any changed, `load` runs once more, else the first error is thrown: a file cut short where no
 * header or format check could tell does not break every later call.
 */
export async function loadFromHub<T>(repo: string, params: HubDownloadParams, load: (dir: string) => Promise<T>): Promise<T> {
  const dir = await downloadModel(repo, params);
  return retryAfterRepair([repo], params, () => load(dir));
}

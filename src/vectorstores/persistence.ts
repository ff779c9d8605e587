/**
 * FaissDPRStore on disk: `manifest.json` naming one generation's `index.<gen>.faiss` (a plain faiss
 * file) and `docs.<gen>.jsonl` (one document per line), with each file's size and SHA-256. A save
 * writes a new generation, fsyncs it, then replaces the manifest by rename, so a crash at any point
 * leaves the previous copy loadable. Saves take the folder's `.lock` (one writer at a time, across
 * processes); the files of interrupted saves are removed by the next save or load that can take it.
 *
 * @module
 */
import { createReadStream } from "node:fs";
import { randomUUID } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { FaissIndex } from "../native/faiss-index.js";
import { isTempName, writeFileAtomic, writeStreamAtomic } from "../utils/atomic-file.js";
import { checksumFile, type FileChecksum } from "../utils/checksum.js";
import { LOCK_FILE, acquireDirLock, tryDirLock } from "../utils/dir-lock.js";
import { OWNER } from "./matrix.js";
import type { StoreState } from "./state.js";
import type { MMRSimilarity, StoredDoc } from "./types.js";

const FORMAT = "langchain-dpr/faiss-dpr-store";
/** Written: 2 (adds `checksums`). Read: 1 and 2. */
const FORMAT_VERSION = 2;
const READABLE_VERSIONS = [1, 2];
const MANIFEST = "manifest.json";
/** Names a save writes (generations; the temporary manifest name of version 1). */
const GENERATION_FILE = /^(index\..+\.faiss|docs\..+\.jsonl|manifest\.json\.tmp-.+)$/;

/** Store settings kept in the manifest. */
export interface SavedSettings {
  factory: string;
  nprobe?: number;
  efSearch?: number;
  mmrSimilarity?: MMRSimilarity;
}

interface Manifest extends SavedSettings {
  format: string;
  version: number;
  generation: string;
  indexFile: string;
  docsFile: string;
  dimensions: number;
  metric: string;
  ntotal: number;
  count: number;
  nextLabel: number;
  tombstones: number[];
  /** Size and SHA-256 of indexFile and docsFile, by file name (version 2). */
  checksums?: Record<string, FileChecksum>;
}

/** Options of `FaissDPRStore.load` (its third argument). */
export interface FaissDPRLoadOptions {
  /**
   * Check each file's SHA-256 against the manifest before reading it (default true). Sizes are
   * always checked; turning this off saves one read of the files through SHA-256.
   */
  verifyChecksums?: boolean;
}

/** What {@link readSavedStore} returns: the parts a StoreState is made of, plus the settings. */
export interface SavedStore {
  settings: SavedSettings;
  index: FaissIndex;
  dims: number;
  nextLabel: number;
  tombstones: number[];
  docs: Map<number, StoredDoc>;
}

/**
 * Removes what interrupted saves left in `directory`: generation files other than `keep`, and
 * temporary files (never another process's lock being taken).
 */
async function removeLeftovers(directory: string, keep: ReadonlySet<string>): Promise<void> {
  for (const name of await readdir(directory)) {
    if (keep.has(name) || name.startsWith(`${LOCK_FILE}.`)) continue;
    if (GENERATION_FILE.test(name) || isTempName(name)) await rm(path.join(directory, name), { force: true });
  }
}

/** The files the current manifest names, or undefined when there is no readable manifest. */
async function currentFiles(directory: string): Promise<Set<string> | undefined> {
  try {
    const m = await readManifest(directory);
    return new Set([m.indexFile, m.docsFile]);
  } catch {
    return undefined;
  }
}

async function writeDocs(state: StoreState, file: string): Promise<void> {
  await writeStreamAtomic(file, async (write) => {
    let chunk: string[] = [];
    let chunkChars = 0;
    for (const label of [...state.docs.keys()].sort((a, b) => a - b)) {
      const doc = state.docs.get(label)!;
      const line = JSON.stringify({ label, id: doc.id, pageContent: doc.pageContent, metadata: doc.metadata });
      chunk.push(line);
      chunkChars += line.length;
      if (chunkChars > 1 << 20) {
        await write(chunk.join("\n") + "\n");
        chunk = [];
        chunkChars = 0;
      }
    }
    if (chunk.length > 0) await write(chunk.join("\n") + "\n");
  });
}

/**
 * Saves the state atomically to `directory` (the caller holds the store's mutex; the folder's lock
 * keeps other processes out).
 */
export async function saveStore(state: StoreState, directory: string, settings: SavedSettings): Promise<void> {
  if (!state.index || state.dims === undefined) throw new Error(`${OWNER}.save: the store is empty (nothing to save)`);
  await mkdir(directory, { recursive: true });
  const lock = await acquireDirLock(directory, `${OWNER}.save`);
  try {
    const previous = await currentFiles(directory);
    if (previous) await removeLeftovers(directory, previous); // room for the new generation
    const generation = `${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
    const indexFile = `index.${generation}.faiss`;
    const docsFile = `docs.${generation}.jsonl`;
    await state.index.write(path.join(directory, indexFile)); // fsynced by the addon
    await writeDocs(state, path.join(directory, docsFile));
    const manifest: Manifest = {
      format: FORMAT,
      version: FORMAT_VERSION,
      generation,
      indexFile,
      docsFile,
      ...settings,
      dimensions: state.dims,
      metric: state.index.metric,
      ntotal: state.index.ntotal,
      count: state.docs.size,
      nextLabel: state.nextLabel,
      tombstones: [...state.tombstones].sort((a, b) => a - b),
      checksums: {
        [indexFile]: await checksumFile(path.join(directory, indexFile)),
        [docsFile]: await checksumFile(path.join(directory, docsFile)),
      },
    };
    await writeFileAtomic(path.join(directory, MANIFEST), JSON.stringify(manifest, null, 2));
    await removeLeftovers(directory, new Set([indexFile, docsFile])); // older generations
  } finally {
    await lock.release();
  }
}

/** Checks every manifest field's type and range, naming each one that is wrong. */
function checkManifest(value: unknown, manifestPath: string): Manifest {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`${OWNER}.load: ${manifestPath} must hold a JSON object, got ${Array.isArray(value) ? "an array" : String(value)}`);
  }
  const m = value as Record<string, unknown>;
  if (m.format !== FORMAT || !READABLE_VERSIONS.includes(m.version as number)) {
    throw new Error(
      `${OWNER}.load: ${manifestPath} has format ${String(m.format)} v${String(m.version)}, ` +
        `expected ${FORMAT} v${READABLE_VERSIONS.join(" or v")}`,
    );
  }
  const problems: string[] = [];
  const got = (k: string) => (m[k] === undefined ? "nothing" : JSON.stringify(m[k]));
  const isInt = (v: unknown, min: number) => Number.isSafeInteger(v) && (v as number) >= min;
  for (const k of ["generation", "indexFile", "docsFile", "metric", "factory"]) {
    if (typeof m[k] !== "string" || m[k] === "") problems.push(`${k} must be a non-empty string, got ${got(k)}`);
  }
  for (const k of ["indexFile", "docsFile"]) {
    const name = m[k];
    if (typeof name === "string" && (path.basename(name) !== name || name === "." || name === ".."))
      problems.push(`${k} must be a file name in the folder, got ${got(k)}`);
  }
  for (const [k, min] of [
    ["dimensions", 1],
    ["ntotal", 0],
    ["count", 0],
    ["nextLabel", 0],
  ] as const) {
    if (!isInt(m[k], min)) problems.push(`${k} must be an integer ≥ ${min}, got ${got(k)}`);
  }
  for (const k of ["nprobe", "efSearch"]) {
    if (m[k] !== undefined && !isInt(m[k], 1)) problems.push(`${k} must be an integer ≥ 1 when present, got ${got(k)}`);
  }
  const t = m.tombstones;
  if (!Array.isArray(t) || !t.every((x) => isInt(x, 0))) {
    problems.push(`tombstones must be an array of labels (integers ≥ 0), got ${got("tombstones")}`);
  } else {
    if (new Set(t).size !== t.length) problems.push("tombstones lists a label twice");
    if (isInt(m.nextLabel, 0) && t.some((x) => (x as number) >= (m.nextLabel as number))) {
      problems.push(`tombstones has a label ≥ nextLabel (${String(m.nextLabel)})`);
    }
  }
  if (m.version === 2) {
    const c = m.checksums as Record<string, unknown> | undefined;
    for (const k of ["indexFile", "docsFile"]) {
      const name = m[k];
      const entry = c && typeof name === "string" ? (c[name] as Partial<FileChecksum> | undefined) : undefined;
      if (!entry || !isInt(entry.bytes, 0) || typeof entry.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(entry.sha256)) {
        problems.push(`checksums must give { bytes, sha256 } for ${k} ${got(k)}`);
      }
    }
  }
  if (problems.length > 0) throw new Error(`${OWNER}.load: ${manifestPath} is not a valid manifest: ${problems.join("; ")}`);
  return m as unknown as Manifest;
}

async function readManifest(directory: string): Promise<Manifest> {
  const manifestPath = path.join(directory, MANIFEST);
  let text: string;
  try {
    text = await readFile(manifestPath, "utf8");
  } catch (e) {
    throw new Error(
      `${OWNER}.load: ${manifestPath} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ` +
        `not a saved ${OWNER} folder?`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${OWNER}.load: ${manifestPath} is not valid JSON: ${(e as Error).message}`);
  }
  return checkManifest(value, manifestPath);
}

/** Checks that a file named by the manifest exists with the saved size (and SHA-256 when `verify`). */
async function checkFile(directory: string, name: string, what: string, m: Manifest, verify: boolean): Promise<string> {
  const file = path.join(directory, name);
  let bytes: number;
  try {
    bytes = (await stat(file)).size;
  } catch {
    throw new Error(`${what} ${file} named by the manifest is missing`);
  }
  const saved = m.checksums?.[name];
  if (!saved) return file; // version 1: no checksums
  const damaged = `${what} ${file} is damaged (changed since it was saved)`;
  const fix = "restore the folder from a backup or save the store again";
  if (bytes !== saved.bytes) throw new Error(`${damaged}: ${bytes} bytes, the manifest says ${saved.bytes}; ${fix}`);
  if (verify) {
    const { sha256 } = await checksumFile(file);
    if (sha256 !== saved.sha256) throw new Error(`${damaged}: SHA-256 ${sha256}, the manifest says ${saved.sha256}; ${fix}`);
  }
  return file;
}

/**
 * Reads the documents file, checking each line: a JSON object with an integer label below
 * nextLabel that is neither a tombstone nor repeated, a non-empty id not repeated, a string
 * pageContent and an object (or absent) metadata.
 */
async function readDocs(docsPath: string, m: Manifest): Promise<Map<number, StoredDoc>> {
  const docs = new Map<number, StoredDoc>();
  const ids = new Set<string>();
  const tombstones = new Set(m.tombstones);
  const lines = createInterface({ input: createReadStream(docsPath, { encoding: "utf8" }), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.length === 0) continue;
    const at = `${docsPath} line ${lineNo}`;
    let rec: { label?: unknown; id?: unknown; pageContent?: unknown; metadata?: unknown };
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new Error(`${at} is not valid JSON (${(e as Error).message})`);
    }
    if (rec === null || typeof rec !== "object" || Array.isArray(rec)) throw new Error(`${at} must be a JSON object`);
    const { label, id, pageContent, metadata } = rec;
    if (!Number.isSafeInteger(label) || (label as number) < 0 || (label as number) >= m.nextLabel) {
      throw new Error(`${at}: label must be an integer in [0, nextLabel = ${m.nextLabel}), got ${JSON.stringify(label)}`);
    }
    if (typeof id !== "string" || id === "") throw new Error(`${at}: id must be a non-empty string, got ${JSON.stringify(id)}`);
    if (typeof pageContent !== "string") throw new Error(`${at}: pageContent must be a string, got ${typeof pageContent}`);
    if (metadata !== undefined && (metadata === null || typeof metadata !== "object" || Array.isArray(metadata))) {
      throw new Error(`${at}: metadata must be an object, got ${JSON.stringify(metadata)}`);
    }
    const l = label as number;
    if (tombstones.has(l)) throw new Error(`${at}: label ${l} is a deleted one (in the manifest's tombstones)`);
    if (docs.has(l)) throw new Error(`${at}: label ${l} appears twice`);
    if (ids.has(id)) throw new Error(`${at}: id ${JSON.stringify(id)} appears twice`);
    ids.add(id);
    docs.set(l, { id, pageContent, metadata: (metadata as Record<string, unknown> | undefined) ?? {} });
  }
  return docs;
}

/** Removes leftovers of interrupted saves when no save is running; a read-only folder is left as it is. */
async function cleanAfterLoad(directory: string, m: Manifest): Promise<void> {
  try {
    const lock = await tryDirLock(directory);
    if (!lock) return; // a save is running: it cleans up itself
    try {
      const now = await readManifest(directory);
      if (now.generation === m.generation) await removeLeftovers(directory, new Set([m.indexFile, m.docsFile]));
    } finally {
      await lock.release();
    }
  } catch {
    // read-only media or permissions: loading does not need to write
  }
}

/**
 * Reads a folder written by {@link saveStore}. Checks each file's size and SHA-256 (version 2)
 * before reading it, that the index's dimension, metric and vector count and the documents agree
 * with the manifest, naming whatever does not; then removes leftovers of interrupted saves.
 */
export async function readSavedStore(directory: string, options: FaissDPRLoadOptions = {}): Promise<SavedStore> {
  const verify = options.verifyChecksums ?? true;
  const m = await readManifest(directory);
  let indexPath: string;
  let docsPath: string;
  try {
    indexPath = await checkFile(directory, m.indexFile, "index file", m, verify);
    docsPath = await checkFile(directory, m.docsFile, "documents file", m, verify);
  } catch (e) {
    throw new Error(`${OWNER}.load: ${(e as Error).message}`);
  }
  const index = await FaissIndex.read(indexPath).catch((e: Error) => {
    throw new Error(`${OWNER}.load: ${e.message}`);
  });
  try {
    const problems: string[] = [];
    if (index.d !== m.dimensions) problems.push(`dimension: index ${index.d}, manifest ${m.dimensions}`);
    if (index.metric !== m.metric || index.metric !== "inner_product") {
      problems.push(`metric: index ${index.metric}, manifest ${m.metric} (expected inner_product)`);
    }
    if (index.ntotal !== m.ntotal) problems.push(`vector count: index ${index.ntotal}, manifest ${m.ntotal}`);
    if (m.ntotal - m.tombstones.length !== m.count) {
      problems.push(`manifest: ${m.ntotal} vectors − ${m.tombstones.length} deleted ≠ ${m.count} documents`);
    }
    if (m.nextLabel < m.ntotal) problems.push(`manifest: nextLabel ${m.nextLabel} < ${m.ntotal} vectors (labels are never reused)`);
    if (problems.length > 0) throw new Error(`${directory} is inconsistent: ${problems.join("; ")}`);
    const docs = await readDocs(docsPath, m);
    if (docs.size !== m.count) {
      throw new Error(`document count: ${docsPath} has ${docs.size}, manifest and index say ${m.count}`);
    }
    const settings: SavedSettings = { factory: m.factory, nprobe: m.nprobe, efSearch: m.efSearch, mmrSimilarity: m.mmrSimilarity };
    await cleanAfterLoad(directory, m);
    return { settings, index, dims: m.dimensions, nextLabel: m.nextLabel, tombstones: m.tombstones, docs };
  } catch (e) {
    await index.dispose();
    throw new Error(`${OWNER}.load: ${(e as Error).message}`);
  }
}

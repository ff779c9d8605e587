/**
 * FaissDPRStore on disk: `manifest.json` naming one generation's `index.<gen>.faiss` (a plain faiss
 * file) and `docs.<gen>.jsonl` (one document per line). A save writes a new generation, fsyncs it,
 * then replaces the manifest by rename, so a crash at any point leaves the previous copy loadable.
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { FaissIndex } from "../native/faiss-index.js";
import { isTempName, writeFileAtomic, writeStreamAtomic } from "../utils/atomic-file.js";
import { OWNER } from "./matrix.js";
import type { StoreState } from "./state.js";
import type { MMRSimilarity, StoredDoc } from "./types.js";

const FORMAT = "langchain-dpr/faiss-dpr-store";
const FORMAT_VERSION = 1;
const MANIFEST = "manifest.json";

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

/** Saves the state atomically to `directory` (the caller holds the store's mutex). */
export async function saveStore(state: StoreState, directory: string, settings: SavedSettings): Promise<void> {
  if (!state.index || state.dims === undefined) throw new Error(`${OWNER}.save: the store is empty (nothing to save)`);
  await mkdir(directory, { recursive: true });
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
  };
  await writeFileAtomic(path.join(directory, MANIFEST), JSON.stringify(manifest, null, 2));
  // clean older generations and leftovers of interrupted saves
  for (const name of await readdir(directory)) {
    const ours = /^(index\..+\.faiss|docs\..+\.jsonl|manifest\.json\.tmp-.+)$/.test(name) || isTempName(name);
    if (ours && name !== indexFile && name !== docsFile) await rm(path.join(directory, name), { force: true });
  }
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
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch (e) {
    throw new Error(`${OWNER}.load: ${manifestPath} is not valid JSON: ${(e as Error).message}`);
  }
  if (m.format !== FORMAT || m.version !== FORMAT_VERSION) {
    throw new Error(`${OWNER}.load: ${manifestPath} has format ${m.format} v${m.version}, expected ${FORMAT} v${FORMAT_VERSION}`);
  }
  return m;
}

async function readDocs(docsPath: string): Promise<Map<number, StoredDoc>> {
  try {
    await stat(docsPath);
  } catch {
    throw new Error(`documents file ${docsPath} named by the manifest is missing`);
  }
  const docs = new Map<number, StoredDoc>();
  const lines = createInterface({ input: createReadStream(docsPath, { encoding: "utf8" }), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.length === 0) continue;
    let rec: { label: number; id: string; pageContent: string; metadata: Record<string, unknown> };
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new Error(`${docsPath} line ${lineNo} is not valid JSON (${(e as Error).message})`);
    }
    if (!Number.isInteger(rec.label) || typeof rec.id !== "string" || typeof rec.pageContent !== "string") {
      throw new Error(`${docsPath} line ${lineNo} lacks label/id/pageContent`);
    }
    docs.set(rec.label, { id: rec.id, pageContent: rec.pageContent, metadata: rec.metadata ?? {} });
  }
  return docs;
}

/**
 * Reads a folder written by {@link saveStore}. Checks that the index's dimension, metric and vector
 * count and the document count agree with the manifest, naming whatever does not.
 */
export async function readSavedStore(directory: string): Promise<SavedStore> {
  const m = await readManifest(directory);
  const indexPath = path.join(directory, m.indexFile);
  try {
    await stat(indexPath);
  } catch {
    throw new Error(`${OWNER}.load: index file ${indexPath} named by the manifest is missing`);
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
    if (problems.length > 0) throw new Error(`${directory} is inconsistent: ${problems.join("; ")}`);
    const docsPath = path.join(directory, m.docsFile);
    const docs = await readDocs(docsPath);
    if (docs.size !== m.count) {
      throw new Error(`document count: ${docsPath} has ${docs.size}, manifest and index say ${m.count}`);
    }
    const settings: SavedSettings = { factory: m.factory, nprobe: m.nprobe, efSearch: m.efSearch, mmrSimilarity: m.mmrSimilarity };
    return { settings, index, dims: m.dimensions, nextLabel: m.nextLabel, tombstones: m.tombstones, docs };
  } catch (e) {
    await index.dispose();
    throw new Error(`${OWNER}.load: ${(e as Error).message}`);
  }
}

/**
 * Reads other LangChain FAISS stores' folders into vectors + documents for FaissDPRStore:
 *
 * - LangChain.js `FaissStore` (@langchain/community) `save(dir)`: `faiss.index` + `docstore.json`
 *   (`[[[id, {pageContent, metadata}], ...], {"<faiss position>": id, ...}]`). FaissStore always
 *   builds an `IndexFlatL2`: an **L2** index.
 * - LangChain Python `FAISS.save_local(dir, index_name="index")`: `index.faiss` + `index.pkl` (see
 *   ./langchain-pickle.ts). **L2** (`IndexFlatL2`) by default; inner product (`IndexFlatIP`) when
 *   built with `distance_strategy=MAX_INNER_PRODUCT`. The faiss file records which.
 *
 * Either way the vectors are read back from the faiss index (by the positions the mapping names)
 * and the documents keep their docstore ids.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Document } from "@langchain/core/documents";
import { FaissIndex } from "../native/faiss-index.js";
import { readLangChainPickle } from "./langchain-pickle.js";
import { OWNER } from "./matrix.js";
import type { FaissDPRImportMetric as ImportMetric } from "./types.js";

/** The vectors and documents of an imported folder. */
export interface ImportedFolder {
  dims: number;
  /** n × dims, row-major, in faiss position order. */
  vectors: Float32Array;
  /** With their docstore ids as `id`. */
  documents: Document[];
  ids: string[];
  /** The source index's metric ("l2" or "inner_product"). */
  sourceMetric: string;
}

async function readBytes(file: string, owner: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new Error(`${owner}: ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Opens a foreign faiss file and checks its metric against the caller's choice. */
async function openIndex(file: string, metric: ImportMetric, owner: string): Promise<FaissIndex> {
  if (metric !== "inner_product" && metric !== "convert-to-inner-product") {
    throw new Error(`${owner}: metric must be "inner_product" or "convert-to-inner-product", got ${JSON.stringify(metric)}`);
  }
  const index = await FaissIndex.read(file).catch((e: Error) => {
    throw new Error(`${owner}: ${e.message}`);
  });
  const m = index.metric;
  if (m === "inner_product" || (m === "l2" && metric === "convert-to-inner-product")) return index;
  await index.dispose();
  if (m === "l2") {
    throw new Error(
      `${owner}: ${file} is an L2 index (LangChain's default IndexFlatL2, ranked by Euclidean distance); ` +
        `FaissDPRStore ranks by inner product. Pass { metric: "convert-to-inner-product" } to copy the same vectors ` +
        `into an inner-product index (the ranking changes unless the vectors are normalised), or re-embed the documents.`,
    );
  }
  throw new Error(`${owner}: ${file} uses the faiss metric ${m}; only inner_product (or l2, converted) can be opened`);
}

/**
 * Reads the vectors at `positions` (the mapping's keys, ascending) and pairs them with documents.
 * The index is disposed afterwards.
 */
async function collect(
  index: FaissIndex,
  file: string,
  entries: Array<[number, string]>,
  docOf: (id: string, pos: number) => { pageContent: string; metadata: Record<string, unknown> },
  owner: string,
): Promise<ImportedFolder> {
  try {
    if (entries.length !== index.ntotal) {
      throw new Error(`${owner}: ${file} holds ${index.ntotal} vectors but the mapping names ${entries.length}`);
    }
    entries.sort((a, b) => a[0] - b[0]);
    if (!index.info.hasIdMap) {
      const bad = entries.find(([pos]) => pos >= index.ntotal);
      if (bad) throw new Error(`${owner}: the mapping names faiss position ${bad[0]}, beyond the ${index.ntotal} vectors of ${file}`);
    }
    const seen = new Set<string>();
    const documents = entries.map(([pos, id]) => {
      if (seen.has(id)) throw new Error(`${owner}: document id "${id}" is mapped to two faiss positions`);
      seen.add(id);
      const doc = docOf(id, pos);
      return new Document({ pageContent: doc.pageContent, metadata: doc.metadata, id });
    });
    const vectors =
      entries.length === 0 ? new Float32Array(0) : await index.reconstruct(BigInt64Array.from(entries, ([pos]) => BigInt(pos)));
    return { dims: index.d, vectors, documents, ids: entries.map(([, id]) => id), sourceMetric: index.metric };
  } finally {
    await index.dispose();
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Reads a LangChain.js FaissStore folder (`faiss.index`, `docstore.json`). */
export async function readFaissStoreFolder(dir: string, metric: ImportMetric): Promise<ImportedFolder> {
  const owner = `${OWNER}.loadFromFaissStore`;
  const storeFile = path.join(dir, "docstore.json");
  const indexFile = path.join(dir, "faiss.index");
  let raw: unknown;
  try {
    raw = JSON.parse((await readBytes(storeFile, owner)).toString("utf8"));
  } catch (e) {
    throw e instanceof SyntaxError ? new Error(`${owner}: ${storeFile} is not valid JSON: ${e.message}`) : e;
  }
  if (!Array.isArray(raw) || raw.length !== 2 || !Array.isArray(raw[0]) || !isRecord(raw[1])) {
    throw new Error(`${owner}: ${storeFile} should be [[[id, document], ...], {position: id}] as FaissStore.save writes it`);
  }
  const docs = new Map<string, { pageContent: string; metadata: Record<string, unknown> }>();
  (raw[0] as unknown[]).forEach((entry, i) => {
    const [id, doc] = Array.isArray(entry) ? entry : [];
    if (typeof id !== "string" || !isRecord(doc) || typeof doc.pageContent !== "string") {
      throw new Error(`${owner}: ${storeFile} entry ${i} should be [id, {pageContent, metadata}]`);
    }
    if (doc.metadata !== undefined && !isRecord(doc.metadata))
      throw new Error(`${owner}: ${storeFile} entry ${i} ("${id}"): metadata is not an object`);
    docs.set(id, { pageContent: doc.pageContent, metadata: (doc.metadata as Record<string, unknown> | undefined) ?? {} });
  });
  const entries = Object.entries(raw[1]).map(([key, id]): [number, string] => {
    const pos = Number(key);
    if (!Number.isSafeInteger(pos) || pos < 0 || String(pos) !== key)
      throw new Error(`${owner}: ${storeFile} mapping key "${key}" is not a faiss position`);
    if (typeof id !== "string") throw new Error(`${owner}: ${storeFile} mapping["${key}"] is not a document id`);
    return [pos, id];
  });
  const index = await openIndex(indexFile, metric, owner);
  return collect(
    index,
    indexFile,
    entries,
    (id, pos) => {
      const doc = docs.get(id);
      if (!doc) throw new Error(`${owner}: ${storeFile} maps faiss position ${pos} to "${id}", which its docstore lacks`);
      return doc;
    },
    owner,
  );
}

/** Reads a LangChain Python `save_local` folder (`<indexName>.faiss`, `<indexName>.pkl`). */
export async function readPythonSaveLocalFolder(dir: string, metric: ImportMetric, indexName = "index"): Promise<ImportedFolder> {
  const owner = `${OWNER}.loadFromPythonSaveLocal`;
  const pklFile = path.join(dir, `${indexName}.pkl`);
  const indexFile = path.join(dir, `${indexName}.faiss`);
  const pkl = await readBytes(pklFile, owner);
  const index = await openIndex(indexFile, metric, owner);
  let parsed: ReturnType<typeof readLangChainPickle>;
  try {
    parsed = readLangChainPickle(new Uint8Array(pkl.buffer, pkl.byteOffset, pkl.byteLength), pklFile);
  } catch (e) {
    await index.dispose();
    throw new Error(`${owner}: ${(e as Error).message}`);
  }
  const { docstore, indexToDocstoreId } = parsed;
  return collect(
    index,
    indexFile,
    [...indexToDocstoreId],
    (id, pos) => {
      const doc = docstore.get(id);
      if (!doc) throw new Error(`${owner}: ${pklFile} maps faiss position ${pos} to "${id}", which its docstore lacks`);
      return doc;
    },
    owner,
  );
}

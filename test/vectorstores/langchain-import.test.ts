/**
 * Opening other LangChain stores' folders: a LangChain.js FaissStore folder written by the real
 * @langchain/community class (committed fixture, and live when that package is installed), and
 * LangChain Python save_local folders (index.pkl from scripts/gen-langchain-fixtures.py, index.faiss
 * written here with faiss-node as Python's faiss writes it). L2 indexes are refused unless
 * converted; hostile pickles are refused by name and run nothing.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Document } from "@langchain/core/documents";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaissDPRStore, type FaissDPRImportOptions } from "../../src/vectorstores/faiss-dpr-store.js";
import { LANGCHAIN_PICKLE_GLOBALS, readLangChainPickle } from "../../src/vectorstores/langchain-pickle.js";
import { writeFaissStoreFolder, type FaissStoreClass, type FaissStoreExpected } from "../fixtures/langchain/faissstore-corpus.js";
import { HashEmbeddings, dot } from "./helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const FIX = path.join(here, "..", "fixtures", "langchain");
const require = createRequire(import.meta.url);

interface StockIndex {
  add(x: number[]): void;
  write(file: string): void;
  search(x: number[], k: number): { distances: number[]; labels: number[] };
}
const faissNode = require("faiss-node") as { IndexFlatIP: new (d: number) => StockIndex; IndexFlatL2: new (d: number) => StockIndex };

interface Corpus {
  dims: number;
  documents: Array<{ id: string; page_content: string; metadata: Record<string, unknown> }>;
  vectors: number[][];
}
const corpus = JSON.parse(await readFile(path.join(FIX, "corpus.json"), "utf8")) as Corpus;
const faissStoreExpected = JSON.parse(await readFile(path.join(FIX, "faissstore-expected.json"), "utf8")) as FaissStoreExpected;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "langchain-import-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A save_local folder: `pkl` as index.pkl, corpus vectors (the first `count`) in a faiss-node flat index of `metric`. */
async function pythonFolder(
  name: string,
  pkl: string,
  metric: "ip" | "l2",
  count = corpus.vectors.length,
  indexName = "index",
): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  await copyFile(path.join(FIX, pkl), path.join(dir, `${indexName}.pkl`));
  const index = metric === "ip" ? new faissNode.IndexFlatIP(corpus.dims) : new faissNode.IndexFlatL2(corpus.dims);
  for (const v of corpus.vectors.slice(0, count)) index.add(v);
  index.write(path.join(dir, `${indexName}.faiss`));
  return dir;
}

const emb = () => new HashEmbeddings(8);

async function checkFaissStoreFolder(dir: string, expected: FaissStoreExpected): Promise<void> {
  await expect(FaissDPRStore.loadFromFaissStore(dir, emb())).rejects.toThrow(
    `FaissDPRStore.loadFromFaissStore: ${path.join(dir, "faiss.index")} is an L2 index (LangChain's default ` +
      `IndexFlatL2, ranked by Euclidean distance); FaissDPRStore ranks by inner product. Pass { metric: ` +
      `"convert-to-inner-product" }`,
  );
  const store = await FaissDPRStore.loadFromFaissStore(dir, emb(), { metric: "convert-to-inner-product" });
  expect(store.size).toBe(6);
  expect(store.dimensions).toBe(8);
  const docstore = JSON.parse(await readFile(path.join(dir, "docstore.json"), "utf8")) as [
    Array<[string, { pageContent: string; metadata: unknown }]>,
    unknown,
  ];
  const got = await store.getByIds(expected.ids);
  expect(got.map((d) => d.id)).toEqual(expected.ids);
  expect(got.map((d) => [d.pageContent, d.metadata])).toEqual(docstore[0].map(([, d]) => [d.pageContent, d.metadata]));
  expect(await store.getByIds([expected.deleted])).toEqual([]);
  // unit vectors: L2 and inner product rank alike, and ip = (|q|² + 1 − d²) / 2
  const results = await store.searchVectors(expected.queries, { k: 4 });
  results.forEach((hits, qi) => {
    const q = expected.queries[qi]!;
    expect(hits.map(([doc]) => doc.id)).toEqual(expected.results[qi]!.map(([id]) => id));
    hits.forEach(([, score], r) => expect(score).toBeCloseTo((dot(q, q) + 1 - expected.results[qi]![r]![1]) / 2, 5));
  });
}

describe("FaissDPRStore.loadFromFaissStore (LangChain.js FaissStore folders)", () => {
  it(`opens the folder ${faissStoreExpected.community} wrote (after a delete), refusing its L2 index unless converted`, async () => {
    await checkFaissStoreFolder(path.join(FIX, "faissstore"), faissStoreExpected);
  });

  const hasCommunity = (() => {
    try {
      require.resolve("@langchain/community/vectorstores/faiss");
      return true;
    } catch {
      return false;
    }
  })();
  it.runIf(hasCommunity)("opens a folder written now by the installed @langchain/community FaissStore", async () => {
    const specifier: string = "@langchain/community/vectorstores/faiss";
    const { FaissStore } = (await import(specifier)) as { FaissStore: FaissStoreClass };
    const dir = path.join(tmp, "faissstore-live");
    const expected = await writeFaissStoreFolder(FaissStore, dir, "installed");
    await checkFaissStoreFolder(dir, expected);
  });

  it("keeps working as a FaissDPRStore: save/load, add, and names a broken docstore.json", async () => {
    const store = await FaissDPRStore.loadFromFaissStore(path.join(FIX, "faissstore"), emb(), {
      metric: "convert-to-inner-product",
      factory: "HNSW8",
    });
    expect(store.factory).toBe("HNSW8");
    await store.addVectors([new Array(8).fill(0.5)], [new Document({ pageContent: "added after import" })], { ids: ["new"] });
    expect(store.size).toBe(7);
    await store.save(path.join(tmp, "fs-saved"));
    const loaded = await FaissDPRStore.load(path.join(tmp, "fs-saved"), emb());
    expect((await loaded.getByIds(["fs-g"]))[0]!.metadata).toEqual({
      i: 6,
      source: "file-6.txt",
      tags: ["even"],
      nested: { depth: { n: 6 } },
    });
    const bad = path.join(tmp, "fs-bad");
    await mkdir(bad, { recursive: true });
    await copyFile(path.join(FIX, "faissstore", "faiss.index"), path.join(bad, "faiss.index"));
    await expect(FaissDPRStore.loadFromFaissStore(bad, emb())).rejects.toThrow(
      `FaissDPRStore.loadFromFaissStore: ${path.join(bad, "docstore.json")} cannot be read (ENOENT)`,
    );
  });
});

describe("FaissDPRStore.loadFromPythonSaveLocal (LangChain Python FAISS.save_local folders)", () => {
  it("refuses an L2 index (Python's default IndexFlatL2), naming the file and the way out", async () => {
    const dir = await pythonFolder("py-l2", "python/index.pkl", "l2");
    await expect(FaissDPRStore.loadFromPythonSaveLocal(dir, emb())).rejects.toThrow(
      new RegExp(
        `FaissDPRStore.loadFromPythonSaveLocal: ${path.join(dir, "index.faiss")} is an L2 index .*Pass \\{ metric: ` +
          `"convert-to-inner-product" \\}`,
      ),
    );
    await expect(
      FaissDPRStore.loadFromPythonSaveLocal(dir, emb(), { metric: "cosine" } as unknown as FaissDPRImportOptions),
    ).rejects.toThrow('metric must be "inner_product" or "convert-to-inner-product", got "cosine"');
  });

  it("opens an inner-product folder with ids, metadata and faiss's ranking", async () => {
    const dir = await pythonFolder("py-ip", "python/index.pkl", "ip");
    const store = await FaissDPRStore.loadFromPythonSaveLocal(dir, emb());
    const ids = corpus.documents.map((d) => d.id);
    const docs = await store.getByIds(ids);
    expect(docs.map((d) => d.id)).toEqual(ids);
    expect(docs.map((d) => [d.pageContent, d.metadata])).toEqual(corpus.documents.map((d) => [d.page_content, d.metadata]));
    expect(docs[0]!.metadata.source).toBe("/data/fruit/apple.txt"); // a pathlib.PosixPath
    expect(docs[1]!.metadata.big).toBe(2 ** 40);
    expect(docs[2]!.metadata.span).toEqual([3, 9]); // a tuple
    const stock = new faissNode.IndexFlatIP(corpus.dims);
    for (const v of corpus.vectors) stock.add(v);
    for (const q of corpus.vectors) {
      const ref = stock.search(q, 4);
      const [hits] = await store.searchVectors([q], { k: 4 });
      expect(hits!.map(([doc]) => doc.id)).toEqual(ref.labels.map((l) => ids[l]));
      hits!.forEach(([, score], i) => expect(score).toBeCloseTo(ref.distances[i]!, 5));
    }
    // save_local(index_name="my_index")
    const named = await pythonFolder("py-named", "python/index.pkl", "ip", undefined, "my_index");
    expect((await FaissDPRStore.loadFromPythonSaveLocal(named, emb(), { indexName: "my_index" })).size).toBe(ids.length);
  });

  it("converts an L2 folder on request: same vectors, ranked by inner product", async () => {
    const dir = await pythonFolder("py-l2-convert", "python/index.pkl", "l2");
    const store = await FaissDPRStore.loadFromPythonSaveLocal(dir, emb(), { metric: "convert-to-inner-product" });
    const ids = corpus.documents.map((d) => d.id);
    const l2 = new faissNode.IndexFlatL2(corpus.dims);
    for (const v of corpus.vectors) l2.add(v);
    let rankingChanged = 0;
    for (const q of corpus.vectors) {
      const [hits] = await store.searchVectors([q], { k: 6 });
      const byIp = corpus.vectors.map((v, i) => [dot(q, v), i] as const).sort((a, b) => b[0] - a[0]);
      expect(hits!.map(([doc]) => doc.id)).toEqual(byIp.map(([, i]) => ids[i]));
      if (l2.search(q, 6).labels.join() !== byIp.map(([, i]) => i).join()) rankingChanged++;
    }
    expect(rankingChanged).toBeGreaterThan(0); // unnormalised vectors: L2 and inner product disagree
  });

  it("opens a langchain < 0.1 folder (pydantic 1 Documents)", async () => {
    const dir = await pythonFolder("py-v1", "python-pydantic-v1/index.pkl", "ip", 3);
    const store = await FaissDPRStore.loadFromPythonSaveLocal(dir, emb());
    const docs = await store.getByIds(corpus.documents.slice(0, 3).map((d) => d.id));
    expect(docs.map((d) => [d.id, d.pageContent, d.metadata])).toEqual(
      corpus.documents.slice(0, 3).map((d) => [d.id, d.page_content, d.metadata]),
    );
  });

  it("names a mapping that disagrees with the index", async () => {
    const dir = await pythonFolder("py-short", "python/index.pkl", "ip", 4);
    await expect(FaissDPRStore.loadFromPythonSaveLocal(dir, emb())).rejects.toThrow(
      `${path.join(dir, "index.faiss")} holds 4 vectors but the mapping names 6`,
    );
  });
});

describe("index.pkl allow-list", () => {
  const marker = "/tmp/langchain-dpr-fixture-pwned";
  const cases: Array<[string, string]> = [
    ["global-os-system.pkl", "refusing global os.system"],
    ["metadata-reduce.pkl", "refusing global posix.system"],
    ["docstore-eval.pkl", "refusing global builtins.eval"],
    ["build-on-path.pkl", "refusing BUILD (setting object state) on path"],
  ];
  for (const [file, message] of cases) {
    it(`refuses hostile/${file} by name and runs nothing`, async () => {
      await rm(marker, { force: true });
      const dir = await pythonFolder(`hostile-${file}`, `hostile/${file}`, "ip");
      const err = await FaissDPRStore.loadFromPythonSaveLocal(dir, emb()).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).toContain(`FaissDPRStore.loadFromPythonSaveLocal: ${path.join(dir, "index.pkl")}: ${message}`);
      expect(existsSync(marker)).toBe(false);
    });
  }

  it("allows exactly LangChain's Document and InMemoryDocstore classes and pathlib paths", () => {
    expect([...LANGCHAIN_PICKLE_GLOBALS].sort()).toEqual(
      [
        "langchain.docstore.document.Document",
        "langchain.docstore.in_memory.InMemoryDocstore",
        "langchain.schema.Document",
        "langchain.schema.document.Document",
        "langchain_community.docstore.in_memory.InMemoryDocstore",
        "langchain_core.documents.base.Document",
        ...["PosixPath", "PurePosixPath", "PureWindowsPath", "WindowsPath"].flatMap((c) => [`pathlib.${c}`, `pathlib._local.${c}`]),
      ].sort(),
    );
    // a global refused by name even where it is only named (no call): STACK_GLOBAL subprocess.Popen
    const named = Uint8Array.from([0x80, 4, 0x8c, 10, ...Buffer.from("subprocess"), 0x8c, 5, ...Buffer.from("Popen"), 0x93, 0x2e]);
    expect(() => readLangChainPickle(named, "x.pkl")).toThrow(
      "x.pkl: refusing global subprocess.Popen: a LangChain FAISS index.pkl may name only",
    );
  });
});

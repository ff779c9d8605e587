import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Document } from "@langchain/core/documents";
import { loadBeirDataset, type Passage } from "../../src/data/index.js";
import { evaluateRun, runFromHits } from "../../src/eval/metrics.js";
import { BM25Index, BM25Retriever, byteToLength, lengthToByte, luceneLength } from "../../src/retrievers/bm25/index.js";

const tmpDirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "bm25-test-"));
  tmpDirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

// Three passages: lengths 3, 2, 1 after analysis (N = 3, avgdl = 2).
const corpus: Passage[] = [
  { id: "d1", title: "", text: "cat cat dog" },
  { id: "d2", title: "", text: "dog bird" },
  { id: "d3", title: "", text: "fish" },
];
const k1 = 0.9,
  b = 0.4,
  avgdl = 2;
const idfCat = Math.log(1 + (3 - 1 + 0.5) / (1 + 0.5)); // df 1
const idfDog = Math.log(1 + (3 - 2 + 0.5) / (2 + 0.5)); // df 2
const tfPart = (tf: number, dl: number): number => tf / (tf + k1 * (1 - b + (b * dl) / avgdl));

describe("BM25Index scoring (hand-computed, Lucene formula)", () => {
  it("scores a two-term query exactly as idf · tf / (tf + k1(1 − b + b·dl/avgdl)) summed over terms", async () => {
    const index = await BM25Index.fromPassages(corpus);
    const hits = index.search("cat dog", 10);
    expect(hits.map((h) => h.id)).toEqual(["d1", "d2"]);
    expect(hits[0]!.score).toBeCloseTo(idfCat * tfPart(2, 3) + idfDog * tfPart(1, 3), 12);
    expect(hits[1]!.score).toBeCloseTo(idfDog * tfPart(1, 2), 12);
    expect(index.idf("cat")).toBeCloseTo(idfCat, 12);
    expect(index.averageLength).toBe(avgdl);
  });

  it("weights a repeated query term by its count (Anserini bag of words), or once with 'unique'", async () => {
    const freq = await BM25Index.fromPassages(corpus);
    const unique = await BM25Index.fromPassages(corpus, { queryTermWeighting: "unique" });
    expect(freq.search("cat cat", 1)[0]!.score).toBeCloseTo(2 * idfCat * tfPart(2, 3), 12);
    expect(unique.search("cat cat", 1)[0]!.score).toBeCloseTo(idfCat * tfPart(2, 3), 12);
  });

  it("applies the analyzer to passages and queries (title + text, stemming, stop words)", async () => {
    const index = await BM25Index.fromPassages([
      { id: "a", title: "Running shoes", text: "The best of them." },
      { id: "b", title: "", text: "Swimming pools" },
    ]);
    expect(index.search("the runner's RUNS", 5).map((h) => h.id)).toEqual(["a"]);
    expect(index.search("the of", 5)).toEqual([]);
  });

  it("uses Lucene's one-byte lengths when lossyLengths is on, exact lengths when off", async () => {
    expect([0, 23, 24, 31, 100, 300].map(luceneLength)).toEqual([0, 23, 24, 31, 96, 280]);
    expect(byteToLength(lengthToByte(1000))).toBe(984);
    const long: Passage = { id: "long", title: "", text: ["target", ...Array.from({ length: 99 }, (_, i) => `w${i}`)].join(" ") };
    const short: Passage = { id: "short", title: "", text: "target other" };
    const lossy = await BM25Index.fromPassages([long, short]);
    const exact = await BM25Index.fromPassages([long, short], { lossyLengths: false });
    const avg = (100 + 2) / 2;
    const idf = Math.log(1 + (2 - 2 + 0.5) / (2 + 0.5));
    const expected = (dl: number): number => idf * (1 / (1 + k1 * (1 - b + (b * dl) / avg)));
    expect(lossy.search("target", 2).find((h) => h.id === "long")!.score).toBeCloseTo(expected(96), 12);
    expect(exact.search("target", 2).find((h) => h.id === "long")!.score).toBeCloseTo(expected(100), 12);
  });

  it("returns the top k in score order with ties broken by insertion order", async () => {
    const index = await BM25Index.fromPassages(
      Array.from({ length: 50 }, (_, i) => ({ id: `p${i}`, title: "", text: i % 10 === 0 ? "apple apple" : "apple pear" })),
    );
    const hits = index.search("apple", 7);
    expect(hits.map((h) => h.id)).toEqual(["p0", "p10", "p20", "p30", "p40", "p1", "p2"]);
    for (let i = 1; i < hits.length; i++) expect(hits[i - 1]!.score).toBeGreaterThanOrEqual(hits[i]!.score);
  });

  it("searchBatch gives the same results as search one by one", async () => {
    const index = await BM25Index.fromPassages(corpus);
    const queries = ["cat", "dog bird", "fish cat", "zebra"];
    expect(index.searchBatch(queries, 2)).toEqual(queries.map((q) => index.search(q, 2)));
  });

  it("accepts passages added after searching, updating idf and avgdl", async () => {
    const index = await BM25Index.fromPassages(corpus.slice(0, 2));
    index.search("cat", 1);
    await index.addDocuments(corpus.slice(2));
    const full = await BM25Index.fromPassages(corpus);
    expect(index.search("cat dog fish", 3)).toEqual(full.search("cat dog fish", 3));
  });

  it("throws clear errors on bad input", async () => {
    const index = await BM25Index.fromPassages(corpus);
    await expect(index.addDocuments([{ id: "d1", title: "", text: "again" }])).rejects.toThrow(/BM25Index: duplicate passage id "d1"/);
    await expect(index.addDocuments([{ id: "x", title: "", text: 5 as unknown as string }])).rejects.toThrow(
      /BM25Index: passage 0 \(id "x"\) needs a string "text"/,
    );
    expect(() => index.search("cat", 0)).toThrow(/BM25Index: k must be a positive integer, got 0/);
    expect(() => new BM25Index({ b: 2 })).toThrow(/BM25Index: b must be in \[0, 1\], got 2/);
  });
});

describe("BM25Index.scoreDocuments (a given passage's score for a query)", () => {
  it("gives the hand-computed Lucene score of a named passage, and 0 for one sharing no query term", async () => {
    const index = await BM25Index.fromPassages(corpus);
    expect(index.score("cat dog", "d1")).toBeCloseTo(idfCat * tfPart(2, 3) + idfDog * tfPart(1, 3), 12);
    expect(index.scoreDocuments("cat dog", ["d2", "d3"])).toEqual([index.search("cat dog", 3)[1]!.score, 0]);
    expect(index.score("cat cat", "d1")).toBeCloseTo(2 * idfCat * tfPart(2, 3), 12);
    const unique = await BM25Index.fromPassages(corpus, { queryTermWeighting: "unique" });
    expect(unique.score("cat cat", "d1")).toBeCloseTo(idfCat * tfPart(2, 3), 12);
  });

  it("equals, bit for bit, the score search gives every ranked passage of 300 PubMedQA abstracts, down to the last rank", async () => {
    const rows = readFileSync(fileURLToPath(new URL("../fixtures/passages/pubmedqa-300.jsonl", import.meta.url)), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: string; title: string; text: string });
    const index = await BM25Index.fromPassages(
      rows.map((r) => ({ id: r.id, title: "", text: r.text })),
      { storePassages: false },
    );
    let compared = 0;
    for (const question of rows.slice(0, 25).map((r) => r.title)) {
      const hits = index.search(question, rows.length);
      expect(hits.length).toBeGreaterThan(20);
      expect(
        index.scoreDocuments(
          question,
          hits.map((h) => h.id),
        ),
      ).toEqual(hits.map((h) => h.score));
      compared += hits.length;
    }
    expect(compared).toBe(3590); // every passage sharing a term with a question, for 25 questions
  });

  it("scores passages added after a search, and a loaded index, as a fresh index does", async () => {
    const index = await BM25Index.fromPassages(corpus.slice(0, 2));
    index.score("cat", "d1");
    await index.addDocuments(corpus.slice(2));
    const full = await BM25Index.fromPassages(corpus);
    const dir = await tempDir();
    await full.save(dir);
    const loaded = await BM25Index.load(dir);
    const ids = corpus.map((p) => p.id);
    expect(index.scoreDocuments("cat dog fish", ids)).toEqual(full.scoreDocuments("cat dog fish", ids));
    expect(loaded.scoreDocuments("cat dog fish", ids)).toEqual(full.scoreDocuments("cat dog fish", ids));
  });

  it("names an id that is not indexed", async () => {
    const index = await BM25Index.fromPassages(corpus);
    expect(() => index.scoreDocuments("cat", ["d1", "d9"])).toThrow(
      'BM25Index: scoreDocuments: id 1 ("d9") is not in the index (3 passages)',
    );
  });
});

describe("BM25Index save/load", () => {
  it("round-trips to a folder and answers identically", async () => {
    const dir = await tempDir();
    const index = await BM25Index.fromPassages([...corpus, { id: "m", title: "Meta", text: "dog dog", metadata: { year: 2020 } }]);
    await index.save(dir);
    const loaded = await BM25Index.load(dir);
    for (const q of ["cat dog", "dog", "bird fish"]) expect(loaded.search(q, 4)).toEqual(index.search(q, 4));
    expect(loaded.getPassage("m")).toEqual({ id: "m", title: "Meta", text: "dog dog", metadata: { year: 2020 } });
    expect(loaded.size).toBe(4);
  });

  it("keeps one generation of data files and the previous index when a save is interrupted", async () => {
    const dir = await tempDir();
    const first = await BM25Index.fromPassages(corpus);
    await first.save(dir);
    await first.save(dir);
    const files = (await readdir(dir)).sort();
    expect(files.filter((f) => f.startsWith("postings."))).toHaveLength(1);
    // A crashed save leaves new data files but the old manifest: the old index still loads.
    await writeFile(join(dir, "postings.zzzz.bin"), "partial");
    const loaded = await BM25Index.load(dir);
    expect(loaded.search("cat dog", 3)).toEqual(first.search("cat dog", 3));
  });

  it("reports a truncated postings file and a missing index by name", async () => {
    const dir = await tempDir();
    await (await BM25Index.fromPassages(corpus)).save(dir);
    const bin = (await readdir(dir)).find((f) => f.startsWith("postings."))!;
    await writeFile(join(dir, bin), Buffer.alloc(10));
    await expect(BM25Index.load(dir)).rejects.toThrow(new RegExp(`BM25Index: .*${bin.replace(/\./g, "\\.")} has 10 bytes, expected \\d+`));
    await expect(BM25Index.load(join(dir, "nope"))).rejects.toThrow(/BM25Index: no index in .*nope \(bm25\.json not found\)/);
  });

  it("refuses a postings file whose postings of a term are out of document order", async () => {
    const dir = await tempDir();
    await (await BM25Index.fromPassages(corpus)).save(dir);
    const bin = (await readdir(dir)).find((f) => f.startsWith("postings."))!;
    const terms = (
      await readFile(
        join(
          dir,
          (await readdir(dir)).find((f) => f.startsWith("terms."))!,
        ),
        "utf8",
      )
    )
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as string);
    const bytes = await readFile(join(dir, bin));
    // "dog" is in d1 and d2 (documents 0 and 1): swap its two postings.
    const t = terms.indexOf("dog");
    const start = bytes.readInt32LE(4 * t);
    const docsAt = 4 * (terms.length + 1);
    const [a, b2] = [bytes.readInt32LE(docsAt + 4 * start), bytes.readInt32LE(docsAt + 4 * (start + 1))];
    expect([a, b2]).toEqual([0, 1]);
    bytes.writeInt32LE(1, docsAt + 4 * start);
    bytes.writeInt32LE(0, docsAt + 4 * (start + 1));
    await writeFile(join(dir, bin), bytes);
    await expect(BM25Index.load(dir)).rejects.toThrow(`has the postings of term "dog" out of document order at posting ${start + 1}`);
  });
});

describe("BM25Retriever", () => {
  it("returns LangChain documents with id and title in metadata, best first; scores from retrieve() or includeScores", async () => {
    const retriever = await BM25Retriever.fromPassages(
      [...corpus, { id: "d4", title: "Dogs", text: "a bird, bird", metadata: { source: "x" } }],
      { k: 2 },
    );
    const docs = await retriever.invoke("dog bird");
    expect(docs).toHaveLength(2);
    expect(docs.map((d) => d.metadata.id)).toEqual(["d4", "d2"]);
    expect(docs[0]!.pageContent).toBe("a bird, bird");
    expect(docs[0]!.metadata).toEqual({ id: "d4", title: "Dogs", source: "x" });
    const r = await retriever.retrieve("dog bird", { k: 3 });
    expect(r.documents.map((d) => d.id)).toEqual(["d4", "d2", "d1"]);
    expect(r.scores).toEqual(retriever.index.search("dog bird", 3).map((h) => h.score));
    expect(r.scores[0]!).toBeGreaterThan(r.scores[1]!);
    const scored = await retriever.retrieve("dog bird", { includeScores: true });
    expect(scored.documents.map((d) => d.metadata.score)).toEqual(r.scores.slice(0, 2));
    const batch = await retriever.batch(["cat", "fish"]);
    expect(batch.map((b) => b[0]!.metadata.id)).toEqual(["d1", "d3"]);
    await expect(retriever.retrieve("dog", { filter: { source: "x" } })).rejects.toThrow("BM25Retriever: a filter is not supported here");
  });

  it("fromDocuments indexes LangChain documents like the community BM25Retriever, with ids and titles from them", async () => {
    const documents = [
      new Document({ pageContent: "the cat sat on the mat", metadata: { source: "a" }, id: "c1" }),
      new Document({ pageContent: "dogs chase cats", metadata: { id: "c2", title: "Dogs" } }),
      new Document({ pageContent: "fish swim in the sea", metadata: {} }),
    ];
    const retriever = await BM25Retriever.fromDocuments(documents, { k: 2 });
    expect(retriever.k).toBe(2);
    const docs = await retriever.invoke("dogs cats");
    expect(docs[0]!.id).toBe("c2");
    expect(docs[0]!.metadata).toEqual({ id: "c2", title: "Dogs" });
    expect((await retriever.invoke("fish sea"))[0]!.id).toBe("2"); // no id: its position
    // The title is indexed with the text, as for passages: "Dogs" matches the second document.
    expect((await retriever.retrieve("dogs", { k: 1 })).documents[0]!.id).toBe("c2");
    expect(documents[0]!.metadata).toEqual({ source: "a" }); // inputs never written
    await expect(BM25Retriever.fromDocuments([{ metadata: {} } as unknown as Document])).rejects.toThrow(
      "BM25Retriever: documents[0] must be a Document with a string pageContent",
    );
  });

  it("refuses an index that does not store passages", async () => {
    const index = await BM25Index.fromPassages(corpus, { storePassages: false });
    expect(() => new BM25Retriever({ index })).toThrow(/BM25Retriever: the index was built with storePassages: false/);
  });
});

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const datasets = process.env["DPR_DATASETS"] ?? resolve(repoRoot, "../shared/datasets");
const scifact = join(datasets, "scifact");
const hasScifact = existsSync(join(scifact, "corpus.jsonl"));
if (!hasScifact) console.warn(`[bm25] skipping the SciFact anchor: no dataset at ${scifact} (set DPR_DATASETS)`);

describe.skipIf(!hasScifact)("BM25 on SciFact (correctness anchor)", () => {
  it("reaches Pyserini's BM25-flat nDCG@10 of 0.679 within 0.01 on the test split", async () => {
    const ds = await loadBeirDataset(scifact, "test");
    const index = await BM25Index.fromPassages(ds.corpus, { storePassages: false });
    const results = index.searchBatch(
      ds.queries.map((q) => q.text),
      100,
    );
    const ev = evaluateRun(runFromHits(ds.queries.map((q, i) => [q.id, results[i]!])), ds.qrels);
    expect(ev.numQueries).toBe(300);
    expect(Math.abs(ev.mean["ndcg@10"]! - 0.679)).toBeLessThanOrEqual(0.01);
    expect(ev.mean["recall@100"]).toBeGreaterThan(0.9);
  });
});

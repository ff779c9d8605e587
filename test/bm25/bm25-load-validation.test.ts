/**
 * BM25Index.load on saved folders altered the way a hostile-but-fair user would (issue #16): each
 * offset, length and count is checked, so a damaged folder is an Error naming the file and the field
 * instead of an index that scores wrongly (negative offsets used to give negative scores).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Passage } from "../../src/data/index.js";
import { BM25Index } from "../../src/retrievers/bm25/index.js";

const tmpDirs: string[] = [];
afterAll(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

// Terms in order: cat 0, dog 1, bird 2, fish 3. Postings: cat [d0 tf 2], dog [d0, d1], bird [d1], fish [d2].
// offsets = [0, 1, 3, 4, 5]; lengths = [3, 2, 1]; tfs are 2 bytes.
const corpus: Passage[] = [
  { id: "d1", title: "", text: "cat cat dog" },
  { id: "d2", title: "", text: "dog bird" },
  { id: "d3", title: "", text: "fish" },
];
const NUM_TERMS = 4;
const NUM_POSTINGS = 5;
const OFFSETS_AT = 0;
const DOCS_AT = 4 * (NUM_TERMS + 1);
const TFS_AT = DOCS_AT + 4 * NUM_POSTINGS;
const LENGTHS_AT = TFS_AT + 2 * NUM_POSTINGS;

/** A saved index folder and the paths of its files. */
async function savedIndex(): Promise<{ dir: string; file: (prefix: string) => Promise<string> }> {
  const dir = await mkdtemp(join(tmpdir(), "bm25-load-"));
  tmpDirs.push(dir);
  await (await BM25Index.fromPassages(corpus)).save(dir);
  const file = async (prefix: string): Promise<string> =>
    join(
      dir,
      (await readdir(dir)).find((f) => f.startsWith(prefix))!,
    );
  return { dir, file };
}

/** Saves the index, applies `edit` to the postings file's bytes, and returns the folder and the file. */
async function withPostings(edit: (bytes: Buffer) => void): Promise<{ dir: string; bin: string }> {
  const { dir, file } = await savedIndex();
  const bin = await file("postings.");
  const bytes = await readFile(bin);
  expect([0, 1, 3, 4, 5].map((_, i) => bytes.readInt32LE(OFFSETS_AT + 4 * i))).toEqual([0, 1, 3, 4, 5]);
  expect([0, 1, 2].map((i) => bytes.readInt32LE(LENGTHS_AT + 4 * i))).toEqual([3, 2, 1]);
  edit(bytes);
  await writeFile(bin, bytes);
  return { dir, bin };
}

const re = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("BM25Index.load checks the postings file", () => {
  it("refuses a negative offset (which gave a negative df, a NaN and a negative idf), naming offsets[1]", async () => {
    const { dir, bin } = await withPostings((b) => b.writeInt32LE(-3, OFFSETS_AT + 4));
    await expect(BM25Index.load(dir)).rejects.toThrow(
      new RegExp(`BM25Index: ${re(bin)} offsets must not decrease: offsets\\[1\\] = -3 < offsets\\[0\\] = 0 \\(term "cat"\\)`),
    );
  });

  it("refuses decreasing offsets", async () => {
    const bad = await withPostings((b) => b.writeInt32LE(4, OFFSETS_AT + 4)); // [0, 4, 3, 4, 5]
    await expect(BM25Index.load(bad.dir)).rejects.toThrow(/offsets must not decrease: offsets\[2\] = 3 < offsets\[1\] = 4 \(term "dog"\)/);
  });

  it("refuses a last offset other than numPostings", async () => {
    const { dir } = await withPostings((b) => b.writeInt32LE(4, OFFSETS_AT + 4 * NUM_TERMS));
    await expect(BM25Index.load(dir)).rejects.toThrow(/offsets\[4\] \(the last\) must equal numPostings 5, got 4/);
  });

  it("refuses a negative document length and one that differs from the sum of the document's tfs", async () => {
    const neg = await withPostings((b) => b.writeInt32LE(-5, LENGTHS_AT + 8));
    await expect(BM25Index.load(neg.dir)).rejects.toThrow(new RegExp(`${re(neg.bin)} lengths\\[2\\] must be ≥ 0, got -5`));
    const long = await withPostings((b) => b.writeInt32LE(300, LENGTHS_AT));
    await expect(BM25Index.load(long.dir)).rejects.toThrow(
      /lengths\[0\] is 300 but the document's postings hold 3 term occurrences \(a document's length is the sum of its term frequencies\)/,
    );
  });

  it("refuses a term frequency of 0 and a posting for a document that does not exist", async () => {
    const zero = await withPostings((b) => b.writeUInt16LE(0, TFS_AT + 2 * 4)); // fish's posting
    await expect(BM25Index.load(zero.dir)).rejects.toThrow(/postTfs\[4\] \(term "fish", document 2\) must be ≥ 1, got 0/);
    const far = await withPostings((b) => b.writeInt32LE(7, DOCS_AT + 4 * 4));
    await expect(BM25Index.load(far.dir)).rejects.toThrow(/has a posting for document 7, outside 0\.\.2 \(posting 4, term "fish"\)/);
  });

  it("loads the untouched folder and scores every document ≥ 0, as the saved index did", async () => {
    const { dir } = await withPostings(() => {});
    const loaded = await BM25Index.load(dir);
    const scores = loaded.scoreDocuments("cat dog bird fish", ["d1", "d2", "d3"]);
    const fresh = (await BM25Index.fromPassages(corpus)).scoreDocuments("cat dog bird fish", ["d1", "d2", "d3"]);
    expect(scores).toEqual(fresh);
    for (const s of scores) expect(s).toBeGreaterThan(0);
  });
});

describe("BM25Index.load checks the manifest and the line files", () => {
  async function withManifest(edit: (m: Record<string, unknown>) => void): Promise<{ dir: string; path: string }> {
    const { dir } = await savedIndex();
    const path = join(dir, "bm25.json");
    const m = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
    edit(m);
    await writeFile(path, JSON.stringify(m));
    return { dir, path };
  }

  it("names each manifest field of the wrong type or range", async () => {
    const cases: Array<[(m: Record<string, unknown>) => void, RegExp]> = [
      [
        (m) => (m.generation = "../../elsewhere"),
        /bm25\.json field "generation" must be a tag of a-z and 0-9 \(as save writes\), got "\.\.\/\.\.\/elsewhere"/,
      ],
      [(m) => (m.numDocs = 2 ** 31), /field "numDocs" must be an integer in 0\.\.2147483647, got 2147483648/],
      [(m) => (m.numPostings = -1), /field "numPostings" must be an integer in 0\.\.2147483647, got -1/],
      [(m) => (m.k1 = "0.9"), /field "k1" must be a finite number ≥ 0, got "0\.9"/],
      [(m) => (m.b = 2), /field "b" must be a number in \[0, 1\], got 2/],
      [(m) => (m.lossyLengths = "yes"), /field "lossyLengths" must be true or false, got "yes"/],
      [(m) => delete m.hasPassages, /field "hasPassages" must be true or false, got nothing/],
    ];
    for (const [edit, error] of cases) {
      const { dir } = await withManifest(edit);
      await expect(BM25Index.load(dir)).rejects.toThrow(error);
    }
    const arr = await withManifest(() => {});
    await writeFile(arr.path, "[1, 2]");
    await expect(BM25Index.load(arr.dir)).rejects.toThrow(/bm25\.json must hold a JSON object, got an array/);
  });

  it("checks the postings file's size against counts claiming a huge index before reading the line files", async () => {
    const { dir } = await withManifest((m) => (m.numTerms = 50_000_000));
    await expect(BM25Index.load(dir)).rejects.toThrow(/postings\.\w+\.bin has 62 bytes, expected 200000046 from bm25\.json/);
  });

  it("names the file and line of a bad passage line, of a repeated term and of a repeated id", async () => {
    const a = await savedIndex();
    const passages = await a.file("passages.");
    const lines = (await readFile(passages, "utf8")).split("\n");
    lines[1] = '{"title": "", "text": "dog bird"';
    await writeFile(passages, lines.join("\n"));
    await expect(BM25Index.load(a.dir)).rejects.toThrow(
      new RegExp(`BM25Index: ${re(passages)}:2: expected a JSON object \\{title, text\\}, got invalid JSON`),
    );
    lines[1] = '{"title": "", "text": 7}';
    await writeFile(passages, lines.join("\n"));
    await expect(BM25Index.load(a.dir)).rejects.toThrow(
      new RegExp(`${re(passages)}:2: "title" and "text" must be strings, got string and number`),
    );

    const b = await savedIndex();
    const terms = await b.file("terms.");
    await writeFile(terms, '"cat"\n"cat"\n"bird"\n"fish"\n');
    await expect(BM25Index.load(b.dir)).rejects.toThrow(new RegExp(`${re(terms)}:2: term "cat" repeats line 1`));
    const ids = await b.file("ids.");
    await writeFile(terms, '"cat"\n"dog"\n"bird"\n"fish"\n');
    await writeFile(ids, '"d1"\n"d2"\n"d1"\n');
    await expect(BM25Index.load(b.dir)).rejects.toThrow(new RegExp(`${re(ids)}:3: passage id "d1" repeats line 1`));
  });
});

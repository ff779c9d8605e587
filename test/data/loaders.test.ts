import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  listBeirSplits,
  loadBeirDataset,
  loadBeirQrels,
  readDprJson,
  readJsonlPairs,
  streamBeirCorpus,
  writeDprJson,
  type TrainingExample,
} from "../../src/data/index.js";
import { writeStreamAtomic } from "../../src/utils/atomic-file.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "data-test-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function beirFolder(name: string, corpus: string, queries: string, qrels: Record<string, string>): Promise<string> {
  const dir = join(root, name);
  await mkdir(join(dir, "qrels"), { recursive: true });
  await writeFile(join(dir, "corpus.jsonl"), corpus);
  await writeFile(join(dir, "queries.jsonl"), queries);
  for (const [split, text] of Object.entries(qrels)) await writeFile(join(dir, "qrels", `${split}.tsv`), text);
  return dir;
}

describe("BEIR loader", () => {
  it("loads corpus, the split's queries and graded qrels, keeping titles and metadata", async () => {
    const dir = await beirFolder(
      "ok",
      '{"_id": "d1", "title": "T1", "text": "one"}\n\n{"_id": 2, "text": "two", "metadata": {"url": "u"}}\n',
      '{"_id": "q1", "text": "first?"}\n{"_id": "q2", "text": "second?"}\n',
      { test: "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\t2\t0\n", train: "q2\td1\t1\n" },
    );
    expect(await listBeirSplits(dir)).toEqual(["test", "train"]);
    const ds = await loadBeirDataset(dir, "test");
    expect(ds.corpus).toEqual([
      { id: "d1", title: "T1", text: "one" },
      { id: "2", title: "", text: "two", metadata: { url: "u" } },
    ]);
    expect(ds.queries).toEqual([{ id: "q1", text: "first?" }]);
    expect(ds.qrels).toEqual(
      new Map([
        [
          "q1",
          new Map([
            ["d1", 2],
            ["2", 0],
          ]),
        ],
      ]),
    );
  });

  it("names file and line for bad JSON and for missing fields", async () => {
    const bad = await beirFolder("bad", '{"_id": "d1", "text": "ok"}\n{"_id": "d2", "text": \n', "", { test: "" });
    await expect(loadBeirDataset(bad, "test")).rejects.toThrow(/BEIR: invalid JSON at .*bad\/corpus\.jsonl:2/);
    const missing = await beirFolder("missing", '{"_id": "d1", "title": "no text"}\n', "", { test: "" });
    const it = streamBeirCorpus(missing);
    await expect(it.next()).rejects.toThrow(/BEIR: field "text" at .*missing\/corpus\.jsonl:1 must be a string, got nothing \(missing\)/);
  });

  it("lists the available splits when a split is missing, and rejects malformed qrels lines", async () => {
    const dir = await beirFolder("splits", "", "", { dev: "q\td\t1\n", test: "q\td\t1\nq\td2\n" });
    await expect(loadBeirDataset(dir, "train")).rejects.toThrow(/BEIR: split "train" not found .*\(available: dev, test\)/);
    await expect(loadBeirQrels(join(dir, "qrels", "test.tsv"))).rejects.toThrow(
      /BEIR: expected 3 tab-separated columns .*test\.tsv:2, got 2/,
    );
  });

  it("streams a corpus one passage at a time", async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ _id: `d${i}`, title: "", text: `text ${i}` })).join("\n");
    const dir = await beirFolder("stream", lines, "", { test: "" });
    let n = 0,
      last = "";
    for await (const p of streamBeirCorpus(dir)) {
      n++;
      last = p.id;
    }
    expect([n, last]).toEqual([2000, "d1999"]);
  });
});

describe("DPR JSON and JSONL pairs", () => {
  const examples: TrainingExample[] = [
    {
      question: "what is x?",
      answers: ["x"],
      positives: [{ id: "p1", title: "X", text: "x is x" }],
      negatives: [{ id: "", title: "", text: "random" }],
      hardNegatives: [{ id: "h1", title: "Y", text: "y is not x" }],
    },
  ];

  it("round-trips DPR JSON with titles and passage ids", async () => {
    const path = join(root, "dpr.json");
    await writeDprJson(path, examples);
    const raw = JSON.parse(await readFile(path, "utf8")) as Array<Record<string, unknown>>;
    expect(raw[0]!["positive_ctxs"]).toEqual([{ title: "X", text: "x is x", passage_id: "p1" }]);
    expect(await readDprJson(path)).toEqual(examples);
  });

  it("reports which record and field of a DPR file is wrong", async () => {
    const path = join(root, "bad-dpr.json");
    await writeFile(path, JSON.stringify([{ question: "q", positive_ctxs: [{ title: "t" }] }]));
    await expect(readDprJson(path)).rejects.toThrow(
      /DPRData: passage at .*bad-dpr\.json\[0\]\.positive_ctxs\[0\] needs a string "text", got nothing/,
    );
  });

  it("keeps the previous file when writing fails midway", async () => {
    const path = join(root, "keep.json");
    await writeFile(path, "previous");
    await expect(
      writeStreamAtomic(path, async (write) => {
        await write("partial");
        throw new Error("disk full");
      }),
    ).rejects.toThrow("disk full");
    expect(await readFile(path, "utf8")).toBe("previous");
  });

  it("reads JSONL pairs in both shapes, with passages as strings or objects", async () => {
    const path = join(root, "pairs.jsonl");
    await writeFile(
      path,
      [
        JSON.stringify({ query: "q1", positive: { title: "T", text: "p" }, negatives: ["n1"] }),
        JSON.stringify({ question: "q2", passage: "p2" }),
        "",
      ].join("\n"),
    );
    expect(await readJsonlPairs(path)).toEqual([
      { question: "q1", positives: [{ id: "", title: "T", text: "p" }], negatives: [{ id: "", title: "", text: "n1" }], hardNegatives: [] },
      { question: "q2", positives: [{ id: "", title: "", text: "p2" }], negatives: [], hardNegatives: [] },
    ]);
    await writeFile(path, '{"query": "q"}\n');
    await expect(readJsonlPairs(path)).rejects.toThrow(/DPRData: line .*pairs\.jsonl:1 needs "positive" or "passage"/);
  });
});

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  articleHitRateAt,
  averagePrecisionAt,
  evaluateRun,
  mrrAt,
  ndcgAt,
  precisionAt,
  rankLikeTrecEval,
  recallAt,
  type Run,
} from "../../src/eval/metrics.js";
import { readTrecQrels, readTrecRun, writeTrecRun } from "../../src/eval/trec.js";
import type { Qrels } from "../../src/data/index.js";

// Ranked d1..d5; relevant: d2 (grade 2), d4 (grade 1) and d9 (grade 1, never retrieved); d3 judged 0.
const ranked = ["d1", "d2", "d3", "d4", "d5"];
const rels = new Map([
  ["d2", 2],
  ["d3", 0],
  ["d4", 1],
  ["d9", 1],
]);

describe("metrics on a hand-computed ranking", () => {
  it("recall@k divides relevant retrieved by all relevant of the query", () => {
    expect(recallAt(ranked, rels, 1)).toBe(0);
    expect(recallAt(ranked, rels, 2)).toBeCloseTo(1 / 3, 12);
    expect(recallAt(ranked, rels, 100)).toBeCloseTo(2 / 3, 12);
  });
  it("precision@k divides by k", () => {
    expect(precisionAt(ranked, rels, 5)).toBeCloseTo(2 / 5, 12);
    expect(precisionAt(ranked, rels, 10)).toBeCloseTo(2 / 10, 12);
  });
  it("mrr@k is 1/rank of the first relevant within k", () => {
    expect(mrrAt(ranked, rels, 10)).toBe(1 / 2);
    expect(mrrAt(ranked, rels, 1)).toBe(0);
  });
  it("ndcg@k uses linear gain, log2(rank+1) discount and the ideal ranking from the qrels", () => {
    const dcg = 2 / Math.log2(3) + 1 / Math.log2(5);
    const idcg = 2 / Math.log2(2) + 1 / Math.log2(3) + 1 / Math.log2(4);
    expect(ndcgAt(ranked, rels, 5)).toBeCloseTo(dcg / idcg, 12);
    expect(ndcgAt(ranked, rels, 5)).toBeCloseTo(0.540586, 5);
    // Cut at 2: ideal has the two best grades (2, 1).
    expect(ndcgAt(ranked, rels, 2)).toBeCloseTo(2 / Math.log2(3) / (2 + 1 / Math.log2(3)), 12);
  });
  it("map@k sums precision at each relevant rank and divides by all relevant", () => {
    expect(averagePrecisionAt(ranked, rels, 100)).toBeCloseTo((1 / 2 + 2 / 4) / 3, 12);
    expect(averagePrecisionAt(ranked, rels, 3)).toBeCloseTo(1 / 2 / 3, 12);
  });
  it("throws on a cut-off that is not a positive integer", () => {
    expect(() => recallAt(ranked, rels, 0)).toThrow(/metrics: recall cut-off must be a positive integer, got 0/);
  });
});

describe("evaluateRun", () => {
  const qrels: Qrels = new Map([
    ["q1", new Map([["a", 1]])],
    [
      "q2",
      new Map([
        ["b", 2],
        ["c", 1],
      ]),
    ],
    ["q3", new Map([["x", 0]])], // no relevant passage: skipped
    ["q4", new Map([["z", 1]])], // not in the run: scores 0
  ]);
  const run: Run = new Map([
    [
      "q1",
      new Map([
        ["a", 0.5],
        ["b", 0.9],
      ]),
    ],
    [
      "q2",
      new Map([
        ["c", 3],
        ["b", 1],
        ["q2", 5],
      ]),
    ],
    ["q3", new Map([["x", 1]])],
  ]);

  it("ranks ties like trec_eval: score desc, then document id desc", () => {
    expect(
      rankLikeTrecEval(
        new Map([
          ["a", 1],
          ["c", 1],
          ["b", 2],
          ["d", 0],
        ]),
      ),
    ).toEqual(["b", "c", "a", "d"]);
  });
  it("averages over queries with relevant passages, scoring missing ones 0", () => {
    const ev = evaluateRun(run, qrels, { cutoffs: { recall: [1], mrr: [10] } });
    expect(ev.numQueries).toBe(3);
    expect(ev.skippedQueries).toEqual(["q3"]);
    expect(ev.missingQueries).toEqual(["q4"]);
    expect(ev.perQuery.get("q1")).toEqual({ "recall@1": 0, "mrr@10": 0.5 });
    expect(ev.perQuery.get("q2")).toEqual({ "recall@1": 0, "mrr@10": 0.5 }); // "q2" itself ranks first
    expect(ev.mean["mrr@10"]).toBeCloseTo((0.5 + 0.5 + 0) / 3, 12);
  });
  it("drops results whose id equals the query id when asked (BEIR ignore_identical_ids)", () => {
    const ev = evaluateRun(run, qrels, { cutoffs: { recall: [1] }, ignoreIdenticalIds: true });
    expect(ev.perQuery.get("q2")!["recall@1"]).toBe(0.5);
  });
  it("rejects unknown metric names", () => {
    expect(() => evaluateRun(run, qrels, { cutoffs: { bogus: [1] } as never })).toThrow(/metrics: unknown metric "bogus"/);
  });
  it("the design article's hit rate is not recall: one relevant found at rank 1 gives recall 1 but 0.1", () => {
    const q: Qrels = new Map([["q", new Map([["a", 1]])]]);
    const r: Run = new Map([["q", new Map([["a", 1]])]]);
    expect(evaluateRun(r, q, { cutoffs: { recall: [10] } }).mean["recall@10"]).toBe(1);
    expect(articleHitRateAt(r, q, 10)).toBeCloseTo(0.1, 12);
  });
});

describe("TREC files", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("writes a run in trec_eval order and reads it back", async () => {
    const dir = await mkdtemp(join(tmpdir(), "trec-"));
    dirs.push(dir);
    const run: Run = new Map([
      [
        "q1",
        new Map([
          ["a", 0.5],
          ["b", 0.9],
          ["c", 0.5],
        ]),
      ],
    ]);
    const path = join(dir, "run.trec");
    await writeTrecRun(path, run, "bm25");
    const { readFile } = await import("node:fs/promises");
    expect((await readFile(path, "utf8")).trim().split("\n")).toEqual(["q1 Q0 b 1 0.9 bm25", "q1 Q0 c 2 0.5 bm25", "q1 Q0 a 3 0.5 bm25"]);
    expect(await readTrecRun(path)).toEqual(run);
  });
  it("reads qrels and reports malformed lines with file:line", async () => {
    const dir = await mkdtemp(join(tmpdir(), "trec-"));
    dirs.push(dir);
    await writeFile(join(dir, "q.txt"), "q1 0 a 2\nq1 0 b 0\n");
    expect(await readTrecQrels(join(dir, "q.txt"))).toEqual(
      new Map([
        [
          "q1",
          new Map([
            ["a", 2],
            ["b", 0],
          ]),
        ],
      ]),
    );
    await writeFile(join(dir, "bad.run"), "q1 Q0 a 1 0.5 t\nq1 Q0 b 2 high t\n");
    await expect(readTrecRun(join(dir, "bad.run"))).rejects.toThrow(/TREC: score must be a number at .*bad\.run:2, got "high"/);
    await expect(writeTrecRun(join(dir, "x"), new Map(), "two words")).rejects.toThrow(/TREC: run tag must be one word/);
  });
});

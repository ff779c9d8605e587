import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadBeirDataset, type BeirDataset } from "../../src/data/beir.js";
import { readDprJson } from "../../src/data/dpr.js";
import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { createRandomDPRModel } from "../../src/testing/index.js";
import { BM25Index } from "../../src/retrievers/bm25/bm25-index.js";
import { HardNegativeMiner, selectHardNegatives, writeMinedDprJson, type MinedExample } from "../../src/training/mining.js";
import { parseMiningArgs, runMiningCli } from "../../src/training/mining-cli.js";
import { writeMiningFixture, type MiningFixture } from "./mining-fixture.js";

let root: string;
let fx: MiningFixture;
let data: BeirDataset;
let bm25: BM25Index;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "mining-"));
  fx = await writeMiningFixture(join(root, "beir"));
  data = await loadBeirDataset(fx.dir, "train");
  bm25 = await BM25Index.fromPassages(data.corpus);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function positivesOf(queryId: string): Set<string> {
  return new Set([...fx.qrels.get(queryId)!].filter(([, g]) => g > 0).map(([id]) => id));
}

describe("HardNegativeMiner positive scores (bm25)", () => {
  it("are the index's own scores: search's score for a positive ranked below the window, 0 for one sharing no term", async () => {
    // q2 gets a second positive: the passage BM25 ranks 11th for it, below a window of depth 5.
    const q2 = fx.questions[2]!;
    const deep = bm25.search(q2.text, 20)[10]!;
    const qrels = new Map(data.qrels);
    qrels.set(q2.id, new Map([...data.qrels.get(q2.id)!, [deep.id, 1]]));
    const { examples } = await new HardNegativeMiner({ depth: 5, perQuestion: 2 }).mine({ ...data, qrels });
    const ex = examples.find((e) => e.queryId === q2.id)!;
    expect(ex.positives.map((p) => p.id)).toContain(deep.id);
    expect(ex.positiveScores[ex.positives.findIndex((p) => p.id === deep.id)]).toBe(deep.score);
    expect(deep.score).toBeGreaterThan(0);
    let zero = 0;
    for (const e of examples) {
      e.positives.forEach((p, j) => {
        expect(e.positiveScores[j]).toBe(bm25.score(e.question, p.id));
        if (e.positiveScores[j] === 0) zero++;
      });
    }
    expect(zero).toBe(2); // q0's second positive and q5's share no term with their questions
  });
});

describe("selectHardNegatives", () => {
  const ranked = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1].map((score, i) => ({ id: `d${i}`, score }));
  const none = () => false;
  const rules = { skipTop: 0, depth: 10, marginMode: "relative" as const, perQuestion: 10, sample: "top" as const };

  it("keeps only ranks skipTop+1..depth, best first", () => {
    const got = selectHardNegatives(ranked, none, none, undefined, { ...rules, skipTop: 2, depth: 6 });
    expect(got.map((g) => g.rank)).toEqual([3, 4, 5, 6]);
    expect(got.map((g) => g.id)).toEqual(["d2", "d3", "d4", "d5"]);
  });

  it("drops positives and duplicates and counts why", () => {
    const counts = { droppedPositives: 0, droppedDuplicates: 0, droppedByMargin: 0 };
    const got = selectHardNegatives(
      ranked,
      (id) => id === "d1",
      (id) => id === "d3",
      undefined,
      rules,
      undefined,
      counts,
    );
    expect(got.map((g) => g.id)).toEqual(["d0", "d2", "d4", "d5", "d6", "d7", "d8", "d9"]);
    expect(counts).toEqual({ droppedPositives: 1, droppedDuplicates: 1, droppedByMargin: 0 });
  });

  it("relative margin keeps scores below s+ * (1 - m); absolute keeps scores below s+ - m", () => {
    const rel = selectHardNegatives(ranked, none, none, 8, { ...rules, margin: 0.25 });
    expect(rel.map((g) => g.score)).toEqual([5, 4, 3, 2, 1]); // < 6
    const abs = selectHardNegatives(ranked, none, none, 8, { ...rules, margin: 0.5, marginMode: "absolute" });
    expect(abs.map((g) => g.score)).toEqual([7, 6, 5, 4, 3, 2, 1]); // < 7.5
    const zero = selectHardNegatives(ranked, none, none, 8, { ...rules, margin: 0 });
    expect(zero[0]!.score).toBe(7); // the candidate tied with the positive is dropped
  });

  it("random sampling is seeded, stays in the survivors and returns them in rank order", async () => {
    const { SeededRandom } = await import("../../src/training/random.js");
    const a = selectHardNegatives(ranked, none, none, undefined, { ...rules, perQuestion: 3, sample: "random" }, new SeededRandom(5));
    const b = selectHardNegatives(ranked, none, none, undefined, { ...rules, perQuestion: 3, sample: "random" }, new SeededRandom(5));
    expect(a).toEqual(b);
    expect(a).toHaveLength(3);
    expect(a.map((x) => x.rank)).toEqual([...a.map((x) => x.rank)].sort((x, y) => x - y));
    expect(a.map((x) => x.id)).not.toEqual(["d0", "d1", "d2"]);
  });

  it("throws when a margin is set but the positive's score is unknown", () => {
    expect(() => selectHardNegatives(ranked, none, none, undefined, { ...rules, margin: 0.1 })).toThrow(
      /margin needs the positive's score/,
    );
  });
});

describe("HardNegativeMiner (bm25)", () => {
  it("takes per question the first survivors of the BM25 window, never a positive", async () => {
    const miner = new HardNegativeMiner({ skipTop: 2, depth: 20, perQuestion: 5 });
    const { examples, stats } = await miner.mine(data);
    expect(examples).toHaveLength(fx.questions.length);
    expect(stats.questions).toBe(fx.questions.length);
    for (const ex of examples) {
      const positives = positivesOf(ex.queryId);
      expect(ex.hardNegatives).toHaveLength(5);
      const expected = bm25
        .search(ex.question, 20)
        .map((h, i) => ({ ...h, rank: i + 1 }))
        .filter((h) => h.rank > 2 && !positives.has(h.id) && !(ex.queryId === "q0" && h.id === "dup0"))
        .slice(0, 5);
      expect(ex.mined.map((m) => m.passage.id)).toEqual(expected.map((h) => h.id));
      expect(ex.mined.map((m) => m.rank)).toEqual(expected.map((h) => h.rank));
      for (const m of ex.mined) {
        expect(positives.has(m.passage.id)).toBe(false);
        expect(m.rank).toBeGreaterThan(2);
        expect(m.rank).toBeLessThanOrEqual(20);
      }
      expect(ex.positives.map((p) => p.id).sort()).toEqual([...positives].sort());
    }
    // Question 1's grade-0 judgement is not a positive; q0 has two.
    expect(examples.find((e) => e.queryId === "q0")!.positives).toHaveLength(2);
    expect(examples.find((e) => e.queryId === "q1")!.positives.map((p) => p.id)).toEqual([fx.passages[1]!.id]);
  });

  it("never returns the duplicate of a positive under another id", async () => {
    const { examples, stats } = await new HardNegativeMiner({ depth: 81, perQuestion: 81 }).mine(data);
    const q0 = examples.find((e) => e.queryId === "q0")!;
    expect(q0.hardNegatives.map((p) => p.id)).not.toContain("dup0");
    expect(stats.droppedDuplicates).toBeGreaterThanOrEqual(1);
    // For other questions dup0 is an ordinary candidate.
    expect(examples.some((e) => e.queryId !== "q0" && e.hardNegatives.some((p) => p.id === "dup0"))).toBe(true);
  });

  it("with a relative margin, keeps only candidates scoring below s+ * (1 - m) and drops some", async () => {
    const margin = 0.2;
    const plain = await new HardNegativeMiner({ depth: 30, perQuestion: 30 }).mine(data);
    const { examples, stats } = await new HardNegativeMiner({ depth: 30, perQuestion: 30, margin }).mine(data);
    expect(stats.droppedByMargin).toBeGreaterThan(0);
    let fewer = 0;
    examples.forEach((ex, i) => {
      const best = Math.max(...ex.positiveScores);
      // positive scores are the exact BM25 scores
      ex.positives.forEach((p, j) => expect(ex.positiveScores[j]).toBe(bm25.score(ex.question, p.id)));
      for (const m of ex.mined) expect(m.score).toBeLessThan(best * (1 - margin));
      const kept = plain.examples[i]!.mined.filter((m) => m.score < best * (1 - margin));
      expect(ex.mined.map((m) => m.passage.id)).toEqual(kept.map((m) => m.passage.id));
      if (ex.mined.length < plain.examples[i]!.mined.length) fewer++;
    });
    expect(fewer).toBeGreaterThan(0);
  });

  it("counts questions without a positive in the corpus instead of mining them", async () => {
    const partial: BeirDataset = { ...data, qrels: new Map(data.qrels) };
    partial.qrels.set("q2", new Map([["not-in-corpus", 1]]));
    const { examples, stats } = await new HardNegativeMiner({ perQuestion: 3 }).mine(partial);
    expect(stats.questionsWithoutPositives).toBe(1);
    expect(examples.map((e) => e.queryId)).not.toContain("q2");
  });
});

describe("writeMinedDprJson", () => {
  it("writes DPR JSON with scores that readDprJson reads back, leaving no temporary file", async () => {
    const { examples } = await new HardNegativeMiner({ skipTop: 1, depth: 10, perQuestion: 4 }).mine(data);
    const dir = join(root, "out");
    await import("node:fs/promises").then((fs) => fs.mkdir(dir, { recursive: true }));
    const path = join(dir, "mined.json");
    await writeMinedDprJson(path, examples);
    const back = await readDprJson(path);
    expect(back).toHaveLength(examples.length);
    back.forEach((b, i) => {
      expect(b.question).toBe(examples[i]!.question);
      expect(b.positives.map((p) => p.id)).toEqual(examples[i]!.positives.map((p) => p.id));
      expect(b.hardNegatives.map((p) => [p.id, p.title, p.text])).toEqual(examples[i]!.hardNegatives.map((p) => [p.id, p.title, p.text]));
    });
    const raw = JSON.parse(await readFile(path, "utf8")) as { hard_negative_ctxs: { score: number; passage_id: string }[] }[];
    expect(raw[0]!.hard_negative_ctxs[0]!.score).toBeCloseTo(examples[0]!.mined[0]!.score, 5);
    expect(await readdir(dir)).toEqual(["mined.json"]);
  });
});

describe("HardNegativeMiner (dense)", () => {
  it("ranks by exact inner product of the DPR model's embeddings and applies the window and an absolute margin", async () => {
    const modelDir = join(root, "dpr");
    await createRandomDPRModel(modelDir, { shape: "tiny", texts: data.corpus.map((p) => p.text), vocabSize: 600, safetensors: false });
    const miner = new HardNegativeMiner({ method: "dense", modelPath: modelDir, skipTop: 1, depth: 15, perQuestion: 6 });
    const { examples, stats } = await miner.mine(data);
    expect(stats.method).toBe("dense");
    const emb = new DPREmbeddings({ modelPath: modelDir });
    try {
      const P = await emb.embedPassagesMatrix(data.corpus.map((p) => ({ title: p.title, text: p.text })));
      const Q = await emb.embedQueriesMatrix(examples.map((e) => e.question));
      const dot = (qi: number, pi: number) => {
        let s = 0;
        for (let d = 0; d < P.dim; d++) s += Q.data[qi * P.dim + d]! * P.data[pi * P.dim + d]!;
        return s;
      };
      examples.forEach((ex: MinedExample, qi) => {
        const positives = positivesOf(ex.queryId);
        const order = data.corpus.map((p, pi) => ({ id: p.id, score: dot(qi, pi) })).sort((a, b) => b.score - a.score);
        for (const m of ex.mined) {
          const pi = data.corpus.findIndex((p) => p.id === m.passage.id);
          expect(m.score).toBeCloseTo(dot(qi, pi), 3);
          expect(m.rank).toBeGreaterThan(1);
          expect(m.rank).toBeLessThanOrEqual(15);
          expect(positives.has(m.passage.id)).toBe(false);
          // the rank is the passage's place in the exact ranking (ties aside)
          expect(Math.abs(order[m.rank - 1]!.score - m.score)).toBeLessThan(1e-3);
        }
        ex.positives.forEach((p, j) => expect(ex.positiveScores[j]).toBeCloseTo(dot(qi, data.corpus.indexOf(p)), 3));
      });
      // absolute margin
      const margin = 0.05;
      const withMargin = await new HardNegativeMiner({ method: "dense", modelPath: modelDir, depth: 40, perQuestion: 40, margin }).mine(
        data,
      );
      for (const ex of withMargin.examples) {
        const best = Math.max(...ex.positiveScores);
        for (const m of ex.mined) expect(m.score).toBeLessThan(best - margin);
      }
    } finally {
      await emb.dispose();
    }
  });
});

describe("bad input", () => {
  it("rejects an empty window, a dense miner without a model, a BM25 margin >= 1 and bad counts", () => {
    expect(() => new HardNegativeMiner({ skipTop: 10, depth: 10 })).toThrow(
      /HardNegativeMiner: skipTop \(10\) must be smaller than depth \(10\)/,
    );
    expect(() => new HardNegativeMiner({ method: "dense" })).toThrow(/HardNegativeMiner: method "dense" needs modelPath/);
    expect(() => new HardNegativeMiner({ margin: 1.5 })).toThrow(/relative .* must be < 1, got 1.5/);
    expect(() => new HardNegativeMiner({ margin: -1 })).toThrow(/margin must be a finite number >= 0, got -1/);
    expect(() => new HardNegativeMiner({ perQuestion: 0 })).toThrow(/perQuestion must be an integer >= 1, got 0/);
    expect(() => new HardNegativeMiner({ method: "sparse" as never })).toThrow(/method must be "bm25" or "dense"/);
  });

  it("rejects an empty corpus", async () => {
    await expect(new HardNegativeMiner().mine({ ...data, corpus: [] })).rejects.toThrow(/HardNegativeMiner: the corpus is empty/);
  });

  it("a dense miner with a missing model folder fails with the folder named", async () => {
    const missing = join(root, "no-such-model");
    await expect(new HardNegativeMiner({ method: "dense", modelPath: missing }).mine(data)).rejects.toThrow(/no-such-model/);
  });
});

describe("mine-hard-negatives CLI", () => {
  it("parses flags and refuses bad ones by name", () => {
    const o = parseMiningArgs([
      "--dataset",
      "d",
      "--out",
      "o.json",
      "--skip-top",
      "3",
      "--depth",
      "50",
      "--margin",
      "0.1",
      "--per-question",
      "7",
    ])!;
    expect(o.split).toBe("train");
    expect(o.miner).toMatchObject({ method: "bm25", skipTop: 3, depth: 50, margin: 0.1, perQuestion: 7 });
    expect(() => parseMiningArgs(["--out", "o.json"])).toThrow(/--dataset <BEIR folder> is required/);
    expect(() => parseMiningArgs(["--dataset", "d", "--out", "o", "--depth", "ten"])).toThrow(/--depth must be an integer >= 1, got "ten"/);
    expect(() => parseMiningArgs(["--dataset", "d", "--out", "o", "--method", "dense"])).toThrow(/--method dense needs --model/);
    expect(() => parseMiningArgs(["--dataset", "d", "--out", "o", "--bogus"])).toThrow(/mine-hard-negatives: Unknown option '--bogus'/);
    expect(parseMiningArgs(["--help"])).toBeNull();
  });

  it("mines a BEIR folder into a DPR JSON file and a stats file", async () => {
    const out = join(root, "cli.json");
    const statsPath = join(root, "cli-stats.json");
    const code = await runMiningCli([
      "--dataset",
      fx.dir,
      "--out",
      out,
      "--depth",
      "12",
      "--per-question",
      "3",
      "--stats",
      statsPath,
      "--quiet",
    ]);
    expect(code).toBe(0);
    const back = await readDprJson(out);
    expect(back).toHaveLength(fx.questions.length);
    expect(back.every((b) => b.hardNegatives.length === 3)).toBe(true);
    const stats = JSON.parse(await readFile(statsPath, "utf8")) as { questions: number; negatives: number; queriesPerSecond: number };
    expect(stats.questions).toBe(fx.questions.length);
    expect(stats.negatives).toBe(3 * fx.questions.length);
    expect(stats.queriesPerSecond).toBeGreaterThan(0);
  });

  it("returns exit code 1 and names the split when it does not exist", async () => {
    const chunks: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((c: string) => (chunks.push(String(c)), true)) as typeof process.stderr.write;
    try {
      expect(await runMiningCli(["--dataset", fx.dir, "--split", "dev", "--out", join(root, "x.json"), "--quiet"])).toBe(1);
    } finally {
      process.stderr.write = write;
    }
    expect(chunks.join("")).toMatch(/split "dev" not found .* \(available: test, train\)/);
  });
});

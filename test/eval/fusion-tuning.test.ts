/**
 * The fusion tuner as a pure function over hand-built ranked lists: with a dense side that is random
 * noise it keeps BM25 (dense weight 0), with a dense side that finds what BM25 misses it gives the
 * dense side weight and beats BM25; scores equal independent computations; ties go to the smaller
 * dense weight; the seeded hold-out is deterministic.
 */
import { describe, expect, it } from "vitest";

import { defaultFusionGrid, holdOutQuestions, parseTuningMetric, tuneFusion, type TuningQuestion } from "../../src/eval/fusion-tuning.js";
import { evaluateRun } from "../../src/eval/metrics.js";
import { linearFusion, reciprocalRankFusion, type RankedItem } from "../../src/retrievers/fusion.js";
import { SeededRandom } from "../../src/utils/random.js";

const N = 40;
const CANDIDATES = 30;

/** A ranked list from ids best first, with decreasing scores (step `gap`). */
function ranked(ids: string[], top = 20, gap = 0.5): RankedItem[] {
  return ids.map((id, i) => ({ id, score: top - i * gap }));
}

/** Question i has one relevant passage r{i} (grade 2) among 30 candidates; BM25 puts it first for 3 of 4 questions, 4th otherwise. */
function dataset(dense: "noise" | "good" | "same-as-bm25", seed = 7) {
  const rng = new SeededRandom(seed);
  const qrels = new Map<string, Map<string, number>>();
  const questions: TuningQuestion[] = [];
  for (let i = 0; i < N; i++) {
    const rel = `r${i}`;
    const others = Array.from({ length: CANDIDATES - 1 }, (_, j) => `d${i}-${j}`);
    qrels.set(`q${i}`, new Map([[rel, 2]]));
    const relRank = i % 4 === 0 ? 3 : 0;
    const sparseIds = [...others];
    sparseIds.splice(relRank, 0, rel);
    let denseIds: string[];
    if (dense === "noise") denseIds = rng.shuffle([rel, ...others]);
    else if (dense === "good") denseIds = [rel, ...rng.shuffle([...others])];
    else denseIds = [...sparseIds];
    questions.push({ id: `q${i}`, sparse: ranked(sparseIds), dense: ranked(denseIds, 0.9, 0.01) });
  }
  return { questions, qrels };
}

function deepFreeze<T>(x: T): T {
  if (typeof x === "object" && x !== null && !Object.isFrozen(x)) {
    Object.freeze(x);
    for (const v of Object.values(x)) deepFreeze(v);
  }
  return x;
}

describe("tuneFusion", () => {
  it("keeps BM25 (dense weight 0) when the dense side is random noise, and never scores below BM25", () => {
    const { questions, qrels } = dataset("noise");
    const r = tuneFusion(deepFreeze({ questions, qrels }));
    expect(r.metric).toBe("ndcg@10");
    expect(r.questions).toBe(N);
    expect(r.best.denseShare).toBe(0);
    expect(r.best.setting).toEqual({ method: "rrf", k: 60, weights: [0, 1] });
    expect(r.best.score).toBeCloseTo(r.bm25Score, 12);
    expect(r.denseScore).toBeLessThan(r.bm25Score - 0.3);
    // Every positive dense weight is worse here: the noise pushes BM25's first hits down.
    for (const p of r.grid) if (p.denseShare >= 0.25) expect(p.score, JSON.stringify(p.setting)).toBeLessThan(r.bm25Score);
  });

  it("gives the dense side weight when it finds what BM25 ranks 4th, and beats both sides alone", () => {
    const { questions, qrels } = dataset("good");
    const r = tuneFusion({ questions, qrels });
    expect(r.best.denseShare).toBeGreaterThan(0);
    expect(r.best.score).toBeGreaterThan(r.bm25Score + 0.05);
    expect(r.best.score).toBeCloseTo(1, 12); // relevant first for every question
    expect(r.bm25Score).toBeLessThan(0.9);
    // the smallest dense weight that reaches 1 wins the tie
    const perfect = r.grid.filter((p) => p.score >= 1 - 1e-12);
    expect(r.best.denseShare).toBe(Math.min(...perfect.map((p) => p.denseShare)));
  });

  it("scores each grid point as evaluateRun scores the fused lists, in the grid's order", () => {
    const { questions, qrels } = dataset("good", 3);
    const grid = defaultFusionGrid();
    expect(grid).toHaveLength(11 + 2 * 21);
    const r = tuneFusion({ questions, qrels, limit: 20 });
    expect(r.grid.map((p) => p.setting)).toEqual(grid);
    const runOf = (fuse: (q: TuningQuestion) => Array<{ id: string; score: number }>) =>
      new Map(questions.map((q) => [q.id, new Map(fuse(q).map((f) => [f.id, f.score]))]));
    const rrf = runOf((q) => reciprocalRankFusion([q.dense, q.sparse], { k: 60, weights: [0.5, 1], limit: 20 }));
    const lin = runOf((q) => linearFusion([q.dense, q.sparse], { weights: [0.35, 0.65], normalization: "zscore", limit: 20 }));
    const at = (pred: (s: (typeof grid)[number]) => boolean) => r.grid.find((p) => pred(p.setting))!.score;
    expect(at((s) => s.method === "rrf" && s.weights[0] === 0.5)).toBe(
      evaluateRun(rrf, qrels, { cutoffs: { ndcg: [10] } }).mean["ndcg@10"],
    );
    expect(at((s) => s.method === "linear" && s.alpha === 0.35 && s.normalization === "zscore")).toBe(
      evaluateRun(lin, qrels, { cutoffs: { ndcg: [10] } }).mean["ndcg@10"],
    );
  });

  it("breaks ties toward the smaller dense weight, RRF before linear, min-max before z-score", () => {
    const { questions, qrels } = dataset("same-as-bm25");
    const r = tuneFusion({ questions, qrels });
    expect(new Set(r.grid.map((p) => p.score)).size).toBe(1); // both sides rank alike: every setting ties
    expect(r.best.setting).toEqual({ method: "rrf", k: 60, weights: [0, 1] });
    const linearOnly = tuneFusion({
      questions,
      qrels,
      grid: defaultFusionGrid()
        .filter((s) => s.method === "linear")
        .reverse(),
    });
    expect(linearOnly.best.setting).toEqual({ method: "linear", alpha: 0, normalization: "minmax" });
  });

  it("tunes the metric it is given", () => {
    const { questions, qrels } = dataset("good");
    const r = tuneFusion({ questions, qrels, metric: "recall@1" });
    expect(r.metric).toBe("recall@1");
    expect(r.bm25Score).toBeCloseTo(0.75, 12); // BM25 first for 3 of 4 questions
    expect(r.best.score).toBe(1);
  });

  it("rejects bad input naming the problem", () => {
    const { questions, qrels } = dataset("good");
    expect(() => parseTuningMetric("ndcg")).toThrow(
      'metric must be <name>@<k> with name one of ndcg, recall, mrr, map, precision and k >= 1 (e.g. ndcg@10), got "ndcg"',
    );
    expect(() => parseTuningMetric("bleu@4")).toThrow(/got "bleu@4"/);
    expect(() => tuneFusion({ questions, qrels, grid: [] })).toThrow(/the grid is empty/);
    expect(() => tuneFusion({ questions, qrels: new Map() })).toThrow('tuneFusion: dev question "q0" has no judgements in the qrels given');
    expect(() => tuneFusion({ questions: [...questions, questions[0]!], qrels })).toThrow(/"q0" is listed twice/);
    const unjudged = new Map([...qrels].map(([q]) => [q, new Map([["x", 0]])]));
    expect(() => tuneFusion({ questions, qrels: unjudged })).toThrow(/none of the 40 dev questions has a relevant passage/);
    expect(() => tuneFusion({ questions, qrels, limit: 0 })).toThrow(/limit must be an integer >= 1, got 0/);
    expect(() => defaultFusionGrid({ alphaStep: 0.3 })).toThrow(/alphaStep must divide 1 into whole steps/);
  });
});

describe("holdOutQuestions", () => {
  const ids = Array.from({ length: 50 }, (_, i) => `q${i}`);

  it("draws round(fraction × n) ids with the seed, the same every time, both parts in input order", () => {
    const a = holdOutQuestions(ids, 0.2, 0);
    expect(a.dev).toHaveLength(10);
    expect(a.rest).toHaveLength(40);
    expect(new Set([...a.dev, ...a.rest]).size).toBe(50);
    expect([...a.dev].sort((x, y) => ids.indexOf(x) - ids.indexOf(y))).toEqual(a.dev);
    expect(holdOutQuestions(ids, 0.2, 0)).toEqual(a);
    expect(holdOutQuestions(ids, 0.2, 1).dev).not.toEqual(a.dev);
    expect(a.dev).not.toEqual(ids.slice(0, 10)); // drawn, not the first ones
  });

  it("keeps at least one question on each side and rejects what cannot be split", () => {
    expect(holdOutQuestions(["a", "b"], 0.01, 0).dev).toHaveLength(1);
    expect(holdOutQuestions(["a", "b"], 0.99, 0).rest).toHaveLength(1);
    expect(() => holdOutQuestions(["a"], 0.5, 0)).toThrow(/needs at least 2 questions with a relevant passage/);
    expect(() => holdOutQuestions(ids, 1, 0)).toThrow(/must be in \(0, 1\), got 1/);
  });
});

/**
 * The +rerank methods with the project's CrossEncoderReranker on a tiny random cross-encoder
 * (written by the test): the head of each first-stage list is reordered by the cross-encoder's
 * scores, the tail keeps its first-stage order, and the rerank stage is timed.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { runEvaluateCli } from "../../src/eval/evaluate-cli.js";
import { rankLikeTrecEval } from "../../src/eval/metrics.js";
import { readTrecRun } from "../../src/eval/trec.js";
import { createRandomCrossEncoder } from "../../src/testing/index.js";
import { CrossEncoderReranker } from "../../src/rerankers/cross-encoder-reranker.js";
import { writeTinyBeir, writeTinyDpr, type TinyBeir } from "./evaluate-fixture.js";

const DEPTH = 30;
const RERANK_DEPTH = 10;
const METHODS = ["bm25", "dpr", "hybrid", "bm25+rerank", "dpr+rerank", "hybrid+rerank"];

let tmp: string;
let beir: TinyBeir;
let crossDir: string;
let outDir: string;
let code: number;
let stderr = "";
let stdout = "";
let json: {
  settings: { methods: string[]; rerankDepth: number; crossEncoder: string };
  methods: Array<{
    method: string;
    metrics: Record<string, number>;
    stages: string[];
    latency: Record<string, { p50: number; mean: number }>;
  }>;
};

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "eval-rerank-"));
  beir = await writeTinyBeir(join(tmp, "tiny-beir"));
  const texts = [...beir.passages.map((p) => p.text), ...beir.queries.map((q) => q.text)];
  await writeTinyDpr(join(tmp, "dpr"), texts);
  crossDir = join(tmp, "cross");
  await createRandomCrossEncoder(crossDir, { shape: "tiny", texts, vocabSize: 600, initializerRange: 0.3, seed: 5 });
  outDir = join(tmp, "out");
  code = await runEvaluateCli(
    [
      "--dataset",
      beir.dir,
      "--dpr",
      join(tmp, "dpr"),
      "--cross-encoder",
      crossDir,
      "--depth",
      String(DEPTH),
      "--rerank-depth",
      String(RERANK_DEPTH),
      "--out",
      outDir,
      "--trec-runs",
    ],
    { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
  );
  if (code === 0) json = JSON.parse(await readFile(join(outDir, "results.json"), "utf8"));
}, 180_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("evaluate with a cross-encoder", () => {
  it("runs all six methods when both models are given", () => {
    expect(stderr).not.toMatch(/evaluate: /);
    expect(code).toBe(0);
    expect(json.settings.methods).toEqual(METHODS);
    expect(json.settings.rerankDepth).toBe(RERANK_DEPTH);
    for (const m of METHODS) expect(stdout).toMatch(new RegExp(`^\\| ${m.replace("+", "\\+")} \\|`, "m"));
  });

  it("dpr+rerank: the top 10 are DPR's top 10 in cross-encoder score order, the rest keep DPR's order", async () => {
    const [dpr, reranked] = await Promise.all([readTrecRun(join(outDir, "dpr.trec")), readTrecRun(join(outDir, "dpr+rerank.trec"))]);
    const reranker = new CrossEncoderReranker({ modelPath: crossDir });
    const text = new Map(beir.passages.map((p) => [p.id, p.text]));
    let reordered = 0;
    try {
      for (const q of beir.queries) {
        const first = rankLikeTrecEval(dpr.get(q.id)!);
        const got = rankLikeTrecEval(reranked.get(q.id)!);
        expect(got).toHaveLength(DEPTH);
        const head = first.slice(0, RERANK_DEPTH);
        const scores = await reranker.scorePairs(
          q.text,
          head.map((id) => text.get(id)!),
        );
        const expected = head.map((id, i) => ({ id, s: scores[i]! })).sort((a, b) => b.s - a.s);
        expect(got.slice(0, RERANK_DEPTH)).toEqual(expected.map((e) => e.id));
        expected.forEach((e) => expect(reranked.get(q.id)!.get(e.id)!).toBeCloseTo(e.s, 5));
        expect(got.slice(RERANK_DEPTH)).toEqual(first.slice(RERANK_DEPTH));
        if (got.slice(0, RERANK_DEPTH).join() !== head.join()) reordered++;
      }
    } finally {
      await reranker.dispose();
    }
    expect(reordered).toBeGreaterThan(0); // the cross-encoder really reorders
  });

  it("reranking inside the top 10 leaves recall at 10, 20 and the full depth unchanged", () => {
    const by = Object.fromEntries(json.methods.map((m) => [m.method, m.metrics]));
    for (const k of ["recall@10", "recall@20", "recall@100"]) expect(by["dpr+rerank"]![k], k).toBeCloseTo(by["dpr"]![k]!, 12);
    for (const fs of ["bm25", "hybrid"]) expect(by[`${fs}+rerank`]!["recall@100"]).toBeCloseTo(by[fs]!["recall@100"]!, 12);
  });

  it("takes any LangChain reranker object, and refuses one whose topN would drop candidates", async () => {
    const { RetrievalEvaluator } = await import("../../src/eval/evaluate.js");
    const run = async (topN: number) => {
      const reranker = new CrossEncoderReranker({ modelPath: crossDir, topN });
      const ev = new RetrievalEvaluator({
        dataset: beir.dir,
        dprModelPath: join(tmp, "dpr"),
        reranker,
        methods: ["dpr+rerank"],
        depth: DEPTH,
        rerankDepth: RERANK_DEPTH,
        maxQueries: 2,
      });
      try {
        return await ev.evaluate();
      } finally {
        await ev.dispose();
        await reranker.dispose();
      }
    };
    const ok = await run(RERANK_DEPTH);
    const fromCli = await readTrecRun(join(outDir, "dpr+rerank.trec"));
    for (const [qid, ranking] of ok.runs.get("dpr+rerank")!) {
      expect(rankLikeTrecEval(ranking)).toEqual(rankLikeTrecEval(fromCli.get(qid)!)); // same as the folder-loaded reranker
    }
    await expect(run(3)).rejects.toThrow(
      `evaluate: the reranker returned 3 of the ${RERANK_DEPTH} candidates it was given; set its topN to at least ` +
        `rerankDepth (${RERANK_DEPTH})`,
    );
  });

  it("the rerank stage is timed for the +rerank methods only, and counts in their total", () => {
    for (const m of json.methods) {
      const reranks = m.method.endsWith("+rerank");
      expect(m.stages.includes("rerank"), m.method).toBe(reranks);
      if (reranks) {
        expect(m.latency.rerank!.p50).toBeGreaterThan(0);
        const sum = m.stages.reduce((s, st) => s + m.latency[st]!.mean, 0);
        expect(m.latency.total!.mean).toBeCloseTo(sum, 6);
      } else {
        expect(m.latency.rerank!.mean).toBe(0);
      }
    }
    const first = (name: string) => json.methods.find((m) => m.method === name)!;
    // The first-stage part of a +rerank method is the same measurement as the plain method.
    expect(first("hybrid+rerank").latency.encode).toEqual(first("hybrid").latency.encode);
  });
});

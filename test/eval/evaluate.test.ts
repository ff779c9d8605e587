/**
 * End-to-end tests of the evaluation CLI and RetrievalEvaluator on a tiny BEIR folder with a tiny
 * random DPR model (both written by the test): real BM25 index, real ONNX sessions, real faiss
 * index, real files. Numbers are checked against independent computations.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { RetrievalEvaluator, type EvaluationReport } from "../../src/eval/evaluate.js";
import { evaluateRun } from "../../src/eval/metrics.js";
import { readTrecRun } from "../../src/eval/trec.js";
import { reciprocalRankFusion } from "../../src/retrievers/fusion.js";
import { BM25Index } from "../../src/retrievers/bm25/bm25-index.js";
import { writeTinyBeir, writeTinyDpr, type TinyBeir } from "./evaluate-fixture.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TSX = join(ROOT, "node_modules", ".bin", "tsx");
const run = promisify(execFile);

let tmp: string;
let beir: TinyBeir;
let modelDir: string;
let outDir: string;
let cli: { code: number; stdout: string; stderr: string };
let json: {
  dataset: { evaluatedQueries: number; skippedQueries: string[]; passages: number };
  settings: { methods: string[] };
  methods: Array<{
    method: string;
    metrics: Record<string, number>;
    articleRecallAt10: number;
    stages: string[];
    latency: Record<string, { p50: number; p95: number; mean: number }>;
    perQuery: Record<string, Record<string, number>>;
  }>;
  articleRecallNote: string;
};

/** Independent trec_eval-style ranking: score desc, ties by id desc. */
function ranked(scores: Map<string, number>): string[] {
  return [...scores.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? 1 : -1)).map(([id]) => id);
}

/** Independent means of the table's metrics for a run (queries with a relevant passage only). */
function independentMetrics(runScores: Map<string, Map<string, number>>, qrels: Map<string, Map<string, number>>) {
  const sums: Record<string, number> = {};
  let n = 0;
  let articleHits = 0;
  const add = (k: string, v: number) => (sums[k] = (sums[k] ?? 0) + v);
  for (const [qid, judged] of qrels) {
    const relevant = [...judged].filter(([, g]) => g > 0);
    if (relevant.length === 0) continue;
    n++;
    const list = ranked(runScores.get(qid) ?? new Map());
    const isRel = (id: string) => (judged.get(id) ?? 0) > 0;
    for (const k of [1, 5, 10, 20, 100]) add(`recall@${k}`, list.slice(0, k).filter(isRel).length / relevant.length);
    const first = list.slice(0, 10).findIndex(isRel);
    add("mrr@10", first < 0 ? 0 : 1 / (first + 1));
    let dcg = 0;
    list.slice(0, 10).forEach((id, i) => (dcg += (judged.get(id) ?? 0) > 0 ? judged.get(id)! / Math.log2(i + 2) : 0));
    const ideal = relevant
      .map(([, g]) => g)
      .sort((a, b) => b - a)
      .slice(0, 10);
    add("ndcg@10", dcg / ideal.reduce((s, g, i) => s + g / Math.log2(i + 2), 0));
    let hits = 0;
    let ap = 0;
    list.slice(0, 100).forEach((id, i) => {
      if (isRel(id)) ap += ++hits / (i + 1);
    });
    add("map@100", ap / relevant.length);
    articleHits += list.slice(0, 10).filter(isRel).length;
  }
  const mean = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / n]));
  return { mean, article: articleHits / (10 * n), n };
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "eval-e2e-"));
  beir = await writeTinyBeir(join(tmp, "tiny-beir"));
  modelDir = join(tmp, "dpr");
  await writeTinyDpr(modelDir, [...beir.passages.map((p) => p.text), ...beir.queries.map((q) => q.text)]);
  outDir = join(tmp, "out");
  try {
    const r = await run(
      TSX,
      [
        "scripts/evaluate.ts",
        "--dataset",
        beir.dir,
        "--dpr",
        modelDir,
        "--out",
        outDir,
        "--trec-runs",
        "--depth",
        "50",
        "--rerank-depth",
        "20",
      ],
      {
        cwd: ROOT,
        maxBuffer: 1 << 24,
      },
    );
    cli = { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    cli = { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? String(err) };
  }
  if (cli.code === 0) json = JSON.parse(await readFile(join(outDir, "results.json"), "utf8"));
}, 180_000);

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("evaluate CLI end to end", () => {
  it("exits 0 and writes the report, JSON, both SVG plots and one TREC run per method", async () => {
    expect(cli.stderr).not.toMatch(/Error|evaluate: /);
    expect(cli.code).toBe(0);
    for (const f of ["report.md", "results.json", "recall-at-k.svg", "latency.svg", "bm25.trec", "dpr.trec", "hybrid.trec"]) {
      expect((await stat(join(outDir, f))).size, f).toBeGreaterThan(100);
    }
    expect(json.settings.methods).toEqual(["bm25", "dpr", "hybrid"]);
  });

  it("reports corpus-encoding progress on stderr and prints the report on stdout", async () => {
    expect(cli.stderr).toMatch(/\[encode-corpus\] encoded 60\/60 passages/);
    expect(cli.stderr).toMatch(/\[queries\] ran 12\/12 queries/);
    expect(cli.stdout).toBe(await readFile(join(outDir, "report.md"), "utf8"));
  });

  it("the Markdown report has a quality row and a latency row per method and the article-recall line", async () => {
    const md = await readFile(join(outDir, "report.md"), "utf8");
    for (const m of ["bm25", "dpr", "hybrid"]) expect(md.match(new RegExp(`^\\| ${m} \\|`, "gm"))?.length, m).toBe(2);
    expect(md).toContain("10 × queries");
    expect(md).toContain(json.articleRecallNote);
    const bm25Row = md.split("\n").find((l) => l.startsWith("| bm25 |"))!;
    expect(bm25Row).toContain(json.methods[0]!.metrics["ndcg@10"]!.toFixed(4));
  });

  it("evaluates the judged queries, skipping the one without a relevant passage", () => {
    expect(json.dataset.passages).toBe(60);
    expect(json.dataset.evaluatedQueries).toBe(11);
    expect(json.dataset.skippedQueries).toEqual(["q11"]);
  });

  it("BM25 numbers in the JSON equal metrics computed independently from a BM25 index built here", async () => {
    const index = await BM25Index.fromPassages(beir.passages.map((p) => ({ ...p, title: "" })));
    const scores = new Map(beir.queries.map((q) => [q.id, new Map(index.search(q.text, 50).map((h) => [h.id, h.score]))]));
    const expected = independentMetrics(scores, beir.qrels);
    expect(expected.n).toBe(11);
    const bm25 = json.methods.find((m) => m.method === "bm25")!;
    for (const [k, v] of Object.entries(expected.mean)) expect(bm25.metrics[k], k).toBeCloseTo(v, 12);
    expect(bm25.articleRecallAt10).toBeCloseTo(expected.article, 12);
    // On this set BM25 finds the abstract a question came from: a real signal, not noise.
    expect(bm25.metrics["recall@10"]).toBeGreaterThan(0.5);
    expect(Object.keys(bm25.perQuery).sort()).toEqual(
      beir.queries
        .slice(0, 11)
        .map((q) => q.id)
        .sort(),
    );
  });

  it("TREC runs read back evaluate to the JSON's numbers for every method", async () => {
    for (const m of json.methods) {
      const fromFile = evaluateRun(await readTrecRun(join(outDir, `${m.method}.trec`)), beir.qrels);
      for (const [k, v] of Object.entries(fromFile.mean)) expect(m.metrics[k], `${m.method} ${k}`).toBeCloseTo(v, 9);
    }
  });

  it("the DPR run is the exact inner-product ranking of the passage vectors (Flat index)", async () => {
    const emb = new DPREmbeddings({ modelPath: modelDir });
    try {
      const pm = await emb.embedPassagesMatrix(beir.passages.map((p) => ({ text: p.text })));
      const dprRun = await readTrecRun(join(outDir, "dpr.trec"));
      for (const q of beir.queries) {
        const qv = await emb.embedQueryVector(q.text);
        const expected = beir.passages
          .map((p, i) => {
            let s = 0;
            for (let d = 0; d < pm.dim; d++) s += qv[d]! * pm.data[i * pm.dim + d]!;
            return { id: p.id, s };
          })
          .sort((a, b) => b.s - a.s);
        const got = ranked(dprRun.get(q.id)!);
        expect(got.length).toBe(50);
        // Same top 10 (up to float ties) and scores equal to 1e-4.
        for (let r = 0; r < 10; r++) {
          expect(dprRun.get(q.id)!.get(got[r]!)!, `${q.id} rank ${r + 1}`).toBeCloseTo(expected[r]!.s, 4);
        }
        expect(new Set(got.slice(0, 5))).toEqual(new Set(expected.slice(0, 5).map((e) => e.id)));
      }
    } finally {
      await emb.dispose();
    }
  });

  it("the hybrid run is the RRF (k = 60) of the DPR and BM25 runs", async () => {
    const [dense, hybrid] = await Promise.all(["dpr", "hybrid"].map((m) => readTrecRun(join(outDir, `${m}.trec`))));
    // BM25 side in the index's own order (a TREC file re-sorts tied scores by id).
    const index = await BM25Index.fromPassages(beir.passages.map((p) => ({ ...p, title: "" })));
    for (const q of beir.queries) {
      const denseSide = ranked(dense!.get(q.id)!).map((id) => ({ id }));
      const sparseSide = index.search(q.text, 50).map((h) => ({ id: h.id }));
      const fused = reciprocalRankFusion([denseSide, sparseSide], { k: 60, limit: 50 });
      const got = hybrid!.get(q.id)!;
      expect(got.size).toBe(fused.length);
      for (const f of fused) expect(got.get(f.id), `${q.id} ${f.id}`).toBeCloseTo(f.score, 12);
    }
  });

  it("latency: each method times only its stages, and total = sum of its stages per query", () => {
    const stages = Object.fromEntries(json.methods.map((m) => [m.method, m.stages]));
    expect(stages).toEqual({ bm25: ["search"], dpr: ["encode", "search"], hybrid: ["encode", "search"] });
    for (const m of json.methods) {
      const sumOfMeans = m.stages.reduce((s, st) => s + m.latency[st]!.mean, 0);
      expect(m.latency.total!.mean, m.method).toBeCloseTo(sumOfMeans, 6);
      for (const st of m.stages) {
        expect(m.latency[st]!.p50).toBeGreaterThan(0);
        expect(m.latency[st]!.p95).toBeGreaterThanOrEqual(m.latency[st]!.p50);
      }
      expect(m.latency.rerank).toEqual({ p50: 0, p95: 0, mean: 0 });
    }
    // DPRRetriever and HybridRetriever each encode the query, as they do when deployed apart.
    const [dpr, hybrid] = ["dpr", "hybrid"].map((n) => json.methods.find((m) => m.method === n)!);
    expect(hybrid!.latency.encode.p50).toBeGreaterThan(0);
    expect(dpr!.latency.encode.p50).toBeGreaterThan(0);
  });
});

describe("RetrievalEvaluator in process", () => {
  let emb: DPREmbeddings;
  beforeAll(() => {
    emb = new DPREmbeddings({ modelPath: modelDir });
  });
  afterAll(async () => {
    await emb?.dispose();
  });

  const evaluate = async (params: Partial<ConstructorParameters<typeof RetrievalEvaluator>[0]>): Promise<EvaluationReport> => {
    const ev = new RetrievalEvaluator({ dataset: beir.dir, embeddings: emb, depth: 30, ...params });
    try {
      return await ev.evaluate();
    } finally {
      await ev.dispose();
    }
  };

  it("linear hybrid with alpha 1 ranks like DPR and with alpha 0 like BM25", async () => {
    const dense = await evaluate({ methods: ["dpr", "bm25", "hybrid"], hybrid: "linear", alpha: 1 });
    const sparse = await evaluate({ methods: ["hybrid"], hybrid: "linear", alpha: 0 });
    const top = (r: EvaluationReport, m: string, qid: string) => ranked(r.runs.get(m as "dpr")!.get(qid)!).slice(0, 10);
    for (const q of beir.queries) {
      expect(top(dense, "hybrid", q.id)).toEqual(top(dense, "dpr", q.id));
      // Min-max puts BM25's lowest score at 0, level with passages BM25 did not return, so only
      // the BM25 hits above its minimum keep a strict order in the fused list.
      const bm25 = dense.runs.get("bm25")!.get(q.id)!;
      const min = Math.min(...bm25.values());
      const strict = ranked(bm25)
        .filter((id) => bm25.get(id)! > min)
        .slice(0, 10);
      expect(strict.length).toBeGreaterThan(0);
      expect(top(sparse, "hybrid", q.id).slice(0, strict.length)).toEqual(strict);
    }
  });

  it("maxQueries evaluates the first N judged queries only", async () => {
    const r = await evaluate({ methods: ["bm25"], maxQueries: 3 });
    expect(r.dataset.evaluatedQueries).toBe(3);
    expect([...r.runs.get("bm25")!.keys()]).toEqual(["q0", "q1", "q2"]);
    expect(Object.keys(r.methods[0]!.perQuery)).toEqual(["q0", "q1", "q2"]);
  });

  it("another split evaluates that split's queries", async () => {
    const r = await evaluate({ methods: ["bm25"], split: "dev" });
    expect(r.dataset.split).toBe("dev");
    expect(r.dataset.judgedQueries).toBe(2);
  });

  it("an IVF index factory is trained on the corpus and still finds the exact top hit with nprobe = nlist", async () => {
    const flat = await evaluate({ methods: ["dpr"] });
    const ivf = await evaluate({ methods: ["dpr"], indexFactory: "IVF1,Flat" });
    expect(ivf.settings.indexFactory).toBe("IVF1,Flat");
    for (const q of beir.queries) expect(ranked(ivf.runs.get("dpr")!.get(q.id)!)[0]).toBe(ranked(flat.runs.get("dpr")!.get(q.id)!)[0]);
  });

  it("fails with the list of splits when the split does not exist", async () => {
    await expect(evaluate({ methods: ["bm25"], split: "train" })).rejects.toThrow(/split "train" not found .*available: dev, test/);
  });
});

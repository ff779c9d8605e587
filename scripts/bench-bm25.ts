/**
 * BM25 benchmark: index build time, queries/s (single and batch) and nDCG@10 per BEIR dataset,
 * for our BM25Index (Lucene lengths and exact lengths) and, as a baseline in the same run, the
 * MiniSearch library (dev dependency) given the very same analyzer and BM25 parameters.
 *
 *   npx tsx scripts/bench-bm25.ts [--datasets ../shared/datasets] [--names scifact,nfcorpus] [--json out.json] [--no-baseline]
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import MiniSearch from "minisearch";
import { loadBeirCorpus, loadBeirDataset, loadBeirQueries, type Passage } from "../src/data/index.js";
import { evaluateRun, runFromHits } from "../src/eval/metrics.js";
import { BM25Index, EnglishAnalyzer, type BM25Hit } from "../src/retrievers/bm25/index.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const datasetsDir = resolve(arg("datasets") ?? process.env["DPR_DATASETS"] ?? "../shared/datasets");
const names = (arg("names") ?? "scifact,nfcorpus,pubmedqa").split(",");
const withBaseline = !process.argv.includes("--no-baseline");
const DEPTH = 100;

interface Row {
  dataset: string;
  system: string;
  docs: number;
  buildMs: number;
  singleQps: number;
  batchQps: number;
  ndcg10: number;
  recall100: number;
}

interface System {
  name: string;
  build(corpus: Passage[]): Promise<void>;
  search(query: string, k: number): BM25Hit[];
  searchBatch(queries: string[], k: number): BM25Hit[][];
}

function ours(name: string, lossyLengths: boolean): System {
  let index: BM25Index;
  return {
    name,
    async build(corpus) {
      index = await BM25Index.fromPassages(corpus, { lossyLengths, storePassages: false });
      index.search("warm", 1); // compile postings
    },
    search: (q, k) => index.search(q, k),
    searchBatch: (qs, k) => index.searchBatch(qs, k),
  };
}

function miniSearch(): System {
  const analyzer = new EnglishAnalyzer();
  let ms: MiniSearch<{ id: string; content: string }>;
  const search = (q: string, k: number): BM25Hit[] =>
    ms
      .search(q, { bm25: { k: 0.9, b: 0.4, d: 0 } })
      .slice(0, k)
      .map((r) => ({ id: String(r.id), score: r.score }));
  return {
    name: "MiniSearch 7.2 (same analyzer, BM25 k1=0.9 b=0.4 d=0)",
    async build(corpus) {
      ms = new MiniSearch({ fields: ["content"], tokenize: (text) => analyzer.analyze(text), processTerm: (t) => t });
      ms.addAll(corpus.map((p) => ({ id: p.id, content: p.title ? `${p.title} ${p.text}` : p.text })));
    },
    search,
    searchBatch: (qs, k) => qs.map((q) => search(q, k)),
  };
}

async function benchDataset(name: string): Promise<Row[]> {
  const dir = join(datasetsDir, name);
  const ds = await loadBeirDataset(dir, "test");
  const corpus = await loadBeirCorpus(dir);
  const allQueries = (await loadBeirQueries(dir)).map((q) => q.text);
  const systems = [ours("BM25Index (Lucene lengths)", true), ours("BM25Index (exact lengths)", false)];
  if (withBaseline) systems.push(miniSearch());
  const rows: Row[] = [];
  for (const system of systems) {
    let t = performance.now();
    await system.build(corpus);
    const buildMs = performance.now() - t;
    for (const q of allQueries.slice(0, 50)) system.search(q, DEPTH); // warm-up
    t = performance.now();
    for (const q of allQueries) system.search(q, DEPTH);
    const singleQps = allQueries.length / ((performance.now() - t) / 1000);
    t = performance.now();
    system.searchBatch(allQueries, DEPTH);
    const batchQps = allQueries.length / ((performance.now() - t) / 1000);
    const hits = system.searchBatch(
      ds.queries.map((q) => q.text),
      DEPTH,
    );
    const ev = evaluateRun(runFromHits(ds.queries.map((q, i) => [q.id, hits[i]!])), ds.qrels, { cutoffs: { ndcg: [10], recall: [100] } });
    rows.push({
      dataset: name,
      system: system.name,
      docs: corpus.length,
      buildMs,
      singleQps,
      batchQps,
      ndcg10: ev.mean["ndcg@10"]!,
      recall100: ev.mean["recall@100"]!,
    });
    console.error(`${name}: ${system.name} done`);
  }
  return rows;
}

const rows: Row[] = [];
for (const name of names) {
  if (!existsSync(join(datasetsDir, name, "corpus.jsonl"))) {
    console.error(`skipping ${name}: no corpus in ${join(datasetsDir, name)}`);
    continue;
  }
  rows.push(...(await benchDataset(name)));
}
console.log(
  `Machine: ${cpus()[0]?.model ?? "unknown CPU"} × ${cpus().length}, Node ${process.version}; top-${DEPTH} per query; ` +
    `queries/s over all queries.jsonl lines; test split for metrics.\n`,
);
console.log("| dataset | system | passages | build s | single q/s | batch q/s | q/s vs first row | nDCG@10 | R@100 |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  const base = rows.find((x) => x.dataset === r.dataset)!;
  console.log(
    `| ${r.dataset} | ${r.system} | ${r.docs} | ${(r.buildMs / 1000).toFixed(2)} | ${r.singleQps.toFixed(0)} | ` +
      `${r.batchQps.toFixed(0)} | ${(r.batchQps / base.batchQps).toFixed(2)}× | ${r.ndcg10.toFixed(4)} | ` +
      `${r.recall100.toFixed(4)} |`,
  );
}
const jsonPath = arg("json");
if (jsonPath) await writeFile(jsonPath, JSON.stringify(rows, null, 2) + "\n");

/**
 * BM25Index at scale: build time, memory and per-query latency at 1M passages (and a smaller size in
 * the same run as the scaling baseline), with MiniSearch (same analyzer and BM25 parameters) at the
 * smaller size as the library baseline. The passages are synthetic but shaped like the bundled
 * PubMedQA corpus: each draws its length from the real passages' token counts and its words from
 * their word frequencies (so the vocabulary is Zipf-like and real queries hit real terms); queries
 * are the bundled questions, run one at a time.
 *
 *   npx tsx scripts/bench-bm25-scale.ts [--sizes 100000,1000000] [--queries 500] [--k 100] [--no-baseline] [--json out.json]
 *
 * Reference (not run here): BEIR (Thakur et al. 2021, Table 3) reports BM25 (Lucene via Elasticsearch) at
 * about 20 ms per query over 1M documents on 8 cores.
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import MiniSearch from "minisearch";
import { loadBeirCorpus, loadBeirQueries, type Passage } from "../src/data/index.js";
import { DEMO_DATASET } from "../src/demo/demo.js";
import { BM25Index, EnglishAnalyzer } from "../src/retrievers/bm25/index.js";
import { seededUniform } from "../src/utils/random.js";
import { summary } from "./bench-vectors.js";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}
const sizes = arg("sizes", "100000,1000000").split(",").map(Number);
const nq = Number(arg("queries", "500"));
const k = Number(arg("k", "100"));
const withBaseline = !process.argv.includes("--no-baseline");
const json = process.argv.includes("--json") ? arg("json", "") : undefined;
const log = (s: string) => process.stderr.write(`${s}\n`);

interface Row {
  system: string;
  passages: number;
  build_s: number;
  /** JS heap + external (typed arrays) growth. */
  heap_mib: number;
  rss_mib: number;
  p50_ms: number;
  p95_ms: number;
  mean_ms: number;
}

/** A generator of passages shaped like `sample`: lengths and word frequencies drawn from it. */
function synthetic(sample: Passage[], seed: number): (n: number) => Iterable<Passage> {
  const words: string[] = [];
  const lengths: number[] = [];
  for (const p of sample) {
    const w = p.text.split(/\s+/).filter(Boolean);
    words.push(...w);
    lengths.push(w.length);
  }
  return function* (n: number) {
    const r = seededUniform(seed);
    for (let i = 0; i < n; i++) {
      const len = lengths[Math.floor(r() * lengths.length)]!;
      const out: string[] = new Array(len);
      for (let j = 0; j < len; j++) out[j] = words[Math.floor(r() * words.length)]!;
      yield { id: `s${i}`, title: "", text: out.join(" ") };
    }
  };
}

function time(search: (q: string) => unknown, queries: string[]): { p50: number; p95: number; mean: number } {
  for (const q of queries.slice(0, 20)) search(q); // warm-up
  const times: number[] = [];
  for (const q of queries) {
    const t = performance.now();
    search(q);
    times.push(performance.now() - t);
  }
  return summary(times);
}

const mib = (b: number) => b / 2 ** 20;
const used = () => process.memoryUsage().heapUsed + process.memoryUsage().external;

async function main(): Promise<void> {
  const sample = await loadBeirCorpus(DEMO_DATASET);
  const queries = (await loadBeirQueries(DEMO_DATASET)).slice(0, nq).map((q) => q.text);
  const make = synthetic(sample, 7);
  const rows: Row[] = [];
  for (const n of sizes) {
    global.gc?.();
    const heap0 = used();
    const rss0 = process.memoryUsage().rss;
    let t = performance.now();
    const index = new BM25Index({ storePassages: false });
    await index.addDocuments(make(n));
    const build = (performance.now() - t) / 1000;
    global.gc?.();
    const mem = process.memoryUsage();
    const s = time((q) => index.search(q, k), queries);
    rows.push({
      system: "BM25Index (ours, Lucene lengths)",
      passages: n,
      build_s: build,
      heap_mib: mib(mem.heapUsed + mem.external - heap0),
      rss_mib: mib(mem.rss - rss0),
      p50_ms: s.p50,
      p95_ms: s.p95,
      mean_ms: s.mean,
    });
    log(`BM25Index ${n}: build ${build.toFixed(1)} s, p50 ${s.p50.toFixed(2)} ms`);
    if (withBaseline && n === Math.min(...sizes)) {
      global.gc?.();
      const h0 = used();
      const r0 = process.memoryUsage().rss;
      const analyzer = new EnglishAnalyzer();
      t = performance.now();
      const ms = new MiniSearch({ fields: ["content"], tokenize: (text) => analyzer.analyze(text), processTerm: (x) => x });
      for (const p of make(n)) ms.add({ id: p.id, content: p.text });
      const b = (performance.now() - t) / 1000;
      global.gc?.();
      const m = process.memoryUsage();
      const ss = time((q) => ms.search(q, { bm25: { k: 0.9, b: 0.4, d: 0 } }).slice(0, k), queries);
      rows.push({
        system: "MiniSearch 7.2 (same analyzer, k1 0.9, b 0.4)",
        passages: n,
        build_s: b,
        heap_mib: mib(m.heapUsed + m.external - h0),
        rss_mib: mib(m.rss - r0),
        p50_ms: ss.p50,
        p95_ms: ss.p95,
        mean_ms: ss.mean,
      });
      log(`MiniSearch ${n}: build ${b.toFixed(1)} s, p50 ${ss.p50.toFixed(2)} ms`);
    }
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "?"}, Node ${process.version}`;
  console.log(`\nbench-bm25-scale: ${queries.length} bundled questions one at a time, top ${k}; ${machine}`);
  console.log("\n| system | passages | build s | heap MiB | RSS MiB | p50 ms | p95 ms | mean ms |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  const f = (x: number, d = 1) => x.toFixed(d);
  for (const r of rows) {
    console.log(
      `| ${r.system} | ${r.passages} | ${f(r.build_s)} | ${f(r.heap_mib, 0)} | ${f(r.rss_mib, 0)} | ` +
        `${f(r.p50_ms, 2)} | ${f(r.p95_ms, 2)} | ${f(r.mean_ms, 2)} |`,
    );
  }
  if (json) writeFileSync(json, JSON.stringify({ sizes, queries: queries.length, k, rows }, null, 2));
}

await main();

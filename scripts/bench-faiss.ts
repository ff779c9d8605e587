/**
 * Benchmark of langchain-dpr's faiss addon (the engine of FaissDPRStore) against two baselines
 * run in the same process: a plain JavaScript brute-force top-k over a Float32Array, and
 * faiss-node's stock API fed number[] arrays (built by scripts/build-native.sh).
 *
 * Data: d-dimensional unit vectors around n/100 random centres (clustered, like real embeddings;
 * uniform random vectors make every approximate index look bad). Queries: fresh points from the
 * same centres. Recall@k is measured against exact (Flat) search.
 *
 *   npx tsx scripts/bench-faiss.ts [--n 100000] [--d 768] [--queries 200] [--k 10]
 *        [--hnsw-n 20000] [--nlist N] [--skip-stock] [--skip-js] [--kinds flat,ivf,hnsw,ivfpq] [--json out.json]
 *
 * Peak RSS is read from /proc/self/status (VmHWM) after resetting it through /proc/self/clear_refs,
 * minus the RSS before the build: the index's own peak memory over the raw vector bytes.
 */
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import { FaissIndex, faissSimdKernel } from "../src/native/faiss-index.js";
import { seededUniform } from "../src/utils/random.js";
import { gaussFill, peakBytes, pointsAround, recallAt, resetPeak, rssBytes, summary } from "./bench-vectors.js";

interface Args {
  n: number;
  d: number;
  queries: number;
  k: number;
  hnswN: number;
  /** IVF list count (default 4·√n rounded to 64). */
  nlist?: number;
  skipStock: boolean;
  skipJs: boolean;
  kinds: Set<string>;
  json?: string;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    n: Number(get("n") ?? 100_000),
    d: Number(get("d") ?? 768),
    queries: Number(get("queries") ?? 200),
    k: Number(get("k") ?? 10),
    hnswN: Number(get("hnsw-n") ?? 20_000),
    nlist: get("nlist") === undefined ? undefined : Number(get("nlist")),
    skipStock: argv.includes("--skip-stock"),
    skipJs: argv.includes("--skip-js"),
    kinds: new Set((get("kinds") ?? "flat,ivf,hnsw,ivfpq").split(",")),
    json: get("json"),
  };
}

const ms = (x: number): string => `${x.toFixed(2)} ms`;

/** Plain JavaScript brute-force inner-product top-k for one query. */
function jsTopK(base: Float32Array, d: number, q: Float32Array, k: number): Int32Array {
  const n = base.length / d;
  const bestS = new Float32Array(k).fill(-Infinity);
  const bestI = new Int32Array(k).fill(-1);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * d;
    for (let j = 0; j < d; j++) s += base[o + j]! * q[j]!;
    if (s > bestS[k - 1]!) {
      let p = k - 1;
      while (p > 0 && bestS[p - 1]! < s) {
        bestS[p] = bestS[p - 1]!;
        bestI[p] = bestI[p - 1]!;
        p--;
      }
      bestS[p] = s;
      bestI[p] = i;
    }
  }
  return bestI;
}

interface Row {
  index: string;
  setting: string;
  n: number;
  build_s?: number;
  add_vectors_per_s?: number;
  peak_rss_over_raw?: number;
  p50_ms?: number;
  p95_ms?: number;
  batch_qps?: number;
  recall_at_k?: number;
  note?: string;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const { n, d, k } = a;
  const nq = a.queries;
  const rows: Row[] = [];
  const log = (s: string): void => console.error(`[bench-faiss] ${s}`);
  const rawBytes = n * d * 4;
  log(
    `n=${n} d=${d} queries=${nq} k=${k} threads=${FaissIndex.getNumThreads()} simd=${faissSimdKernel()} ` +
      `raw=${(rawBytes / 2 ** 20).toFixed(0)} MiB`,
  );

  // data: n/100 centres, points with noise comparable to the centre spread
  const t0 = performance.now();
  const centres = new Float32Array(Math.max(1, Math.floor(n / 100)) * d);
  gaussFill(centres, seededUniform(1));
  for (let i = 0; i < centres.length; i++) centres[i]! /= Math.sqrt(d);
  const base = pointsAround(centres, d, n, 2, 1 / Math.sqrt(d));
  const queries = pointsAround(centres, d, nq, 3, 1 / Math.sqrt(d));
  log(`generated data in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const ids = new BigInt64Array(n);
  for (let i = 0; i < n; i++) ids[i] = BigInt(i);
  const CHUNK = 10_000;

  // ---- Flat (ours)
  const canPeak = resetPeak();
  const rssBefore = rssBytes();
  let tb = performance.now();
  const flat = FaissIndex.create(d, "Flat");
  await flat.reserve(n);
  for (let s = 0; s < n; s += CHUNK) {
    const e = Math.min(n, s + CHUNK);
    await flat.add(base.subarray(s * d, e * d), ids.subarray(s, e));
  }
  const flatAddS = (performance.now() - tb) / 1000;
  const flatPeak = canPeak ? (peakBytes() - rssBefore) / rawBytes : NaN;
  log(`Flat add ${flatAddS.toFixed(3)} s, peak RSS over raw ${flatPeak.toFixed(2)}`);

  // exact truth (batch) and batch QPS
  tb = performance.now();
  const truth = await flat.search(queries, k);
  const flatBatchQps = nq / ((performance.now() - tb) / 1000);

  const singleQuery = async (idx: FaissIndex, knobs?: { nprobe?: number; efSearch?: number }, reps = nq): Promise<number[]> => {
    const times: number[] = [];
    for (let q = 0; q < reps; q++) {
      const qv = queries.subarray((q % nq) * d, ((q % nq) + 1) * d);
      const s = performance.now();
      await idx.search(qv, k, knobs);
      times.push(performance.now() - s);
    }
    return times;
  };
  await singleQuery(flat, undefined, 5); // warm-up
  const flatSingle = summary(await singleQuery(flat));
  FaissIndex.setNumThreads(1);
  const flatSingle1 = summary(await singleQuery(flat, undefined, Math.min(nq, 50)));
  FaissIndex.setNumThreads(2);
  rows.push({
    index: "Flat (ours)",
    setting: "threads=2",
    n,
    build_s: flatAddS,
    add_vectors_per_s: n / flatAddS,
    peak_rss_over_raw: flatPeak,
    p50_ms: flatSingle.p50,
    p95_ms: flatSingle.p95,
    batch_qps: flatBatchQps,
    recall_at_k: 1,
  });
  rows.push({ index: "Flat (ours)", setting: "threads=1", n, p50_ms: flatSingle1.p50, p95_ms: flatSingle1.p95 });
  log(`Flat one query p50 ${ms(flatSingle.p50)} (1 thread ${ms(flatSingle1.p50)}), batch ${flatBatchQps.toFixed(0)} QPS`);

  // ---- JS baseline
  let jsP50 = NaN;
  if (!a.skipJs) {
    const reps = Math.min(nq, 20);
    const times: number[] = [];
    let agree = 0;
    for (let q = 0; q < reps; q++) {
      const qv = queries.subarray(q * d, (q + 1) * d);
      const s = performance.now();
      const top = jsTopK(base, d, qv, k);
      times.push(performance.now() - s);
      if (BigInt(top[0]!) === truth.labels[q * k]) agree++;
    }
    const js = summary(times);
    jsP50 = js.p50;
    rows.push({
      index: "JS brute force",
      setting: "Float32Array loop",
      n,
      p50_ms: js.p50,
      p95_ms: js.p95,
      batch_qps: 1000 / js.mean,
      recall_at_k: 1,
      note: `top-1 agrees with faiss on ${agree}/${reps}`,
    });
    log(`JS brute force p50 ${ms(js.p50)}; ours is ${(js.p50 / flatSingle.p50).toFixed(1)}× faster`);
  }

  // ---- faiss-node stock API (number[])
  let stockAddS = NaN;
  let stockP50 = NaN;
  if (!a.skipStock) {
    const require = createRequire(import.meta.url);
    const fnode = require("faiss-node") as {
      IndexFlatIP: new (d: number) => {
        add(x: number[]): void;
        search(x: number[], k: number): { distances: number[]; labels: number[] };
        ntotal(): number;
      };
    };
    const idx = new fnode.IndexFlatIP(d);
    tb = performance.now();
    for (let s = 0; s < n; s += CHUNK) {
      const e = Math.min(n, s + CHUNK);
      idx.add(Array.from(base.subarray(s * d, e * d)));
    }
    stockAddS = (performance.now() - tb) / 1000;
    const times: number[] = [];
    for (let q = 0; q < Math.min(nq, 50); q++) {
      const qv = Array.from(queries.subarray(q * d, (q + 1) * d));
      const s = performance.now();
      idx.search(qv, k);
      times.push(performance.now() - s);
    }
    const st = summary(times);
    stockP50 = st.p50;
    tb = performance.now();
    idx.search(Array.from(queries), k);
    const stockQps = nq / ((performance.now() - tb) / 1000);
    rows.push({
      index: "faiss-node stock IndexFlatIP",
      setting: "number[] API",
      n,
      build_s: stockAddS,
      add_vectors_per_s: n / stockAddS,
      p50_ms: st.p50,
      p95_ms: st.p95,
      batch_qps: stockQps,
      recall_at_k: 1,
    });
    log(`faiss-node stock add ${stockAddS.toFixed(1)} s, one query p50 ${ms(st.p50)}, batch ${stockQps.toFixed(0)} QPS`);
  }

  // ---- approximate indexes
  const approx = async (
    factory: string,
    nUse: number,
    knobName: "nprobe" | "efSearch",
    values: number[],
    trainN: number,
  ): Promise<void> => {
    const raw = nUse * d * 4;
    const truthUse = nUse === n ? truth : await flatSubsetTruth(nUse);
    resetPeak();
    const before = rssBytes();
    const idx = FaissIndex.create(d, factory);
    const s0 = performance.now();
    if (!idx.isTrained) await idx.train(base.subarray(0, Math.min(nUse, trainN) * d));
    const trainS = (performance.now() - s0) / 1000;
    for (let s = 0; s < nUse; s += CHUNK) {
      const e = Math.min(nUse, s + CHUNK);
      await idx.add(base.subarray(s * d, e * d), ids.subarray(s, e));
    }
    const buildS = (performance.now() - s0) / 1000;
    const peak = (peakBytes() - before) / raw;
    log(`${factory} n=${nUse}: train ${trainS.toFixed(1)} s, build ${buildS.toFixed(1)} s`);
    for (const v of values) {
      const knobs = { [knobName]: v };
      await singleQuery(idx, knobs, 3);
      const one = summary(await singleQuery(idx, knobs));
      const tq = performance.now();
      const res = await idx.search(queries, k, knobs);
      const qps = nq / ((performance.now() - tq) / 1000);
      const recall = recallAt(k, truthUse.labels, res.labels, nq);
      rows.push({
        index: factory,
        setting: `${knobName}=${v}`,
        n: nUse,
        build_s: buildS,
        add_vectors_per_s: nUse / buildS,
        peak_rss_over_raw: peak,
        p50_ms: one.p50,
        p95_ms: one.p95,
        batch_qps: qps,
        recall_at_k: recall,
        note: `train ${trainS.toFixed(1)} s`,
      });
      log(`  ${knobName}=${v}: p50 ${ms(one.p50)}, ${qps.toFixed(0)} QPS, recall@${k} ${recall.toFixed(3)}`);
    }
    await idx.dispose();
  };
  const flatSubsetTruth = async (m: number): Promise<{ labels: BigInt64Array }> => {
    const sub = FaissIndex.create(d, "Flat");
    await sub.add(base.subarray(0, m * d), ids.subarray(0, m));
    const r = await sub.search(queries, k);
    await sub.dispose();
    return r;
  };

  const nlist = a.nlist ?? Math.max(16, Math.round((4 * Math.sqrt(n)) / 64) * 64);
  if (a.kinds.has("ivf")) await approx(`IVF${nlist},Flat`, n, "nprobe", [1, 4, 16, 64], 39 * nlist);
  // PQ training is the slow part on this libfaiss (no SIMD): train on 10k vectors (≥ 39 × 256)
  if (a.kinds.has("ivfpq")) await approx(`IVF${nlist},PQ64np`, n, "nprobe", [4, 16, 64], 10_000);
  if (a.kinds.has("hnsw")) await approx("HNSW32", Math.min(n, a.hnswN), "efSearch", [16, 64, 256], 0);

  // ---- report
  const cols: Array<keyof Row> = [
    "index",
    "setting",
    "n",
    "build_s",
    "add_vectors_per_s",
    "peak_rss_over_raw",
    "p50_ms",
    "p95_ms",
    "batch_qps",
    "recall_at_k",
    "note",
  ];
  const fmt = (v: unknown): string =>
    typeof v === "number" ? (Number.isInteger(v) ? String(v) : v >= 100 ? v.toFixed(0) : v.toFixed(3)) : v === undefined ? "" : String(v);
  console.log(`| ${cols.join(" | ")} |`);
  console.log(`|${cols.map(() => "---").join("|")}|`);
  for (const r of rows) console.log(`| ${cols.map((c) => fmt(r[c])).join(" | ")} |`);
  console.log("");
  console.log(
    `Flat add: ours ${flatAddS.toFixed(3)} s vs faiss-node stock ${stockAddS.toFixed(1)} s (${(stockAddS / flatAddS).toFixed(0)}×)`,
  );
  console.log(
    `One-query Flat: ours ${ms(flatSingle.p50)} vs JS ${ms(jsP50)} (${(jsP50 / flatSingle.p50).toFixed(1)}×) vs ` +
      `faiss-node ${ms(stockP50)} (stock is ${(jsP50 / stockP50).toFixed(1)}× JS)`,
  );
  console.log(`Flat peak RSS over raw vector bytes: ${flatPeak.toFixed(2)}`);
  if (a.json) writeFileSync(a.json, JSON.stringify({ args: { ...a, kinds: [...a.kinds] }, rows }, null, 2));
  await flat.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

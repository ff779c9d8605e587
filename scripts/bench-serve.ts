/**
 * Bounded load test of the HTTP retrieval server on loopback.
 *
 *   npx tsx scripts/bench-serve.ts [--shape minilm|tiny|bert-base] [--requests 1500] [--time-cap-s 15]
 *        [--concurrency 1,8,64] [--threads 1] [--max-concurrent 4] [--reps 3] [--out results.json]
 *
 * Builds a random-weight DPR model of the given shape and a Flat FaissDPRStore over the committed
 * PubMedQA fixture passages (300), then spawns scripts/serve.ts (a separate process, so the load
 * generator does not share its event loop) and measures, with closed-loop clients:
 *   1. baseline: DPRRetriever.retrieve in this process, sequential, no HTTP, no cache;
 *   2. QPS and client-side p50/p99 at each concurrency, cache off and cache on (two servers side
 *      by side, runs alternating in --reps short repetitions), queries drawn Zipf(1) from the 300
 *      PubMedQA questions (the same seeded sequence for both);
 *   3. past saturation: 64 clients against --max-concurrent 2 --max-queue 2 (bounded: 503s)
 *      versus --max-queue 64 (everything queues).
 * Every run stops by itself after --requests requests or --time-cap-s seconds.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir, cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Document } from "@langchain/core/documents";
import { createRandomDPRModel, type RandomModelShape } from "../src/testing/index.js";
import { DPREmbeddings } from "../src/embeddings/dpr-embeddings.js";
import { FaissDPRStore } from "../src/vectorstores/faiss-dpr-store.js";
import { DPRRetriever } from "../src/retrievers/dpr-retriever.js";
import { percentile } from "../src/retrievers/latency-stats.js";
import { mergeLoadResults, runLoadTest, zipfSampler, type LoadTestResult } from "../src/server/load-test.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const FIXTURE = join(ROOT, "test/fixtures/passages/pubmedqa-300.jsonl");

const { values } = parseArgs({
  options: {
    shape: { type: "string", default: "minilm" },
    requests: { type: "string", default: "1500" },
    "time-cap-s": { type: "string", default: "15" },
    concurrency: { type: "string", default: "1,8,64" },
    threads: { type: "string", default: "1" },
    "max-concurrent": { type: "string", default: "4" },
    reps: { type: "string", default: "3" },
    out: { type: "string" },
  },
});
const shape = values.shape as RandomModelShape;
const requests = Number(values.requests);
const timeCapMs = Number(values["time-cap-s"]) * 1000;
const levels = values.concurrency.split(",").map(Number);
const threads = Number(values.threads);
const maxConcurrent = Number(values["max-concurrent"]);
const reps = Number(values.reps);

async function spawnServe(args: string[]): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, ["--import", "tsx", join(ROOT, "scripts/serve.ts"), "--port", "0", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((res, rej) => {
    proc.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) res(m[1]!);
    });
    proc.on("exit", (code) => rej(new Error(`serve exited with ${code}: ${err}`)));
  });
  return { proc, url };
}

async function stop(proc: ChildProcess): Promise<void> {
  const exited = new Promise((r) => proc.on("exit", r));
  proc.kill("SIGTERM");
  await exited;
}

const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "–");

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "bench-serve-"));
  const results: Record<string, unknown> = {
    shape,
    requests,
    timeCapMs,
    threads,
    maxConcurrent,
    cpus: cpus().length,
    node: process.version,
  };
  try {
    const passages = (await readFile(FIXTURE, "utf8"))
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as { id: string; title: string; text: string });
    const questions = passages.map((p) => p.title);
    const modelDir = join(root, "model");
    const indexDir = join(root, "index");
    let t = performance.now();
    await createRandomDPRModel(modelDir, {
      shape,
      texts: passages.flatMap((p) => [p.title, p.text]),
      safetensors: false,
      // the tiny shape has 128 positions
      dprConfig: shape === "tiny" ? { maxPassageLength: 128 } : undefined,
    });
    console.error(`model (${shape}) written in ${fmt((performance.now() - t) / 1000)} s`);
    t = performance.now();
    const buildEmb = new DPREmbeddings({ modelPath: modelDir });
    const docs = passages.map((p) => new Document({ pageContent: p.text, metadata: { id: p.id, title: p.title }, id: p.id }));
    const store = await FaissDPRStore.fromDocuments(docs, buildEmb);
    await store.save(indexDir);
    await store.dispose();
    await buildEmb.dispose();
    console.error(`index of ${docs.length} passages built in ${fmt((performance.now() - t) / 1000)} s`);

    // 1. In-process baseline (no HTTP, no cache), same thread setting as the server.
    const emb = new DPREmbeddings({ modelPath: modelDir, intraOpNumThreads: threads });
    const local = await FaissDPRStore.load(indexDir, emb);
    const retriever = new DPRRetriever({ vectorStore: local, k: 10, cache: false });
    for (let i = 0; i < 10; i++) await retriever.retrieve(questions[i]!);
    const lat: number[] = [];
    const tb = performance.now();
    const nBase = Math.min(300, requests);
    for (let i = 0; i < nBase; i++) {
      const s = performance.now();
      await retriever.retrieve(questions[i % questions.length]!);
      lat.push(performance.now() - s);
      if (performance.now() - tb > timeCapMs) break;
    }
    const baseline = {
      n: lat.length,
      qps: lat.length / ((performance.now() - tb) / 1000),
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      stages: retriever.getStats(),
    };
    results.baseline = baseline;
    await local.dispose();
    await emb.dispose();
    console.error(`baseline in-process: ${fmt(baseline.qps)} q/s, p50 ${fmt(baseline.p50Ms, 2)} ms, p99 ${fmt(baseline.p99Ms, 2)} ms`);

    // 2. Concurrency × cache. Both servers run side by side and the runs alternate (off, on, off,
    //    on, ...) in short repetitions, so drifting load from other processes hits both alike.
    const common = [
      "--model",
      modelDir,
      "--index",
      indexDir,
      "--threads",
      String(threads),
      "--max-concurrent",
      String(maxConcurrent),
      "--k",
      "10",
      "--max-queue",
      "1000",
    ];
    const off = await spawnServe([...common, "--no-cache"]);
    const on = await spawnServe(common);
    const runs: Array<LoadTestResult & { cache: boolean; hitRate: number }> = [];
    try {
      for (const { url } of [off, on])
        await runLoadTest({ url, concurrency: 4, requests: 40, timeCapMs: 5000, query: (i) => `warm-up ${i} ${questions[i]}` });
      for (const c of levels) {
        const parts: Record<"off" | "on", LoadTestResult[]> = { off: [], on: [] };
        for (let rep = 0; rep < reps; rep++) {
          // a fresh Zipf(1) sequence per repetition; the same one for both servers
          const sample = zipfSampler(questions.length, 1, 1000 * c + rep);
          const seq = Array.from({ length: requests }, () => questions[sample()]!);
          for (const [name, srv] of [
            ["off", off],
            ["on", on],
          ] as const) {
            parts[name].push(
              await runLoadTest({
                url: srv.url,
                concurrency: c,
                requests: Math.ceil(requests / reps),
                timeCapMs: timeCapMs / reps,
                query: (i) => seq[i]!,
              }),
            );
          }
        }
        for (const name of ["off", "on"] as const) {
          const r = mergeLoadResults(parts[name]);
          runs.push({ ...r, cache: name === "on", hitRate: r.ok > 0 ? r.cacheHits / r.ok : NaN });
          console.error(
            `cache ${name.padEnd(3)} c=${c}: ${r.sent} sent, ${fmt(r.okPerSecond)} ok/s, p50 ${fmt(r.p50Ms, 2)} ms, p99 ` +
              `${fmt(r.p99Ms, 2)} ms, hits ${r.cacheHits}, statuses ${JSON.stringify(r.statuses)}`,
          );
        }
      }
    } finally {
      await stop(off.proc);
      await stop(on.proc);
    }
    results.runs = runs.map(({ okLatencies: _a, rejectLatencies: _b, ...r }) => r);

    // 3. Past saturation: 64 clients, 2 slots; bounded queue (2) vs. a queue that takes everyone (64).
    const sat: Array<LoadTestResult & { maxQueue: number }> = [];
    for (const maxQueue of [2, 64]) {
      const { proc, url } = await spawnServe([
        "--model",
        modelDir,
        "--index",
        indexDir,
        "--threads",
        String(threads),
        "--max-concurrent",
        "2",
        "--max-queue",
        String(maxQueue),
        "--no-cache",
      ]);
      try {
        const r = await runLoadTest({ url, concurrency: 64, requests, timeCapMs, query: (i) => questions[i % questions.length]! });
        sat.push({ ...r, maxQueue, okLatencies: [], rejectLatencies: [] });
        console.error(
          `saturation max-queue ${maxQueue}: ${fmt(r.okPerSecond)} ok/s, 503 rate ${fmt(r.rejectRate * 100)}%, ok p50 ` +
            `${fmt(r.p50Ms, 2)} ms p99 ${fmt(r.p99Ms, 2)} ms, 503 p50 ${fmt(r.p50RejectMs, 2)} ms`,
        );
      } finally {
        await stop(proc);
      }
    }
    results.saturation = sat;

    // Report.
    const lines: string[] = [];
    lines.push(
      `Machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), Node ${process.version}; model ${shape} (random ` +
        `weights), 300 passages, Flat index, k=10, onnxruntime threads ${threads}, server max-concurrent ` +
        `${maxConcurrent}.`,
    );
    lines.push("");
    lines.push(
      `Baseline (in-process DPRRetriever.retrieve, sequential, no HTTP, no cache): ${fmt(baseline.qps)} q/s, p50 ` +
        `${fmt(baseline.p50Ms, 2)} ms, p99 ${fmt(baseline.p99Ms, 2)} ms (encode p50 ` +
        `${fmt(baseline.stages.encode.p50, 2)} ms, search p50 ${fmt(baseline.stages.search.p50, 3)} ms).`,
    );
    lines.push("");
    lines.push("| cache | clients | requests | ok/s | p50 ms | p99 ms | cache hits | ok/s vs baseline |");
    lines.push("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (const r of runs) {
      lines.push(
        `| ${r.cache ? "on" : "off"} | ${r.concurrency} | ${r.sent} | ${fmt(r.okPerSecond)} | ${fmt(r.p50Ms, 2)} | ` +
          `${fmt(r.p99Ms, 2)} | ${r.cache ? `${fmt((r.hitRate ?? 0) * 100)}%` : "–"} | ` +
          `${fmt(r.okPerSecond / baseline.qps, 2)}× |`,
      );
    }
    lines.push("");
    lines.push("Past saturation (64 clients, max-concurrent 2, cache off):");
    lines.push("");
    lines.push("| max-queue | requests | ok/s | 503 rate | ok p50 ms | ok p99 ms | 503 p50 ms |");
    lines.push("|---:|---:|---:|---:|---:|---:|---:|");
    for (const r of sat) {
      lines.push(
        `| ${r.maxQueue} | ${r.sent} | ${fmt(r.okPerSecond)} | ${fmt(r.rejectRate * 100)}% | ${fmt(r.p50Ms, 2)} | ` +
          `${fmt(r.p99Ms, 2)} | ${fmt(r.p50RejectMs, 2)} |`,
      );
    }
    console.log(lines.join("\n"));
    if (values.out) await writeFile(values.out, JSON.stringify(results, null, 2) + "\n");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});

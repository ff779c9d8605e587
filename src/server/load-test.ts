/**
 * A bounded closed-loop HTTP load generator for `POST /retrieve`: `concurrency` clients each send
 * a request, wait for the answer, send the next; it stops after `requests` requests or
 * `timeCapMs`, whichever comes first. Used by scripts/bench-serve.ts.
 *
 * @module
 */
import { percentile } from "../retrievers/latency-stats.js";
import { seededUniform } from "../utils/random.js";

/** Options of {@link runLoadTest}. */
export interface LoadTestOptions {
  /** Server base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  /** Simultaneous clients. */
  concurrency: number;
  /** Total requests to send (upper bound). */
  requests: number;
  /** Stop sending after this many ms (in-flight requests still complete). */
  timeCapMs: number;
  /** Query for the i-th request. */
  query: (i: number) => string;
  /** k sent with each request (default: server default). */
  k?: number;
  /** Per-request client timeout in ms (default 30 000). */
  clientTimeoutMs?: number;
}

/** Outcome of {@link runLoadTest}. Latencies are client-side wall times in ms. */
export interface LoadTestResult {
  concurrency: number;
  sent: number;
  /** Count per HTTP status; network errors under key "error". */
  statuses: Record<string, number>;
  ok: number;
  elapsedS: number;
  /** Successful responses per second. */
  okPerSecond: number;
  /** Fraction of requests answered 503. */
  rejectRate: number;
  /** Percentiles over successful (200) responses. */
  p50Ms: number;
  p99Ms: number;
  /** Percentiles over 503 answers (how fast shedding is). */
  p50RejectMs: number;
  /** Server-reported cache hits among successful responses. */
  cacheHits: number;
  /** Client-side latency of every successful response, ms (to merge runs). */
  okLatencies: number[];
  /** Client-side latency of every 503 answer, ms. */
  rejectLatencies: number[];
}

/** Merges results of several runs at the same concurrency (e.g. interleaved repetitions). */
export function mergeLoadResults(runs: LoadTestResult[]): LoadTestResult {
  if (runs.length === 0) throw new Error("mergeLoadResults: no runs");
  const statuses: Record<string, number> = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  const okLatencies = runs.flatMap((r) => r.okLatencies);
  const rejectLatencies = runs.flatMap((r) => r.rejectLatencies);
  const elapsedS = runs.reduce((a, r) => a + r.elapsedS, 0);
  const cacheHits = runs.reduce((a, r) => a + r.cacheHits, 0);
  return summarize(runs[0]!.concurrency, statuses, okLatencies, rejectLatencies, elapsedS, cacheHits);
}

/** Rates and percentiles of one load run (or of merged runs) from its raw counts and latencies. */
function summarize(
  concurrency: number,
  statuses: Record<string, number>,
  okLatencies: number[],
  rejectLatencies: number[],
  elapsedS: number,
  cacheHits: number,
): LoadTestResult {
  const sent = Object.values(statuses).reduce((a, b) => a + b, 0);
  return {
    concurrency,
    sent,
    statuses,
    ok: okLatencies.length,
    elapsedS,
    okPerSecond: okLatencies.length / elapsedS,
    rejectRate: sent === 0 ? 0 : (statuses["503"] ?? 0) / sent,
    p50Ms: percentile(okLatencies, 50),
    p99Ms: percentile(okLatencies, 99),
    p50RejectMs: percentile(rejectLatencies, 50),
    cacheHits,
    okLatencies,
    rejectLatencies,
  };
}

/** Runs the load; never throws for HTTP or network errors (they are counted). */
export async function runLoadTest(opts: LoadTestOptions): Promise<LoadTestResult> {
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1)
    throw new Error(`runLoadTest: concurrency must be ≥ 1, got ${opts.concurrency}`);
  const endpoint = `${opts.url}/retrieve`;
  const statuses: Record<string, number> = {};
  const okLatencies: number[] = [];
  const rejectLatencies: number[] = [];
  let next = 0;
  let cacheHits = 0;
  const t0 = performance.now();
  const deadline = t0 + opts.timeCapMs;
  const worker = async () => {
    while (next < opts.requests && performance.now() < deadline) {
      const i = next++;
      const body = JSON.stringify(opts.k === undefined ? { query: opts.query(i) } : { query: opts.query(i), k: opts.k });
      const start = performance.now();
      let key: string;
      try {
        const res = await fetch(endpoint, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          signal: AbortSignal.timeout(opts.clientTimeoutMs ?? 30_000),
        });
        const text = await res.text();
        const ms = performance.now() - start;
        key = String(res.status);
        if (res.status === 200) {
          okLatencies.push(ms);
          if ((JSON.parse(text) as { timings?: { cacheHit?: boolean } }).timings?.cacheHit) cacheHits++;
        } else if (res.status === 503) {
          rejectLatencies.push(ms);
        }
      } catch {
        key = "error";
      }
      statuses[key] = (statuses[key] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const elapsedS = (performance.now() - t0) / 1000;
  return summarize(opts.concurrency, statuses, okLatencies, rejectLatencies, elapsedS, cacheHits);
}

/**
 * Deterministic Zipf(s) sampler over `n` items (index 0 most popular), from a seeded
 * mulberry32 generator: realistic repeated queries for cache experiments.
 */
export function zipfSampler(n: number, s = 1, seed = 1): () => number {
  const cdf = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    acc += 1 / Math.pow(i + 1, s);
    cdf[i] = acc;
  }
  const rand = seededUniform(seed);
  return () => {
    const u = rand() * acc;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

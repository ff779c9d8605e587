/**
 * Shared by the vector benchmarks (bench-faiss, bench-pgvector): the clustered data generator,
 * percentiles, recall against exact search, and the process's peak memory.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { seededUniform } from "../src/utils/random.js";

// ---------------------------------------------------------------------------------------------
// data

export function gaussFill(out: Float32Array, r: () => number): void {
  for (let i = 0; i < out.length; i += 2) {
    const u = Math.max(r(), 1e-12);
    const m = Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * r();
    out[i] = m * Math.cos(a);
    if (i + 1 < out.length) out[i + 1] = m * Math.sin(a);
  }
}

/** n unit vectors around the given centres (noise relative to the centre norm). */
export function pointsAround(centres: Float32Array, d: number, n: number, seed: number, noise: number): Float32Array {
  const r = seededUniform(seed);
  const nc = centres.length / d;
  const out = new Float32Array(n * d);
  const g = new Float32Array(d);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * nc);
    gaussFill(g, r);
    let norm = 0;
    for (let j = 0; j < d; j++) {
      const v = centres[c * d + j]! + noise * g[j]!;
      out[i * d + j] = v;
      norm += v * v;
    }
    const inv = 1 / Math.sqrt(norm);
    for (let j = 0; j < d; j++) out[i * d + j]! *= inv;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// measurement helpers

export function rssBytes(): number {
  return process.memoryUsage().rss;
}
export function resetPeak(): boolean {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}
export function peakBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}
export function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
export function summary(times: number[]): { p50: number; p95: number; mean: number } {
  const s = [...times].sort((a, b) => a - b);
  return { p50: pct(s, 50), p95: pct(s, 95), mean: s.reduce((a, b) => a + b, 0) / s.length };
}
/** Share of the exact top k (truth, k per query) found in the first k of `got` (kGot per query). */
export function recallAt(k: number, truth: BigInt64Array, got: BigInt64Array, nq: number, kGot = k): number {
  let hit = 0;
  for (let q = 0; q < nq; q++) {
    const t = new Set<bigint>();
    for (let i = 0; i < k; i++) t.add(truth[q * k + i]!);
    for (let i = 0; i < k; i++) if (t.has(got[q * kGot + i]!)) hit++;
  }
  return hit / (nq * k);
}

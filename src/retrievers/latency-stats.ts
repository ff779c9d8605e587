/**
 * Running latency statistics: a fixed-size window of the most recent samples per stage, from
 * which percentiles are computed on demand (exact over the window).
 *
 * @module
 */

/** Percentile summary of one stage over the window. Times in milliseconds. */
export interface LatencySummary {
  /** Samples in the window (≤ window size). */
  count: number;
  /** Samples ever recorded. */
  total: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
}

/**
 * Ring buffer of the last `size` samples. Percentiles use the nearest-rank definition:
 * the smallest sample such that at least p% of the window is ≤ it.
 */
export class LatencyWindow {
  private readonly buf: Float64Array;

  private next = 0;

  private filled = 0;

  private seen = 0;

  constructor(readonly size = 1024) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`LatencyWindow: size must be an integer ≥ 1, got ${size}`);
    this.buf = new Float64Array(size);
  }

  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return; // a clock glitch never poisons the window
    this.buf[this.next] = ms;
    this.next = (this.next + 1) % this.size;
    if (this.filled < this.size) this.filled++;
    this.seen++;
  }

  summary(): LatencySummary {
    const n = this.filled;
    if (n === 0) return { count: 0, total: this.seen, p50: NaN, p95: NaN, p99: NaN, mean: NaN, max: NaN };
    const sorted = Float64Array.from(this.buf.subarray(0, n)).sort();
    const rank = (p: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
    let sum = 0;
    for (const v of sorted) sum += v;
    return { count: n, total: this.seen, p50: rank(50), p95: rank(95), p99: rank(99), mean: sum / n, max: sorted[n - 1]! };
  }

  reset(): void {
    this.next = 0;
    this.filled = 0;
    this.seen = 0;
  }
}

/** Nearest-rank percentile of an unsorted array (used by benchmarks). NaN for an empty array. */
export function percentile(values: ArrayLike<number>, p: number): number {
  const n = values.length;
  if (n === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
}

import { describe, expect, it } from "vitest";
import { mergeLoadResults, type LoadTestResult } from "../../src/server/load-test.js";

function run(ok: number[], rejected: number[], errors: number, elapsedS: number, cacheHits: number): LoadTestResult {
  const statuses: Record<string, number> = { "200": ok.length, "503": rejected.length };
  if (errors > 0) statuses["error"] = errors;
  return mergeLoadResults([
    {
      concurrency: 8,
      sent: 0,
      statuses,
      ok: 0,
      elapsedS,
      okPerSecond: 0,
      rejectRate: 0,
      p50Ms: 0,
      p99Ms: 0,
      p50RejectMs: 0,
      cacheHits,
      okLatencies: ok,
      rejectLatencies: rejected,
    },
  ]);
}

describe("load test results", () => {
  it("recomputes counts, rates and percentiles from the raw latencies", () => {
    const r = run([10, 20, 30, 40], [5], 1, 2, 3);
    expect(r.sent).toBe(6);
    expect(r.ok).toBe(4);
    expect(r.okPerSecond).toBe(2);
    expect(r.rejectRate).toBeCloseTo(1 / 6, 12);
    expect(r.p50Ms).toBe(20);
    expect(r.p99Ms).toBe(40);
    expect(r.p50RejectMs).toBe(5);
  });

  it("merging runs adds their counts, time and cache hits and pools their latencies", () => {
    const merged = mergeLoadResults([run([10, 30], [], 0, 1, 1), run([20, 40], [7, 9], 0, 3, 2)]);
    expect(merged.sent).toBe(6);
    expect(merged.statuses).toEqual({ "200": 4, "503": 2 });
    expect(merged.elapsedS).toBe(4);
    expect(merged.okPerSecond).toBe(1);
    expect(merged.rejectRate).toBeCloseTo(2 / 6, 12);
    expect(merged.cacheHits).toBe(3);
    expect(merged.p50Ms).toBe(20);
    expect(() => mergeLoadResults([])).toThrow(/no runs/);
  });
});

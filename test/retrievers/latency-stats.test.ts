import { describe, expect, it } from "vitest";
import { LatencyWindow, percentile } from "../../src/retrievers/latency-stats.js";
import { LRUCache, normalizeQuery, stableStringify } from "../../src/retrievers/query-cache.js";

describe("LatencyWindow", () => {
  it("computes nearest-rank percentiles over the last `size` samples", () => {
    const w = new LatencyWindow(100);
    for (let i = 1; i <= 100; i++) w.record(i);
    expect(w.summary()).toMatchObject({ count: 100, total: 100, p50: 50, p95: 95, p99: 99, max: 100, mean: 50.5 });
    for (let i = 0; i < 50; i++) w.record(1000); // the window now holds 51..100 and 50 × 1000
    expect(w.summary()).toMatchObject({ count: 100, total: 150, p50: 100, p95: 1000 });
    w.record(NaN);
    expect(w.summary().total).toBe(150);
  });

  it("percentile() matches the window on plain arrays", () => {
    expect(percentile([5, 1, 3], 50)).toBe(3);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe("query cache helpers", () => {
  it("normalises whitespace, case and Unicode composition", () => {
    expect(normalizeQuery("  Caf\u0065\u0301   au\tLait ")).toBe("caf\u00e9 au lait");
    expect(normalizeQuery(" A  B ", true)).toBe("A B");
  });

  it("stableStringify sorts keys recursively and refuses what JSON cannot represent", () => {
    expect(stableStringify({ b: [1, { d: 1, c: 2 }], a: "x" })).toBe('{"a":"x","b":[1,{"c":2,"d":1}]}');
    expect(stableStringify({ a: undefined, b: 1 })).toBe('{"b":1}');
    expect(() => stableStringify({ f: () => 1 })).toThrow("stableStringify: cannot serialise a function at $.f");
    expect(() => stableStringify({ n: Infinity })).toThrow(/non-finite number at \$.n/);
  });

  it("LRUCache evicts the least recently used entry and honours the TTL", () => {
    let now = 0;
    const c = new LRUCache<number>({ maxEntries: 2, ttlMs: 10, now: () => now });
    c.set("a", 1);
    c.set("b", 2);
    expect(c.get("a")).toBe(1); // a is now most recent
    c.set("c", 3); // evicts b
    expect([c.has("a"), c.has("b"), c.has("c")]).toEqual([true, false, true]);
    now = 10;
    expect(c.get("a")).toBeUndefined();
    expect(() => new LRUCache({ maxEntries: 0 })).toThrow("LRUCache: maxEntries must be an integer ≥ 1, got 0");
  });
});

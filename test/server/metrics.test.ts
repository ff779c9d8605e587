import { describe, expect, it } from "vitest";
import { Counter, Gauge, Histogram, MetricsRegistry, parsePrometheusText } from "../../src/server/metrics.js";
import { ConcurrencyLimiter } from "../../src/server/limiter.js";

describe("metrics registry", () => {
  it("renders counters, gauges and cumulative histograms that parse back", () => {
    const reg = new MetricsRegistry();
    const c = reg.register(new Counter("x_total", "Things.", ["kind"]));
    reg.register(new Gauge("x_now", "Now.", () => 3));
    const h = reg.register(new Histogram("x_seconds", "Time.", ["stage"], [0.01, 0.1, 1]));
    c.inc({ kind: 'a"b\\c' }, 2);
    for (const v of [0.005, 0.05, 0.05, 0.5, 5]) h.observe({ stage: "encode" }, v);
    const text = reg.render();
    expect(text).toContain("# TYPE x_seconds histogram");
    const samples = parsePrometheusText(text);
    const by = (name: string) => samples.filter((s) => s.name === name);
    expect(by("x_total")).toEqual([{ name: "x_total", labels: { kind: 'a"b\\c' }, value: 2 }]);
    expect(by("x_now")[0]!.value).toBe(3);
    expect(by("x_seconds_bucket").map((s) => [s.labels.le, s.value])).toEqual([
      ["0.01", 1],
      ["0.1", 3],
      ["1", 4],
      ["+Inf", 5],
    ]);
    expect(by("x_seconds_sum")[0]!.value).toBeCloseTo(5.605, 12);
    expect(by("x_seconds_count")[0]!.value).toBe(5);
  });

  it("rejects unknown labels, decreasing counters, duplicate names and bad buckets", () => {
    const reg = new MetricsRegistry();
    const c = reg.register(new Counter("a_total", "A.", ["route"]));
    expect(() => c.inc({ status: "200" })).toThrow('metrics: a_total has no label "status" (labels: route)');
    expect(() => c.inc({}, -1)).toThrow(/can only increase/);
    expect(() => reg.register(new Counter("a_total", "again"))).toThrow(/already registered/);
    expect(() => new Histogram("h", "H.", [], [1, 1])).toThrow(/strictly increasing/);
    expect(() => new Counter("bad name", "x")).toThrow(/invalid metric name/);
    expect(() => parsePrometheusText("not a sample line at all")).toThrow(/line 1 is not a sample/);
  });
});

describe("ConcurrencyLimiter", () => {
  it("grants up to maxConcurrent, queues up to maxQueue, refuses beyond, and hands slots over in order", async () => {
    const lim = new ConcurrencyLimiter(2, 1);
    const a = lim.tryAcquire()!;
    const b = lim.tryAcquire()!;
    const c = lim.tryAcquire()!;
    expect(lim.tryAcquire()).toBeUndefined();
    expect([lim.inFlight, lim.queued]).toEqual([2, 1]);
    let granted = false;
    void c.ready.then(() => (granted = true));
    a.release();
    a.release(); // idempotent
    await Promise.resolve();
    expect(granted).toBe(true);
    expect([lim.inFlight, lim.queued]).toEqual([2, 0]);
    b.release();
    c.release();
    expect(lim.inFlight).toBe(0);
  });

  it("a cancelled wait leaves the queue without taking a slot", async () => {
    const lim = new ConcurrencyLimiter(1, 2);
    const a = lim.tryAcquire()!;
    const w = lim.tryAcquire()!;
    w.release();
    await expect(w.ready).rejects.toThrow(/wait cancelled/);
    expect([lim.inFlight, lim.queued]).toEqual([1, 0]);
    a.release();
    expect(lim.inFlight).toBe(0);
  });
});

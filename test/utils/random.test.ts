import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/utils/random.js";

describe("SeededRandom.normal", () => {
  it("draws standard normal samples, the same sequence for the same seed", () => {
    const a = new SeededRandom(9);
    const xs = Array.from({ length: 20000 }, () => a.normal());
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(sd - 1)).toBeLessThan(0.03);
    expect(xs.filter((x) => Math.abs(x) > 1.96).length / xs.length).toBeCloseTo(0.05, 1);
    const b = new SeededRandom(9);
    expect(Array.from({ length: 5 }, () => b.normal())).toEqual(xs.slice(0, 5));
    // Two uniform draws per sample: the state advances as two next() calls do.
    const c = new SeededRandom(9);
    c.next();
    c.next();
    const d = new SeededRandom(9);
    d.normal();
    expect(d.state).toBe(c.state);
  });
});

import { describe, expect, it } from "vitest";
import { parseNumberFlag } from "../../src/utils/cli-args.js";

describe("parseNumberFlag", () => {
  it("returns undefined for a flag that was not given, and the number for a valid one", () => {
    expect(parseNumberFlag("cli", "--k", undefined)).toBeUndefined();
    expect(parseNumberFlag("cli", "--lr", "1e-3")).toBe(0.001);
    expect(parseNumberFlag("cli", "--k", " 12 ", { integer: true, min: 1 })).toBe(12);
  });

  it("throws naming the CLI, the flag, the rule and the text", () => {
    expect(() => parseNumberFlag("cli", "--k", "0", { integer: true, min: 1 })).toThrow('cli: --k must be an integer >= 1, got "0"');
    expect(() => parseNumberFlag("cli", "--k", "2.5", { integer: true })).toThrow('cli: --k must be an integer, got "2.5"');
    expect(() => parseNumberFlag("cli", "--k", "1e3", { integer: true })).toThrow(/must be an integer/);
    expect(() => parseNumberFlag("cli", "--lr", "fast")).toThrow('cli: --lr must be a number, got "fast"');
    expect(() => parseNumberFlag("cli", "--alpha", "", { min: 0 })).toThrow('cli: --alpha must be a number >= 0, got ""');
  });
});

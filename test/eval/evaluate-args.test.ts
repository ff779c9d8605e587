/**
 * Bad arguments to the evaluation CLI give a clear message naming the flag and exit code 2
 * (runtime failures, a path that is not a folder included: 1), never a stack trace or a silent default.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { RetrievalEvaluator } from "../../src/eval/evaluate.js";
import { parseEvaluateArgs, runEvaluateCli } from "../../src/eval/evaluate-cli.js";
import { writeTinyBeir, type TinyBeir } from "./evaluate-fixture.js";

let tmp: string;
let beir: TinyBeir;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "eval-args-"));
  beir = await writeTinyBeir(join(tmp, "tiny-beir"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runEvaluateCli(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe("evaluate CLI arguments", () => {
  it.each([
    [[], /--dataset <BEIR folder> is required/],
    [["--dataset"], /--dataset/],
    [["--dataset", "x", "--bogus"], /Unknown option '--bogus'/],
    [["--dataset", "x", "extra"], /Unexpected argument 'extra'/],
    [["--dataset", "x", "--depth", "0"], /--depth must be an integer >= 1, got "0"/],
    [["--dataset", "x", "--depth", "ten"], /--depth must be an integer >= 1, got "ten"/],
    [["--dataset", "x", "--max-queries", "2.5"], /--max-queries must be an integer >= 1, got "2.5"/],
    [["--dataset", "x", "--faiss-threads", "0"], /--faiss-threads must be an integer >= 1, got "0"/],
    [["--dataset", "x", "--hybrid", "max"], /--hybrid must be rrf or linear, got "max"/],
    [["--dataset", "x", "--hybrid", "linear", "--alpha", "1.5"], /--alpha must be a number in \[0, 1\], got "1.5"/],
    [["--dataset", "x", "--alpha", "0.3"], /--alpha only applies to --hybrid linear/],
    [["--dataset", "x", "--rrf-k=-1"], /--rrf-k must be a number ≥ 0, got "-1"/],
    [["--dataset", "x", "--rrf-k", "-1"], /Option '--rrf-k' argument is ambiguous/],
    [["--dataset", "x", "--methods", "bm25,colbert"], /unknown method "colbert" \(known: bm25, dpr, hybrid/],
    [["--dataset", "x", "--methods", ","], /--methods lists no method/],
  ])("parse %j fails with a message naming the problem", (args, message) => {
    expect(() => parseEvaluateArgs(args as string[])).toThrow(message as RegExp);
    expect(() => parseEvaluateArgs(args as string[])).toThrow(/^evaluate: /);
  });

  it("--help prints the usage and exits 0", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: langchain-dpr evaluate --dataset/);
  });

  it("a bad flag exits 2 with the message and the usage on stderr", async () => {
    const r = await cli(["--dataset", beir.dir, "--depth=-3"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^evaluate: --depth must be an integer >= 1, got "-3"/);
    expect(r.stderr).toContain("usage:");
    expect(r.stdout).toBe("");
  });

  it("a dataset that is not a folder is a runtime error: exits 1 naming it, in one line without the usage", async () => {
    const r = await cli(["--dataset", join(tmp, "nope")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`evaluate: --dataset ${join(tmp, "nope")} is not a folder\n`);
  });

  it("a DPR method without --dpr exits 2 saying which flag it needs", async () => {
    const r = await cli(["--dataset", beir.dir, "--methods", "bm25,hybrid"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/evaluate: method "hybrid" needs a DPR model \(--dpr <model dir>\)/);
  });

  it("a rerank method without --cross-encoder exits 2 saying which flag it needs", async () => {
    const r = await cli(["--dataset", beir.dir, "--methods", "bm25+rerank"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/evaluate: method "bm25\+rerank" needs a cross-encoder \(--cross-encoder <dir>\)/);
  });

  it("--rerank-depth above --depth exits 2", async () => {
    const r = await cli(["--dataset", beir.dir, "--depth", "10", "--rerank-depth", "20"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/rerankDepth \(20\) cannot exceed depth \(10\)/);
  });

  it("--max-passage-length without --dpr exits 2", async () => {
    const r = await cli(["--dataset", beir.dir, "--max-passage-length", "128"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/need a DPR model \(--dpr <model dir>\)/);
  });

  it("an unknown split exits 1 listing the available splits, and writes nothing", async () => {
    const out = join(tmp, "out-split");
    const r = await cli(["--dataset", beir.dir, "--split", "train", "--out", out, "--quiet"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/split "train" not found .*\(available: dev, test\)/);
    await expect(import("node:fs/promises").then((fs) => fs.stat(out))).rejects.toThrow();
  });

  it("a DPR folder without a model exits 1 with the embeddings' message", async () => {
    const r = await cli(["--dataset", beir.dir, "--dpr", tmp, "--quiet", "--out", join(tmp, "out-dpr")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^evaluate: .*DPR|^evaluate: .*encoder/);
  });

  it("defaults: every method the models allow, depth 100, rerank depth 100, RRF k 60, Flat, test split", () => {
    const o = parseEvaluateArgs(["--dataset", beir.dir])!;
    expect(o.outDir).toBe(join("eval-results", "tiny-beir-test"));
    const ev = new RetrievalEvaluator(o.evaluator);
    expect(ev.methods).toEqual(["bm25"]);
    expect([ev.depth, ev.rerankDepth, ev.rrfK, ev.indexFactory, ev.split, ev.hybrid]).toEqual([100, 100, 60, "Flat", "test", "rrf"]);
    const withDpr = new RetrievalEvaluator(parseEvaluateArgs(["--dataset", beir.dir, "--dpr", tmp, "--depth", "40"])!.evaluator);
    expect(withDpr.methods).toEqual(["bm25", "dpr", "hybrid"]);
    expect(withDpr.rerankDepth).toBe(40);
    const all = new RetrievalEvaluator(parseEvaluateArgs(["--dataset", beir.dir, "--dpr", tmp, "--cross-encoder", tmp])!.evaluator);
    expect(all.methods).toEqual(["bm25", "dpr", "hybrid", "bm25+rerank", "dpr+rerank", "hybrid+rerank"]);
  });

  it("methods run in report order whatever order they are listed in, and twice is an error", () => {
    const ev = new RetrievalEvaluator({ dataset: beir.dir, dprModelPath: tmp, methods: ["hybrid", "bm25"] });
    expect(ev.methods).toEqual(["bm25", "hybrid"]);
    expect(() => new RetrievalEvaluator({ dataset: beir.dir, methods: ["bm25", "bm25"] })).toThrow(/method "bm25" listed twice/);
  });
});

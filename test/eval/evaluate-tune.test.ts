/**
 * `evaluate --tune-fusion` end to end on a tiny BEIR folder and a tiny random DPR model (real files,
 * real ONNX sessions, real faiss and BM25 indexes): the dev questions are left out of every
 * method's figures, fusion-tuning.json holds the whole grid, `--write-fusion` stores the best
 * setting in the model's dpr_config.json keeping the other keys, a later run's hybrid method picks
 * it up and says so; bad flag combinations are usage errors naming the flags.
 */
import { cp, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { holdOutShare } from "../../src/data/holdout.js";
import { parseEvaluateArgs, runEvaluateCli } from "../../src/eval/evaluate-cli.js";
import { readDPRConfig } from "../../src/models/model-dir.js";
import { UsageError } from "../../src/utils/cli-args.js";
import { writeTinyBeir, writeTinyDpr, type TinyBeir } from "./evaluate-fixture.js";

let tmp: string;
let beir: TinyBeir;
let modelDir: string;

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runEvaluateCli(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

interface TuningJson {
  format: string;
  metric: string;
  questions: number;
  best: { setting: Record<string, unknown>; score: number; denseShare: number };
  bm25Score: number;
  denseScore: number;
  grid: Array<{ setting: Record<string, unknown>; score: number }>;
  dev: { selection: string; split: string; fraction?: number; seed?: number; questionIds: string[] };
  excludedFromTest: string[];
  dprConfigFusion: Record<string, unknown>;
  storedIn: string | null;
}

interface ResultsJson {
  dataset: { evaluatedQueries: number };
  settings: { hybrid: { source: string; setting: Record<string, unknown>; modelPath?: string } | null };
  methods: Array<{ method: string; perQuery: Record<string, unknown> }>;
}

const readJson = async <T>(path: string): Promise<T> => JSON.parse(await readFile(path, "utf8")) as T;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "eval-tune-"));
  beir = await writeTinyBeir(join(tmp, "tiny-beir"));
  modelDir = join(tmp, "dpr");
  await writeTinyDpr(modelDir, [...beir.passages.map((p) => p.text), ...beir.queries.map((q) => q.text)]);
}, 120_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("evaluate --tune-fusion", () => {
  it("--dev-split N --dev-fraction F --dev-seed S tunes on the share of N that train --dev-fraction F --seed S held out", async () => {
    const out = join(tmp, "out-split-fraction");
    const args = ["--dataset", beir.dir, "--dpr", modelDir, "--depth", "20", "--quiet", "--out", out, "--tune-fusion"];
    const r = await cli([...args, "--dev-split", "dev", "--dev-fraction", "0.5", "--dev-seed", "7"]);
    expect(r.code, r.stderr).toBe(0);
    const t = await readJson<TuningJson>(join(out, "fusion-tuning.json"));
    expect(t.dev).toMatchObject({ selection: "fraction", split: "dev", fraction: 0.5, seed: 7 });
    // The trainer's rule (train-dpr's dev set is holdOutShare of the split's judged questions, in file order).
    expect(t.dev.questionIds).toEqual(holdOutShare(["q0", "q1"], 0.5, 7).dev);
    expect(t.dev.questionIds).toHaveLength(1);
    expect(t.excludedFromTest).toEqual(t.dev.questionIds); // q0 and q1 are judged in test too
  });

  it("--dev-fraction: tunes on held-out questions, leaves them out of every method, writes both files", async () => {
    const model = join(tmp, "dpr-fraction");
    await cp(modelDir, model, { recursive: true });
    const before = await readJson<Record<string, unknown>>(join(model, "dpr_config.json"));
    const out = join(tmp, "out-fraction");
    const base = ["--dataset", beir.dir, "--dpr", model, "--depth", "20", "--quiet", "--out", out, "--tune-fusion"];
    const r = await cli([...base, "--dev-fraction", "0.4", "--dev-seed", "3", "--write-fusion"]);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);

    const t = await readJson<TuningJson>(join(out, "fusion-tuning.json"));
    expect(t.format).toBe("langchain-dpr-fusion-tuning");
    expect(t.metric).toBe("ndcg@10");
    expect(t.dev).toMatchObject({ selection: "fraction", split: "test", fraction: 0.4, seed: 3 });
    expect(t.dev.questionIds).toHaveLength(4); // round(0.4 × 11 questions with a relevant passage)
    expect(t.dev.questionIds).not.toContain("q11"); // no relevant passage: never drawn
    expect(t.excludedFromTest.sort()).toEqual([...t.dev.questionIds].sort());
    expect(t.grid).toHaveLength(53);
    expect(Math.max(...t.grid.map((p) => p.score))).toBe(t.best.score);
    expect(t.best.score).toBeGreaterThanOrEqual(t.bm25Score - 1e-12);
    expect(t.storedIn).toBe(join(model, "dpr_config.json"));

    // The dev questions are in no method's figures.
    const results = await readJson<ResultsJson>(join(out, "results.json"));
    expect(results.dataset.evaluatedQueries).toBe(11 - 4);
    for (const m of results.methods) {
      expect(
        Object.keys(m.perQuery).filter((q) => t.dev.questionIds.includes(q)),
        m.method,
      ).toEqual([]);
      expect(Object.keys(m.perQuery)).toHaveLength(7);
    }
    expect(results.settings.hybrid).toMatchObject({ source: "tuned", setting: t.best.setting });
    const md = await readFile(join(out, "report.md"), "utf8");
    expect(md).toContain("tuned on dev questions in this run");
    expect(md).toMatch(/- Fusion tuning: 53 settings on 4 questions held out of "test" \(fraction 0\.4, seed 3\), ndcg@10/);
    expect(md).toContain('4 questions of "test" were tuned on and are left out of every row below.');

    // dpr_config.json: the other keys unchanged and in order, the fusion with its provenance.
    const after = await readJson<Record<string, unknown>>(join(model, "dpr_config.json"));
    expect(Object.keys(after)).toEqual([...Object.keys(before), "fusion"]);
    expect({ ...after, fusion: undefined }).toEqual({ ...before, fusion: undefined });
    expect(after.fusion).toEqual(t.dprConfigFusion);
    const stored = (await readDPRConfig(model)).fusion!;
    expect(stored).toMatchObject({ ...t.best.setting, tunedOn: { split: "test", selection: "fraction", questions: 4, metric: "ndcg@10" } });
    expect(stored.tunedOn!.score).toBe(t.best.score);
    expect(stored.tunedOn!.bm25Score).toBe(t.bm25Score);
    expect(stored.tunedOn!.denseScore).toBe(t.denseScore);
    expect(r.stderr).toContain(`stored the tuned fusion`);

    // A later run without tuning: the hybrid method uses the stored fusion and says where it came from.
    const later = join(tmp, "out-later");
    const r2 = await cli(["--dataset", beir.dir, "--dpr", model, "--depth", "20", "--quiet", "--out", later, "--methods", "hybrid"]);
    expect(r2.code).toBe(0);
    const res2 = await readJson<ResultsJson>(join(later, "results.json"));
    expect(res2.settings.hybrid).toMatchObject({ source: "model", setting: t.best.setting, modelPath: model });
    expect(r2.stdout).toContain(`stored in ${model}/dpr_config.json, tuned on 4 questions of ${beir.dir} (test, ndcg@10`);
    // ... and explicit flags win over it.
    const r3 = await cli([
      "--dataset",
      beir.dir,
      "--dpr",
      model,
      "--depth",
      "20",
      "--quiet",
      "--out",
      later,
      "--methods",
      "hybrid",
      "--hybrid",
      "rrf",
    ]);
    expect(r3.code).toBe(0);
    const res3 = await readJson<ResultsJson>(join(later, "results.json"));
    expect(res3.settings.hybrid).toMatchObject({ source: "options", setting: { method: "rrf", k: 60, weights: [1, 1] } });
  }, 120_000);

  it("--dev-split: tunes on another split, leaves shared questions out of the test; no --write-fusion, no model change", async () => {
    const configBefore = await readFile(join(modelDir, "dpr_config.json"), "utf8");
    const out = join(tmp, "out-split");
    const r = await cli([
      "--dataset",
      beir.dir,
      "--dpr",
      modelDir,
      "--depth",
      "20",
      "--quiet",
      "--out",
      out,
      "--tune-fusion",
      "--dev-split",
      "dev",
      "--methods",
      "bm25",
    ]);
    expect(r.code).toBe(0); // tuning runs even when no hybrid method does
    const t = await readJson<TuningJson>(join(out, "fusion-tuning.json"));
    expect(t.dev).toMatchObject({ selection: "split", split: "dev", questionIds: ["q0", "q1"] });
    expect(t.excludedFromTest.sort()).toEqual(["q0", "q1"]); // the tiny folder's dev questions are judged in test too
    expect(t.storedIn).toBeNull();
    expect((await readJson<ResultsJson>(join(out, "results.json"))).dataset.evaluatedQueries).toBe(9);
    expect(await readFile(join(modelDir, "dpr_config.json"), "utf8")).toBe(configBefore);
    expect(r.stderr).toContain("the tuned fusion was not stored with the model (add --write-fusion");
    expect((await readJson<ResultsJson>(join(out, "results.json"))).settings.hybrid).toBeNull();
  }, 120_000);

  it("a dev split that does not exist exits 1 listing the splits, before writing anything", async () => {
    const out = join(tmp, "out-nosplit");
    const r = await cli(["--dataset", beir.dir, "--dpr", modelDir, "--quiet", "--out", out, "--tune-fusion", "--dev-split", "train"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/dev split "train" not found .*\(available: dev, test\)/);
    await expect(stat(out)).rejects.toThrow();
  });

  it.each([
    [["--tune-fusion"], /--tune-fusion needs --dev-split NAME .*, --dev-fraction F .*, or both/],
    [["--dev-fraction", "0.2"], /^evaluate: --dev-fraction only applies with --tune-fusion/],
    [["--write-fusion"], /^evaluate: --write-fusion only applies with --tune-fusion/],
    [["--dev-split", "dev", "--tune-metric", "ndcg@5"], /^evaluate: --dev-split, --tune-metric only apply with --tune-fusion/],
    [
      ["--tune-fusion", "--dev-split", "dev", "--hybrid", "linear", "--alpha", "0.2"],
      /--tune-fusion chooses the hybrid fusion itself; leave out --hybrid, --alpha/,
    ],
    [["--tune-fusion", "--dev-split", "dev", "--rrf-k", "10"], /leave out --rrf-k/],
    [["--tune-fusion", "--dev-split", "test"], /--dev-split test is the evaluated --split: tuning on the test questions inflates/],
    [["--tune-fusion", "--dev-fraction", "1"], /--dev-fraction must be a number in \(0, 1\), e\.g\. 0\.2, got "1"/],
    [["--tune-fusion", "--dev-fraction", "0"], /--dev-fraction must be a number in \(0, 1\)/],
    [["--tune-fusion", "--dev-split", "dev", "--dev-seed", "1"], /--dev-seed only applies with --dev-fraction/],
    [["--tune-fusion", "--dev-fraction", "0.2", "--dev-seed", "1.5"], /--dev-seed must be an integer >= 0, got "1.5"/],
    [["--tune-fusion", "--dev-split", "dev", "--tune-metric", "bleu@4"], /--tune-metric: metric must be <name>@<k> .*got "bleu@4"/],
  ])("%j is a usage error naming the flags", (flags, message) => {
    const args = ["--dataset", "x", "--dpr", "m", ...(flags as string[])];
    expect(() => parseEvaluateArgs(args)).toThrow(UsageError);
    expect(() => parseEvaluateArgs(args)).toThrow(message as RegExp);
  });

  it("--tune-fusion without --dpr exits 2 with the message and the usage", async () => {
    const r = await cli(["--dataset", beir.dir, "--tune-fusion", "--dev-split", "dev"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^evaluate: --tune-fusion needs a DPR model \(--dpr <model dir>\)/);
    expect(r.stderr).toContain("--write-fusion");
  });

  it("parses the tuning flags into the evaluator's options", () => {
    const o = parseEvaluateArgs([
      "--dataset",
      "x",
      "--dpr",
      "m",
      "--tune-fusion",
      "--dev-fraction",
      "0.25",
      "--tune-metric",
      "recall@5",
      "--write-fusion",
    ])!;
    expect(o.evaluator.tuneFusion).toEqual({ devSplit: undefined, devFraction: 0.25, seed: undefined, metric: "recall@5" });
    expect(o.writeFusion).toBe(true);
    expect(o.evaluator.hybrid).toBeUndefined();
    expect(parseEvaluateArgs(["--dataset", "x"])!.evaluator.tuneFusion).toBeUndefined();
  });
});

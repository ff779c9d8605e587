import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeDprJson } from "../../src/data/dpr.js";
import { runTrainCli } from "../../src/training/cli.js";
import { syntheticTask, writeSyntheticBeir } from "./synthetic.js";

let dir: string;
const task = syntheticTask(24, 6);
const tiny = ["--hidden", "16", "--layers", "1", "--heads", "2", "--ffn", "32", "--max-len", "48", "--vocab-size", "200", "--q-len", "12", "--p-len", "24", "--backend", "wasm", "--no-progress"];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "train-cli-"));
  await writeSyntheticBeir(join(dir, "beir"), task);
  // Mined negatives: for each question, the next passage.
  await writeDprJson(join(dir, "neg.json"), task.queries.map((q, i) => {
    const n = task.corpus[(i + 1) % task.corpus.length]!;
    return { question: q.text, positives: [], negatives: [], hardNegatives: [{ id: n._id, title: n.title, text: n.text }] };
  }));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("train-dpr command line", () => {
  it("--negatives attaches mined hard negatives to BEIR examples (shared across the batch), --dev-fraction holds questions out, crop mode trains from the corpus alone", async () => {
    const out = join(dir, "run");
    const write = process.stdout.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      expect(await runTrainCli(["--data", join(dir, "beir"), "--out", out, "--negatives", join(dir, "neg.json"), "--dev-fraction", "0.25", "--batch", "6", "--max-steps", "2", ...tiny])).toBe(0);
      const log = (await readFile(join(out, "train-log.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
      const steps = log.filter((r: { type: string }) => r.type === "step");
      expect(steps.length).toBe(2);
      for (const s of steps) {
        expect(s.examples).toBe(6);
        expect(s.hardNegatives).toBeGreaterThanOrEqual(3); // a negative equal to an in-batch positive is skipped
      }
      const meta = JSON.parse(await readFile(join(out, "model", "training.json"), "utf8"));
      expect(meta.data.dev).toEqual({ heldOutOf: "train", fraction: 0.25, queries: 6 });
      expect(meta.data.trainQueries).toBe(18);
      expect(meta.data.negatives.examplesWithNegatives).toBe(18);
      const ict = join(dir, "ict");
      expect(await runTrainCli(["--data", join(dir, "beir"), "--out", ict, "--batch", "4", "--max-steps", "1", ...tiny], { mode: "crop" })).toBe(0);
      expect(JSON.parse(await readFile(join(ict, "model", "training.json"), "utf8")).data.mode).toBe("crop");
    } finally {
      process.stdout.write = write;
    }
  });

  it("rejects bad arguments with messages naming the flag", async () => {
    const beir = join(dir, "beir");
    await expect(runTrainCli(["--out", join(dir, "x")])).rejects.toThrow(/--data and --out are required/);
    await expect(runTrainCli(["--data", beir, "--out", join(dir, "x"), "--mode", "mlm"])).rejects.toThrow(/--mode must be supervised, ict or crop, got 'mlm'/);
    await expect(runTrainCli(["--data", beir, "--out", join(dir, "x"), "--hidden", "16"])).rejects.toThrow(/--layers is missing/);
    await expect(runTrainCli(["--data", beir, "--out", join(dir, "x"), "--batch", "two", ...tiny])).rejects.toThrow(/--batch must be an integer, got "two"/);
    await expect(runTrainCli(["--data", join(dir, "neg.json"), "--out", join(dir, "x"), "--mode", "ict", ...tiny])).rejects.toThrow(/--mode ict needs a BEIR folder/);
    await expect(runTrainCli(["--data", beir, "--out", join(dir, "x"), "--dev-fraction", "1.5", ...tiny])).rejects.toThrow(/--dev-fraction must be in \(0, 1\)/);
  });

  it("says why --mode ict finds nothing in a corpus without sentence punctuation", async () => {
    const flat = join(dir, "no-punctuation");
    await mkdir(join(flat, "qrels"), { recursive: true });
    const docs = ["soy intake breast cancer risk cohort women", "vitamin d supplementation bone density trial older adults"];
    await writeFile(join(flat, "corpus.jsonl"), docs.map((text, i) => JSON.stringify({ _id: `d${i}`, title: "", text })).join("\n") + "\n");
    await writeFile(join(flat, "queries.jsonl"), JSON.stringify({ _id: "q0", text: "soy and cancer" }) + "\n");
    await writeFile(join(flat, "qrels", "train.tsv"), "query-id\tcorpus-id\tscore\nq0\td0\t1\n");
    await expect(runTrainCli(["--data", flat, "--out", join(dir, "x"), "--mode", "ict", ...tiny])).rejects.toThrow(/--mode ict found no passage with two sentences in .*no-punctuation .*needs --mode crop/);
  });
});

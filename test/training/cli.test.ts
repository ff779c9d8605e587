import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeDprJson } from "../../src/data/dpr.js";
import { holdOutShare } from "../../src/data/holdout.js";
import { runTrainCli } from "../../src/training/cli.js";
import { syntheticTask, writeSyntheticBeir } from "./synthetic.js";
import { shapeFlags } from "./shape-flags.js";

let dir: string;
const task = syntheticTask(24, 6);
const tiny = [
  ...shapeFlags({ hidden: 16, layers: 1, heads: 2, ffn: 32, maxLen: 48, vocabSize: 200 }),
  "--q-len",
  "12",
  "--p-len",
  "24",
  "--backend",
  "wasm",
  "--no-progress",
];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "train-cli-"));
  await writeSyntheticBeir(join(dir, "beir"), task);
  // Mined negatives: for each question, the next passage.
  await writeDprJson(
    join(dir, "neg.json"),
    task.queries.map((q, i) => {
      const n = task.corpus[(i + 1) % task.corpus.length]!;
      return { question: q.text, positives: [], negatives: [], hardNegatives: [{ id: n._id, title: n.title, text: n.text }] };
    }),
  );
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** runTrainCli with its output captured. */
async function cli(args: string[], defaults: { mode?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runTrainCli(args, defaults, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe("train-dpr command line", () => {
  it(
    "--negatives attaches mined hard negatives to BEIR examples (shared across the batch), --dev-fraction holds " +
      "questions out, crop mode trains from the corpus alone",
    async () => {
      const out = join(dir, "run");
      const write = process.stdout.write;
      process.stdout.write = (() => true) as typeof process.stdout.write;
      try {
        expect(
          await runTrainCli([
            "--data",
            join(dir, "beir"),
            "--out",
            out,
            "--negatives",
            join(dir, "neg.json"),
            "--dev-fraction",
            "0.25",
            "--batch",
            "6",
            "--max-steps",
            "2",
            ...tiny,
          ]),
        ).toBe(0);
        const log = (await readFile(join(out, "train-log.jsonl"), "utf8"))
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l));
        const steps = log.filter((r: { type: string }) => r.type === "step");
        expect(steps.length).toBe(2);
        for (const s of steps) {
          expect(s.examples).toBe(6);
          expect(s.hardNegatives).toBeGreaterThanOrEqual(3); // a negative equal to an in-batch positive is skipped
        }
        const meta = JSON.parse(await readFile(join(out, "model", "training.json"), "utf8"));
        expect(meta.data.dev).toMatchObject({ heldOutOf: "train", fraction: 0.25, queries: 6 });
        // The one hold-out rule, which evaluate --dev-split train --dev-fraction 0.25 --dev-seed <seed> repeats.
        const judged = task.queries.map((q) => q._id);
        expect(meta.data.dev.questionIds).toEqual(holdOutShare(judged, 0.25, meta.data.dev.seed).dev);
        expect(meta.data.trainQueries).toBe(18);
        expect(meta.data.negatives.examplesWithNegatives).toBe(18);
        const ict = join(dir, "ict");
        expect(
          await runTrainCli(["--data", join(dir, "beir"), "--out", ict, "--batch", "4", "--max-steps", "1", ...tiny], { mode: "crop" }),
        ).toBe(0);
        expect(JSON.parse(await readFile(join(ict, "model", "training.json"), "utf8")).data.mode).toBe("crop");
      } finally {
        process.stdout.write = write;
      }
    },
  );

  it("rejects bad arguments with exit code 2, a message naming the flag and the usage on stderr", async () => {
    const beir = join(dir, "beir");
    const usage = async (args: string[], message: RegExp) => {
      const r = await cli(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/^train-dpr: /);
      expect(r.stderr).toContain("Usage: langchain-dpr train --data");
      expect(r.stdout).toBe("");
    };
    await usage(["--out", join(dir, "x")], /--data and --out are required/);
    await usage(["--data", beir, "--out", join(dir, "x"), "--mode", "mlm"], /--mode must be supervised, ict or crop, got 'mlm'/);
    await usage(["--data", beir, "--out", join(dir, "x"), "--hidden", "16"], /--layers is missing/);
    await usage(["--data", beir, "--out", join(dir, "x"), "--batch", "two", ...tiny], /--batch must be an integer, got "two"/);
    await usage(["--data", join(dir, "neg.json"), "--out", join(dir, "x"), "--mode", "ict", ...tiny], /--mode ict needs a BEIR folder/);
    await usage(["--data", beir, "--out", join(dir, "x"), "--dev-fraction", "1.5", ...tiny], /--dev-fraction must be in \(0, 1\)/);
    await usage(["--data", beir, "--out", join(dir, "x"), "--bogus"], /^train-dpr: Unknown option '--bogus'/);
  });

  it("a runtime failure exits 1 with the message alone; --help exits 0 (pretrain's usage in ict mode)", async () => {
    const r = await cli(["--data", join(dir, "nope.json"), "--out", join(dir, "x"), ...tiny]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^train-dpr: training data: .*nope.json does not exist\n$/);
    const help = await cli(["--help"], { mode: "ict" });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: langchain-dpr pretrain/);
  });

  it("says why --mode ict finds nothing in a corpus without sentence punctuation", async () => {
    const flat = join(dir, "no-punctuation");
    await mkdir(join(flat, "qrels"), { recursive: true });
    const docs = ["soy intake breast cancer risk cohort women", "vitamin d supplementation bone density trial older adults"];
    await writeFile(join(flat, "corpus.jsonl"), docs.map((text, i) => JSON.stringify({ _id: `d${i}`, title: "", text })).join("\n") + "\n");
    await writeFile(join(flat, "queries.jsonl"), JSON.stringify({ _id: "q0", text: "soy and cancer" }) + "\n");
    await writeFile(join(flat, "qrels", "train.tsv"), "query-id\tcorpus-id\tscore\nq0\td0\t1\n");
    const r = await cli(["--data", flat, "--out", join(dir, "x"), "--mode", "ict", ...tiny]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--mode ict found no passage with two sentences in .*no-punctuation .*needs --mode crop/);
  });
});

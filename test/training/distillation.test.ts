import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { loadBeirCorpus } from "../../src/data/beir.js";
import { BM25Index } from "../../src/retrievers/bm25/bm25-index.js";
import { selectBackend } from "../../src/training/backend.js";
import { runTrainCli } from "../../src/training/cli.js";
import { bm25Teacher } from "../../src/training/distillation.js";
import { dprLoss } from "../../src/training/loss.js";
import { syntheticTask, writeSyntheticBeir } from "./synthetic.js";
import { shapeFlags } from "./shape-flags.js";

const q = [
  [1, 0.5, -1],
  [0.2, 2, 0.3],
];
const p = [
  [0.9, 0.4, -0.8],
  [0.1, 1.5, 0.2],
  [1, 1, 1],
]; // 2 positives + 1 hard negative
const scores = q.map((qi) => p.map((pj) => pj.reduce((a, x, k) => a + x * qi[k]!, 0)));
const logSoftmax = (row: number[]) => {
  const m = Math.max(...row);
  const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
  return row.map((x) => x - lse);
};
const nll = scores.reduce((a, row, i) => a - logSoftmax(row)[i]!, 0) / q.length;
const loss = (teacher?: { scores: number[][]; weight: number; temperature?: number }) =>
  tf.tidy(() => dprLoss(tf.tensor2d(q), tf.tensor2d(p), { teacher }).dataSync()[0]!);

describe("dprLoss with a distillation teacher", () => {
  it("is (1 − w)·NLL + w·KL(teacher softmax ‖ model softmax), the KL computed by hand", async () => {
    await selectBackend({ prefer: "cpu", log: false });
    const teacher = [
      [3, 0, 2],
      [0, 1, 4],
    ];
    const T = 2;
    let kl = 0;
    teacher.forEach((row, i) => {
      const lt = logSoftmax(row.map((x) => x / T));
      const ls = logSoftmax(scores[i]!);
      kl += lt.reduce((a, l, j) => a + Math.exp(l) * (l - ls[j]!), 0);
    });
    kl /= teacher.length;
    expect(kl).toBeGreaterThan(0.1);
    expect(loss({ scores: teacher, weight: 0.3, temperature: T })).toBeCloseTo(0.7 * nll + 0.3 * kl, 5);
    expect(loss({ scores: teacher, weight: 0 })).toBeCloseTo(nll, 6); // weight 0: the plain loss
    expect(loss({ scores, weight: 1 })).toBeCloseTo(0, 5); // a teacher that agrees with the model: KL 0
  });

  it("refuses a teacher matrix that does not fit the batch, naming the row", async () => {
    await selectBackend({ prefer: "cpu", log: false });
    expect(() => loss({ scores: [[1, 2, 3]], weight: 0.5 })).toThrow(/teacher scores have 1 rows, the batch has 2 questions/);
    expect(() =>
      loss({
        scores: [
          [1, 2, 3],
          [1, 2],
        ],
        weight: 0.5,
      }),
    ).toThrow(/teacher row 1 has 2 scores, the batch has 3 passages/);
    expect(() =>
      loss({
        scores: [
          [1, 2, 3],
          [1, 2, Number.NaN],
        ],
        weight: 0.5,
      }),
    ).toThrow(/teacher row 1 has a score that is not a finite/);
    expect(() => loss({ scores, weight: 1.5 })).toThrow(/teacher weight must be in \[0, 1\], got 1.5/);
  });
});

describe("train --distill bm25", () => {
  let dir: string;
  const quiet = { stdout: () => {}, stderr: () => {} };
  const tiny = [
    ...shapeFlags({ hidden: 16, layers: 1, heads: 2, ffn: 32, maxLen: 48, vocabSize: 200 }),
    ...["--q-len", "12", "--p-len", "24", "--backend", "wasm", "--no-progress", "--batch", "8", "--max-steps", "3", "--pooling", "mean"],
  ];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "distill-"));
    await writeSyntheticBeir(join(dir, "beir"), syntheticTask(24, 6));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("the BM25 teacher scores every question against every passage of a batch as BM25Index does", async () => {
    const corpus = await loadBeirCorpus(join(dir, "beir"));
    const teacher = await bm25Teacher(corpus);
    const index = await BM25Index.fromPassages(corpus);
    const m = teacher.score(["the study of cells", corpus[3]!.text], corpus.slice(0, 5));
    expect(m).toHaveLength(2);
    expect(m[1]).toEqual(
      index.scoreDocuments(
        corpus[3]!.text,
        corpus.slice(0, 5).map((x) => x.id),
      ),
    );
    expect(m[1]![3]).toBe(Math.max(...m[1]!)); // a passage's own text scores it highest
    expect(() => teacher.score(["x"], [{ id: "nope", title: "", text: "x" }])).toThrow(
      /passage "nope" of a training batch is not in the corpus/,
    );
  });

  it("trains with the teacher (in training.json, a different loss than without it) and refuses bad flag combinations", async () => {
    const beir = join(dir, "beir");
    const run = async (out: string, extra: string[]) => {
      expect(await runTrainCli(["--data", beir, "--out", join(dir, out), ...tiny, ...extra], {}, quiet)).toBe(0);
      return (await readFile(join(dir, out, "train-log.jsonl"), "utf8"))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { loss?: number });
    };
    const plain = await run("plain", []);
    const distilled = await run("distilled", ["--distill", "bm25", "--distill-weight", "0.7", "--distill-temperature", "2"]);
    const meta = JSON.parse(await readFile(join(dir, "distilled", "model", "training.json"), "utf8"));
    expect(meta.hyperparameters.distillation).toEqual({ teacher: "bm25", weight: 0.7, temperature: 2 });
    expect(meta.data.distillation.teacher).toBe("bm25");
    expect(distilled[0]!.loss).not.toBeCloseTo(plain[0]!.loss!, 3); // same weights and batch, another loss
    let err = "";
    const io = { stdout: () => {}, stderr: (t: string) => (err += t) };
    expect(await runTrainCli(["--data", beir, "--out", join(dir, "x"), ...tiny, "--distill-weight", "0.5"], {}, io)).toBe(2);
    expect(err).toMatch(/--distill-weight applies with --distill only/);
    expect(await runTrainCli(["--data", beir, "--out", join(dir, "y"), ...tiny, "--distill", "ce"], {}, io)).toBe(2);
    expect(err).toMatch(/--distill must be bm25, got 'ce'/);
  }, 120_000);
});

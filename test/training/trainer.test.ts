import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { loadBeirDataset } from "../../src/data/beir.js";
import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { readBertCheckpoint } from "../../src/models/checkpoint.js";
import { selectBackend } from "../../src/training/backend.js";
import { BertEncoderTF } from "../../src/training/bert-tf.js";
import { encodePassage, examplesFromBeir } from "../../src/training/batches.js";
import { evaluateModelDir, exportTrainedModel, type DevSet } from "../../src/training/export.js";
import { scratchModel } from "../../src/training/init.js";
import { DPRTrainer, type EpochRecord, type StepRecord } from "../../src/training/trainer.js";
import type { TrainingExample } from "../../src/data/types.js";
import type { BertTokenizer } from "../../src/tokenizers/bert-tokenizer.js";
import type { BertConfig, BertWeights } from "../../src/models/types.js";
import { syntheticTask, writeSyntheticBeir } from "./synthetic.js";

let root: string;
let examples: TrainingExample[];
let dev: DevSet;
let config: BertConfig;
let tokenizer: BertTokenizer;
let initial: BertWeights;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "dpr-trainer-"));
  const beir = join(root, "beir");
  await writeSyntheticBeir(beir, syntheticTask(48, 1));
  const ds = await loadBeirDataset(beir, "train");
  examples = examplesFromBeir(ds).examples;
  dev = { queries: ds.queries, corpus: ds.corpus, qrels: ds.qrels }; // recall on the training questions
  ({ config, tokenizer } = scratchModel({
    hidden: 32,
    layers: 2,
    heads: 4,
    ffn: 64,
    maxLen: 64,
    vocabSize: 300,
    texts: ds.corpus.flatMap((p) => [p.title, p.text]),
    dropout: 0,
  }));
  await selectBackend({ prefer: "wasm", log: false });
  const enc = BertEncoderTF.fromConfig(config, { initSeed: 7 });
  initial = await enc.toWeights();
  enc.dispose();
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const recipe = {
  batchSize: 16,
  lr: 3e-3,
  warmupRatio: 0.05,
  pooling: "mean" as const,
  maxQueryLength: 16,
  maxPassageLength: 32,
  shared: true,
  progress: false as const,
  seed: 5,
};

describe("DPRTrainer end to end (tiny model, synthetic BEIR folder, wasm)", () => {
  it(
    "lowers the loss, raises recall on the training questions, and writes a model folder that DPREmbeddings loads and " +
      "that ranks as the TF.js model does",
    async () => {
      await selectBackend({ prefer: "wasm", log: false });
      // Baseline: the initial weights, exported and evaluated the same way.
      const base = BertEncoderTF.fromWeights(config, initial);
      await exportTrainedModel(join(root, "initial"), {
        encoders: { question: base, passage: base },
        tokenizer,
        dprConfig: { pooling: "mean", maxQueryLength: 16, maxPassageLength: 32 },
        metadata: {},
      });
      base.dispose();
      const before = await evaluateModelDir(join(root, "initial"), dev);

      const steps: StepRecord[] = [];
      const epochs: EpochRecord[] = [];
      const out = join(root, "run");
      const trainer = new DPRTrainer({
        ...recipe,
        outputDir: out,
        tokenizer,
        init: { config, question: initial },
        train: examples,
        dev,
        epochs: 8,
        onStep: (s) => steps.push(s),
        onEpoch: (e) => epochs.push(e),
      });
      const result = await trainer.train();
      expect(result.steps).toBe(24); // 48 pairs / 16 × 8 epochs
      expect(steps.length).toBe(24);
      const after = epochs[epochs.length - 1]!.metrics!;
      // Loss: from about ln(16) to a small fraction of it.
      expect(steps[0]!.loss).toBeGreaterThan(2.3);
      expect(epochs[epochs.length - 1]!.meanLoss).toBeLessThan(0.35 * steps[0]!.loss);
      // Recall on the training questions (48 passages: chance recall@1 ≈ 0.02).
      expect(before["recall@1"]).toBeLessThan(0.2);
      expect(after["recall@1"]).toBeGreaterThan(0.8);
      expect(after["ndcg@10"]).toBeGreaterThan(before["ndcg@10"]! + 0.5);
      // Learning-rate schedule and clipping were applied.
      expect(Math.max(...steps.map((s) => s.lr))).toBeCloseTo(3e-3, 8);
      expect(steps[steps.length - 1]!.lr).toBeLessThan(3e-4);
      // The log and the metadata.
      const log = (await readFile(join(out, "train-log.jsonl"), "utf8"))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { type: string; step: number });
      expect(log.filter((r) => r.type === "step").map((r) => r.step)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
      expect(log.filter((r) => r.type === "epoch").length).toBe(8);
      const meta = JSON.parse(await readFile(join(result.modelDir, "training.json"), "utf8"));
      expect(meta.hyperparameters.batchSize).toBe(16);
      expect(meta.history.length).toBeGreaterThanOrEqual(1);
      expect((await stat(join(out, "checkpoint", "state.json"))).isFile()).toBe(true);
      expect(result.history[result.bestEpoch!]!.metrics!["ndcg@10"]).toBe(Math.max(...result.history.map((h) => h.metrics!["ndcg@10"]!)));

      // The exported folder: DPREmbeddings vectors equal the TF.js encoder's on the same weights.
      const embeddings = new DPREmbeddings({ modelPath: result.modelDir });
      const ort = await embeddings.embedPassagesMatrix(dev.corpus.slice(0, 12).map((p) => ({ title: p.title, text: p.text })));
      const ortQ = await embeddings.embedQueriesMatrix(dev.queries.slice(0, 12).map((q) => q.text));
      await embeddings.dispose();
      const { weights } = await readBertCheckpoint(join(result.modelDir, "encoder"));
      const enc = BertEncoderTF.fromWeights(config, weights);
      const encodeTf = (encs: { inputIds: number[]; attentionMask: number[]; tokenTypeIds: number[] }[]) =>
        tf.tidy(() => {
          const rows = encs.map((e) =>
            enc.encode({ inputIds: [e.inputIds], attentionMask: [e.attentionMask], tokenTypeIds: [e.tokenTypeIds] }, { pooling: "mean" }),
          );
          return tf.concat(rows).dataSync() as Float32Array;
        });
      const tfP = encodeTf(dev.corpus.slice(0, 12).map((p) => encodePassage(tokenizer, p, 32, "pair")));
      const tfQ = encodeTf(dev.queries.slice(0, 12).map((q) => tokenizer.encode(q.text, null, { maxLength: 16 })));
      enc.dispose();
      let worst = 0;
      for (let i = 0; i < tfP.length; i++) worst = Math.max(worst, Math.abs(tfP[i]! - ort.data[i]!), Math.abs(tfQ[i]! - ortQ.data[i]!));
      expect(worst).toBeLessThan(1e-3);
      const H = config.hidden_size;
      const top = (q: Float32Array, p: Float32Array, i: number) => {
        let best = -1,
          bestScore = -Infinity;
        for (let j = 0; j < 12; j++) {
          let s = 0;
          for (let d = 0; d < H; d++) s += q[i * H + d]! * p[j * H + d]!;
          if (s > bestScore) [best, bestScore] = [j, s];
        }
        return best;
      };
      for (let i = 0; i < 12; i++) expect(top(ortQ.data, ort.data, i)).toBe(top(tfQ, tfP, i));
    },
  );

  it("fails clearly: resume without a checkpoint, resume with other settings, lengths beyond the model's positions", async () => {
    await selectBackend({ prefer: "wasm", log: false });
    const fresh = join(root, "empty");
    await expect(
      new DPRTrainer({ ...recipe, outputDir: fresh, tokenizer, init: { config, question: initial }, train: examples, maxSteps: 1 }).train({
        resume: true,
      }),
    ).rejects.toThrow(/DPRTrainer: --resume: no checkpoint in .*empty\/checkpoint/);
    const out = join(root, "short");
    await new DPRTrainer({
      ...recipe,
      outputDir: out,
      tokenizer,
      init: { config, question: initial },
      train: examples,
      maxSteps: 2,
    }).train();
    await expect(
      new DPRTrainer({
        ...recipe,
        batchSize: 8,
        outputDir: out,
        tokenizer,
        init: { config, question: initial },
        train: examples,
        maxSteps: 2,
      }).train({ resume: true }),
    ).rejects.toThrow(/cannot resume: batchSize is 8 but the checkpoint .* was made with 16/);
    expect(
      () =>
        new DPRTrainer({
          ...recipe,
          maxPassageLength: 100,
          outputDir: out,
          tokenizer,
          init: { config, question: initial },
          train: examples,
        }),
    ).toThrow(/maxPassageLength 100 exceed the model's max_position_embeddings 64/);
    expect(
      () => new DPRTrainer({ ...recipe, batchSize: 0, outputDir: out, tokenizer, init: { config, question: initial }, train: examples }),
    ).toThrow(/batchSize must be an integer >= 1, got 0/);
  });
});

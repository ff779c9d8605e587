import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import type { Scalar } from "@tensorflow/tfjs-core";
import { selectBackend } from "../../src/training/backend.js";
import { BertEncoderTF } from "../../src/training/bert-tf.js";
import { tinyBertConfig } from "../../src/models/config.js";
import { randomBertWeights } from "../../src/models/weights.js";
import { referenceBertForward } from "../../src/models/reference.js";
import { exportBertOnnx } from "../../src/models/onnx/bert-graph.js";
import type { BertConfig, HiddenAct } from "../../src/models/types.js";

// A padded batch: three rows of different true lengths, two segments in row 1.
const batch = {
  inputIds: [
    [2, 17, 45, 311, 9, 3, 0, 0, 0, 0],
    [2, 870, 14, 3, 66, 501, 77, 3, 0, 0],
    [2, 5, 999, 120, 44, 7, 8, 31, 12, 3],
  ],
  attentionMask: [
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
    [1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
    [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
  ],
  tokenTypeIds: [
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 1, 1, 1, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  ],
};

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Weights with larger-than-init spread so that mistakes are not hidden by near-zero activations. */
function testWeights(config: BertConfig, opts: { pooler?: boolean; numLabels?: number } = {}) {
  return randomBertWeights({ ...config, initializer_range: 0.2 }, { seed: 7, ...opts });
}

interface TfRun {
  hidden: Float32Array;
  cls: Float32Array;
  pooled?: Float32Array;
  logits?: Float32Array;
}

async function runTf(backend: "cpu" | "wasm", config: BertConfig, weights: ReturnType<typeof testWeights>, fast: boolean): Promise<TfRun> {
  const { tf } = await selectBackend({ prefer: backend, log: false });
  const enc = BertEncoderTF.fromWeights(config, weights, { fastDense: fast, fastAttention: fast, scatterEmbedding: fast });
  try {
    return tf.tidy(() => {
      const out = enc.forward(batch, { training: false });
      return {
        hidden: out.lastHiddenState.dataSync() as Float32Array,
        cls: out.cls.dataSync() as Float32Array,
        pooled: out.pooled?.dataSync() as Float32Array | undefined,
        logits: out.logits?.dataSync() as Float32Array | undefined,
      };
    });
  } finally {
    enc.dispose();
  }
}

describe("BertEncoderTF matches the plain-TS reference forward pass", () => {
  const acts: HiddenAct[] = ["gelu", "gelu_new", "relu"];
  for (const backend of ["cpu", "wasm"] as const) {
    for (const act of acts) {
      it(`${backend}, hidden_act ${act}: last hidden state and CLS within 1e-4 on a padded batch`, async () => {
        const config = tinyBertConfig({ hidden_act: act });
        const weights = testWeights(config);
        const ref = referenceBertForward(config, weights, batch);
        for (const fast of [false, true]) {
          const got = await runTf(backend, config, weights, fast);
          expect(maxAbsDiff(got.hidden, ref.lastHiddenState)).toBeLessThan(1e-4);
          expect(maxAbsDiff(got.cls, ref.cls)).toBeLessThan(1e-4);
        }
      });
    }
    it(`${backend}: BERT pooler and classifier logits within 1e-4`, async () => {
      const config = tinyBertConfig({ num_labels: 3 });
      const weights = testWeights(config, { pooler: true, numLabels: 3 });
      const ref = referenceBertForward(config, weights, batch);
      const got = await runTf(backend, config, weights, true);
      expect(maxAbsDiff(got.pooled!, ref.bertPooled!)).toBeLessThan(1e-4);
      expect(maxAbsDiff(got.logits!, ref.logits!)).toBeLessThan(1e-4);
      expect(got.logits!.length).toBe(3 * 3);
    });
  }
});

describe("BertEncoderTF matches onnxruntime-node after exportBertOnnx", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bert-tf-onnx-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("trained-in-TF.js weights exported to ONNX give the same outputs (wasm, classifier head)", async () => {
    const config = tinyBertConfig({ num_labels: 2 });
    const { tf } = await selectBackend({ prefer: "wasm", log: false });
    // Start from TF.js's own initialisation, take two optimiser steps so the weights are "trained",
    // then export what toWeights() returns.
    const enc = BertEncoderTF.fromConfig(config, { numLabels: 2, initSeed: 3 });
    const opt = tf.train.adam(1e-2);
    for (let i = 0; i < 2; i++) {
      opt.minimize(() => tf.sum(tf.square(enc.forward(batch).logits!)) as Scalar, false, enc.variables);
    }
    const weights = await enc.toWeights();
    const tfOut = tf.tidy(() => {
      const o = enc.forward(batch);
      return { hidden: o.lastHiddenState.dataSync(), logits: o.logits!.dataSync() };
    });
    enc.dispose();
    opt.dispose();

    const { modelPath } = await exportBertOnnx(dir, config, weights, { classifier: true });
    const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: "all" });
    const B = batch.inputIds.length;
    const S = batch.inputIds[0].length;
    const i64 = (m: number[][]) => new ort.Tensor("int64", BigInt64Array.from(m.flat().map(BigInt)), [B, S]);
    const res = await session.run({
      input_ids: i64(batch.inputIds),
      attention_mask: i64(batch.attentionMask),
      token_type_ids: i64(batch.tokenTypeIds),
    });
    await session.release();
    expect(maxAbsDiff(tfOut.hidden, res.last_hidden_state.data as Float32Array)).toBeLessThan(1e-4);
    expect(maxAbsDiff(tfOut.logits, res.logits.data as Float32Array)).toBeLessThan(1e-4);
  });
});

describe("BertEncoderTF weights, pooling, dropout and errors", () => {
  it("fromWeights → toWeights returns the same tensors bit for bit, in torch layout", async () => {
    await selectBackend({ prefer: "cpu", log: false });
    const config = tinyBertConfig();
    const weights = testWeights(config, { pooler: true });
    const enc = BertEncoderTF.fromWeights(config, weights);
    const back = await enc.toWeights();
    enc.dispose();
    expect([...back.keys()].sort()).toEqual([...weights.keys()].sort());
    for (const [name, t] of weights) {
      expect(back.get(name)!.shape).toEqual(t.shape);
      expect(maxAbsDiff(back.get(name)!.data, t.data)).toBe(0);
    }
  });

  it("mean pooling averages only unmasked tokens", async () => {
    const { tf } = await selectBackend({ prefer: "cpu", log: false });
    const config = tinyBertConfig();
    const enc = BertEncoderTF.fromWeights(config, testWeights(config));
    const [hidden, mean] = tf.tidy(() => [
      enc.forward(batch).lastHiddenState.arraySync() as number[][][],
      enc.encode(batch, { pooling: "mean" }).arraySync() as number[][],
    ]);
    enc.dispose();
    const H = config.hidden_size;
    for (let b = 0; b < 3; b++) {
      const n = batch.attentionMask[b].reduce((s, x) => s + x, 0);
      for (let h = 0; h < H; h++) {
        let s = 0;
        for (let t = 0; t < n; t++) s += hidden[b][t][h];
        expect(mean[b][h]).toBeCloseTo(s / n, 5);
      }
    }
  });

  it("dropout changes outputs only in training mode, and a seed makes it repeatable", async () => {
    const { tf } = await selectBackend({ prefer: "cpu", log: false });
    const config = tinyBertConfig({ hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 });
    const weights = testWeights(config);
    const run = (training: boolean, seed?: number) => {
      const enc = BertEncoderTF.fromWeights(config, weights, { seed });
      const out = tf.tidy(() => enc.encode(batch, { training }).dataSync() as Float32Array);
      enc.dispose();
      return out;
    };
    expect(maxAbsDiff(run(false), run(false))).toBe(0);
    expect(maxAbsDiff(run(true, 1), run(false))).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(run(true, 1), run(true, 1))).toBe(0);
    expect(maxAbsDiff(run(true, 1), run(true, 2))).toBeGreaterThan(1e-3);
  });

  it("throws clear errors for missing tensors, bad ids, ragged rows and use after dispose", async () => {
    await selectBackend({ prefer: "cpu", log: false });
    const config = tinyBertConfig();
    const weights = testWeights(config);
    const missing = new Map(weights);
    missing.delete("encoder.layer.1.intermediate.dense.bias");
    expect(() => BertEncoderTF.fromWeights(config, missing)).toThrow(/missing tensor 'encoder.layer.1.intermediate.dense.bias'/);
    const enc = BertEncoderTF.fromWeights(config, weights);
    expect(() => enc.forward({ inputIds: [[2, 1000]], attentionMask: [[1, 1]] })).toThrow(
      /token id 1000 is outside the vocabulary \[0, 1000\)/,
    );
    expect(() => enc.forward({ inputIds: [[2, 5], [2]], attentionMask: [[1, 1], [1]] })).toThrow(/inputIds row 1 has length 1/);
    expect(() => enc.forward({ inputIds: [[2, 5]], attentionMask: [[1, 1, 1]] })).toThrow(
      /attentionMask has shape \[1,3\] but inputIds has \[1,2\]/,
    );
    expect(() => enc.encode(batch, { pooling: "bert" })).toThrow(/pooling 'bert' needs pooler/);
    enc.dispose();
    expect(() => enc.forward(batch)).toThrow(/used after dispose/);
  });
});

import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tinyBertConfig } from "../../src/models/config.js";
import { exportBertOnnx } from "../../src/models/onnx/bert-graph.js";
import { referenceBertForward, type ReferenceBatch } from "../../src/models/reference.js";
import type { BertConfig, BertWeights } from "../../src/models/types.js";
import { randomBertWeights } from "../../src/models/weights.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "onnx-export-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A padded batch: rows of length 7, 4 and 2 (the last two padded with id 0 and mask 0). */
const PADDED: ReferenceBatch = {
  inputIds: [
    [101, 17, 230, 999, 45, 3, 102],
    [101, 64, 77, 102, 0, 0, 0],
    [101, 102, 0, 0, 0, 0, 0],
  ],
  attentionMask: [
    [1, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 0, 0, 0],
    [1, 1, 0, 0, 0, 0, 0],
  ],
  tokenTypeIds: [
    [0, 0, 0, 0, 1, 1, 1],
    [0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0],
  ],
};

function feeds(batch: ReferenceBatch): Record<string, ort.Tensor> {
  const dims = [batch.inputIds.length, batch.inputIds[0].length];
  const tensor = (rows: number[][]) => new ort.Tensor("int64", BigInt64Array.from(rows.flat().map((v) => BigInt(v))), dims);
  return { input_ids: tensor(batch.inputIds), attention_mask: tensor(batch.attentionMask), token_type_ids: tensor(batch.tokenTypeIds) };
}

async function run(
  modelPath: string,
  batch: ReferenceBatch,
  level: "all" | "disabled" = "all",
): Promise<ort.InferenceSession.OnnxValueMapType> {
  const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: level, intraOpNumThreads: 1 });
  try {
    return await session.run(feeds(batch));
  } finally {
    await session.release();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Max abs difference over the real (unpadded) token positions of [B, S, H] hidden states. */
function maxAbsDiffUnpadded(a: Float32Array, b: Float32Array, batch: ReferenceBatch, H: number): number {
  const S = batch.inputIds[0].length;
  let max = 0;
  batch.attentionMask.forEach((mask, r) =>
    mask.forEach((m, s) => {
      if (!m) return;
      for (let h = 0; h < H; h++) max = Math.max(max, Math.abs(a[(r * S + s) * H + h] - b[(r * S + s) * H + h]));
    }),
  );
  return max;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

/** Random weights with a larger init so that outputs differ clearly between tokens. */
function weightsFor(config: BertConfig, numLabels?: number): BertWeights {
  return randomBertWeights({ ...config, initializer_range: 0.2 }, { seed: 3, pooler: true, numLabels });
}

describe("exportBertOnnx", () => {
  for (const [hiddenAct, fused] of [
    ["gelu", true],
    ["gelu_new", true],
    ["gelu_pytorch_tanh", true],
    ["relu", true],
    ["gelu", false],
    ["gelu_new", false],
    ["relu", false],
  ] as const) {
    it(
      `matches the reference forward pass within 1e-4 on a padded batch (${hiddenAct}, ` +
        `${fused ? "contrib ops" : "standard ops"}, cls pooler)`,
      async () => {
        const config = tinyBertConfig({ hidden_act: hiddenAct, layer_norm_eps: 1e-5 });
        const weights = weightsFor(config);
        const { modelPath } = await exportBertOnnx(join(dir, `act-${hiddenAct}-${fused}`), config, weights, { fused });
        const out = await run(modelPath, PADDED);
        const ref = referenceBertForward(config, weights, PADDED);
        expect(out.last_hidden_state.dims).toEqual([3, 7, 32]);
        expect(maxAbsDiff(out.last_hidden_state.data as Float32Array, ref.lastHiddenState)).toBeLessThan(1e-4);
        expect(out.pooler_output.dims).toEqual([3, 32]);
        expect(maxAbsDiff(out.pooler_output.data as Float32Array, ref.cls)).toBeLessThan(1e-4);
        // Rows differ from each other (the test would be vacuous otherwise).
        expect(maxAbsDiff(ref.cls.subarray(0, 32), ref.cls.subarray(32, 64))).toBeGreaterThan(0.1);
      },
    );
  }

  it("ignores padding: a padded row gives the same vectors as the row alone", async () => {
    const config = tinyBertConfig();
    const weights = weightsFor(config);
    const { modelPath } = await exportBertOnnx(join(dir, "padding"), config, weights);
    const padded = await run(modelPath, PADDED);
    const alone = await run(modelPath, { inputIds: [[101, 64, 77, 102]], attentionMask: [[1, 1, 1, 1]], tokenTypeIds: [[0, 0, 0, 0]] });
    const paddedRow = (padded.last_hidden_state.data as Float32Array).subarray(7 * 32, 7 * 32 + 4 * 32);
    expect(maxAbsDiff(paddedRow, alone.last_hidden_state.data as Float32Array)).toBeLessThan(1e-5);
  });

  it("standard-op graphs use no com.microsoft ops; fused graphs do", async () => {
    const config = tinyBertConfig();
    const weights = weightsFor(config);
    const standard = (await readFile((await exportBertOnnx(join(dir, "plain-ops"), config, weights, { fused: false })).modelPath)).toString(
      "latin1",
    );
    const fused = (await readFile((await exportBertOnnx(join(dir, "fused-ops"), config, weights, { fused: true })).modelPath)).toString(
      "latin1",
    );
    expect(standard).not.toContain("com.microsoft");
    expect(fused).toContain("MultiHeadAttention");
    expect(fused).toContain("SkipLayerNormalization");
  });

  it("gives the BERT pooler (tanh dense) and classifier logits like the reference", async () => {
    const config = tinyBertConfig({ num_labels: 3 });
    const weights = weightsFor(config, 3);
    const ref = referenceBertForward(config, weights, PADDED);

    const pooled = await run((await exportBertOnnx(join(dir, "bert-pooler"), config, weights, { pooler: "bert" })).modelPath, PADDED);
    expect(maxAbsDiff(pooled.pooler_output.data as Float32Array, ref.bertPooled!)).toBeLessThan(1e-4);
    expect(maxAbsDiff(ref.bertPooled!, ref.cls)).toBeGreaterThan(0.1);
    expect(pooled.logits).toBeUndefined();

    const cls = await run((await exportBertOnnx(join(dir, "classifier"), config, weights, { classifier: true })).modelPath, PADDED);
    expect(cls.logits.dims).toEqual([3, 3]);
    expect(maxAbsDiff(cls.logits.data as Float32Array, ref.logits!)).toBeLessThan(1e-4);
    expect(maxAbsDiff(cls.pooler_output.data as Float32Array, ref.bertPooled!)).toBeLessThan(1e-4);
  });

  it("omits pooler_output with pooler 'none'", async () => {
    const config = tinyBertConfig();
    const { modelPath } = await exportBertOnnx(join(dir, "no-pooler"), config, weightsFor(config), { pooler: "none" });
    const session = await ort.InferenceSession.create(modelPath);
    expect(session.outputNames).toEqual(["last_hidden_state"]);
    expect(session.inputNames).toEqual(["input_ids", "attention_mask", "token_type_ids"]);
    await session.release();
  });

  it("gives the same outputs with graph optimisation 'all' and 'disabled'", async () => {
    for (const [hiddenAct, fused] of [
      ["gelu", false],
      ["gelu_new", false],
      ["gelu", true],
    ] as const) {
      const config = tinyBertConfig({ hidden_act: hiddenAct });
      const { modelPath } = await exportBertOnnx(join(dir, `opt-${hiddenAct}-${fused}`), config, weightsFor(config), { fused });
      const optimised = await run(modelPath, PADDED, "all");
      const plain = await run(modelPath, PADDED, "disabled");
      expect(maxAbsDiff(optimised.last_hidden_state.data as Float32Array, plain.last_hidden_state.data as Float32Array)).toBeLessThan(1e-5);
    }
  });

  for (const fused of [true, false]) {
    it(
      `writes an int8 quantized model whose pooled vectors stay within cosine 0.99 of fp32 ` +
        `(${fused ? "contrib ops" : "standard ops"})`,
      async () => {
        const config = tinyBertConfig({ hidden_size: 64, intermediate_size: 256 });
        const weights = randomBertWeights(config, { seed: 11 });
        const { modelPath, quantizedPath } = await exportBertOnnx(join(dir, `quantized-${fused}`), config, weights, {
          quantize: true,
          fused,
        });
        expect(quantizedPath).toBe(join(dir, `quantized-${fused}`, "model_quantized.onnx"));
        const fp32 = await run(modelPath, PADDED);
        const int8 = await run(quantizedPath!, PADDED);
        const a = fp32.pooler_output.data as Float32Array;
        const b = int8.pooler_output.data as Float32Array;
        for (let r = 0; r < 3; r++)
          expect(cosine(a.subarray(r * 64, (r + 1) * 64), b.subarray(r * 64, (r + 1) * 64))).toBeGreaterThan(0.99);
        // Stated tolerance: max abs error of hidden states below 0.05 (LayerNorm outputs are O(1)).
        const err = maxAbsDiffUnpadded(
          fp32.last_hidden_state.data as Float32Array,
          int8.last_hidden_state.data as Float32Array,
          PADDED,
          64,
        );
        expect(err).toBeLessThan(0.05);
        expect(err).toBeGreaterThan(0); // it really is a different (quantized) graph
        // int8 weights make the data file smaller.
        const fpBytes = (await stat(join(dir, `quantized-${fused}`, "model.onnx.data"))).size;
        const q8Bytes = (await stat(join(dir, `quantized-${fused}`, "model_quantized.onnx.data"))).size;
        expect(q8Bytes).toBeLessThan(fpBytes);
      },
    );
  }

  it("re-exporting into the same folder leaves one loadable model and no temp files", async () => {
    const config = tinyBertConfig();
    const target = join(dir, "twice");
    await exportBertOnnx(target, config, weightsFor(config));
    const second = randomBertWeights({ ...config, initializer_range: 0.2 }, { seed: 99 });
    const { modelPath } = await exportBertOnnx(target, config, second);
    expect((await readdir(target)).sort()).toEqual(["model.onnx", "model.onnx.data"]);
    const out = await run(modelPath, PADDED);
    const ref = referenceBertForward(config, second, PADDED);
    expect(maxAbsDiff(out.last_hidden_state.data as Float32Array, ref.lastHiddenState)).toBeLessThan(1e-4);
  });

  it("fails at run time, never silently, on sequences longer than max_position_embeddings or bad token ids", async () => {
    const config = tinyBertConfig({ max_position_embeddings: 8 });
    const { modelPath } = await exportBertOnnx(join(dir, "too-long"), config, weightsFor(config));
    const long = Array.from({ length: 9 }, (_, i) => 101 + i);
    const ones = long.map(() => 1);
    const zeros = long.map(() => 0);
    await expect(run(modelPath, { inputIds: [long], attentionMask: [ones], tokenTypeIds: [zeros] })).rejects.toThrow(
      /embeddings\/Add_position/,
    );
    await expect(run(modelPath, { inputIds: [[101, 5000]], attentionMask: [[1, 1]], tokenTypeIds: [[0, 0]] })).rejects.toThrow(
      /embeddings\/word\/Gather.*out of data bounds/,
    );
  });

  it("rejects inconsistent weights and options with clear errors", async () => {
    const config = tinyBertConfig();
    const noPooler = randomBertWeights(config);
    await expect(exportBertOnnx(join(dir, "bad"), config, noPooler, { pooler: "bert" })).rejects.toThrow(
      "exportBertOnnx: pooler 'bert' needs tensors 'pooler.dense.weight' and 'pooler.dense.bias'",
    );
    await expect(exportBertOnnx(join(dir, "bad"), config, noPooler, { classifier: true, pooler: "cls" })).rejects.toThrow(
      /classifier: true needs the BERT pooler/,
    );
    await expect(exportBertOnnx(join(dir, "bad"), tinyBertConfig({ vocab_size: 500 }), noPooler)).rejects.toThrow(
      /vocab_size 500 in config.json but embeddings.word_embeddings.weight has 1000 rows/,
    );
    await expect(exportBertOnnx(join(dir, "bad"), config, noPooler, { fileName: "../x.onnx" })).rejects.toThrow(
      /plain file name ending in \.onnx/,
    );
  });
});

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportCheckpointToOnnx, readBertCheckpoint } from "../../src/models/checkpoint.js";
import { tinyBertConfig } from "../../src/models/config.js";
import { referenceBertForward } from "../../src/models/reference.js";
import { writeSafetensors } from "../../src/models/safetensors.js";
import type { BertWeights } from "../../src/models/types.js";
import { randomBertWeights } from "../../src/models/weights.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "checkpoint-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("BERT checkpoints", () => {
  it("exports a DPR-style safetensors checkpoint (question_encoder.bert_model.*) that runs like the reference", async () => {
    const config = tinyBertConfig({ vocab_size: 300, initializer_range: 0.2 });
    const weights = randomBertWeights(config, { seed: 5 });
    const prefixed: BertWeights = new Map([...weights].map(([name, t]) => [`question_encoder.bert_model.${name}`, t]));
    const src = join(dir, "dpr-question");
    await expect(exportCheckpointToOnnx(join(dir, "missing"), src)).rejects.toThrow(/readBertConfig: cannot read .*missing.*config\.json/);
    await mkdir(src, { recursive: true });
    await writeFile(join(src, "config.json"), JSON.stringify(config));
    await writeSafetensors(join(src, "model.safetensors"), prefixed, { format: "pt" });

    const loaded = await readBertCheckpoint(src);
    expect(loaded.metadata).toEqual({ format: "pt" });
    expect(loaded.weights.has("embeddings.word_embeddings.weight")).toBe(true);

    const { modelPath } = await exportCheckpointToOnnx(src, join(dir, "onnx"));
    const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: "all" });
    const ids = [
      [101, 7, 8, 9, 102],
      [101, 250, 102, 0, 0],
    ];
    const mask = [
      [1, 1, 1, 1, 1],
      [1, 1, 1, 0, 0],
    ];
    const types = [
      [0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0],
    ];
    const t = (rows: number[][]) => new ort.Tensor("int64", BigInt64Array.from(rows.flat().map(BigInt)), [2, 5]);
    const out = await session.run({ input_ids: t(ids), attention_mask: t(mask), token_type_ids: t(types) });
    await session.release();
    const ref = referenceBertForward(config, weights, { inputIds: ids, attentionMask: mask, tokenTypeIds: types });
    const pooled = out.pooler_output.data as Float32Array;
    let max = 0;
    for (let i = 0; i < pooled.length; i++) max = Math.max(max, Math.abs(pooled[i] - ref.cls[i]));
    expect(max).toBeLessThan(1e-4);
  });

  it("rejects a checkpoint whose config does not match its weights, naming the file", async () => {
    const src = join(dir, "mismatch");
    await mkdir(src, { recursive: true });
    await writeFile(join(src, "config.json"), JSON.stringify(tinyBertConfig({ vocab_size: 400 })));
    await writeSafetensors(join(src, "model.safetensors"), randomBertWeights(tinyBertConfig({ vocab_size: 300 })));
    await expect(readBertCheckpoint(src)).rejects.toThrow(
      /mismatch\/model\.safetensors\): vocab_size 400 in config.json but embeddings\.word_embeddings\.weight has 300 rows/,
    );
  });
});

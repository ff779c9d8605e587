import { describe, expect, it } from "vitest";
import { tinyBertConfig } from "../../src/models/config.js";
import { canonicalizeBertWeights, expectedBertWeightShapes, randomBertWeights, validateBertWeights } from "../../src/models/weights.js";
import type { BertWeights, NamedTensor } from "../../src/models/types.js";

const t = (shape: number[]): NamedTensor => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });

describe("BERT weights", () => {
  it("random weights follow BERT's init and are deterministic per seed", () => {
    const config = tinyBertConfig({ initializer_range: 0.05 });
    const a = randomBertWeights(config, { seed: 7 });
    const b = randomBertWeights(config, { seed: 7 });
    const c = randomBertWeights(config, { seed: 8 });
    const word = a.get("embeddings.word_embeddings.weight")!.data;
    expect(Array.from(word)).toEqual(Array.from(b.get("embeddings.word_embeddings.weight")!.data));
    expect(Array.from(word.subarray(0, 10))).not.toEqual(Array.from(c.get("embeddings.word_embeddings.weight")!.data.subarray(0, 10)));
    const mean = word.reduce((s, v) => s + v, 0) / word.length;
    const std = Math.sqrt(word.reduce((s, v) => s + (v - mean) ** 2, 0) / word.length);
    expect(Math.abs(mean)).toBeLessThan(0.002);
    expect(std).toBeGreaterThan(0.048);
    expect(std).toBeLessThan(0.052);
    expect(a.get("encoder.layer.1.output.LayerNorm.weight")!.data.every((v) => v === 1)).toBe(true);
    expect(a.get("encoder.layer.1.output.LayerNorm.bias")!.data.every((v) => v === 0)).toBe(true);
    expect(a.get("encoder.layer.0.attention.self.query.bias")!.data.every((v) => v === 0)).toBe(true);
    expect(a.has("pooler.dense.weight")).toBe(false);
    const cls = randomBertWeights(config, { numLabels: 3 });
    expect(cls.get("classifier.weight")!.shape).toEqual([3, 32]);
    expect(cls.get("pooler.dense.weight")!.shape).toEqual([32, 32]);
    expect(() => validateBertWeights(config, cls, "random")).not.toThrow();
  });

  it("canonicalizes DPR question/context encoder names", () => {
    const raw: BertWeights = new Map([
      ["question_encoder.bert_model.embeddings.word_embeddings.weight", t([2, 2])],
      ["question_encoder.bert_model.encoder.layer.0.attention.self.query.weight", t([2, 2])],
      ["question_encoder.bert_model.embeddings.position_ids", t([1, 4])],
    ]);
    expect([...canonicalizeBertWeights(raw).keys()]).toEqual([
      "embeddings.word_embeddings.weight",
      "encoder.layer.0.attention.self.query.weight",
    ]);
    const ctx: BertWeights = new Map([["ctx_encoder.bert_model.pooler.dense.bias", t([2])]]);
    expect([...canonicalizeBertWeights(ctx).keys()]).toEqual(["pooler.dense.bias"]);
  });

  it("canonicalizes bert-base-uncased checkpoints: bert. prefix, gamma/beta, drops MLM heads, keeps classifier", () => {
    const raw: BertWeights = new Map([
      ["bert.embeddings.LayerNorm.gamma", t([2])],
      ["bert.embeddings.LayerNorm.beta", t([2])],
      ["bert.encoder.layer.3.output.LayerNorm.gamma", t([2])],
      ["cls.predictions.bias", t([5])],
      ["cls.seq_relationship.weight", t([2, 2])],
      ["classifier.weight", t([1, 2])],
      ["classifier.bias", t([1])],
    ]);
    expect([...canonicalizeBertWeights(raw).keys()].sort()).toEqual([
      "classifier.bias",
      "classifier.weight",
      "embeddings.LayerNorm.bias",
      "embeddings.LayerNorm.weight",
      "encoder.layer.3.output.LayerNorm.weight",
    ]);
    const clash: BertWeights = new Map([
      ["bert.embeddings.LayerNorm.weight", t([2])],
      ["embeddings.LayerNorm.gamma", t([2])],
    ]);
    expect(() => canonicalizeBertWeights(clash)).toThrow(/both map to 'embeddings\.LayerNorm\.weight'/);
  });

  it("throws when the vocabulary in config.json and the embedding rows differ", () => {
    const config = tinyBertConfig({ vocab_size: 30522 });
    const weights = randomBertWeights(tinyBertConfig({ vocab_size: 30000 }));
    expect(() => validateBertWeights(config, weights, "ckpt/model.safetensors")).toThrow(
      "validateBertWeights (ckpt/model.safetensors): vocab_size 30522 in config.json but embeddings.word_embeddings.weight has 30000 rows",
    );
  });

  it("throws naming missing tensors, wrong shapes and layer count mismatches", () => {
    const config = tinyBertConfig();
    const missing = randomBertWeights(config);
    missing.delete("encoder.layer.1.intermediate.dense.bias");
    expect(() => validateBertWeights(config, missing, "m")).toThrow(
      "validateBertWeights (m): missing tensor 'encoder.layer.1.intermediate.dense.bias' (expected shape [64])",
    );
    const wrong = randomBertWeights(config);
    wrong.set("encoder.layer.0.output.dense.weight", t([64, 32]));
    expect(() => validateBertWeights(config, wrong, "m")).toThrow(
      "tensor 'encoder.layer.0.output.dense.weight' has shape [64, 32], expected [32, 64] from config.json",
    );
    expect(() => validateBertWeights(tinyBertConfig({ num_hidden_layers: 1 }), randomBertWeights(config), "m")).toThrow(
      /num_hidden_layers 1 in config.json but the weights have more layers/,
    );
    expect(() => validateBertWeights(tinyBertConfig({ num_hidden_layers: 3 }), randomBertWeights(config), "m")).toThrow(
      /encoder\.layer\.2\.\* is missing/,
    );
    expect(expectedBertWeightShapes(config).size).toBe(5 + 2 * 16);
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tinyBertConfig } from "../../src/models/config.js";
import { createRandomDPRModel } from "../../src/testing/index.js";
import { writeSafetensors } from "../../src/models/safetensors.js";
import { randomBertWeights } from "../../src/models/weights.js";
import type { BertWeights } from "../../src/models/types.js";
import { loadInitialModel, scratchModel } from "../../src/training/init.js";
import { BertTokenizer } from "../../src/tokenizers/bert-tokenizer.js";
import { buildWordPieceVocab } from "../../src/tokenizers/vocab.js";

let dir: string;
const texts = ["vitamin c prevents scurvy", "aspirin and heart attacks", "cells divide by mitosis"];
const config = tinyBertConfig({ vocab_size: 100 });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "train-init-"));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function prefixed(w: BertWeights, prefix: string): BertWeights {
  return new Map([...w].map(([k, v]) => [prefix + k, v]));
}

describe("loadInitialModel", () => {
  it(
    "reads a facebook/dpr-* style checkpoint (question_encoder.bert_model.* names) and a bert-base-uncased style one " +
      "(bert.* names, MLM head dropped)",
    async () => {
      const weights = randomBertWeights(config, { seed: 3 });
      const tok = BertTokenizer.fromVocab(buildWordPieceVocab(texts, { vocabSize: 100 }));
      for (const [name, tensors] of [
        ["dpr", prefixed(weights, "question_encoder.bert_model.")],
        ["bert", new Map([...prefixed(weights, "bert."), ["cls.predictions.bias", { shape: [100], data: new Float32Array(100) }]])],
      ] as const) {
        const d = join(dir, name);
        await mkdir(d, { recursive: true });
        await writeFile(join(d, "config.json"), JSON.stringify({ ...config, model_type: name === "dpr" ? "dpr" : "bert" }));
        await writeSafetensors(join(d, "model.safetensors"), tensors as BertWeights);
        await tok.save(d);
        for (const path of [d, join(d, "model.safetensors")]) {
          const init = await loadInitialModel(path);
          expect(init.passage).toBeUndefined();
          expect(init.tokenizer.vocabSize).toBe(100);
          expect([...init.question.keys()].sort()).toEqual([...weights.keys()].sort());
          const w = init.question.get("encoder.layer.1.attention.self.key.weight")!;
          expect([...w.data]).toEqual([...weights.get("encoder.layer.1.attention.self.key.weight")!.data]);
        }
      }
    },
  );

  it("reads both encoders of a model folder of ours", async () => {
    const d = join(dir, "ours");
    await createRandomDPRModel(d, { shape: "tiny", texts, vocabSize: 120, seed: 5 });
    const init = await loadInitialModel(d);
    expect(init.passage).toBeDefined();
    const name = "encoder.layer.0.output.dense.weight";
    expect([...init.question.get(name)!.data]).not.toEqual([...init.passage!.get(name)!.data]);
    expect(init.config.vocab_size).toBe(120);
  });

  it("names what is missing: no folder, an ONNX-only encoder, a file that is not a weights file", async () => {
    await expect(loadInitialModel(join(dir, "nope"))).rejects.toThrow(
      /training init: .*nope does not exist \(and is not a hub id like owner\/name\)/,
    );
    const d = join(dir, "onnx-only");
    await createRandomDPRModel(d, { shape: "tiny", texts, vocabSize: 120, shared: true, safetensors: false });
    await expect(loadInitialModel(d)).rejects.toThrow(
      /has no weights \(looked for model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json\); an ONNX-only folder cannot be read as weights/,
    );
    await writeFile(join(dir, "weights.bin"), "x");
    await expect(loadInitialModel(join(dir, "weights.bin"))).rejects.toThrow(
      /expected a model folder or a weights file named model.safetensors, pytorch_model.bin/,
    );
  });
});

describe("scratchModel", () => {
  it("learns an exact-size WordPiece vocabulary from the corpus and sets the config's shape", () => {
    const { config: c, tokenizer } = scratchModel({ hidden: 64, layers: 3, heads: 4, ffn: 128, maxLen: 96, vocabSize: 200, texts });
    expect(c).toMatchObject({
      vocab_size: 200,
      hidden_size: 64,
      num_hidden_layers: 3,
      num_attention_heads: 4,
      intermediate_size: 128,
      max_position_embeddings: 96,
    });
    expect(tokenizer.vocabSize).toBe(200);
    expect(tokenizer.tokenize("scurvy")).not.toContain("[UNK]");
    expect(() => scratchModel({ hidden: 30, layers: 1, heads: 4, ffn: 8, maxLen: 8, vocabSize: 50, texts })).toThrow(
      /hidden_size|multiple/,
    );
  });
});

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BERT_BASE_CONFIG, MINILM_L6_CONFIG, parseBertConfig, readBertConfig, tinyBertConfig } from "../../src/models/config.js";

describe("BERT config", () => {
  it("parses a bert-base-uncased style config.json and fills defaults", () => {
    const config = parseBertConfig(
      { ...BERT_BASE_CONFIG, layer_norm_eps: undefined, hidden_act: undefined, architectures: ["BertModel"], id2label: { 0: "a", 1: "b" } },
      "test",
    );
    expect(config.hidden_size).toBe(768);
    expect(config.layer_norm_eps).toBe(1e-12);
    expect(config.hidden_act).toBe("gelu");
    expect(config.num_labels).toBe(2);
    expect(config.architectures).toEqual(["BertModel"]);
  });

  it("throws naming the source and the missing key", () => {
    const { hidden_size: _omit, ...rest } = BERT_BASE_CONFIG;
    expect(() => parseBertConfig(rest, "models/q/config.json")).toThrow(
      "config.json (models/q/config.json): missing required key 'hidden_size'",
    );
  });

  it("throws on an unsupported hidden_act listing the supported ones", () => {
    expect(() => parseBertConfig({ ...BERT_BASE_CONFIG, hidden_act: "swish" }, "x")).toThrow(
      "config.json (x): hidden_act 'swish' is not supported; expected one of gelu, gelu_new, gelu_pytorch_tanh, relu",
    );
  });

  it("throws on wrong types and on heads that do not divide the hidden size", () => {
    expect(() => parseBertConfig({ ...BERT_BASE_CONFIG, vocab_size: "30522" }, "x")).toThrow(
      /'vocab_size' must be a positive integer, got "30522"/,
    );
    expect(() => parseBertConfig({ ...BERT_BASE_CONFIG, num_attention_heads: 7 }, "x")).toThrow(
      /hidden_size 768 is not divisible by num_attention_heads 7/,
    );
    expect(() => parseBertConfig([1, 2], "x")).toThrow(/expected a JSON object, got an array/);
    expect(() => parseBertConfig({ ...BERT_BASE_CONFIG, layer_norm_eps: -1 }, "x")).toThrow(/'layer_norm_eps' must be a positive number/);
  });

  it("reads config files and reports invalid JSON with the path", async () => {
    const dir = await mkdtemp(join(tmpdir(), "config-test-"));
    try {
      await writeFile(join(dir, "config.json"), JSON.stringify(MINILM_L6_CONFIG));
      expect((await readBertConfig(join(dir, "config.json"))).intermediate_size).toBe(1536);
      await writeFile(join(dir, "broken.json"), "{ not json");
      await expect(readBertConfig(join(dir, "broken.json"))).rejects.toThrow(/broken\.json\): not valid JSON/);
      await expect(readBertConfig(join(dir, "absent.json"))).rejects.toThrow(/readBertConfig: cannot read .*absent\.json/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("builds tiny configs with overrides and validates them", () => {
    expect(tinyBertConfig({ vocab_size: 77 })).toMatchObject({
      vocab_size: 77,
      hidden_size: 32,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      intermediate_size: 64,
      max_position_embeddings: 128,
    });
    expect(() => tinyBertConfig({ num_attention_heads: 5 })).toThrow(/not divisible/);
  });
});

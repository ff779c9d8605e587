import { cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Document } from "@langchain/core/documents";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { referenceBertForward } from "../../src/models/reference.js";
import type { BertConfig, BertWeights } from "../../src/models/types.js";
import { OnnxSession } from "../../src/runtime/onnx-session.js";
import type { BertTokenizer } from "../../src/tokenizers/bert-tokenizer.js";
import { TEXTS, editOnnxGraph, makeTinyDPR, makeTinyEncoder, removeDir, type TinyDPR } from "./fixtures.js";

/** CLS vector of the reference forward pass for one encoding. */
function referenceCls(
  config: BertConfig,
  weights: BertWeights,
  enc: { inputIds: number[]; attentionMask: number[]; tokenTypeIds: number[] },
): Float32Array {
  return referenceBertForward(config, weights, {
    inputIds: [enc.inputIds],
    attentionMask: [enc.attentionMask],
    tokenTypeIds: [enc.tokenTypeIds],
  }).cls;
}

function referenceMean(
  config: BertConfig,
  weights: BertWeights,
  enc: { inputIds: number[]; attentionMask: number[]; tokenTypeIds: number[] },
): Float32Array {
  const out = referenceBertForward(config, weights, {
    inputIds: [enc.inputIds],
    attentionMask: [enc.attentionMask],
    tokenTypeIds: [enc.tokenTypeIds],
  });
  const [, S, H] = out.shape;
  const mean = new Float32Array(H);
  for (let j = 0; j < S; j++) for (let k = 0; k < H; k++) mean[k]! += out.lastHiddenState[j * H + k]! / S;
  return mean;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0,
    na = 0,
    nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return d / Math.sqrt(na * nb);
}

let model: TinyDPR;
let tok: BertTokenizer;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "dpr-emb-test-"));
  model = await makeTinyDPR({ quantize: true, root });
  tok = model.tokenizer;
});

afterAll(async () => {
  await removeDir(root);
});

describe("DPREmbeddings encodes with the reference forward pass's numbers", () => {
  let emb: DPREmbeddings;
  beforeAll(() => {
    emb = new DPREmbeddings({ modelPath: model.dir });
  });
  afterAll(async () => {
    await emb.dispose();
  });

  it("embedQuery equals the question encoder's reference CLS vector within 1e-4", async () => {
    const q = TEXTS[0]!;
    const v = await emb.embedQuery(q);
    const ref = referenceCls(model.config, model.questionWeights, tok.encode(q, null, { maxLength: 64 }));
    expect(v).toHaveLength(model.config.hidden_size);
    expect(maxAbsDiff(v, ref)).toBeLessThan(1e-4);
  });

  it("embedDocuments uses the passage encoder, so the same text gets a different vector than embedQuery", async () => {
    const text = TEXTS[1]!;
    const [p] = await emb.embedDocuments([text]);
    const q = await emb.embedQuery(text);
    const enc = tok.encode(text, null, { maxLength: 256 });
    expect(maxAbsDiff(p!, referenceCls(model.config, model.passageWeights, enc))).toBeLessThan(1e-4);
    expect(maxAbsDiff(q, referenceCls(model.config, model.questionWeights, enc))).toBeLessThan(1e-4);
    expect(maxAbsDiff(p!, q)).toBeGreaterThan(0.1);
  });

  it("a title changes the passage vector and matches [CLS] title [SEP] text [SEP] with token types 0/1", async () => {
    const title = "Scurvy";
    const text = TEXTS[1]!;
    const [withTitle, without] = await emb.embedPassages([{ title, text }, { text }]);
    const enc = tok.encode(title, text, { maxLength: 256 });
    expect(enc.tokenTypeIds).toContain(1);
    expect(maxAbsDiff(withTitle!, referenceCls(model.config, model.passageWeights, enc))).toBeLessThan(1e-4);
    expect(maxAbsDiff(withTitle!, without!)).toBeGreaterThan(0.1);
    const [fromDoc] = await emb.embedDocumentsWithTitles([new Document({ pageContent: text, metadata: { title } })]);
    expect(maxAbsDiff(fromDoc!, withTitle!)).toBeLessThan(1e-6);
  });

  it("length-sorted batches return vectors in input order, equal to one-by-one encoding", async () => {
    const small = new DPREmbeddings({ modelPath: model.dir, batchSize: 3 });
    const shuffled = [TEXTS[7]!, TEXTS[2]!, "", TEXTS[8]!, TEXTS[9]!, TEXTS[0]!, TEXTS[4]!, TEXTS[3]!];
    try {
      const batched = await small.embedDocuments(shuffled);
      for (let i = 0; i < shuffled.length; i++) {
        const [single] = await small.embedDocuments([shuffled[i]!]);
        expect(maxAbsDiff(batched[i]!, single!)).toBeLessThan(1e-5);
      }
      const naive = new DPREmbeddings({ modelPath: model.dir, batchSize: 3, sortByLength: false });
      const unsorted = await naive.embedDocuments(shuffled);
      for (let i = 0; i < shuffled.length; i++) expect(maxAbsDiff(unsorted[i]!, batched[i]!)).toBeLessThan(1e-5);
      await naive.dispose();
    } finally {
      await small.dispose();
    }
  });

  it("truncates an over-long passage to maxPassageLength tokens instead of failing", async () => {
    const long = Array.from({ length: 200 }, () => TEXTS[3]!).join(" ");
    const short = new DPREmbeddings({ modelPath: model.dir, maxPassageLength: 40 });
    try {
      const [v] = await short.embedDocuments([long]);
      const enc = tok.encode(long, null, { maxLength: 40 });
      expect(enc.inputIds).toHaveLength(40);
      expect(maxAbsDiff(v!, referenceCls(model.config, model.passageWeights, enc))).toBeLessThan(1e-4);
    } finally {
      await short.dispose();
    }
  });

  it("embeds an empty string as [CLS] [SEP]", async () => {
    const v = await emb.embedQuery("");
    const enc = { inputIds: [tok.clsId, tok.sepId], attentionMask: [1, 1], tokenTypeIds: [0, 0] };
    expect(maxAbsDiff(v, referenceCls(model.config, model.questionWeights, enc))).toBeLessThan(1e-4);
  });

  it("Float32Array variants hold the same numbers as the number[] API", async () => {
    const m = await emb.embedPassagesMatrix([{ text: TEXTS[2]! }, { title: "Liver", text: TEXTS[9]! }]);
    expect(m.count).toBe(2);
    expect(m.dim).toBe(model.config.hidden_size);
    expect(m.data).toHaveLength(2 * m.dim);
    const rows = await emb.embedPassages([{ text: TEXTS[2]! }, { title: "Liver", text: TEXTS[9]! }]);
    expect(maxAbsDiff(m.data.subarray(m.dim), rows[1]!)).toBe(0);
    const qv = await emb.embedQueryVector(TEXTS[5]!);
    expect(qv).toBeInstanceOf(Float32Array);
    expect(maxAbsDiff(qv, await emb.embedQuery(TEXTS[5]!))).toBe(0);
    expect(await emb.dimension()).toBe(model.config.hidden_size);
  });

  it("normalize: true gives unit vectors with the reference direction; mean pooling averages the tokens", async () => {
    const norm = new DPREmbeddings({ modelPath: model.dir, normalize: true, pooling: "mean" });
    try {
      const q = TEXTS[5]!;
      const v = await norm.embedQuery(q);
      const len = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
      expect(Math.abs(len - 1)).toBeLessThan(1e-5);
      const ref = referenceMean(model.config, model.questionWeights, tok.encode(q, null, { maxLength: 64 }));
      expect(cosine(v, ref)).toBeGreaterThan(1 - 1e-5);
      const refCls = referenceCls(model.config, model.questionWeights, tok.encode(q, null, { maxLength: 64 }));
      expect(cosine(v, refCls)).toBeLessThan(0.999);
    } finally {
      await norm.dispose();
    }
  });

  it("concurrent first calls create one session per encoder", async () => {
    const spy = vi.spyOn(OnnxSession, "create");
    const fresh = new DPREmbeddings({ modelPath: model.dir });
    try {
      await Promise.all([fresh.embedQuery("a"), fresh.embedQuery("b"), fresh.embedDocuments(["c"]), fresh.embedDocuments(["d"])]);
      expect(spy).toHaveBeenCalledTimes(2);
      await fresh.dispose();
      await fresh.embedQuery("after dispose the sessions reload");
      expect(spy).toHaveBeenCalledTimes(4);
    } finally {
      spy.mockRestore();
      await fresh.dispose();
    }
  });

  it("quantized: true runs model_quantized.onnx with cosine > 0.99 to fp32", async () => {
    const q8 = new DPREmbeddings({ modelPath: model.dir, quantized: true });
    try {
      const a = await q8.embedDocuments(TEXTS.slice(0, 4));
      const b = await emb.embedDocuments(TEXTS.slice(0, 4));
      for (let i = 0; i < 4; i++) {
        expect(cosine(a[i]!, b[i]!)).toBeGreaterThan(0.99);
        expect(maxAbsDiff(a[i]!, b[i]!)).toBeGreaterThan(0); // really a different graph
      }
      const { passage } = await q8.getEncoders();
      expect((await passage.describe()).modelPath).toMatch(/model_quantized\.onnx$/);
    } finally {
      await q8.dispose();
    }
  });
});

describe("DPREmbeddings settings", () => {
  it("dpr_config.json settings apply unless params override them", async () => {
    const dir = join(root, "configured");
    await cp(model.dir, dir, { recursive: true });
    await writeFile(join(dir, "dpr_config.json"), JSON.stringify({ normalize: true, max_query_length: 8, title_join: "none" }));
    const fromFile = new DPREmbeddings({ modelPath: dir });
    const overridden = new DPREmbeddings({ modelPath: dir, normalize: false, maxQueryLength: 16 });
    try {
      const v = await fromFile.embedQuery(TEXTS[7]!);
      expect(fromFile.normalize).toBe(true);
      expect(fromFile.maxQueryLength).toBe(8);
      expect(Math.abs(Math.hypot(...v) - 1)).toBeLessThan(1e-5);
      const ref = referenceCls(model.config, model.questionWeights, tok.encode(TEXTS[7]!, null, { maxLength: 8 }));
      expect(cosine(v, ref)).toBeGreaterThan(1 - 1e-5);
      const [titled, plain] = await fromFile.embedPassages([{ title: "Aspirin", text: TEXTS[6]! }, { text: TEXTS[6]! }]);
      expect(maxAbsDiff(titled!, plain!)).toBe(0);

      await overridden.ready();
      expect(overridden.normalize).toBe(false);
      expect(overridden.maxQueryLength).toBe(16);
      expect(overridden.titleJoin).toBe("none");
    } finally {
      await fromFile.dispose();
      await overridden.dispose();
    }
  });

  it("throws when constructed without a model path or with half a pair", () => {
    expect(() => new DPREmbeddings({})).toThrow(/DPREmbeddings: pass modelPath/);
    expect(() => new DPREmbeddings({ questionEncoderPath: "x" })).toThrow(/must be given together/);
    expect(() => new DPREmbeddings({ modelPath: "x", batchSize: 0 })).toThrow(/batchSize must be an integer >= 1, got 0/);
  });

  it("throws when an explicit max length exceeds max_position_embeddings, and fits the default to it", async () => {
    const emb = new DPREmbeddings({ modelPath: model.dir, maxPassageLength: 512 });
    await expect(emb.ready()).rejects.toThrow(
      /DPREmbeddings: maxPassageLength 512 exceeds max_position_embeddings 128 in .*passage_encoder\/config.json/,
    );
    const fitted = new DPREmbeddings({ modelPath: model.dir });
    await fitted.ready();
    expect(fitted.maxPassageLength).toBe(128);
    await fitted.dispose();
  });

  it("throws a clear error for a non-string query", async () => {
    const emb = new DPREmbeddings({ modelPath: model.dir });
    await expect(emb.embedQuery(42 as unknown as string)).rejects.toThrow(/DPREmbeddings: query must be a string, got number/);
  });

  it("asks for cuda by name and fails clearly when this build cannot run it", async () => {
    const emb = new DPREmbeddings({ modelPath: model.dir, executionProviders: ["cuda"] });
    // On a machine with onnxruntime-node's CUDA libraries and a GPU this loads; elsewhere it must name cuda.
    const result = await emb.embedQuery("x").then(
      (v) => ({ ok: true as const, v }),
      (e: Error) => ({ ok: false as const, e }),
    );
    if (result.ok) expect(result.v).toHaveLength(model.config.hidden_size);
    else expect(result.e.message).toMatch(/DPREmbeddings: execution provider .*cuda/);
    await emb.dispose();
  });
});

describe("model folder layouts", () => {
  it("loads a shared encoder/ folder and a bare encoder folder, using one encoder for both sides", async () => {
    const enc = join(root, "shared", "encoder");
    const parts = await makeTinyEncoder(enc);
    for (const modelPath of [join(root, "shared"), enc]) {
      const spy = vi.spyOn(OnnxSession, "create");
      const emb = new DPREmbeddings({ modelPath });
      try {
        const q = await emb.embedQuery(TEXTS[0]!);
        const [p] = await emb.embedDocuments([TEXTS[0]!]);
        expect(maxAbsDiff(q, p!)).toBe(0);
        expect(
          maxAbsDiff(q, referenceCls(parts.config, parts.weights, parts.tokenizer.encode(TEXTS[0]!, null, { maxLength: 64 }))),
        ).toBeLessThan(1e-4);
        expect(spy).toHaveBeenCalledTimes(1);
      } finally {
        spy.mockRestore();
        await emb.dispose();
      }
    }
  });

  it("loads questionEncoderPath + passageEncoderPath and transformers.js's onnx/model.onnx placement", async () => {
    const q = join(root, "pair", "q");
    const p = join(root, "pair", "p");
    await cp(join(model.dir, "question_encoder"), q, { recursive: true });
    await cp(join(model.dir, "passage_encoder"), p, { recursive: true });
    await mkdir(join(p, "onnx"));
    await rename(join(p, "model.onnx"), join(p, "onnx", "model.onnx"));
    await rename(join(p, "model.onnx.data"), join(p, "onnx", "model.onnx.data"));
    const emb = new DPREmbeddings({ questionEncoderPath: q, passageEncoderPath: p });
    const ref = new DPREmbeddings({ modelPath: model.dir });
    try {
      expect(maxAbsDiff(await emb.embedQuery(TEXTS[5]!), await ref.embedQuery(TEXTS[5]!))).toBe(0);
      expect(maxAbsDiff((await emb.embedDocuments([TEXTS[4]!]))[0]!, (await ref.embedDocuments([TEXTS[4]!]))[0]!)).toBe(0);
    } finally {
      await emb.dispose();
      await ref.dispose();
    }
  });

  it("loads HF-style exports: only pooler_output, no token_type_ids input", async () => {
    const dir = join(root, "hf-export");
    await cp(join(model.dir, "passage_encoder"), dir, { recursive: true });
    await editOnnxGraph(join(dir, "model.onnx"), join(dir, "model.onnx"), { dropOutputs: ["last_hidden_state"], dropTokenTypeIds: true });
    const emb = new DPREmbeddings({ questionEncoderPath: dir, passageEncoderPath: dir });
    try {
      const { passage } = await emb.getEncoders();
      expect(await passage.describe()).toMatchObject({ inputs: ["input_ids", "attention_mask"], outputs: ["pooler_output"] });
      const texts = [TEXTS[8]!, TEXTS[1]!, TEXTS[7]!];
      const got = await emb.embedDocuments(texts);
      for (let i = 0; i < texts.length; i++) {
        const ref = referenceCls(model.config, model.passageWeights, tok.encode(texts[i]!, null, { maxLength: 256 }));
        expect(maxAbsDiff(got[i]!, ref)).toBeLessThan(1e-4);
      }
      const mean = new DPREmbeddings({ questionEncoderPath: dir, passageEncoderPath: dir, pooling: "mean" });
      await expect(mean.embedQuery("x")).rejects.toThrow(/pooling 'mean' needs a last_hidden_state output/);
      await mean.dispose();
    } finally {
      await emb.dispose();
    }
  });

  it("feeds int32 tensors to a graph whose inputs are int32 (TF-style export)", async () => {
    const dir = join(root, "int32");
    await cp(join(model.dir, "passage_encoder"), dir, { recursive: true });
    await editOnnxGraph(join(dir, "model.onnx"), join(dir, "model.onnx"), { int32Inputs: true });
    const emb = new DPREmbeddings({ modelPath: dir });
    try {
      const texts = [TEXTS[9]!, TEXTS[0]!];
      const got = await emb.embedPassages([{ title: "Liver", text: texts[0]! }, { text: texts[1]! }]);
      expect(
        maxAbsDiff(got[0]!, referenceCls(model.config, model.passageWeights, tok.encode("Liver", texts[0]!, { maxLength: 256 }))),
      ).toBeLessThan(1e-4);
      expect(
        maxAbsDiff(got[1]!, referenceCls(model.config, model.passageWeights, tok.encode(texts[1]!, null, { maxLength: 256 }))),
      ).toBeLessThan(1e-4);
    } finally {
      await emb.dispose();
    }
  });

  it("throws naming the inputs when the graph's input names are not BERT's", async () => {
    const dir = join(root, "renamed");
    await cp(join(model.dir, "passage_encoder"), dir, { recursive: true });
    await editOnnxGraph(join(dir, "model.onnx"), join(dir, "model.onnx"), { rename: { input_ids: "tokens" } });
    const emb = new DPREmbeddings({ modelPath: dir });
    await expect(emb.embedQuery("x")).rejects.toThrow(
      /has inputs \[tokens, attention_mask, token_type_ids\]; expected input_ids and attention_mask/,
    );
  });
});

describe("DPREmbeddings errors name what is wrong", () => {
  async function brokenCopy(name: string, change: (dir: string) => Promise<void>): Promise<string> {
    const dir = join(root, name);
    await cp(join(model.dir, "question_encoder"), dir, { recursive: true });
    await change(dir);
    return dir;
  }

  it("names a missing folder, config.json, vocabulary and model.onnx", async () => {
    await expect(new DPREmbeddings({ modelPath: join(root, "nope") }).ready()).rejects.toThrow(
      /DPREmbeddings: model folder not found: .*nope/,
    );
    const noConfig = await brokenCopy("no-config", (d) => rm(join(d, "config.json")));
    await expect(new DPREmbeddings({ questionEncoderPath: noConfig, passageEncoderPath: noConfig }).ready()).rejects.toThrow(
      /no-config has no config.json/,
    );
    const noVocab = await brokenCopy("no-vocab", async (d) => {
      await rm(join(d, "vocab.txt"), { force: true });
      await rm(join(d, "tokenizer.json"), { force: true });
    });
    await expect(new DPREmbeddings({ modelPath: noVocab }).ready()).rejects.toThrow(/no-vocab has neither vocab.txt nor tokenizer.json/);
    const noOnnx = await brokenCopy("no-onnx", async (d) => {
      await rm(join(d, "model.onnx"));
      await rm(join(d, "model_quantized.onnx"));
    });
    await expect(new DPREmbeddings({ modelPath: noOnnx }).ready()).rejects.toThrow(/no-onnx has no model.onnx/);
    const noQuant = await brokenCopy("no-quant", (d) => rm(join(d, "model_quantized.onnx")));
    await expect(new DPREmbeddings({ modelPath: noQuant, quantized: true }).ready()).rejects.toThrow(
      /quantized: true but .*no-quant has no model_quantized.onnx/,
    );
  });

  it("throws when the tokenizer has more tokens than config.json's vocab_size", async () => {
    const dir = await brokenCopy("vocab-mismatch", async (d) => {
      const cfg = JSON.parse(await readFile(join(d, "config.json"), "utf8"));
      await writeFile(join(d, "config.json"), JSON.stringify({ ...cfg, vocab_size: 100 }));
    });
    await expect(new DPREmbeddings({ modelPath: dir }).ready()).rejects.toThrow(
      new RegExp(`vocabulary mismatch .*tokenizer has ${tok.vocabSize} tokens but config.json vocab_size is 100`),
    );
  });

  it("throws naming an unsupported hidden_act", async () => {
    const dir = await brokenCopy("bad-act", async (d) => {
      const cfg = JSON.parse(await readFile(join(d, "config.json"), "utf8"));
      await writeFile(join(d, "config.json"), JSON.stringify({ ...cfg, hidden_act: "swish" }));
    });
    await expect(new DPREmbeddings({ modelPath: dir }).ready()).rejects.toThrow(/hidden_act 'swish' is not supported/);
  });

  it("throws naming a bad dpr_config.json value", async () => {
    const dir = join(root, "bad-dpr-config");
    await cp(model.dir, dir, { recursive: true });
    await writeFile(join(dir, "dpr_config.json"), JSON.stringify({ pooling: "sum" }));
    await expect(new DPREmbeddings({ modelPath: dir }).ready()).rejects.toThrow(
      /dpr_config.json .*pooling 'sum' is not supported; expected cls, mean or max/,
    );
  });
});

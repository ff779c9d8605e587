import { mkdir, mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { FakeHub, listFiles } from "./fake-hub.js";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { CrossEncoderReranker } from "../../src/rerankers/cross-encoder-reranker.js";
import { cachedModelDir, downloadModel, selectModelFiles } from "../../src/models/hub.js";
import { referenceBertForward } from "../../src/models/reference.js";
import { writeSafetensors } from "../../src/models/safetensors.js";
import type { BertWeights } from "../../src/models/types.js";
import { TEXTS, makeTinyDPR, removeDir, testConfig, testTokenizer, type TinyDPR } from "./fixtures.js";
import { randomBertWeights } from "../../src/models/weights.js";

let root: string;
let model: TinyDPR;
const hub = new FakeHub();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "dpr-hub-test-"));
  model = await makeTinyDPR({ root });
  hub.repos.set("acme/tiny-dpr", model.dir);
  hub.repos.set("acme/q-enc", join(model.dir, "question_encoder"));
  hub.repos.set("acme/p-enc", join(model.dir, "passage_encoder"));
  await hub.start();
});

afterAll(async () => {
  await hub.stop();
  await removeDir(root);
});

describe("hub download into the cache", () => {
  it("downloads a listed DPR repository, loads it, and serves the second call from the cache without requests", async () => {
    const cacheDir = join(root, "cache-1");
    const emb = await DPREmbeddings.fromPretrained("acme/tiny-dpr", { endpoint: hub.endpoint, cacheDir });
    const local = new DPREmbeddings({ modelPath: model.dir });
    try {
      expect(await emb.embedQuery(TEXTS[0]!)).toEqual(await local.embedQuery(TEXTS[0]!));
      expect(await emb.embedDocuments([TEXTS[1]!])).toEqual(await local.embedDocuments([TEXTS[1]!]));
    } finally {
      await emb.dispose();
      await local.dispose();
    }
    const dir = cachedModelDir(cacheDir, "acme/tiny-dpr", "main");
    for (const f of ["question_encoder/model.onnx.data", "passage_encoder/vocab.txt", "dpr_config.json"]) {
      expect(await readFile(join(dir, f))).toEqual(await readFile(join(model.dir, f)));
    }
    hub.requests = [];
    expect(await downloadModel("acme/tiny-dpr", { endpoint: hub.endpoint, cacheDir })).toBe(dir);
    expect(hub.requests).toEqual([]);
  });

  it("a connection dropped mid-file fails with an error, leaves no partial file, and the next call completes", async () => {
    const cacheDir = join(root, "cache-drop");
    hub.dropOnce.add("passage_encoder/model.onnx.data");
    await expect(downloadModel("acme/tiny-dpr", { endpoint: hub.endpoint, cacheDir, retries: 0 })).rejects.toThrow(
      /hub: download of http:\/\/127\.0\.0\.1:\d+\/acme\/tiny-dpr\/resolve\/main\/passage_encoder\/model\.onnx\.data was interrupted/,
    );
    const dir = cachedModelDir(cacheDir, "acme/tiny-dpr", "main");
    const partial = await listFiles(dir);
    expect(partial).not.toContain(".complete.json");
    expect(partial).not.toContain("passage_encoder/model.onnx.data");
    expect(partial.filter((f) => f.includes(".tmp-"))).toEqual([]);
    // Files that did arrive are whole (.progress.json records them).
    expect(partial).toContain(".progress.json");
    for (const f of partial.filter((p) => p !== ".progress.json"))
      expect(await readFile(join(dir, f))).toEqual(await readFile(join(model.dir, f)));

    hub.requests = [];
    await downloadModel("acme/tiny-dpr", { endpoint: hub.endpoint, cacheDir, retries: 0 });
    // Only what was missing is fetched again.
    expect(hub.requests.filter((r) => r.includes("/resolve/")).some((r) => r.includes("question_encoder/model.onnx.data"))).toBe(false);
    expect(await readFile(join(dir, "passage_encoder/model.onnx.data"))).toEqual(
      await readFile(join(model.dir, "passage_encoder/model.onnx.data")),
    );
    const emb = new DPREmbeddings({ modelPath: dir });
    expect(await emb.embedDocuments(["x"])).toHaveLength(1);
    await emb.dispose();
  });

  it("retries a dropped transfer within one call by default", async () => {
    const cacheDir = join(root, "cache-retry");
    hub.dropOnce.add("question_encoder/model.onnx");
    const dir = await downloadModel("acme/tiny-dpr", { endpoint: hub.endpoint, cacheDir });
    expect(hub.dropOnce.size).toBe(0);
    expect(await readFile(join(dir, "question_encoder/model.onnx"))).toEqual(
      await readFile(join(model.dir, "question_encoder/model.onnx")),
    );
  });

  it("ONNX external data cut short where nothing could tell fails the load, is fetched again once, and the model loads", async () => {
    const cacheDir = join(root, "cache-cut");
    hub.cutOnce.add("question_encoder/model.onnx.data");
    hub.requests = [];
    const emb = await DPREmbeddings.fromPretrained("acme/tiny-dpr", { endpoint: hub.endpoint, cacheDir });
    const local = new DPREmbeddings({ modelPath: model.dir });
    try {
      expect(await emb.embedQuery(TEXTS[0]!)).toEqual(await local.embedQuery(TEXTS[0]!));
    } finally {
      await emb.dispose();
      await local.dispose();
    }
    expect(hub.cutOnce.size).toBe(0);
    expect(hub.requests.filter((r) => r.startsWith("/cdn/") && r.endsWith("/question_encoder/model.onnx.data"))).toHaveLength(2);
    const dir = cachedModelDir(cacheDir, "acme/tiny-dpr", "main");
    const data = "question_encoder/model.onnx.data";
    expect(await readFile(join(dir, data))).toEqual(await readFile(join(model.dir, data)));
  });

  it("fromPretrained passes maxDownloadBytes and sha256 to the download", async () => {
    const cacheDir = join(root, "cache-limits");
    await expect(
      DPREmbeddings.fromPretrained("acme/tiny-dpr", { endpoint: hub.endpoint, cacheDir, maxDownloadBytes: 100 }),
    ).rejects.toThrow(/over the \d+ bytes left of maxDownloadBytes \(100\) for acme\/tiny-dpr@main/);
    const sha256 = { "dpr_config.json": "0".repeat(64) };
    await expect(
      CrossEncoderReranker.fromPretrained("acme/tiny-dpr", { endpoint: hub.endpoint, cacheDir, sha256, retries: 0 }),
    ).rejects.toThrow(`dpr_config.json: the content's SHA-256 is`);
  });

  it("probes the model folder's file names when the server has no listing API (HF_ENDPOINT picks the server)", async () => {
    const cacheDir = join(root, "cache-probe");
    hub.listing = false;
    const saved = process.env.HF_ENDPOINT;
    process.env.HF_ENDPOINT = hub.endpoint;
    try {
      const dir = await downloadModel("acme/tiny-dpr", { cacheDir });
      const got = await listFiles(dir);
      for (const f of await listFiles(model.dir)) expect(got).toContain(f);
    } finally {
      hub.listing = true;
      if (saved === undefined) delete process.env.HF_ENDPOINT;
      else process.env.HF_ENDPOINT = saved;
    }
  });

  it("the pair form loads a question repo and a passage repo", async () => {
    const cacheDir = join(root, "cache-pair");
    const emb = await DPREmbeddings.fromPretrained({ question: "acme/q-enc", passage: "acme/p-enc" }, { endpoint: hub.endpoint, cacheDir });
    const local = new DPREmbeddings({ modelPath: model.dir });
    try {
      expect(await emb.embedQuery(TEXTS[2]!)).toEqual(await local.embedQuery(TEXTS[2]!));
      expect(await emb.embedDocuments([TEXTS[3]!])).toEqual(await local.embedDocuments([TEXTS[3]!]));
    } finally {
      await emb.dispose();
      await local.dispose();
    }
  });

  it("throws naming the repository when the server has none of its files", async () => {
    await expect(downloadModel("acme/missing", { endpoint: hub.endpoint, cacheDir: join(root, "cache-missing") })).rejects.toThrow(
      /hub: acme\/missing@main at http:\/\/127\.0\.0\.1:\d+ has no model folder files/,
    );
    await expect(DPREmbeddings.fromPretrained("not a repo id", { cacheDir: join(root, "x") })).rejects.toThrow(
      /neither a folder nor a hub id/,
    );
    await expect(DPREmbeddings.fromPretrained("acme/missing", { endpoint: hub.endpoint, cacheDir: join(root, "x") })).rejects.toThrow(
      /DPREmbeddings: 'acme\/missing' is not a local folder, and downloading it as a hub id failed: hub: acme\/missing@main/,
    );
  });

  it("exports ONNX on download for a DPR checkpoint that only has model.safetensors (facebook/dpr-* layout)", async () => {
    const repoDir = join(root, "repo-safetensors");
    await mkdir(repoDir);
    const tokenizer = testTokenizer();
    const config = testConfig(tokenizer.vocabSize);
    const weights = randomBertWeights(config, { seed: 11 });
    const prefixed: BertWeights = new Map([...weights].map(([k, v]) => [`question_encoder.bert_model.${k}`, v]));
    await writeSafetensors(join(repoDir, "model.safetensors"), prefixed);
    await tokenizer.save(repoDir);
    await writeFile(
      join(repoDir, "config.json"),
      JSON.stringify({ ...config, model_type: "dpr", architectures: ["DPRQuestionEncoder"], projection_dim: 0 }),
    );
    hub.repos.set("facebook-like/dpr-question", repoDir);
    const cacheDir = join(root, "cache-st");
    const emb = await DPREmbeddings.fromPretrained(
      { question: "facebook-like/dpr-question", passage: "facebook-like/dpr-question" },
      { endpoint: hub.endpoint, cacheDir },
    );
    try {
      const enc = tokenizer.encode(TEXTS[0]!, null, { maxLength: 64 });
      const ref = referenceBertForward(config, weights, {
        inputIds: [enc.inputIds],
        attentionMask: [enc.attentionMask],
        tokenTypeIds: [enc.tokenTypeIds],
      }).cls;
      const v = await emb.embedQuery(TEXTS[0]!);
      expect(Math.max(...v.map((x, i) => Math.abs(x - ref[i]!)))).toBeLessThan(1e-4);
      const dir = cachedModelDir(cacheDir, "facebook-like/dpr-question", "main");
      expect((await stat(join(dir, "model.onnx"))).size).toBeGreaterThan(0);
    } finally {
      await emb.dispose();
    }
  });

  it("exports a safetensors-only cross-encoder (BertForSequenceClassification) with its classifier head, so it gives logits", async () => {
    const repoDir = join(root, "repo-ce-safetensors");
    await mkdir(repoDir);
    const tokenizer = testTokenizer();
    const config = { ...testConfig(tokenizer.vocabSize), num_labels: 1, architectures: ["BertForSequenceClassification"] };
    const weights = randomBertWeights(config, { seed: 5, pooler: true, numLabels: 1 });
    const prefixed: BertWeights = new Map([...weights].map(([k, v]) => [k.startsWith("classifier.") ? k : `bert.${k}`, v]));
    await writeSafetensors(join(repoDir, "model.safetensors"), prefixed);
    await tokenizer.save(repoDir);
    await writeFile(join(repoDir, "config.json"), JSON.stringify(config));
    hub.repos.set("acme/tiny-cross-encoder", repoDir);
    const cacheDir = join(root, "cache-ce");
    const reranker = await CrossEncoderReranker.fromPretrained("acme/tiny-cross-encoder", { endpoint: hub.endpoint, cacheDir });
    try {
      const [score] = await reranker.scorePairs(TEXTS[0]!, [TEXTS[1]!]);
      const enc = tokenizer.encode(TEXTS[0]!, TEXTS[1]!, { maxLength: config.max_position_embeddings });
      const ref = referenceBertForward(config, weights, {
        inputIds: [enc.inputIds],
        attentionMask: [enc.attentionMask],
        tokenTypeIds: [enc.tokenTypeIds],
      });
      expect(Math.abs(score! - ref.logits![0]!)).toBeLessThan(1e-4);
    } finally {
      await reranker.dispose();
    }
  });
});

describe("selectModelFiles", () => {
  it("fetches one weights source: safetensors, else the PyTorch file, else the ONNX export; never other frameworks' weights", () => {
    const listing = [
      ".gitattributes",
      "README.md",
      "config.json",
      "vocab.txt",
      "tokenizer.json",
      "tokenizer_config.json",
      "pytorch_model.bin",
      "tf_model.h5",
      "flax_model.msgpack",
      "onnx/model.onnx",
      "onnx/model_quantized.onnx",
      "onnx/model.onnx_data",
    ];
    expect(selectModelFiles(listing)).toEqual(["config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "pytorch_model.bin"]);
    expect(selectModelFiles([...listing, "model.safetensors"])).toContain("model.safetensors");
    expect(selectModelFiles([...listing, "model.safetensors"])).not.toContain("pytorch_model.bin");
    const onnxOnly = listing.filter((f) => f !== "pytorch_model.bin");
    expect(selectModelFiles(onnxOnly)).toEqual([
      "config.json",
      "vocab.txt",
      "tokenizer.json",
      "tokenizer_config.json",
      "onnx/model.onnx",
      "onnx/model.onnx_data",
    ]);
    expect(selectModelFiles(onnxOnly, { quantized: true })).toContain("onnx/model_quantized.onnx");
    expect(selectModelFiles(["config.json", "vocab.txt", "model.safetensors", "pytorch_model.bin"])).toEqual([
      "config.json",
      "vocab.txt",
      "model.safetensors",
    ]);
    expect(selectModelFiles(["config.json", "vocab.txt", "pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin"])).toEqual([
      "config.json",
      "vocab.txt",
      "pytorch_model.bin.index.json",
    ]);
  });
});

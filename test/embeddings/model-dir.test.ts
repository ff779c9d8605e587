import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { DEFAULT_DPR_CONFIG, parseDPRConfig, readDPRConfig, resolveDPRModelDir } from "../../src/models/model-dir.js";
import { Lazy, OnnxSession } from "../../src/runtime/onnx-session.js";
import { createRandomDPRModel } from "../../src/testing/index.js";
import { replaceDirAtomically } from "../../src/utils/atomic-file.js";
import { TEXTS, removeDir } from "./fixtures.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "dpr-modeldir-test-"));
});
afterAll(async () => {
  await removeDir(root);
});

describe("dpr_config.json", () => {
  it("fills defaults and accepts snake_case keys", () => {
    expect(parseDPRConfig({}, "t")).toEqual(DEFAULT_DPR_CONFIG);
    expect(
      parseDPRConfig({ max_passage_length: 128, pooling: "mean", normalize: true, title_join: "none", query_prompt: "query: " }, "t"),
    ).toEqual({
      pooling: "mean",
      maxQueryLength: 64,
      maxPassageLength: 128,
      normalize: true,
      titleJoin: "none",
      queryPrompt: "query: ",
      passagePrompt: "",
    });
  });

  it("throws naming the file and the bad field", async () => {
    expect(() => parseDPRConfig({ max_query_length: 1 }, "/m/dpr_config.json")).toThrow(
      "dpr_config.json (/m/dpr_config.json): max_query_length must be an integer >= 2, got 1",
    );
    expect(() => parseDPRConfig({ normalize: "yes" }, "x")).toThrow(/normalize must be true or false, got "yes"/);
    expect(() => parseDPRConfig([], "x")).toThrow(/expected a JSON object/);
    const dir = join(root, "bad-json");
    await replaceDirAtomically(dir, async (tmp) => writeFile(join(tmp, "dpr_config.json"), "{ nope"));
    await expect(readDPRConfig(dir)).rejects.toThrow(/dpr_config.json \(.*bad-json\/dpr_config.json\): invalid JSON/);
  });

  it("resolveDPRModelDir rejects half a pair of encoders", async () => {
    const dir = join(root, "half");
    await replaceDirAtomically(dir, async (tmp) => {
      await import("node:fs/promises").then((fs) => fs.mkdir(join(tmp, "question_encoder")));
    });
    await expect(resolveDPRModelDir(dir, "T")).rejects.toThrow(
      "T: " + dir + " has question_encoder/ but no passage_encoder/ (or ctx_encoder/)",
    );
  });
});

describe("writing model folders", () => {
  it("createRandomDPRModel writes a loadable shared tiny model with the requested vocabulary size", async () => {
    const dir = join(root, "random-tiny");
    await createRandomDPRModel(dir, { shape: "tiny", texts: TEXTS, vocabSize: 300, shared: true, dprConfig: { maxPassageLength: 128 } });
    expect((await readdir(dir)).sort()).toEqual(["dpr_config.json", "encoder"]);
    const files = await readdir(join(dir, "encoder"));
    for (const f of [
      "config.json",
      "vocab.txt",
      "tokenizer.json",
      "tokenizer_config.json",
      "model.onnx",
      "model.onnx.data",
      "model.safetensors",
    ]) {
      expect(files).toContain(f);
    }
    expect((await readFile(join(dir, "encoder", "vocab.txt"), "utf8")).trimEnd().split("\n")).toHaveLength(300);
    const emb = new DPREmbeddings({ modelPath: dir });
    try {
      const [v] = await emb.embedDocuments([TEXTS[1]!]);
      expect(v).toHaveLength(32);
      expect(emb.maxPassageLength).toBe(128);
    } finally {
      await emb.dispose();
    }
  });

  it("saving over an existing folder keeps the previous copy when the new build fails, and replaces it when it succeeds", async () => {
    const dir = join(root, "replace");
    await createRandomDPRModel(dir, { shape: "tiny", texts: TEXTS, vocabSize: 300, seed: 1, shared: true });
    const before = await readFile(join(dir, "encoder", "model.onnx.data"));
    await expect(
      replaceDirAtomically(dir, async (tmp) => {
        await writeFile(join(tmp, "partial"), "x");
        throw new Error("disk full");
      }),
    ).rejects.toThrow("disk full");
    expect(await readFile(join(dir, "encoder", "model.onnx.data"))).toEqual(before);
    expect((await readdir(root)).filter((f) => f.includes(".tmp-"))).toEqual([]);

    await createRandomDPRModel(dir, { shape: "tiny", texts: TEXTS, vocabSize: 300, seed: 2, shared: true });
    expect(await readFile(join(dir, "encoder", "model.onnx.data"))).not.toEqual(before);
    const emb = new DPREmbeddings({ modelPath: dir });
    expect(await emb.embedQuery("still loads")).toHaveLength(32);
    await emb.dispose();
  });
});

describe("runtime", () => {
  it("Lazy shares one creation between concurrent callers and retries after a failure", async () => {
    let calls = 0;
    let fail = true;
    const lazy = new Lazy(async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 10));
      if (fail) throw new Error("first load fails");
      return { id: calls };
    });
    const first = await Promise.allSettled([lazy.get(), lazy.get(), lazy.get()]);
    expect(first.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(calls).toBe(1);
    fail = false;
    const [a, b] = await Promise.all([lazy.get(), lazy.get()]);
    expect(a).toBe(b);
    expect(calls).toBe(2);
  });

  it("OnnxSession names a missing model file and refuses to run after dispose", async () => {
    await expect(OnnxSession.create(join(root, "missing.onnx"), { owner: "X" })).rejects.toThrow(
      `X: model file not found or not readable: ${join(root, "missing.onnx")}`,
    );
    await expect(OnnxSession.create(join(root, "missing.onnx"), { executionProviders: [] })).rejects.toThrow(/not found/);
    const dir = join(root, "rt");
    await createRandomDPRModel(dir, { shape: "tiny", texts: TEXTS, vocabSize: 300, shared: true, safetensors: false });
    const s = await OnnxSession.create(join(dir, "encoder", "model.onnx"), { intraOpNumThreads: 1 });
    expect(s.inputs.map((i) => `${i.name}:${i.type}`)).toEqual(["input_ids:int64", "attention_mask:int64", "token_type_ids:int64"]);
    expect(s.outputs.map((o) => o.name)).toEqual(["last_hidden_state", "pooler_output"]);
    const dims: [number, number] = [1, 2];
    const feeds = {
      input_ids: { dims, data: BigInt64Array.from([2n, 3n]) },
      attention_mask: { dims, data: BigInt64Array.from([1n, 1n]) },
      token_type_ids: { dims, data: BigInt64Array.from([0n, 0n]) },
    };
    const out = await s.run(feeds, ["pooler_output"]);
    expect(out.pooler_output!.dims).toEqual([1, 32]);
    await s.dispose();
    await expect(s.run(feeds, ["pooler_output"])).rejects.toThrow(/was disposed/);
    await expect(OnnxSession.create(join(dir, "encoder", "model.onnx"), { intraOpNumThreads: -1 })).rejects.toThrow(
      /intraOpNumThreads must be a non-negative integer, got -1/,
    );
  });
});

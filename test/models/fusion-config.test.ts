/**
 * The `fusion` entry of dpr_config.json: validation with errors naming the file, the field, what was
 * expected and what was found; the snake_case round trip; storing it into a real model folder
 * atomically while keeping every other key; and DPREmbeddings reading it without loading the encoders.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { fusionToJson, parseFusionConfig, writeModelFusion, type ModelFusion } from "../../src/models/fusion-config.js";
import { parseDPRConfig, readDPRConfig } from "../../src/models/model-dir.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "fusion-config-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const TUNED: ModelFusion = {
  method: "linear",
  alpha: 0.15,
  normalization: "minmax",
  tunedOn: {
    dataset: "/data/pubmedqa",
    split: "test",
    selection: "fraction",
    fraction: 0.2,
    seed: 0,
    questions: 100,
    metric: "ndcg@10",
    score: 0.98,
    bm25Score: 0.975,
    denseScore: 0.68,
    depth: 100,
    tunedAt: "2026-12-04T10:00:00.000Z",
  },
};

describe("parseFusionConfig / parseDPRConfig fusion", () => {
  it("accepts linear and RRF settings, filling normalization, k and weights", () => {
    expect(parseFusionConfig({ method: "linear", alpha: 0.2 }, "f")).toEqual({ method: "linear", alpha: 0.2, normalization: "minmax" });
    expect(parseFusionConfig({ method: "rrf" }, "f")).toEqual({ method: "rrf", k: 60, weights: [1, 1] });
    expect(parseFusionConfig({ method: "rrf", k: 10, weights: [0.3, 1] }, "f")).toEqual({ method: "rrf", k: 10, weights: [0.3, 1] });
    expect(parseDPRConfig({ pooling: "mean", fusion: { method: "linear", alpha: 0 } }, "f").fusion).toEqual({
      method: "linear",
      alpha: 0,
      normalization: "minmax",
    });
    expect(parseDPRConfig({ fusion: null }, "f").fusion).toBeUndefined();
    expect("fusion" in parseDPRConfig({}, "f")).toBe(false);
  });

  it.each([
    [
      [1, 2],
      'dpr_config.json (/m/dpr_config.json): fusion: expected a JSON object such as {"method": "rrf", "k": 60, ' +
        '"weights": [1, 1]}, got [1,2]',
    ],
    [{ method: "max" }, 'dpr_config.json (/m/dpr_config.json): fusion.method: expected "linear" or "rrf", got "max"'],
    [
      { method: "linear" },
      "dpr_config.json (/m/dpr_config.json): fusion.alpha: expected the dense weight, a number in [0, 1], got nothing",
    ],
    [{ method: "linear", alpha: 1.5 }, "fusion.alpha: expected the dense weight, a number in [0, 1], got 1.5"],
    [{ method: "linear", alpha: "0.2" }, 'fusion.alpha: expected the dense weight, a number in [0, 1], got "0.2"'],
    [{ method: "linear", alpha: 0.2, normalization: "l2" }, 'fusion.normalization: expected "minmax" or "zscore", got "l2"'],
    [{ method: "linear", alpha: 0.2, k: 60 }, 'fusion: "k" does not apply to method "linear" (allowed: method, alpha, normalization'],
    [{ method: "rrf", alpha: 0.2 }, 'fusion: "alpha" does not apply to method "rrf"'],
    [{ method: "rrf", k: -1 }, "fusion.k: expected a finite number >= 0, got -1"],
    [{ method: "rrf", weights: [1] }, "fusion.weights: expected [dense, sparse], two finite numbers >= 0, got [1]"],
    [{ method: "rrf", weights: [1, -2] }, "fusion.weights: expected [dense, sparse], two finite numbers >= 0, got [1,-2]"],
    [{ method: "rrf", weights: [0, 0] }, "fusion.weights: at least one weight must be > 0, got [0, 0]"],
    [{ method: "rrf", tuned_on: "pubmedqa" }, 'fusion.tuned_on: expected a JSON object, got "pubmedqa"'],
    [
      { method: "rrf", tuned_on: { ...fusionToJson(TUNED).tuned_on!, bm25_score: "high" } },
      'fusion.tuned_on.bm25_score: expected a finite number, got "high"',
    ],
    [
      { method: "rrf", tuned_on: { ...fusionToJson(TUNED).tuned_on!, selection: "all" } },
      'fusion.tuned_on.selection: expected "split" or "fraction", got "all"',
    ],
  ])("rejects bad fusion %#, naming the file, the field, the expectation and the value", (fusion, message) => {
    expect(() => parseDPRConfig({ pooling: "cls", fusion }, "/m/dpr_config.json")).toThrow(message);
    expect(() => parseDPRConfig({ fusion }, "/m/dpr_config.json")).toThrow(/^dpr_config\.json \(\/m\/dpr_config\.json\): fusion/);
  });

  it("writes snake_case and reads it back equal (camelCase accepted too)", () => {
    const json = fusionToJson(TUNED);
    expect(json).toMatchObject({
      method: "linear",
      alpha: 0.15,
      tuned_on: { bm25_score: 0.975, dense_score: 0.68, tuned_at: TUNED.tunedOn!.tunedAt },
    });
    expect(JSON.stringify(json)).not.toMatch(/Score|tunedOn|tunedAt/);
    expect(parseFusionConfig(JSON.parse(JSON.stringify(json)), "f")).toEqual(TUNED);
    expect(parseFusionConfig({ method: "linear", alpha: 0.15, normalization: "minmax", tunedOn: TUNED.tunedOn }, "f")).toEqual(TUNED);
  });
});

describe("writeModelFusion", () => {
  it("stores the fusion atomically, keeping every other key and its order, and replaces an earlier fusion", async () => {
    const dir = join(root, "model-a");
    await mkdir(dir);
    const original = { pooling: "mean", maxQueryLength: 32, custom_note: { keep: [1, 2] }, titleJoin: "pair" };
    await writeFile(join(dir, "dpr_config.json"), JSON.stringify(original));
    const path = await writeModelFusion(dir, { method: "rrf", k: 60, weights: [0.2, 1] });
    expect(path).toBe(join(dir, "dpr_config.json"));
    const first = JSON.parse(await readFile(path, "utf8"));
    expect(Object.keys(first)).toEqual([...Object.keys(original), "fusion"]);
    expect(first).toEqual({ ...original, fusion: { method: "rrf", k: 60, weights: [0.2, 1] } });
    await writeModelFusion(dir, TUNED);
    const second = JSON.parse(await readFile(path, "utf8"));
    expect(Object.keys(second)).toEqual([...Object.keys(original), "fusion"]);
    expect((await readDPRConfig(dir)).fusion).toEqual(TUNED);
    expect((await readDPRConfig(dir)).maxQueryLength).toBe(32);
    expect((await readdir(dir)).sort()).toEqual(["dpr_config.json"]); // no temporary file left
  });

  it("creates dpr_config.json in a plain folder; refuses a sentence-transformers folder, a broken file, a bad fusion", async () => {
    const plain = join(root, "plain");
    await mkdir(plain);
    await writeModelFusion(plain, { method: "linear", alpha: 0, normalization: "minmax" });
    expect(JSON.parse(await readFile(join(plain, "dpr_config.json"), "utf8"))).toEqual({
      fusion: { method: "linear", alpha: 0, normalization: "minmax" },
    });

    const st = join(root, "st");
    await mkdir(st);
    await writeFile(
      join(st, "modules.json"),
      JSON.stringify([{ idx: 0, name: "0", path: "", type: "sentence_transformers.models.Transformer" }]),
    );
    await expect(writeModelFusion(st, TUNED)).rejects.toThrow(/is a sentence-transformers folder without dpr_config\.json/);

    const broken = join(root, "broken");
    await mkdir(broken);
    await writeFile(join(broken, "dpr_config.json"), "{ pooling: mean");
    await expect(writeModelFusion(broken, TUNED)).rejects.toThrow(/dpr_config\.json is not valid JSON .*fix or remove it first/);
    expect(await readFile(join(broken, "dpr_config.json"), "utf8")).toBe("{ pooling: mean");

    await expect(writeModelFusion(plain, { method: "linear", alpha: 2, normalization: "minmax" })).rejects.toThrow(/fusion\.alpha/);
    expect(JSON.parse(await readFile(join(plain, "dpr_config.json"), "utf8")).fusion.alpha).toBe(0);
  });
});

describe("DPREmbeddings.storedFusion", () => {
  it("reads the stored fusion without loading the encoders (the folder here has none)", async () => {
    const dir = join(root, "config-only");
    await mkdir(dir);
    await writeFile(join(dir, "dpr_config.json"), JSON.stringify({ pooling: "mean", fusion: fusionToJson(TUNED) }));
    const emb = new DPREmbeddings({ modelPath: dir });
    expect(await emb.storedFusion()).toEqual(TUNED);
    expect((await emb.modelConfig())?.pooling).toBe("mean");
    await expect(emb.ready()).rejects.toThrow(/not a DPR model folder/); // no encoder: nothing was loaded above
    const pair = new DPREmbeddings({ questionEncoderPath: dir, passageEncoderPath: dir });
    expect(await pair.storedFusion()).toBeUndefined();
  });

  it("names the file and the field when the stored fusion is invalid", async () => {
    const dir = join(root, "bad-fusion");
    await mkdir(dir);
    await writeFile(join(dir, "dpr_config.json"), JSON.stringify({ fusion: { method: "linear", alpha: -1 } }));
    await expect(new DPREmbeddings({ modelPath: dir }).storedFusion()).rejects.toThrow(
      `DPREmbeddings: cannot read the settings of ${dir}: dpr_config.json (${join(dir, "dpr_config.json")}): fusion.alpha`,
    );
  });
});

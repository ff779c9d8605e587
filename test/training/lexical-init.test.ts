import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadBeirDataset } from "../../src/data/beir.js";
import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { BM25Index } from "../../src/retrievers/bm25/bm25-index.js";
import { runTrainCli } from "../../src/training/cli.js";
import { evaluateModelDir } from "../../src/training/export.js";
import { scratchModel } from "../../src/training/init.js";
import { lexicalInitWeights, tokenIdf } from "../../src/training/lexical-init.js";
import { syntheticTask, writeSyntheticBeir } from "./synthetic.js";
import { writeSynonymTask } from "./synonym-task.js";
import { shapeFlags } from "./shape-flags.js";

let dir: string;
const quiet = { stdout: () => {}, stderr: () => {} };
const SHAPE = shapeFlags({ hidden: 64, layers: 1, heads: 2, ffn: 64, maxLen: 48, vocabSize: 300 });
const LENS = ["--q-len", "16", "--p-len", "40", "--backend", "wasm", "--no-progress", "--shared", "--seed", "3"];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lexical-init-"));
  await writeSyntheticBeir(join(dir, "keys"), syntheticTask(48, 4));
  await writeSynonymTask(join(dir, "synonyms"), 96, 32);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("lexicalInitWeights", () => {
  const texts = syntheticTask(24, 2).corpus;
  const { config, tokenizer } = scratchModel({
    hidden: 32,
    layers: 2,
    heads: 2,
    ffn: 32,
    maxLen: 32,
    vocabSize: 200,
    texts: texts.flatMap((p) => [p.title, p.text]),
  });

  it(
    "gives every word row unit norm and zero mean, frequent words less of their own direction, and zeroes the reserved " +
      "dimensions after the last layer",
    () => {
      const { weights, info } = lexicalInitWeights({ config, tokenizer, corpus: texts, scale: 3 });
      const words = weights.get("embeddings.word_embeddings.weight")!;
      const H = config.hidden_size;
      const idf = tokenIdf(tokenizer, texts, config.vocab_size);
      const own = (t: number) => Math.hypot(...words.data.subarray(t * H + 2, t * H + H));
      for (const t of [0, 5, 50, 150]) {
        const row = words.data.subarray(t * H, t * H + H);
        expect(Math.hypot(...row)).toBeCloseTo(1, 5);
        expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(0, 5);
      }
      const [the] = tokenizer.encode("the", null).inputIds.slice(1, 2);
      const rare = [...idf.keys()].filter((t) => idf[t]! > 0).sort((a, b) => idf[b]! - idf[a]!)[0]!;
      expect(idf[the!]!).toBeLessThan(idf[rare]!);
      expect(own(the!)).toBeLessThan(own(rare) * 0.5); // "the" is in every passage: little of its own direction
      expect(own(tokenizer.clsId)).toBe(0); // special tokens carry none
      const gain = weights.get("encoder.layer.1.output.LayerNorm.weight")!.data;
      expect([gain[0], gain[1], gain[2], gain[H - 1]]).toEqual([0, 0, 3, 3]);
      expect(weights.get("encoder.layer.0.output.LayerNorm.weight")!.data.every((x) => x === 1)).toBe(true);
      const residual = weights.get("encoder.layer.0.attention.output.dense.weight")!.data;
      expect(Math.max(...residual.map(Math.abs))).toBeLessThan(0.01);
      expect(weights.get("embeddings.position_embeddings.weight")!.data.every((x) => x === 0)).toBe(true);
      expect(info).toMatchObject({ scale: 3, scaleFrom: "given", idfPower: 2, passages: texts.length });
      const seen = new Set(texts.flatMap((p) => tokenizer.encode(p.title, p.text, { maxLength: 10_000 }).inputIds));
      for (const id of [tokenizer.clsId, tokenizer.sepId]) seen.delete(id);
      expect(info.tokensSeen).toBe(seen.size);
      // Deterministic for a seed; another seed draws other directions.
      expect(
        lexicalInitWeights({ config, tokenizer, corpus: texts, scale: 3 }).weights.get("embeddings.word_embeddings.weight")!.data,
      ).toEqual(words.data);
      expect(
        lexicalInitWeights({ config, tokenizer, corpus: texts, scale: 3, seed: 9 }).weights.get("embeddings.word_embeddings.weight")!.data,
      ).not.toEqual(words.data);
    },
  );

  it("refuses unusable shapes and options, naming them", () => {
    const small = { ...config, hidden_size: 2, num_attention_heads: 1 };
    expect(() => lexicalInitWeights({ config: small, tokenizer, corpus: texts })).toThrow(/hidden size must be at least 3.*got 2/);
    expect(() => lexicalInitWeights({ config, tokenizer, corpus: [] })).toThrow(/corpus is empty/);
    expect(() => lexicalInitWeights({ config, tokenizer, corpus: texts, idfPower: 0 })).toThrow(
      /idfPower must be a positive number, got 0/,
    );
    expect(() => lexicalInitWeights({ config, tokenizer, corpus: texts, scale: Number.NaN })).toThrow(/scale must be a positive number/);
  });
});

describe("train-dpr --init lexical", () => {
  it(
    "before any update ranks like BM25 (the same first passage for ≥ 90% of the questions, recall@1 ≥ 0.9), where a " +
      "random start is near chance",
    async () => {
      const beir = join(dir, "keys");
      const out = join(dir, "init-keys");
      expect(await runTrainCli(["--data", beir, "--out", out, "--init", "lexical", "--init-only", ...SHAPE, ...LENS], {}, quiet)).toBe(0);
      const meta = JSON.parse(await readFile(join(out, "model", "training.json"), "utf8"));
      expect(meta.data.lexicalInit.scaleFrom).toBe("calibrated");
      expect(meta.data.lexicalInit.calibrationLoss).toBeLessThan(meta.data.lexicalInit.chanceLoss * 0.5);
      const ds = await loadBeirDataset(beir, "train");
      const bm25 = await BM25Index.fromPassages(ds.corpus);
      const embeddings = new DPREmbeddings({ modelPath: join(out, "model") });
      try {
        const P = await embeddings.embedPassages(ds.corpus);
        let agree = 0;
        for (const q of ds.queries) {
          const v = await embeddings.embedQuery(q.text);
          const scores = P.map((p) => p.reduce((s, x, i) => s + x * v[i]!, 0));
          const top = ds.corpus[scores.indexOf(Math.max(...scores))]!.id;
          if (top === bm25.search(q.text, 1)[0]!.id) agree++;
        }
        expect(agree / ds.queries.length).toBeGreaterThanOrEqual(0.9);
      } finally {
        await embeddings.dispose();
      }
      const dev = { queries: ds.queries, corpus: ds.corpus, qrels: ds.qrels };
      expect((await evaluateModelDir(join(out, "model"), dev))["recall@1"]).toBeGreaterThanOrEqual(0.9);
      // The same shape from a random start (one update at lr ~0 exports it) is far from that.
      const random = join(dir, "random-keys");
      const args = ["--data", beir, "--out", random, ...SHAPE, ...LENS, "--pooling", "mean", "--max-steps", "1", "--lr", "1e-9"];
      expect(await runTrainCli(args, {}, quiet)).toBe(0);
      expect((await evaluateModelDir(join(random, "model"), dev))["recall@1"]).toBeLessThan(0.3);
    },
    120_000,
  );

  it(
    "fine-tuning from it (the lexical tie as hard negative) improves recall on held-out questions that need what " +
      "lexical matching lacks (synonyms)",
    async () => {
      const beir = join(dir, "synonyms");
      const ds = await loadBeirDataset(beir, "dev");
      const dev = { queries: ds.queries, corpus: ds.corpus, qrels: ds.qrels };
      const start = join(dir, "init-syn");
      expect(await runTrainCli(["--data", beir, "--out", start, "--init", "lexical", "--init-only", ...SHAPE, ...LENS], {}, quiet)).toBe(0);
      const before = await evaluateModelDir(join(start, "model"), dev);
      const tuned = join(dir, "ft-syn");
      const args = [
        "--data",
        beir,
        "--out",
        tuned,
        "--init",
        "lexical",
        ...SHAPE,
        ...LENS,
        "--batch",
        "16",
        "--lr",
        "2e-3",
        "--max-steps",
        "60",
        "--dropout",
        "0",
        "--negatives",
        join(beir, "negatives.json"),
        "--hard-negatives",
        "1",
      ];
      expect(await runTrainCli(args, {}, quiet)).toBe(0);
      const after = await evaluateModelDir(join(tuned, "model"), dev);
      // Both passages of a pair share the key: lexically a coin toss (≈ 0.5), but both are found.
      expect(before["recall@1"]).toBeLessThan(0.75);
      expect(before["recall@5"]).toBeGreaterThanOrEqual(0.9);
      expect(after["recall@1"]).toBeGreaterThan(before["recall@1"]! + 0.15);
      expect(after["recall@5"]).toBeGreaterThanOrEqual(0.9);
    },
    180_000,
  );

  it("refuses CLS pooling and the lexical flags without --init lexical", async () => {
    let err = "";
    const io = { stdout: () => {}, stderr: (t: string) => (err += t) };
    const beir = join(dir, "keys");
    const code = await runTrainCli(
      ["--data", beir, "--out", join(dir, "x"), "--init", "lexical", "--init-only", ...SHAPE, ...LENS, "--pooling", "cls"],
      {},
      io,
    );
    expect(code).toBe(2);
    expect(err).toMatch(/--init lexical needs --pooling mean .*got cls/);
    err = "";
    expect(await runTrainCli(["--data", beir, "--out", join(dir, "y"), ...SHAPE, "--idf-power", "1"], {}, io)).toBe(2);
    expect(err).toMatch(/--idf-power applies to --init lexical only/);
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadBeirCorpus } from "../../src/data/beir.js";
import type { Passage } from "../../src/data/types.js";
import { randomBertWeights } from "../../src/models/weights.js";
import type { BertConfig, BertWeights } from "../../src/models/types.js";
import { selectBackend } from "../../src/training/backend.js";
import { CrossEncoderTrainer } from "../../src/training/cross-encoder-trainer.js";
import { scratchModel } from "../../src/training/init.js";
import { matchHeadInit } from "../../src/training/match-head.js";
import { spanExamples } from "../../src/training/pretrain.js";
import { writeMiningFixture } from "./mining-fixture.js";

const config: BertConfig = {
  vocab_size: 600,
  hidden_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 128,
  max_position_embeddings: 64,
  type_vocab_size: 2,
  layer_norm_eps: 1e-12,
  hidden_act: "gelu",
};

/** Embedding output for (token, position, segment), computed here from the raw tensors. */
function embed(w: BertWeights, t: number, p: number, s: number): number[] {
  const H = config.hidden_size;
  const get = (n: string) => w.get(n)!.data;
  const x = Array.from(
    { length: H },
    (_, i) =>
      get("embeddings.word_embeddings.weight")[t * H + i]! +
      get("embeddings.position_embeddings.weight")[p * H + i]! +
      get("embeddings.token_type_embeddings.weight")[s * H + i]!,
  );
  const mean = x.reduce((a, b) => a + b, 0) / H;
  const sd = Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / H + config.layer_norm_eps);
  return x.map((v, i) => ((v - mean) / sd) * get("embeddings.LayerNorm.weight")[i]! + get("embeddings.LayerNorm.bias")[i]!);
}

/** Attention score of head `h` in layer 0 between two embedded tokens, from the weights. */
function score(w: BertWeights, h: number, a: number[], b: number[]): number {
  const H = config.hidden_size;
  const dh = H / config.num_attention_heads;
  const lin = (name: string, x: number[], row: number) => {
    const W = w.get(`encoder.layer.0.attention.self.${name}.weight`)!.data;
    return w.get(`encoder.layer.0.attention.self.${name}.bias`)!.data[row]! + x.reduce((s, v, i) => s + W[row * H + i]! * v, 0);
  };
  let s = 0;
  for (let r = h * dh; r < (h + 1) * dh; r++) s += lin("query", a, r) * lin("key", b, r);
  return s / Math.sqrt(dh);
}

describe("matchHeadInit", () => {
  const base = randomBertWeights(config, { seed: 5, numLabels: 1, pooler: true });
  const { weights, report } = matchHeadInit(config, base, { matchScore: 7, seed: 3 });

  it("scores the same token in the other segment near matchScore and different tokens near 0", () => {
    let match = 0;
    let other = 0;
    const n = 200;
    for (let i = 0; i < n; i++) {
      const t = 150 + ((i * 37) % 450);
      const a = embed(weights, t, i % 64, 0);
      match += score(weights, 0, a, embed(weights, t, (i * 7 + 3) % 64, 1));
      other += score(weights, 0, a, embed(weights, 150 + ((i * 37 + 101) % 450), (i * 7 + 3) % 64, 1));
    }
    match /= n;
    other /= n;
    expect(match).toBeGreaterThan(5.5);
    expect(match).toBeLessThan(8.5);
    expect(Math.abs(other)).toBeLessThan(1);
    // The report measures the same thing on its own draws.
    expect(report.matchScore).toBeCloseTo(match, 0);
    expect(report.matchScore - report.otherScore.mean).toBeGreaterThan(3 * report.otherScore.std);
    // Before the rewrite, head 0 did not tell matches apart.
    const a = embed(base, 200, 3, 0);
    expect(Math.abs(score(base, 0, a, embed(base, 200, 40, 1)))).toBeLessThan(1);
  });

  it("changes only the chosen head of the chosen layer and leaves the input weights untouched", () => {
    const H = config.hidden_size;
    const dh = H / config.num_attention_heads;
    for (const [name, t] of base) {
      const after = weights.get(name)!.data;
      const head0 = (i: number): boolean => {
        if (!name.startsWith("encoder.layer.0.attention.")) return false;
        if (name.endsWith("output.dense.weight")) return i % H < dh; // column of head 0
        if (name.includes(".self.")) return (name.endsWith(".bias") ? i : Math.floor(i / H)) < dh; // rows of head 0
        return false;
      };
      let changedOutside = 0;
      for (let i = 0; i < t.data.length; i++) if (!head0(i) && after[i] !== t.data[i]) changedOutside++;
      expect(changedOutside, name).toBe(0);
    }
    expect(weights.get("encoder.layer.0.attention.self.query.weight")!.data).not.toEqual(
      base.get("encoder.layer.0.attention.self.query.weight")!.data,
    );
    const fresh = randomBertWeights(config, { seed: 5, numLabels: 1, pooler: true });
    for (const [name, t] of fresh) expect(base.get(name)!.data, name).toEqual(t.data);
  });

  it("throws when the model has one token type, or the head is out of range", () => {
    expect(() => matchHeadInit({ ...config, type_vocab_size: 1 }, base)).toThrow(/matchHeadInit: needs 2 token types .* type_vocab_size 1/);
    expect(() => matchHeadInit(config, base, { head: 2 })).toThrow(/matchHeadInit: head must be in \[0, 1\], got 2/);
    const missing = new Map(base);
    missing.delete("encoder.layer.0.attention.self.key.weight");
    expect(() => matchHeadInit(config, missing)).toThrow(/matchHeadInit: the weights have no 'encoder.layer.0.attention.self.key.weight'/);
  });
});

describe("spanExamples", () => {
  const corpus: Passage[] = [
    {
      id: "a",
      title: "T",
      text:
        "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen " +
        "eighteen nineteen twenty twentyone twentytwo twentythree twentyfour twentyfive twentysix twentyseven " +
        "twentyeight twentynine thirty thirtyone",
    },
    { id: "b", title: "", text: "too short" },
  ];
  it("draws an exact span of 6-10 words from the first 28 words, the whole passage as positive, seeded per epoch", () => {
    const words = corpus[0]!.text.split(" ");
    const seen = new Set<string>();
    for (let epoch = 0; epoch < 20; epoch++) {
      const ex = spanExamples(corpus, { seed: 1, epoch });
      expect(ex).toHaveLength(1); // "b" is too short
      const q = ex[0]!.question.split(" ");
      const start = words.indexOf(q[0]!);
      expect(words.slice(start, start + q.length)).toEqual(q);
      expect(q.length).toBeGreaterThanOrEqual(6);
      expect(q.length).toBeLessThanOrEqual(10);
      expect(start + q.length).toBeLessThanOrEqual(28);
      expect(ex[0]!.positives).toEqual([{ id: "a", title: "T", text: corpus[0]!.text }]);
      expect(spanExamples(corpus, { seed: 1, epoch })).toEqual(ex);
      seen.add(ex[0]!.question);
    }
    expect(seen.size).toBeGreaterThan(10);
  });
});

describe("CrossEncoderTrainer with a match head (tiny model from scratch, wasm)", () => {
  let root: string;
  let corpus: Passage[];
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "match-head-"));
    const fx = await writeMiningFixture(join(root, "beir"), { size: 80, questions: 4, testQuestions: 2 });
    corpus = await loadBeirCorpus(fx.dir);
    await selectBackend({ prefer: "wasm", log: false });
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("learns span matching on new spans where the same model without it does not, and writes the head's report", async () => {
    const { config: cfg, tokenizer } = scratchModel({
      hidden: 64,
      layers: 2,
      heads: 2,
      ffn: 128,
      maxLen: 64,
      vocabSize: 600,
      texts: corpus.map((p) => p.text),
      dropout: 0,
    });
    const train = [0, 1, 2, 3].flatMap((epoch) => spanExamples(corpus, { seed: 1, epoch }));
    const heldOut = spanExamples(corpus, { seed: 2, epoch: 9 }); // spans the runs never saw
    const results: Record<string, number> = {};
    for (const matchHead of [false, true]) {
      const trainer = new CrossEncoderTrainer({
        outputDir: join(root, `run-${matchHead}`),
        tokenizer,
        config: cfg,
        train,
        matchHead,
        negatives: 3,
        batchSize: 8,
        maxSteps: STEPS,
        lr: 1e-3,
        warmupRatio: 0.1,
        maxLength: 48,
        seed: 3,
        progress: false,
      });
      try {
        const probe = new CrossEncoderTrainer({
          outputDir: join(root, "probe"),
          tokenizer,
          config: cfg,
          train: heldOut,
          negatives: 3,
          progress: false,
          seed: 4,
        });
        const groups = probe.groupsForEpoch(0);
        probe.dispose();
        await trainer.train();
        results[String(matchHead)] = (await trainer.evaluateGroups(groups)).mrr;
      } finally {
        trainer.dispose();
      }
    }
    if (process.env.PRINT_FIGURES) console.log("held-out MRR without / with match head", results);
    expect(results["true"]).toBeGreaterThan(0.7); // measured 0.83 (chance: 0.52)
    expect(results["true"]!).toBeGreaterThan(results["false"]! + 0.15); // measured 0.55 without
    const meta = JSON.parse(await readFile(join(root, "run-true", "model", "training.json"), "utf8"));
    expect(meta.matchHead.layer).toBe(0);
    expect(meta.matchHead.matchScore).toBeGreaterThan(5);
  }, 300_000);
});

const STEPS = 60;

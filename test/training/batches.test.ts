import { describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Passage, TrainingExample } from "../../src/data/types.js";
import {
  detectDataSource,
  examplesFromBeir,
  loadTrainingExamples,
  passageKey,
  planEpoch,
  tokenizeBatch,
} from "../../src/training/batches.js";
import { cropExamples, ictExamples, splitSentences } from "../../src/training/pretrain.js";
import { BertTokenizer } from "../../src/tokenizers/bert-tokenizer.js";
import { buildWordPieceVocab } from "../../src/tokenizers/vocab.js";
import { syntheticTask, writeSyntheticBeir } from "./synthetic.js";

const p = (id: string, text: string, title = ""): Passage => ({ id, title, text });
const ex = (question: string, pos: Passage, hard: Passage[] = []): TrainingExample => ({
  question,
  positives: [pos],
  negatives: [],
  hardNegatives: hard,
});

describe("examplesFromBeir / loadTrainingExamples", () => {
  it("makes one example per relevant (query, passage) pair, keeps titles, counts judged passages missing from the corpus", async () => {
    const dir = await mkdtemp(join(tmpdir(), "beir-"));
    try {
      const task = syntheticTask(5, 3);
      await writeSyntheticBeir(dir, task);
      // q0 gets a second positive, q1 a grade-0 judgement and a judgement of a missing passage.
      await writeFile(
        join(dir, "qrels", "train.tsv"),
        "query-id\tcorpus-id\tscore\nq0\td0\t1\nq0\td3\t2\nq1\td1\t1\nq1\td2\t0\nq1\tmissing\t1\n",
      );
      const { loadBeirDataset } = await import("../../src/data/beir.js");
      const { examples, skipped } = examplesFromBeir(await loadBeirDataset(dir, "train"));
      expect(examples.map((e) => [e.question, e.positives[0]!.id])).toEqual([
        [task.queries[0]!.text, "d0"],
        [task.queries[0]!.text, "d3"],
        [task.queries[1]!.text, "d1"],
      ]);
      expect(examples[0]!.positives[0]!.title).toBe(task.corpus[0]!.title);
      expect(skipped.missingPassages).toBe(1);
      expect((await loadTrainingExamples(await detectDataSource(dir))).length).toBe(3);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("detectDataSource names the path it cannot read", async () => {
    await expect(detectDataSource("/nonexistent/x.json")).rejects.toThrow(/training data: \/nonexistent\/x.json does not exist/);
    const dir = await mkdtemp(join(tmpdir(), "nobeir-"));
    try {
      await expect(detectDataSource(dir)).rejects.toThrow(/has no corpus.jsonl/);
      await writeFile(join(dir, "pairs.txt"), "x");
      await expect(detectDataSource(join(dir, "pairs.txt"))).rejects.toThrow(/cannot tell the format/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("planEpoch", () => {
  // 30 examples; questions q0..q9 each have 3 positives, and passage "shared" is the positive of 4 questions.
  const examples: TrainingExample[] = [];
  for (let i = 0; i < 30; i++) examples.push(ex(`q${i % 10}`, i % 7 === 0 ? p("shared", "s") : p(`d${i}`, `t${i}`)));

  it("never puts two examples with the same question or the same positive in one batch, and covers every example once", () => {
    const plan = planEpoch(examples, { batchSize: 8, seed: 1, epoch: 0, minBatchSize: 1 });
    for (const batch of plan) {
      expect(batch.length).toBeLessThanOrEqual(8);
      expect(new Set(batch.map((i) => examples[i]!.question)).size).toBe(batch.length);
      expect(new Set(batch.map((i) => passageKey(examples[i]!.positives[0]!))).size).toBe(batch.length);
    }
    expect(plan.flat().sort((a, b) => a - b)).toEqual(examples.map((_, i) => i));
  });

  it("is a function of (seed, epoch): the same twice, different for another epoch or seed", () => {
    const a = planEpoch(examples, { batchSize: 8, seed: 1, epoch: 0 });
    expect(planEpoch(examples, { batchSize: 8, seed: 1, epoch: 0 })).toEqual(a);
    expect(planEpoch(examples, { batchSize: 8, seed: 1, epoch: 1 })).not.toEqual(a);
    expect(planEpoch(examples, { batchSize: 8, seed: 2, epoch: 0 })).not.toEqual(a);
  });

  it("drops a last batch of a single example (no in-batch negative) and rejects bad sizes", () => {
    const five = Array.from({ length: 5 }, (_, i) => ex(`q${i}`, p(`d${i}`, "t")));
    expect(planEpoch(five, { batchSize: 2, seed: 0, epoch: 0 }).map((b) => b.length)).toEqual([2, 2]);
    expect(() => planEpoch(five, { batchSize: 0, seed: 0, epoch: 0 })).toThrow(/batchSize must be an integer >= 1, got 0/);
    expect(() =>
      planEpoch([{ question: "q", positives: [], negatives: [], hardNegatives: [] }], { batchSize: 2, seed: 0, epoch: 0 }),
    ).toThrow(/none of the 1 examples has a positive/);
  });
});

describe("tokenizeBatch", () => {
  const texts = ["scurvy vitamin deficiency", "aspirin heart attack risk", "title one", "what causes scurvy"];
  const tok = BertTokenizer.fromVocab(buildWordPieceVocab(texts, { vocabSize: 120 }));

  it(
    "puts positives first (row i for question i), then hard negatives shared by the batch, skipping one that is a " +
      "positive of the batch",
    () => {
      const exs = [
        ex("what causes scurvy", p("a", "scurvy vitamin deficiency", "title one"), [
          p("b", "aspirin heart attack risk"),
          p("c", "vitamin risk"),
        ]),
        ex("aspirin risk", p("b", "aspirin heart attack risk"), [p("c", "vitamin risk"), p("d", "heart")]),
      ];
      const batch = tokenizeBatch(tok, exs, [0, 1], { maxQueryLength: 16, maxPassageLength: 24, titleJoin: "pair", hardNegatives: 1 });
      expect(batch.size).toBe(2);
      // q0's first hard negative is q1's positive "b" (skipped), so q0 contributes "c"; q1's "c" is then a duplicate, so "d".
      expect(batch.hardNegatives).toBe(2);
      expect((batch.passages.inputIds as number[][]).length).toBe(4);
      const row0 = tok.encode("title one", "scurvy vitamin deficiency", { maxLength: 24 });
      expect((batch.passages.inputIds as number[][])[0]!.slice(0, row0.inputIds.length)).toEqual(row0.inputIds);
      expect((batch.passages.tokenTypeIds as number[][])[0]!.slice(0, row0.inputIds.length)).toEqual(row0.tokenTypeIds);
      expect((batch.passages.tokenTypeIds as number[][])[0]!).toContain(1);
      const heart = tok.encode("", "heart", { maxLength: 24 });
      expect((batch.passages.inputIds as number[][])[3]!.slice(0, heart.inputIds.length)).toEqual(heart.inputIds);
      // Padding: every row has the same length, padded positions masked.
      const L = (batch.passages.inputIds as number[][])[0]!.length;
      for (const [i, row] of (batch.passages.attentionMask as number[][]).entries()) {
        expect(row.length).toBe(L);
        expect(row.filter((x) => x === 1).length).toBe(
          tok.encode(
            i === 0 ? "title one" : "",
            [exs[0]!.positives[0]!, exs[1]!.positives[0]!, p("c", "vitamin risk"), p("d", "heart")][i]!.text,
            { maxLength: 24 },
          ).inputIds.length,
        );
      }
    },
  );

  it("truncates questions and passages to the given lengths", () => {
    const long = "scurvy ".repeat(100);
    const b = tokenizeBatch(tok, [ex(long, p("a", long)), ex("aspirin", p("b", "risk"))], [0, 1], {
      maxQueryLength: 10,
      maxPassageLength: 12,
      titleJoin: "none",
    });
    expect((b.questions.inputIds as number[][])[0]!.length).toBe(10);
    expect((b.passages.inputIds as number[][])[0]!.length).toBe(12);
  });
});

describe("ICT and crop pairs", () => {
  const corpus = [
    p(
      "d1",
      "Scurvy is caused by a lack of vitamin C. Sailors suffered from it on long voyages. Citrus fruit prevents the disease entirely.",
      "Scurvy",
    ),
    p("d2", "One sentence only without a second one", "Short"),
    p(
      "d3",
      "Aspirin lowers the risk of heart attack. It thins the blood in small doses. Bleeding is a known side effect of aspirin.",
      "Aspirin",
    ),
  ];

  it("splitSentences splits at sentence ends followed by a capital or digit", () => {
    expect(splitSentences("A b c. D e f! 3 items? (Note) here. e.g. lower")).toEqual([
      "A b c.",
      "D e f!",
      "3 items?",
      "(Note) here. e.g. lower",
    ]);
  });

  it(
    "ICT: the question is a sentence of the passage, removed from the positive about removeProb of the time; titles " +
      "and ids kept; passages of one sentence skipped",
    () => {
      const many = Array.from({ length: 200 }, (_, i) => ({ ...corpus[i % 3]!, id: `x${i}` }));
      const pairs = ictExamples(many, { seed: 1, epoch: 0, removeProb: 0.9 });
      expect(pairs.length).toBe(many.filter((x) => x.title !== "Short").length);
      let removed = 0;
      for (const e of pairs) {
        const source = many.find((x) => x.id === e.positives[0]!.id)!;
        expect(splitSentences(source.text)).toContain(e.question);
        expect(e.positives[0]!.title).toBe(source.title);
        if (!e.positives[0]!.text.includes(e.question)) removed++;
      }
      expect(removed / pairs.length).toBeGreaterThan(0.8);
      expect(removed / pairs.length).toBeLessThan(0.98);
      expect(ictExamples(many, { seed: 1, epoch: 0 })).toEqual(ictExamples(many, { seed: 1, epoch: 0 }));
      expect(ictExamples(many, { seed: 1, epoch: 1 })).not.toEqual(pairs);
    },
  );

  it("crop: both sides are word spans of the passage", () => {
    const pairs = cropExamples(corpus, { seed: 3, epoch: 0, minWords: 5 });
    expect(pairs.length).toBe(3);
    for (const e of pairs) {
      const source = corpus.find((x) => x.id === e.positives[0]!.id)!;
      const words = source.text.split(/\s+/).join(" ");
      expect(words).toContain(e.question);
      expect(words).toContain(e.positives[0]!.text);
      expect(e.question.split(" ").length).toBeGreaterThanOrEqual(5);
    }
  });
});

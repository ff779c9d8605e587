/**
 * The shipped default models (src/assets/models/) against the bundled PubMedQA test set
 * (src/assets/pubmedqa): both folders load with the plugin's own classes, vectors have the
 * documented dimension, and on a fixed set of bundled test questions the trained models reach
 * figures far above what an untrained (random) model gets, so a broken or swapped model fails.
 *
 * The thresholds are about 80% of the figures measured on the committed models with this test
 * (`PRINT_FIGURES=1 npx vitest run test/assets` prints them; full-set figures are in each folder's
 * SOURCE.md); nothing here depends on timing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { loadBeirCorpus, loadBeirQrels, loadBeirQueries } from "../../src/data/beir.js";
import type { Passage, Qrels, Query } from "../../src/data/types.js";
import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { CrossEncoderReranker } from "../../src/rerankers/cross-encoder-reranker.js";
import { BM25Index } from "../../src/retrievers/bm25/bm25-index.js";
import { DEFAULT_CROSS_ENCODER, DEFAULT_DPR_MODEL, DEMO_DATASET } from "../../src/demo/demo.js";

/** Number of bundled test questions evaluated (the first ones of qrels/test.tsv, in file order). */
const QUESTIONS = 50;
/** Documented vector dimension of the shipped DPR model (its hidden size). */
const DIMENSION = 128;
/** DPR recall@10 on the 50 questions over the full 1,000-passage corpus must exceed this. */
const MIN_DPR_RECALL_AT_10 = 0.65;
/**
 * Cross-encoder: share of the 50 questions whose own abstract it ranks first among BM25's top 20
 * (measured 0.88; a random order gives about 0.05).
 */
const MIN_RERANK_RECALL_AT_1 = 0.7;

let corpus: Passage[];
let questions: Query[];
let qrels: Qrels;

/** The single relevant passage id of a question (PubMedQA: each question has its own abstract). */
function relevantId(q: Query): string {
  const judged = qrels.get(q.id);
  if (!judged || judged.size !== 1) throw new Error(`test fixture: ${q.id} should have exactly one judged passage`);
  return [...judged.keys()][0]!;
}

beforeAll(async () => {
  corpus = await loadBeirCorpus(DEMO_DATASET);
  qrels = await loadBeirQrels(join(DEMO_DATASET, "qrels", "test.tsv"));
  const byId = new Map((await loadBeirQueries(DEMO_DATASET)).map((q) => [q.id, q]));
  questions = [...qrels.keys()].slice(0, QUESTIONS).map((id) => {
    const q = byId.get(id);
    if (!q) throw new Error(`test fixture: judged question ${id} is missing from queries.jsonl`);
    return q;
  });
});

describe("shipped DPR model (src/assets/models/dpr-pubmedqa)", () => {
  let embeddings: DPREmbeddings;
  beforeAll(() => {
    embeddings = new DPREmbeddings({ modelPath: DEFAULT_DPR_MODEL, batchSize: 64 });
  });
  afterAll(async () => {
    await embeddings?.dispose();
  });

  it("states its data, licence and reproduction command", async () => {
    const source = await readFile(join(DEFAULT_DPR_MODEL, "SOURCE.md"), "utf8");
    expect(source).toMatch(/PubMedQA/);
    expect(source).toMatch(/MIT/);
    expect(source).toMatch(/scripts\/train-default-models\.sh/);
    const training = JSON.parse(await readFile(join(DEFAULT_DPR_MODEL, "training.json"), "utf8")) as { hyperparameters?: unknown };
    expect(training.hyperparameters).toBeDefined();
  });

  it(`embeds questions and passages as ${DIMENSION}-dimensional finite vectors`, async () => {
    const q = await embeddings.embedQuery(questions[0]!.text);
    const [p] = await embeddings.embedPassages([{ title: corpus[0]!.title, text: corpus[0]!.text }]);
    expect(q).toHaveLength(DIMENSION);
    expect(p).toHaveLength(DIMENSION);
    expect(q.every(Number.isFinite) && p!.every(Number.isFinite)).toBe(true);
  });

  it(
    `finds the question's own abstract in the top 10 of 1,000 for more than ${MIN_DPR_RECALL_AT_10 * 100}% of ` +
      `${QUESTIONS} bundled test questions`,
    async () => {
      const p = await embeddings.embedPassagesMatrix(corpus.map((x) => ({ title: x.title, text: x.text })));
      const q = await embeddings.embedQueriesMatrix(questions.map((x) => x.text));
      expect(p.dim).toBe(DIMENSION);
      expect(p.count).toBe(corpus.length);
      let hits = 0;
      const scores = new Float32Array(corpus.length);
      for (let i = 0; i < questions.length; i++) {
        for (let j = 0; j < corpus.length; j++) {
          let s = 0;
          for (let d = 0; d < p.dim; d++) s += q.data[i * p.dim + d]! * p.data[j * p.dim + d]!;
          scores[j] = s;
        }
        const target = corpus.findIndex((x) => x.id === relevantId(questions[i]!));
        // Rank of the relevant passage = 1 + passages scoring strictly higher.
        let higher = 0;
        for (let j = 0; j < corpus.length; j++) if (scores[j]! > scores[target]!) higher++;
        if (higher < 10) hits++;
      }
      const recall = hits / questions.length;
      if (process.env.PRINT_FIGURES) console.log(`DPR recall@10 on ${questions.length} questions: ${recall}`);
      expect(recall).toBeGreaterThan(MIN_DPR_RECALL_AT_10);
    },
  );

  it(
    "carries a hybrid fusion tuned on held-out train questions (HybridRetriever's default for it) that gives the dense " +
      "side a small weight",
    async () => {
      const fusion = await new DPREmbeddings({ modelPath: DEFAULT_DPR_MODEL }).storedFusion();
      expect(fusion?.method).toBe("linear");
      if (fusion?.method !== "linear") return;
      expect(fusion.alpha).toBeGreaterThan(0);
      expect(fusion.alpha).toBeLessThan(0.5);
      expect(fusion.tunedOn).toMatchObject({ split: "train", selection: "fraction", fraction: 0.2, seed: 42, questions: 100 });
      expect(fusion.tunedOn!.score).toBeGreaterThanOrEqual(fusion.tunedOn!.bm25Score);
    },
  );
});

describe("shipped cross-encoder (src/assets/models/cross-encoder-pubmedqa)", () => {
  let reranker: CrossEncoderReranker;
  beforeAll(() => {
    reranker = new CrossEncoderReranker({ modelPath: DEFAULT_CROSS_ENCODER, batchSize: 64 });
  });
  afterAll(async () => {
    await reranker?.dispose();
  });

  it("states its data, licence and reproduction command", async () => {
    const source = await readFile(join(DEFAULT_CROSS_ENCODER, "SOURCE.md"), "utf8");
    expect(source).toMatch(/PubMedQA/);
    expect(source).toMatch(/MIT/);
    expect(source).toMatch(/scripts\/train-default-models\.sh/);
  });

  it(
    `ranks the question's own abstract first among BM25's top 20 for more than ${MIN_RERANK_RECALL_AT_1 * 100}% of ` +
      `${QUESTIONS} bundled test questions`,
    async () => {
      const bm25 = await BM25Index.fromPassages(corpus);
      const byId = new Map(corpus.map((x) => [x.id, x]));
      let firsts = 0;
      let candidatesWithPositive = 0;
      for (const question of questions) {
        const target = relevantId(question);
        // BM25's top 20, with the relevant abstract put in when BM25 missed it, so that the figure
        // measures the cross-encoder alone.
        const ids = bm25.search(question.text, 20).map((h) => h.id);
        if (ids.includes(target)) candidatesWithPositive++;
        else ids[ids.length - 1] = target;
        const scores = await reranker.scorePairs(
          question.text,
          ids.map((id) => byId.get(id)!.text),
        );
        expect(scores).toHaveLength(ids.length);
        const best = scores.indexOf(Math.max(...scores));
        if (ids[best] === target) firsts++;
      }
      if (process.env.PRINT_FIGURES)
        console.log(`cross-encoder first of BM25 top 20 on ${questions.length} questions: ${firsts / questions.length}`);
      expect(candidatesWithPositive).toBeGreaterThan(QUESTIONS * 0.9);
      expect(firsts / questions.length).toBeGreaterThan(MIN_RERANK_RECALL_AT_1);
    },
  );
});

/**
 * A tiny BEIR folder and a tiny random DPR model for the evaluation tests, written on the fly.
 *
 * Corpus: the first 60 abstracts of test/fixtures/passages/pubmedqa-300.jsonl (PubMedQA, MIT),
 * without titles. Queries: the PubMedQA questions of the first 12 abstracts (the fixture stores
 * each question as the abstract's title). Qrels (test split): question i → abstract i grade 2,
 * and for even i also abstract i + 30 grade 1 (so nDCG is graded and recall has two relevant
 * passages); query q11 only has a grade-0 judgement (skipped by the metrics). A dev split holds
 * two queries.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { tinyBertConfig } from "../../src/models/config.js";
import { saveDPRModel } from "../../src/models/model-dir.js";
import { randomBertWeights } from "../../src/models/weights.js";
import { BertTokenizer } from "../../src/tokenizers/bert-tokenizer.js";
import { buildWordPieceVocab } from "../../src/tokenizers/vocab.js";

const FIXTURE = fileURLToPath(new URL("../fixtures/passages/pubmedqa-300.jsonl", import.meta.url));

export interface TinyBeir {
  dir: string;
  passages: Array<{ id: string; text: string }>;
  queries: Array<{ id: string; text: string }>;
  /** Test-split qrels: query id → passage id → grade. */
  qrels: Map<string, Map<string, number>>;
}

/** Writes the tiny BEIR folder into `dir`. */
export async function writeTinyBeir(dir: string): Promise<TinyBeir> {
  const rows = (await readFile(FIXTURE, "utf8"))
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(0, 60)
    .map((l) => JSON.parse(l) as { id: string; title: string; text: string });
  const passages = rows.map((r) => ({ id: `p${r.id}`, text: r.text }));
  const queries = rows.slice(0, 12).map((r, i) => ({ id: `q${i}`, text: r.title }));
  const qrels = new Map<string, Map<string, number>>();
  queries.forEach((q, i) => {
    const judged = new Map<string, number>();
    if (i === 11) judged.set(passages[i]!.id, 0);
    else {
      judged.set(passages[i]!.id, 2);
      if (i % 2 === 0) judged.set(passages[i + 30]!.id, 1);
    }
    qrels.set(q.id, judged);
  });
  await mkdir(join(dir, "qrels"), { recursive: true });
  await writeFile(join(dir, "corpus.jsonl"), passages.map((p) => JSON.stringify({ _id: p.id, title: "", text: p.text })).join("\n") + "\n");
  const extra = { id: "q-unjudged", text: "a query without judgements in any split" };
  await writeFile(
    join(dir, "queries.jsonl"),
    [...queries, extra].map((q) => JSON.stringify({ _id: q.id, text: q.text })).join("\n") + "\n",
  );
  const lines = ["query-id\tcorpus-id\tscore"];
  for (const [qid, judged] of qrels) for (const [pid, g] of judged) lines.push(`${qid}\t${pid}\t${g}`);
  await writeFile(join(dir, "qrels", "test.tsv"), lines.join("\n") + "\n");
  await writeFile(join(dir, "qrels", "dev.tsv"), `query-id\tcorpus-id\tscore\nq0\t${passages[0]!.id}\t1\nq1\t${passages[1]!.id}\t1\n`);
  return { dir, passages, queries, qrels };
}

/** Writes a tiny random DPR model (2 layers, hidden 32, 128 positions) with a vocabulary from `texts`. */
export async function writeTinyDpr(dir: string, texts: string[]): Promise<void> {
  const tokenizer = BertTokenizer.fromVocab(buildWordPieceVocab(texts, { vocabSize: 600, lowercase: true }), { lowercase: true });
  const config = tinyBertConfig({ vocab_size: tokenizer.vocabSize, initializer_range: 0.3 });
  await saveDPRModel(dir, {
    question: { config, weights: randomBertWeights(config, { seed: 11 }), safetensors: false },
    passage: { config, weights: randomBertWeights(config, { seed: 12 }), safetensors: false },
    tokenizer,
    dprConfig: { maxQueryLength: 64, maxPassageLength: 128 },
  });
}

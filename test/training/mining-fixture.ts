/**
 * A tiny BEIR folder for the mining and cross-encoder tests, written on the fly.
 *
 * Corpus: the first `size` abstracts of test/fixtures/passages/pubmedqa-300.jsonl (PubMedQA, MIT),
 * ids `p<PMID>`, without titles, plus one exact duplicate of abstract 0's text under id `dup0`.
 * Questions: the PubMedQA question paired with each of the first `questions` abstracts (the fixture
 * stores it as the abstract's title). Train qrels: question i → abstract i (grade 1); question 0 also
 * → abstract 1 (grade 1: two positives); question 1 has a grade-0 judgement on abstract 2 (judged
 * non-relevant: a legitimate negative). A test split holds the next questions.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const FIXTURE = fileURLToPath(new URL("../fixtures/passages/pubmedqa-300.jsonl", import.meta.url));

export interface MiningFixture {
  dir: string;
  passages: { id: string; title: string; text: string }[];
  /** Train questions, in order. */
  questions: { id: string; text: string }[];
  /** Train qrels. */
  qrels: Map<string, Map<string, number>>;
  /** Test questions (each → its own abstract). */
  testQuestions: { id: string; text: string }[];
}

/** Writes the fixture BEIR folder into `dir`. */
export async function writeMiningFixture(
  dir: string,
  opts: { size?: number; questions?: number; testQuestions?: number } = {},
): Promise<MiningFixture> {
  const size = opts.size ?? 80;
  const nq = opts.questions ?? 16;
  const nt = opts.testQuestions ?? 8;
  const rows = (await readFile(FIXTURE, "utf8"))
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(0, size)
    .map((l) => JSON.parse(l) as { id: string; title: string; text: string });
  const passages = rows.map((r) => ({ id: `p${r.id}`, title: "", text: r.text }));
  passages.push({ id: "dup0", title: "", text: rows[0]!.text });
  const questions = rows.slice(0, nq).map((r, i) => ({ id: `q${i}`, text: r.title }));
  const testQuestions = rows.slice(nq, nq + nt).map((r, i) => ({ id: `t${i}`, text: r.title }));
  const qrels = new Map<string, Map<string, number>>();
  questions.forEach((q, i) => qrels.set(q.id, new Map([[passages[i]!.id, 1]])));
  qrels.get("q0")!.set(passages[1]!.id, 1);
  qrels.get("q1")!.set(passages[2]!.id, 0);
  await mkdir(join(dir, "qrels"), { recursive: true });
  await writeFile(
    join(dir, "corpus.jsonl"),
    passages.map((p) => JSON.stringify({ _id: p.id, title: p.title, text: p.text })).join("\n") + "\n",
  );
  await writeFile(
    join(dir, "queries.jsonl"),
    [...questions, ...testQuestions].map((q) => JSON.stringify({ _id: q.id, text: q.text })).join("\n") + "\n",
  );
  const train = ["query-id\tcorpus-id\tscore"];
  for (const [qid, judged] of qrels) for (const [pid, g] of judged) train.push(`${qid}\t${pid}\t${g}`);
  await writeFile(join(dir, "qrels", "train.tsv"), train.join("\n") + "\n");
  const test = ["query-id\tcorpus-id\tscore", ...testQuestions.map((q, i) => `${q.id}\t${passages[nq + i]!.id}\t1`)];
  await writeFile(join(dir, "qrels", "test.tsv"), test.join("\n") + "\n");
  return { dir, passages, questions, qrels, testQuestions };
}

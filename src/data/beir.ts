import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { lineSnippet, readJsonLines, stringField } from "./jsonl.js";
import type { Passage, Qrels, Query } from "./types.js";

const WHO = "BEIR";

/** A BEIR dataset folder loaded for one split. */
export interface BeirDataset {
  corpus: Passage[];
  /** Only the queries that have judgements in the split's qrels. */
  queries: Query[];
  qrels: Qrels;
  split: string;
}

const CORPUS_LINE = 'a JSON object {"_id", "title"?, "text", "metadata"?}';
const QUERY_LINE = 'a JSON object {"_id", "text"}';

function asObjectRecord(value: unknown, where: string, expected: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const got = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value} ${lineSnippet(String(value))}`;
    throw new Error(`${WHO}: expected ${expected} at ${where}, got ${got}`);
  }
  return value as Record<string, unknown>;
}

/**
 * Streams the passages of a BEIR `corpus.jsonl` (`{_id, title, text, metadata?}` per line), one
 * at a time: memory stays flat for corpora of any size. A missing `title` becomes `""`; a missing
 * `_id` or `text`, or bad JSON, throws with `file:line`.
 *
 * @param pathOrDir the `corpus.jsonl` file or the dataset folder holding it
 */
export async function* streamBeirCorpus(pathOrDir: string): AsyncGenerator<Passage> {
  const path = pathOrDir.endsWith(".jsonl") ? pathOrDir : join(pathOrDir, "corpus.jsonl");
  for await (const { value, line } of readJsonLines(path, WHO, CORPUS_LINE)) {
    const where = `${path}:${line}`;
    const record = asObjectRecord(value, where, CORPUS_LINE);
    const passage: Passage = {
      id: stringField(record, "_id", where, WHO, { allowNumber: true }),
      title: stringField(record, "title", where, WHO, { optional: true }),
      text: stringField(record, "text", where, WHO),
    };
    const metadata = record["metadata"];
    if (metadata !== undefined && metadata !== null) {
      if (typeof metadata !== "object" || Array.isArray(metadata)) {
        throw new Error(`${WHO}: field "metadata" at ${where} must be an object`);
      }
      if (Object.keys(metadata).length > 0) passage.metadata = metadata as Record<string, unknown>;
    }
    yield passage;
  }
}

/** Loads a whole BEIR corpus into an array (see {@link streamBeirCorpus} for the streaming form). */
export async function loadBeirCorpus(pathOrDir: string): Promise<Passage[]> {
  const out: Passage[] = [];
  for await (const p of streamBeirCorpus(pathOrDir)) out.push(p);
  return out;
}

/** Loads a BEIR `queries.jsonl` (`{_id, text}` per line). */
export async function loadBeirQueries(pathOrDir: string): Promise<Query[]> {
  const path = pathOrDir.endsWith(".jsonl") ? pathOrDir : join(pathOrDir, "queries.jsonl");
  const out: Query[] = [];
  for await (const { value, line } of readJsonLines(path, WHO, QUERY_LINE)) {
    const where = `${path}:${line}`;
    asObjectRecord(value, where, QUERY_LINE);
    out.push({
      id: stringField(value, "_id", where, WHO, { allowNumber: true }),
      text: stringField(value, "text", where, WHO),
    });
  }
  return out;
}

/**
 * Reads a BEIR qrels TSV (`query-id<TAB>corpus-id<TAB>score`, header optional). Scores are
 * integers (graded); all judgements are kept, including score 0 (non-relevant).
 */
export async function loadBeirQrels(path: string): Promise<Qrels> {
  const qrels: Qrels = new Map();
  let input;
  try {
    await stat(path);
    input = createReadStream(path, { encoding: "utf8" });
  } catch {
    throw new Error(`${WHO}: qrels file not found: ${path}`);
  }
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  for await (const raw of lines) {
    line++;
    if (raw.trim() === "") continue;
    const cols = raw.split("\t");
    if (line === 1 && cols.length >= 3 && !/^-?\d+(\.\d+)?$/.test(cols[2]!.trim())) continue; // header
    if (cols.length !== 3) {
      throw new Error(`${WHO}: expected 3 tab-separated columns (query-id, corpus-id, score) at ${path}:${line}, got ${cols.length}`);
    }
    const [qid, docId, scoreText] = cols as [string, string, string];
    if (qid === "" || docId === "") {
      throw new Error(
        `${WHO}: empty ${qid === "" ? "query-id" : "corpus-id"} at ${path}:${line} (expected query-id<TAB>corpus-id<TAB>score)`,
      );
    }
    const score = Number(scoreText.trim());
    if (!Number.isFinite(score) || scoreText.trim() === "") {
      throw new Error(`${WHO}: score must be a number at ${path}:${line}, got "${scoreText}"`);
    }
    let judged = qrels.get(qid);
    if (!judged) qrels.set(qid, (judged = new Map()));
    judged.set(docId, score);
  }
  return qrels;
}

/** The qrels splits available in a BEIR folder (file names under `qrels/` without `.tsv`), sorted. */
export async function listBeirSplits(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(join(dir, "qrels"));
  } catch {
    throw new Error(`${WHO}: no qrels folder in ${dir}`);
  }
  return names
    .filter((n) => n.endsWith(".tsv"))
    .map((n) => n.slice(0, -4))
    .sort();
}

/**
 * Loads a BEIR folder for one split: the corpus, the queries judged in that split, and its qrels.
 * Throws, listing the available splits, when the split does not exist.
 */
export async function loadBeirDataset(dir: string, split: string): Promise<BeirDataset> {
  const splits = await listBeirSplits(dir);
  if (!splits.includes(split)) {
    throw new Error(`${WHO}: split "${split}" not found in ${dir}/qrels (available: ${splits.join(", ") || "none"})`);
  }
  const [corpus, allQueries, qrels] = await Promise.all([
    loadBeirCorpus(dir),
    loadBeirQueries(dir),
    loadBeirQrels(join(dir, "qrels", `${split}.tsv`)),
  ]);
  const queries = allQueries.filter((q) => qrels.has(q.id));
  return { corpus, queries, qrels, split };
}

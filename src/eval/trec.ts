/**
 * TREC run and qrels files, as trec_eval reads them.
 * Run lines: `qid Q0 docid rank score tag` (whitespace-separated; trec_eval ignores the rank and
 * re-sorts by score). Qrels lines: `qid iter docid relevance`.
 */
import { readFile } from "node:fs/promises";
import { writeStreamAtomic } from "../utils/atomic-file.js";
import type { Qrels } from "../data/types.js";
import { rankLikeTrecEval, type Run } from "./metrics.js";

const WHO = "TREC";

/**
 * Writes a run file (atomically: temporary file + rename), queries in insertion order, each
 * query's passages in trec_eval order with ranks 1..n.
 */
export async function writeTrecRun(path: string, run: Run, tag = "langchain-dpr"): Promise<void> {
  if (!/^\S+$/.test(tag)) throw new Error(`${WHO}: run tag must be one word without spaces, got ${JSON.stringify(tag)}`);
  await writeStreamAtomic(path, async (write) => {
    for (const [qid, scores] of run) {
      if (/\s/.test(qid)) throw new Error(`${WHO}: query id ${JSON.stringify(qid)} contains whitespace; TREC files cannot hold it`);
      let chunk = "";
      rankLikeTrecEval(scores).forEach((docId, i) => {
        if (/\s/.test(docId)) throw new Error(`${WHO}: passage id ${JSON.stringify(docId)} contains whitespace; TREC files cannot hold it`);
        chunk += `${qid} Q0 ${docId} ${i + 1} ${scores.get(docId)} ${tag}\n`;
      });
      await write(chunk);
    }
  });
}

async function readLines(path: string): Promise<string[]> {
  try {
    return (await readFile(path, "utf8")).split(/\r?\n/);
  } catch {
    throw new Error(`${WHO}: cannot read ${path}`);
  }
}

/** Reads a TREC run file into a {@link Run}; errors name `file:line`. */
export async function readTrecRun(path: string): Promise<Run> {
  const run: Run = new Map();
  const lines = await readLines(path);
  lines.forEach((raw, i) => {
    if (raw.trim() === "") return;
    const cols = raw.trim().split(/\s+/);
    if (cols.length !== 6)
      throw new Error(`${WHO}: expected 6 columns "qid Q0 docid rank score tag" at ${path}:${i + 1}, got ${cols.length}`);
    const [qid, , docId, , scoreText] = cols as [string, string, string, string, string, string];
    const score = Number(scoreText);
    if (!Number.isFinite(score)) throw new Error(`${WHO}: score must be a number at ${path}:${i + 1}, got "${scoreText}"`);
    let scores = run.get(qid);
    if (!scores) run.set(qid, (scores = new Map()));
    if (scores.has(docId)) throw new Error(`${WHO}: passage "${docId}" listed twice for query "${qid}" at ${path}:${i + 1}`);
    scores.set(docId, score);
  });
  return run;
}

/** Reads TREC qrels (`qid iter docid relevance`); errors name `file:line`. */
export async function readTrecQrels(path: string): Promise<Qrels> {
  const qrels: Qrels = new Map();
  const lines = await readLines(path);
  lines.forEach((raw, i) => {
    if (raw.trim() === "") return;
    const cols = raw.trim().split(/\s+/);
    if (cols.length !== 4) throw new Error(`${WHO}: expected 4 columns "qid iter docid relevance" at ${path}:${i + 1}, got ${cols.length}`);
    const [qid, , docId, relText] = cols as [string, string, string, string];
    const rel = Number(relText);
    if (!Number.isFinite(rel)) throw new Error(`${WHO}: relevance must be a number at ${path}:${i + 1}, got "${relText}"`);
    let judged = qrels.get(qid);
    if (!judged) qrels.set(qid, (judged = new Map()));
    judged.set(docId, rel);
  });
  return qrels;
}

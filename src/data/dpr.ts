import { readFile } from "node:fs/promises";
import { writeStreamAtomic } from "../utils/atomic-file.js";
import { lineSnippet, readJsonLines } from "./jsonl.js";
import type { Passage, TrainingExample } from "./types.js";

const WHO = "DPRData";

function describe(value: unknown): string {
  if (value === undefined) return "nothing (missing)";
  if (Array.isArray(value)) return "an array";
  return value === null ? "null" : typeof value;
}

/** Parses one passage: a string (text only) or an object `{title?, text, passage_id? | psg_id? | id? | _id?}`. */
function parsePassage(value: unknown, where: string): Passage {
  if (typeof value === "string") return { id: "", title: "", text: value };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${WHO}: passage at ${where} must be a string or an object with "text", got ${describe(value)}`);
  }
  const r = value as Record<string, unknown>;
  const text = r["text"];
  if (typeof text !== "string") throw new Error(`${WHO}: passage at ${where} needs a string "text", got ${describe(text)}`);
  const title = r["title"];
  if (title !== undefined && title !== null && typeof title !== "string") {
    throw new Error(`${WHO}: passage "title" at ${where} must be a string, got ${describe(title)}`);
  }
  const rawId = r["passage_id"] ?? r["psg_id"] ?? r["id"] ?? r["_id"];
  const id = typeof rawId === "string" || typeof rawId === "number" ? String(rawId) : "";
  return { id, title: typeof title === "string" ? title : "", text };
}

function parsePassageList(value: unknown, where: string, required: boolean): Passage[] {
  if (value === undefined || value === null) {
    if (required) throw new Error(`${WHO}: ${where} is missing (expected a list of passages)`);
    return [];
  }
  if (!Array.isArray(value)) throw new Error(`${WHO}: ${where} must be a list of passages, got ${describe(value)}`);
  return value.map((v, i) => parsePassage(v, `${where}[${i}]`));
}

/** Converts one parsed DPR JSON record into a {@link TrainingExample}. */
export function parseDprRecord(value: unknown, where: string): TrainingExample {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${WHO}: record ${where} must be an object, got ${describe(value)}`);
  }
  const r = value as Record<string, unknown>;
  const question = r["question"];
  if (typeof question !== "string") {
    throw new Error(`${WHO}: record ${where} needs a string "question", got ${describe(question)}`);
  }
  const answers = r["answers"];
  if (answers !== undefined && !(Array.isArray(answers) && answers.every((a) => typeof a === "string"))) {
    throw new Error(`${WHO}: record ${where} field "answers" must be a list of strings`);
  }
  const example: TrainingExample = {
    question,
    positives: parsePassageList(r["positive_ctxs"], `${where}.positive_ctxs`, true),
    negatives: parsePassageList(r["negative_ctxs"], `${where}.negative_ctxs`, false),
    hardNegatives: parsePassageList(r["hard_negative_ctxs"], `${where}.hard_negative_ctxs`, false),
  };
  if (answers !== undefined) example.answers = answers as string[];
  return example;
}

/**
 * Reads a DPR training file: a JSON list of
 * `{question, answers?, positive_ctxs, negative_ctxs?, hard_negative_ctxs?}` with contexts
 * `{title, text, passage_id?}`. Titles are kept. (The file is parsed in one piece: V8 limits a
 * string to about 512 MiB; split larger files, or use JSONL pairs.)
 */
export async function readDprJson(path: string): Promise<TrainingExample[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new Error(`${WHO}: cannot read DPR JSON file ${path}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`${WHO}: invalid JSON in ${path}${jsonErrorPlace(text, (err as Error).message)}: ${(err as Error).message}`);
  }
  if (!Array.isArray(data)) throw new Error(`${WHO}: ${path} must hold a JSON list of records, got ${describe(data)}`);
  return data.map((rec, i) => parseDprRecord(rec, `${path}[${i}]`));
}

/**
 * Where a JSON.parse error lies, from the "position N" V8 gives: ` at line L, column C (expected a JSON
 * list of DPR records; near "…")`, or just what was expected when the message has no position.
 */
function jsonErrorPlace(text: string, message: string): string {
  const m = /position (\d+)/.exec(message);
  if (!m) return " (expected a JSON list of DPR records)";
  const pos = Math.min(Number(m[1]), text.length);
  const lineStart = text.lastIndexOf("\n", pos - 1) + 1;
  let line = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < pos; i = text.indexOf("\n", i + 1)) line++;
  const near = text.slice(Math.max(lineStart, pos - 40), pos + 40).split("\n")[0]!;
  return ` at line ${line}, column ${pos - lineStart + 1} (expected a JSON list of DPR records; near ${lineSnippet(near)})`;
}

function ctxJson(p: Passage): Record<string, unknown> {
  const out: Record<string, unknown> = { title: p.title, text: p.text };
  if (p.id !== "") out["passage_id"] = p.id;
  const score = p.metadata?.["score"];
  if (typeof score === "number" && Number.isFinite(score)) out["score"] = Number(score.toFixed(6));
  return out;
}

/**
 * Writes examples in DPR's JSON layout (`question`, `query_id` when known, `answers`,
 * `positive_ctxs`, `negative_ctxs`, `hard_negative_ctxs`; contexts `{title, text, passage_id}`
 * plus `score` when `metadata.score` is a number), streamed record by record and saved atomically
 * (temporary file + rename: the previous file survives a crash).
 */
export async function writeDprJson(path: string, examples: Iterable<TrainingExample>): Promise<void> {
  await writeStreamAtomic(path, async (write) => {
    await write("[\n");
    let first = true;
    for (const ex of examples) {
      const rec: Record<string, unknown> = { question: ex.question };
      if (ex.queryId !== undefined) rec["query_id"] = ex.queryId;
      if (ex.answers) rec["answers"] = ex.answers;
      rec["positive_ctxs"] = ex.positives.map(ctxJson);
      rec["negative_ctxs"] = ex.negatives.map(ctxJson);
      rec["hard_negative_ctxs"] = ex.hardNegatives.map(ctxJson);
      await write((first ? "" : ",\n") + JSON.stringify(rec));
      first = false;
    }
    await write("\n]\n");
  });
}

/**
 * Reads simple JSON Lines training pairs, streamed: each line is
 * `{query, positive, negatives?, hard_negatives?}` or `{question, passage}`, where a passage is a
 * string or `{title?, text, id?}`. Errors name `file:line`.
 */
export async function readJsonlPairs(path: string): Promise<TrainingExample[]> {
  const out: TrainingExample[] = [];
  const expected = 'a JSON object {"query", "positive", "negatives"?, "hard_negatives"?} or {"question", "passage"}';
  for await (const { value, line } of readJsonLines(path, WHO, expected)) {
    const where = `${path}:${line}`;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new Error(`${WHO}: expected a JSON object at ${where}, got ${describe(value)}`);
    }
    const r = value as Record<string, unknown>;
    const question = r["query"] ?? r["question"];
    if (typeof question !== "string") {
      throw new Error(`${WHO}: line ${where} needs a string "query" or "question", got ${describe(question)}`);
    }
    const positive = r["positive"] ?? r["passage"];
    if (positive === undefined) throw new Error(`${WHO}: line ${where} needs "positive" or "passage"`);
    out.push({
      question,
      positives: [parsePassage(positive, `${where} positive`)],
      negatives: parsePassageList(r["negatives"], `${where} negatives`, false),
      hardNegatives: parsePassageList(r["hard_negatives"], `${where} hard_negatives`, false),
    });
  }
  return out;
}

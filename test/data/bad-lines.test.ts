/**
 * Bad lines in the data files (issue #16): every error names the loader, the file, the line and what
 * the line should hold, never a bare SyntaxError.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBeirCorpus, loadBeirQrels, loadBeirQueries, readDprJson, readJsonlPairs } from "../../src/data/index.js";
import { readJsonLines } from "../../src/data/jsonl.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "bad-lines-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const path = join(root, name);
  await writeFile(path, text);
  return path;
}

/** The rejection of `p`, which must be a plain Error (not a SyntaxError) naming `path`. */
async function failure(p: Promise<unknown>, path: string): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  expect(err).not.toBeInstanceOf(SyntaxError);
  const message = (err as Error).message;
  expect(message).toContain(path);
  return message;
}

describe("BEIR files with a bad line", () => {
  it("corpus.jsonl: a cut line names file:line, the record a line holds, the parser's message and the line", async () => {
    const path = await file("corpus.jsonl", '{"_id": "d1", "text": "fine"}\n\n{"_id": "d2", "text": "cut her\n');
    const message = await failure(loadBeirCorpus(path), path);
    // The parser's own words vary with the Node version: only their place in the message is checked.
    const head = `BEIR: invalid JSON at ${path}:3 (expected a JSON object {"_id", "title"?, "text", "metadata"?} per line): `;
    const tail = `; the line starts "{\\"_id\\": \\"d2\\", \\"text\\": \\"cut her"`;
    expect(message.startsWith(head)).toBe(true);
    expect(message.endsWith(tail)).toBe(true);
    expect(message.length).toBeGreaterThan(head.length + tail.length);
  });

  it("corpus.jsonl: a line holding an array or a number says what it holds", async () => {
    const path = await file("corpus-array.jsonl", '{"_id": "d1", "text": "fine"}\n["d2", "text"]\n');
    expect(await failure(loadBeirCorpus(path), path)).toBe(
      `BEIR: expected a JSON object {"_id", "title"?, "text", "metadata"?} at ${path}:2, got an array`,
    );
    const num = await file("corpus-number.jsonl", "42\n");
    expect(await failure(loadBeirCorpus(num), num)).toBe(
      `BEIR: expected a JSON object {"_id", "title"?, "text", "metadata"?} at ${num}:1, got a number "42"`,
    );
  });

  it("queries.jsonl: a bad line and a non-object line name file:line and the query record", async () => {
    const path = await file("queries.jsonl", '{"_id": "q1", "text": "ok"}\n{"_id": "q2" "text": "no comma"}\n');
    expect(await failure(loadBeirQueries(path), path)).toMatch(
      new RegExp(`^BEIR: invalid JSON at ${path.replace(/\./g, "\\.")}:2 \\(expected a JSON object \\{"_id", "text"\\} per line\\): `),
    );
    const str = await file("queries-string.jsonl", '"just a string"\n');
    expect(await failure(loadBeirQueries(str), str)).toBe(
      `BEIR: expected a JSON object {"_id", "text"} at ${str}:1, got a string "just a string"`,
    );
  });

  it("qrels: an empty id and a non-number score name file:line", async () => {
    const path = await file("qrels.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n\td2\t1\n");
    expect(await failure(loadBeirQrels(path), path)).toBe(`BEIR: empty query-id at ${path}:3 (expected query-id<TAB>corpus-id<TAB>score)`);
    const score = await file("qrels-score.tsv", "q1\td1\t1\nq1\td2\tyes\n");
    expect(await failure(loadBeirQrels(score), score)).toBe(`BEIR: score must be a number at ${score}:2, got "yes"`);
  });
});

describe("DPR files with a bad line", () => {
  it("DPR JSON: names the line and column of the syntax error and the text near it", async () => {
    const text = '[\n  {"question": "q1", "positive_ctxs": [{"text": "a"}]},\n  {"question": "q2", "positive_ctxs": [{"text": "b"}],}\n]\n';
    const path = await file("dpr.json", text);
    const message = await failure(readDprJson(path), path);
    expect(message).toMatch(
      new RegExp(
        `^DPRData: invalid JSON in ${path.replace(/\./g, "\\.")} at line 3, column 55 \\(expected a JSON list of DPR records; ` +
          `near " \\\\"q2\\\\", \\\\"positive_ctxs\\\\": \\[\\{\\\\"text\\\\": \\\\"b\\\\"\\}\\],\\}"\\): .*position 112`,
      ),
    );
    const empty = await file("empty.json", "");
    expect(await failure(readDprJson(empty), empty)).toMatch(
      new RegExp(`^DPRData: invalid JSON in ${empty.replace(/\./g, "\\.")} \\(expected a JSON list of DPR records\\): \\S`),
    );
  });

  it("JSONL pairs: a bad line names file:line and both accepted record shapes", async () => {
    const path = await file("pairs.jsonl", '{"query": "q", "positive": "p"}\n{"query": "q2", positive: "p"}\n');
    expect(await failure(readJsonlPairs(path), path)).toMatch(
      new RegExp(
        `^DPRData: invalid JSON at ${path.replace(/\./g, "\\.")}:2 \\(expected a JSON object ` +
          `\\{"query", "positive", "negatives"\\?, "hard_negatives"\\?\\} or \\{"question", "passage"\\} per line\\): `,
      ),
    );
  });

  it("readJsonLines cuts the quoted line at 80 characters", async () => {
    const long = `{"text": "${"x".repeat(200)}`;
    const path = await file("long.jsonl", `${long}\n`);
    const message = await failure(readJsonLines(path, "Test", "a record").next(), path);
    expect(message).toMatch(/the line starts "\{\\"text\\": \\"x{70}…"$/);
  });
});

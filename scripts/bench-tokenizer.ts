/**
 * Tokenizer parity and speed: our BertTokenizer vs Hugging Face's Rust `tokenizers` (Node binding,
 * the reference) vs the pure-JS `@huggingface/tokenizers`, all in this one process on the same texts.
 *
 *   npx tsx scripts/bench-tokenizer.ts [--model DIR] [--corpus a.jsonl,b.jsonl] [--limit 2000] [--reps 7]
 *
 * Without --model, a 30,522-entry uncased WordPiece vocabulary is trained on the corpus
 * (buildWordPieceVocab). Corpus: BEIR-style jsonl ({title, text}); default: the committed
 * fixtures test/fixtures/passages/pubmedqa-300.jsonl + hard-cases.jsonl.
 * Parity is checked without truncation (@huggingface/tokenizers has none) on title/text pairs and
 * on single texts. Speed = tokens per second, median of --reps passes after one warm-up pass.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Tokenizer as HfJsTokenizer } from "@huggingface/tokenizers";
import { BertTokenizer } from "../src/tokenizers/bert-tokenizer.js";
import { buildWordPieceVocab } from "../src/tokenizers/vocab.js";

const rs = createRequire(import.meta.url)("tokenizers") as typeof import("tokenizers");

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    corpus: { type: "string" },
    limit: { type: "string", default: "2000" },
    reps: { type: "string", default: "7" },
  },
});
const fixtureDir = fileURLToPath(new URL("../test/fixtures/passages/", import.meta.url));
const corpusFiles = values.corpus
  ? values.corpus.split(",")
  : [join(fixtureDir, "pubmedqa-300.jsonl"), join(fixtureDir, "hard-cases.jsonl")];
const limit = Number(values.limit);
const reps = Number(values.reps);

interface Doc {
  title: string;
  text: string;
}
const docs: Doc[] = [];
for (const f of corpusFiles) {
  for (const line of readFileSync(f, "utf8").split("\n")) {
    if (!line.trim() || docs.length >= limit) continue;
    const o = JSON.parse(line) as { title?: string; text?: string };
    docs.push({ title: o.title ?? "", text: o.text ?? "" });
  }
}

const work = mkdtempSync(join(tmpdir(), "bench-tokenizer-"));
let modelDir = values.model;
if (!modelDir) {
  const t0 = performance.now();
  const vocab = buildWordPieceVocab(
    docs.flatMap((d) => [d.title, d.text]),
    { vocabSize: 30522 },
  );
  modelDir = join(work, "tok");
  await BertTokenizer.fromVocab(vocab).save(modelDir);
  console.log(`trained a 30522-entry vocabulary on ${docs.length} docs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
const ours = await BertTokenizer.fromDir(modelDir);
const rust = rs.Tokenizer.fromFile(join(modelDir, "tokenizer.json"));
rust.disableTruncation();
const tokenizerJson = JSON.parse(readFileSync(join(modelDir, "tokenizer.json"), "utf8")) as object;
const tokenizerConfig = JSON.parse(readFileSync(join(modelDir, "tokenizer_config.json"), "utf8")) as object;
const hfjs = new HfJsTokenizer(tokenizerJson, tokenizerConfig);

// ---- parity (no truncation) ----
const same = (a: number[], b: number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
let oursBad = 0;
let jsBad = 0;
let checked = 0;
const jsExamples: string[] = [];
for (const d of docs) {
  for (const [a, b] of [
    [d.text, null],
    [d.title, d.text],
  ] as Array<[string, string | null]>) {
    const ref = (await rust.encode(a, b)).getIds();
    const o = ours.encode(a, b, { maxLength: 1_000_000 }).inputIds;
    const j = hfjs.encode(a, { text_pair: b }).ids;
    checked++;
    if (!same(ref, o)) oursBad++;
    if (!same(ref, j)) {
      jsBad++;
      if (jsExamples.length < 6) jsExamples.push(JSON.stringify((b === null ? a : `${a} || ${b}`).slice(0, 60)));
    }
  }
}
console.log(`\nparity vs Rust tokenizers on ${checked} encodings (${docs.length} docs, single + pair, no truncation):`);
console.log(`  BertTokenizer (ours):      ${oursBad} mismatches`);
console.log(`  @huggingface/tokenizers:   ${jsBad} mismatches${jsExamples.length ? "  e.g. " + jsExamples.join(", ") : ""}`);

// ---- speed ----
const pairs = docs.map((d) => ({ text: d.title, pair: d.text }));
const totalTokens = pairs.reduce((n, p) => n + ours.encode(p.text, p.pair, { maxLength: 1_000_000 }).inputIds.length, 0);
const queries = docs.map((d) => d.title || d.text.slice(0, 80));
const queryTokens = queries.reduce((n, q) => n + ours.encode(q).inputIds.length, 0);

// Contenders run interleaved, one pass each per round, so load changes from other processes
// hit all of them alike; each reports its median pass time.
interface Contender {
  name: string;
  tokens: number;
  fn: () => unknown;
  times: number[];
  cpu: number[];
}
const contenders: Contender[] = [];
const add = (name: string, tokens: number, fn: () => unknown): void => {
  contenders.push({ name, tokens, fn, times: [], cpu: [] });
};
add("passages  ours encode (sync)", totalTokens, () => {
  for (const p of pairs) ours.encode(p.text, p.pair, { maxLength: 1_000_000 }); // no truncation, like the others
});
add("passages  @huggingface/tokenizers encode", totalTokens, () => {
  for (const p of pairs) hfjs.encode(p.text, { text_pair: p.pair });
});
add("passages  Rust encode, awaited one by one", totalTokens, async () => {
  for (const p of pairs) await rust.encode(p.text, p.pair);
});
// The binding's encodeBatch takes single texts only: compare on passage texts without titles.
const texts = docs.map((d) => d.text);
const textTokens = texts.reduce((n, t) => n + ours.encode(t, null, { maxLength: 1_000_000 }).inputIds.length, 0);
add("texts     ours encode (sync)", textTokens, () => {
  for (const t of texts) ours.encode(t, null, { maxLength: 1_000_000 });
});
add("texts     Rust encodeBatch (multi-threaded)", textTokens, async () => {
  await rust.encodeBatch(texts);
});
add("queries   ours encode (sync)", queryTokens, () => {
  for (const q of queries) ours.encode(q);
});
add("queries   @huggingface/tokenizers encode", queryTokens, () => {
  for (const q of queries) hfjs.encode(q);
});
add("queries   Rust encode, awaited one by one", queryTokens, async () => {
  for (const q of queries) await rust.encode(q);
});
for (const c of contenders) await c.fn(); // warm-up
for (let r = 0; r < reps; r++) {
  for (const c of contenders) {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    await c.fn();
    const cpu = process.cpuUsage(cpu0);
    c.times.push(performance.now() - t0);
    c.cpu.push((cpu.user + cpu.system) / 1000);
  }
}
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
// Wall-clock throughput, and throughput per CPU-second of this process (all its threads): the latter
// is less distorted by other jobs on a shared machine.
const rows: Array<[string, number, number, number]> = contenders.map((c) => {
  const ms = median(c.times);
  return [c.name, c.tokens / (ms / 1000), ms, c.tokens / (median(c.cpu) / 1000)];
});

const base = rows[0][1];
console.log(`\nspeed (${totalTokens} passage tokens, ${queryTokens} query tokens, median of ${reps}):`);
const baseCpu = rows[0][3];
console.log(
  `  ${"".padEnd(46)} ${"wall: M tok/s".padStart(14)} ${"ms/pass".padStart(9)} ${"vs ours".padStart(8)}   ` +
    `${"cpu: M tok/cpu-s".padStart(17)} ${"vs ours".padStart(8)}`,
);
for (const [name, tps, ms, tpc] of rows) {
  console.log(
    `  ${name.padEnd(46)} ${(tps / 1e6).toFixed(2).padStart(14)} ${ms.toFixed(1).padStart(9)} ` +
      `${(tps / base).toFixed(2).padStart(7)}x   ${(tpc / 1e6).toFixed(2).padStart(17)} ` +
      `${(tpc / baseCpu).toFixed(2).padStart(7)}x`,
  );
}
const perPassageUs = (rows[0][2] * 1000) / pairs.length;
console.log(`\nours: ${perPassageUs.toFixed(0)} µs per title+text passage (${(totalTokens / pairs.length).toFixed(0)} tokens avg)`);
rmSync(work, { recursive: true, force: true });

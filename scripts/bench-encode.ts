/**
 * Encoding benchmark for DPREmbeddings on a BERT-base-shaped model (random weights: the
 * cost is the same as a trained model's). Every figure is reported next to a baseline
 * measured in the same run, so a busy machine shifts both:
 *  - query latency at batch 1 (12 and 32 tokens): full embedQueryVector path vs the bare
 *    session.run on pre-built tensors → our JS overhead (tokenize + tensors + pooling);
 *  - passage throughput at max 256 tokens over real passages (mixed lengths): length-sorted
 *    batches vs input order, and full path vs bare session.run;
 *  - fp32 vs int8 (model_quantized.onnx) when the model folder has it.
 *
 *   npx tsx scripts/bench-encode.ts [--model DIR] [--threads 2] [--corpus a.jsonl,b.jsonl]
 *        [--passages 96] [--batch 16] [--queries 40] [--rounds 2] [--passage-mode chunks100|whole]
 *        [--padding-only] [--json out.json]
 *
 * Without --model, a random bert-base DPR folder (with int8) is written to
 * $TMPDIR/langchain-dpr-bench/bert-base on first use (about a minute).
 */
import { access, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { DPREmbeddings } from "../src/embeddings/dpr-embeddings.js";
import type { OnnxEncoder } from "../src/runtime/onnx-encoder.js";
import { createRandomDPRModel } from "../src/testing/index.js";
import { OnnxSession, type OnnxIntInput } from "../src/runtime/onnx-session.js";
import type { Encoding } from "../src/tokenizers/bert-tokenizer.js";
import { seededUniform } from "../src/utils/random.js";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    threads: { type: "string", default: "2" },
    corpus: { type: "string" },
    passages: { type: "string", default: "96" },
    batch: { type: "string", default: "16" },
    queries: { type: "string", default: "40" },
    seed: { type: "string", default: "7" },
    json: { type: "string" },
    "passage-mode": { type: "string", default: "chunks100" },
    rounds: { type: "string", default: "2" },
    "padding-only": { type: "boolean", default: false },
  },
});
const threads = Number(values.threads);
const nPassages = Number(values.passages);
const batchSize = Number(values.batch);
const nQueries = Number(values.queries);
const rounds = Number(values.rounds);
/** whole: each corpus document (title + text, truncated at 256 tokens); chunks100: DPR's 100-word passages (tails shorter). */
const passageMode = values["passage-mode"] as "whole" | "chunks100";
if (passageMode !== "whole" && passageMode !== "chunks100") throw new Error(`bench-encode: --passage-mode must be whole or chunks100`);

const FIXTURE = fileURLToPath(new URL("../test/fixtures/passages/pubmedqa-300.jsonl", import.meta.url));
const SHARED = ["scifact", "nfcorpus", "pubmedqa"].map((d) => `/work/shared/datasets/${d}/corpus.jsonl`);

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
const median = (xs: number[]) => pct(xs, 50);

async function loadPassages(files: string[], n: number, random: () => number): Promise<Array<{ title?: string; text: string }>> {
  const all: Array<{ title?: string; text: string }> = [];
  for (const f of files) {
    for (const line of (await readFile(f, "utf8")).split("\n")) {
      if (!line.trim()) continue;
      const o = JSON.parse(line) as { title?: string; text?: string };
      if (typeof o.text !== "string" || !o.text) continue;
      if (passageMode === "whole") {
        all.push({ title: o.title || undefined, text: o.text });
        continue;
      }
      const words = o.text.split(/\s+/).filter(Boolean);
      for (let i = 0; i < words.length; i += 100) all.push({ title: o.title || undefined, text: words.slice(i, i + 100).join(" ") });
    }
  }
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, n);
}

function feedsFor(batch: Encoding[], int64 = true): Record<string, OnnxIntInput> {
  const b = batch.length;
  const seq = Math.max(...batch.map((e) => e.inputIds.length));
  const ids = new BigInt64Array(b * seq),
    mask = new BigInt64Array(b * seq),
    types = new BigInt64Array(b * seq);
  batch.forEach((e, r) => {
    e.inputIds.forEach((v, j) => {
      ids[r * seq + j] = BigInt(v);
      mask[r * seq + j] = BigInt(e.attentionMask[j]!);
      types[r * seq + j] = BigInt(e.tokenTypeIds[j]!);
    });
  });
  if (!int64) throw new Error("bench: int64 graphs only");
  const dims: [number, number] = [b, seq];
  return { input_ids: { dims, data: ids }, attention_mask: { dims, data: mask }, token_type_ids: { dims, data: types } };
}

async function time<T>(fn: () => Promise<T>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const report: Record<string, unknown> = { threads, batchSize, startedAt: new Date().toISOString() };
const log = (s: string) => console.log(s);

// ---------------------------------------------------------------------------------------------
const modelDir = values.model ?? join(tmpdir(), "langchain-dpr-bench", "bert-base");
if (!(await exists(join(modelDir, "question_encoder", "model.onnx")))) {
  log(`writing a random bert-base DPR model (fp32 + int8) to ${modelDir} ...`);
  const fixtureTexts = (await readFile(FIXTURE, "utf8"))
    .split("\n")
    .filter(Boolean)
    .flatMap((l) => {
      const o = JSON.parse(l) as { title?: string; text?: string };
      return [o.title ?? "", o.text ?? ""];
    });
  await createRandomDPRModel(modelDir, { shape: "bert-base", texts: fixtureTexts, quantize: true, safetensors: false });
}
const random = seededUniform(Number(values.seed));
const corpusFiles = values.corpus ? values.corpus.split(",") : (await exists(SHARED[0]!)) ? SHARED : [FIXTURE];
const passages = await loadPassages(corpusFiles, nPassages, random);
log(`model ${modelDir}; intraOpNumThreads ${threads}; batch ${batchSize}; passages: ${passageMode} from ${corpusFiles.join(", ")}`);
report.passageMode = passageMode;
report.corpus = corpusFiles;

const emb = new DPREmbeddings({ modelPath: modelDir, intraOpNumThreads: threads, batchSize });
await emb.ready();
const { question, passage } = await emb.getEncoders();

// Passage length distribution (tokens after truncation to 256).
const tokenized = await passage.tokenize(
  passages.map((p) => (p.title ? { text: p.title, pair: p.text } : { text: p.text })),
  256,
);
const lens = tokenized.map((e) => e.inputIds.length);
report.passageTokens = {
  n: lens.length,
  p10: pct(lens, 10),
  p50: pct(lens, 50),
  p90: pct(lens, 90),
  min: Math.min(...lens),
  max: Math.max(...lens),
  mean: lens.reduce((a, b) => a + b, 0) / lens.length,
};
log(`passages: ${lens.length}, tokens (max 256) p10/p50/p90 = ${pct(lens, 10)}/${pct(lens, 50)}/${pct(lens, 90)}`);
/** Tokens the model processes (batch max length x batch size, summed) when batches are cut from `ls` in order. */
const paddedTokens = (ls: number[], size = batchSize) => {
  let total = 0;
  for (let i = 0; i < ls.length; i += size) {
    const b = ls.slice(i, i + size);
    total += Math.max(...b) * b.length;
  }
  return total;
};
const padSorted = paddedTokens([...lens].sort((a, b) => b - a));
const padNaive = paddedTokens(lens);
report.paddedTokens = { real: lens.reduce((a, b) => a + b, 0), sorted: padSorted, inputOrder: padNaive, ratio: padNaive / padSorted };
log(
  `tokens processed incl. padding: sorted ${padSorted}, input order ${padNaive} ` +
    `(${(padNaive / padSorted).toFixed(2)}x); real tokens ${lens.reduce((a, b) => a + b, 0)}`,
);
const padTable = [8, 16, 32, 64].map((b) => ({
  batch: b,
  ratio:
    paddedTokens(lens, b) /
    paddedTokens(
      [...lens].sort((x, y) => y - x),
      b,
    ),
}));
report.paddedTokenRatioByBatch = padTable;
log(`padding work, input order / sorted, by batch size: ${padTable.map((r) => `${r.batch}: ${r.ratio.toFixed(2)}x`).join(", ")}`);
if (values["padding-only"]) {
  await emb.dispose();
  process.exit(0);
}
const rawQ = await OnnxSession.create((await question.describe()).modelPath, { intraOpNumThreads: threads });
const rawP = await OnnxSession.create((await passage.describe()).modelPath, { intraOpNumThreads: threads });

// ---------------------------------------------------------------------------------------------
// Query latency at batch 1: full path vs bare session.run, interleaved.
const queryWords = passages
  .map((p) => p.text)
  .join(" ")
  .split(/\s+/);
async function queryBench(enc: OnnxEncoder, raw: OnnxSession, tokens: number, label: string) {
  const e = new DPREmbeddings({ modelPath: modelDir, intraOpNumThreads: threads, maxQueryLength: tokens, quantized: label === "int8" });
  const mk = (i: number) => queryWords.slice((i * 37) % (queryWords.length - 64), ((i * 37) % (queryWords.length - 64)) + 60).join(" ");
  await e.ready();
  for (let i = 0; i < 5; i++) {
    await e.embedQueryVector(mk(i));
    await raw.run(feedsFor(await enc.tokenize([{ text: mk(i) }], tokens)), ["last_hidden_state"]);
  }
  const full: number[] = [],
    bare: number[] = [],
    js: number[] = [];
  for (let i = 0; i < nQueries; i++) {
    const q = mk(i + 5);
    full.push(await time(() => e.embedQueryVector(q)));
    const t0 = performance.now();
    const feeds = feedsFor(await enc.tokenize([{ text: q }], tokens));
    js.push(performance.now() - t0);
    bare.push(await time(() => raw.run(feeds, ["last_hidden_state"])));
  }
  await e.dispose();
  const r = {
    tokens,
    fullP50: median(full),
    fullP95: pct(full, 95),
    runP50: median(bare),
    runP95: pct(bare, 95),
    tokenizeAndTensorsP50: median(js),
    overheadPct: (100 * (median(full) - median(bare))) / median(bare),
    directJsPct: (100 * median(js)) / median(bare),
  };
  log(
    `query ${label} ${tokens} tok: p50 ${r.fullP50.toFixed(1)} ms, p95 ${r.fullP95.toFixed(1)} ms | bare session.run ` +
      `p50 ${r.runP50.toFixed(1)} ms | ` +
      `overhead (p50 diff) ${r.overheadPct.toFixed(1)}%, tokenize+tensors ${r.tokenizeAndTensorsP50.toFixed(2)} ms = ` +
      `${r.directJsPct.toFixed(2)}% of run`,
  );
  return r;
}
const qEnc = question;
report.queryFp32 = [await queryBench(qEnc, rawQ, 12, "fp32"), await queryBench(qEnc, rawQ, 32, "fp32")];

// ---------------------------------------------------------------------------------------------
// Passage throughput: sorted vs input order vs bare session.run on the sorted batches,
// interleaved over a few rounds (the best round of each is compared).
async function passageBench(e: DPREmbeddings, raw: OnnxSession, label: string) {
  const items = passages;
  const naiveEmb = new DPREmbeddings({
    modelPath: modelDir,
    intraOpNumThreads: threads,
    batchSize,
    sortByLength: false,
    quantized: e.quantized,
  });
  await naiveEmb.ready();
  const order = tokenized.map((_, i) => i).sort((a, b) => tokenized[b]!.inputIds.length - tokenized[a]!.inputIds.length || a - b);
  const batches: Record<string, OnnxIntInput>[] = [];
  for (let s = 0; s < order.length; s += batchSize) batches.push(feedsFor(order.slice(s, s + batchSize).map((i) => tokenized[i]!)));
  const sorted: number[] = [],
    naive: number[] = [],
    bare: number[] = [];
  for (let r = 0; r < rounds; r++) {
    sorted.push(await time(() => e.embedPassagesMatrix(items)));
    naive.push(await time(() => naiveEmb.embedPassagesMatrix(items)));
    let b = 0;
    for (const f of batches) b += await time(() => raw.run(f, ["last_hidden_state"]));
    bare.push(b);
  }
  await naiveEmb.dispose();
  // Our JS work measured directly: tokenize + build tensors (+ CLS copy, negligible).
  const { passage: enc } = await e.getEncoders();
  const jsMs = await time(async () => {
    const toks = await enc.tokenize(
      items.map((p) => (p.title ? { text: p.title, pair: p.text } : { text: p.text })),
      256,
    );
    const o = toks.map((_, i) => i).sort((a, b) => toks[b]!.inputIds.length - toks[a]!.inputIds.length);
    for (let s = 0; s < o.length; s += batchSize) feedsFor(o.slice(s, s + batchSize).map((i) => toks[i]!));
  });
  const best = (xs: number[]) => Math.min(...xs);
  const r = {
    sortedPassagesPerSec: (1000 * items.length) / best(sorted),
    naivePassagesPerSec: (1000 * items.length) / best(naive),
    barePassagesPerSec: (1000 * items.length) / best(bare),
    sortSpeedup: best(naive) / best(sorted),
    overheadPct: (100 * (best(sorted) - best(bare))) / best(bare),
    directJsMs: jsMs,
    directJsPct: (100 * jsMs) / best(bare),
    roundsMs: { sorted, naive, bare },
  };
  log(
    `passages ${label}: sorted ${r.sortedPassagesPerSec.toFixed(2)}/s, input order ${r.naivePassagesPerSec.toFixed(2)}/s ` +
      `(sorting ${r.sortSpeedup.toFixed(2)}x), bare session.run ${r.barePassagesPerSec.toFixed(2)}/s (overhead ` +
      `${r.overheadPct.toFixed(1)}%; ` +
      `tokenize+tensors ${jsMs.toFixed(1)} ms = ${r.directJsPct.toFixed(2)}% of run)`,
  );
  return r;
}
await emb.embedPassagesMatrix(passages.slice(0, batchSize)); // warm-up
report.passagesFp32 = await passageBench(emb, rawP, "fp32");

// ---------------------------------------------------------------------------------------------
// int8
let hasInt8 = true;
try {
  await access(join(modelDir, "passage_encoder", "model_quantized.onnx"));
} catch {
  hasInt8 = false;
}
if (hasInt8) {
  const q8 = new DPREmbeddings({ modelPath: modelDir, intraOpNumThreads: threads, batchSize, quantized: true });
  await q8.ready();
  const enc8 = await q8.getEncoders();
  const rawQ8 = await OnnxSession.create((await enc8.question.describe()).modelPath, { intraOpNumThreads: threads });
  const rawP8 = await OnnxSession.create((await enc8.passage.describe()).modelPath, { intraOpNumThreads: threads });
  report.queryInt8 = [await queryBench(enc8.question, rawQ8, 32, "int8")];
  // fp32 again right next to int8 for a same-conditions ratio.
  report.queryFp32Again = [await queryBench(qEnc, rawQ, 32, "fp32")];
  await q8.embedPassagesMatrix(passages.slice(0, batchSize));
  report.passagesInt8 = await passageBench(q8, rawP8, "int8");
  const a = await emb.embedPassagesMatrix(passages.slice(0, 16));
  const b = await q8.embedPassagesMatrix(passages.slice(0, 16));
  let minCos = 1;
  for (let i = 0; i < 16; i++) {
    let d = 0,
      na = 0,
      nb = 0;
    for (let k = 0; k < a.dim; k++) {
      const x = a.data[i * a.dim + k]!,
        y = b.data[i * a.dim + k]!;
      d += x * y;
      na += x * x;
      nb += y * y;
    }
    minCos = Math.min(minCos, d / Math.sqrt(na * nb));
  }
  report.int8MinCosine = minCos;
  const q32 = (report.queryFp32Again as Array<{ fullP50: number }>)[0]!.fullP50;
  const q8p50 = (report.queryInt8 as Array<{ fullP50: number }>)[0]!.fullP50;
  const p32 = (report.passagesFp32 as { sortedPassagesPerSec: number }).sortedPassagesPerSec;
  const p8 = (report.passagesInt8 as { sortedPassagesPerSec: number }).sortedPassagesPerSec;
  log(
    `int8 vs fp32: query 32 tok ${(q32 / q8p50).toFixed(2)}x faster, passages ${(p8 / p32).toFixed(2)}x, min cosine to ` +
      `fp32 ${minCos.toFixed(4)}`,
  );
  await Promise.all([q8.dispose(), rawQ8.dispose(), rawP8.dispose()]);
}

await Promise.all([emb.dispose(), rawQ.dispose(), rawP.dispose()]);
report.finishedAt = new Date().toISOString();
if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2) + "\n");

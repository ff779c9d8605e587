/**
 * Reranking cost benchmark for CrossEncoderReranker: reranking `--candidates` (100) BM25
 * candidates per query with random cross-encoders of the ms-marco-MiniLM-L-6-v2 shape
 * (6 layers x 384) and the BERT-base shape (12 x 768). Random weights cost exactly what trained
 * ones do. Per shape, in the same run and interleaved query by query (so a busy machine shifts
 * both): length-sorted batches (the default) vs naive input order (BM25 rank order), reporting
 * ms per query, pairs/s, process CPU seconds per query (all onnxruntime threads; steadier than wall
 * time on a shared machine), the share of padded tokens, and the ratios between the two.
 *
 *   npx tsx scripts/bench-rerank.ts [--shapes minilm,bert-base] [--queries minilm=3,bert-base=1]
 *        [--candidates 100] [--batch 32] [--max-length 512] [--threads 0] [--dataset DIR] [--json out.json]
 *
 * Candidates come from BM25 over `--dataset` (a BEIR folder; default ../shared/datasets/scifact
 * when present, test split queries) or else over the committed PubMedQA fixture (300 abstracts,
 * their questions as queries). Model folders are written once to $TMPDIR/langchain-dpr-bench/.
 */
import { access, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Document } from "@langchain/core/documents";

import { loadBeirDataset } from "../src/data/beir.js";
import type { Passage } from "../src/data/types.js";
import { BM25Index } from "../src/retrievers/bm25/bm25-index.js";
import { CrossEncoderReranker } from "../src/rerankers/cross-encoder-reranker.js";
import { createRandomCrossEncoder, type CrossEncoderShape } from "../src/testing/index.js";
import { BertTokenizer } from "../src/tokenizers/bert-tokenizer.js";

const { values } = parseArgs({
  options: {
    shapes: { type: "string", default: "minilm,bert-base" },
    queries: { type: "string", default: "minilm=3,bert-base=1" },
    candidates: { type: "string", default: "100" },
    batch: { type: "string", default: "32" },
    "max-length": { type: "string", default: "512" },
    threads: { type: "string", default: "0" },
    dataset: { type: "string" },
    json: { type: "string" },
  },
});

const shapes = values.shapes.split(",").map((s) => s.trim()) as CrossEncoderShape[];
const queriesPerShape = new Map<string, number>();
for (const part of values.queries.split(",")) {
  const [k, v] = part.includes("=") ? part.split("=") : ["*", part];
  queriesPerShape.set(k!.trim(), Number(v));
}
const nCandidates = Number(values.candidates);
const batchSize = Number(values.batch);
const maxLength = Number(values["max-length"]);
const threads = Number(values.threads);

const FIXTURE = fileURLToPath(new URL("../test/fixtures/passages/pubmedqa-300.jsonl", import.meta.url));
const SCIFACT = fileURLToPath(new URL("../../shared/datasets/scifact", import.meta.url));

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

async function loadData(): Promise<{ source: string; corpus: Passage[]; queries: string[] }> {
  const dir = values.dataset ?? ((await exists(join(SCIFACT, "corpus.jsonl"))) ? SCIFACT : undefined);
  if (dir) {
    const ds = await loadBeirDataset(dir, "test");
    return { source: `${dir} (test queries)`, corpus: ds.corpus, queries: ds.queries.map((q) => q.text) };
  }
  const rows = (await readFile(FIXTURE, "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { id: string; title: string; text: string });
  // The fixture's titles are PubMedQA questions: use them as queries, and index the abstracts alone.
  return {
    source: "test/fixtures/passages/pubmedqa-300.jsonl (questions as queries)",
    corpus: rows.map((r) => ({ id: r.id, title: "", text: r.text })),
    queries: rows.map((r) => r.title),
  };
}

/** Tokens fed to the model (incl. padding) when `lengths` are batched in the given order. */
function paddedTokens(lengths: number[], batch: number): number {
  let total = 0;
  for (let s = 0; s < lengths.length; s += batch) {
    const chunk = lengths.slice(s, s + batch);
    total += Math.max(...chunk) * chunk.length;
  }
  return total;
}

interface ShapeResult {
  shape: string;
  queries: number;
  pairsPerQuery: number;
  realTokensPerQuery: number;
  paddedShareSorted: number;
  paddedShareNaive: number;
  tokenizeMsPerQuery: number;
  sorted: { medianMs: number; p90Ms: number; pairsPerSec: number; cpuMsPerQuery: number };
  naive: { medianMs: number; p90Ms: number; pairsPerSec: number; cpuMsPerQuery: number };
  speedupTotal: number;
  cpuRatio: number;
  maxScoreDiff: number;
}

async function benchShape(
  shape: CrossEncoderShape,
  data: { corpus: Passage[]; queries: string[] },
  index: BM25Index,
): Promise<ShapeResult> {
  const dir = join(tmpdir(), "langchain-dpr-bench", `cross-encoder-${shape}`);
  if (!(await exists(join(dir, "model.onnx")))) {
    const t = performance.now();
    const texts = data.corpus.slice(0, 3000).flatMap((p) => [p.title, p.text]);
    await createRandomCrossEncoder(dir, { shape, texts, vocabSize: 30522, seed: 7 });
    console.log(`  wrote ${dir} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  const common = { modelPath: dir, batchSize, maxLength, intraOpNumThreads: threads > 0 ? threads : undefined, topN: 10 };
  const sorted = new CrossEncoderReranker(common);
  const naive = new CrossEncoderReranker({ ...common, sortByLength: false });
  await Promise.all([sorted.ready(), naive.ready()]);

  const nQueries = queriesPerShape.get(shape) ?? queriesPerShape.get("*") ?? 4;
  // Queries with a full candidate list, spread over the query set.
  const candidateLists: Array<{ query: string; docs: Document[] }> = [];
  const step = Math.max(1, Math.floor(data.queries.length / (nQueries + 1)));
  for (let qi = 0; candidateLists.length < nQueries + 1 && qi < data.queries.length; qi += step) {
    const query = data.queries[qi]!;
    const hits = index.search(query, nCandidates);
    if (hits.length < nCandidates) continue;
    const docs = hits.map((h) => {
      const p = index.getPassage(h.id)!;
      return new Document({ pageContent: p.text, metadata: { id: h.id, title: p.title } });
    });
    candidateLists.push({ query, docs });
  }
  if (candidateLists.length < 2) throw new Error(`bench-rerank: fewer than 2 queries have ${nCandidates} BM25 candidates`);
  const [warm, ...measured] = candidateLists;
  // Warm-up (first-run allocations) on a few candidates: a full list would cost as much as a measured query.
  await sorted.rerank(warm!.docs.slice(0, 8), warm!.query);
  await naive.rerank(warm!.docs.slice(0, 8), warm!.query);

  const tokenizer = await BertTokenizer.fromDir(dir); // the same files the reranker loaded; used for token counts
  const times = { sorted: [] as number[], naive: [] as number[] };
  // Process CPU time (user + system, all onnxruntime threads): less sensitive than wall time to other load on a shared machine.
  const cpu = { sorted: [] as number[], naive: [] as number[] };
  let real = 0,
    padSorted = 0,
    padNaive = 0,
    tokenizeMs = 0,
    maxScoreDiff = 0;
  for (let i = 0; i < measured.length; i++) {
    const { query, docs } = measured[i]!;
    const t0 = performance.now();
    const enc = tokenizer.encodeBatch(
      docs.map((d) => ({ text: query, pair: sorted.passageText(d) })),
      { maxLength },
    );
    tokenizeMs += performance.now() - t0;
    const lengths = enc.map((e) => e.inputIds.length);
    real += lengths.reduce((a, b) => a + b, 0);
    padSorted += paddedTokens(
      [...lengths].sort((a, b) => b - a),
      batchSize,
    );
    padNaive += paddedTokens(lengths, batchSize);
    // Interleave: alternate which mode runs first.
    const order: Array<"sorted" | "naive"> = i % 2 === 0 ? ["sorted", "naive"] : ["naive", "sorted"];
    const scores: Record<string, Map<unknown, number>> = {};
    for (const mode of order) {
      const r = mode === "sorted" ? sorted : naive;
      const c = process.cpuUsage();
      const t = performance.now();
      const ranked = await r.rerank(docs, query);
      times[mode].push(performance.now() - t);
      const dc = process.cpuUsage(c);
      cpu[mode].push((dc.user + dc.system) / 1000);
      scores[mode] = new Map(ranked.map((x) => [x.index, x.relevanceScore]));
    }
    for (const [k, v] of scores.sorted!) maxScoreDiff = Math.max(maxScoreDiff, Math.abs(v - scores.naive!.get(k)!));
    console.log(
      `  ${shape} q${i + 1}/${measured.length}: sorted ${times.sorted.at(-1)!.toFixed(0)} ms (cpu ${cpu.sorted.at(-1)!.toFixed(0)}), ` +
        `naive ${times.naive.at(-1)!.toFixed(0)} ms (cpu ${cpu.naive.at(-1)!.toFixed(0)})`,
    );
  }
  await Promise.all([sorted.dispose(), naive.dispose()]);
  const n = measured.length;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const summary = (xs: number[], cs: number[]) => ({
    medianMs: pct(xs, 50),
    p90Ms: pct(xs, 90),
    pairsPerSec: (nCandidates * xs.length) / (sum(xs) / 1000),
    cpuMsPerQuery: sum(cs) / cs.length,
  });
  return {
    shape,
    queries: n,
    pairsPerQuery: nCandidates,
    realTokensPerQuery: real / n,
    paddedShareSorted: 1 - real / padSorted,
    paddedShareNaive: 1 - real / padNaive,
    tokenizeMsPerQuery: tokenizeMs / n,
    sorted: summary(times.sorted, cpu.sorted),
    naive: summary(times.naive, cpu.naive),
    speedupTotal: sum(times.naive) / sum(times.sorted),
    cpuRatio: sum(cpu.naive) / sum(cpu.sorted),
    maxScoreDiff,
  };
}

async function main(): Promise<void> {
  const data = await loadData();
  console.log(
    `bench-rerank: ${data.source}; ${data.corpus.length} passages; ${nCandidates} BM25 candidates/query; batch ` +
      `${batchSize}; max length ${maxLength}; threads ${threads || "ORT default"}`,
  );
  const index = await BM25Index.fromPassages(data.corpus);
  const results: ShapeResult[] = [];
  for (const shape of shapes) results.push(await benchShape(shape, data, index));
  console.log("");
  console.log(
    "| shape | queries | tokens/pair | padded (sorted / naive) | tokenize ms/q | sorted ms/q (p50, p90) | naive ms/q " +
      "(p50, p90) | pairs/s sorted / naive | naive/sorted time | CPU s/q sorted / naive (ratio) |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.shape} | ${r.queries} | ${(r.realTokensPerQuery / r.pairsPerQuery).toFixed(0)} | ` +
        `${(100 * r.paddedShareSorted).toFixed(1)}% / ${(100 * r.paddedShareNaive).toFixed(1)}% | ` +
        `${r.tokenizeMsPerQuery.toFixed(1)} | ${r.sorted.medianMs.toFixed(0)}, ${r.sorted.p90Ms.toFixed(0)} | ` +
        `${r.naive.medianMs.toFixed(0)}, ${r.naive.p90Ms.toFixed(0)} | ` +
        `${r.sorted.pairsPerSec.toFixed(1)} / ${r.naive.pairsPerSec.toFixed(1)} | ${r.speedupTotal.toFixed(2)}x | ` +
        `${(r.sorted.cpuMsPerQuery / 1000).toFixed(1)} / ${(r.naive.cpuMsPerQuery / 1000).toFixed(1)} (${r.cpuRatio.toFixed(2)}x) |`,
    );
  }
  for (const r of results) console.log(`max |score sorted - score naive| (${r.shape}): ${r.maxScoreDiff.toExponential(1)}`);
  if (values.json) await writeFile(values.json, JSON.stringify({ source: data.source, batchSize, maxLength, threads, results }, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

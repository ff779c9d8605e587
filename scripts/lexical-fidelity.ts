/**
 * What `--init lexical` approximates, measured without random projections: the exact score
 * `Σ_t tf_q(t)·tf_p(t)·(idf_t / max idf)^power / (|q|·|p|)` over the model's own WordPiece tokens
 * (the limit of the lexically initialised model as the hidden size grows), beside BM25 over the same
 * tokens and Lucene BM25 (the evaluator's), on a BEIR split. Compare with the initialised models'
 * figures (`train --init lexical --init-only`, then `evaluate`) to see what each hidden size keeps.
 *
 *   npx tsx scripts/lexical-fidelity.ts --dataset ../shared/datasets/scifact --split test --p-len 256 --q-len 32
 */
import { parseArgs } from "node:util";
import { loadBeirCorpus, loadBeirDataset } from "../src/data/beir.js";
import { evaluateRun, type Run } from "../src/eval/metrics.js";
import { passageSegments } from "../src/models/model-dir.js";
import { BM25Index } from "../src/retrievers/bm25/bm25-index.js";
import { tokenIdf } from "../src/training/lexical-init.js";
import { scratchModel } from "../src/training/init.js";

const { values } = parseArgs({
  options: {
    dataset: { type: "string" },
    split: { type: "string", default: "test" },
    "p-len": { type: "string", default: "256" },
    "q-len": { type: "string", default: "32" },
    "vocab-size": { type: "string", default: "8192" },
    "idf-power": { type: "string", default: "2" },
  },
});
if (!values.dataset) throw new Error("lexical-fidelity: --dataset <BEIR folder> is required");
const pLen = Number(values["p-len"]);
const qLen = Number(values["q-len"]);
const power = Number(values["idf-power"]);

const corpus = await loadBeirCorpus(values.dataset);
const ds = await loadBeirDataset(values.dataset, values.split);
// The vocabulary train --init lexical builds (same texts, same size).
const { tokenizer } = scratchModel({
  hidden: 4,
  layers: 1,
  heads: 1,
  ffn: 4,
  maxLen: pLen,
  vocabSize: Number(values["vocab-size"]),
  texts: corpus.flatMap((p) => [p.title, p.text]),
});
const V = tokenizer.vocabSize;
const idf = tokenIdf(tokenizer, corpus, V);
const maxIdf = Math.max(...idf);
const counts = (ids: number[]) => {
  const m = new Map<number, number>();
  for (const t of ids) m.set(t, (m.get(t) ?? 0) + 1);
  return m;
};
const pIds = corpus.map((p) => {
  const s = passageSegments(p, "pair");
  return tokenizer.encode(s.text, s.pair ?? null, { maxLength: pLen }).inputIds;
});
const pTf = pIds.map(counts);
const avgLen = pIds.reduce((a, x) => a + x.length, 0) / pIds.length;

function rank(score: (q: Map<number, number>, pi: number) => number): Run {
  const run: Run = new Map();
  for (const q of ds.queries) {
    const qTf = counts(tokenizer.encode(q.text, null, { maxLength: qLen }).inputIds);
    const scored = corpus.map((p, pi) => [p.id, score(qTf, pi)] as const).sort((a, b) => b[1] - a[1]);
    run.set(q.id, new Map(scored.slice(0, 100)));
  }
  return run;
}
const exact = rank((q, pi) => {
  let s = 0;
  for (const [t, c] of q) s += c * (pTf[pi]!.get(t) ?? 0) * Math.pow(idf[t]! / maxIdf, power);
  return s / pIds[pi]!.length;
});
const bm25Pieces = rank((q, pi) => {
  let s = 0;
  const len = pIds[pi]!.length;
  for (const [t, c] of q) {
    const f = pTf[pi]!.get(t) ?? 0;
    if (f > 0) s += c * idf[t]! * ((f * 2.2) / (f + 1.2 * (0.25 + (0.75 * len) / avgLen)));
  }
  return s;
});
const lucene = await BM25Index.fromPassages(corpus);
const luceneRun: Run = new Map(ds.queries.map((q) => [q.id, new Map(lucene.search(q.text, 100).map((h) => [h.id, h.score]))]));

const row = (name: string, run: Run) => {
  const m = evaluateRun(run, ds.qrels).mean;
  console.log(`| ${name} | ${m["ndcg@10"]!.toFixed(3)} | ${m["recall@100"]!.toFixed(3)} |`);
};
console.log(`${values.dataset} (${values.split}, ${ds.queries.length} questions), passages cut at ${pLen} tokens, idf power ${power}`);
console.log("| scorer | nDCG@10 | R@100 |\n|---|---:|---:|");
row("lexical-init limit (hidden size → ∞)", exact);
row("BM25 (k1 1.2, b 0.75) over the same WordPiece tokens", bm25Pieces);
row("Lucene BM25 over whole passages (the evaluator's)", luceneRun);

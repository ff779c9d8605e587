/**
 * Renders an {@link EvaluationReport}: a Markdown report (quality and latency tables) and the
 * JSON form of everything measured.
 *
 * @module
 */
import type { EvaluationReport, LatencyStage } from "./evaluate.js";
import { describeFusion } from "../retrievers/fusion.js";
import { describeSource, LATENCY_STAGES } from "./evaluate.js";

/** Quality columns of the comparison table, in order. */
export const REPORT_METRICS = ["recall@1", "recall@5", "recall@10", "recall@20", "recall@100", "mrr@10", "ndcg@10", "map@100"] as const;

/**
 * The one line explaining the design article's "recall" (kept in one place: the report and the
 * README quote it).
 */
export const ARTICLE_RECALL_NOTE =
  'The design article\'s "recall" divides relevant passages found in the top 10 by 10 × queries, which is micro-averaged precision@10 ' +
  "(a query with one relevant passage found at rank 1 counts 0.1), not standard recall@10 (relevant found in the top 10 " +
  "/ relevant passages of the query, averaged over queries); it is shown in the last column for comparison with the " +
  "article's figures.";

/** File names written next to each other by {@link writeEvaluationOutputs}. */
export interface ReportFiles {
  markdown: string;
  json: string;
  recallSvg: string;
  latencySvg: string;
}

/** Default output file names. */
export const DEFAULT_REPORT_FILES: Readonly<ReportFiles> = Object.freeze({
  markdown: "report.md",
  json: "results.json",
  recallSvg: "recall-at-k.svg",
  latencySvg: "latency.svg",
});

function fmt(x: number, digits = 4): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "n/a";
}

function ms(x: number): string {
  if (!Number.isFinite(x)) return "n/a";
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** The JSON form of a report: everything except the runs (write those as TREC files). */
export function reportToJson(report: EvaluationReport): Record<string, unknown> {
  const { runs: _runs, ...rest } = report;
  void _runs;
  return { format: "langchain-dpr-evaluation", version: 1, articleRecallNote: ARTICLE_RECALL_NOTE, ...rest };
}

/** What the Plots section says when the report has no plots. */
export const NO_PLOTS_NOTE = "SVG plots not drawn (they need the optional packages vega and vega-lite).";

/**
 * Renders the Markdown report. `files` names the plots to link (relative to the report); `null`
 * when the plots were not drawn, and the Plots section then says `noPlotsNote`.
 */
export function renderMarkdownReport(
  report: EvaluationReport,
  files: Pick<ReportFiles, "recallSvg" | "latencySvg"> | null = DEFAULT_REPORT_FILES,
  noPlotsNote: string = NO_PLOTS_NOTE,
): string {
  const { dataset: d, settings: s, build: b } = report;
  const lines: string[] = [];
  lines.push(`# Retrieval evaluation: ${d.name} (${d.split})`, "");
  const limited = s.maxQueries !== null ? ` (first ${s.maxQueries} by --max-queries)` : "";
  lines.push(
    `- Dataset: \`${d.path}\`, ${d.passages} passages; ${d.evaluatedQueries} queries evaluated of ${d.judgedQueries} judged${limited}` +
      (d.skippedQueries.length > 0 ? `; ${d.skippedQueries.length} skipped (no relevant passage)` : "") +
      ".",
  );
  lines.push(
    `- DPR model: ${s.dprModel ? `\`${s.dprModel}\` (dimension ${s.dprDimension ?? "?"})` : "none"}; cross-encoder: ` +
      `${s.crossEncoder ? `\`${s.crossEncoder}\`` : "none"}.`,
  );
  const fusion = s.hybrid ? `${s.hybrid.description}, ${describeSource(s.hybrid)}` : "no hybrid method run";
  const threads = s.faissThreads !== null ? `, ${s.faissThreads} OpenMP thread${s.faissThreads === 1 ? "" : "s"}` : "";
  lines.push(
    `- Index: faiss \`${s.indexFactory}\` (inner product${threads}); hybrid fusion: ${fusion}; depth ${s.depth}; rerank ` +
      `depth ${s.rerankDepth}.`,
  );
  const t = report.fusionTuning;
  if (t) {
    const dev =
      t.dev.selection === "split"
        ? `the ${t.questions} judged questions of split "${t.dev.split}"`
        : `${t.questions} questions held out of "${t.dev.split}" (fraction ${t.dev.fraction}, seed ${t.dev.seed})`;
    lines.push(
      `- Fusion tuning: ${t.grid.length} settings on ${dev}, ${t.metric}: best ${t.best.score.toFixed(4)} with ` +
        `${describeFusion(t.best.setting)}; BM25 alone ${t.bm25Score.toFixed(4)}, dense alone ${t.denseScore.toFixed(4)}. ` +
        (t.excludedFromTest.length === 0
          ? `No question of "${d.split}" was tuned on.`
          : `${t.excludedFromTest.length} question${t.excludedFromTest.length === 1 ? " of" : "s of"} "${d.split}" ` +
            `${t.excludedFromTest.length === 1 ? "was" : "were"} tuned on and ${t.excludedFromTest.length === 1 ? "is" : "are"} ` +
            `left out of every row below.`),
    );
  }
  const buildParts = [`BM25 index ${ms(b.bm25Ms)} ms`];
  if (b.corpusEncodeMs !== null)
    buildParts.push(`corpus encoding ${(b.corpusEncodeMs / 1000).toFixed(1)} s (${fmt(b.passagesPerSecond ?? NaN, 1)} passages/s)`);
  if (b.faissAddMs !== null) buildParts.push(`faiss add ${ms(b.faissAddMs)} ms`);
  lines.push(`- Build: ${buildParts.join("; ")}.`);
  const m = report.machine;
  lines.push(
    `- Machine: ${m.cpuModel}, ${m.cpus} cores, ${m.platform}, Node ${m.node}; started ${report.startedAt}, took ` +
      `${(report.elapsedMs / 1000).toFixed(1)} s.`,
    "",
  );

  lines.push("## Quality (trec_eval definitions, graded qrels)", "");
  lines.push(`| method | ${REPORT_METRICS.map((k) => k.replace("recall", "R")).join(" | ")} | article "recall" |`);
  lines.push(`|---|${REPORT_METRICS.map(() => "---:").join("|")}|---:|`);
  for (const r of report.methods) {
    lines.push(`| ${r.method} | ${REPORT_METRICS.map((k) => fmt(r.metrics[k] ?? NaN)).join(" | ")} | ${fmt(r.articleRecallAt10)} |`);
  }
  lines.push("", ARTICLE_RECALL_NOTE, "");

  lines.push("## Latency per query (ms, p50 / p95)", "");
  lines.push(`| method | ${LATENCY_STAGES.join(" | ")} | total |`);
  lines.push(`|---|${LATENCY_STAGES.map(() => "---:").join("|")}|---:|`);
  for (const r of report.methods) {
    const cell = (stage: LatencyStage | "total") =>
      stage !== "total" && !r.stages.includes(stage) ? "–" : `${ms(r.latency[stage].p50)} / ${ms(r.latency[stage].p95)}`;
    lines.push(`| ${r.method} | ${LATENCY_STAGES.map(cell).join(" | ")} | ${cell("total")} |`);
  }
  lines.push(
    "",
    "Queries run one at a time through the shipped retrievers (BM25Retriever, DPRRetriever, HybridRetriever; " +
      "TwoStageRetriever for reranking), " +
      "and reranking runs in a second pass after every first stage. The stages are the retrievers' own timings: " +
      "hybrid search is HybridRetriever's two searches and the fusion; total is the per-query sum of the method's stages.",
    "",
  );
  if (files) lines.push("## Plots", "", `![recall@k per method](${files.recallSvg})`, "", `![latency per stage](${files.latencySvg})`, "");
  else lines.push("## Plots", "", noPlotsNote, "");
  return lines.join("\n");
}

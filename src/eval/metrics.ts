/**
 * Information-retrieval metrics with trec_eval's definitions (the ones pytrec_eval and BEIR
 * report), on graded relevance judgements:
 *
 * - `recall@k` = relevant passages in the top k / all relevant passages of the query
 *   (relevant: qrels grade > 0).
 * - `precision@k` = relevant passages in the top k / k.
 * - `mrr@k` = 1 / rank of the first relevant passage if it is within the top k, else 0.
 * - `ndcg@k` = DCG@k / ideal DCG@k with linear gain (gain = grade, as trec_eval's `ndcg_cut`
 *   and BEIR), discount log2(rank + 1); the ideal ranking is built from the qrels.
 * - `map@k` = (Σ over relevant passages at rank r ≤ k of precision@r) / all relevant passages
 *   (trec_eval's `map_cut`).
 *
 * Ordering: a run is re-ranked as trec_eval does — by score descending, ties by document id
 * descending (trec_eval compares docnos with strcmp; here UTF-16 code-unit order, the same for
 * ASCII ids). Means are taken over queries that have at least one relevant passage in the qrels
 * (queries without any are skipped, as BEIR does); a judged query missing from the run scores 0
 * (trec_eval `-c`).
 *
 * Note: the design article's "recall" (relevant hits in the top 10 summed over queries, divided
 * by 10 × number of queries) is micro-averaged precision@10, not recall@10; see
 * {@link articleHitRateAt}.
 */
import type { Qrels } from "../data/types.js";

/** A run: query id → (passage id → score). */
export type Run = Map<string, Map<string, number>>;

/** Metric names understood by {@link evaluateRun}. */
export type MetricName = "recall" | "precision" | "mrr" | "ndcg" | "map";

/** Which metrics to compute at which cut-offs. */
export type MetricCutoffs = Partial<Record<MetricName, readonly number[]>>;

/** The cut-offs of the project's evaluation table. */
export const DEFAULT_CUTOFFS: Readonly<Required<Pick<MetricCutoffs, "recall" | "mrr" | "ndcg" | "map">>> = {
  recall: [1, 5, 10, 20, 100],
  mrr: [10],
  ndcg: [10],
  map: [100],
};

/** Per-query values and their means, keyed like `"ndcg@10"`. */
export interface EvaluationResult {
  /** Mean over evaluated queries. */
  mean: Record<string, number>;
  /** Values per evaluated query id. */
  perQuery: Map<string, Record<string, number>>;
  /** Number of queries averaged (judged queries with at least one relevant passage). */
  numQueries: number;
  /** Judged queries skipped because none of their passages is relevant. */
  skippedQueries: string[];
  /** Evaluated queries that had no results in the run (scored 0). */
  missingQueries: string[];
}

/** Options of {@link evaluateRun}. */
export interface EvaluateOptions {
  cutoffs?: MetricCutoffs;
  /**
   * Drop results whose passage id equals the query id before scoring (BEIR's
   * `ignore_identical_ids`, Pyserini's `--remove-query`; default false).
   */
  ignoreIdenticalIds?: boolean;
}

function checkK(k: number, metric: string): void {
  if (!Number.isInteger(k) || k < 1) throw new Error(`metrics: ${metric} cut-off must be a positive integer, got ${k}`);
}

function numRelevant(rels: ReadonlyMap<string, number>): number {
  let n = 0;
  for (const g of rels.values()) if (g > 0) n++;
  return n;
}

/** Orders a query's scored passages as trec_eval does: score desc, then passage id desc. */
export function rankLikeTrecEval(scores: ReadonlyMap<string, number>): string[] {
  const entries = [...scores];
  entries.sort((a, b) => (b[1] !== a[1] ? b[1] - a[1] : a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0));
  return entries.map((e) => e[0]);
}

/** Recall@k of one ranked list (NaN when the query has no relevant passage). */
export function recallAt(ranked: readonly string[], rels: ReadonlyMap<string, number>, k: number): number {
  checkK(k, "recall");
  const total = numRelevant(rels);
  if (total === 0) return NaN;
  let hits = 0;
  for (let i = 0; i < Math.min(k, ranked.length); i++) if ((rels.get(ranked[i]!) ?? 0) > 0) hits++;
  return hits / total;
}

/** Precision@k of one ranked list (trec_eval's P_k: divides by k even if fewer were retrieved). */
export function precisionAt(ranked: readonly string[], rels: ReadonlyMap<string, number>, k: number): number {
  checkK(k, "precision");
  let hits = 0;
  for (let i = 0; i < Math.min(k, ranked.length); i++) if ((rels.get(ranked[i]!) ?? 0) > 0) hits++;
  return hits / k;
}

/** Reciprocal rank of the first relevant passage within the top k (0 if none). */
export function mrrAt(ranked: readonly string[], rels: ReadonlyMap<string, number>, k: number): number {
  checkK(k, "mrr");
  for (let i = 0; i < Math.min(k, ranked.length); i++) if ((rels.get(ranked[i]!) ?? 0) > 0) return 1 / (i + 1);
  return 0;
}

/** nDCG@k with linear gain and log2(rank + 1) discount (NaN when nothing is relevant). */
export function ndcgAt(ranked: readonly string[], rels: ReadonlyMap<string, number>, k: number): number {
  checkK(k, "ndcg");
  let dcg = 0;
  for (let i = 0; i < Math.min(k, ranked.length); i++) {
    const g = rels.get(ranked[i]!) ?? 0;
    if (g > 0) dcg += g / Math.log2(i + 2);
  }
  const ideal = [...rels.values()].filter((g) => g > 0).sort((a, b) => b - a);
  let idcg = 0;
  for (let i = 0; i < Math.min(k, ideal.length); i++) idcg += ideal[i]! / Math.log2(i + 2);
  return idcg === 0 ? NaN : dcg / idcg;
}

/** Average precision over the top k, divided by all relevant passages (trec_eval map_cut). */
export function averagePrecisionAt(ranked: readonly string[], rels: ReadonlyMap<string, number>, k: number): number {
  checkK(k, "map");
  const total = numRelevant(rels);
  if (total === 0) return NaN;
  let hits = 0,
    sum = 0;
  for (let i = 0; i < Math.min(k, ranked.length); i++) {
    if ((rels.get(ranked[i]!) ?? 0) > 0) {
      hits++;
      sum += hits / (i + 1);
    }
  }
  return sum / total;
}

const METRIC_FUNCTIONS: Record<MetricName, (r: readonly string[], rels: ReadonlyMap<string, number>, k: number) => number> = {
  recall: recallAt,
  precision: precisionAt,
  mrr: mrrAt,
  ndcg: ndcgAt,
  map: averagePrecisionAt,
};

/** Builds a {@link Run} from ranked hit lists (`{id, score}` per hit), e.g. BM25 results. */
export function runFromHits(results: Iterable<[string, readonly { id: string; score: number }[]]>): Run {
  const run: Run = new Map();
  for (const [qid, hits] of results) {
    const scores = new Map<string, number>();
    for (const h of hits) {
      if (scores.has(h.id)) throw new Error(`metrics: passage "${h.id}" appears twice in the results of query "${qid}"`);
      scores.set(h.id, h.score);
    }
    run.set(qid, scores);
  }
  return run;
}

/**
 * Evaluates a run against qrels with trec_eval definitions; see the module documentation.
 * Default metrics: recall@{1,5,10,20,100}, mrr@10, ndcg@10, map@100.
 */
export function evaluateRun(run: Run, qrels: Qrels, options: EvaluateOptions = {}): EvaluationResult {
  const cutoffs: MetricCutoffs = options.cutoffs ?? DEFAULT_CUTOFFS;
  const names: [MetricName, number, string][] = [];
  for (const metric of Object.keys(cutoffs) as MetricName[]) {
    if (!(metric in METRIC_FUNCTIONS))
      throw new Error(`metrics: unknown metric "${metric}" (known: ${Object.keys(METRIC_FUNCTIONS).join(", ")})`);
    for (const k of cutoffs[metric] ?? []) {
      checkK(k, metric);
      names.push([metric, k, `${metric}@${k}`]);
    }
  }
  const perQuery = new Map<string, Record<string, number>>();
  const skippedQueries: string[] = [];
  const missingQueries: string[] = [];
  const sums: Record<string, number> = Object.fromEntries(names.map(([, , n]) => [n, 0]));
  for (const [qid, rels] of qrels) {
    if (numRelevant(rels) === 0) {
      skippedQueries.push(qid);
      continue;
    }
    let scores = run.get(qid);
    if (!scores) {
      missingQueries.push(qid);
      scores = new Map();
    }
    let ranked = rankLikeTrecEval(scores);
    if (options.ignoreIdenticalIds) ranked = ranked.filter((d) => d !== qid);
    const values: Record<string, number> = {};
    for (const [metric, k, name] of names) {
      values[name] = METRIC_FUNCTIONS[metric](ranked, rels, k);
      sums[name]! += values[name]!;
    }
    perQuery.set(qid, values);
  }
  const n = perQuery.size;
  const mean: Record<string, number> = {};
  for (const [, , name] of names) mean[name] = n === 0 ? NaN : sums[name]! / n;
  return { mean, perQuery, numQueries: n, skippedQueries, missingQueries };
}

/**
 * The design article's "recall": relevant passages found in the top k, summed over the queries
 * with relevant passages, divided by k × that number of queries. It is micro-averaged
 * precision@k, capped by how many relevant passages a query has — not recall@k.
 */
export function articleHitRateAt(run: Run, qrels: Qrels, k: number): number {
  checkK(k, "articleHitRate");
  let hits = 0,
    queries = 0;
  for (const [qid, rels] of qrels) {
    if (numRelevant(rels) === 0) continue;
    queries++;
    const ranked = rankLikeTrecEval(run.get(qid) ?? new Map());
    for (let i = 0; i < Math.min(k, ranked.length); i++) if ((rels.get(ranked[i]!) ?? 0) > 0) hits++;
  }
  return queries === 0 ? NaN : hits / (k * queries);
}

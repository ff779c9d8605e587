/**
 * Choosing hybrid fusion weights on dev questions: a grid search over linear and RRF settings,
 * scored with the project's trec_eval metrics, as a pure function over per-question ranked
 * lists and qrels ({@link tuneFusion}), plus the seeded hold-out that picks dev questions out of
 * a split ({@link holdOutQuestions}).
 *
 * The default grid ({@link defaultFusionGrid}) holds dense weight 0 (RRF weights `[0, 1]`, linear
 * alpha 0), whose fused order is BM25's own, so the chosen setting is not below BM25 alone on the
 * dev questions: a weak dense model gets a small weight, or none, instead of pulling BM25 down.
 *
 * @module
 */
import type { Qrels } from "../data/types.js";
import { denseShare, fuseDenseSparse, type FusionSetting, type RankedItem } from "../retrievers/fusion.js";
import { holdOutShare } from "../data/holdout.js";
import { evaluateRun, type MetricName, type Run } from "./metrics.js";

const WHO = "tuneFusion";

const METRICS: readonly MetricName[] = ["ndcg", "recall", "mrr", "map", "precision"];

/** A metric at a cut-off, e.g. nDCG@10. */
export interface TuningMetric {
  name: MetricName;
  k: number;
  /** The key {@link evaluateRun} reports it under, e.g. `"ndcg@10"`. */
  label: string;
}

/** The default tuning metric. */
export const DEFAULT_TUNING_METRIC = "ndcg@10";

/** Parses `"<metric>@<k>"` (metric: ndcg, recall, mrr, map, precision; k a positive integer). */
export function parseTuningMetric(text: string): TuningMetric {
  const m = /^\s*([a-z]+)@(\d+)\s*$/i.exec(text);
  const name = m?.[1]?.toLowerCase() as MetricName | undefined;
  const k = m ? Number(m[2]) : NaN;
  if (!name || !METRICS.includes(name) || !(k >= 1)) {
    throw new Error(`${WHO}: metric must be <name>@<k> with name one of ${METRICS.join(", ")} and k >= 1 (e.g. ndcg@10), got "${text}"`);
  }
  return { name, k, label: `${name}@${k}` };
}

/** Options of {@link defaultFusionGrid}. */
export interface FusionGridOptions {
  /** Step of the linear dense weight alpha over [0, 1]. Default 0.05. */
  alphaStep?: number;
  /** Step of the RRF dense weight over [0, 1] (sparse weight 1). Default 0.1. */
  rrfStep?: number;
  /** RRF constant of the RRF points. Default 60. */
  rrfK?: number;
}

function steps(step: number, what: string): number[] {
  const n = Math.round(1 / step);
  if (!(step > 0 && step <= 1) || Math.abs(n * step - 1) > 1e-9) {
    throw new Error(`${WHO}: ${what} must divide 1 into whole steps (e.g. 0.05, 0.1), got ${step}`);
  }
  return Array.from({ length: n + 1 }, (_, i) => i / n);
}

/**
 * The default grid: RRF (k 60) with dense weight 0, 0.1, ..., 1 and sparse weight 1; linear
 * fusion with alpha 0, 0.05, ..., 1, each with min-max and with z-score normalisation.
 */
export function defaultFusionGrid(options: FusionGridOptions = {}): FusionSetting[] {
  const k = options.rrfK ?? 60;
  const grid: FusionSetting[] = steps(options.rrfStep ?? 0.1, "rrfStep").map((w) => ({ method: "rrf", k, weights: [w, 1] }));
  for (const normalization of ["minmax", "zscore"] as const) {
    for (const alpha of steps(options.alphaStep ?? 0.05, "alphaStep")) grid.push({ method: "linear", alpha, normalization });
  }
  return grid;
}

/** One dev question: the dense and the sparse ranked lists (best first, with scores) for it. */
export interface TuningQuestion {
  id: string;
  dense: ReadonlyArray<RankedItem>;
  sparse: ReadonlyArray<RankedItem>;
}

/** Parameters of {@link tuneFusion}. */
export interface FusionTuningParams {
  /** The dev questions' lists. Every id must have judgements in {@link qrels}. */
  questions: ReadonlyArray<TuningQuestion>;
  qrels: Qrels;
  /** `"<metric>@<k>"` or a parsed metric. Default `"ndcg@10"`. */
  metric?: string | TuningMetric;
  /** Settings to try. Default {@link defaultFusionGrid}(). */
  grid?: ReadonlyArray<FusionSetting>;
  /** Fused results kept per question, as HybridRetriever's `k` (the evaluator's depth). Default 100. */
  limit?: number;
}

/** One setting of the grid with its dev score. */
export interface FusionGridPoint {
  setting: FusionSetting;
  /** Mean metric over the dev questions with a relevant passage. */
  score: number;
  /** {@link denseShare} of the setting. */
  denseShare: number;
}

/** What {@link tuneFusion} found. */
export interface FusionTuningResult {
  /** The metric's label, e.g. `"ndcg@10"`. */
  metric: string;
  /** Dev questions scored (those with at least one relevant passage). */
  questions: number;
  /** The best setting; among equal scores the smallest dense share, then RRF before linear, then min-max before z-score. */
  best: FusionGridPoint;
  /** BM25 (the sparse lists) alone. */
  bm25Score: number;
  /** The dense lists alone. */
  denseScore: number;
  /** Every setting, in the grid's order. */
  grid: FusionGridPoint[];
}

/** Order of preference among equal scores: less dense weight, then the simpler setting. */
function preference(a: FusionGridPoint, b: FusionGridPoint): number {
  const rank = (s: FusionSetting) => (s.method === "rrf" ? 0 : s.normalization === "minmax" ? 1 : 2);
  return a.denseShare - b.denseShare || rank(a.setting) - rank(b.setting);
}

/**
 * Scores every grid setting on the dev questions (fusing each question's two lists with the same
 * code HybridRetriever runs, cutting to `limit`, scoring with {@link evaluateRun}) and returns the
 * best. Inputs are not modified.
 */
export function tuneFusion(params: FusionTuningParams): FusionTuningResult {
  const metric = typeof params.metric === "object" ? params.metric : parseTuningMetric(params.metric ?? DEFAULT_TUNING_METRIC);
  const grid = params.grid ?? defaultFusionGrid();
  const limit = params.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`${WHO}: limit must be an integer >= 1, got ${limit}`);
  if (grid.length === 0) throw new Error(`${WHO}: the grid is empty; pass at least one setting (or leave grid out for the default)`);
  const qrels: Qrels = new Map();
  for (const q of params.questions) {
    const judged = params.qrels.get(q.id);
    if (!judged) throw new Error(`${WHO}: dev question "${q.id}" has no judgements in the qrels given`);
    if (qrels.has(q.id)) throw new Error(`${WHO}: dev question "${q.id}" is listed twice`);
    qrels.set(q.id, judged);
  }
  const score = (run: Run) => {
    const r = evaluateRun(run, qrels, { cutoffs: { [metric.name]: [metric.k] } });
    if (r.numQueries === 0) {
      throw new Error(`${WHO}: none of the ${params.questions.length} dev questions has a relevant passage; nothing to tune on`);
    }
    return { value: r.mean[metric.label]!, n: r.numQueries };
  };
  const sideRun = (side: "dense" | "sparse"): Run =>
    new Map(params.questions.map((q) => [q.id, new Map(q[side].slice(0, limit).map((h, i) => [h.id, h.score ?? -i]))]));
  const bm25 = score(sideRun("sparse"));
  const dense = score(sideRun("dense"));
  const points = grid.map((setting): FusionGridPoint => {
    const run: Run = new Map(
      params.questions.map((q) => [q.id, new Map(fuseDenseSparse(q.dense, q.sparse, setting, limit).map((f) => [f.id, f.score]))]),
    );
    return { setting, score: score(run).value, denseShare: denseShare(setting) };
  });
  // The most preferred of the settings within rounding noise (1e-12) of the top score.
  const top = Math.max(...points.map((p) => p.score));
  const best = [...points].sort(preference).find((p) => p.score >= top - 1e-12)!;
  return { metric: metric.label, questions: bm25.n, best, bm25Score: bm25.value, denseScore: dense.value, grid: points };
}

/**
 * A seeded hold-out: `round(fraction × ids.length)` ids (at least 1, leaving at least 1) drawn
 * at random with `seed`; both parts keep the input order. The same ids, fraction and seed always
 * give the same parts, and the same ones `train --dev-fraction` holds out ({@link holdOutShare}).
 */
export function holdOutQuestions(ids: readonly string[], fraction: number, seed: number): { dev: string[]; rest: string[] } {
  if (!(fraction > 0 && fraction < 1)) throw new Error(`${WHO}: the dev fraction must be in (0, 1), got ${fraction}`);
  if (ids.length < 2) {
    throw new Error(
      `${WHO}: a dev fraction needs at least 2 questions with a relevant passage (one to tune on, one to test), got ${ids.length}`,
    );
  }
  return holdOutShare(ids, fraction, seed);
}

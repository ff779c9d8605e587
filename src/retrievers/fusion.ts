/**
 * Rank fusion: combine several ranked result lists (e.g. dense + BM25) into one.
 *
 * Two methods:
 * - {@link reciprocalRankFusion}: RRF (Cormack et al. 2009), `score(d) = Σ_i w_i / (k + rank_i(d))`
 *   with 1-based ranks and `k = 60` by default. Uses ranks only, so the sides' score scales do
 *   not matter.
 * - {@link linearFusion}: a weighted sum of per-side normalised scores (min-max or z-score).
 *
 * Both deduplicate by id (within a list the first, best-ranked, occurrence counts) and sort by
 * fused score descending, ties broken by id ascending (code-unit order) so the output is
 * deterministic.
 *
 * @module
 */

/** One entry of a ranked list: an id, its score on that side (higher = better), and a payload. */
export interface RankedItem<T = unknown> {
  id: string;
  /** The side's own score (higher = better). Required by {@link linearFusion}, ignored by RRF. */
  score?: number;
  /** Anything to carry through fusion (typically a LangChain Document). */
  item?: T;
}

/** One fused entry. `ranks[i]` / `scores[i]` describe list `i` (null when the id is absent there). */
export interface FusedItem<T = unknown> {
  id: string;
  /** The fused score (higher = better). */
  score: number;
  /** 1-based rank in each input list, or null when the id is not in that list. */
  ranks: Array<number | null>;
  /** Raw score in each input list, or null when absent (or the list had no score). */
  scores: Array<number | null>;
  /** Normalised score per list (linear fusion only; null when absent or for RRF). */
  normalizedScores: Array<number | null>;
  /** The payload from the first list (lowest index) that contains the id. */
  item: T | undefined;
}

/** Options for {@link reciprocalRankFusion}. */
export interface RRFOptions {
  /** The RRF constant `k` (default 60). Must be ≥ 0. */
  k?: number;
  /** One weight per list (default 1 each). */
  weights?: number[];
  /** Keep only the top `limit` fused entries (default: all). */
  limit?: number;
}

/** Per-side score normalisation used by {@link linearFusion}. */
export type ScoreNormalization = "minmax" | "zscore";

/** Options for {@link linearFusion}. */
export interface LinearFusionOptions {
  /** One weight per list (default 1 each). */
  weights?: number[];
  /**
   * `"minmax"` (default): `(s - min) / (max - min)` per list, 1 for every entry when
   * `max == min`. `"zscore"`: `(s - mean) / std` (population std) per list, 0 for every entry
   * when `std == 0`.
   */
  normalization?: ScoreNormalization;
  /** Keep only the top `limit` fused entries (default: all). */
  limit?: number;
}

function checkWeights(module: string, lists: readonly unknown[], weights: number[] | undefined): number[] {
  if (weights === undefined) return lists.map(() => 1);
  if (weights.length !== lists.length) {
    throw new Error(`${module}: expected one weight per ranked list (${lists.length} lists), got ${weights.length} weights`);
  }
  weights.forEach((w, i) => {
    if (!Number.isFinite(w) || w < 0) {
      throw new Error(`${module}: weights[${i}] must be a finite number ≥ 0, got ${w}`);
    }
  });
  return weights;
}

function checkLimit(module: string, limit: number | undefined): void {
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new Error(`${module}: limit must be an integer ≥ 0, got ${limit}`);
  }
}

/** Builds the union of ids in first-seen order with per-list ranks/scores (first occurrence wins). */
function collect<T>(module: string, lists: ReadonlyArray<ReadonlyArray<RankedItem<T>>>): Map<string, FusedItem<T>> {
  const fused = new Map<string, FusedItem<T>>();
  lists.forEach((list, li) => {
    const seen = new Set<string>();
    list.forEach((entry, ri) => {
      if (typeof entry.id !== "string" || entry.id.length === 0) {
        throw new Error(`${module}: list ${li} entry at rank ${ri + 1} has no id (expected a non-empty string)`);
      }
      if (seen.has(entry.id)) return; // duplicate within one list: the best-ranked occurrence counts
      seen.add(entry.id);
      let f = fused.get(entry.id);
      if (f === undefined) {
        f = {
          id: entry.id,
          score: 0,
          ranks: lists.map(() => null),
          scores: lists.map(() => null),
          normalizedScores: lists.map(() => null),
          item: entry.item,
        };
        fused.set(entry.id, f);
      }
      f.ranks[li] = seen.size; // 1-based rank among distinct ids of this list
      if (entry.score !== undefined) {
        if (!Number.isFinite(entry.score)) {
          throw new Error(`${module}: list ${li} entry "${entry.id}" has a non-finite score (${entry.score})`);
        }
        f.scores[li] = entry.score;
      }
    });
  });
  return fused;
}

function sortAndLimit<T>(items: FusedItem<T>[], limit: number | undefined): FusedItem<T>[] {
  items.sort((a, b) => (b.score !== a.score ? b.score - a.score : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return limit === undefined ? items : items.slice(0, limit);
}

/**
 * Reciprocal rank fusion: `score(d) = Σ_i w_i / (k + rank_i(d))` over the lists that contain `d`
 * (1-based ranks after removing duplicate ids within a list).
 *
 * @example
 * ```ts
 * reciprocalRankFusion([[{ id: "a" }, { id: "b" }], [{ id: "b" }, { id: "c" }]]);
 * // b: 1/62 + 1/61, a: 1/61, c: 1/62 → order b, a, c
 * ```
 */
export function reciprocalRankFusion<T>(lists: ReadonlyArray<ReadonlyArray<RankedItem<T>>>, options: RRFOptions = {}): FusedItem<T>[] {
  const k = options.k ?? 60;
  if (!Number.isFinite(k) || k < 0) throw new Error(`reciprocalRankFusion: k must be a finite number ≥ 0, got ${k}`);
  const weights = checkWeights("reciprocalRankFusion", lists, options.weights);
  checkLimit("reciprocalRankFusion", options.limit);
  const fused = collect("reciprocalRankFusion", lists);
  for (const f of fused.values()) {
    let s = 0;
    f.ranks.forEach((r, li) => {
      if (r !== null) s += weights[li]! / (k + r);
    });
    f.score = s;
  }
  return sortAndLimit([...fused.values()], options.limit);
}

/** Normalises one list's scores; returns a map id → normalised score. */
function normalizeList<T>(
  list: ReadonlyArray<RankedItem<T>>,
  li: number,
  method: ScoreNormalization,
): { values: Map<string, number>; floor: number } {
  const firsts = new Map<string, number>();
  list.forEach((e, ri) => {
    if (firsts.has(e.id)) return;
    if (e.score === undefined) {
      throw new Error(`linearFusion: list ${li} entry "${e.id}" at rank ${ri + 1} has no score (linear fusion needs scores on every side)`);
    }
    firsts.set(e.id, e.score);
  });
  const scores = [...firsts.values()];
  const values = new Map<string, number>();
  if (scores.length === 0) return { values, floor: 0 };
  if (method === "minmax") {
    let min = Infinity;
    let max = -Infinity;
    for (const s of scores) {
      if (s < min) min = s;
      if (s > max) max = s;
    }
    const range = max - min;
    for (const [id, s] of firsts) values.set(id, range > 0 ? (s - min) / range : 1);
    return { values, floor: 0 };
  }
  const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
  const variance = scores.reduce((a, b) => a + (b - mean) * (b - mean), 0) / scores.length;
  const std = Math.sqrt(variance);
  let floor = Infinity;
  for (const [id, s] of firsts) {
    const z = std > 0 ? (s - mean) / std : 0;
    values.set(id, z);
    if (z < floor) floor = z;
  }
  return { values, floor };
}

/**
 * Normalised linear combination: each list's scores are normalised (min-max by default, or
 * z-score), then `score(d) = Σ_i w_i · norm_i(d)`. A document missing from list `i` gets 0
 * there with min-max (the value of that list's worst returned document) and the list's minimum
 * z with z-score: it counts as no better than the worst document the list returned. An empty
 * list contributes nothing.
 *
 * With two lists and `weights = [alpha, 1 - alpha]` this is the usual hybrid
 * `alpha · dense + (1 - alpha) · sparse`.
 */
export function linearFusion<T>(lists: ReadonlyArray<ReadonlyArray<RankedItem<T>>>, options: LinearFusionOptions = {}): FusedItem<T>[] {
  const method = options.normalization ?? "minmax";
  if (method !== "minmax" && method !== "zscore") {
    throw new Error(`linearFusion: normalization must be "minmax" or "zscore", got ${JSON.stringify(method)}`);
  }
  const weights = checkWeights("linearFusion", lists, options.weights);
  checkLimit("linearFusion", options.limit);
  const fused = collect("linearFusion", lists);
  const norms = lists.map((list, li) => normalizeList(list, li, method));
  for (const f of fused.values()) {
    let s = 0;
    norms.forEach((n, li) => {
      if (lists[li]!.length === 0) return;
      const v = n.values.get(f.id);
      if (v !== undefined) f.normalizedScores[li] = v;
      s += weights[li]! * (v ?? n.floor);
    });
    f.score = s;
  }
  return sortAndLimit([...fused.values()], options.limit);
}

/** Linear fusion of a dense and a sparse list: `alpha · dense + (1 - alpha) · sparse` on normalised scores. */
export interface LinearFusionSetting {
  method: "linear";
  /** Weight of the dense side, in [0, 1]; the sparse side gets `1 - alpha`. */
  alpha: number;
  /** Per-side score normalisation. */
  normalization: ScoreNormalization;
}

/** Reciprocal rank fusion of a dense and a sparse list. */
export interface RRFFusionSetting {
  method: "rrf";
  /** The RRF constant (≥ 0). */
  k: number;
  /** Weights `[dense, sparse]`, each ≥ 0. */
  weights: [number, number];
}

/** One complete way of fusing a dense list with a sparse (BM25) list. */
export type FusionSetting = LinearFusionSetting | RRFFusionSetting;

/** The fusion used when nothing else is said: RRF, k 60, equal weights. */
export const DEFAULT_FUSION: Readonly<RRFFusionSetting> = Object.freeze({ method: "rrf", k: 60, weights: [1, 1] as [number, number] });

/**
 * The dense side's share of the weight, in [0, 1]: `alpha` for linear fusion, `w_dense / (w_dense +
 * w_sparse)` for RRF (0 when both weights are 0). 0 means the fused order is the sparse order.
 */
export function denseShare(setting: FusionSetting): number {
  if (setting.method === "linear") return setting.alpha;
  const [d, s] = setting.weights;
  return d + s === 0 ? 0 : d / (d + s);
}

/** A short human-readable form, e.g. `linear (alpha 0.15 dense, minmax)` or `RRF (k 60, weights dense 0.3 / sparse 1)`. */
export function describeFusion(setting: FusionSetting): string {
  return setting.method === "linear"
    ? `linear (alpha ${setting.alpha} dense, ${setting.normalization})`
    : `RRF (k ${setting.k}, weights dense ${setting.weights[0]} / sparse ${setting.weights[1]})`;
}

/**
 * Fuses a dense list (index 0 of the result's ranks/scores) with a sparse list (index 1) by one
 * {@link FusionSetting}; the one rule HybridRetriever and the fusion tuner share.
 */
export function fuseDenseSparse<T>(
  dense: ReadonlyArray<RankedItem<T>>,
  sparse: ReadonlyArray<RankedItem<T>>,
  setting: FusionSetting,
  limit?: number,
): FusedItem<T>[] {
  return setting.method === "rrf"
    ? reciprocalRankFusion([dense, sparse], { k: setting.k, weights: setting.weights, limit })
    : linearFusion([dense, sparse], { weights: [setting.alpha, 1 - setting.alpha], normalization: setting.normalization, limit });
}

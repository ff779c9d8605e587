/**
 * Maximal marginal relevance over a candidate list. With `"cosine"` it is, step for step, the
 * algorithm of @langchain/core's `maximalMarginalRelevance` (utils/math): the first pick is the
 * candidate most similar to the query, then each pick maximises
 * `λ · sim(query, c) − (1 − λ) · max over picked p of sim(c, p)`, ties going to the earlier
 * candidate, NaN similarities (zero vectors) counting as 0. `"inner_product"` swaps the similarity
 * for the raw dot product (see {@link MMRSimilarity} for why cosine is the default).
 *
 * @module
 */
import { dot } from "./matrix.js";
import type { MMRSimilarity } from "./types.js";

/** Cosine similarity, computed exactly as @langchain/core's (one pass; NaN for a zero vector). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let p = 0;
  let p2 = 0;
  let q2 = 0;
  for (let i = 0; i < a.length; i++) {
    p += a[i]! * b[i]!;
    p2 += a[i]! * a[i]!;
    q2 += b[i]! * b[i]!;
  }
  return p / (Math.sqrt(p2) * Math.sqrt(q2));
}

/**
 * Indexes into `candidates` of up to k picks, in pick order.
 * @param query the query vector (used as given: no float32 rounding).
 * @param lambda in [0, 1]: 1 is pure relevance, 0 pure diversity.
 */
export function selectMMR(
  query: ArrayLike<number>,
  candidates: ArrayLike<number>[],
  k: number,
  lambda: number,
  similarity: MMRSimilarity,
): number[] {
  const n = Math.min(k, candidates.length);
  if (n <= 0) return [];
  const raw = similarity === "cosine" ? cosine : dot;
  const sim = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
    const s = raw(a, b);
    return Number.isNaN(s) ? 0 : s;
  };
  const relevance = candidates.map((c) => sim(query, c));
  let first = 0;
  for (let i = 1; i < relevance.length; i++) if (relevance[i]! > relevance[first]!) first = i;
  const picked = [first];
  const used = new Uint8Array(candidates.length);
  used[first] = 1;
  const maxSim = candidates.map((c) => sim(c, candidates[first]!));
  while (picked.length < n) {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i < candidates.length; i++) {
      if (used[i]) continue;
      const score = lambda * relevance[i]! - (1 - lambda) * maxSim[i]!;
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    used[best] = 1;
    picked.push(best);
    for (let i = 0; i < candidates.length; i++) {
      if (!used[i]) maxSim[i] = Math.max(maxSim[i]!, sim(candidates[i]!, candidates[best]!));
    }
  }
  return picked;
}

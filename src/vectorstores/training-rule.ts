/**
 * How many vectors an index described by a faiss factory string needs for training.
 *
 * faiss k-means refuses fewer points than centroids and warns below 39 points per centroid
 * ("please provide at least 39 × k training points"): the centroids are poorly placed and recall
 * suffers. The rule here:
 * - IVF{nlist}: nlist centroids → required nlist, recommended 39 × nlist;
 * - PQ{m}[x{nbits}] (also inside IVF…,PQ and OPQ): 2^nbits centroids per sub-quantizer (nbits
 *   default 8 → 256) → required 2^nbits, recommended 39 × 2^nbits;
 * - OPQ{m}: trains an inner 8-bit PQ → at least 256, recommended 39 × 256;
 * - SQ{n} / Flat / HNSW{M}: no clustering (SQ only learns value ranges) → 1.
 * The largest figure wins.
 *
 * @module
 */

/** Training needs of a factory string. */
export interface TrainingRule {
  /** Below this faiss errors out (fewer points than centroids). */
  required: number;
  /** faiss's own advice (39 points per centroid); the store's default auto-train threshold. */
  recommended: number;
  /** Human-readable explanation, used in error messages. */
  reason: string;
}

/** Computes the {@link TrainingRule} for a faiss index_factory description. */
export function trainingRule(factory: string): TrainingRule {
  let required = 1;
  let recommended = 1;
  const reasons: string[] = [];
  const consider = (centroids: number, what: string): void => {
    if (centroids > required) required = centroids;
    if (39 * centroids > recommended) recommended = 39 * centroids;
    reasons.push(`${what}: ${centroids} centroids → ≥ ${centroids}, advised 39 × ${centroids} = ${39 * centroids}`);
  };
  const ivf = /IVF(\d+)/.exec(factory);
  if (ivf) consider(Number(ivf[1]), `IVF${ivf[1]}`);
  // PQ16, PQ16x4, PQ16x4np — but not the "OPQ16" transform (handled below)
  for (const m of factory.matchAll(/(?<![O\w])PQ(\d+)(?:x(\d+))?/g)) {
    const nbits = m[2] ? Number(m[2]) : 8;
    consider(2 ** nbits, `PQ${m[1]}${m[2] ? `x${m[2]}` : ""}`);
  }
  const opq = /OPQ(\d+)/.exec(factory);
  if (opq) consider(256, `OPQ${opq[1]}`);
  return {
    required,
    recommended,
    reason: reasons.length > 0 ? reasons.join("; ") : "no training needed",
  };
}

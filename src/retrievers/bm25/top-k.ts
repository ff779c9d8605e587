/**
 * Top-k selection over a sparse score accumulator, as {@link BM25Index} ranks: a min-heap on
 * (score ascending, document descending), so equal scores rank the earlier document first.
 *
 * @module
 */

/** One kept document: its number in the index and its score. */
export interface ScoredDoc {
  doc: number;
  score: number;
}

/**
 * The `k` best of the `count` documents listed in `touched` (their scores in `scores`), best first,
 * ties broken by the smaller document number. Resets `scores[d]` to 0 for every listed document, so
 * the accumulator is ready for the next query.
 */
export function takeTopK(scores: Float64Array, touched: Int32Array, count: number, k: number): ScoredDoc[] {
  const size = Math.min(k, count);
  const heapScores = new Float64Array(size);
  const heapDocs = new Int32Array(size);
  let heapLength = 0;
  const weaker = (sa: number, da: number, sb: number, db: number): boolean => sa < sb || (sa === sb && da > db);
  const swap = (i: number, j: number): void => {
    const s = heapScores[i]!,
      d = heapDocs[i]!;
    heapScores[i] = heapScores[j]!;
    heapDocs[i] = heapDocs[j]!;
    heapScores[j] = s;
    heapDocs[j] = d;
  };
  const siftDown = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1,
        r = l + 1;
      let m = i;
      if (l < heapLength && weaker(heapScores[l]!, heapDocs[l]!, heapScores[m]!, heapDocs[m]!)) m = l;
      if (r < heapLength && weaker(heapScores[r]!, heapDocs[r]!, heapScores[m]!, heapDocs[m]!)) m = r;
      if (m === i) return;
      swap(i, m);
      i = m;
    }
  };
  for (let j = 0; j < count; j++) {
    const d = touched[j]!;
    const s = scores[d]!;
    scores[d] = 0;
    if (heapLength < size) {
      let i = heapLength++;
      heapScores[i] = s;
      heapDocs[i] = d;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!weaker(heapScores[i]!, heapDocs[i]!, heapScores[parent]!, heapDocs[parent]!)) break;
        swap(i, parent);
        i = parent;
      }
    } else if (size > 0 && weaker(heapScores[0]!, heapDocs[0]!, s, d)) {
      heapScores[0] = s;
      heapDocs[0] = d;
      siftDown(0);
    }
  }
  const out: ScoredDoc[] = new Array(heapLength);
  for (let i = heapLength - 1; i >= 0; i--) {
    out[i] = { doc: heapDocs[0]!, score: heapScores[0]! };
    heapLength--;
    heapScores[0] = heapScores[heapLength]!;
    heapDocs[0] = heapDocs[heapLength]!;
    siftDown(0);
  }
  return out;
}

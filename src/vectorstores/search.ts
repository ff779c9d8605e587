/**
 * FaissDPRStore's core search: k live documents per query that pass the filter, best first by
 * inner product. Over-fetches past tombstones and filtered-out documents, and falls back to exact
 * scoring of the admitted documents when an approximate index runs dry under a filter.
 *
 * @module
 */
import { Document } from "@langchain/core/documents";
import type { FaissSearchKnobs, FaissSearchResult } from "../native/faiss-index.js";
import { checkFilter, matchesFilter } from "../retrievers/filter.js";
import { OWNER, checkFinite, dot } from "./matrix.js";
import type { StoreState } from "./state.js";
import type { FaissDPRFilter, StoredDoc } from "./types.js";

/** One search result: the document (as stored when found), its label, its inner-product score and (on request) its stored vector. */
export interface Hit {
  label: number;
  doc: StoredDoc;
  score: number;
  vector?: Float32Array;
}

/** What {@link searchLabels} needs besides the store's contents. */
export interface SearchRequest {
  /** Results per query, 1..number of live documents (the caller clamps). */
  k: number;
  filter?: FaissDPRFilter;
  knobs: FaissSearchKnobs;
  /** Initial over-fetch factor with a filter. */
  filterOverFetch: number;
  /** Also return the stored vectors (MMR). */
  withVectors: boolean;
}

/** Whether a stored document passes the filter; a predicate sees a copy, never the stored object. */
export function passes(filter: FaissDPRFilter | undefined, doc: StoredDoc): boolean {
  if (filter === undefined || filter === null) return true;
  if (typeof filter === "function") {
    return Boolean(filter(new Document({ pageContent: doc.pageContent, metadata: { ...doc.metadata }, id: doc.id })));
  }
  return matchesFilter(filter, doc);
}

/**
 * For each of the nq queries (row-major in `queries`), up to k live documents passing the filter,
 * best first. Over-fetches by the number of tombstones (so exact indexes return k live results)
 * and, with a filter, grows the fetch size ×4 until k documents pass or every stored vector was
 * considered.
 */
export async function searchLabels(state: StoreState, queries: Float32Array, nq: number, req: SearchRequest): Promise<Hit[][]> {
  const d = state.dims!;
  const { k, filter, knobs, withVectors } = req;
  checkFilter(filter, OWNER);
  if (queries.length !== nq * d) {
    throw new Error(`${OWNER}: query vectors have ${queries.length / nq} dimensions, the store has ${d}`);
  }
  checkFinite(queries, d, "search");
  for (const [name, v] of Object.entries(knobs) as [string, number | undefined][]) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new Error(`${OWNER}: ${name} must be an integer ≥ 1, got ${v}`);
  }
  let ntotal = state.index!.ntotal;
  const hits: Hit[][] = new Array(nq);
  let pending = Array.from({ length: nq }, (_, i) => i);
  const extra = state.tombstones.size;
  let fetch = Math.min(ntotal, filter ? Math.ceil(k * req.filterOverFetch) + extra : k + extra);
  for (;;) {
    // re-read each round: compact() may have swapped in a rebuilt index (same labels) meanwhile
    const index = state.index;
    if (!index) throw new Error(`${OWNER}: the store was disposed during a search`);
    ntotal = index.ntotal;
    const qs = new Float32Array(pending.length * d);
    pending.forEach((q, j) => qs.set(queries.subarray(q * d, (q + 1) * d), j * d));
    let res: FaissSearchResult;
    let vectors: Float32Array | undefined;
    if (withVectors) {
      const r = await index.searchAndReconstruct(qs, fetch, knobs);
      res = r;
      vectors = r.vectors;
    } else {
      res = await index.search(qs, fetch, knobs);
    }
    const next: number[] = [];
    pending.forEach((q, j) => {
      const list: Hit[] = [];
      let exhausted = false;
      for (let r = 0; r < fetch && list.length < k; r++) {
        const pos = j * fetch + r;
        const label = Number(res.labels[pos]);
        if (label < 0) {
          exhausted = true;
          break;
        }
        const doc = state.docs.get(label);
        if (!doc || !passes(filter, doc)) continue;
        list.push({ label, doc, score: res.distances[pos]!, vector: vectors?.subarray(pos * d, (pos + 1) * d) });
      }
      hits[q] = list;
      if (list.length < k && !exhausted && fetch < ntotal) next.push(q);
    });
    if (next.length === 0) break;
    pending = next;
    fetch = Math.min(ntotal, fetch * 4);
  }
  // An approximate index may run dry before k filtered documents turn up (IVF lists not probed,
  // HNSW graph regions not reached). With a filter, score the admitted documents exactly instead:
  // a restrictive filter makes that set small.
  if (filter) {
    const short = hits.map((list, q) => (list.length < k ? q : -1)).filter((q) => q >= 0);
    if (short.length > 0) await exactFilteredFallback(state, queries, short, hits, k, filter, withVectors);
  }
  return hits;
}

async function exactFilteredFallback(
  state: StoreState,
  queries: Float32Array,
  short: number[],
  hits: Hit[][],
  k: number,
  filter: FaissDPRFilter,
  withVectors: boolean,
): Promise<void> {
  const d = state.dims!;
  const admitted: number[] = [];
  const docs: StoredDoc[] = [];
  for (const [label, doc] of state.docs) {
    if (!passes(filter, doc)) continue;
    admitted.push(label);
    docs.push(doc);
  }
  if (admitted.length === 0) return;
  // enqueued before any later removal on the index's queue, so every admitted label is still there
  const vectors = await state.index!.reconstruct(BigInt64Array.from(admitted, (l) => BigInt(l)));
  for (const q of short) {
    const qv = queries.subarray(q * d, (q + 1) * d);
    const scored = admitted.map((label, i) => {
      const v = vectors.subarray(i * d, (i + 1) * d);
      return { label, doc: docs[i]!, score: dot(qv, v), vector: withVectors ? v : undefined };
    });
    scored.sort((a, b) => b.score - a.score || a.label - b.label);
    hits[q] = scored.slice(0, k);
  }
}

/**
 * What a FaissDPRStore holds (the faiss index, the documents by label, ids, tombstones) and the
 * changes that keep them consistent: upsert, retire (delete), compact. Callers serialise these
 * (FaissDPRStore's mutex); searches run concurrently and see either the old or the new state,
 * because each change swaps the documents in one synchronous step.
 *
 * Invariant: every vector in the index is either a live document (in `docs`) or a tombstone, so
 * `index.ntotal === docs.size + tombstones.size` between changes.
 *
 * @module
 */
import { Document } from "@langchain/core/documents";
import type { DocumentInterface } from "@langchain/core/documents";
import { FaissIndex } from "../native/faiss-index.js";
import { OWNER, checkFinite, type Matrix } from "./matrix.js";
import { trainingRule } from "./training-rule.js";
import type { SavedStore } from "./persistence.js";
import type { StoredDoc } from "./types.js";

/** The store's contents (internal to src/vectorstores). */
export class StoreState {
  index: FaissIndex | undefined;
  dims: number | undefined;
  /** Live documents by faiss label. */
  readonly docs = new Map<number, StoredDoc>();
  /** Document id → label. */
  readonly labelOf = new Map<string, number>();
  /** Labels of vectors still in the index whose documents are gone (HNSW deletes; removals in flight). */
  readonly tombstones = new Set<number>();
  /** Labels are never reused: a search that started before a change cannot mistake a new document for an old one. */
  nextLabel = 0;
  /** Grows with every change of what search can return. */
  changeCount = 0;
  disposed = false;

  /** Creates the index on first use. */
  ensureIndex(d: number, factory: string): FaissIndex {
    if (this.disposed) throw new Error(`${OWNER}: the store was disposed`);
    if (this.index) return this.index;
    if (!Number.isInteger(d) || d <= 0) throw new Error(`${OWNER}: dimensions must be a positive integer, got ${d}`);
    try {
      this.index = FaissIndex.create(d, factory);
    } catch (e) {
      throw new Error(`${OWNER}: cannot build index "${factory}": ${(e as Error).message}`);
    }
    this.dims = d;
    return this.index;
  }

  /** Takes over a store read from disk (a new, empty state only). */
  adopt(saved: SavedStore): void {
    if (this.index || this.docs.size > 0) throw new Error(`${OWNER}: cannot adopt a saved store into a non-empty one`);
    this.index = saved.index;
    this.dims = saved.dims;
    this.nextLabel = saved.nextLabel;
    for (const t of saved.tombstones) this.tombstones.add(t);
    for (const [label, doc] of saved.docs) {
      this.docs.set(label, doc);
      this.labelOf.set(doc.id, label);
    }
  }

  /** A fresh LangChain Document for a stored one (metadata copied: callers cannot change the store). */
  toDocument(doc: StoredDoc): Document {
    return new Document({ pageContent: doc.pageContent, metadata: { ...doc.metadata }, id: doc.id });
  }

  /**
   * Adds n vectors with their documents and ids (ids checked by the caller: non-empty, unique in
   * the call). An id already stored is replaced: the new vector goes in first, then the documents
   * switch in one step, then the old vector is removed (or tombstoned on HNSW).
   */
  async upsert(
    m: Matrix,
    documents: DocumentInterface[],
    ids: string[],
    settings: { factory: string; trainingSize: number; addBatchSize: number },
  ): Promise<void> {
    const { data, n, d } = m;
    checkFinite(data, d, "addVectors");
    const index = this.ensureIndex(d, settings.factory);
    if (!index.isTrained) {
      const rule = trainingRule(settings.factory);
      if (n < settings.trainingSize) {
        throw new Error(
          `${OWNER}.addVectors: "${settings.factory}" must be trained first: this batch has ${n} vectors, ` +
            `auto-training needs at least ${settings.trainingSize} (${rule.reason}). ` +
            `Add a larger first batch, call train(vectors), or lower trainingSize (minimum ${rule.required}).`,
        );
      }
      await index.train(data);
      this.changeCount++;
    }
    const first = this.nextLabel;
    this.nextLabel += n;
    const labels = new BigInt64Array(n);
    for (let i = 0; i < n; i++) labels[i] = BigInt(first + i);
    let added = 0;
    try {
      for (let start = 0; start < n; start += settings.addBatchSize) {
        const end = Math.min(n, start + settings.addBatchSize);
        await index.add(data.subarray(start * d, end * d), labels.subarray(start, end));
        added = end;
      }
    } catch (e) {
      // vectors of this call already in the index have no document: retire them
      const orphans = Array.from({ length: added }, (_, i) => first + i);
      for (const l of orphans) this.tombstones.add(l);
      await this.removeRetired(orphans).catch(() => undefined);
      throw e;
    }
    const replaced: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      const old = this.labelOf.get(id);
      if (old !== undefined) {
        replaced.push(old);
        this.docs.delete(old);
        this.tombstones.add(old);
      }
      const doc = documents[i]!;
      this.docs.set(first + i, { id, pageContent: doc.pageContent, metadata: { ...(doc.metadata ?? {}) } });
      this.labelOf.set(id, first + i);
    }
    this.changeCount++;
    if (replaced.length > 0) await this.removeRetired(replaced);
  }

  /**
   * Deletes documents by id (all must exist, else nothing is deleted): their documents go in one
   * step, then their vectors are removed from the index (tombstoned where faiss cannot remove).
   */
  async delete(ids: string[]): Promise<void> {
    const unknown = ids.filter((id) => !this.labelOf.has(id));
    if (unknown.length > 0) {
      const named = unknown
        .slice(0, 5)
        .map((u) => `"${u}"`)
        .join(", ");
      throw new Error(`${OWNER}.delete: unknown document id(s): ${named}${unknown.length > 5 ? ", ..." : ""}`);
    }
    const labels = [...new Set(ids.map((id) => this.labelOf.get(id)!))];
    if (labels.length === 0) return;
    for (const l of labels) {
      this.labelOf.delete(this.docs.get(l)!.id);
      this.docs.delete(l);
      this.tombstones.add(l);
    }
    this.changeCount++;
    await this.removeRetired(labels);
  }

  /** Removes tombstoned labels from an index that can remove vectors; HNSW keeps them tombstoned. */
  private async removeRetired(labels: number[]): Promise<void> {
    const index = this.index;
    if (!index || labels.length === 0 || !index.info.canRemove) return;
    const removed = await index.removeIds(BigInt64Array.from(labels, (l) => BigInt(l)));
    if (removed !== labels.length) {
      throw new Error(`${OWNER}: faiss removed ${removed} vectors, expected ${labels.length} (index out of sync)`);
    }
    for (const l of labels) this.tombstones.delete(l);
  }

  /** Live vectors in label order, in batches (for merge and compact). */
  async *liveVectors(batch: number): AsyncGenerator<{ labels: number[]; data: Float32Array }> {
    const labels = [...this.docs.keys()].sort((a, b) => a - b);
    for (let i = 0; i < labels.length; i += batch) {
      const part = labels.slice(i, i + batch);
      const data = await this.index!.reconstruct(BigInt64Array.from(part, (l) => BigInt(l)));
      yield { labels: part, data };
    }
  }

  /** Rebuilds the index without tombstones (ids and labels kept). */
  async compact(factory: string, addBatchSize: number): Promise<void> {
    if (!this.index || this.tombstones.size === 0) return;
    const fresh = FaissIndex.create(this.dims!, factory);
    try {
      let trained = fresh.isTrained;
      for await (const { labels, data } of this.liveVectors(addBatchSize)) {
        if (!trained) {
          await fresh.train(data);
          trained = true;
        }
        await fresh.add(
          data,
          BigInt64Array.from(labels, (l) => BigInt(l)),
        );
      }
    } catch (e) {
      await fresh.dispose();
      throw e;
    }
    const old = this.index;
    this.index = fresh;
    this.tombstones.clear();
    this.changeCount++;
    await old.dispose();
  }

  /** Frees the native index; the store cannot be used afterwards. */
  async dispose(): Promise<void> {
    await this.index?.dispose();
    this.index = undefined;
    this.disposed = true;
    this.changeCount++;
  }
}

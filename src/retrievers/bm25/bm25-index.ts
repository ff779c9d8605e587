import { endianness } from "node:os";
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { writeFileAtomic, writeStreamAtomic } from "../../utils/atomic-file.js";
import type { Passage } from "../../data/types.js";
import { EnglishAnalyzer, type EnglishAnalyzerParams } from "./analyzer.js";
import { luceneLength } from "./lucene-norms.js";
import { takeTopK } from "./top-k.js";

const WHO = "BM25Index";
const FORMAT = "langchain-dpr/bm25";
const FORMAT_VERSION = 1;
const MANIFEST = "bm25.json";

/**
 * One query term's share of a passage's score: `w · tf / (tf + norm)` with `w = qtf · idf` and
 * `norm = k1 · (1 − b + b · |d| / avgdl)`. The one place of the formula: `search` and
 * `scoreDocuments` both add these terms in query order, so their scores are bit-identical.
 */
const termScore = (w: number, tf: number, norm: number): number => (w * tf) / (tf + norm);

/** Parameters of {@link BM25Index}. Defaults reproduce Pyserini's BM25 (Lucene 8+). */
export interface BM25IndexParams {
  /** Term-frequency saturation (default 0.9, Pyserini's). */
  k1?: number;
  /** Length normalisation strength in [0, 1] (default 0.4, Pyserini's). */
  b?: number;
  /** Analyzer options, or an analyzer instance (default: Pyserini's English analyzer). */
  analyzer?: EnglishAnalyzerParams | EnglishAnalyzer;
  /**
   * Score with document lengths rounded as Lucene stores them in one byte (default true, to
   * match Lucene/Pyserini); false uses exact lengths.
   */
  lossyLengths?: boolean;
  /** Keep passages (title, text, metadata) so that results can be returned as documents (default true). */
  storePassages?: boolean;
  /**
   * How repeated query terms count: `"frequency"` weights a term by its count in the query as
   * Anserini's bag-of-words query does (default); `"unique"` counts each term once.
   */
  queryTermWeighting?: "frequency" | "unique";
}

/** One search result: the passage id and its BM25 score. */
export interface BM25Hit {
  id: string;
  score: number;
}

/** Saved index manifest (`bm25.json`). */
interface Manifest {
  format: string;
  version: number;
  generation: string;
  byteOrder: "LE";
  k1: number;
  b: number;
  lossyLengths: boolean;
  queryTermWeighting: "frequency" | "unique";
  analyzer: Required<EnglishAnalyzerParams>;
  numDocs: number;
  numTerms: number;
  numPostings: number;
  tfBytes: 2 | 4;
  hasPassages: boolean;
}

/** A growable Int32 buffer (amortised doubling) for building postings without JS arrays. */
class IntBuffer {
  data: Int32Array;
  length = 0;
  constructor(capacity = 1024) {
    this.data = new Int32Array(capacity);
  }
  push(value: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = value;
  }
  view(): Int32Array {
    return this.data.subarray(0, this.length);
  }
}

function checkPassage(p: unknown, index: number): asserts p is Passage {
  if (typeof p !== "object" || p === null)
    throw new Error(`${WHO}: passage ${index} must be an object, got ${p === null ? "null" : typeof p}`);
  const r = p as Record<string, unknown>;
  if (typeof r["id"] !== "string" || r["id"] === "")
    throw new Error(`${WHO}: passage ${index} needs a non-empty string "id", got ${JSON.stringify(r["id"])}`);
  if (typeof r["text"] !== "string")
    throw new Error(`${WHO}: passage ${index} (id "${r["id"] as string}") needs a string "text", got ${typeof r["text"]}`);
  if (r["title"] !== undefined && typeof r["title"] !== "string")
    throw new Error(`${WHO}: passage ${index} (id "${r["id"] as string}") has a non-string "title"`);
}

/**
 * A BM25 inverted index with Lucene/Pyserini-compatible scoring, in typed arrays.
 *
 * score(q, d) = Σ_t qtf(t) · idf(t) · tf / (tf + k1 · (1 − b + b · |d| / avgdl)),
 * idf(t) = ln(1 + (N − df + 0.5) / (df + 0.5)), as Lucene 8+ computes it (no (k1 + 1) factor,
 * which does not change rankings); |d| is Lucene's one-byte rounded length unless
 * `lossyLengths: false`. Passages are indexed "flat" as `title + " " + text`, like Pyserini's
 * BEIR flat indexes. Ties rank the earlier-added passage first.
 *
 * @example
 * const index = await BM25Index.fromPassages(passages);
 * index.search("vitamin d and bone density", 10); // [{ id, score }, ...]
 * await index.save("./bm25-index");
 * const again = await BM25Index.load("./bm25-index");
 */
export class BM25Index {
  k1 = 0.9;
  b = 0.4;
  lossyLengths = true;
  storePassages = true;
  queryTermWeighting: "frequency" | "unique" = "frequency";
  readonly analyzer: EnglishAnalyzer;

  private ids: string[] = [];
  private idToDoc = new Map<string, number>();
  private passages: Passage[] = [];
  private termIds = new Map<string, number>();
  private terms: string[] = [];
  private lengths = new IntBuffer();

  // Compiled postings (CSR by term id).
  private offsets = new Int32Array(1);
  private postDocs = new Int32Array(0);
  private postTfs: Uint16Array | Uint32Array = new Uint16Array(0);
  private compiledDocs = 0;
  // Passages added since the last compile: per doc, its (term id, tf) pairs.
  private pendingTerms = new IntBuffer();
  private pendingTfs = new IntBuffer();
  private pendingDocEnds = new IntBuffer();

  // Scoring caches (rebuilt on compile).
  private norms = new Float64Array(0);
  private idfs = new Float64Array(0);
  private accumulator = new Float64Array(0);
  private touched = new Int32Array(0);
  private fieldDocCount = 0;
  private sumLength = 0;

  constructor(params: BM25IndexParams = {}) {
    if (params.k1 !== undefined) this.k1 = params.k1;
    if (params.b !== undefined) this.b = params.b;
    if (params.lossyLengths !== undefined) this.lossyLengths = params.lossyLengths;
    if (params.storePassages !== undefined) this.storePassages = params.storePassages;
    if (params.queryTermWeighting !== undefined) this.queryTermWeighting = params.queryTermWeighting;
    this.analyzer = params.analyzer instanceof EnglishAnalyzer ? params.analyzer : new EnglishAnalyzer(params.analyzer);
    if (!Number.isFinite(this.k1) || this.k1 < 0) throw new Error(`${WHO}: k1 must be a finite number ≥ 0, got ${this.k1}`);
    if (!Number.isFinite(this.b) || this.b < 0 || this.b > 1) throw new Error(`${WHO}: b must be in [0, 1], got ${this.b}`);
    if (this.queryTermWeighting !== "frequency" && this.queryTermWeighting !== "unique") {
      throw new Error(`${WHO}: queryTermWeighting must be "frequency" or "unique", got ${JSON.stringify(this.queryTermWeighting)}`);
    }
  }

  /** Builds an index over `passages`. */
  static async fromPassages<T extends BM25Index>(
    this: new (params?: BM25IndexParams) => T,
    passages: Iterable<Passage> | AsyncIterable<Passage>,
    params: BM25IndexParams = {},
  ): Promise<T> {
    const index = new this(params);
    await index.addDocuments(passages);
    return index;
  }

  /** Number of indexed passages. */
  get size(): number {
    return this.ids.length;
  }

  /** Number of distinct terms. */
  get vocabularySize(): number {
    return this.terms.length;
  }

  /** Average analysed passage length (tokens after stop-word removal), as BM25 uses it. */
  get averageLength(): number {
    this.compile();
    return this.fieldDocCount === 0 ? 0 : this.sumLength / this.fieldDocCount;
  }

  /** The stored passage for an id (undefined when unknown or when passages are not stored). */
  getPassage(id: string): Passage | undefined {
    const doc = this.idToDoc.get(id);
    return doc === undefined ? undefined : this.passages[doc];
  }

  /** Whether a passage id is indexed. */
  has(id: string): boolean {
    return this.idToDoc.has(id);
  }

  /**
   * Adds passages (an array, any iterable, or an async iterable such as
   * `streamBeirCorpus(dir)`). Ids must be unique across the index.
   */
  async addDocuments(passages: Iterable<Passage> | AsyncIterable<Passage>): Promise<void> {
    let i = 0;
    const seenInBatch = new Set<string>();
    for await (const p of passages as AsyncIterable<Passage>) {
      checkPassage(p, i);
      if (this.idToDoc.has(p.id) || seenInBatch.has(p.id)) throw new Error(`${WHO}: duplicate passage id "${p.id}" (passage ${i})`);
      seenInBatch.add(p.id);
      this.addOne(p);
      i++;
    }
  }

  private addOne(p: Passage): void {
    const title = p.title ?? "";
    const tokens = this.analyzer.analyze(title === "" ? p.text : `${title} ${p.text}`);
    const counts = new Map<number, number>();
    for (const token of tokens) {
      let termId = this.termIds.get(token);
      if (termId === undefined) {
        termId = this.terms.length;
        this.terms.push(token);
        this.termIds.set(token, termId);
      }
      counts.set(termId, (counts.get(termId) ?? 0) + 1);
    }
    for (const [termId, tf] of counts) {
      this.pendingTerms.push(termId);
      this.pendingTfs.push(tf);
    }
    this.pendingDocEnds.push(this.pendingTerms.length);
    const doc = this.ids.length;
    this.ids.push(p.id);
    this.idToDoc.set(p.id, doc);
    this.lengths.push(tokens.length);
    if (this.storePassages) {
      const stored: Passage = { id: p.id, title, text: p.text };
      if (p.metadata !== undefined) stored.metadata = p.metadata;
      this.passages.push(stored);
    }
  }

  /** Merges pending passages into the postings and refreshes the scoring caches. */
  private compile(): void {
    const pendingDocs = this.pendingDocEnds.length;
    if (pendingDocs === 0 && this.norms.length === this.ids.length && this.idfs.length === this.terms.length) return;
    const numTerms = this.terms.length;
    const oldOffsets = this.offsets;
    const oldTerms = oldOffsets.length - 1;
    const counts = new Int32Array(numTerms + 1);
    for (let t = 0; t < oldTerms; t++) counts[t] = oldOffsets[t + 1]! - oldOffsets[t]!;
    const pTerms = this.pendingTerms.view();
    const pTfs = this.pendingTfs.view();
    let maxTf = 0;
    for (let j = 0; j < pTerms.length; j++) {
      counts[pTerms[j]!]!++;
      if (pTfs[j]! > maxTf) maxTf = pTfs[j]!;
    }
    const offsets = new Int32Array(numTerms + 1);
    for (let t = 0; t < numTerms; t++) offsets[t + 1] = offsets[t]! + counts[t]!;
    const total = offsets[numTerms]!;
    const docs = new Int32Array(total);
    const wide = maxTf > 0xffff || this.postTfs instanceof Uint32Array;
    const tfs = wide ? new Uint32Array(total) : new Uint16Array(total);
    const cursor = offsets.slice(0, numTerms);
    for (let t = 0; t < oldTerms; t++) {
      const from = oldOffsets[t]!,
        to = oldOffsets[t + 1]!;
      docs.set(this.postDocs.subarray(from, to), cursor[t]!);
      tfs.set(this.postTfs.subarray(from, to), cursor[t]!);
      cursor[t]! += to - from;
    }
    const ends = this.pendingDocEnds.view();
    let start = 0;
    for (let d = 0; d < pendingDocs; d++) {
      const doc = this.compiledDocs + d;
      for (let j = start; j < ends[d]!; j++) {
        const t = pTerms[j]!;
        const at = cursor[t]!++;
        docs[at] = doc;
        tfs[at] = pTfs[j]!;
      }
      start = ends[d]!;
    }
    this.offsets = offsets;
    this.postDocs = docs;
    this.postTfs = tfs;
    this.compiledDocs = this.ids.length;
    this.pendingTerms = new IntBuffer();
    this.pendingTfs = new IntBuffer();
    this.pendingDocEnds = new IntBuffer();
    this.refreshScoring();
  }

  private refreshScoring(): void {
    const n = this.ids.length;
    const lengths = this.lengths.view();
    let fieldDocs = 0,
      sum = 0;
    for (let d = 0; d < n; d++) {
      if (lengths[d]! > 0) fieldDocs++;
      sum += lengths[d]!;
    }
    this.fieldDocCount = fieldDocs;
    this.sumLength = sum;
    const avgdl = fieldDocs === 0 ? 1 : sum / fieldDocs;
    this.norms = new Float64Array(n);
    for (let d = 0; d < n; d++) {
      const dl = this.lossyLengths ? luceneLength(lengths[d]!) : lengths[d]!;
      this.norms[d] = this.k1 * (1 - this.b + (this.b * dl) / avgdl);
    }
    const numTerms = this.terms.length;
    this.idfs = new Float64Array(numTerms);
    for (let t = 0; t < numTerms; t++) {
      const df = this.offsets[t + 1]! - this.offsets[t]!;
      this.idfs[t] = Math.log(1 + (fieldDocs - df + 0.5) / (df + 0.5));
    }
    this.accumulator = new Float64Array(n);
    this.touched = new Int32Array(n);
  }

  /** Lucene's idf of an analysed term (0 when the term is not in the index). */
  idf(term: string): number {
    this.compile();
    const t = this.termIds.get(term);
    return t === undefined ? 0 : this.idfs[t]!;
  }

  /** Returns the `k` best passages for `query`, best first. */
  search(query: string, k = 10): BM25Hit[] {
    if (typeof query !== "string") throw new Error(`${WHO}: query must be a string, got ${typeof query}`);
    if (!Number.isInteger(k) || k < 1) throw new Error(`${WHO}: k must be a positive integer, got ${k}`);
    this.compile();
    return this.searchCompiled(query, k);
  }

  /**
   * Searches many queries (e.g. every training question, for hard-negative mining), reusing the
   * scoring buffers; returns one ranked list per query, in order.
   */
  searchBatch(queries: readonly string[], k = 10): BM25Hit[][] {
    if (!Array.isArray(queries)) throw new Error(`${WHO}: searchBatch expects an array of query strings`);
    if (!Number.isInteger(k) || k < 1) throw new Error(`${WHO}: k must be a positive integer, got ${k}`);
    this.compile();
    return queries.map((q, i) => {
      if (typeof q !== "string") throw new Error(`${WHO}: query ${i} must be a string, got ${typeof q}`);
      return this.searchCompiled(q, k);
    });
  }

  /**
   * The BM25 scores of indexed passages for one query: exactly the score {@link search} gives each
   * of them (same analyzer, idf, k1, b, length encoding and arithmetic), whether or not it ranks in
   * any top k; 0 for a passage sharing no term with the query. Hard-negative mining uses it for the
   * score of a labelled positive ranked below its window.
   * @throws Error naming an id that is not indexed.
   */
  scoreDocuments(query: string, ids: readonly string[]): number[] {
    if (typeof query !== "string") throw new Error(`${WHO}: query must be a string, got ${typeof query}`);
    const docs = ids.map((id, i) => {
      const doc = this.idToDoc.get(id);
      if (doc === undefined) throw new Error(`${WHO}: scoreDocuments: id ${i} ("${id}") is not in the index (${this.ids.length} passages)`);
      return doc;
    });
    this.compile();
    const weights = this.queryTermWeights(query);
    return docs.map((d) => {
      let score = 0;
      for (const [t, qtf] of weights) {
        const tf = this.termFrequency(t, d);
        if (tf > 0) score += termScore(qtf * this.idfs[t]!, tf, this.norms[d]!);
      }
      return score;
    });
  }

  /** The BM25 score of indexed passage `id` for `query` ({@link scoreDocuments} for one id). */
  score(query: string, id: string): number {
    return this.scoreDocuments(query, [id])[0]!;
  }

  /** The query's analysed terms known to the index (term id → weight: its count, or 1 with `"unique"`), in query order. */
  private queryTermWeights(query: string): Map<number, number> {
    const weights = new Map<number, number>();
    for (const token of this.analyzer.analyze(query)) {
      const t = this.termIds.get(token);
      if (t === undefined) continue;
      weights.set(t, this.queryTermWeighting === "unique" ? 1 : (weights.get(t) ?? 0) + 1);
    }
    return weights;
  }

  /** How often term `t` occurs in document `d` (0 when not): binary search of the term's postings, sorted by document. */
  private termFrequency(t: number, d: number): number {
    let lo = this.offsets[t]!,
      hi = this.offsets[t + 1]! - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const doc = this.postDocs[mid]!;
      if (doc === d) return this.postTfs[mid]!;
      if (doc < d) lo = mid + 1;
      else hi = mid - 1;
    }
    return 0;
  }

  private searchCompiled(query: string, k: number): BM25Hit[] {
    const weights = this.queryTermWeights(query);
    const acc = this.accumulator,
      touched = this.touched,
      norms = this.norms;
    const postDocs = this.postDocs,
      postTfs = this.postTfs,
      offsets = this.offsets;
    let numTouched = 0;
    for (const [t, qtf] of weights) {
      const w = qtf * this.idfs[t]!;
      for (let p = offsets[t]!, end = offsets[t + 1]!; p < end; p++) {
        const d = postDocs[p]!;
        const tf = postTfs[p]!;
        if (acc[d] === 0) touched[numTouched++] = d;
        acc[d]! += termScore(w, tf, norms[d]!);
      }
    }
    return takeTopK(acc, touched, numTouched, k).map((h) => ({ id: this.ids[h.doc]!, score: h.score }));
  }

  /**
   * Saves the index into folder `dir` (created if needed): a small JSON manifest, terms and ids
   * as JSON lines, postings and lengths as one little-endian binary file, passages as JSON lines.
   * Data files carry a generation tag and the manifest is replaced last (atomically), so an
   * interrupted save leaves the previous index loadable; older generations are then removed.
   */
  async save(dir: string): Promise<void> {
    this.compile();
    if (endianness() !== "LE") throw new Error(`${WHO}: saving needs a little-endian machine`);
    await mkdir(dir, { recursive: true });
    const generation = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e9).toString(36)}`;
    const name = (base: string, ext: string): string => `${base}.${generation}.${ext}`;
    const writeLines = (file: string, lines: readonly string[]): Promise<void> =>
      writeStreamAtomic(join(dir, file), async (write) => {
        let chunk = "";
        for (const line of lines) {
          chunk += JSON.stringify(line) + "\n";
          if (chunk.length > 1 << 20) {
            await write(chunk);
            chunk = "";
          }
        }
        if (chunk) await write(chunk);
      });
    await writeLines(name("terms", "jsonl"), this.terms);
    await writeLines(name("ids", "jsonl"), this.ids);
    await writeStreamAtomic(join(dir, name("postings", "bin")), async (write) => {
      for (const arr of [this.offsets, this.postDocs, this.postTfs, this.lengths.view()]) {
        await write(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
      }
    });
    if (this.storePassages) {
      await writeStreamAtomic(join(dir, name("passages", "jsonl")), async (write) => {
        let chunk = "";
        for (const p of this.passages) {
          const rec: Record<string, unknown> = { title: p.title, text: p.text };
          if (p.metadata !== undefined) rec["metadata"] = p.metadata;
          chunk += JSON.stringify(rec) + "\n";
          if (chunk.length > 1 << 20) {
            await write(chunk);
            chunk = "";
          }
        }
        if (chunk) await write(chunk);
      });
    }
    const manifest: Manifest = {
      format: FORMAT,
      version: FORMAT_VERSION,
      generation,
      byteOrder: "LE",
      k1: this.k1,
      b: this.b,
      lossyLengths: this.lossyLengths,
      queryTermWeighting: this.queryTermWeighting,
      analyzer: this.analyzer.toJSON(),
      numDocs: this.ids.length,
      numTerms: this.terms.length,
      numPostings: this.postDocs.length,
      tfBytes: this.postTfs instanceof Uint32Array ? 4 : 2,
      hasPassages: this.storePassages,
    };
    await writeFileAtomic(join(dir, MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
    // The new generation is committed: remove data files of older generations.
    for (const file of await readdir(dir)) {
      const m = /^(terms|ids|postings|passages)\.([a-z0-9]+)\.(jsonl|bin)$/.exec(file);
      if (m && m[2] !== generation) await rm(join(dir, file), { force: true });
    }
  }

  /**
   * Loads an index saved by {@link BM25Index.save}. Every field is checked before the index is used:
   * the manifest's fields and types; the postings file's size; `offsets` starting at 0, never
   * decreasing and ending at `numPostings`; each posting's document in range and each term's postings
   * in strictly increasing document order (so a term's df is at most the document count); every
   * tf ≥ 1; every document length ≥ 0 and equal to the sum of its tfs; ids and terms unique.
   * @throws Error naming the file, the field (and index) and what was expected and found.
   */
  static async load<T extends BM25Index>(this: new (params?: BM25IndexParams) => T, dir: string): Promise<T> {
    if (endianness() !== "LE") throw new Error(`${WHO}: loading needs a little-endian machine`);
    const manifestPath = join(dir, MANIFEST);
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(manifestPath, "utf8"));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new Error(
        e.code === "ENOENT"
          ? `${WHO}: no index in ${dir} (${MANIFEST} not found)`
          : `${WHO}: ${manifestPath} is not valid JSON: ${e.message}`,
      );
    }
    const manifest = checkManifest(parsed, manifestPath);
    const index = new this({
      k1: manifest.k1,
      b: manifest.b,
      lossyLengths: manifest.lossyLengths,
      queryTermWeighting: manifest.queryTermWeighting,
      analyzer: manifest.analyzer,
      storePassages: manifest.hasPassages,
    });
    const gen = manifest.generation;
    const binPath = join(dir, `postings.${gen}.bin`);
    const { numTerms, numPostings, numDocs, tfBytes } = manifest;
    const expected = 4 * (numTerms + 1) + 4 * numPostings + tfBytes * numPostings + 4 * numDocs;
    let binSize: number;
    try {
      binSize = (await stat(binPath)).size;
    } catch {
      throw new Error(`${WHO}: missing postings file ${binPath}`);
    }
    // Checked before reading anything, so a manifest claiming huge counts allocates nothing.
    if (binSize !== expected) throw new Error(`${WHO}: ${binPath} has ${binSize} bytes, expected ${expected} from ${MANIFEST}`);
    const terms = await readJsonStringLines(join(dir, `terms.${gen}.jsonl`), numTerms, "term");
    const ids = await readJsonStringLines(join(dir, `ids.${gen}.jsonl`), numDocs, "passage id");
    const bin = await readFile(binPath);
    if (bin.length !== expected) throw new Error(`${WHO}: ${binPath} has ${bin.length} bytes, expected ${expected} from ${MANIFEST}`);
    // Copy each section into its own (aligned) buffer.
    let at = bin.byteOffset;
    const take = (len: number, bytes: number): ArrayBuffer => {
      const section = bin.buffer.slice(at, at + len * bytes) as ArrayBuffer;
      at += len * bytes;
      return section;
    };
    const offsets = new Int32Array(take(numTerms + 1, 4));
    const postDocs = new Int32Array(take(numPostings, 4));
    const postTfs = tfBytes === 2 ? new Uint16Array(take(numPostings, 2)) : new Uint32Array(take(numPostings, 4));
    const lengths = new Int32Array(take(numDocs, 4));
    checkPostings(binPath, terms, offsets, postDocs, postTfs, lengths, numDocs);
    index.terms = terms;
    terms.forEach((t, i) => index.termIds.set(t, i));
    index.ids = ids;
    ids.forEach((id, i) => index.idToDoc.set(id, i));
    index.offsets = offsets;
    index.postDocs = postDocs;
    index.postTfs = postTfs;
    index.lengths = new IntBuffer(Math.max(1024, numDocs));
    index.lengths.data.set(lengths);
    index.lengths.length = numDocs;
    index.compiledDocs = numDocs;
    if (manifest.hasPassages) {
      const path = join(dir, `passages.${gen}.jsonl`);
      let count = 0;
      let lineNo = 0;
      for await (const raw of readLines(path)) {
        lineNo++;
        if (raw === "") continue;
        if (count >= numDocs) throw new Error(`${WHO}: ${path} has more than the ${numDocs} passages ${MANIFEST} gives (line ${lineNo})`);
        index.passages.push(parsePassageLine(raw, path, lineNo, ids[count]!));
        count++;
      }
      if (count !== numDocs) throw new Error(`${WHO}: ${path} has ${count} passages, expected ${numDocs}`);
    }
    index.refreshScoring();
    return index;
  }
}

/** The manifest's fields, each checked for type and range; errors name the file and the field. */
function checkManifest(parsed: unknown, path: string): Manifest {
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${WHO}: ${path} must hold a JSON object, got ${Array.isArray(parsed) ? "an array" : JSON.stringify(parsed)}`);
  }
  const m = parsed as Record<string, unknown>;
  const bad = (field: string, expected: string): never => {
    throw new Error(`${WHO}: ${path} field "${field}" must be ${expected}, got ${JSON.stringify(m[field]) ?? "nothing"}`);
  };
  if (m.format !== FORMAT)
    throw new Error(`${WHO}: ${path} is not a BM25 index (format ${JSON.stringify(m.format)}, expected "${FORMAT}")`);
  if (m.version !== FORMAT_VERSION) {
    throw new Error(`${WHO}: ${path} has format version ${JSON.stringify(m.version)}, this code reads version ${FORMAT_VERSION}`);
  }
  if (typeof m.generation !== "string" || !/^[a-z0-9]+$/.test(m.generation)) bad("generation", "a tag of a-z and 0-9 (as save writes)");
  if (m.byteOrder !== "LE") bad("byteOrder", '"LE"');
  for (const field of ["numDocs", "numTerms", "numPostings"]) {
    const v = m[field];
    // Offsets and document numbers are stored as int32.
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0x7fffffff) bad(field, "an integer in 0..2147483647");
  }
  if (m.tfBytes !== 2 && m.tfBytes !== 4) bad("tfBytes", "2 or 4");
  if (typeof m.k1 !== "number" || !Number.isFinite(m.k1) || m.k1 < 0) bad("k1", "a finite number ≥ 0");
  if (typeof m.b !== "number" || !(m.b >= 0 && m.b <= 1)) bad("b", "a number in [0, 1]");
  if (typeof m.lossyLengths !== "boolean") bad("lossyLengths", "true or false");
  if (typeof m.hasPassages !== "boolean") bad("hasPassages", "true or false");
  if (m.queryTermWeighting !== "frequency" && m.queryTermWeighting !== "unique") bad("queryTermWeighting", '"frequency" or "unique"');
  if (typeof m.analyzer !== "object" || m.analyzer === null || Array.isArray(m.analyzer)) bad("analyzer", "an object");
  return m as unknown as Manifest;
}

/**
 * Checks the postings sections against each other and the document count, so that every score is
 * what the saved index gave: errors name the file, the section and the index of the bad value.
 */
function checkPostings(
  path: string,
  terms: readonly string[],
  offsets: Int32Array,
  postDocs: Int32Array,
  postTfs: Uint16Array | Uint32Array,
  lengths: Int32Array,
  numDocs: number,
): void {
  const numTerms = terms.length;
  const numPostings = postDocs.length;
  if (offsets[0] !== 0) throw new Error(`${WHO}: ${path} offsets[0] must be 0, got ${offsets[0]}`);
  if (offsets[numTerms] !== numPostings) {
    throw new Error(`${WHO}: ${path} offsets[${numTerms}] (the last) must equal numPostings ${numPostings}, got ${offsets[numTerms]}`);
  }
  for (let t = 0; t < numTerms; t++) {
    if (offsets[t + 1]! < offsets[t]!) {
      throw new Error(
        `${WHO}: ${path} offsets must not decrease: offsets[${t + 1}] = ${offsets[t + 1]} < offsets[${t}] = ${offsets[t]} ` +
          `(term "${terms[t]}")`,
      );
    }
  }
  const tfSum = new Float64Array(numDocs);
  for (let t = 0; t < numTerms; t++) {
    for (let p = offsets[t]!; p < offsets[t + 1]!; p++) {
      const d = postDocs[p]!;
      if (d < 0 || d >= numDocs) {
        throw new Error(`${WHO}: ${path} has a posting for document ${d}, outside 0..${numDocs - 1} (posting ${p}, term "${terms[t]}")`);
      }
      // Each term's postings are sorted by document (scoreDocuments searches them); so df ≤ numDocs.
      if (p > offsets[t]! && d <= postDocs[p - 1]!) {
        throw new Error(`${WHO}: ${path} has the postings of term "${terms[t]}" out of document order at posting ${p}`);
      }
      const tf = postTfs[p]!;
      if (tf < 1) throw new Error(`${WHO}: ${path} postTfs[${p}] (term "${terms[t]}", document ${d}) must be ≥ 1, got ${tf}`);
      tfSum[d] += tf;
    }
  }
  for (let d = 0; d < numDocs; d++) {
    if (lengths[d]! < 0) throw new Error(`${WHO}: ${path} lengths[${d}] must be ≥ 0, got ${lengths[d]}`);
    if (lengths[d] !== tfSum[d]) {
      throw new Error(
        `${WHO}: ${path} lengths[${d}] is ${lengths[d]} but the document's postings hold ${tfSum[d]} term occurrences ` +
          "(a document's length is the sum of its term frequencies)",
      );
    }
  }
}

/** One line of the passages file: `{title, text[, metadata]}`; errors name the file and line. */
function parsePassageLine(raw: string, path: string, lineNo: number, id: string): Passage {
  let rec: unknown;
  try {
    rec = JSON.parse(raw);
  } catch (err) {
    throw new Error(`${WHO}: ${path}:${lineNo}: expected a JSON object {title, text}, got invalid JSON (${(err as Error).message})`);
  }
  if (typeof rec !== "object" || rec === null || Array.isArray(rec)) {
    throw new Error(`${WHO}: ${path}:${lineNo}: expected a JSON object {title, text}, got ${raw.slice(0, 80)}`);
  }
  const r = rec as Record<string, unknown>;
  if (typeof r.title !== "string" || typeof r.text !== "string") {
    throw new Error(`${WHO}: ${path}:${lineNo}: "title" and "text" must be strings, got ${typeof r.title} and ${typeof r.text}`);
  }
  const metadata = r.metadata;
  if (metadata !== undefined && (typeof metadata !== "object" || metadata === null || Array.isArray(metadata))) {
    throw new Error(`${WHO}: ${path}:${lineNo}: "metadata" must be an object, got ${JSON.stringify(metadata)}`);
  }
  const p: Passage = { id, title: r.title, text: r.text };
  if (metadata !== undefined) p.metadata = metadata as Record<string, unknown>;
  return p;
}

async function* readLines(path: string): AsyncGenerator<string> {
  try {
    await stat(path);
  } catch {
    throw new Error(`${WHO}: missing index file ${path}`);
  }
  const lines = createInterface({ input: createReadStream(path, { encoding: "utf8" }), crlfDelay: Infinity });
  yield* lines;
}

/** Reads `expected` unique JSON strings, one a line; errors name the file and line. */
async function readJsonStringLines(path: string, expected: number, what: string): Promise<string[]> {
  const out: string[] = [];
  const seen = new Map<string, number>();
  let line = 0;
  for await (const raw of readLines(path)) {
    line++;
    if (raw === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new Error(`${WHO}: ${path}:${line}: expected a JSON string (a ${what}), got invalid JSON (${(err as Error).message})`);
    }
    if (typeof value !== "string") throw new Error(`${WHO}: ${path}:${line}: expected a JSON string (a ${what}), got ${raw.slice(0, 80)}`);
    if (out.length >= expected) throw new Error(`${WHO}: ${path} has more than the ${expected} entries ${MANIFEST} gives (line ${line})`);
    const first = seen.get(value);
    if (first !== undefined) throw new Error(`${WHO}: ${path}:${line}: ${what} ${JSON.stringify(value)} repeats line ${first}`);
    seen.set(value, line);
    out.push(value);
  }
  if (out.length !== expected) throw new Error(`${WHO}: ${path} has ${out.length} entries, expected ${expected}`);
  return out;
}

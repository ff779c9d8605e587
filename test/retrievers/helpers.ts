/**
 * Small real components for retriever/server tests: a deterministic hashing bag-of-words
 * embedder, an in-memory inner-product store with a version counter and object filters, and a
 * word-overlap reranker. They are simple but real (no canned answers): results follow from the
 * texts. Tests that need the project's production classes use those instead.
 */
import { Embeddings } from "@langchain/core/embeddings";
import { Document, type DocumentInterface } from "@langchain/core/documents";
import { VectorStore } from "@langchain/core/vectorstores";
import { BaseDocumentCompressor } from "@langchain/core/retrievers/document_compressors";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tinyBertConfig } from "../../src/models/config.js";
import { saveDPRModel } from "../../src/models/model-dir.js";
import { randomBertWeights } from "../../src/models/weights.js";
import { BertTokenizer } from "../../src/tokenizers/bert-tokenizer.js";
import { buildWordPieceVocab } from "../../src/tokenizers/vocab.js";
import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { FaissDPRStore } from "../../src/vectorstores/faiss-dpr-store.js";
import { BM25Index } from "../../src/retrievers/bm25/bm25-index.js";
import { createRandomCrossEncoder } from "../../src/testing/index.js";
import { CrossEncoderReranker } from "../../src/rerankers/cross-encoder-reranker.js";

const tokenize = (s: string): string[] => s.toLowerCase().match(/[a-z0-9]+/g) ?? [];

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Hashing bag-of-words embeddings (L2-normalised), counting calls; optional delay per call. */
export class HashEmbeddings extends Embeddings {
  queryCalls = 0;

  documentCalls = 0;

  constructor(
    readonly dim = 64,
    readonly delayMs = 0,
  ) {
    super({});
  }

  embed(text: string): number[] {
    const v = new Array<number>(this.dim).fill(0);
    for (const t of tokenize(text)) {
      const h = fnv1a(t);
      v[h % this.dim]! += (h & 0x10000) !== 0 ? 1 : -1;
    }
    const n = Math.hypot(...v) || 1;
    return v.map((x) => x / n);
  }

  async embedQuery(text: string): Promise<number[]> {
    this.queryCalls++;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    return this.embed(text);
  }

  async embedDocuments(texts: string[]): Promise<number[][]> {
    this.documentCalls++;
    return texts.map((t) => this.embed(t));
  }
}

type ObjectFilter = Record<string, unknown>;

/** In-memory inner-product store with a `version` bumped on every change, and object filters. */
export class VersionedMemoryStore extends VectorStore {
  declare FilterType: ObjectFilter;

  version = 0;

  searchCalls = 0;

  private rows: Array<{ v: number[]; doc: DocumentInterface }> = [];

  _vectorstoreType(): string {
    return "versioned-memory";
  }

  async addVectors(vectors: number[][], documents: DocumentInterface[]): Promise<string[]> {
    const ids = documents.map((d, i) => d.id ?? String(d.metadata.id ?? this.rows.length + i));
    vectors.forEach((v, i) => this.rows.push({ v, doc: new Document({ ...documents[i]!, id: ids[i] }) }));
    this.version++;
    return ids;
  }

  async addDocuments(documents: DocumentInterface[]): Promise<string[]> {
    return this.addVectors(await this.embeddings.embedDocuments(documents.map((d) => d.pageContent)), documents);
  }

  override async delete(params: { ids: string[] }): Promise<void> {
    const drop = new Set(params.ids);
    this.rows = this.rows.filter((r) => !drop.has(r.doc.id!));
    this.version++;
  }

  async similaritySearchVectorWithScore(query: number[], k: number, filter?: ObjectFilter): Promise<[DocumentInterface, number][]> {
    this.searchCalls++;
    return this.rows
      .filter((r) => filter === undefined || Object.entries(filter).every(([key, val]) => r.doc.metadata[key] === val))
      .map((r): [DocumentInterface, number] => [r.doc, r.v.reduce((s, x, i) => s + x * query[i]!, 0)])
      .sort((a, b) => b[1] - a[1])
      .slice(0, k);
  }

  static async fromDocs(docs: DocumentInterface[], embeddings: Embeddings): Promise<VersionedMemoryStore> {
    const store = new this(embeddings, {});
    await store.addDocuments(docs);
    return store;
  }
}

/**
 * Reranker scoring by the number of distinct query words found in the passage (ties keep input
 * order), writing metadata.relevanceScore; keeps topN. Optional delay to make reranking slow.
 */
export class OverlapReranker extends BaseDocumentCompressor {
  calls = 0;

  constructor(
    readonly topN = 10,
    readonly delayMs = 0,
  ) {
    super();
  }

  async compressDocuments(documents: DocumentInterface[], query: string): Promise<DocumentInterface[]> {
    this.calls++;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const q = new Set(tokenize(query));
    return documents
      .map((d, i) => {
        const words = new Set(tokenize(d.pageContent));
        let s = 0;
        for (const w of q) if (words.has(w)) s++;
        return { d, s, i };
      })
      .sort((a, b) => b.s - a.s || a.i - b.i)
      .slice(0, this.topN)
      .map(({ d, s }) => new Document({ pageContent: d.pageContent, metadata: { ...d.metadata, relevanceScore: s }, id: d.id }));
  }
}

/** A small corpus about vitamins and diseases used across tests. */
export const CORPUS: DocumentInterface[] = [
  ["d1", "Scurvy is caused by a lack of vitamin C in the diet.", "nutrition"],
  ["d2", "Vitamin D deficiency leads to rickets in children.", "nutrition"],
  ["d3", "Citrus fruits such as oranges and lemons are rich in vitamin C.", "food"],
  ["d4", "The heart pumps blood through the circulatory system.", "anatomy"],
  ["d5", "Insulin regulates blood sugar and is made in the pancreas.", "anatomy"],
  ["d6", "Sailors on long voyages suffered from scurvy until lemons were carried.", "history"],
  ["d7", "Calcium and vitamin D together support bone health.", "nutrition"],
  ["d8", "Malaria is transmitted by the bite of infected mosquitoes.", "disease"],
].map(([id, text, topic]) => new Document({ pageContent: text!, metadata: { id, topic }, id }));

// ---------------------------------------------------------------------------------------------
// The project's real components on a tiny random model: DPREmbeddings + FaissDPRStore + BM25Index.

/** Everything a test needs over the real classes; call `cleanup()` in afterAll. */
export interface RealStack {
  root: string;
  modelDir: string;
  embeddings: DPREmbeddings;
  store: FaissDPRStore;
  bm25: BM25Index;
  /** A tiny random cross-encoder folder (weights spread so scores differ clearly) and a reranker on it. */
  rerankerDir: string;
  reranker: CrossEncoderReranker;
  cleanup(): Promise<void>;
}

/**
 * Writes a tiny random DPR model (two encoders, WordPiece vocab over the corpus), indexes
 * {@link CORPUS} in a Flat FaissDPRStore and a BM25Index.
 */
export async function makeRealStack(docs: DocumentInterface[] = CORPUS): Promise<RealStack> {
  const root = await mkdtemp(join(tmpdir(), "dpr-retr-"));
  const texts = docs.map((d) => d.pageContent);
  const vocab = buildWordPieceVocab(texts, { vocabSize: 300, lowercase: true });
  const tokenizer = BertTokenizer.fromVocab(vocab, { lowercase: true });
  const config = tinyBertConfig({ vocab_size: tokenizer.vocabSize, initializer_range: 0.3, max_position_embeddings: 128 });
  const modelDir = join(root, "dpr");
  await saveDPRModel(modelDir, {
    question: { config, weights: randomBertWeights(config, { seed: 11 }), safetensors: false },
    passage: { config, weights: randomBertWeights(config, { seed: 12 }), safetensors: false },
    tokenizer,
    dprConfig: { maxPassageLength: 128 }, // the tiny config has 128 positions
  });
  const embeddings = new DPREmbeddings({ modelPath: modelDir, intraOpNumThreads: 1 });
  const store = await FaissDPRStore.fromDocuments(docs, embeddings);
  const bm25 = await BM25Index.fromPassages(docs.map((d) => ({ id: d.id!, title: "", text: d.pageContent, metadata: { ...d.metadata } })));
  const rerankerDir = join(root, "cross-encoder");
  await createRandomCrossEncoder(rerankerDir, { shape: "tiny", texts, vocabSize: 300, initializerRange: 0.3, classifierScale: 5 });
  const reranker = new CrossEncoderReranker({ modelPath: rerankerDir, topN: 10, intraOpNumThreads: 1 });
  return {
    root,
    modelDir,
    embeddings,
    store,
    bm25,
    rerankerDir,
    reranker,
    cleanup: async () => {
      await reranker.dispose();
      await store.dispose();
      await embeddings.dispose();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** {@link makeRealStack} with its faiss store and BM25 index saved to `<root>/index` and `<root>/bm25` (what `serve` loads). */
export async function makeSavedStack(): Promise<RealStack & { indexDir: string; bm25Dir: string }> {
  const stack = await makeRealStack();
  const indexDir = join(stack.root, "index");
  const bm25Dir = join(stack.root, "bm25");
  await stack.store.save(indexDir);
  await stack.bm25.save(bm25Dir);
  return Object.assign(stack, { indexDir, bm25Dir });
}

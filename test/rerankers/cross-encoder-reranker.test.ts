/**
 * CrossEncoderReranker against the project's own reference forward pass: random cross-encoder
 * folders are written on the fly (tiny BERT shape, vocabulary learnt from the PubMedQA fixture),
 * every expected score comes from referenceBertForward on the same weights, and every expected
 * order from sorting those reference scores.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Document } from "@langchain/core/documents";
import { ContextualCompressionRetriever } from "@langchain/classic/retrievers/contextual_compression";

import { CrossEncoderReranker } from "../../src/rerankers/cross-encoder-reranker.js";
import { writeCrossEncoderDir } from "../../src/rerankers/cross-encoder-dir.js";
import { createRandomCrossEncoder } from "../../src/testing/index.js";
import { referenceBertForward } from "../../src/models/reference.js";
import { writeEncoderDir } from "../../src/models/model-dir.js";
import { randomBertWeights } from "../../src/models/weights.js";
import type { BertConfig, BertWeights } from "../../src/models/types.js";
import type { BertTokenizer } from "../../src/tokenizers/bert-tokenizer.js";
import { BM25Retriever } from "../../src/retrievers/bm25/bm25-retriever.js";
import { TwoStageRetriever } from "../../src/retrievers/two-stage-retriever.js";

interface FixturePassage {
  id: string;
  title: string;
  text: string;
}

let root: string;
let passages: FixturePassage[];
let allPassages: FixturePassage[];
let model: { dir: string; config: BertConfig; weights: BertWeights; tokenizer: BertTokenizer };

/** The reference logits of one unpadded pair. */
function referenceLogits(m: typeof model, query: string, passage: string, maxLength: number): Float32Array {
  const e = m.tokenizer.encode(query, passage, { maxLength });
  const out = referenceBertForward(m.config, m.weights, {
    inputIds: [e.inputIds],
    attentionMask: [e.attentionMask],
    tokenTypeIds: [e.tokenTypeIds],
  });
  return out.logits!;
}

/** Indices sorted by descending score (ties by index). */
function orderOf(scores: number[]): number[] {
  return scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
}

/** Smallest gap between adjacent scores in sorted order (the test is only meaningful when it is clear of float noise). */
function minGap(scores: number[]): number {
  const s = [...scores].sort((a, b) => b - a);
  let gap = Infinity;
  for (let i = 1; i < s.length; i++) gap = Math.min(gap, s[i - 1]! - s[i]!);
  return gap;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "ce-reranker-"));
  const lines = (await readFile(new URL("../fixtures/passages/pubmedqa-300.jsonl", import.meta.url), "utf8")).trim().split("\n");
  allPassages = lines.map((l) => JSON.parse(l) as FixturePassage);
  passages = allPassages.slice(0, 40);
  const dir = join(root, "ce-tiny");
  // initializerRange 0.3 spreads the random logits (~1 wide) so adjacent scores differ by far more than float noise.
  const built = await createRandomCrossEncoder(dir, {
    shape: "tiny",
    texts: passages.flatMap((p) => [p.title, p.text]),
    vocabSize: 1500,
    seed: 11,
    initializerRange: 0.3,
    quantize: true,
  });
  model = { dir, ...built };
}, 120_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("CrossEncoderReranker scores", () => {
  it("scorePairs equals referenceBertForward logits within 1e-4 on padded, length-sorted batches", async () => {
    const reranker = new CrossEncoderReranker({ modelPath: model.dir, batchSize: 3 });
    try {
      const query = "do mitochondria play a role in programmed cell death?";
      // Lengths from a few tokens to past the 128-token limit, so batches are padded and some pairs truncated.
      const texts = [
        "cell death",
        passages[0]!.text,
        passages[1]!.text.slice(0, 80),
        "",
        passages[2]!.text.slice(0, 300),
        passages[3]!.text,
        "mitochondria",
      ];
      const scores = await reranker.scorePairs(query, texts);
      expect(scores).toHaveLength(texts.length);
      const maxLength = await reranker.effectiveMaxLength();
      expect(maxLength).toBe(128);
      texts.forEach((t, i) => {
        expect(scores[i]).toBeCloseTo(referenceLogits(model, query, t, maxLength)[0]!, 4);
      });
      expect(minGap(scores)).toBeGreaterThan(1e-3);
    } finally {
      await reranker.dispose();
    }
  });

  it("gives the same scores with naive (unsorted) batching as with length sorting", async () => {
    const sorted = new CrossEncoderReranker({ modelPath: model.dir, batchSize: 4 });
    const naive = new CrossEncoderReranker({ modelPath: model.dir, batchSize: 4, sortByLength: false });
    try {
      const texts = passages.slice(0, 10).map((p, i) => p.text.slice(0, 40 + 60 * i));
      const a = await sorted.scorePairs("programmed cell death", texts);
      const b = await naive.scorePairs("programmed cell death", texts);
      a.forEach((x, i) => expect(b[i]).toBeCloseTo(x, 4));
    } finally {
      await Promise.all([sorted.dispose(), naive.dispose()]);
    }
  });

  it("truncates pairs longest-first to maxLength, as the tokenizer does", async () => {
    const reranker = new CrossEncoderReranker({ modelPath: model.dir, maxLength: 24 });
    try {
      const query = passages[5]!.title;
      const long = passages[5]!.text;
      const [score] = await reranker.scorePairs(query, [long]);
      expect(score).toBeCloseTo(referenceLogits(model, query, long, 24)[0]!, 4);
      // and it differs from the score at the default length: truncation really happened.
      expect(Math.abs(score! - referenceLogits(model, query, long, 128)[0]!)).toBeGreaterThan(1e-3);
    } finally {
      await reranker.dispose();
    }
  });

  it("sigmoid maps scores into (0, 1) as 1 / (1 + exp(-logit)), keeping the order", async () => {
    const raw = new CrossEncoderReranker({ modelPath: model.dir });
    const sig = new CrossEncoderReranker({ modelPath: model.dir, sigmoid: true });
    try {
      const texts = passages.slice(0, 8).map((p) => p.text);
      const logits = await raw.scorePairs("lace plant leaves", texts);
      const probs = await sig.scorePairs("lace plant leaves", texts);
      probs.forEach((p, i) => {
        expect(p).toBeGreaterThan(0);
        expect(p).toBeLessThan(1);
        expect(p).toBeCloseTo(1 / (1 + Math.exp(-logits[i]!)), 6);
      });
      expect(orderOf(probs)).toEqual(orderOf(logits));
    } finally {
      await Promise.all([raw.dispose(), sig.dispose()]);
    }
  });

  it("int8 model_quantized.onnx ranks like the fp32 model (quantized: true)", async () => {
    const fp32 = new CrossEncoderReranker({ modelPath: model.dir });
    const int8 = new CrossEncoderReranker({ modelPath: model.dir, quantized: true });
    try {
      const texts = passages.slice(0, 20).map((p) => p.text);
      const a = await fp32.scorePairs("cell death in plants", texts);
      const b = await int8.scorePairs("cell death in plants", texts);
      // Pearson correlation of the two score vectors.
      const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
      const ma = mean(a),
        mb = mean(b);
      let sab = 0,
        saa = 0,
        sbb = 0;
      for (let i = 0; i < a.length; i++) {
        sab += (a[i]! - ma) * (b[i]! - mb);
        saa += (a[i]! - ma) ** 2;
        sbb += (b[i]! - mb) ** 2;
      }
      expect(sab / Math.sqrt(saa * sbb)).toBeGreaterThan(0.95);
      expect(b).not.toEqual(a); // it really ran the int8 graph
    } finally {
      await Promise.all([fp32.dispose(), int8.dispose()]);
    }
  });
});

describe("CrossEncoderReranker ordering", () => {
  const query = "does the lace plant use programmed cell death to form holes in its leaves?";

  it("rerank returns every document in the order of the model's reference scores", async () => {
    const reranker = new CrossEncoderReranker({ modelPath: model.dir, titleJoin: "none", batchSize: 5 });
    try {
      const docs = passages.slice(0, 16).map((p) => new Document({ pageContent: p.text, metadata: { id: p.id } }));
      const expected = docs.map((d) => referenceLogits(model, query, d.pageContent, 128)[0]!);
      expect(minGap(expected)).toBeGreaterThan(1e-3);
      const ranked = await reranker.rerank(docs, query);
      expect(ranked.map((r) => r.index)).toEqual(orderOf(expected));
      expect(ranked.map((r) => r.index)).not.toEqual(docs.map((_, i) => i)); // the order really changed
      for (const r of ranked) {
        expect(r.document).toBe(docs[r.index]);
        expect(r.relevanceScore).toBeCloseTo(expected[r.index]!, 4);
      }
    } finally {
      await reranker.dispose();
    }
  });

  it(
    "rerank takes LangChain's (documents, query, options) order: strings, options.topN, and a clear error for (query, " + "documents)",
    async () => {
      const reranker = new CrossEncoderReranker({ modelPath: model.dir, titleJoin: "none" });
      try {
        const texts = passages.slice(0, 6).map((p) => p.text);
        const expected = texts.map((t) => referenceLogits(model, query, t, 128)[0]!);
        const top2 = await reranker.rerank(texts, query, { topN: 2 });
        expect(top2.map((r) => r.index)).toEqual(orderOf(expected).slice(0, 2));
        expect(top2[0]!.document.pageContent).toBe(texts[top2[0]!.index]);
        expect(top2[0]!.relevanceScore).toBeCloseTo(expected[top2[0]!.index]!, 4);
        await expect(reranker.rerank(query as unknown as string[], texts as unknown as string)).rejects.toThrow(
          "CrossEncoderReranker: rerank takes (documents, query, options), LangChain's order; got (query, documents)",
        );
        await expect(reranker.rerank(texts, query, { topN: -1 })).rejects.toThrow("options.topN must be a non-negative integer, got -1");
      } finally {
        await reranker.dispose();
      }
    },
  );

  it("compressDocuments keeps the topN best as new documents with relevanceScore and the original metadata", async () => {
    const reranker = new CrossEncoderReranker({ modelPath: model.dir, topN: 4, titleJoin: "none" });
    try {
      const docs = passages
        .slice(0, 12)
        .map((p, i) => new Document({ pageContent: p.text, metadata: { id: p.id, source: "pubmedqa", rank: i }, id: p.id }));
      const expected = docs.map((d) => referenceLogits(model, query, d.pageContent, 128)[0]!);
      const out = await reranker.compressDocuments(docs, query);
      const top = orderOf(expected).slice(0, 4);
      expect(out.map((d) => d.metadata.id)).toEqual(top.map((i) => docs[i]!.metadata.id));
      out.forEach((d, j) => {
        const i = top[j]!;
        expect(d.metadata.relevanceScore).toBeCloseTo(expected[i]!, 4);
        expect(d.metadata.source).toBe("pubmedqa");
        expect(d.metadata.rank).toBe(i);
        expect(d.id).toBe(docs[i]!.id);
        expect(d.pageContent).toBe(docs[i]!.pageContent);
      });
      for (const d of docs) expect(d.metadata).not.toHaveProperty("relevanceScore"); // inputs untouched
      // Fewer documents than topN: all come back.
      expect(await reranker.compressDocuments(docs.slice(0, 2), query)).toHaveLength(2);
      expect(await reranker.compressDocuments([], query)).toEqual([]);
    } finally {
      await reranker.dispose();
    }
  });

  it("scores metadata.title + ' ' + pageContent as the passage; titleJoin 'none' ignores titles", async () => {
    const withTitle = new CrossEncoderReranker({ modelPath: model.dir });
    const noTitle = new CrossEncoderReranker({ modelPath: model.dir, titleJoin: "none" });
    try {
      const p = passages[7]!;
      const doc = new Document({ pageContent: p.text.slice(0, 200), metadata: { title: p.title } });
      const [titled] = await withTitle.rerank([doc], query);
      const [plain] = await noTitle.rerank([doc], query);
      expect(titled!.relevanceScore).toBeCloseTo(referenceLogits(model, query, `${p.title} ${doc.pageContent}`, 128)[0]!, 4);
      expect(plain!.relevanceScore).toBeCloseTo(referenceLogits(model, query, doc.pageContent, 128)[0]!, 4);
      expect(Math.abs(titled!.relevanceScore - plain!.relevanceScore)).toBeGreaterThan(1e-3);
      // An empty title (BM25Retriever's "" for untitled passages) adds nothing.
      const [emptyTitle] = await withTitle.rerank([new Document({ pageContent: doc.pageContent, metadata: { title: "" } })], query);
      expect(emptyTitle!.relevanceScore).toBeCloseTo(plain!.relevanceScore, 5);
    } finally {
      await Promise.all([withTitle.dispose(), noTitle.dispose()]);
    }
  });

  it("reorders a BM25Retriever's candidates inside LangChain's ContextualCompressionRetriever", async () => {
    const base = await BM25Retriever.fromPassages(
      allPassages.map((p) => ({ id: p.id, title: "", text: p.text })),
      { k: 15 },
    );
    const reranker = new CrossEncoderReranker({ modelPath: model.dir, topN: 5 });
    try {
      const retriever = new ContextualCompressionRetriever({ baseCompressor: reranker, baseRetriever: base });
      const q = "programmed cell death in patients with cancer";
      const candidates = await base.invoke(q);
      expect(candidates).toHaveLength(15);
      const expected = candidates.map((d) => referenceLogits(model, q, d.pageContent, 128)[0]!);
      const wantIds = orderOf(expected)
        .slice(0, 5)
        .map((i) => candidates[i]!.metadata.id);
      const got = await retriever.invoke(q);
      expect(got.map((d) => d.metadata.id)).toEqual(wantIds);
      expect(got.map((d) => d.metadata.id)).not.toEqual(candidates.slice(0, 5).map((d) => d.metadata.id)); // BM25 order changed
      got.forEach((d, j) => {
        // BM25's metadata kept, relevanceScore added
        expect(d.metadata).toEqual({ ...candidates[orderOf(expected)[j]!]!.metadata, relevanceScore: d.metadata.relevanceScore });
        expect(d.metadata.relevanceScore).toBeCloseTo(expected[orderOf(expected)[j]!]!, 4);
      });
    } finally {
      await reranker.dispose();
    }
  });
  it("is the second stage of TwoStageRetriever: BM25 top-20 -> cross-encoder -> top-3", async () => {
    const bm25 = await BM25Retriever.fromPassages(
      allPassages.map((p) => ({ id: p.id, title: "", text: p.text })),
      { k: 20 },
    );
    const reranker = new CrossEncoderReranker({ modelPath: model.dir, topN: 10 });
    try {
      const twoStage = new TwoStageRetriever({ firstStage: bm25, reranker, candidates: 20, k: 3 });
      const q = "risk factors for surgery complications";
      const candidates = await bm25.invoke(q);
      const candidateScores = (await bm25.retrieve(q)).scores;
      expect(candidates).toHaveLength(20);
      const expected = candidates.map((d) => referenceLogits(model, q, d.pageContent, 128)[0]!);
      const top = orderOf(expected).slice(0, 3);
      const { documents, scores, timings } = await twoStage.retrieve(q);
      expect(documents.map((d) => d.metadata.id)).toEqual(top.map((i) => candidates[i]!.metadata.id));
      expect(scores).toEqual(top.map((i) => candidateScores[i])); // the BM25 score each was found with
      documents.forEach((d, j) => {
        expect(d.metadata).not.toHaveProperty("firstStageRank"); // per-query numbers only when asked for
        expect(d.metadata.relevanceScore).toBeCloseTo(expected[top[j]!]!, 4);
      });
      expect(timings.rerankMs).toBeGreaterThan(0);
      const withScores = await twoStage.retrieve(q, { includeScores: true });
      withScores.documents.forEach((d, j) => {
        expect(d.metadata.firstStageRank).toBe(top[j]! + 1);
        expect(d.metadata.score).toBe(candidateScores[top[j]!]);
      });
    } finally {
      await reranker.dispose();
    }
  });
});

describe("CrossEncoderReranker model folders", () => {
  it("loads the optimum layout onnx/model.onnx with tokenizer.json only, through fromPretrained", async () => {
    const dir = join(root, "ce-optimum");
    await cp(model.dir, dir, { recursive: true });
    await mkdir(join(dir, "onnx"));
    for (const f of ["model.onnx", "model.onnx.data"]) await rename(join(dir, f), join(dir, "onnx", f));
    await rm(join(dir, "vocab.txt"), { force: true });
    const reranker = await CrossEncoderReranker.fromPretrained(dir);
    try {
      const [s] = await reranker.scorePairs("cell death", [passages[0]!.text]);
      expect(s).toBeCloseTo(referenceLogits(model, "cell death", passages[0]!.text, 128)[0]!, 4);
    } finally {
      await reranker.dispose();
    }
  });

  it("refuses num_labels 3 without labelIndex, and scores with the chosen logit when given", async () => {
    const dir = join(root, "ce-3labels");
    const built = await createRandomCrossEncoder(dir, {
      shape: "tiny",
      texts: passages.map((p) => p.text),
      vocabSize: 1500,
      seed: 5,
      numLabels: 3,
      initializerRange: 0.3,
    });
    const refused = new CrossEncoderReranker({ modelPath: dir });
    await expect(refused.scorePairs("q", ["a passage"])).rejects.toThrow(
      /CrossEncoderReranker: the model has num_labels 3 .*config\.json.*Pass labelIndex/,
    );
    const outOfRange = new CrossEncoderReranker({ modelPath: dir, labelIndex: 3 });
    await expect(outOfRange.ready()).rejects.toThrow(/labelIndex 3 is out of range for num_labels 3/);
    const chosen = new CrossEncoderReranker({ modelPath: dir, labelIndex: 2 });
    try {
      const texts = passages.slice(0, 3).map((p) => p.text);
      const scores = await chosen.scorePairs("cell death", texts);
      texts.forEach((t, i) => {
        expect(scores[i]).toBeCloseTo(referenceLogits({ dir, ...built }, "cell death", t, 128)[2]!, 4);
      });
    } finally {
      await chosen.dispose();
    }
  });

  it("writeCrossEncoderDir writes a BertForSequenceClassification config with num_labels and id2label", async () => {
    const json = JSON.parse(await readFile(join(model.dir, "config.json"), "utf8")) as Record<string, unknown>;
    expect(json.architectures).toEqual(["BertForSequenceClassification"]);
    expect(json.num_labels).toBe(1);
    expect(json.id2label).toEqual({ "0": "LABEL_0" });
    await expect(
      writeCrossEncoderDir(join(root, "no-head"), {
        config: model.config,
        weights: randomBertWeights(model.config, { pooler: true }),
        tokenizer: model.tokenizer,
      }),
    ).rejects.toThrow(/writeCrossEncoderDir: weights need 'classifier.weight'/);
  });
});

describe("CrossEncoderReranker errors", () => {
  it("throws naming the folder when modelPath does not exist", async () => {
    const r = new CrossEncoderReranker({ modelPath: join(root, "missing") });
    await expect(r.scorePairs("q", ["p"])).rejects.toThrow(/CrossEncoderReranker: encoder folder not found: .*missing/);
  });

  it("refuses an encoder folder without a logits output (e.g. a DPR encoder)", async () => {
    const dir = join(root, "dpr-encoder");
    await writeEncoderDir(dir, {
      config: model.config,
      weights: randomBertWeights(model.config, { seed: 1 }),
      tokenizer: model.tokenizer,
      safetensors: false,
    });
    const r = new CrossEncoderReranker({ modelPath: dir });
    await expect(r.rerank([new Document({ pageContent: "p" })], "q")).rejects.toThrow(
      /CrossEncoderReranker: .*model\.onnx has no 'logits' output \(outputs: last_hidden_state, pooler_output\) \(config\.json architectures: BertModel\)/,
    );
  });

  it("throws when a folder lacks config.json, the tokenizer, or the requested quantized model", async () => {
    const noConfig = join(root, "no-config");
    await cp(model.dir, noConfig, { recursive: true });
    await rm(join(noConfig, "config.json"));
    await expect(new CrossEncoderReranker({ modelPath: noConfig }).ready()).rejects.toThrow(
      /CrossEncoderReranker: .*no-config has no config\.json/,
    );

    const noTok = join(root, "no-tokenizer");
    await cp(model.dir, noTok, { recursive: true });
    await rm(join(noTok, "vocab.txt"), { force: true });
    await rm(join(noTok, "tokenizer.json"), { force: true });
    await expect(new CrossEncoderReranker({ modelPath: noTok }).ready()).rejects.toThrow(/neither vocab\.txt nor tokenizer\.json/);

    const noInt8 = join(root, "no-int8");
    await cp(model.dir, noInt8, { recursive: true });
    for (const f of ["model_quantized.onnx", "model_quantized.onnx.data"]) await rm(join(noInt8, f), { force: true });
    await expect(new CrossEncoderReranker({ modelPath: noInt8, quantized: true }).ready()).rejects.toThrow(
      /CrossEncoderReranker: quantized: true but .*no-int8 has no model_quantized\.onnx/,
    );
  });

  it("throws when config.json's num_labels disagrees with the logits output", async () => {
    const dir = join(root, "lying-config");
    await cp(model.dir, dir, { recursive: true });
    const json = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    await writeFile(join(dir, "config.json"), JSON.stringify({ ...json, num_labels: 2, id2label: undefined }));
    const r = new CrossEncoderReranker({ modelPath: dir, labelIndex: 0 });
    await expect(r.scorePairs("q", ["p"])).rejects.toThrow(/logits have 1 columns but config\.json num_labels is 2/);
    await r.dispose();
  });

  it("rejects bad parameters with the parameter's name and value", async () => {
    expect(() => new CrossEncoderReranker({ modelPath: model.dir, topN: 0 })).toThrow(
      "CrossEncoderReranker: topN must be a positive integer, got 0",
    );
    expect(() => new CrossEncoderReranker({ modelPath: model.dir, batchSize: 1.5 })).toThrow(
      /batchSize must be a positive integer, got 1.5/,
    );
    expect(() => new CrossEncoderReranker({ modelPath: model.dir, maxLength: 2 })).toThrow(/maxLength must be an integer >= 3/);
    expect(() => new CrossEncoderReranker({ modelPath: model.dir, labelIndex: -1 })).toThrow(/labelIndex must be a non-negative integer/);
    expect(() => new CrossEncoderReranker({ modelPath: "" })).toThrow(/modelPath must be a cross-encoder folder path/);
    const tooLong = new CrossEncoderReranker({ modelPath: model.dir, maxLength: 512 });
    await expect(tooLong.ready()).rejects.toThrow(/maxLength 512 exceeds the model's max_position_embeddings 128/);
  });

  it("rejects a non-string query or a document without string pageContent", async () => {
    const r = new CrossEncoderReranker({ modelPath: model.dir });
    try {
      await expect(r.scorePairs(42 as unknown as string, ["p"])).rejects.toThrow(
        "CrossEncoderReranker: query must be a string, got number",
      );
      await expect(r.scorePairs("q", ["ok", null as unknown as string])).rejects.toThrow(
        "CrossEncoderReranker: texts[1] must be a string, got null",
      );
      await expect(r.rerank([{ metadata: {} } as unknown as Document], "q")).rejects.toThrow(
        "CrossEncoderReranker: documents[0] must be a string or a Document with a string pageContent",
      );
      expect(await r.scorePairs("q", [])).toEqual([]);
    } finally {
      await r.dispose();
    }
  });

  it("stays usable after dispose: the next call reloads the session and gives the same scores", async () => {
    const r = new CrossEncoderReranker({ modelPath: model.dir });
    const before = await r.scorePairs("cell death", ["mitochondria"]);
    await r.dispose();
    const after = await r.scorePairs("cell death", ["mitochondria"]);
    expect(after[0]).toBeCloseTo(before[0]!, 6);
    await r.dispose();
  });
});

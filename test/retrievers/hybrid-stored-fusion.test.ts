/**
 * HybridRetriever and the fusion stored with a DPR model (dpr_config.json `fusion`): on real files
 * and the project's real classes (a tiny random DPR model, FaissDPRStore, BM25Index), it uses the
 * stored fusion by default, explicit options win, and without one the default stays RRF k 60.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFile, mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { writeModelFusion, type ModelFusion } from "../../src/models/fusion-config.js";
import { fuseDenseSparse, type FusionSetting } from "../../src/retrievers/fusion.js";
import { HybridRetriever } from "../../src/retrievers/hybrid-retriever.js";
import { DPRRetriever } from "../../src/retrievers/dpr-retriever.js";
import { FaissDPRStore } from "../../src/vectorstores/faiss-dpr-store.js";
import { CORPUS, makeRealStack, type RealStack } from "./helpers.js";

const QUERY = "sailors lemons voyages scurvy vitamin";

let stack: RealStack;
const opened: Array<{ embeddings: DPREmbeddings; store: FaissDPRStore }> = [];

/** Copies the stack's model folder to `name` (files only, recursively) and stores `fusion` in its dpr_config.json. */
async function modelWith(name: string, fusion?: ModelFusion): Promise<string> {
  const dir = join(stack.root, name);
  const copy = async (from: string, to: string) => {
    await mkdir(to, { recursive: true });
    for (const e of await readdir(from, { withFileTypes: true })) {
      if (e.isDirectory()) await copy(join(from, e.name), join(to, e.name));
      else await copyFile(join(from, e.name), join(to, e.name));
    }
  };
  await copy(stack.modelDir, dir);
  if (fusion) await writeModelFusion(dir, fusion);
  return dir;
}

async function storeFor(dir: string): Promise<FaissDPRStore> {
  const embeddings = new DPREmbeddings({ modelPath: dir, intraOpNumThreads: 1 });
  const store = await FaissDPRStore.fromDocuments(CORPUS, embeddings);
  opened.push({ embeddings, store });
  return store;
}

/** The expected top k: both sides' own lists fused by `setting`. */
async function expectedIds(store: FaissDPRStore, setting: FusionSetting, k: number): Promise<string[]> {
  const dense = (await store.similaritySearchWithScore(QUERY, CORPUS.length)).map(([d, s]) => ({ id: d.id!, score: s }));
  const sparse = stack.bm25.search(QUERY, CORPUS.length).map((h) => ({ id: h.id, score: h.score }));
  return fuseDenseSparse(dense, sparse, setting, k).map((f) => f.id);
}

beforeAll(async () => {
  stack = await makeRealStack();
}, 120_000);
afterAll(async () => {
  for (const o of opened) {
    await o.store.dispose();
    await o.embeddings.dispose();
  }
  await stack?.cleanup();
});

describe("HybridRetriever with a fusion stored in dpr_config.json", () => {
  const ALPHA_0: ModelFusion = { method: "linear", alpha: 0, normalization: "minmax" };
  const DENSE_ONLY: ModelFusion = { method: "rrf", k: 60, weights: [1, 0] };

  it("uses the stored fusion when no fusion option is given (and says so)", async () => {
    const dir = await modelWith("alpha0", {
      ...ALPHA_0,
      tunedOn: {
        dataset: "/d",
        split: "dev",
        selection: "split",
        questions: 5,
        metric: "ndcg@10",
        score: 0.5,
        bm25Score: 0.5,
        denseScore: 0.1,
        depth: 100,
        tunedAt: "2026-01-01T00:00:00.000Z",
      },
    });
    const store = await storeFor(dir);
    const hybrid = new HybridRetriever({ dense: store, sparse: stack.bm25, k: 5, includeScores: true });
    const docs = await hybrid.invoke(QUERY);
    // alpha 0: BM25's own order (min-max gives BM25's last hit 0, as every passage it did not return: a tie there)
    expect(docs.slice(0, 4).map((d) => d.id)).toEqual(stack.bm25.search(QUERY, 4).map((h) => h.id));
    expect(docs.map((d) => d.id)).toEqual(await expectedIds(store, ALPHA_0, 5));
    expect(docs.map((d) => d.id)).not.toEqual(await expectedIds(store, { method: "rrf", k: 60, weights: [1, 1] }, 5));
    expect(docs[0]!.metadata.fusion).toBe("linear");
    const resolved = await hybrid.resolveFusion();
    expect(resolved).toMatchObject({ setting: ALPHA_0, source: "model", modelPath: dir, tunedOn: { split: "dev", questions: 5 } });
    expect([hybrid.fusion, hybrid.alpha, hybrid.normalization]).toEqual(["linear", 0, "minmax"]);
  });

  it("a stored RRF setting with weights [1, 0] follows the dense order; so does a DPRRetriever dense side", async () => {
    const store = await storeFor(await modelWith("dense-only", DENSE_ONLY));
    const denseOrder = (await store.similaritySearchWithScore(QUERY, 4)).map(([d]) => d.id);
    const overStore = await new HybridRetriever({ dense: store, sparse: stack.bm25, k: 4 }).retrieve(QUERY);
    expect(overStore.documents.map((d) => d.id)).toEqual(denseOrder);
    const overRetriever = new HybridRetriever({ dense: new DPRRetriever({ vectorStore: store, cache: false }), sparse: stack.bm25, k: 4 });
    expect((await overRetriever.retrieve(QUERY)).documents.map((d) => d.id)).toEqual(denseOrder);
    expect((await overRetriever.resolveFusion()).source).toBe("model");
  });

  it("explicit options win over the stored fusion, as a whole", async () => {
    const store = await storeFor(await modelWith("explicit", ALPHA_0));
    const rrf = new HybridRetriever({ dense: store, sparse: stack.bm25, k: 5, fusion: "rrf" });
    expect((await rrf.retrieve(QUERY)).documents.map((d) => d.id)).toEqual(
      await expectedIds(store, { method: "rrf", k: 60, weights: [1, 1] }, 5),
    );
    expect(await rrf.resolveFusion()).toEqual({ setting: { method: "rrf", k: 60, weights: [1, 1] }, source: "options" });
    const linear = new HybridRetriever({ dense: store, sparse: stack.bm25, k: 5, fusion: "linear", alpha: 1 });
    const alpha1: FusionSetting = { method: "linear", alpha: 1, normalization: "minmax" };
    expect((await linear.retrieve(QUERY)).documents.map((d) => d.id)).toEqual(await expectedIds(store, alpha1, 5));
    // one option alone (here rrfWeights) also turns the stored fusion off
    const weights = new HybridRetriever({ dense: store, sparse: stack.bm25, k: 5, rrfWeights: [1, 0.5] });
    expect(await weights.resolveFusion()).toEqual({ setting: { method: "rrf", k: 60, weights: [1, 0.5] }, source: "options" });
    // the stored fusion differs from both, so the checks above can tell them apart
    expect(await expectedIds(store, ALPHA_0, 5)).not.toEqual(await expectedIds(store, alpha1, 5));
  });

  it("without a stored fusion the default is unchanged: RRF, k 60, equal weights", async () => {
    const hybrid = new HybridRetriever({ dense: stack.store, sparse: stack.bm25, k: 5 });
    expect((await hybrid.retrieve(QUERY)).documents.map((d) => d.id)).toEqual(
      await expectedIds(stack.store, { method: "rrf", k: 60, weights: [1, 1] }, 5),
    );
    expect(await hybrid.resolveFusion()).toEqual({ setting: { method: "rrf", k: 60, weights: [1, 1] }, source: "default" });
  });

  it("a bad stored fusion fails the query naming the file and the field", async () => {
    const dir = await modelWith("bad");
    await writeFile(join(dir, "dpr_config.json"), JSON.stringify({ maxPassageLength: 128, fusion: { method: "linear", alpha: 3 } }));
    const embeddings = new DPREmbeddings({ modelPath: dir, intraOpNumThreads: 1 });
    const store = new FaissDPRStore(embeddings, { dimensions: 32 });
    opened.push({ embeddings, store });
    const hybrid = new HybridRetriever({ dense: store, sparse: stack.bm25, k: 5 });
    await expect(hybrid.resolveFusion()).rejects.toThrow(
      `HybridRetriever: cannot read the dense model's stored fusion: DPREmbeddings: cannot read the settings of ${dir}: ` +
        `dpr_config.json (${join(dir, "dpr_config.json")}): fusion.alpha: expected the dense weight, a number in [0, 1], got 3`,
    );
  });
});

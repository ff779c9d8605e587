/**
 * `serve --bm25` and the fusion stored with the model: without --fusion/--alpha the server's
 * HybridRetriever uses the model's dpr_config.json `fusion` (and says so); the flags win over it.
 * Real model folder, real FaissDPRStore and BM25Index folders, a real server on a free port.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { writeModelFusion } from "../../src/models/fusion-config.js";
import { fuseDenseSparse } from "../../src/retrievers/fusion.js";
import { parseServeArgs, startServe, type ServeHandle } from "../../src/server/cli.js";
import { CORPUS, makeSavedStack, type RealStack } from "../retrievers/helpers.js";

let stack: RealStack;
let indexDir: string;
let bm25Dir: string;

beforeAll(async () => {
  ({ indexDir, bm25Dir, ...stack } = await makeSavedStack());
  await writeModelFusion(stack.modelDir, { method: "rrf", k: 60, weights: [1, 0] }); // dense order only
}, 120_000);
afterAll(async () => {
  await stack?.cleanup();
});

async function serve(extra: string[]): Promise<ServeHandle> {
  const opts = parseServeArgs(["--model", stack.modelDir, "--index", indexDir, "--bm25", bm25Dir, "--port", "0", ...extra])!;
  return startServe(opts);
}

async function ids(handle: ServeHandle, query: string): Promise<string[]> {
  const res = await handle.app.inject({ method: "POST", url: "/retrieve", payload: { query, k: 4 } });
  expect(res.statusCode).toBe(200);
  return (res.json() as { documents: Array<{ id: string }> }).documents.map((d) => d.id);
}

describe("serve --bm25 with a fusion stored in dpr_config.json", () => {
  const QUERY = "sailors lemons voyages scurvy vitamin";

  it("serves the stored fusion when no --fusion is given, and the flags when they are", async () => {
    const dense = (await stack.store.similaritySearchWithScore(QUERY, 4)).map(([d]) => d.id);
    const handle = await serve([]);
    try {
      expect(handle.fusion).toMatchObject({ source: "model", setting: { method: "rrf", k: 60, weights: [1, 0] } });
      expect(await ids(handle, QUERY)).toEqual(dense);
    } finally {
      await handle.app.close();
      await handle.close();
    }
    const flagged = await serve(["--fusion", "rrf"]);
    try {
      expect(flagged.fusion).toEqual({ source: "options", setting: { method: "rrf", k: 60, weights: [1, 1] } });
      const denseHits = (await stack.store.similaritySearchWithScore(QUERY, CORPUS.length)).map(([d, s]) => ({ id: d.id!, score: s }));
      const sparseHits = stack.bm25.search(QUERY, CORPUS.length).map((h) => ({ id: h.id, score: h.score }));
      const rrf = fuseDenseSparse(denseHits, sparseHits, { method: "rrf", k: 60, weights: [1, 1] }, 4).map((f) => f.id);
      expect(rrf).not.toEqual(dense); // so the two answers can be told apart
      expect(await ids(flagged, QUERY)).toEqual(rrf);
    } finally {
      await flagged.app.close();
      await flagged.close();
    }
  }, 60_000);

  it("leaves --fusion and --alpha unset by default and refuses --alpha without --fusion linear", () => {
    const o = parseServeArgs(["--model", "m", "--index", "i"])!;
    expect([o.fusion, o.alpha]).toEqual([undefined, undefined]);
    expect(parseServeArgs(["--model", "m", "--index", "i", "--fusion", "linear", "--alpha", "0.2"])).toMatchObject({
      fusion: "linear",
      alpha: 0.2,
    });
    expect(() => parseServeArgs(["--model", "m", "--index", "i", "--alpha", "0.2"])).toThrow(
      "serve: --alpha only applies to --fusion linear",
    );
    expect(() => parseServeArgs(["--model", "m", "--index", "i", "--fusion", "linear", "--alpha", "2"])).toThrow(
      /--alpha must be in \[0, 1\]/,
    );
  });
});

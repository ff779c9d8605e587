import { Document } from "@langchain/core/documents";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DPRRetriever } from "../../src/retrievers/dpr-retriever.js";
import { makeRealStack, type RealStack } from "./helpers.js";

describe("DPRRetriever cache over a real FaissDPRStore", () => {
  let stack: RealStack;
  beforeAll(async () => {
    stack = await makeRealStack();
  });
  afterAll(async () => {
    await stack?.cleanup();
  });

  it("caches by default because FaissDPRStore exposes a version", async () => {
    const retriever = new DPRRetriever({ vectorStore: stack.store, k: 3 });
    const first = await retriever.retrieve("How is malaria transmitted?");
    const second = await retriever.retrieve("  how is MALARIA transmitted? ");
    expect(first.timings.cacheHit).toBe(false);
    expect(second.timings.cacheHit).toBe(true);
    expect(second.documents.map((d) => d.id)).toEqual(first.documents.map((d) => d.id));
    expect(second.scores).toEqual(first.scores);
    expect(retriever.getStats().cacheBypassed).toBe(0);
  });

  it("drops cached results when the store changes (add, delete)", async () => {
    const retriever = new DPRRetriever({ vectorStore: stack.store, k: 3 });
    const v0 = stack.store.version;
    await retriever.invoke("mosquito bites");
    await stack.store.addDocuments([new Document({ pageContent: "Mosquito bites spread malaria parasites.", id: "new-1" })]);
    expect(stack.store.version).toBeGreaterThan(v0);
    const afterAdd = await retriever.retrieve("mosquito bites");
    expect(afterAdd.timings.cacheHit).toBe(false);
    await stack.store.delete({ ids: ["new-1"] });
    const afterDelete = await retriever.retrieve("mosquito bites");
    expect(afterDelete.timings.cacheHit).toBe(false);
    expect(afterDelete.documents.map((d) => d.id)).not.toContain("new-1");
    expect(retriever.getStats().invalidations).toBeGreaterThanOrEqual(2);
  });
});

/**
 * The one metadata-filter rule (src/retrievers/filter.ts): an object filter passes a document when
 * every key is deep-equal to its metadata value; a function is a predicate. FaissDPRStore and
 * HybridRetriever use the same function, so they agree document for document.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Document } from "@langchain/core/documents";
import { describe, expect, it } from "vitest";
import { checkFilter, deepEqual, matchesFilter } from "../../src/retrievers/filter.js";
import { matchesFilter as hybridMatchesFilter } from "../../src/retrievers/hybrid-retriever.js";
import { FaissDPRStore } from "../../src/vectorstores/faiss-dpr-store.js";
import { HashEmbeddings } from "./helpers.js";

const doc = (metadata: Record<string, unknown>) => new Document({ pageContent: "x", metadata });

describe("deepEqual", () => {
  it("compares primitives by SameValueZero", () => {
    expect(deepEqual(3, 3)).toBe(true);
    expect(deepEqual(3, "3")).toBe(false);
    expect(deepEqual(NaN, NaN)).toBe(true);
    expect(deepEqual(0, -0)).toBe(true);
    expect(deepEqual(null, undefined)).toBe(false);
    expect(deepEqual(null, null)).toBe(true);
  });

  it("compares arrays in order, objects in any key order, Dates by instant", () => {
    expect(deepEqual([1, [2, 3]], [1, [2, 3]])).toBe(true);
    expect(deepEqual([1, 2], [2, 1])).toBe(false);
    expect(deepEqual([1, 2], [1, 2, 3])).toBe(false);
    expect(deepEqual({ a: 1, b: { c: [1] } }, { b: { c: [1] }, a: 1 })).toBe(true);
    expect(deepEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(deepEqual([], {})).toBe(false);
    expect(deepEqual({ 0: "a" }, ["a"])).toBe(false);
    expect(deepEqual(new Date(86_400_000), new Date(86_400_000))).toBe(true);
    expect(deepEqual(new Date(0), new Date(1))).toBe(false);
    expect(deepEqual(new Date(0), {})).toBe(false);
  });

  it("treats a key holding undefined as absent, as a JSON round trip does", () => {
    expect(deepEqual({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(deepEqual(JSON.parse(JSON.stringify({ a: 1, b: undefined })), { a: 1, b: undefined })).toBe(true);
  });
});

describe("matchesFilter", () => {
  it("passes every document without a filter", () => {
    expect(matchesFilter(undefined, doc({}))).toBe(true);
    expect(matchesFilter(null, doc({ a: 1 }))).toBe(true);
  });

  it("needs every key of an object filter to be deep-equal", () => {
    const d = doc({ topic: "nutrition", year: 2020, tags: ["a", "b"], where: { city: "Oslo", zip: 150 } });
    expect(matchesFilter({ topic: "nutrition" }, d)).toBe(true);
    expect(matchesFilter({ topic: "nutrition", year: 2020 }, d)).toBe(true);
    expect(matchesFilter({ topic: "nutrition", year: 2021 }, d)).toBe(false);
    expect(matchesFilter({ tags: ["a", "b"] }, d)).toBe(true);
    expect(matchesFilter({ tags: ["a"] }, d)).toBe(false); // equality, not containment
    expect(matchesFilter({ where: { zip: 150, city: "Oslo" } }, d)).toBe(true);
    expect(matchesFilter({ where: { city: "Oslo" } }, d)).toBe(false);
    expect(matchesFilter({ missing: "x" }, d)).toBe(false);
    expect(matchesFilter({}, d)).toBe(true);
  });

  it("calls a function filter with the document", () => {
    const d = new Document({ pageContent: "hello", metadata: { n: 4 }, id: "d1" });
    expect(matchesFilter((x: Document) => x.id === "d1" && x.pageContent === "hello", d)).toBe(true);
    expect(matchesFilter((x: Document) => (x.metadata.n as number) > 10, d)).toBe(false);
  });

  it("refuses a filter that is neither an object nor a function, naming what it got", () => {
    expect(() => matchesFilter("topic=x", doc({}))).toThrow(
      "metadata filter: filter must be an object of metadata values or a predicate function, got a string",
    );
    expect(() => matchesFilter(["topic"], doc({}))).toThrow(/got an array/);
    expect(() => checkFilter(42, "FaissDPRStore")).toThrow(
      "FaissDPRStore: filter must be an object of metadata values or a predicate function, got a number",
    );
  });

  it("is the function HybridRetriever filters its sparse side with", () => {
    expect(hybridMatchesFilter).toBe(matchesFilter);
  });
});

describe("FaissDPRStore filters by the same rule", () => {
  it("returns the documents matchesFilter passes, before and after save/load", async () => {
    const metas = [
      { topic: "a", tags: ["x", "y"], where: { city: "Oslo", zip: 150 } },
      { topic: "a", tags: ["y", "x"], where: { zip: 150, city: "Oslo" } },
      { topic: "b", tags: ["x", "y"], where: { city: "Bergen" } },
      { topic: "a", tags: ["x", "y"], where: { city: "Oslo", zip: 150, extra: true } },
    ];
    const store = await FaissDPRStore.fromTexts(["one", "two", "three", "four"], metas, new HashEmbeddings(8));
    const filters = [
      { topic: "a" },
      { tags: ["x", "y"] },
      { where: { zip: 150, city: "Oslo" } },
      { topic: "b", tags: ["x", "y"] },
      { topic: "c" },
    ];
    const dir = await mkdtemp(path.join(os.tmpdir(), "faiss-filter-"));
    try {
      await store.save(dir);
      const loaded = await FaissDPRStore.load(dir, new HashEmbeddings(8));
      for (const filter of filters) {
        const expected = metas.flatMap((m, i) => (matchesFilter(filter, doc(m)) ? [["one", "two", "three", "four"][i]] : []));
        for (const s of [store, loaded]) {
          const got = (await s.similaritySearch("one", 4, filter)).map((d) => d.pageContent);
          expect(got.sort()).toEqual([...expected].sort());
        }
      }
      expect(metas.filter((m) => matchesFilter({ where: { zip: 150, city: "Oslo" } }, doc(m)))).toHaveLength(2);
      await expect(store.similaritySearch("one", 2, "topic" as never)).rejects.toThrow(
        "FaissDPRStore: filter must be an object of metadata values or a predicate function, got a string",
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("hands a predicate a copy: changing it does not change the store", async () => {
    const store = await FaissDPRStore.fromTexts(["one", "two"], [{ n: 1 }, { n: 2 }], new HashEmbeddings(8));
    await store.similaritySearch("one", 2, (d) => {
      d.metadata.n = 100;
      return true;
    });
    expect((await store.similaritySearch("one", 2)).map((d) => d.metadata.n).sort()).toEqual([1, 2]);
  });
});

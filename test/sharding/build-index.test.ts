/**
 * build-index: a store built from 3 shards searches as one built by addDocuments with the same
 * model; trained factories train on a seeded sample; every bad shard set is refused naming the shard
 * and what is wrong, and nothing is saved then.
 */
import { createHash } from "node:crypto";
import { copyFile, mkdir, mkdtemp, open, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Document } from "@langchain/core/documents";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { buildIndexFromShards, checkShards, readShardBatches, sampleRows, type BuildIndexOptions } from "../../src/sharding/build-index.js";
import { runBuildIndexCli } from "../../src/sharding/cli.js";
import { encodeShard } from "../../src/sharding/encode-shard.js";
import { encodeShardHeader, readShardHeader, SHARD_HEADER_BYTES } from "../../src/sharding/shard-file.js";
import { FaissDPRStore } from "../../src/vectorstores/faiss-dpr-store.js";
import { makeCorpus, writeCorpus, writeTinyModel, type CorpusRecord } from "./helpers.js";

const N = 120;
const QUERIES = ["vitamin deficiency scurvy", "tumour growth gene expression", "insulin glucose liver", "placebo trial mortality", "virus"];
let tmp: string;
let records: CorpusRecord[];
let corpus: string;
let model: string;
let otherModel: string;
let shards: string;
let embeddings: DPREmbeddings;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "dpr-build-index-"));
  records = makeCorpus(N, 5);
  corpus = await writeCorpus(join(tmp, "beir"), records);
  model = await writeTinyModel(join(tmp, "model"), records);
  otherModel = await writeTinyModel(join(tmp, "other-model"), records, 9);
  shards = join(tmp, "shards");
  for (let i = 0; i < 3; i++) await encodeShard({ model, corpus, out: shards, shard: i, shards: 3, chunkRows: 25 });
  embeddings = new DPREmbeddings({ modelPath: model });
});
afterAll(async () => {
  await embeddings?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

/** Documents as a user would build them for addDocuments (as langchain-dpr evaluate does). */
function documents(): Document[] {
  return records.map(
    (r) => new Document({ pageContent: r.text, metadata: { ...(r.metadata ?? {}), ...(r.title ? { title: r.title } : {}) }, id: r._id }),
  );
}

/** A copy of the shard folder with some files replaced, for the bad-input cases. */
async function shardCopy(
  name: string,
  files: string[] = ["0", "1", "2"].flatMap((i) => [`shard-${i}-of-3.vectors`, `shard-${i}-of-3.ids.jsonl`]),
) {
  const dir = join(tmp, name);
  await mkdir(dir, { recursive: true });
  for (const f of files) await copyFile(join(shards, f), join(dir, f));
  return dir;
}

function build(extra: Partial<BuildIndexOptions> & { shards: string; out: string }): Promise<unknown> {
  return buildIndexFromShards({ corpus, ...extra });
}

describe("build-index: the store", () => {
  it("Flat from 3 shards = addDocuments with the same model: same ids, scores to 1e-5, same documents", async () => {
    const out = join(tmp, "flat");
    const r = await buildIndexFromShards({ shards, corpus, out, model });
    expect(r).toMatchObject({ factory: "Flat", shards: 3, count: N, dims: 32, trainedOn: 0 });
    const built = await FaissDPRStore.load(out, embeddings);
    const reference = await FaissDPRStore.fromDocuments(documents(), embeddings);
    try {
      expect(built.size).toBe(N);
      for (const q of QUERIES) {
        const a = await built.similaritySearchWithScore(q, 10);
        const b = await reference.similaritySearchWithScore(q, 10);
        expect(a.map(([d]) => d.id)).toEqual(b.map(([d]) => d.id));
        a.forEach(([, s], i) => expect(Math.abs(s - b[i]![1])).toBeLessThan(1e-5));
      }
      const ids = ["doc-0", "doc-3", "doc-119"];
      const got = (await built.getByIds(ids)).map((d) => ({ id: d.id, pageContent: d.pageContent, metadata: d.metadata }));
      const want = (await reference.getByIds(ids)).map((d) => ({ id: d.id, pageContent: d.pageContent, metadata: d.metadata }));
      expect(got).toEqual(want);
      expect(got[1]!.metadata).toEqual({ year: 2001, source: "test", title: records[3]!.title });
      expect(got[0]!.metadata).toEqual({}); // untitled passage: no title key
    } finally {
      await built.dispose();
      await reference.dispose();
    }
  });

  it("IVF trains on a seeded sample of the shards' rows; with nprobe = nlist it finds Flat's top 10", async () => {
    const out = join(tmp, "ivf");
    const notes: string[] = [];
    const r = await buildIndexFromShards({
      shards,
      corpus,
      out,
      factory: "IVF4,Flat",
      nprobe: 4,
      trainSample: 100,
      seed: 3,
      log: (l) => notes.push(l),
    });
    expect(r).toMatchObject({ factory: "IVF4,Flat", trainedOn: 100 });
    expect(notes).toContain('build-index: training "IVF4,Flat" on 100 of 120 rows drawn with seed 3');
    const ivf = await FaissDPRStore.load(out, embeddings);
    const flat = await FaissDPRStore.load(join(tmp, "flat"), embeddings);
    try {
      expect(ivf.indexInfo?.nlist).toBe(4);
      for (const q of QUERIES) {
        const a = (await ivf.similaritySearchWithScore(q, 10)).map(([d]) => d.id);
        expect(a).toEqual((await flat.similaritySearchWithScore(q, 10)).map(([d]) => d.id));
      }
    } finally {
      await ivf.dispose();
      await flat.dispose();
    }
  });

  it("the training sample is distinct sorted rows, the same for a seed and different for another", () => {
    const a = sampleRows(1000, 100, 42);
    expect(new Set(a).size).toBe(100);
    expect(a).toEqual([...a].sort((x, y) => x - y));
    expect(a[0]).toBeGreaterThanOrEqual(0);
    expect(a[99]).toBeLessThan(1000);
    expect(sampleRows(1000, 100, 42)).toEqual(a);
    expect(sampleRows(1000, 100, 43)).not.toEqual(a);
    expect(sampleRows(10, 10, 1)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("n that does not divide the corpus: an empty last shard, every passage still indexed once", async () => {
    const small = records.slice(0, 10);
    const dir = await writeCorpus(join(tmp, "beir-10"), small);
    const out = join(tmp, "shards-6");
    const counts: number[] = [];
    for (let i = 0; i < 6; i++) counts.push((await encodeShard({ model, corpus: dir, out, shard: i, shards: 6 })).count);
    expect(counts).toEqual([2, 2, 2, 2, 2, 0]);
    expect((await stat(join(out, "shard-5-of-6.vectors"))).size).toBe(SHARD_HEADER_BYTES);
    await buildIndexFromShards({ shards: out, corpus: dir, out: join(tmp, "flat-10") });
    const store = await FaissDPRStore.load(join(tmp, "flat-10"), embeddings);
    try {
      expect(store.size).toBe(10);
      const hits = await store.similaritySearchWithScore(QUERIES[0]!, 10);
      expect(hits.map(([d]) => d.id).sort()).toEqual(small.map((r) => r._id).sort());
    } finally {
      await store.dispose();
    }
  });

  it("too few rows to train the factory is an error naming the numbers", async () => {
    await expect(build({ shards, out: join(tmp, "ivf-big"), factory: "IVF256,Flat" })).rejects.toThrow(
      'build-index: "IVF256,Flat" needs at least 256 training vectors (IVF256: 256 centroids',
    );
    await expect(stat(join(tmp, "ivf-big"))).rejects.toThrow(/ENOENT/);
  });

  it("the CLI prints what it built (exit 0)", async () => {
    let stdout = "";
    let stderr = "";
    const out = join(tmp, "cli");
    const code = await runBuildIndexCli(["--shards", shards, "--corpus", corpus, "--out", out, "--factory", "HNSW8", "--no-progress"], {
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
    });
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(
      new RegExp(`^built "HNSW8" from 3 shards: 120 vectors × 32, added in [\\d.]+ s, saved in [\\d.]+ s → ${out}\\n$`),
    );
    const store = await FaissDPRStore.load(out, embeddings);
    expect(store.size).toBe(N);
    await store.dispose();
  });
});

describe("build-index: bad shards are named", () => {
  it("a missing shard", async () => {
    const dir = await shardCopy("missing", [
      "shard-0-of-3.vectors",
      "shard-0-of-3.ids.jsonl",
      "shard-2-of-3.vectors",
      "shard-2-of-3.ids.jsonl",
    ]);
    await expect(build({ shards: dir, out: join(tmp, "o1") })).rejects.toThrow(
      /build-index: missing shard 1 of 3: .*shard-1-of-3\.vectors not found \(encode it with langchain-dpr encode-shard --shard 1 --shards 3\)/,
    );
    await mkdir(join(dir, "shard-1-of-3.partial"));
    await expect(build({ shards: dir, out: join(tmp, "o1") })).rejects.toThrow(
      /shard-1-of-3\.partial is unfinished: rerun langchain-dpr encode-shard/,
    );
    await expect(stat(join(tmp, "o1"))).rejects.toThrow(/ENOENT/);
  });

  it("a truncated shard, with the expected and actual sizes", async () => {
    const dir = await shardCopy("truncated");
    const file = join(dir, "shard-2-of-3.vectors");
    const size = (await stat(file)).size;
    expect(size).toBe(SHARD_HEADER_BYTES + 40 * 32 * 4);
    await truncate(file, size - 100);
    await expect(build({ shards: dir, out: join(tmp, "o2") })).rejects.toThrow(
      `build-index: shard 2 of 3: vector shard: ${file} is truncated: expected ${size} bytes ` +
        `(256-byte header + 40 rows × 32 dims × 4), got ${size - 100}`,
    );
    await truncate(file, 100);
    await expect(build({ shards: dir, out: join(tmp, "o2") })).rejects.toThrow(
      `${file} is truncated: expected a 256-byte header, got 100 bytes`,
    );
  });

  it("a shard from another model; shards of one model that is not --model", async () => {
    const dir = await shardCopy(
      "other-model",
      ["0", "2"].flatMap((i) => [`shard-${i}-of-3.vectors`, `shard-${i}-of-3.ids.jsonl`]),
    );
    await encodeShard({ model: otherModel, corpus, out: dir, shard: 1, shards: 3 });
    await expect(build({ shards: dir, out: join(tmp, "o3") })).rejects.toThrow(
      /build-index: .*shard-1-of-3\.vectors was encoded by another model than .*shard-0-of-3\.vectors \(fingerprint [0-9a-f]{16}… vs [0-9a-f]{16}…\)/,
    );
    await expect(build({ shards, out: join(tmp, "o3"), model: otherModel })).rejects.toThrow(
      /build-index: the shards were encoded by another model than --model .*other-model/,
    );
  });

  it("shards of different n in one folder", async () => {
    const dir = await shardCopy("mixed-n");
    await encodeShard({ model, corpus, out: dir, shard: 0, shards: 2 });
    await expect(build({ shards: dir, out: join(tmp, "o4") })).rejects.toThrow(
      /mixes shards of different counts: shard-\d-of-[23]\.vectors \([23] shards\), shard-\d-of-[23]\.vectors \([23] shards\); keep one set/,
    );
  });

  it("another corpus than the one encoded", async () => {
    const changed = records.map((r, i) => (i === 50 ? { ...r, text: `${r.text} changed` } : r));
    const other = await writeCorpus(join(tmp, "beir-changed"), changed);
    await expect(buildIndexFromShards({ shards, corpus: other, out: join(tmp, "o5") })).rejects.toThrow(
      /the shards were encoded from another corpus than .*beir-changed\/corpus\.jsonl \(SHA-256 [0-9a-f]{16}… vs [0-9a-f]{16}…\)/,
    );
  });

  it("an ids file edited after encoding; a flipped vector byte (found while adding: nothing saved)", async () => {
    const dir = await shardCopy("edited");
    const ids = join(dir, "shard-1-of-3.ids.jsonl");
    await writeFile(ids, (await readFile(ids, "utf8")).replace('"doc-41"', '"doc-x"'));
    await expect(build({ shards: dir, out: join(tmp, "o6") })).rejects.toThrow(
      /shard-1-of-3\.ids\.jsonl does not match .*shard-1-of-3\.vectors \(SHA-256/,
    );

    const dir2 = await shardCopy("flipped");
    const handle = await open(join(dir2, "shard-1-of-3.vectors"), "r+");
    const b = Buffer.alloc(1);
    await handle.read(b, 0, 1, SHARD_HEADER_BYTES + 777);
    b[0] ^= 0x10;
    await handle.write(b, 0, 1, SHARD_HEADER_BYTES + 777);
    await handle.close();
    await expect(build({ shards: dir2, out: join(tmp, "o7") })).rejects.toThrow(
      /the vectors of .*shard-1-of-3\.vectors do not match the SHA-256 in its header .*encode shard 1 again/,
    );
    await expect(stat(join(tmp, "o7"))).rejects.toThrow(/ENOENT/);
  });

  it("ids that do not follow the corpus order (header digest matching), naming the ids line and both ids", async () => {
    const dir = await shardCopy("swapped");
    const ids = join(dir, "shard-1-of-3.ids.jsonl");
    const lines = (await readFile(ids, "utf8")).split("\n");
    [lines[2], lines[3]] = [lines[3]!.replace('"row":43', '"row":42'), lines[2]!.replace('"row":42', '"row":43')];
    await writeFile(ids, lines.join("\n"));
    const vectors = join(dir, "shard-1-of-3.vectors");
    const header = await readShardHeader(vectors);
    const handle = await open(vectors, "r+");
    await handle.write(
      encodeShardHeader({
        ...header,
        idsSha256: createHash("sha256")
          .update(await readFile(ids))
          .digest("hex"),
      }),
      0,
    );
    await handle.close();
    await expect(build({ shards: dir, out: join(tmp, "o9") })).rejects.toThrow(
      /shard-1-of-3\.ids\.jsonl:3: shard 1 row 2 has id "doc-43", but passage 42 of .*corpus\.jsonl has id "doc-42"; the shard does not follow/,
    );
  });

  it("a corpus id twice (in two shards) is refused: the index would silently keep one", async () => {
    const dup = records.slice(0, 10).map((r, i) => (i === 8 ? { ...r, _id: "doc-1" } : r));
    const dir = await writeCorpus(join(tmp, "beir-dup"), dup);
    const out = join(tmp, "shards-dup");
    for (let i = 0; i < 2; i++) await encodeShard({ model, corpus: dir, out, shard: i, shards: 2 });
    await expect(buildIndexFromShards({ shards: out, corpus: dir, out: join(tmp, "o10") })).rejects.toThrow(
      'build-index: the corpus id "doc-1" appears twice (ids must be unique in the index)',
    );
    await expect(stat(join(tmp, "o10"))).rejects.toThrow(/ENOENT/);
  });

  it("readShardBatches streams corpus order in batches that never straddle two shards", async () => {
    const set = await checkShards(shards, corpus);
    const seen: Array<[number, number, number]> = [];
    const ids: string[] = [];
    for await (const b of readShardBatches(set, { batchRows: 15 })) {
      seen.push([b.shard, b.start, b.ids.length]);
      expect(b.vectors.length).toBe(b.ids.length * 32);
      expect(b.documents.map((d) => d.id)).toEqual(b.ids);
      ids.push(...b.ids);
    }
    expect(seen).toEqual([
      [0, 0, 15],
      [0, 15, 15],
      [0, 30, 10],
      [1, 40, 15],
      [1, 55, 15],
      [1, 70, 10],
      [2, 80, 15],
      [2, 95, 15],
      [2, 110, 10],
    ]);
    expect(ids).toEqual(records.map((r) => r._id));
  });

  it("a folder without shards, and the CLI's usage errors (exit 2)", async () => {
    await mkdir(join(tmp, "empty"));
    await expect(build({ shards: join(tmp, "empty"), out: join(tmp, "o8") })).rejects.toThrow(
      /no shard-<i>-of-<n>\.vectors files in .*empty \(write them with langchain-dpr encode-shard\)/,
    );
    let stderr = "";
    const io = { stdout: () => undefined, stderr: (t: string) => (stderr += t) };
    expect(await runBuildIndexCli(["--shards", shards, "--out", join(tmp, "o8")], io)).toBe(2);
    expect(stderr).toContain("build-index: --corpus is required");
  });
});

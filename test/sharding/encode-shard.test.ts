/**
 * encode-shard: shards are DPR's contiguous ranges, 3 shards = 1 shard bit for bit (vectors and ids),
 * the vectors are the model's, a SIGKILLed run resumes to the same bytes, a finished shard is skipped,
 * and bad settings are refused with the file and the fix.
 */
import { createHash } from "node:crypto";
import { appendFile, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { runEncodeShardCli } from "../../src/sharding/cli.js";
import { encodeShard, type EncodeShardOptions } from "../../src/sharding/encode-shard.js";
import { readShardHeader, SHARD_HEADER_BYTES, shardPaths, shardRange } from "../../src/sharding/shard-file.js";
import { finish, makeCorpus, progressRows, spawnEncodeShard, writeCorpus, writeTinyModel, type CorpusRecord } from "./helpers.js";

const N = 100;
let tmp: string;
let records: CorpusRecord[];
let corpus: string;
let model: string;
let one: string;
let three: string;

function opts(out: string, shard: number, shards: number, extra: Partial<EncodeShardOptions> = {}): EncodeShardOptions {
  return { model, corpus, out, shard, shards, ...extra };
}

const payload = async (file: string): Promise<Buffer> => (await readFile(file)).subarray(SHARD_HEADER_BYTES);

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "dpr-shard-"));
  records = makeCorpus(N);
  corpus = await writeCorpus(join(tmp, "beir"), records);
  model = await writeTinyModel(join(tmp, "model"), records);
  one = join(tmp, "one");
  three = join(tmp, "three");
  await encodeShard(opts(one, 0, 1));
  for (let i = 0; i < 3; i++) await encodeShard(opts(three, i, 3, { chunkRows: 16, batchSize: 8 }));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("encode-shard: ranges and content", () => {
  it("cuts the corpus as DPR's generate_dense_embeddings: size ceil(N/n), shard i from i × size", async () => {
    expect([0, 1, 2].map((i) => shardRange(100, i, 3))).toEqual([
      { start: 0, count: 34 },
      { start: 34, count: 34 },
      { start: 68, count: 32 },
    ]);
    // n that does not divide N: trailing shards may be empty, the union is still the corpus
    expect([0, 1, 2, 3, 4, 5].map((i) => shardRange(10, i, 6).count)).toEqual([2, 2, 2, 2, 2, 0]);
    for (let i = 0; i < 3; i++) {
      const h = await readShardHeader(shardPaths(three, i, 3).vectors);
      expect({ start: h.start, count: h.count, corpusSize: h.corpusSize, dims: h.dims, complete: h.complete }).toEqual({
        ...shardRange(100, i, 3),
        corpusSize: 100,
        dims: 32,
        complete: true,
      });
    }
  });

  it("3 shards concatenated equal 1 shard bit for bit: vectors and ids (other chunk and batch sizes)", async () => {
    const whole = await payload(shardPaths(one, 0, 1).vectors);
    const parts = Buffer.concat(await Promise.all([0, 1, 2].map((i) => payload(shardPaths(three, i, 3).vectors))));
    expect(whole.length).toBe(N * 32 * 4);
    expect(parts.equals(whole)).toBe(true);
    const ids = (await Promise.all([0, 1, 2].map((i) => readFile(shardPaths(three, i, 3).ids, "utf8")))).join("");
    expect(ids).toBe(await readFile(shardPaths(one, 0, 1).ids, "utf8"));
    expect(ids.split("\n").slice(0, 2)).toEqual(['{"row":0,"id":"doc-0"}', '{"row":1,"id":"doc-1"}']);
  });

  it("the rows are DPREmbeddings' passage vectors of the corpus (title as metadata.title, untitled without one)", async () => {
    const emb = new DPREmbeddings({ modelPath: model });
    try {
      const m = await emb.embedPassagesMatrix(records.map((r) => ({ text: r.text, title: r.title === "" ? undefined : r.title })));
      const whole = await payload(shardPaths(one, 0, 1).vectors);
      expect(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength).equals(whole)).toBe(true);
    } finally {
      await emb.dispose();
    }
  });

  it("a finished shard is checked and skipped on rerun, its files untouched", async () => {
    const file = shardPaths(three, 1, 3).vectors;
    const before = await stat(file);
    const notes: string[] = [];
    const r = await encodeShard(opts(three, 1, 3, { chunkRows: 16, batchSize: 8, log: (l) => notes.push(l) }));
    expect(r.status).toBe("skipped");
    expect(r.rowsEncoded).toBe(0);
    expect((await stat(file)).mtimeMs).toBe(before.mtimeMs);
    expect(notes.join("\n")).toContain("shard 1 of 3 is already complete (34 rows");
  });
});

describe("encode-shard: resume after SIGKILL", () => {
  it("a CLI process killed after its progress file records a chunk resumes to the bytes of an uninterrupted run", async () => {
    const out = join(tmp, "killed");
    const paths = shardPaths(out, 1, 3);
    const progress = join(paths.partialDir, "progress.json");
    const child = spawnEncodeShard([
      ...["--model", model, "--corpus", corpus, "--shard", "1", "--shards", "3", "--out", out],
      ...["--chunk-rows", "16", "--batch-size", "8", "--throttle-ms", "400", "--no-progress"],
    ]);
    const done = finish(child);
    const deadline = Date.now() + 60_000;
    while ((await progressRows(progress)) < 16 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    child.kill("SIGKILL");
    const exit = await done;
    expect(exit.signal, exit.stderr).toBe("SIGKILL");
    const rowsAtKill = await progressRows(progress);
    expect(rowsAtKill).toBeGreaterThanOrEqual(16);
    expect(rowsAtKill).toBeLessThan(34);
    await expect(stat(paths.vectors)).rejects.toThrow(/ENOENT/);
    // as if the kill had come in the middle of writing the next chunk: bytes past the recorded ones
    await appendFile(join(paths.partialDir, "vectors.partial"), Buffer.alloc(100, 7));
    await appendFile(join(paths.partialDir, "ids.partial"), '{"row":999,"id":"half');

    const notes: string[] = [];
    const r = await encodeShard(opts(out, 1, 3, { chunkRows: 16, batchSize: 8, log: (l) => notes.push(l) }));
    expect(r.status).toBe("resumed");
    expect(r.rowsEncoded).toBe(34 - rowsAtKill);
    expect(notes.join("\n")).toContain(`resuming at row ${rowsAtKill} of 34`);
    const reference = shardPaths(three, 1, 3);
    expect((await readFile(paths.vectors)).equals(await readFile(reference.vectors))).toBe(true);
    expect(await readFile(paths.ids, "utf8")).toBe(await readFile(reference.ids, "utf8"));
    await expect(stat(paths.partialDir)).rejects.toThrow(/ENOENT/);
  });

  it("partial files that disagree with the progress checksums are not trusted: the shard starts over, same bytes", async () => {
    const out = join(tmp, "corrupt-partial");
    const paths = shardPaths(out, 2, 3);
    // a complete run, then its partial state rebuilt by hand with one flipped byte
    await encodeShard(opts(out, 2, 3, { chunkRows: 16, batchSize: 8, throttleMs: 0 }));
    const good = await readFile(paths.vectors);
    const ids = await readFile(paths.ids);
    await rm(paths.vectors);
    await rm(paths.ids);
    await mkdir(paths.partialDir);
    const rowsDone = 16;
    const vectors = Buffer.from(good.subarray(0, SHARD_HEADER_BYTES + rowsDone * 32 * 4));
    vectors[20] = 0; // not complete
    const idsPart = ids.subarray(0, ids.indexOf("\n", ids.indexOf('"row":83')) + 1);
    const progress = {
      ...JSON.parse(JSON.stringify(await readShardHeader(join(three, "shard-2-of-3.vectors")))),
      format: "langchain-dpr-shard-progress",
      version: 1,
      batchSize: 8,
      chunkRows: 16,
      rowsDone,
      vectorsSha256: createHash("sha256").update(vectors.subarray(SHARD_HEADER_BYTES)).digest("hex"),
      idsBytes: idsPart.length,
      idsSha256: createHash("sha256").update(idsPart).digest("hex"),
    };
    vectors[SHARD_HEADER_BYTES + 5] ^= 1; // the flipped byte
    await writeFile(join(paths.partialDir, "vectors.partial"), vectors);
    await writeFile(join(paths.partialDir, "ids.partial"), idsPart);
    await writeFile(join(paths.partialDir, "progress.json"), JSON.stringify(progress));
    const notes: string[] = [];
    const r = await encodeShard(opts(out, 2, 3, { chunkRows: 16, batchSize: 8, log: (l) => notes.push(l) }));
    expect(notes.join("\n")).toContain("the partial vectors file does not match the SHA-256 in its progress file; starting the shard over");
    expect(r.status).toBe("encoded");
    expect(r.rowsEncoded).toBe(32);
    expect((await readFile(paths.vectors)).equals(good)).toBe(true);
  });
});

describe("encode-shard: bad input", () => {
  it("--shard >= --shards is a usage error (exit 2) naming both; the API refuses it too", async () => {
    let stderr = "";
    const code = await runEncodeShardCli(["--model", model, "--corpus", corpus, "--shard", "3", "--shards", "3", "--out", join(tmp, "x")], {
      stdout: () => undefined,
      stderr: (t) => (stderr += t),
    });
    expect(code).toBe(2);
    expect(stderr).toContain("encode-shard: --shard must be below --shards (3), got 3; shards are numbered 0..2");
    await expect(encodeShard(opts(join(tmp, "x"), 4, 3))).rejects.toThrow("encode-shard: shard must be below shards (3), got 4");
    await expect(stat(join(tmp, "x"))).rejects.toThrow(/ENOENT/);
  });

  it("a finished shard from another model is refused on rerun, naming the file and the fix", async () => {
    const other = await writeTinyModel(join(tmp, "other-model"), records, 7);
    await expect(encodeShard({ ...opts(three, 0, 3), model: other })).rejects.toThrow(
      new RegExp(`shard-0-of-3\\.vectors already exists and it was encoded by another model .*; delete .*shard-0-of-3\\.vectors and`),
    );
  });

  it("resuming with another --batch-size or --chunk-rows is refused, naming the value to rerun with", async () => {
    const out = join(tmp, "settings");
    const paths = shardPaths(out, 0, 3);
    await mkdir(out, { recursive: true });
    // progress of a run killed at row 16, copied from the finished reference shard
    await encodeShard(opts(out, 0, 3, { chunkRows: 16, batchSize: 8 }));
    const progress = {
      ...JSON.parse(JSON.stringify(await readShardHeader(paths.vectors))),
      format: "langchain-dpr-shard-progress",
      version: 1,
      batchSize: 8,
      chunkRows: 16,
      rowsDone: 0,
      idsBytes: 0,
    };
    await rm(paths.vectors);
    await mkdir(paths.partialDir);
    await writeFile(join(paths.partialDir, "progress.json"), JSON.stringify(progress));
    await expect(encodeShard(opts(out, 0, 3, { chunkRows: 16, batchSize: 4 }))).rejects.toThrow(
      /was written with --batch-size 8, this run has 4; rerun with --batch-size 8, or delete .*shard-0-of-3\.partial to start the shard over/,
    );
    await expect(encodeShard(opts(out, 0, 3, { chunkRows: 32, batchSize: 8 }))).rejects.toThrow(/--chunk-rows 16, this run has 32/);
  });

  it("a second process on the same shard is refused while the first holds its lock, naming the holder", async () => {
    const out = join(tmp, "locked");
    const paths = shardPaths(out, 0, 3);
    await mkdir(paths.partialDir, { recursive: true });
    // a live holder: this very process (the lock names pid and host; only a dead pid's lock is taken over)
    const lock = join(paths.partialDir, ".lock");
    await writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), since: "2024-01-01T00:00:00.000Z" }));
    await expect(encodeShard(opts(out, 0, 3))).rejects.toThrow(
      `encode-shard: ${paths.partialDir} is being written by process ${process.pid} on ${hostname()} since 2024-01-01T00:00:00.000Z`,
    );
    // the holder gone (a pid that cannot exist): the lock is taken over and the shard encoded
    await writeFile(lock, JSON.stringify({ pid: 2 ** 30, host: hostname(), since: "2024-01-01T00:00:00.000Z" }));
    expect((await encodeShard(opts(out, 0, 3))).status).toBe("encoded");
    expect((await readFile(paths.vectors)).equals(await readFile(shardPaths(three, 0, 3).vectors))).toBe(true);
  });

  it("a corpus that is neither a BEIR folder nor a .jsonl file is named", async () => {
    await expect(encodeShard({ ...opts(join(tmp, "y"), 0, 1), corpus: join(tmp, "nothing") })).rejects.toThrow(
      /encode-shard: --corpus .*nothing not found \(expected a BEIR folder or a corpus.jsonl file\)/,
    );
    await copyFile(join(corpus, "corpus.jsonl"), join(tmp, "corpus.txt"));
    await expect(encodeShard({ ...opts(join(tmp, "y"), 0, 1), corpus: join(tmp, "corpus.txt") })).rejects.toThrow(/not ending in \.jsonl/);
  });
});

/**
 * FaissDPRStore on disk against damaged or tampered folders: checksums, the documents file's
 * labels and ids, manifest fields, the folder lock, and leftovers of interrupted saves.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Document } from "@langchain/core/documents";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaissDPRStore } from "../../src/vectorstores/faiss-dpr-store.js";
import { HashEmbeddings, clustered } from "./helpers.js";

const D = 16;
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "faiss-integrity-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface ManifestJson {
  version: number;
  indexFile: string;
  docsFile: string;
  tombstones: number[];
  checksums?: Record<string, { bytes: number; sha256: string }>;
  [k: string]: unknown;
}

/**
 * A saved store of `n` documents d-0..d-(n-1) (labels 0..n-1), with d-3 deleted: removed from a
 * Flat index, a tombstone (label 3) in an HNSW one.
 */
async function savedStore(name: string, factory = "Flat", n = 40): Promise<{ dir: string; manifest: ManifestJson }> {
  const store = new FaissDPRStore(new HashEmbeddings(D), { dimensions: D, factory });
  const docs = Array.from({ length: n }, (_, i) => new Document({ pageContent: `passage ${i}`, metadata: { i }, id: `d-${i}` }));
  await store.addVectors(clustered(n, D, 4, 5), docs);
  await store.delete({ ids: ["d-3"] });
  const dir = path.join(tmp, name);
  await store.save(dir);
  await store.dispose();
  return { dir, manifest: JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as ManifestJson };
}

const load = (dir: string, options?: { verifyChecksums?: boolean }) => FaissDPRStore.load(dir, new HashEmbeddings(D), options);

async function writeManifest(dir: string, m: Record<string, unknown>): Promise<void> {
  await writeFile(path.join(dir, "manifest.json"), JSON.stringify(m));
}

/** A pid that no process has now: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

describe("FaissDPRStore integrity on load", () => {
  it("saves each file's size and SHA-256, and refuses a changed index or documents file before reading it", async () => {
    const { dir, manifest } = await savedStore("checksums");
    expect(manifest.version).toBe(2);
    const indexPath = path.join(dir, manifest.indexFile);
    const docsPath = path.join(dir, manifest.docsFile);
    const index = await readFile(indexPath);
    expect(manifest.checksums![manifest.indexFile]).toEqual({ bytes: index.length, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });

    // four bytes changed in the vectors: same size, different content
    const flipped = Buffer.from(index);
    flipped.writeUInt32LE(flipped.readUInt32LE(index.length - 64) ^ 0x01020304, index.length - 64);
    await writeFile(indexPath, flipped);
    await expect(load(dir)).rejects.toThrow(
      new RegExp(
        `FaissDPRStore.load: index file .*${manifest.indexFile} is damaged \\(changed since it was saved\\): SHA-256 [0-9a-f]{64}`,
      ),
    );
    // the hash check can be skipped (sizes are still checked): the changed file then loads
    const unchecked = await load(dir, { verifyChecksums: false });
    expect(unchecked.size).toBe(39);
    await unchecked.dispose();

    await writeFile(indexPath, index.subarray(0, index.length - 10));
    await expect(load(dir, { verifyChecksums: false })).rejects.toThrow(
      new RegExp(`index file .* is damaged .*: ${index.length - 10} bytes, the manifest says ${index.length}; restore`),
    );
    await writeFile(indexPath, index);

    // two documents' ids swapped: same size, so only the hash tells
    const text = await readFile(docsPath, "utf8");
    const swapped = text.replace('"id":"d-1"', '"id":"TMP"').replace('"id":"d-2"', '"id":"d-1"').replace('"id":"TMP"', '"id":"d-2"');
    expect(swapped.length).toBe(text.length);
    await writeFile(docsPath, swapped);
    await expect(load(dir)).rejects.toThrow(/documents file .*docs\..*\.jsonl is damaged \(changed since it was saved\): SHA-256/);
    await writeFile(docsPath, text);

    const good = await load(dir);
    expect(good.size).toBe(39);
    expect((await good.getByIds(["d-1", "d-2"])).map((d) => d.pageContent)).toEqual(["passage 1", "passage 2"]);
    await good.dispose();
  });

  it("checks every documents line against the manifest (format 1, without checksums)", async () => {
    const { dir, manifest } = await savedStore("doc-lines", "HNSW8");
    expect(manifest.tombstones).toEqual([3]);
    const { checksums: _dropped, ...rest } = manifest;
    await writeManifest(dir, { ...rest, version: 1 });
    const docsPath = path.join(dir, manifest.docsFile);
    const text = await readFile(docsPath, "utf8");
    const cases: [string, string, RegExp][] = [
      [
        "label beyond nextLabel",
        text.replace('"label":5,', '"label":400,'),
        /line 5: label must be an integer in \[0, nextLabel = 40\), got 400/,
      ],
      ["label repeated", text.replace('"label":5,', '"label":4,'), /line 5: label 4 appears twice/],
      ["label of a deleted document", text.replace('"label":5,', '"label":3,'), /line 5: label 3 is a deleted one/],
      ["negative label", text.replace('"label":5,', '"label":-5,'), /label must be an integer in \[0, nextLabel = 40\), got -5/],
      ["id repeated", text.replace('"id":"d-5"', '"id":"d-4"'), /line 5: id "d-4" appears twice/],
      ["metadata not an object", text.replace('"metadata":{"i":5}', '"metadata":[5]'), /line 5: metadata must be an object, got \[5\]/],
      ["a line that is not an object", text.replace(/^.*"label":5,.*$/m, "[1,2]"), /line 5 must be a JSON object/],
      ["a line that is not JSON", text.replace(/^.*"label":5,.*$/m, "{oops"), /line 5 is not valid JSON/],
    ];
    for (const [what, changed, expected] of cases) {
      expect(changed, what).not.toBe(text);
      await writeFile(docsPath, changed);
      await expect(load(dir), what).rejects.toThrow(expected);
    }
    await writeFile(docsPath, text);
    const store = await load(dir);
    expect(store.size).toBe(39);
    await store.dispose();
  });

  it("names each manifest field that is missing, of the wrong type or out of range", async () => {
    const { dir, manifest } = await savedStore("manifest-fields");
    const { tombstones: _t, ...noTombstones } = manifest;
    const cases: [Record<string, unknown>, RegExp][] = [
      [noTombstones, /is not a valid manifest: tombstones must be an array of labels \(integers ≥ 0\), got nothing/],
      [{ ...manifest, tombstones: [3, 3] }, /tombstones lists a label twice/],
      [{ ...manifest, tombstones: [99] }, /tombstones has a label ≥ nextLabel \(40\)/],
      [{ ...manifest, ntotal: "40" }, /ntotal must be an integer ≥ 0, got "40"/],
      [{ ...manifest, dimensions: 0 }, /dimensions must be an integer ≥ 1, got 0/],
      [{ ...manifest, indexFile: "../elsewhere.faiss" }, /indexFile must be a file name in the folder, got "..\/elsewhere.faiss"/],
      [{ ...manifest, efSearch: -1 }, /efSearch must be an integer ≥ 1 when present, got -1/],
      [{ ...manifest, checksums: {} }, /checksums must give \{ bytes, sha256 \} for indexFile/],
      [{ ...manifest, version: 3 }, /has format langchain-dpr\/faiss-dpr-store v3, expected langchain-dpr\/faiss-dpr-store v1 or v2/],
      [{ ...manifest, nextLabel: 10 }, /nextLabel 10 < 39 vectors/],
    ];
    for (const [m, expected] of cases) {
      await writeManifest(dir, m);
      await expect(load(dir)).rejects.toThrow(expected);
    }
    await writeFile(path.join(dir, "manifest.json"), "[1, 2]");
    await expect(load(dir)).rejects.toThrow(/manifest.json must hold a JSON object, got an array/);
  });
});

describe("FaissDPRStore folder lock and leftovers", () => {
  it("load removes leftovers of interrupted saves, keeping the current generation", async () => {
    const { dir, manifest } = await savedStore("leftovers");
    const leftovers = ["index.old-gen.faiss", "docs.old-gen.jsonl", `.docs.x.jsonl.tmp-${deadPid()}-0123abcd`];
    for (const f of leftovers) await writeFile(path.join(dir, f), "partial");
    await writeFile(path.join(dir, "notes.txt"), "the user's own file");
    const store = await load(dir);
    expect((await readdir(dir)).sort()).toEqual([manifest.docsFile, manifest.indexFile, "manifest.json", "notes.txt"].sort());
    await store.dispose();
  });

  it("a live lock holder makes save refuse (naming it) and load leave files alone; a dead holder's lock is taken over", async () => {
    const { dir } = await savedStore("lock");
    const lockPath = path.join(dir, ".lock");
    await writeFile(lockPath, JSON.stringify({ pid: process.pid, host: os.hostname(), since: "2026-01-01T00:00:00.000Z" }));
    await writeFile(path.join(dir, "index.someone-elses.faiss"), "being written");
    const store = await load(dir);
    expect(await readdir(dir)).toContain("index.someone-elses.faiss"); // a save may be writing it
    await expect(store.save(dir)).rejects.toThrow(
      new RegExp(`FaissDPRStore.save: .* is being written by process ${process.pid} on .* since 2026-01-01.*remove .*\\.lock`),
    );

    await writeFile(lockPath, JSON.stringify({ pid: deadPid(), host: os.hostname(), since: "2026-01-01T00:00:00.000Z" }));
    await store.save(dir);
    const files = await readdir(dir);
    expect(files).not.toContain(".lock"); // released
    expect(files).not.toContain("index.someone-elses.faiss");
    expect(files.filter((f) => f.endsWith(".faiss"))).toHaveLength(1);
    expect((await load(dir)).size).toBe(39);
    await store.dispose();
  });
});

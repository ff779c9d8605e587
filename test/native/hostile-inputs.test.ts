/**
 * The faiss addon never takes the process down (issue #16): damaged index files, descriptions with numbers
 * faiss cannot use and out-of-range search arguments are Errors naming FaissIndex, the file or argument, what
 * was expected and what was found. A crash cannot be caught in-process, so every hostile case runs in its own
 * child node (`node --import tsx child.mts <case>`) and the test asserts the child exited normally with the
 * Error it printed. Fixtures are real faiss files written by FaissIndex (IndexIDMap2-wrapped Flat, HNSW and
 * PQ, as FaissDPRStore writes them, and a plain IVF), damaged byte by byte at fields located by parsing them.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAISS_LIMITS, faissAddonLimits, FaissIndex } from "../../src/native/faiss-index.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const D = 8;
const N = 300;

/** Deterministic vectors in [-0.5, 0.5). */
function vectors(n: number, d: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n * d }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}
const DATA = vectors(N, D, 1);
const IDS = BigInt64Array.from({ length: N }, (_, i) => BigInt(1000 + i * 7));

/** What the child prints: the outcome of one case. */
interface Outcome {
  ok: boolean;
  loaded?: number;
  rejected?: number;
  name?: string;
  message?: string;
  ntotal?: number;
  labels?: string[];
  distances?: number[];
}

/**
 * The child: runs one case through the public API and prints its outcome as JSON. Cases:
 * {op: "read", file, k?, knobs?} reads the file and searches the first 3 data vectors;
 * {op: "create", d, description}; {op: "search", description, k, knobs?, queries?, reconstruct?} builds a
 * 300-vector index and searches; {op: "reconstruct", description, ids}.
 */
const CHILD = `
import { FaissIndex } from ${JSON.stringify(pathToFileURL(path.join(ROOT, "src", "native", "faiss-index.ts")).href)};
const c = JSON.parse(process.argv[2]);
const D = ${D}, N = ${N};
function vectors(n, d, seed) {
  let s = seed >>> 0;
  return Float32Array.from({ length: n * d }, () => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s / 2 ** 32 - 0.5; });
}
const data = vectors(N, D, 1);
const ids = BigInt64Array.from({ length: N }, (_, i) => BigInt(1000 + i * 7));
async function built(description) {
  const idx = FaissIndex.create(D, description);
  if (!idx.isTrained) await idx.train(data);
  await idx.add(data, ids);
  return idx;
}
async function run() {
  if (c.op === "read") {
    const idx = await FaissIndex.read(c.file);
    const r = await idx.search(data.subarray(0, 3 * D), c.k ?? 5, c.knobs);
    return { ntotal: idx.ntotal, labels: Array.from(r.labels, String), distances: Array.from(r.distances) };
  }
  if (c.op === "create") {
    const idx = FaissIndex.create(c.d, c.description);
    return { ntotal: idx.ntotal };
  }
  if (c.op === "search") {
    const idx = await built(c.description);
    const q = data.subarray(0, (c.queries ?? 1) * D);
    const r = c.reconstruct ? await idx.searchAndReconstruct(q, c.k, c.knobs) : await idx.search(q, c.k, c.knobs);
    return { labels: Array.from(r.labels.subarray(0, 400), String), distances: Array.from(r.distances.subarray(0, 400)) };
  }
  if (c.op === "reconstruct") {
    const idx = await built(c.description);
    const v = await idx.reconstruct(BigInt64Array.from(c.ids.map(BigInt)));
    return { distances: Array.from(v) };
  }
  if (c.op === "fuzz") {
    // c.count seeded mutations of c.file (1-3 each: a random byte, a bit, or an extreme 4- or 8-byte value, half
    // of them in the headers or the last 800 bytes); each mutated file is read, searched, reconstructed from and
    // added to. Errors are expected and counted; only the process dying fails the case.
    const { readFileSync, writeFileSync } = await import("node:fs");
    const orig = readFileSync(c.file);
    let s = c.seed >>> 0;
    const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), s / 2 ** 32);
    const pick = (a) => a[Math.floor(rnd() * a.length)];
    const tmp = c.file + ".mutated";
    let loaded = 0, rejected = 0;
    for (let i = 0; i < c.count; i++) {
      const b = Buffer.from(orig);
      for (let m = 1 + Math.floor(rnd() * 3); m > 0; m--) {
        const zone = rnd();
        const near = zone < 0.4 ? Math.floor(rnd() * 400) : zone < 0.5 ? b.length - 1 - Math.floor(rnd() * 800) : -1;
        const at = Math.min(b.length - 8, near >= 0 ? near : Math.floor(rnd() * b.length));
        const kind = Math.floor(rnd() * 4);
        if (kind === 0) b[at] = Math.floor(rnd() * 256);
        else if (kind === 1) b.writeInt32LE(pick([-1, 0, 1, 2 ** 31 - 1, -(2 ** 31), Math.floor(rnd() * 1000)]), at);
        else if (kind === 2) b.writeBigInt64LE(pick([-1n, 0n, 1n, 2n ** 62n, 2n ** 40n, BigInt(Math.floor(rnd() * 1000))]), at);
        else b[at] ^= 1 << Math.floor(rnd() * 8);
      }
      writeFileSync(tmp, b);
      let idx;
      try {
        idx = await FaissIndex.read(tmp);
      } catch {
        rejected++;
        continue;
      }
      loaded++;
      const q = vectors(2, idx.d, i);
      const r = await idx.search(q, 7).catch(() => undefined);
      if (r) await idx.reconstruct(r.labels.filter((l) => l >= 0n).slice(0, 3)).catch(() => 0);
      await idx.searchAndReconstruct(q.subarray(0, idx.d), 3, { efSearch: 4, nprobe: 2 }).catch(() => 0);
      await idx.add(q, BigInt64Array.from([100000n + BigInt(i), 200000n + BigInt(i)])).catch(() => 0);
      await idx.search(q, 5).catch(() => 0);
      await idx.dispose();
    }
    return { loaded, rejected };
  }
  throw new Error("unknown case " + c.op);
}
run().then(
  (r) => console.log(JSON.stringify({ ok: true, ...r })),
  (e) => console.log(JSON.stringify({ ok: false, name: e?.name, message: e?.message ?? String(e) })),
);
`;

let tmp: string;
let childPath: string;
/** Fixture files by kind, and the search results of the index they were written from. */
const files: Record<string, string> = {};
const reference: Record<string, { labels: string[]; distances: number[] }> = {};

/** Runs one case in a child node; resolves to its outcome after checking it exited normally. */
function inChild(c: Record<string, unknown>): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", childPath, JSON.stringify(c)],
      { cwd: ROOT, maxBuffer: 1 << 24, timeout: 60_000 },
      (error, stdout, stderr) => {
        // a crash shows as a signal (SIGSEGV, SIGFPE, SIGABRT) or a non-zero exit code
        if (error) {
          const how = error.signal ? `signal ${error.signal}` : `exit code ${String(error.code)}`;
          reject(new Error(`child for ${JSON.stringify(c)} ended with ${how}\n${stderr.slice(-2000)}`));
          return;
        }
        const last = stdout.trim().split("\n").at(-1) ?? "";
        try {
          resolve(JSON.parse(last) as Outcome);
        } catch {
          reject(new Error(`child for ${JSON.stringify(c)} printed no outcome:\n${stdout}\n${stderr}`));
        }
      },
    );
  });
}

/** Copies fixture `kind` to a new file with `damage` applied to its bytes; resolves to the new path. */
async function damaged(kind: string, name: string, damage: (b: Buffer) => Buffer | void): Promise<string> {
  const buf = Buffer.from(await readFile(files[kind]!));
  const out = damage(buf) ?? buf;
  const file = path.join(tmp, `${kind}-${name}.faiss`);
  await writeFile(file, out);
  return file;
}

/** Expects a read case to fail cleanly with a message naming the file and each pattern. */
async function expectReadError(file: string, ...patterns: RegExp[]): Promise<string> {
  const out = await inChild({ op: "read", file });
  expect(out.ok, JSON.stringify(out)).toBe(false);
  expect(out.message).toMatch(/^FaissIndex\.read: /);
  expect(out.message).toContain(file);
  for (const p of patterns) expect(out.message).toMatch(p);
  return out.message!;
}

const HEADER = 33; // index header after the fourcc: d (4), ntotal (8), 2 × 8 padding, is_trained (1), metric (4)

/** Byte offsets of the fields of an IndexIDMap2 > IndexHNSWFlat file, and the graph read from it. */
interface HnswLayout {
  ntotal: number;
  cum: number[];
  levels: number[];
  levelsAt: number;
  offsetsAt: number;
  neighbors: Int32Array;
  neighborsAt: number;
  entryPointAt: number;
  maxLevelAt: number;
}

function hnswLayout(buf: Buffer): HnswLayout {
  expect(buf.toString("latin1", 0, 4)).toBe("IxM2");
  expect(buf.toString("latin1", 37, 41)).toBe("IHNf");
  const ntotal = Number(buf.readBigInt64LE(41 + 4));
  let p = 41 + HEADER;
  const vec = (elem: number): { n: number; at: number } => {
    const n = Number(buf.readBigUInt64LE(p));
    const at = p + 8;
    p = at + n * elem;
    return { n, at };
  };
  vec(8); // assign_probas
  const cum = vec(4);
  const levels = vec(4);
  const offsets = vec(8);
  const neighbors = vec(4);
  const ints = (at: number, n: number): number[] => Array.from({ length: n }, (_, i) => buf.readInt32LE(at + 4 * i));
  return {
    ntotal,
    cum: ints(cum.at, cum.n),
    levels: ints(levels.at, levels.n),
    levelsAt: levels.at,
    offsetsAt: offsets.at,
    neighbors: Int32Array.from(ints(neighbors.at, neighbors.n)),
    neighborsAt: neighbors.at,
    entryPointAt: p,
    maxLevelAt: p + 4,
  };
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "dpr-hostile-"));
  childPath = path.join(tmp, "child.mts");
  await writeFile(childPath, CHILD);
  const q = DATA.subarray(0, 3 * D);
  for (const [kind, description] of [
    ["flat", "Flat"],
    ["hnsw", "HNSW8"],
    ["pq", "PQ4np"],
    ["ivf", "IVF4,Flat"],
  ] as const) {
    const idx = FaissIndex.create(D, description);
    if (!idx.isTrained) await idx.train(DATA);
    await idx.add(DATA, IDS);
    files[kind] = path.join(tmp, `${kind}.faiss`);
    await idx.write(files[kind]);
    const r = await idx.search(q, 5);
    reference[kind] = { labels: Array.from(r.labels, String), distances: Array.from(r.distances) };
    await idx.dispose();
  }
}, 120_000);

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("the addon in use", () => {
  it("enforces the documented FAISS_LIMITS (a stale prebuilt or local build would not)", () => {
    expect(faissAddonLimits()).toEqual(FAISS_LIMITS);
  });
});

describe.concurrent("undamaged files (control)", () => {
  for (const kind of ["flat", "hnsw", "pq", "ivf"]) {
    it(`a ${kind} index read back in a child returns the labels and distances it returned before saving`, async () => {
      const out = await inChild({ op: "read", file: files[kind] });
      expect(out.ok, JSON.stringify(out)).toBe(true);
      expect(out.ntotal).toBe(N);
      expect(out.labels).toEqual(reference[kind]!.labels);
      expect(out.distances).toEqual(reference[kind]!.distances);
      // the first query is data vector 0: it finds itself (id 1000) first, except through PQ's lossy codes
      if (kind !== "pq") expect(out.labels![0]).toBe("1000");
    });
  }
});

describe.concurrent("damaged index files are read errors, not crashes", () => {
  it("Flat: IndexIDMap2's ntotal changed (300 → 500)", async () => {
    const file = await damaged("flat", "outer-ntotal", (b) => void b.writeBigInt64LE(500n, 4 + 4));
    await expectReadError(file, /IndexIDMap2/, /ntotal = 500/, /found 300/);
  });

  it("Flat: the inner IndexFlat's ntotal changed (300 → 301), so the stored floats no longer match", async () => {
    const file = await damaged("flat", "inner-ntotal", (b) => void b.writeBigInt64LE(301n, 37 + 4 + 4));
    await expectReadError(file, /IndexIDMap2 .* > IndexFlat/, /ntotal × d = 301 × 8/, /found 2400/);
  });

  it("Flat: an absurd inner ntotal (2^62) is refused from the file size, before any allocation", async () => {
    const file = await damaged("flat", "huge-ntotal", (b) => void b.writeBigInt64LE(2n ** 62n, 37 + 4 + 4));
    await expectReadError(file, /IndexFlat/, /ntotal × d = 4611686018427387904 × 8/);
  });

  it("Flat: an id_map announcing 2^39 ids is refused: the bytes left in the file cannot hold them", async () => {
    const file = await damaged("flat", "huge-idmap", (b) => void b.writeBigUInt64LE(2n ** 39n, b.length - N * 8 - 8));
    await expectReadError(file, /id_map/, /549755813888 elements of 8 bytes announced/, /only 2400 bytes are left/);
  });

  it("Flat: a duplicate id in IndexIDMap2's id_map", async () => {
    const file = await damaged("flat", "duplicate-id", (b) => void b.writeBigInt64LE(IDS[0]!, b.length - N * 8 + 8 * 5));
    await expectReadError(file, /id 1000 appears twice in id_map \(positions 0 and 5\)/);
  });

  it("Flat: a truncated file (the first half)", async () => {
    const file = await damaged("flat", "truncated", (b) => b.subarray(0, b.length >> 1));
    await expectReadError(file, /announced at byte \d+ but only \d+ bytes are left|the file ends at byte/);
  });

  it("Flat: trailing bytes after the index", async () => {
    const file = await damaged("flat", "trailing", (b) => Buffer.concat([b, Buffer.from("extra")]));
    await expectReadError(file, /5 trailing bytes follow the end of the index/);
  });

  it("a file that is not a faiss index at all (JSON)", async () => {
    const file = path.join(tmp, "not-an-index.faiss");
    await writeFile(file, JSON.stringify({ hello: "world" }));
    await expectReadError(file, /index type "\{\\x22he" at byte 0 is not recognized \(langchain-dpr reads Flat/);
  });

  it("100,000 nested IndexIDMap2 headers are refused at depth 9 (faiss would recurse until the stack overflows)", async () => {
    const one = Buffer.alloc(37);
    one.write("IxM2", 0, "latin1");
    one.writeInt32LE(D, 4);
    one[32] = 1; // is_trained
    const file = path.join(tmp, "nested.faiss");
    await writeFile(file, Buffer.concat(Array.from({ length: 100_000 }, () => one)));
    await expectReadError(file, /indexes are nested more than 8 deep/);
  });

  it("HNSW: IndexIDMap2's ntotal changed (300 → 500)", async () => {
    const file = await damaged("hnsw", "outer-ntotal", (b) => void b.writeBigInt64LE(500n, 8));
    await expectReadError(file, /IndexIDMap2/, /ntotal = 500/);
  });

  it("HNSW: the graph's ntotal changed (300 → 100)", async () => {
    const file = await damaged("hnsw", "inner-ntotal", (b) => void b.writeBigInt64LE(100n, 37 + 8));
    await expectReadError(file, /IndexHNSWFlat/, /hnsw\.levels count: expected ntotal = 100, found 300/);
  });

  it("HNSW: the entry point outside the graph (= ntotal)", async () => {
    const file = await damaged("hnsw", "entry-out", (b) => void b.writeInt32LE(N, hnswLayout(b).entryPointAt));
    await expectReadError(file, /hnsw\.entry_point: expected a node id in 0\.\.299, found 300/);
  });

  it("HNSW: the entry point moved to a node of level 0 below max_level (search would start from the wrong level)", async () => {
    const file = await damaged("hnsw", "entry-low", (b) => {
      const g = hnswLayout(b);
      const low = g.levels.findIndex((l) => l === 1);
      expect(Math.max(...g.levels)).toBeGreaterThan(1);
      b.writeInt32LE(low, g.entryPointAt);
    });
    await expectReadError(file, /hnsw\.max_level = \d+, expected the level of the entry point \(0\)/);
  });

  it("HNSW: max_level raised by one", async () => {
    const file = await damaged("hnsw", "max-level", (b) => {
      const g = hnswLayout(b);
      b.writeInt32LE(b.readInt32LE(g.maxLevelAt) + 1, g.maxLevelAt);
    });
    await expectReadError(file, /hnsw\.max_level/);
  });

  it("HNSW: a node's level set to 0 (levels start at 1)", async () => {
    const file = await damaged("hnsw", "level-zero", (b) => void b.writeInt32LE(0, hnswLayout(b).levelsAt + 4 * 7));
    await expectReadError(file, /hnsw\.levels\[7\] = 0, expected 1\.\.\d+/);
  });

  it("HNSW: an offset into the neighbor table shifted by one", async () => {
    const file = await damaged("hnsw", "offset", (b) => {
      const at = hnswLayout(b).offsetsAt + 8 * 10;
      b.writeBigUInt64LE(b.readBigUInt64LE(at) + 1n, at);
    });
    await expectReadError(file, /hnsw\.offsets\[(10|11)\] = \d+, expected offsets\[\d+\] \+ \d+/);
  });

  it("HNSW: a neighbor id past the last node", async () => {
    const file = await damaged("hnsw", "neighbor-out", (b) => void b.writeInt32LE(N + 1000, hnswLayout(b).neighborsAt));
    await expectReadError(file, /hnsw\.neighbors\[0\] \(node 0, level 0\) = 1300, expected -1 or a node id in 0\.\.299/);
  });

  it("HNSW: an upper-level link to a node that exists only on level 0", async () => {
    const file = await damaged("hnsw", "neighbor-level", (b) => {
      const g = hnswLayout(b);
      const upper = g.levels.findIndex((l) => l >= 2);
      const ground = g.levels.findIndex((l) => l === 1);
      const offset = Number(b.readBigUInt64LE(g.offsetsAt + 8 * upper));
      b.writeInt32LE(ground, g.neighborsAt + 4 * (offset + g.cum[1]!));
    });
    await expectReadError(file, /links at level 1 to node \d+, which only exists up to level 0/);
  });

  it("PQ: m = 0 sub-quantizers (faiss would divide by it inside read_index: SIGFPE)", async () => {
    // IxM2 (37 bytes) > IxPq: fourcc, header, then pq.d, pq.M, pq.nbits (size_t each)
    const file = await damaged("pq", "m-zero", (b) => void b.writeBigUInt64LE(0n, 37 + 4 + HEADER + 8));
    await expectReadError(file, /IndexPQ/, /pq\.M: expected a divisor of d = 8, found 0/);
  });

  it("PQ: 40 bits per code (faiss would shift by it and size the codebook from it)", async () => {
    const file = await damaged("pq", "nbits", (b) => void b.writeBigUInt64LE(40n, 37 + 4 + HEADER + 16));
    await expectReadError(file, /pq\.nbits: expected 1\.\.16, found 40/);
  });

  it("IVF: the inverted lists announce 2^40 lists", async () => {
    const file = await damaged("ivf", "nlist", (b) => void b.writeBigUInt64LE(2n ** 40n, b.indexOf("ilar", 0, "latin1") + 4));
    await expectReadError(file, /IndexIVFFlat/, /invlists\.nlist: expected the index's nlist = 4, found 1099511627776/);
  });

  it("IVF: one list's size inflated so the sizes no longer add up to ntotal", async () => {
    const file = await damaged("ivf", "list-size", (b) => {
      // "ilar", nlist, code_size, "full", count, sizes[0..3]
      const at = b.indexOf("ilar", 0, "latin1") + 4 + 8 + 8 + 4 + 8;
      b.writeBigUInt64LE(b.readBigUInt64LE(at) + 1n, at);
    });
    await expectReadError(file, /inverted list|sum of the inverted list sizes: expected ntotal = 300/);
  });

  it("IVF: the coarse quantizer holding fewer centroids than nlist", async () => {
    // IwFl: fourcc, header, nlist, nprobe, then the quantizer IxFI: fourcc, d, ntotal
    const file = await damaged("ivf", "quantizer", (b) => void b.writeBigInt64LE(3n, 4 + HEADER + 16 + 4 + 4));
    await expectReadError(file, /IndexIVFFlat \("IwFl" at byte 0\) > quantizer IndexFlat \("IxFI" at byte 53\)/, /ntotal × d = 3 × 8/);
  });
});

describe.concurrent("seeded random damage (a small fuzz run) never takes the process down", () => {
  for (const kind of ["flat", "hnsw", "pq", "ivf"]) {
    it(`250 mutated copies of the ${kind} file: each is an Error or loads and answers, and the child lives`, async () => {
      const out = await inChild({ op: "fuzz", file: files[kind], seed: 16, count: 250 });
      expect(out.ok, JSON.stringify(out)).toBe(true);
      expect(out.loaded! + out.rejected!).toBe(250);
      // both paths are exercised: damage in the payload loads (vectors are just numbers), damage in a structure does not
      expect(out.loaded).toBeGreaterThan(10);
      expect(out.rejected).toBeGreaterThan(10);
    });
  }
});

describe.concurrent("descriptions faiss cannot build are create errors, not crashes", () => {
  for (const [description, pattern] of [
    ["PQ0", /PQ0: the number of sub-quantizers m must be ≥ 1 and divide d = 8 \(valid m: 1, 2, 4, 8\), got 0/],
    ["PQ4x0", /PQ4x0: bits per code must be in 1\.\.16, got 0/],
    ["PQ3", /valid m: 1, 2, 4, 8\), got 3/],
    ["HNSW0", /HNSW0: HNSW M \(links per node\) must be in 2\.\.1024, got 0/],
    ["IVF0,Flat", /IVF0,Flat: the number of IVF lists must be in 1\.\.4194304, got 0/],
    ["OPQ0,IVF4,PQ2", /OPQ0: the number of OPQ sub-spaces m must be ≥ 1/],
    ["OPQ4_16,Flat", /OPQ4_16: the OPQ output dimension must be ≤ d = 8/],
    ["HNSW8_PQ16", /HNSW8_PQ16: the number of sub-quantizers m must be ≥ 1 and divide d = 8 .*got 16/],
    ["IVF8_HNSW1,Flat", /HNSW M \(links per node\) must be in 2\.\.1024, got 1/],
    ["NSG32", /could not parse "NSG32" as a supported description .* supported descriptions: Flat \| PQ/],
  ] as const) {
    it(`"${description}"`, async () => {
      const out = await inChild({ op: "create", d: D, description });
      expect(out.ok, JSON.stringify(out)).toBe(false);
      expect(out.message).toMatch(new RegExp(`^FaissIndex\\.create: invalid index description "${description}" for d = 8: `));
      expect(out.message).toMatch(pattern);
    });
  }

  it("d = 2^31 (which used to wrap to a negative dimension)", async () => {
    const out = await inChild({ op: "create", d: 2 ** 31, description: "Flat" });
    expect(out).toMatchObject({ ok: false, name: "RangeError" });
    expect(out.message).toBe("FaissIndex.create: d (dimension) must be an integer in 1..65536, got 2147483648");
  });
});

describe.concurrent("search arguments past the limits are errors, not crashes", () => {
  it("HNSW efSearch = 2^31 − 1 (a bad_alloc inside faiss's OpenMP region used to abort)", async () => {
    const out = await inChild({ op: "search", description: "HNSW8", k: 5, knobs: { efSearch: 2 ** 31 - 1 } });
    expect(out).toMatchObject({ ok: false, name: "RangeError" });
    expect(out.message).toMatch(/^FaissIndex\.search: efSearch must be an integer in 1\.\.1048576, got 2147483647/);
  });

  it("HNSW efSearch = 2^20 (allowed) searches no wider than all 300 vectors and finds what efSearch = 300 finds", async () => {
    const [wide, all] = await Promise.all([
      inChild({ op: "search", description: "HNSW8", k: 5, knobs: { efSearch: 2 ** 20 } }),
      inChild({ op: "search", description: "HNSW8", k: 5, knobs: { efSearch: N } }),
    ]);
    expect(wide.ok, JSON.stringify(wide)).toBe(true);
    expect(wide.labels).toEqual(all.labels);
    expect(wide.labels![0]).toBe("1000");
  });

  it("k = 2^33 (a V8 out-of-memory abort before)", async () => {
    const out = await inChild({ op: "search", description: "Flat", k: 2 ** 33 });
    expect(out).toMatchObject({ ok: false, name: "RangeError" });
    expect(out.message).toMatch(/^FaissIndex\.search: k must be an integer in 1\.\.1048576, got 8589934592/);
  });

  it("k = 2^20 on 300 vectors returns the 300 and pads the row with label -1", async () => {
    for (const description of ["Flat", "HNSW8"]) {
      const out = await inChild({ op: "search", description, k: 2 ** 20, knobs: description === "HNSW8" ? { efSearch: N } : {} });
      expect(out.ok, JSON.stringify(out)).toBe(true);
      // the child returns the first 400 of the row: 300 distinct stored ids, then -1
      expect(new Set(out.labels!.slice(0, N)).size).toBe(N);
      expect(out.labels!.slice(0, N).every((l) => Number(l) >= 1000)).toBe(true);
      expect(out.labels!.slice(N)).toEqual(Array.from({ length: 100 }, () => "-1"));
      expect(out.labels![0]).toBe("1000");
    }
  });

  it("queries × k over 2^27 results in one call", async () => {
    const out = await inChild({ op: "search", description: "Flat", k: 2 ** 20, queries: 200 });
    expect(out).toMatchObject({ ok: false, name: "RangeError" });
    expect(out.message).toMatch(/^FaissIndex\.search: 200 queries × k = 1048576 gives 209715200 results, over the limit of 134217728/);
  });

  it("searchAndReconstruct over 2^28 floats in one call", async () => {
    const out = await inChild({ op: "search", description: "Flat", k: 2 ** 20, queries: 100, reconstruct: true });
    expect(out).toMatchObject({ ok: false, name: "RangeError" });
    expect(out.message).toMatch(/^FaissIndex\.searchAndReconstruct: 100 queries × k = 1048576 × d = 8 floats, over the limit/);
  });

  it("nprobe = 2^31 (over the documented maximum)", async () => {
    const out = await inChild({ op: "search", description: "IVF4,Flat", k: 5, knobs: { nprobe: 2 ** 31 } });
    expect(out).toMatchObject({ ok: false, name: "RangeError" });
    expect(out.message).toMatch(/^FaissIndex\.search: nprobe must be an integer in 1\.\.4194304, got 2147483648/);
  });

  it("reconstruct of an id that is not stored", async () => {
    const out = await inChild({ op: "reconstruct", description: "Flat", ids: [5] });
    expect(out.ok).toBe(false);
    expect(out.message).toMatch(/^FaissIndex\.reconstruct: label 5 is not in the index/);
  });
});

describe("every description the checked reader accepts saves and loads (empty, and filled with identical search results)", () => {
  it.each([
    "Flat",
    "PQ4np",
    "PQ2x10np",
    "SQ8",
    "SQfp16",
    "HNSW8",
    "HNSW8_PQ2np",
    "HNSW8,SQ4",
    "IVF4,Flat",
    "IVF4_HNSW8,Flat",
    "IVF4,PQ2x4np",
    "IVF4,SQ6",
    "OPQ2,IVF4,PQ2np",
    "PCAR4,IVF4,SQ8",
    "RR8,Flat",
    "L2norm,Pad12,Flat",
    "IVF4,Flat,RFlat",
    "IVF4,PQ2np,Refine(SQ8)",
    "IDMap,Flat",
    "IDMap2,OPQ4,IVF4,PQ4np",
  ])("%s", async (description) => {
    const idx = FaissIndex.create(D, description);
    const name = description.replace(/[^A-Za-z0-9]/g, "_");
    // empty (and for most kinds untrained): what a store saves before its first add
    await idx.write(path.join(tmp, `empty-${name}.faiss`));
    const empty = await FaissIndex.read(path.join(tmp, `empty-${name}.faiss`));
    expect([empty.ntotal, empty.isTrained, empty.info]).toEqual([0, idx.isTrained, idx.info]);
    await empty.dispose();
    if (!idx.isTrained) await idx.train(vectors(2000, D, 3));
    await idx.add(DATA, IDS);
    const file = path.join(tmp, `roundtrip-${name}.faiss`);
    await idx.write(file);
    const q = DATA.subarray(0, 4 * D);
    const before = await idx.search(q, 6);
    const back = await FaissIndex.read(file);
    expect(back.ntotal).toBe(N);
    const after = await back.search(q, 6);
    expect(Array.from(after.labels)).toEqual(Array.from(before.labels));
    expect(Array.from(after.distances)).toEqual(Array.from(before.distances));
    await Promise.all([idx.dispose(), back.dispose()]);
  });
});

describe("operations that would corrupt an index are refused", () => {
  it("removeIds on an IDMap around an IVF index (IVF keeps positions as ids and removal does not renumber them)", async () => {
    const idx = FaissIndex.create(D, "IDMap,IVF4,Flat");
    await idx.train(DATA);
    await idx.add(DATA, IDS);
    await expect(idx.removeIds(IDS.subarray(0, 3))).rejects.toThrow(
      /^FaissIndex\.removeIds: an IDMap around an IVF index cannot remove vectors .*create IVF indexes without IDMap/,
    );
    expect(idx.ntotal).toBe(N);
    await idx.dispose();
  });
});

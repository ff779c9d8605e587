/**
 * Typed wrapper over langchain-dpr's own faiss addon (src/native/faiss_dpr.cc).
 *
 * - Vectors cross as Float32Array (row-major, n × d) and ids as BigInt64Array, without copies.
 * - train / add / search / write / read run on libuv's thread pool: the event loop stays free.
 * - Calls on one index are serialised by a promise queue, so a buffer handed to one call is never
 *   read while another call mutates the index, and synchronous calls never wait on a native lock.
 * - Every faiss error is a JavaScript Error ("FaissIndex.<operation>: ...").
 *
 * Where the addon comes from ({@link resolveFaissAddon}), first that loads wins:
 *   1. `LANGCHAIN_DPR_FAISS_ADDON`: an explicit path to a .node file (for experiments);
 *   2. the prebuilt shipped in the package, `prebuilds/<platform>-<arch>/faiss_dpr.napi.glibc.node`,
 *      found by node-gyp-build (prebuildify's naming; `LANGCHAIN_DPR_PREBUILD=<dir>` points it at
 *      another package root). Built by scripts/prebuild.sh: faiss and OpenBLAS linked in statically,
 *      GCC's libgomp.so.1 beside it (RUNPATH $ORIGIN); needs only glibc ≥ 2.34 and libstdc++ (GCC ≥ 11);
 *   3. a local build, `src/native/build/Release/faiss_dpr.node`, made by scripts/build-native.sh
 *      (`npx langchain-dpr build-native`) against the system's libfaiss-dev and OpenBLAS;
 *   4. otherwise an Error naming the platform, what is missing and the command that fixes it.
 *
 * Platforms: the prebuilt exists and is tested for linux-x64 with glibc only. Everything else
 * (linux-arm64, musl/Alpine, macOS, Windows) is untested: node-gyp-build finds no prebuilt there
 * (on musl it skips the glibc-tagged file), and scripts/build-native.sh assumes Debian's packages.
 *
 * The package root (which holds `prebuilds/` and `src/native/build/`) is two levels above this
 * file both in the repository (src/native/faiss-index.ts) and compiled (dist/native/faiss-index.js).
 *
 * @module
 */
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

/** Structure of a faiss index as seen by the store. */
export interface FaissIndexInfo {
  /** Core index family after the id map and pre-transform layers. */
  kind: "flat" | "ivf" | "hnsw" | "other";
  /** Whether ids are kept by an IndexIDMap(2) layer (non-IVF indexes created here). */
  hasIdMap: boolean;
  /** Whether a vector transform (e.g. OPQ) precedes the core index. */
  hasPreTransform: boolean;
  /** false for HNSW: faiss cannot remove vectors from an HNSW graph. */
  canRemove: boolean;
  /** IVF: number of inverted lists. */
  nlist?: number;
  /** IVF: default number of lists probed (stored in the index). */
  nprobe?: number;
  /** HNSW: default efSearch (stored in the index). */
  efSearch?: number;
}

/** Per-call search knobs; omitted values fall back to the values stored in the index. */
export interface FaissSearchKnobs {
  /** IVF: number of inverted lists to probe, an integer in 1..{@link FAISS_LIMITS}.maxNlist (values above nlist probe every list). */
  nprobe?: number;
  /**
   * HNSW: size of the dynamic candidate list (≥ k is sensible), an integer in 1..{@link FAISS_LIMITS}.maxEfSearch;
   * values above the vector count are clamped to it (a wider search finds nothing more).
   */
  efSearch?: number;
}

/**
 * Bounds the addon enforces before allocating (src/native/faiss_dpr.cc exports the same values as `limits`).
 * A call past one of them is an Error naming the argument, the bound and the value, never a process abort.
 */
export const FAISS_LIMITS = Object.freeze({
  /** Largest vector dimension of an index (`create`'s d) and of a transform's output. */
  maxDimension: 65536,
  /** Largest `k` of a search. Rows hold label -1 beyond the stored vectors. */
  maxK: 1 << 20,
  /** Largest number of results of one search call, queries × k (2^27). */
  maxResultEntries: 2 ** 27,
  /** Largest number of floats one reconstruct / searchAndReconstruct call returns (2^28, 1 GiB). */
  maxVectorFloats: 2 ** 28,
  /** Largest HNSW efSearch (per call) and efSearch / efConstruction stored in a file. */
  maxEfSearch: 1 << 20,
  /** Largest IVF nlist (descriptions and files) and per-call nprobe. */
  maxNlist: 1 << 22,
  /** Smallest HNSW M (links per node) in a description. */
  minHnswM: 2,
  /** Largest HNSW M in a description. */
  maxHnswM: 1024,
  /** Largest PQ bits per code (`PQ{m}x{nbits}`). */
  maxPqBits: 16,
  /** Largest PQ codebook (d × 2^nbits), transform matrix or HNSW-PQ distance table, in floats (2^28). */
  maxTableFloats: 2 ** 28,
  /** Deepest nesting of indexes inside indexes (descriptions and files). */
  maxNesting: 8,
  /** Most vector transforms in front of an index. */
  maxTransforms: 16,
});

/** The keys of {@link FAISS_LIMITS}. */
export type FaissLimits = { readonly [K in keyof typeof FAISS_LIMITS]: number };

/** Search output: nq × k rows, best first. Distances are inner products (higher = more similar). */
export interface FaissSearchResult {
  distances: Float32Array;
  /** Stored ids; -1 where fewer than k results exist. */
  labels: BigInt64Array;
}

/** {@link FaissSearchResult} plus the (possibly approximate) stored vectors, nq × k × d. */
export interface FaissSearchReconstructResult extends FaissSearchResult {
  vectors: Float32Array;
}

interface NativeIndex {
  readonly d: number;
  readonly ntotal: number;
  readonly isTrained: boolean;
  readonly metric: string;
  readonly info: FaissIndexInfo;
  train(x: Float32Array): Promise<string>;
  add(x: Float32Array, ids?: BigInt64Array): Promise<void>;
  search(x: Float32Array, k: number, knobs?: FaissSearchKnobs): Promise<FaissSearchResult>;
  searchAndReconstruct(x: Float32Array, k: number, knobs?: FaissSearchKnobs): Promise<FaissSearchReconstructResult>;
  removeIds(ids: BigInt64Array): number;
  mergeFrom(other: NativeIndex, addId: number): void;
  reconstruct(ids: BigInt64Array): Float32Array;
  write(file: string): Promise<void>;
  trainedFingerprint(): string;
  reserve(n: number): void;
  dispose(): void;
}

interface NativeModule {
  FaissIndex: {
    new (d: number, description: string): NativeIndex;
    read(file: string): Promise<NativeIndex>;
    setNumThreads(n: number): void;
    getNumThreads(): number;
  };
  simd: string;
  limits: FaissLimits;
}

let cached: NativeModule | undefined;

/** The command that builds the addon on a machine without a usable prebuilt. */
export const BUILD_NATIVE_COMMAND = "npx langchain-dpr build-native";

/** Where an addon was found: an explicit path, the package's prebuilt, or a local build. */
export type FaissAddonSource = "env" | "prebuilt" | "local-build";

/** One place the addon was found at. */
export interface FaissAddonCandidate {
  source: FaissAddonSource;
  file: string;
}

/** Options of {@link resolveFaissAddon} (all default to this process's values). */
export interface ResolveFaissAddonOptions {
  /** The folder holding `prebuilds/` and `src/native/build/` (default: this package's root). */
  packageRoot?: string;
  /** Environment read for `LANGCHAIN_DPR_FAISS_ADDON` (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

const LOCAL_BUILD = ["src", "native", "build", "Release", "faiss_dpr.node"] as const;

/** The installed package's root: the nearest folder above this file whose package.json is langchain-dpr's. */
export function faissPackageRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = path.dirname(dir)) {
    const pj = path.join(dir, "package.json");
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, "utf8")) as { name?: string }).name === "langchain-dpr") return dir;
      } catch {
        // not a readable package.json: keep climbing
      }
    }
    if (path.dirname(dir) === dir) break;
  }
  return path.resolve(here, "..", "..");
}

/** "linux-x64 (glibc 2.36)", "linux-x64 (musl or another non-glibc libc)", "darwin-arm64". */
export function describeNativePlatform(): string {
  const tuple = `${process.platform}-${process.arch}`;
  if (process.platform !== "linux") return tuple;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  const glibc = header?.glibcVersionRuntime;
  return glibc ? `${tuple} (glibc ${glibc})` : `${tuple} (musl or another non-glibc libc)`;
}

interface NodeGypBuild {
  path?: (dir: string) => string;
  resolve?: (dir: string) => string;
}

/** node-gyp-build's resolver, or the reason it is unavailable. */
function nodeGypBuild(): NodeGypBuild | string {
  try {
    return createRequire(import.meta.url)("node-gyp-build") as NodeGypBuild;
  } catch (e) {
    return `node-gyp-build is not installed (${(e as Error).message.split("\n")[0]})`;
  }
}

/**
 * The places the addon exists at, in load order (LANGCHAIN_DPR_FAISS_ADDON, the prebuilt for this
 * platform, the local build), plus a note for each place looked at in vain. Nothing is loaded.
 */
export function findFaissAddons(options: ResolveFaissAddonOptions = {}): { found: FaissAddonCandidate[]; missing: string[] } {
  const root = path.resolve(options.packageRoot ?? faissPackageRoot());
  const env = options.env ?? process.env;
  const found: FaissAddonCandidate[] = [];
  const missing: string[] = [];

  const explicit = env.LANGCHAIN_DPR_FAISS_ADDON;
  if (explicit) {
    if (existsSync(explicit)) found.push({ source: "env", file: path.resolve(explicit) });
    else missing.push(`LANGCHAIN_DPR_FAISS_ADDON=${explicit} does not exist`);
  }

  const tuple = `${process.platform}-${process.arch}`;
  const ngb = nodeGypBuild();
  const resolvePrebuild = typeof ngb === "string" ? undefined : (ngb.path ?? ngb.resolve);
  if (!resolvePrebuild) {
    missing.push(`prebuilt: ${typeof ngb === "string" ? ngb : "node-gyp-build has no resolver"}`);
  } else {
    try {
      // node-gyp-build looks at <root>/build/Release before prebuilds/ (the package has none there).
      const file = resolvePrebuild(root);
      found.push({ source: file.split(path.sep).includes("prebuilds") ? "prebuilt" : "local-build", file });
    } catch {
      // node-gyp-build's libc: LIBC, else musl on Alpine, else glibc (prebuilds are tagged glibc).
      const libc = process.platform === "linux" ? ` ${process.env.LIBC || (existsSync("/etc/alpine-release") ? "musl" : "glibc")}` : "";
      missing.push(`prebuilt: none for ${tuple}${libc} in ${path.join(root, "prebuilds")}`);
    }
  }

  const local = path.join(root, ...LOCAL_BUILD);
  if (existsSync(local)) found.push({ source: "local-build", file: local });
  else missing.push(`local build: ${local} does not exist`);
  return { found, missing };
}

/**
 * Loads the first addon that loads: LANGCHAIN_DPR_FAISS_ADDON, the prebuilt for this platform,
 * the local build. When none does, the Error names the platform, each place looked at and why it
 * failed, and the fix (`npx langchain-dpr build-native`).
 */
export function resolveFaissAddon(options: ResolveFaissAddonOptions = {}): { source: FaissAddonSource; file: string; addon: NativeModule } {
  const { found, missing } = findFaissAddons(options);
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  for (const c of found) {
    try {
      return { ...c, addon: require(c.file) as NativeModule };
    } catch (e) {
      failures.push(`${c.source} ${c.file} failed to load: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  const platform = describeNativePlatform();
  const prebuiltNote =
    process.platform === "linux" && process.arch === "x64"
      ? ""
      : ` langchain-dpr ships a prebuilt addon for linux-x64 (glibc) only; ${process.platform}-${process.arch} is untested.`;
  throw new Error(
    `langchain-dpr: no usable faiss addon for ${platform}.${prebuiltNote}\n` +
      [...failures, ...missing].map((m) => `  - ${m}`).join("\n") +
      `\nBuild it for this machine with: ${BUILD_NATIVE_COMMAND} ` +
      `(needs faiss and OpenBLAS development files and a C++ toolchain; on Debian/Ubuntu: ` +
      `apt-get install libfaiss-dev libopenblas0-openmp build-essential python3).`,
  );
}

let loadedFrom: FaissAddonCandidate | undefined;

/** Where the addon in use was loaded from (loading it first if needed), for diagnostics. */
export function faissAddonLocation(): FaissAddonCandidate {
  loadFaissAddon();
  return loadedFrom!;
}

/** Loads the native addon once (see {@link resolveFaissAddon}); a clear Error says how to build it when none loads. */
export function loadFaissAddon(): NativeModule {
  if (cached) return cached;
  const { source, file, addon } = resolveFaissAddon();
  loadedFrom = { source, file };
  cached = addon;
  return cached;
}

/** The bounds the loaded addon enforces (equal to {@link FAISS_LIMITS} for an addon built from this package's source). */
export function faissAddonLimits(): FaissLimits {
  return loadFaissAddon().limits;
}

/** Which SIMD kernel the addon's flat inner-product search uses on this CPU ("avx2+fma" or "none"). */
export function faissSimdKernel(): string {
  return loadFaissAddon().simd;
}

/**
 * One faiss index (inner-product metric) with 64-bit ids.
 *
 * Created with {@link FaissIndex.create} (faiss index_factory syntax: "Flat", "IVF256,Flat",
 * "HNSW32", "IVF256,PQ16np", "OPQ16,IVF256,PQ16np", "IVF256,SQ8", ...) or {@link FaissIndex.read}.
 * Descriptions are checked before faiss sees them (PQ m ≥ 1 dividing d, 1..16 bits, HNSW M in 2..1024,
 * IVF nlist in 1..2^22, transform sizes; only the kinds the checked reader can load), and files are checked
 * before and after faiss reads them; see {@link FAISS_LIMITS} for the other bounds.
 * Non-IVF indexes are wrapped in an IndexIDMap2 so ids survive removals; IVF indexes store ids
 * in their inverted lists. Files written by {@link FaissIndex.write} are plain faiss files
 * (Python's faiss.read_index and faiss-node's Index.read open them).
 */
export class FaissIndex {
  private tail: Promise<unknown> = Promise.resolve();
  private disposed = false;

  private constructor(private readonly native: NativeIndex) {}

  /**
   * Creates an empty inner-product index from a faiss index_factory description. `d` must be an integer in
   * 1..{@link FAISS_LIMITS}.maxDimension; a description with numbers faiss cannot use (PQ0, PQ4x0, HNSW0,
   * IVF0,Flat, an m that does not divide d, ...) or of a kind the checked reader does not load is an Error
   * naming the part, the valid values and the value given.
   */
  static create(d: number, description: string): FaissIndex {
    if (typeof d !== "number" || !Number.isInteger(d) || d < 1 || d > FAISS_LIMITS.maxDimension) {
      throw new RangeError(`FaissIndex.create: d (dimension) must be an integer in 1..${FAISS_LIMITS.maxDimension}, got ${String(d)}`);
    }
    if (typeof description !== "string") {
      throw new TypeError(`FaissIndex.create: description must be a string (faiss index_factory syntax), got ${typeof description}`);
    }
    const addon = loadFaissAddon();
    return new FaissIndex(new addon.FaissIndex(d, description));
  }

  /**
   * Reads a faiss index file (off the event loop). The file is walked first (every announced size against the
   * file size and the other fields, before faiss allocates), then read by faiss, then its contents are checked
   * (HNSW graph, IVF lists and ids, id maps). Missing, truncated, damaged or unsupported files reject with an
   * Error naming the file, the structure and field, what was expected and what was found.
   */
  static async read(file: string): Promise<FaissIndex> {
    const addon = loadFaissAddon();
    return new FaissIndex(await addon.FaissIndex.read(file));
  }

  /**
   * Sets the number of OpenMP threads faiss (and OpenBLAS) use process-wide, an integer from 1 to
   * max(16, 4 × the CPU count). 1 suits single-query serving on a busy box.
   */
  static setNumThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`FaissIndex.setNumThreads: n must be an integer ≥ 1, got ${n}`);
    loadFaissAddon().FaissIndex.setNumThreads(n);
  }

  /** Current OpenMP thread count. */
  static getNumThreads(): number {
    return loadFaissAddon().FaissIndex.getNumThreads();
  }

  private live(): NativeIndex {
    if (this.disposed) throw new Error("FaissIndex: the index was disposed");
    return this.native;
  }

  /** Runs fn after every earlier call on this index has settled. */
  private enqueue<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Vector dimension. */
  get d(): number {
    return this.live().d;
  }
  /** Number of stored vectors (including any the store has tombstoned). */
  get ntotal(): number {
    return this.live().ntotal;
  }
  /** Whether the index can take vectors (training done or not needed). */
  get isTrained(): boolean {
    return this.live().isTrained;
  }
  /** "inner_product" for indexes created here; files from elsewhere may say "l2". */
  get metric(): string {
    return this.live().metric;
  }
  /** Structure summary (kind, nlist, default nprobe / efSearch, whether removal works). */
  get info(): FaissIndexInfo {
    return this.live().info;
  }

  /** Trains on n × d vectors; resolves to a fingerprint of the trained (empty) index. */
  train(x: Float32Array): Promise<string> {
    return this.enqueue(() => this.live().train(x));
  }

  /** Adds n × d vectors with their ids. `x` and `ids` must not be modified until the promise settles. */
  add(x: Float32Array, ids?: BigInt64Array): Promise<void> {
    return this.enqueue(() => this.live().add(x, ids));
  }

  /**
   * k nearest by inner product for nq × d queries. `k` is an integer in 1..{@link FAISS_LIMITS}.maxK and
   * nq × k at most {@link FAISS_LIMITS}.maxResultEntries; rows hold label -1 beyond the stored vectors.
   */
  search(x: Float32Array, k: number, knobs?: FaissSearchKnobs): Promise<FaissSearchResult> {
    return this.enqueue(() => this.live().search(x, k, knobs ?? {}));
  }

  /** Like {@link search}, also returning the stored vectors of the hits (approximate for PQ/SQ). */
  searchAndReconstruct(x: Float32Array, k: number, knobs?: FaissSearchKnobs): Promise<FaissSearchReconstructResult> {
    return this.enqueue(() => this.live().searchAndReconstruct(x, k, knobs ?? {}));
  }

  /** Removes vectors by id; resolves to how many were removed. Rejects for HNSW (faiss cannot). */
  removeIds(ids: BigInt64Array): Promise<number> {
    return this.enqueue(() => this.live().removeIds(ids));
  }

  /**
   * Moves all vectors of `other` into this index, adding `addId` to their ids (`other` is left
   * empty). faiss requires the same structure and, for trained indexes, the same training.
   */
  mergeFrom(other: FaissIndex, addId: number): Promise<void> {
    return this.enqueue(() => other.enqueue(() => this.live().mergeFrom(other.live(), addId)));
  }

  /** Stored vectors for the given ids (n × d; approximate for PQ/SQ). */
  reconstruct(ids: BigInt64Array): Promise<Float32Array> {
    return this.enqueue(() => this.live().reconstruct(ids));
  }

  /** Writes a plain faiss index file (fsynced). Callers wanting atomicity write to a temp name and rename. */
  write(file: string): Promise<void> {
    return this.enqueue(() => this.live().write(file));
  }

  /** Fingerprint of an empty index's training (equal fingerprints → vectors can be merged as codes). */
  trainedFingerprint(): Promise<string> {
    return this.enqueue(() => this.live().trainedFingerprint());
  }

  /**
   * Pre-sizes flat storage (and id maps) for `n` vectors in total, so a bulk load avoids the
   * grow-and-copy of the storage vector (peak memory ≈ raw bytes instead of up to 2×).
   */
  reserve(n: number): Promise<void> {
    return this.enqueue(() => this.live().reserve(n));
  }

  /** Frees the native index after pending calls finish. Further calls throw. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.enqueue(() => {
      this.native.dispose();
      this.disposed = true;
    });
  }
}

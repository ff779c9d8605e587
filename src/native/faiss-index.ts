/**
 * Typed wrapper over langchain-dpr's own faiss addon (src/native/faiss_dpr.cc, built by
 * scripts/build-native.sh against the system libfaiss).
 *
 * - Vectors cross as Float32Array (row-major, n × d) and ids as BigInt64Array, without copies.
 * - train / add / search / write / read run on libuv's thread pool: the event loop stays free.
 * - Calls on one index are serialised by a promise queue, so a buffer handed to one call is never
 *   read while another call mutates the index, and synchronous calls never wait on a native lock.
 * - Every faiss error is a JavaScript Error ("FaissIndex.<operation>: ...").
 *
 * @module
 */
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
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
  /** IVF: number of inverted lists to probe (1..nlist). */
  nprobe?: number;
  /** HNSW: size of the dynamic candidate list (≥ k is sensible). */
  efSearch?: number;
}

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
}

let cached: NativeModule | undefined;

/**
 * Where the addon may be: `LANGCHAIN_DPR_FAISS_ADDON`, beside this file (src/native/build), or,
 * when this file runs compiled from dist/native, in the package's src/native/build.
 */
function addonCandidates(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const list = [
    process.env.LANGCHAIN_DPR_FAISS_ADDON,
    path.join(here, "build", "Release", "faiss_dpr.node"),
    path.resolve(here, "..", "..", "src", "native", "build", "Release", "faiss_dpr.node"),
  ];
  return list.filter((p): p is string => typeof p === "string" && p.length > 0);
}

/** Loads the native addon once; a clear Error says how to build it when it is missing. */
export function loadFaissAddon(): NativeModule {
  if (cached) return cached;
  const candidates = addonCandidates();
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `faiss_dpr: native addon not built (looked in ${candidates.join(", ")}); ` +
        `run "bash scripts/build-native.sh" (needs libfaiss-dev and build tools)`,
    );
  }
  const require = createRequire(import.meta.url);
  cached = require(found) as NativeModule;
  return cached;
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
 * Non-IVF indexes are wrapped in an IndexIDMap2 so ids survive removals; IVF indexes store ids
 * in their inverted lists. Files written by {@link FaissIndex.write} are plain faiss files
 * (Python's faiss.read_index and faiss-node's Index.read open them).
 */
export class FaissIndex {
  private tail: Promise<unknown> = Promise.resolve();
  private disposed = false;

  private constructor(private readonly native: NativeIndex) {}

  /** Creates an empty inner-product index from a faiss index_factory description. */
  static create(d: number, description: string): FaissIndex {
    if (!Number.isInteger(d) || d <= 0) throw new Error(`FaissIndex: dimension must be a positive integer, got ${d}`);
    const addon = loadFaissAddon();
    return new FaissIndex(new addon.FaissIndex(d, description));
  }

  /** Reads a faiss index file (off the event loop). Missing, truncated or garbage files reject with a clear Error. */
  static async read(file: string): Promise<FaissIndex> {
    const addon = loadFaissAddon();
    return new FaissIndex(await addon.FaissIndex.read(file));
  }

  /** Sets the number of OpenMP threads faiss (and OpenBLAS) use process-wide. 1 suits single-query serving on a busy box. */
  static setNumThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new Error(`FaissIndex: threads must be an integer ≥ 1, got ${n}`);
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

  /** k nearest by inner product for nq × d queries. */
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

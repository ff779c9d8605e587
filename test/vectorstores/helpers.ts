/**
 * Test helpers for the FAISS store: a seeded PRNG, clustered unit vectors, exact top-k, and a
 * small deterministic Embeddings (hashed bag of words → unit vector) so no model is needed.
 */
import { Embeddings } from "@langchain/core/embeddings";
import { vi } from "vitest";
import { seededUniform } from "../../src/utils/random.js";

export const rng = seededUniform;

/** Standard normal via Box–Muller. */
export function gauss(r: () => number): number {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

/** n unit vectors around `clusters` random centres (noise σ per component), row-major. */
export function clustered(n: number, d: number, clusters: number, seed: number, noise = 0.35): Float32Array {
  const r = rng(seed);
  const centres = new Float32Array(clusters * d);
  for (let i = 0; i < centres.length; i++) centres[i] = gauss(r);
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * clusters);
    let norm = 0;
    for (let j = 0; j < d; j++) {
      const v = centres[c * d + j]! / Math.sqrt(d) + (noise * gauss(r)) / Math.sqrt(d);
      out[i * d + j] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    for (let j = 0; j < d; j++) out[i * d + j]! /= norm;
  }
  return out;
}

/** Exact inner-product top-k labels (row positions) for each query. */
export function exactTopK(base: Float32Array, queries: Float32Array, d: number, k: number): number[][] {
  const n = base.length / d;
  const nq = queries.length / d;
  const out: number[][] = [];
  for (let q = 0; q < nq; q++) {
    const scores: Array<[number, number]> = [];
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += base[i * d + j]! * queries[q * d + j]!;
      scores.push([s, i]);
    }
    scores.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    out.push(scores.slice(0, k).map((x) => x[1]));
  }
  return out;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Deterministic embeddings: each token hashes to a seeded random direction; the text vector is their normalised sum. */
export class HashEmbeddings extends Embeddings {
  constructor(readonly dim = 16) {
    super({});
  }
  private vector(text: string): number[] {
    const v = new Array<number>(this.dim).fill(0);
    for (const tok of text.toLowerCase().split(/\W+/).filter(Boolean)) {
      let h = 2166136261;
      for (let i = 0; i < tok.length; i++) h = Math.imul(h ^ tok.charCodeAt(i), 16777619);
      const r = rng(h);
      for (let j = 0; j < this.dim; j++) v[j]! += gauss(r);
    }
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
    return v.map((x) => x / norm);
  }
  async embedDocuments(texts: string[]): Promise<number[][]> {
    return texts.map((t) => this.vector(t));
  }
  async embedQuery(text: string): Promise<number[]> {
    return this.vector(text);
  }
}

/** Rows of a row-major matrix. */
export function rows(data: Float32Array, d: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i < data.length; i += d) out.push(data.subarray(i, i + d));
  return out;
}

/** Runs `fn` with console.warn captured: its result and the warnings it printed (first argument of each). */
export async function withWarnings<T>(fn: () => Promise<T>): Promise<{ result: T; warnings: string[] }> {
  const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
  try {
    const result = await fn();
    return { result, warnings: warn.mock.calls.map((c) => String(c[0])) };
  } finally {
    warn.mockRestore();
  }
}

/**
 * Vector shapes for FaissDPRStore: rows or one row-major Float32Array in, one Float32Array out,
 * validated (dimension, finiteness) before anything reaches faiss.
 *
 * @module
 */
import type { VectorRows } from "./types.js";

export const OWNER = "FaissDPRStore";

/** A row-major n × d matrix. */
export interface Matrix {
  data: Float32Array;
  n: number;
  d: number;
}

/**
 * Packs rows into one Float32Array (n × d), validating shape; a Float32Array passes through (it
 * needs the store's dimension `dims`). Rows are copied, never modified.
 */
export function toMatrix(vectors: VectorRows, dims: number | undefined, what: string): Matrix {
  if (vectors instanceof Float32Array) {
    if (vectors.length === 0) throw new Error(`${OWNER}.${what}: no vectors given`);
    if (dims === undefined) {
      throw new Error(`${OWNER}.${what}: a flat Float32Array needs the store's dimension (set params.dimensions)`);
    }
    if (vectors.length % dims !== 0) {
      throw new Error(`${OWNER}.${what}: Float32Array of ${vectors.length} values is not a multiple of the dimension ${dims}`);
    }
    return { data: vectors, n: vectors.length / dims, d: dims };
  }
  if (!Array.isArray(vectors) || vectors.length === 0) throw new Error(`${OWNER}.${what}: no vectors given`);
  const d = dims ?? vectors[0]!.length;
  if (d === 0) throw new Error(`${OWNER}.${what}: vector 0 is empty`);
  const data = new Float32Array(vectors.length * d);
  vectors.forEach((row, i) => {
    if (row.length !== d) {
      throw new Error(`${OWNER}.${what}: vector ${i} has ${row.length} dimensions, expected ${d}${dims ? " (store dimension)" : ""}`);
    }
    data.set(row, i * d);
  });
  return { data, n: vectors.length, d };
}

/** Throws naming the vector and component of the first NaN or ±Infinity. */
export function checkFinite(data: ArrayLike<number>, d: number, what: string, owner = OWNER): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) {
      throw new Error(`${owner}.${what}: vector ${Math.floor(i / d)} has a non-finite value (${v}) at component ${i % d}`);
    }
  }
}

/** Views of the rows of a row-major matrix (no copies). */
export function rowViews(data: Float32Array, d: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i < data.length; i += d) out.push(data.subarray(i, i + d));
  return out;
}

/** Inner product of two equal-length vectors. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * A small LRU cache with a per-entry time-to-live, and the helpers that build stable cache keys
 * for retrieval queries (normalised query text + k + filter as stable JSON + index version).
 *
 * @module
 */

/** Parameters of {@link LRUCache}. */
export interface LRUCacheParams {
  /** Maximum number of entries; the least recently used entry is evicted beyond it. Default 1000. */
  maxEntries?: number;
  /** Time-to-live in milliseconds; `0` or `Infinity` = entries never expire. Default 300 000 (5 min). */
  ttlMs?: number;
  /** Clock in milliseconds (injectable for tests). Default `Date.now`. */
  now?: () => number;
}

interface Entry<V> {
  value: V;
  expiresAt: number;
}

/**
 * Least-recently-used cache with TTL. A `Map` keeps insertion order, so re-inserting on access
 * makes the first key the least recently used one. Expired entries are dropped when touched.
 */
export class LRUCache<V> {
  maxEntries = 1000;

  ttlMs = 300_000;

  private readonly now: () => number;

  private readonly map = new Map<string, Entry<V>>();

  constructor(params: LRUCacheParams = {}) {
    this.maxEntries = params.maxEntries ?? this.maxEntries;
    this.ttlMs = params.ttlMs ?? this.ttlMs;
    this.now = params.now ?? Date.now;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) {
      throw new Error(`LRUCache: maxEntries must be an integer ≥ 1, got ${this.maxEntries}`);
    }
    if (!(this.ttlMs >= 0)) throw new Error(`LRUCache: ttlMs must be ≥ 0, got ${this.ttlMs}`);
  }

  /** Number of entries currently held (expired ones not yet touched included). */
  get size(): number {
    return this.map.size;
  }

  /** Returns the live value for `key` and marks it most recently used, or undefined. */
  get(key: string): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= this.now()) {
      this.map.delete(key);
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  /** Stores `value` under `key` (most recently used), evicting the least recently used beyond maxEntries. */
  set(key: string, value: V): void {
    const ttl = this.ttlMs === 0 ? Infinity : this.ttlMs;
    this.map.delete(key);
    this.map.set(key, { value, expiresAt: this.now() + ttl });
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
    }
  }

  /** Whether a live entry exists (does not change recency). */
  has(key: string): boolean {
    const e = this.map.get(key);
    return e !== undefined && e.expiresAt > this.now();
  }

  delete(key: string): boolean {
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }
}

/**
 * Normalises a query for cache keys: trims, collapses runs of whitespace into one space, and
 * lower-cases unless `caseSensitive`. Also applies Unicode NFC so composed/decomposed forms match.
 */
export function normalizeQuery(query: string, caseSensitive = false): string {
  const q = query.normalize("NFC").trim().replace(/\s+/gu, " ");
  return caseSensitive ? q : q.toLowerCase();
}

/**
 * JSON with object keys sorted recursively, so `{a:1,b:2}` and `{b:2,a:1}` give the same string.
 * Throws for values JSON cannot represent faithfully (functions, symbols, bigint, non-finite numbers).
 */
export function stableStringify(value: unknown): string {
  const walk = (v: unknown, path: string): string => {
    if (v === null) return "null";
    switch (typeof v) {
      case "string":
      case "boolean":
        return JSON.stringify(v);
      case "number":
        if (!Number.isFinite(v)) throw new Error(`stableStringify: non-finite number at ${path}`);
        return JSON.stringify(v);
      case "undefined":
        return "null";
      case "object": {
        if (Array.isArray(v)) return `[${v.map((x, i) => walk(x, `${path}[${i}]`)).join(",")}]`;
        if (v instanceof Date) return JSON.stringify(v.toISOString());
        const obj = v as Record<string, unknown>;
        const keys = Object.keys(obj)
          .filter((key) => obj[key] !== undefined)
          .sort();
        return `{${keys.map((key) => `${JSON.stringify(key)}:${walk(obj[key], `${path}.${key}`)}`).join(",")}}`;
      }
      default:
        throw new Error(`stableStringify: cannot serialise a ${typeof v} at ${path}`);
    }
  };
  return walk(value, "$");
}

/**
 * The one metadata-filter rule of langchain-dpr, used by FaissDPRStore (search, MMR) and by
 * HybridRetriever (its sparse side):
 *
 * - no filter (`undefined` or `null`): every document passes;
 * - a function: a predicate over the document; it passes when the function returns a truthy value;
 * - an object: the document passes when, for every key of the filter, `doc.metadata[key]` is
 *   deep-equal to the filter's value ({@link deepEqual});
 * - anything else (a string, a number, an array) is an error.
 *
 * @module
 */
import type { DocumentInterface } from "@langchain/core/documents";

/**
 * A metadata filter: `{ key: value, ... }` (every key deep-equal to the document's metadata value),
 * or a predicate over the document.
 */
export type MetadataFilter = Record<string, unknown> | ((doc: DocumentInterface) => boolean);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Own keys whose value is not `undefined` (JSON drops those, so a saved and reloaded store agrees). */
function definedKeys(o: Record<string, unknown>): string[] {
  return Object.keys(o).filter((key) => o[key] !== undefined);
}

/**
 * Structural equality of metadata values:
 * - numbers, strings, booleans, null, undefined: SameValueZero (`NaN` equals `NaN`, `0` equals `-0`);
 * - arrays: same length and deep-equal items in order (an array never equals a non-array object);
 * - Dates: the same instant;
 * - other objects: the same keys and deep-equal values, in any key order; a key whose value is
 *   `undefined` counts as absent (as after a JSON round trip).
 */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b || (Number.isNaN(a) && Number.isNaN(b))) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => deepEqual(item, b[i]));
  }
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  }
  const oa = a as Record<string, unknown>;
  const ob = b as Record<string, unknown>;
  const ka = definedKeys(oa);
  if (ka.length !== definedKeys(ob).length) return false;
  return ka.every((key) => Object.hasOwn(ob, key) && deepEqual(oa[key], ob[key]));
}

/**
 * Throws unless `filter` is absent, a function, or a plain object.
 * @param owner names the caller in the error (e.g. "FaissDPRStore").
 */
export function checkFilter(filter: unknown, owner: string): asserts filter is MetadataFilter | undefined | null {
  if (filter === undefined || filter === null || typeof filter === "function" || isPlainObject(filter)) return;
  const got = Array.isArray(filter) ? "an array" : filter instanceof Date ? "a Date" : `a ${typeof filter}`;
  throw new Error(`${owner}: filter must be an object of metadata values or a predicate function, got ${got}`);
}

/**
 * Whether `doc` passes `filter` under the rule above.
 * @throws Error when the filter is neither absent, a function, nor a plain object.
 */
export function matchesFilter(filter: unknown, doc: DocumentInterface): boolean {
  if (filter === undefined || filter === null) return true;
  if (typeof filter === "function") return Boolean((filter as (d: DocumentInterface) => unknown)(doc));
  checkFilter(filter, "metadata filter");
  const meta = (doc.metadata ?? {}) as Record<string, unknown>;
  return Object.entries(filter as Record<string, unknown>).every(([key, want]) => deepEqual(meta[key], want));
}

/**
 * The rule for document ids in an add, shared by the stores.
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import type { DocumentInterface } from "@langchain/core/documents";
import { OWNER } from "./matrix.js";

/**
 * Document ids for an add: given ids, else `doc.id`, else a UUID; non-empty strings, unique in the
 * call. Errors name `owner.what` (FaissDPRStore by default; the pgvector store passes its own name).
 */
export function resolveIds(documents: DocumentInterface[], given: string[] | undefined, what: string, owner = OWNER): string[] {
  if (given && given.length !== documents.length)
    throw new Error(`${owner}.${what}: ${documents.length} documents but ${given.length} ids`);
  const ids = documents.map((doc, i) => given?.[i] ?? doc.id ?? randomUUID());
  const seen = new Set<string>();
  ids.forEach((id, i) => {
    if (typeof id !== "string" || id.length === 0)
      throw new Error(`${owner}.${what}: id of document ${i} must be a non-empty string, got ${JSON.stringify(id)}`);
    if (seen.has(id))
      throw new Error(
        `${owner}.${what}: duplicate document id "${id}" within one call (an id may appear once; an id already stored is replaced)`,
      );
    seen.add(id);
  });
  return ids;
}

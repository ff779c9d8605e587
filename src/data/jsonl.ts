import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";

/** One parsed line of a JSON Lines file with its 1-based line number. */
export interface JsonLine {
  value: unknown;
  line: number;
}

/** The start of a line for an error message: at most 80 characters, JSON-quoted. */
export function lineSnippet(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

/**
 * Streams a JSON Lines file one record at a time (never the whole file in memory). Blank lines
 * are skipped; a line that is not valid JSON throws an Error naming `file:line`, what each line
 * should hold, the parser's message and the start of the line.
 *
 * @param path the file to read
 * @param who prefix for error messages (module or class name)
 * @param expected what each line should hold, for error messages (e.g. `a JSON object {"_id", "text"}`)
 */
export async function* readJsonLines(path: string, who = "readJsonLines", expected = "one JSON value"): AsyncGenerator<JsonLine> {
  const input = createReadStream(path, { encoding: "utf8" });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const raw of lines) {
      line++;
      const text = line === 1 ? raw.replace(/^\uFEFF/, "") : raw;
      if (text.trim() === "") continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new Error(
          `${who}: invalid JSON at ${path}:${line} (expected ${expected} per line): ${(err as Error).message}; ` +
            `the line starts ${lineSnippet(text)}`,
        );
      }
      yield { value, line };
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ENOENT") throw new Error(`${who}: file not found: ${path}`);
    throw err;
  } finally {
    lines.close();
    input.destroy();
  }
}

/** Reads a required string field of a JSON object record, with a `file:line` error otherwise. */
export function stringField(
  record: unknown,
  field: string,
  where: string,
  who: string,
  options: { optional?: boolean; allowNumber?: boolean } = {},
): string {
  if (typeof record !== "object" || record === null || Array.isArray(record)) {
    throw new Error(`${who}: expected a JSON object at ${where}, got ${Array.isArray(record) ? "array" : typeof record}`);
  }
  const value = (record as Record<string, unknown>)[field];
  if (typeof value === "string") return value;
  if (options.allowNumber && typeof value === "number" && Number.isFinite(value)) return String(value);
  if ((value === undefined || value === null) && options.optional) return "";
  throw new Error(
    `${who}: field "${field}" at ${where} must be a string, got ${value === undefined ? "nothing (missing)" : JSON.stringify(value)}`,
  );
}

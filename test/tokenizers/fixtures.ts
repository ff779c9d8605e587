/** Shared helpers for tokenizer tests: the committed passage fixtures and the Rust reference. */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Passage {
  id: string;
  title: string;
  text: string;
}

const fixtureDir = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "passages");

export function loadPassages(file: "pubmedqa-300.jsonl" | "hard-cases.jsonl"): Passage[] {
  return readFileSync(join(fixtureDir, file), "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Passage);
}

/** Hugging Face's Rust tokenizer (Node binding, dev dependency): the reference implementation. */
export const rustTokenizers = createRequire(import.meta.url)("tokenizers") as typeof import("tokenizers");

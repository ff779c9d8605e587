/**
 * Writes a randomly initialised DPR model folder (for tests, benchmarks and the demo).
 *
 *   npx tsx scripts/make-random-model.ts --shape bert-base|minilm|tiny --out DIR
 *        [--seed 42] [--vocab-from FILE] [--vocab-size N] [--quantize] [--shared] [--no-safetensors]
 *
 * --vocab-from: a text file (one text per line) or a BEIR corpus.jsonl (title + text); default:
 * the committed PubMedQA fixture passages (test/fixtures/passages/pubmedqa-300.jsonl, MIT).
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { createRandomDPRModel, type RandomModelShape } from "../src/models/model-dir.js";

const BUILT_IN = fileURLToPath(new URL("../test/fixtures/passages/pubmedqa-300.jsonl", import.meta.url));

async function readTexts(path: string): Promise<string[]> {
  const raw = await readFile(path, "utf8");
  const lines = raw.split("\n").filter((l) => l.trim() !== "");
  if (!path.endsWith(".jsonl")) return lines;
  return lines.flatMap((line, i) => {
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`make-random-model: ${path} line ${i + 1} is not JSON`);
    }
    return [o.title, o.text].filter((t): t is string => typeof t === "string" && t !== "");
  });
}

const { values } = parseArgs({
  options: {
    shape: { type: "string", default: "tiny" },
    out: { type: "string" },
    seed: { type: "string", default: "42" },
    "vocab-from": { type: "string" },
    "vocab-size": { type: "string" },
    quantize: { type: "boolean", default: false },
    shared: { type: "boolean", default: false },
    "no-safetensors": { type: "boolean", default: false },
  },
});

if (!values.out) {
  console.error("usage: make-random-model.ts --shape bert-base|minilm|tiny --out DIR [--seed N] [--vocab-from FILE] [--vocab-size N] [--quantize] [--shared]");
  process.exit(2);
}
const shape = values.shape as RandomModelShape;
if (!["bert-base", "minilm", "tiny"].includes(shape)) {
  console.error(`make-random-model: --shape must be bert-base, minilm or tiny, got '${shape}'`);
  process.exit(2);
}
const texts = await readTexts(values["vocab-from"] ?? BUILT_IN);
const t0 = performance.now();
const { config } = await createRandomDPRModel(values.out, {
  shape,
  texts,
  seed: Number(values.seed),
  vocabSize: values["vocab-size"] ? Number(values["vocab-size"]) : undefined,
  quantize: values.quantize,
  shared: values.shared,
  safetensors: !values["no-safetensors"],
});
console.log(
  `wrote ${values.out}: ${shape} (${config.num_hidden_layers} layers, hidden ${config.hidden_size}, vocab ${config.vocab_size}` +
    `${values.quantize ? ", + int8" : ""}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);

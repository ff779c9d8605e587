/**
 * Writes a randomly initialised DPR model folder (for tests, benchmarks and the demo):
 * `langchain-dpr make-random-model` (src/cli/make-random-model.ts).
 *
 *   npx tsx scripts/make-random-model.ts --shape bert-base|minilm|tiny --out DIR
 *        [--seed 42] [--vocab-from FILE] [--vocab-size N] [--quantize] [--shared] [--no-safetensors]
 *
 * --vocab-from: a text file (one text per line) or a BEIR corpus.jsonl (title + text); default:
 * the committed PubMedQA fixture passages (test/fixtures/passages/pubmedqa-300.jsonl, MIT).
 */
import { main } from "../src/cli/dispatch.js";

await main(["make-random-model", ...process.argv.slice(2)]);

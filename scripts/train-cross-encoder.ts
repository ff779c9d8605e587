/**
 * Trains a cross-encoder reranker from qrels positives and mined hard negatives and writes a folder
 * CrossEncoderReranker loads: `langchain-dpr train-cross-encoder` (src/cli/, src/training/cross-encoder-cli.ts).
 * See `--help`.
 *
 *   npx tsx scripts/mine-hard-negatives.ts --dataset datasets/scifact --out scifact-train-bm25.json
 *   npx tsx scripts/train-cross-encoder.ts --data scifact-train-bm25.json --corpus datasets/scifact --out runs/ce-scifact
 */
import { main } from "../src/cli/dispatch.js";

await main(["train-cross-encoder", ...process.argv.slice(2)]);

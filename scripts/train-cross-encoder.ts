/**
 * Trains a cross-encoder reranker from qrels positives and mined hard negatives and writes a folder
 * CrossEncoderReranker loads. See `--help` (src/training/cross-encoder-cli.ts).
 *
 *   npx tsx scripts/mine-hard-negatives.ts --dataset datasets/scifact --out scifact-train-bm25.json
 *   npx tsx scripts/train-cross-encoder.ts --data scifact-train-bm25.json --corpus datasets/scifact --out runs/ce-scifact
 */
import { runCrossEncoderCli } from "../src/training/cross-encoder-cli.js";

process.exitCode = await runCrossEncoderCli(process.argv.slice(2));

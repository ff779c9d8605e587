/**
 * Mines hard negatives for the questions of a BEIR split with BM25 or a dense DPR model and writes
 * DPR JSON. See `--help` (src/training/mining-cli.ts).
 *
 *   npx tsx scripts/mine-hard-negatives.ts --dataset /path/to/scifact --split train --method bm25 \
 *     --skip-top 3 --depth 100 --per-question 10 --out scifact-train-bm25.json
 */
import { runMiningCli } from "../src/training/mining-cli.js";

process.exitCode = await runMiningCli(process.argv.slice(2));

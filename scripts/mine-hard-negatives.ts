/**
 * Mines hard negatives for the questions of a BEIR split with BM25 or a dense DPR model and writes
 * DPR JSON: `langchain-dpr mine` (src/cli/, src/training/mining-cli.ts). See `--help`.
 *
 *   npx tsx scripts/mine-hard-negatives.ts --dataset /path/to/scifact --split train --method bm25 \
 *     --skip-top 3 --depth 100 --per-question 10 --out scifact-train-bm25.json
 */
import { main } from "../src/cli/dispatch.js";

await main(["mine", ...process.argv.slice(2)]);

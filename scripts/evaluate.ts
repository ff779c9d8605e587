/**
 * Evaluates BM25, DPR, hybrid and reranked retrieval on a BEIR folder; writes a Markdown report,
 * a JSON file, SVG plots and optional TREC runs: `langchain-dpr evaluate` (src/cli/, src/eval/evaluate-cli.ts).
 * See `--help`.
 *
 *   npx tsx scripts/evaluate.ts --dataset /path/to/scifact --split test --dpr models/dpr --out eval-results/scifact
 */
import { main } from "../src/cli/dispatch.js";

await main(["evaluate", ...process.argv.slice(2)]);

/**
 * Evaluates BM25, DPR, hybrid and reranked retrieval on a BEIR folder; writes a Markdown report,
 * a JSON file, SVG plots and optional TREC runs. See `--help` (src/eval/evaluate-cli.ts).
 *
 *   npx tsx scripts/evaluate.ts --dataset /path/to/scifact --split test --dpr models/dpr --out eval-results/scifact
 */
import { runEvaluateCli } from "../src/eval/evaluate-cli.js";

process.exitCode = await runEvaluateCli(process.argv.slice(2));

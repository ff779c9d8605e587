/**
 * Fine-tune a DPR dual encoder on a BEIR folder, DPR JSON or JSONL pairs, and write a model folder
 * DPREmbeddings loads: `langchain-dpr train` (src/cli/, src/training/cli.ts); `--help` lists the options.
 *
 *   npx tsx scripts/train-dpr.ts --data data/scifact --dev-fraction 0.1 --init runs/ict/model --out runs/ft --epochs 3
 */
import { main } from "../src/cli/dispatch.js";

await main(["train", ...process.argv.slice(2)]);

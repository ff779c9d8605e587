/**
 * Unsupervised domain pretraining on a corpus alone (inverse cloze task by default, or --mode crop),
 * with the same trainer and options as scripts/train-dpr.ts: `langchain-dpr pretrain`.
 *
 *   npx tsx scripts/pretrain-dpr.ts --data data/scifact --out runs/ict --hidden 256 --layers 4 --heads 4 --ffn 1024 --max-len 128
 */
import { main } from "../src/cli/dispatch.js";

await main(["pretrain", ...process.argv.slice(2)]);

/**
 * Fine-tune a DPR dual encoder on a BEIR folder, DPR JSON or JSONL pairs, and write a model folder
 * DPREmbeddings loads. `npx tsx scripts/train-dpr.ts --help` lists the options; see src/training/cli.ts.
 *
 *   npx tsx scripts/train-dpr.ts --data data/scifact --dev-fraction 0.1 --init runs/ict/model --out runs/ft --epochs 3
 */
import { mainTrainCli } from "../src/training/cli.js";

mainTrainCli();

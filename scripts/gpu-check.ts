/**
 * The GPU check: backend and adapter, agreement with cpu, training-step speed per model shape and
 * batch, and an end-to-end fine-tuning run, written to <out>/report.json. See src/training/gpu-check-cli.ts
 * and `--help`; scripts/gpu/ packs it for a GPU machine without Node.js.
 *
 *   npx tsx scripts/gpu-check.ts --out runs/gpu-check --backend webgpu --data /path/to/scifact
 */
import { mainGpuCheckCli } from "../src/training/gpu-check-cli.js";

mainGpuCheckCli();

/**
 * The GPU check: backend and adapter, agreement with cpu, training-step speed per model shape and
 * batch, and an end-to-end fine-tuning run, written to <out>/report.json: `langchain-dpr gpu-check`
 * (src/training/gpu-check-cli.ts); see `--help`. scripts/gpu/ packs it for a GPU machine without Node.js.
 *
 * Unlike the other scripts this one does not go through the dispatcher (src/cli/dispatch.ts): it is
 * the entry scripts/gpu/build-bundle.sh bundles with esbuild for a machine without node_modules,
 * where the dispatcher's optional-peer check cannot find the (bundled) TF.js packages and its lazy
 * imports would pull every other command (fastify, vega) into the bundle. The exit codes are the
 * same (0, 1, 2): runGpuCheckCli maps errors with the shared runCommandLine.
 *
 *   npx tsx scripts/gpu-check.ts --out runs/gpu-check --backend webgpu --data /path/to/scifact
 */
import { mainGpuCheckCli } from "../src/training/gpu-check-cli.js";

mainGpuCheckCli();

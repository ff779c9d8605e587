/**
 * Whether this test run has the software GPU (Mesa lavapipe, scripts/setup-software-gpu.sh, put on the
 * loader path by vitest.config.ts). Without it the webgpu tests are skipped, except in CI, where its
 * absence is a failure: `npm run setup` installs it.
 */
import { existsSync } from "node:fs";

export const SOFTWARE_GPU = process.env.VK_ICD_FILENAMES !== undefined && existsSync(process.env.VK_ICD_FILENAMES);

export function requireSoftwareGpuInCi(): void {
  if (!SOFTWARE_GPU && process.env.CI) {
    throw new Error("the software GPU (lavapipe) is missing: run `bash scripts/setup-software-gpu.sh` (npm run setup does)");
  }
}

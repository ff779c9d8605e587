import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { defineConfig } from "vitest/config";

// The webgpu tests run on Mesa's lavapipe, a Vulkan driver on the CPU (scripts/setup-software-gpu.sh
// unpacks it into .cache/vulkan-sw). The Vulkan loader is found through LD_LIBRARY_PATH, which the
// dynamic linker reads only when a process starts: it is set here, before the test processes fork.
const softwareGpu = resolve(".cache/vulkan-sw");
if (existsSync(join(softwareGpu, "ok")) && process.env.VK_ICD_FILENAMES === undefined) {
  const lib = join(softwareGpu, "root/usr/lib/x86_64-linux-gnu");
  process.env.LD_LIBRARY_PATH = process.env.LD_LIBRARY_PATH ? `${lib}:${process.env.LD_LIBRARY_PATH}` : lib;
  process.env.VK_ICD_FILENAMES = join(softwareGpu, "lvp_icd.json");
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: "forks",
    // 2-core machines: run test files two at a time at most.
    maxWorkers: 2,
  },
});

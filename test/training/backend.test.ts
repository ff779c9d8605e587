import { describe, expect, it } from "vitest";
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs-core";
import { describeBackend, PINNED_TFJS_VERSION, selectBackend } from "../../src/training/backend.js";

const require = createRequire(import.meta.url);
function installed(spec: string): boolean {
  try {
    require.resolve(spec);
    return true;
  } catch {
    return false;
  }
}

describe("selectBackend", () => {
  it("picks the best backend that loads and logs which one runs", async () => {
    const lines: string[] = [];
    const { info } = await selectBackend({ log: (l) => lines.push(l) });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`backend: ${info.backend}`);
    expect(tf.getBackend()).toBe(info.backend);
    if (!installed("@tensorflow/tfjs-node-gpu") && !installed("@tensorflow/tfjs-node")) {
      // This machine (and CI): no libtensorflow binding, so wasm with SIMD runs.
      expect(info.choice).toBe("wasm");
      expect(info.simd).toBe(true);
      expect(info.threads).toBe(1);
      expect(info.skipped.map((s) => s.choice)).toEqual(["tfjs-node-gpu", "webgpu", "tfjs-node"]);
      // webgpu: no adapter on a machine without a GPU, or only the software one the tests install.
      expect(info.skipped[1].reason).toMatch(/webgpu unavailable: (no GPU adapter found|the only adapter is a software rasteriser)/);
      expect(info.skipped[2].reason).toMatch(/@tensorflow\/tfjs-node is not installed/);
      expect(lines[0]).toMatch(/simd=true, threads=1, fastKernels=true/);
    }
  });

  it("a forced backend that is not installed fails with the reason", async () => {
    if (installed("@tensorflow/tfjs-node")) return; // nothing to check where it is installed
    await expect(selectBackend({ prefer: "tfjs-node", log: false })).rejects.toThrow(
      /selectBackend: tfjs-node unavailable: @tensorflow\/tfjs-node is not installed/,
    );
  });

  it("rejects unknown backend names and bad thread counts", async () => {
    await expect(selectBackend({ prefer: "tpu" as never, log: false })).rejects.toThrow(
      /unknown backend "tpu"; expected one of tfjs-node-gpu, webgpu, tfjs-node, wasm, cpu/,
    );
    await expect(selectBackend({ prefer: "wasm", threads: 0, log: false })).rejects.toThrow(/threads must be a positive integer, got 0/);
  });

  it("switches between cpu and wasm in one process", async () => {
    const cpu = await selectBackend({ prefer: "cpu", log: false });
    expect(cpu.info.backend).toBe("cpu");
    expect(tf.getBackend()).toBe("cpu");
    const wasm = await selectBackend({ prefer: "wasm", fastKernels: false, log: false });
    expect(wasm.info.fastKernels).toBe(false);
    expect(tf.getBackend()).toBe("wasm");
    expect(describeBackend(wasm.info)).toMatch(/fastKernels=false/);
  });

  it("refuses to change the wasm thread count after wasm started", async () => {
    await selectBackend({ prefer: "wasm", log: false });
    await expect(selectBackend({ prefer: "wasm", threads: 2, log: false })).rejects.toThrow(/already initialised with 1 thread\(s\)/);
  });

  it("runs on the tfjs version its wasm internals are pinned to", () => {
    expect(tf.version_core).toBe(PINNED_TFJS_VERSION);
  });
});

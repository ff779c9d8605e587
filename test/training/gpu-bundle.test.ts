/**
 * The GPU bundle (scripts/gpu/build-bundle.sh → run.sh) the way a GPU machine without Node.js uses it:
 * built from this checkout, within the 64 MiB a device call carries, then run from its own Node binary
 * with no node_modules: without a Vulkan driver it fails cleanly saying so; on the software GPU it
 * passes the agreement check and trains, exports and evaluates end to end.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { requireSoftwareGpuInCi, SOFTWARE_GPU } from "./software-gpu.js";
import { syntheticTask, writeSyntheticBeir } from "./synthetic.js";

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

requireSoftwareGpuInCi();

interface Report {
  stages: Record<string, { ok: boolean; error?: string; result?: Record<string, unknown> }>;
}

describe.skipIf(!SOFTWARE_GPU)("GPU bundle", () => {
  let root: string;
  let bundle: string;
  let buildLog: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "dpr-gpu-bundle-"));
    const data = join(root, "beir");
    await writeSyntheticBeir(data, syntheticTask(40, 9));
    const qrels = await readFile(join(data, "qrels", "dev.tsv"), "utf8");
    await writeFile(join(data, "qrels", "test.tsv"), qrels);
    bundle = join(root, "bundle");
    const { stdout, stderr } = await run("bash", ["scripts/gpu/build-bundle.sh", "--data", data, "--out", bundle], {
      cwd: ROOT,
      maxBuffer: 1 << 24,
    });
    buildLog = stdout + stderr;
  }, 300_000);
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("holds Node, Dawn, the bundled check, the data and the Vulkan loader, and fits a device call with the tree", async () => {
    const names = await readdir(bundle);
    expect(names.sort()).toEqual(["MANIFEST.txt", "data.tar.xz", "debs", "gpu-check.mjs.xz", "node.xz", "run.sh", "webgpu"]);
    expect((await readdir(join(bundle, "debs"))).some((d) => d.startsWith("libvulkan1_"))).toBe(true);
    expect((await stat(join(bundle, "node.xz"))).size).toBeGreaterThan(10e6);
    const m = /with the working tree \(([\d.]+) MiB\) ([\d.]+) MiB of the 64 MiB/.exec(buildLog);
    expect(m, buildLog).not.toBeNull();
    expect(Number(m![2])).toBeLessThan(64);
  });

  it("without a Vulkan driver, fails cleanly: exit 1 and a report that says no adapter was found", async () => {
    const out = join(root, "out-none");
    const env = { ...process.env, OUT: out, VK_ICD_FILENAMES: join(root, "no-such-driver.json") };
    const err = await run("bash", [join(bundle, "run.sh"), "--stages", "env"], { env }).then(
      () => undefined,
      (e: { code?: number }) => e,
    );
    expect(err?.code).toBe(1);
    const report = JSON.parse(await readFile(join(out, "report.json"), "utf8")) as Report;
    expect(report.stages["env"]!.ok).toBe(false);
    expect(report.stages["env"]!.error).toMatch(/webgpu unavailable: no GPU adapter found \(Dawn found no Vulkan device\)/);
    expect(await readFile(join(out, "log.txt"), "utf8")).toMatch(/run\.sh: gpu-check exited 1/);
  });

  it("on the software GPU: agrees with cpu, trains from scratch, evaluates on the test split and returns the model in parts", async () => {
    const out = join(root, "out-sw");
    const env = { ...process.env, OUT: out };
    await run("bash", [join(bundle, "run.sh"), "--stages", "env,agree,e2e", "--e2e-shape", "tiny", "--e2e-minutes", "0.3"], {
      env,
      maxBuffer: 1 << 24,
    });
    const report = JSON.parse(await readFile(join(out, "report.json"), "utf8")) as Report;
    expect(report.stages["agree"]!.ok).toBe(true);
    expect(report.stages["e2e"]!.ok, report.stages["e2e"]!.error).toBe(true);
    const test = report.stages["e2e"]!.result!["test"] as Record<string, number>;
    expect(test["recall@100"]).toBeGreaterThan(0);
    const parts = (await readdir(out)).filter((f) => f.startsWith("model.tar.xz.part-"));
    expect(parts.length).toBeGreaterThanOrEqual(1);
  }, 300_000);
});

/**
 * Resume after SIGKILL: a training process (scripts/train-dpr.ts) is killed after its first
 * checkpoint, resumed with --resume, and its final weights compared with an uninterrupted run of the
 * same command. Batch order depends only on (seed, epoch), dropout masks on (seed, step), and the
 * checkpoint holds the exact float32 weights and AdamW moments, so on the same backend (wasm, one
 * thread) the weights must be bit-identical.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSafetensors } from "../../src/models/safetensors.js";
import { checkpointStep, differingTensors, finish, killAfterCheckpoint, runScript } from "./kill-resume.js";
import { syntheticTask, writeSyntheticBeir } from "./synthetic.js";
import { shapeFlags } from "./shape-flags.js";

let dir: string;

function train(out: string, extra: string[] = []): ChildProcess {
  return runScript("scripts/train-dpr.ts", [
    "--data",
    join(dir, "beir"),
    "--out",
    out,
    ...shapeFlags({ hidden: 32, layers: 2, heads: 4, ffn: 64, maxLen: 64, vocabSize: 300 }),
    "--epochs",
    "3",
    "--batch",
    "8",
    "--lr",
    "2e-3",
    "--q-len",
    "16",
    "--p-len",
    "32",
    "--backend",
    "wasm",
    "--checkpoint-every",
    "4",
    "--throttle-ms",
    "250",
    "--no-progress",
    "--seed",
    "9",
    ...extra,
  ]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dpr-resume-"));
  await writeSyntheticBeir(join(dir, "beir"), syntheticTask(40, 2));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("train-dpr --resume after SIGKILL", () => {
  it("loses only the updates after the last checkpoint and ends with weights bit-identical to an uninterrupted run", async () => {
    const reference = join(dir, "reference");
    const interrupted = join(dir, "interrupted");
    const refDone = finish(train(reference));
    // Kill the second run as soon as its first checkpoint (update 4 of 15) is on disk.
    const killed = await killAfterCheckpoint(train(interrupted), interrupted, 4);
    expect(killed.signal).toBe("SIGKILL");
    const stepAtKill = await checkpointStep(interrupted);
    expect(stepAtKill).toBeGreaterThanOrEqual(4);
    expect(stepAtKill).toBeLessThan(15); // it really was interrupted before the end

    const resumed = await finish(train(interrupted, ["--resume"]));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr, resumed.stderr).toMatch(new RegExp(`resumed at update ${stepAtKill}\\)`));
    const done = await refDone;
    expect(done.code, done.stderr).toBe(0);

    for (const file of ["question_encoder/model.safetensors", "passage_encoder/model.safetensors"]) {
      const a = (await readSafetensors(join(reference, "model", file))).tensors;
      const b = (await readSafetensors(join(interrupted, "model", file))).tensors;
      expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
      expect(differingTensors(a, b)).toEqual([]);
    }
    // The log of the resumed run has every update once, with the reference's losses.
    const steps = async (out: string) =>
      (await readFile(join(out, "train-log.jsonl"), "utf8"))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { type: string; step: number; loss: number })
        .filter((r) => r.type === "step");
    const [sa, sb] = [await steps(reference), await steps(interrupted)];
    expect(sb.map((s) => s.step)).toEqual(sa.map((s) => s.step));
    expect(sb.map((s) => s.loss)).toEqual(sa.map((s) => s.loss));
    // The uninterrupted run's weights moved away from the start (the comparison is not trivially true).
    expect(sa[0]!.loss).not.toBe(sa[sa.length - 1]!.loss);
  }, 300_000);
});

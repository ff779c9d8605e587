/**
 * Helpers of the resume-after-SIGKILL tests (resume.test.ts, cross-encoder-resume.test.ts): run a
 * training script as a child process, kill it once its checkpoint has reached an update, and compare
 * final weights bit for bit.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { BertWeights } from "../../src/models/types.js";

const ROOT = join(import.meta.dirname, "..", "..");

/** Starts `node --import tsx <script> ...args` in the repository root (one process: a kill reaches the training). */
export function runScript(script: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
}

/** Waits for the process to exit; its exit code or signal and its stderr. */
export function finish(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += String(d)));
  return new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, stderr })));
}

/** The update count of `<out>/checkpoint/state.json` (0 while there is none). */
export async function checkpointStep(out: string): Promise<number> {
  try {
    return (JSON.parse(await readFile(join(out, "checkpoint", "state.json"), "utf8")) as { step: number }).step;
  } catch {
    return 0;
  }
}

/** SIGKILLs `child` as soon as its checkpoint in `out` holds update `atLeast` (or after 120 s); resolves when it is dead. */
export async function killAfterCheckpoint(child: ChildProcess, out: string, atLeast: number): Promise<{ signal: NodeJS.Signals | null }> {
  const done = finish(child);
  const deadline = Date.now() + 120_000;
  while ((await checkpointStep(out)) < atLeast && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  child.kill("SIGKILL");
  return done;
}

/** Names of the tensors whose bytes differ between `a` and `b` (all of `a`'s names must be in `b`). */
export function differingTensors(a: BertWeights, b: BertWeights): string[] {
  const bytes = (t: { data: Float32Array }) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return [...a].filter(([name, t]) => !b.has(name) || !bytes(t).equals(bytes(b.get(name)!))).map(([name]) => name);
}

/**
 * Shared setup of the sharding tests: a small BEIR corpus written by the test (titled and untitled
 * passages, one with BEIR metadata, lengths from 1 to ~90 words) and tiny random DPR models.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { createRandomDPRModel } from "../../src/testing/index.js";
import { SeededRandom } from "../../src/utils/random.js";

export const ROOT = join(import.meta.dirname, "..", "..");

const WORDS = (
  "scurvy vitamin deficiency protein cell membrane receptor signal gene expression tumour growth insulin glucose " +
  "liver kidney heart blood pressure trial placebo dose patients outcome mortality infection virus antibody"
).split(" ");

/** One corpus record as written to corpus.jsonl. */
export interface CorpusRecord {
  _id: string;
  title: string;
  text: string;
  metadata?: Record<string, unknown>;
}

/** `n` passages: every 5th untitled, passage 3 with BEIR metadata, 1 to ~90 words each. */
export function makeCorpus(n: number, seed = 3): CorpusRecord[] {
  const rng = new SeededRandom(seed);
  return Array.from({ length: n }, (_, i) => {
    const words = Array.from({ length: 1 + rng.int(90) }, () => WORDS[rng.int(WORDS.length)]!);
    const rec: CorpusRecord = { _id: `doc-${i}`, title: i % 5 === 0 ? "" : `${WORDS[i % WORDS.length]} study ${i}`, text: words.join(" ") };
    if (i === 3) rec.metadata = { year: 2001, source: "test" };
    return rec;
  });
}

/** Writes `<dir>/corpus.jsonl` (a BEIR folder) and returns the folder. */
export async function writeCorpus(dir: string, records: CorpusRecord[]): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "corpus.jsonl"), records.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return dir;
}

/** A tiny random DPR model (2 layers × 32) with a vocabulary learnt from the corpus. */
export async function writeTinyModel(dir: string, records: CorpusRecord[], seed = 42): Promise<string> {
  await createRandomDPRModel(dir, { shape: "tiny", texts: records.flatMap((r) => [r.title, r.text]), vocabSize: 200, seed });
  return dir;
}

/** `node --import tsx scripts/encode-shard.ts ...args` in the repository root. */
export function spawnEncodeShard(args: string[]): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", join(ROOT, "scripts", "encode-shard.ts"), ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, LANGCHAIN_DPR_DEBUG: "" },
  });
}

/** Exit code, signal, stdout and stderr of a child process. */
export function finish(
  child: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += String(d)));
  child.stderr!.on("data", (d) => (stderr += String(d)));
  return new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** `rowsDone` of a shard's progress file (0 while there is none). */
export async function progressRows(progressFile: string): Promise<number> {
  try {
    return (JSON.parse(await readFile(progressFile, "utf8")) as { rowsDone: number }).rowsDone;
  } catch {
    return 0;
  }
}

/**
 * Cross-encoder checkpoints through the shared training loop: a `train-cross-encoder` process is
 * SIGKILLed after its first checkpoint, resumed with --resume, and its final weights compared with an
 * uninterrupted run of the same command (wasm, one thread: bit-identical). Also: settings that differ
 * from the checkpoint's are refused by name, and --max-minutes ends a run after the update that
 * crosses it with the export still written.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadBeirDataset } from "../../src/data/beir.js";
import type { TrainingExample } from "../../src/data/types.js";
import { readSafetensors } from "../../src/models/safetensors.js";
import type { BertConfig } from "../../src/models/types.js";
import type { BertTokenizer } from "../../src/tokenizers/bert-tokenizer.js";
import { selectBackend } from "../../src/training/backend.js";
import { CrossEncoderTrainer, type CrossEncoderStepRecord } from "../../src/training/cross-encoder-trainer.js";
import { parseCrossEncoderArgs } from "../../src/training/cross-encoder-cli.js";
import { scratchModel } from "../../src/training/init.js";
import { HardNegativeMiner } from "../../src/training/mining.js";
import { checkpointStep, differingTensors, finish, killAfterCheckpoint, runScript } from "./kill-resume.js";
import { writeMiningFixture } from "./mining-fixture.js";
import { TINY_CROSS_ENCODER } from "./shape-flags.js";

let dir: string;
let beir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ce-resume-"));
  beir = (await writeMiningFixture(join(dir, "beir"), { size: 40, questions: 12, testQuestions: 2 })).dir;
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** 13 groups (12 questions, one with two positives) of 4 per update: 4 updates per epoch, 12 in all. */
function train(out: string, extra: string[] = []): ChildProcess {
  return runScript("scripts/train-cross-encoder.ts", [
    "--data",
    beir,
    "--mine",
    "bm25",
    "--depth",
    "20",
    "--out",
    out,
    ...TINY_CROSS_ENCODER,
    "--max-length",
    "64",
    "--batch",
    "4",
    "--negatives",
    "2",
    "--epochs",
    "3",
    "--lr",
    "2e-3",
    "--dropout",
    "0.1",
    "--seed",
    "9",
    "--backend",
    "wasm",
    "--checkpoint-every",
    "3",
    "--throttle-ms",
    "250",
    "--no-progress",
    ...extra,
  ]);
}

async function stepLosses(out: string): Promise<{ step: number; loss: number }[]> {
  return (await readFile(join(out, "train-log.jsonl"), "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { step: number; loss: number });
}

describe("train-cross-encoder --resume after SIGKILL", () => {
  it("loses only the updates after the last checkpoint and ends with weights bit-identical to an uninterrupted run", async () => {
    const reference = join(dir, "reference");
    const interrupted = join(dir, "interrupted");
    const refDone = finish(train(reference));
    const killed = await killAfterCheckpoint(train(interrupted), interrupted, 3);
    expect(killed.signal).toBe("SIGKILL");
    const stepAtKill = await checkpointStep(interrupted);
    expect(stepAtKill).toBeGreaterThanOrEqual(3);
    expect(stepAtKill).toBeLessThan(12);

    const resumed = await finish(train(interrupted, ["--resume"]));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`12 updates (resumed at update ${stepAtKill})`);
    const done = await refDone;
    expect(done.code, done.stderr).toBe(0);

    const a = (await readSafetensors(join(reference, "model", "model.safetensors"))).tensors;
    const b = (await readSafetensors(join(interrupted, "model", "model.safetensors"))).tensors;
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    expect(differingTensors(a, b)).toEqual([]);
    // The resumed log has every update once, with the reference's losses.
    const [la, lb] = [await stepLosses(reference), await stepLosses(interrupted)];
    expect(lb.map((r) => r.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(lb.map((r) => r.loss)).toEqual(la.map((r) => r.loss));
    expect(la[0]!.loss).not.toBe(la[11]!.loss);
  }, 300_000);
});

describe("CrossEncoderTrainer checkpoints (in process)", () => {
  let examples: TrainingExample[];
  let config: BertConfig;
  let tokenizer: BertTokenizer;
  beforeAll(async () => {
    const data = await loadBeirDataset(beir, "train");
    examples = (await new HardNegativeMiner({ depth: 20, perQuestion: 4 }).mine(data)).examples;
    ({ config, tokenizer } = scratchModel({
      hidden: 32,
      layers: 1,
      heads: 4,
      ffn: 64,
      maxLen: 64,
      vocabSize: 400,
      texts: data.corpus.map((p) => p.text),
      dropout: 0,
    }));
    await selectBackend({ prefer: "wasm", log: false });
  });
  const make = (outputDir: string, extra: Partial<ConstructorParameters<typeof CrossEncoderTrainer>[0]> = {}) =>
    new CrossEncoderTrainer({
      outputDir,
      tokenizer,
      config,
      train: examples,
      batchSize: 4,
      negatives: 2,
      maxSteps: 6,
      maxLength: 64,
      lr: 2e-3,
      seed: 5,
      progress: false,
      ...extra,
    });

  it("refuses to resume with another setting, naming it, and without a checkpoint, naming the folder", async () => {
    const out = join(dir, "settings");
    const first = make(out);
    try {
      await first.train();
    } finally {
      first.dispose();
    }
    const other = make(out, { negatives: 3 });
    await expect(other.train({ resume: true })).rejects.toThrow(
      /CrossEncoderTrainer: cannot resume: negatives is 3 but the checkpoint in .*settings\/checkpoint was made with 2/,
    );
    other.dispose();
    const none = make(join(dir, "no-checkpoint"));
    await expect(none.train({ resume: true })).rejects.toThrow(
      /CrossEncoderTrainer: --resume: no checkpoint in .*no-checkpoint\/checkpoint/,
    );
    none.dispose();
  });

  it("--max-minutes ends the run after the update that crosses it and still exports the model", async () => {
    const out = join(dir, "budget");
    const records: CrossEncoderStepRecord[] = [];
    const trainer = make(out, { maxMinutes: 1e-6, onStep: (r) => records.push(r) });
    try {
      const result = await trainer.train();
      expect(result.steps).toBe(1);
      expect(records).toHaveLength(1);
      const meta = JSON.parse(await readFile(join(result.modelDir, "training.json"), "utf8")) as Record<string, unknown>;
      expect(meta).toMatchObject({ steps: 1, maxMinutes: 1e-6 });
      expect((JSON.parse(await readFile(join(out, "checkpoint", "state.json"), "utf8")) as { step: number }).step).toBe(1);
    } finally {
      trainer.dispose();
    }
  });

  it("parses --checkpoint-every, --resume, --max-minutes and --throttle-ms, refusing bad values by name", () => {
    const base = ["--data", "d.json", "--out", "o", "--hidden", "32"];
    expect(parseCrossEncoderArgs(base)).toMatchObject({ resume: false, checkpointEvery: undefined, maxMinutes: undefined });
    expect(
      parseCrossEncoderArgs([...base, "--checkpoint-every", "50", "--resume", "--max-minutes", "2.5", "--throttle-ms", "10"]),
    ).toMatchObject({
      checkpointEvery: 50,
      resume: true,
      maxMinutes: 2.5,
      throttleMs: 10,
    });
    expect(() => parseCrossEncoderArgs([...base, "--checkpoint-every", "1.5"])).toThrow(
      /--checkpoint-every must be an integer >= 0, got "1.5"/,
    );
    expect(() => parseCrossEncoderArgs([...base, "--max-minutes", "soon"])).toThrow(/--max-minutes must be a number >= 0, got "soon"/);
  });
});

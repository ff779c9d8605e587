/**
 * Training checkpoints, shared by both trainers through {@link runTrainingLoop}: one folder
 * (`<out>/checkpoint/`), replaced atomically, holding
 *
 * - `weights.safetensors`: the model's float32 weights (names chosen by the trainer);
 * - `optimizer.safetensors`: the AdamW moments (`m/<name>`, `v/<name>`);
 * - `state.json`: the position (update, epoch, batch within the epoch, optimiser update count,
 *   length of train-log.jsonl, the epoch's loss sum, dev history and best epoch), the settings
 *   fingerprint a resumed run must match, and fields of the trainer's own.
 *
 * A run resumed from it redoes the lost updates exactly: batch order and dropout masks are
 * functions of (seed, epoch) and (seed, update), and the weights and moments are saved bit for bit.
 *
 * @module
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { readSafetensors, writeSafetensors } from "../models/safetensors.js";
import { replaceDirAtomically } from "../utils/atomic-file.js";
import type { BertWeights } from "../models/types.js";
import { pathExists } from "../utils/fs.js";
import type { EpochRecord } from "./loop.js";
import type { AdamW } from "./optimizer.js";

/** The `format` of state.json (unchanged since the DPR trainer's first checkpoints, which still resume). */
export const CHECKPOINT_FORMAT = "langchain-dpr-train-checkpoint/1";

/** Where a run stands: what {@link runTrainingLoop} needs to continue exactly. */
export interface LoopPosition {
  /** Updates done. */
  step: number;
  /** The epoch in progress (0-based). */
  epoch: number;
  /** The next batch of that epoch. */
  batchInEpoch: number;
  /** AdamW's update count (its bias correction). */
  optimizerIterations: number;
  /** Bytes of train-log.jsonl written up to this point (a resumed run truncates the log there). */
  logBytes: number;
  /** Epoch records so far. */
  history: EpochRecord[];
  bestEpoch?: number;
  bestValue?: number;
  /** Sum and count of the losses of the epoch in progress. */
  epochLossSum: number;
  epochLossCount: number;
}

/** state.json: the position, the settings fingerprint and the trainer's own fields. */
export interface CheckpointState extends LoopPosition {
  format: string;
  /** Settings that must be equal in a resumed run. */
  fingerprint: Record<string, unknown>;
  /** Fields of the trainer's own (the DPR trainer: `seed`, `shared`, `config`, `rng`). */
  readonly [field: string]: unknown;
}

/** A checkpoint read back by {@link readCheckpoint}. */
export interface LoadedCheckpoint {
  dir: string;
  state: CheckpointState;
  /** The model weights, as the trainer named them. */
  weights: BertWeights;
}

/**
 * Reads `dir` for a resumed run and checks it: format, and every fingerprint setting equal to the
 * running one's.
 * @throws Error naming the folder: no checkpoint, another format, or the first setting that differs.
 */
export async function readCheckpoint(dir: string, who: string, fingerprint: Record<string, unknown>): Promise<LoadedCheckpoint> {
  if (!(await pathExists(join(dir, "state.json")))) throw new Error(`${who}: --resume: no checkpoint in ${dir}`);
  const state = JSON.parse(await readFile(join(dir, "state.json"), "utf8")) as CheckpointState;
  if (state.format !== CHECKPOINT_FORMAT)
    throw new Error(`${who}: ${dir}/state.json has format ${state.format}, expected ${CHECKPOINT_FORMAT}`);
  for (const [k, v] of Object.entries(fingerprint)) {
    if (JSON.stringify(state.fingerprint[k]) !== JSON.stringify(v)) {
      throw new Error(
        `${who}: cannot resume: ${k} is ${JSON.stringify(v)} but the checkpoint in ${dir} was made with ` +
          `${JSON.stringify(state.fingerprint[k])}`,
      );
    }
  }
  const { tensors } = await readSafetensors(join(dir, "weights.safetensors"));
  return { dir, state, weights: tensors };
}

/** Restores the AdamW moments and update count of a checkpoint into `optimizer`. */
export async function restoreOptimizer(checkpoint: LoadedCheckpoint, optimizer: AdamW): Promise<void> {
  const path = join(checkpoint.dir, "optimizer.safetensors");
  const { tensors } = await readSafetensors(path);
  optimizer.loadState(tensors, checkpoint.state.optimizerIterations, path);
}

/** What {@link writeCheckpoint} saves. */
export interface CheckpointContent {
  weights: BertWeights;
  optimizer: AdamW;
  state: CheckpointState;
}

/** Writes a checkpoint into `dir`, replacing the previous one atomically (a kill leaves one of the two intact). */
export async function writeCheckpoint(dir: string, content: CheckpointContent): Promise<void> {
  const moments = await content.optimizer.stateTensors();
  await replaceDirAtomically(dir, async (tmp) => {
    await writeSafetensors(join(tmp, "weights.safetensors"), content.weights, { format: "pt" });
    await writeSafetensors(join(tmp, "optimizer.safetensors"), moments, { format: "pt" });
    await writeFile(join(tmp, "state.json"), JSON.stringify(content.state, null, 2) + "\n");
  });
}

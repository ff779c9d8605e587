/**
 * The training loop both trainers run ({@link DPRTrainer}, {@link CrossEncoderTrainer}): epochs of
 * batches → the trainer's loss and gradients → global-norm clipping and AdamW ({@link applyUpdate},
 * inside {@link guardGpuWork}) → train-log.jsonl, callbacks and progress → checkpoints (every N
 * updates and at each epoch's end, {@link writeCheckpoint}) → a dev evaluation per epoch that keeps
 * the best epoch; with a time budget and exact resume. A trainer gives its batches, its loss and
 * its records; everything else is here, once.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import { mkdir, open, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { BertWeights } from "../models/types.js";
import { ProgressBar } from "../utils/progress.js";
import { CHECKPOINT_FORMAT, restoreOptimizer, writeCheckpoint, type LoadedCheckpoint, type LoopPosition } from "./checkpoint.js";
import type { AdamW } from "./optimizer.js";
import { applyUpdate } from "./update.js";
import { guardGpuWork } from "./webgpu.js";

/** The log file of a run, in its output folder: one JSON record per line. */
export const TRAIN_LOG = "train-log.jsonl";
/** The checkpoint folder of a run, in its output folder. */
export const CHECKPOINT_DIR = "checkpoint";

/** What is reported after each epoch (logged, passed to `onEpoch`, kept in the checkpoint). */
export interface EpochRecord {
  type: "epoch";
  epoch: number;
  /** Updates done at the end of the epoch. */
  step: number;
  meanLoss: number;
  /** Dev metrics, when a dev evaluation runs. */
  metrics?: Record<string, number>;
  /** Whether this epoch is the best so far on the dev metric. */
  best: boolean;
}

/** One update's figures, from which the trainer builds its log record. */
export interface UpdateReport {
  /** Updates done, this one included (1-based). */
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Seconds of this update, batch preparation included. */
  seconds: number;
  /** Seconds since this process started the loop. */
  elapsedSec: number;
}

/** The batches of one epoch. */
export interface EpochPlan<B> {
  /** Number of batches. */
  batches: number;
  /** Batch `index` (0-based), built when it is trained on. */
  batch(index: number): B;
}

/** The loop's state as the hooks see it (live: read it when called). */
export interface LoopView {
  readonly step: number;
  readonly totalSteps: number;
  readonly history: readonly EpochRecord[];
  readonly bestEpoch: number | undefined;
}

/** The dev evaluation after each epoch, which selects the best epoch. */
export interface DevEvaluation {
  /** The metric to maximise (a key of `evaluate`'s result). */
  selectMetric: string;
  /** Metrics of the current weights at the end of `epoch`. */
  evaluate(epoch: number, view: LoopView): Promise<Record<string, number>>;
  /** Called after each evaluation: keep the weights of a best epoch (`best` true), discard otherwise. */
  keep(epoch: number, best: boolean, view: LoopView): Promise<void>;
  /** The metrics as printed on the epoch's stderr line (default: every metric). */
  summary?(metrics: Record<string, number>): string;
}

/** Checkpointing of a run (see {@link writeCheckpoint}). */
export interface Checkpointing {
  /** Every N updates as well as at each epoch's end (0: only at epoch ends). */
  every: number;
  /** Settings a resumed run must match (checked by `readCheckpoint`). */
  fingerprint: Record<string, unknown>;
  /** The current weights (read from the device). */
  weights(): Promise<BertWeights>;
  /** The trainer's own fields of state.json. */
  fields?: Record<string, unknown>;
}

/** Parameters of {@link runTrainingLoop}; `B` is a batch, `R` the trainer's step record. */
export interface TrainingLoopParams<B, R extends object> {
  /** Names the trainer in errors and messages. */
  who: string;
  /** Holds train-log.jsonl and checkpoint/. */
  outputDir: string;
  /** Updates of the run and the epochs it may start ({@link runLength}). */
  totalSteps: number;
  maxEpochs: number;
  /** The batches of an epoch (called once per epoch). */
  plan(epoch: number): EpochPlan<B>;
  /** The loss of a batch and the gradient of every optimiser variable, on the device (not read). */
  step(batch: B, step: number): { loss: tf.Scalar; grads: Map<string, tf.Tensor> };
  /** The batch in words, for errors ("batch 8: 32 pairs × 64 tokens"). */
  describeBatch(batch: B): string;
  optimizer: AdamW;
  /** Learning rate of update `step` (0-based). */
  schedule(step: number): number;
  /** Global-norm clipping bound; 0 disables. */
  maxGradNorm: number;
  /** The trainer's log record of an update. */
  record(update: UpdateReport, batch: B): R;
  /** The progress bar's text after an update. */
  progressText(record: R): string;
  checkpoint: Checkpointing;
  /** Continue from this checkpoint (its weights already loaded into the model by the trainer). */
  resume?: LoadedCheckpoint;
  /** Stop after the update that crosses this many minutes (the epoch's end still runs). */
  maxMinutes?: number;
  /** Sleep this long after each update. */
  throttleMs?: number;
  /** Progress bar on stderr (default: tty when stderr is one, else lines); false silences. */
  progress?: boolean | "lines";
  progressLabel?: string;
  dev?: DevEvaluation;
  /** Write epoch records to train-log.jsonl (default true). */
  logEpochs?: boolean;
  onStep?(record: R): void;
  onEpoch?(record: EpochRecord): void;
}

/** What {@link runTrainingLoop} returns. */
export interface TrainingLoopResult {
  /** Updates done in all (a resumed run counts the checkpoint's). */
  steps: number;
  /** Epochs completed. */
  epochs: number;
  history: EpochRecord[];
  bestEpoch?: number;
  /** First and last loss of this process (NaN when no update ran). */
  firstLoss: number;
  lastLoss: number;
  /** The checkpoint's update count when resumed. */
  resumedFromStep?: number;
  /** Seconds in the loop. */
  seconds: number;
}

/**
 * Runs the loop (see the module documentation) until `totalSteps` updates, `maxEpochs` epochs or
 * `maxMinutes`, whichever comes first. With `resume`, restores the AdamW moments, the position and
 * the log, and continues exactly where the checkpoint left off.
 * @throws Error when a loss is not finite (the last checkpoint is intact), when the dev metric is
 * missing, or whatever a hook or the GPU throws ({@link guardGpuWork}).
 */
export async function runTrainingLoop<B, R extends object>(p: TrainingLoopParams<B, R>): Promise<TrainingLoopResult> {
  const { who, optimizer, totalSteps } = p;
  const logPath = join(p.outputDir, TRAIN_LOG);
  await mkdir(p.outputDir, { recursive: true });
  const saved = p.resume?.state;
  if (p.resume && saved) {
    await restoreOptimizer(p.resume, optimizer);
    const log = await open(logPath, "a+");
    await log.truncate(saved.logBytes);
    await log.close();
  } else {
    await writeFile(logPath, "");
  }
  const s: Omit<LoopPosition, "optimizerIterations" | "logBytes"> = {
    step: saved?.step ?? 0,
    epoch: saved?.epoch ?? 0,
    batchInEpoch: saved?.batchInEpoch ?? 0,
    history: [...(saved?.history ?? [])],
    bestEpoch: saved?.bestEpoch,
    bestValue: saved?.bestValue,
    epochLossSum: saved?.epochLossSum ?? 0,
    epochLossCount: saved?.epochLossCount ?? 0,
  };
  const view: LoopView = {
    get step() {
      return s.step;
    },
    totalSteps,
    get history() {
      return s.history;
    },
    get bestEpoch() {
      return s.bestEpoch;
    },
  };
  const progress = new ProgressBar({
    label: p.progressLabel,
    mode: p.progress === false ? "off" : p.progress === "lines" ? "lines" : undefined,
  });
  const appendLog = async (record: object) => {
    const fh = await open(logPath, "a");
    await fh.write(JSON.stringify(record) + "\n");
    await fh.close();
  };
  const saveCheckpoint = async (batchInEpoch: number) => {
    const position: LoopPosition = { ...s, batchInEpoch, optimizerIterations: optimizer.iterations, logBytes: (await stat(logPath)).size };
    const state = { format: CHECKPOINT_FORMAT, ...position, fingerprint: p.checkpoint.fingerprint, ...p.checkpoint.fields };
    await writeCheckpoint(join(p.outputDir, CHECKPOINT_DIR), { weights: await p.checkpoint.weights(), optimizer, state });
  };
  const deadline = p.maxMinutes === undefined ? Infinity : Date.now() + p.maxMinutes * 60_000;
  const startedAt = performance.now();
  let firstLoss = NaN,
    lastLoss = NaN,
    outOfTime = false;

  const endEpoch = async () => {
    const record: EpochRecord = {
      type: "epoch",
      epoch: s.epoch,
      step: s.step,
      meanLoss: s.epochLossSum / Math.max(1, s.epochLossCount),
      best: false,
    };
    if (p.dev) {
      progress.clear();
      const metrics = await p.dev.evaluate(s.epoch, view);
      record.metrics = metrics;
      const value = metrics[p.dev.selectMetric];
      if (value === undefined)
        throw new Error(`${who}: selectMetric '${p.dev.selectMetric}' is not one of ${Object.keys(metrics).join(", ")}`);
      if (s.bestValue === undefined || value > s.bestValue) {
        s.bestValue = value;
        s.bestEpoch = s.epoch;
        record.best = true;
      }
      await p.dev.keep(s.epoch, record.best, view);
      const summary = p.dev.summary
        ? p.dev.summary(metrics)
        : Object.entries(metrics)
            .map(([k, v]) => `${k} ${v.toFixed(4)}`)
            .join(" ");
      process.stderr.write(
        `${who}: epoch ${s.epoch + 1}: loss ${record.meanLoss.toFixed(4)} dev ${summary}${record.best ? " (best)" : ""}\n`,
      );
    }
    s.history.push(record);
    if (p.logEpochs !== false) await appendLog(record);
    p.onEpoch?.(record);
    s.epoch++;
    s.batchInEpoch = 0;
    s.epochLossSum = 0;
    s.epochLossCount = 0;
    await saveCheckpoint(0);
  };

  try {
    while (s.epoch < p.maxEpochs && s.step < totalSteps && !outOfTime) {
      const plan = p.plan(s.epoch);
      if (plan.batches < 1) throw new Error(`${who}: epoch ${s.epoch} has no batches`);
      for (; s.batchInEpoch < plan.batches && s.step < totalSteps && !outOfTime; s.batchInEpoch++) {
        const t0 = performance.now();
        const batch = plan.batch(s.batchInEpoch);
        const index = s.step;
        const lr = p.schedule(index);
        const { loss, gradNorm } = await guardGpuWork(`training update ${index + 1} (${p.describeBatch(batch)})`, () =>
          applyUpdate({ ...p.step(batch, index), optimizer, lr, maxGradNorm: p.maxGradNorm }),
        );
        if (!Number.isFinite(loss))
          throw new Error(`${who}: loss is ${loss} at update ${index + 1}; lower the learning rate (the last checkpoint is intact)`);
        s.step++;
        s.epochLossSum += loss;
        s.epochLossCount++;
        if (Number.isNaN(firstLoss)) firstLoss = loss;
        lastLoss = loss;
        const now = performance.now();
        const record = p.record(
          { step: s.step, epoch: s.epoch, loss, lr, gradNorm, seconds: (now - t0) / 1000, elapsedSec: (now - startedAt) / 1000 },
          batch,
        );
        await appendLog(record);
        p.onStep?.(record);
        progress.update(s.step, totalSteps, p.progressText(record));
        if (p.throttleMs) await new Promise((r) => setTimeout(r, p.throttleMs));
        if (Date.now() >= deadline) {
          outOfTime = true;
          progress.clear();
          process.stderr.write(
            `${who}: the time budget of ${p.maxMinutes} min is spent after update ${s.step}; finishing the epoch's evaluation and export\n`,
          );
        }
        // The checkpoint's position is the next batch.
        if (p.checkpoint.every > 0 && s.step % p.checkpoint.every === 0 && s.step < totalSteps) await saveCheckpoint(s.batchInEpoch + 1);
      }
      await endEpoch();
    }
    return {
      steps: s.step,
      epochs: s.epoch,
      history: s.history,
      bestEpoch: s.bestEpoch,
      firstLoss,
      lastLoss,
      resumedFromStep: saved?.step,
      seconds: (performance.now() - startedAt) / 1000,
    };
  } finally {
    progress.clear();
  }
}

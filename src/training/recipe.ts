/**
 * The rules of a training recipe that both trainers (dual encoder and cross-encoder) share, each
 * in one place: default clipping bounds, how long a run lasts, the warm-up length, and the checks
 * of their options.
 *
 * @module
 */
import { linearSchedule } from "./optimizer.js";

/**
 * Default global-norm clipping bound of each trainer (0 disables clipping).
 *
 * - `dualEncoder: 2.0`: the DPR reference recipe (facebookresearch/DPR, `conf/train/biencoder_nq.yaml`:
 *   `max_grad_norm: 2.0`). In-batch softmax over many passages gives large early gradients that a
 *   tighter bound would slow down.
 * - `crossEncoder: 1.0`: the cross-encoder recipes this trainer follows (sentence-transformers'
 *   `CrossEncoder.fit` and Hugging Face's `Trainer` both default to `max_grad_norm = 1`).
 */
export const DEFAULT_MAX_GRAD_NORM = { dualEncoder: 2.0, crossEncoder: 1.0 } as const;

/** Inputs of {@link runLength}. */
export interface RunLengthParams {
  /** Passes over the data (used when `maxSteps` is not given). */
  epochs: number;
  /** Updates in one epoch (the first epoch's, when epochs differ in size). */
  stepsPerEpoch: number;
  /** Exactly this many updates, however many epochs that takes. */
  maxSteps?: number;
}

/** How long a run lasts. */
export interface RunLength {
  /** Updates of the whole run (the learning-rate schedule spans them). */
  totalSteps: number;
  /** Epochs the run may start (Infinity when `maxSteps` sets the length). */
  maxEpochs: number;
}

/**
 * The one rule for a run's length. Without `maxSteps`: `epochs` passes over the data
 * (`epochs × stepsPerEpoch` updates). With `maxSteps`: exactly `maxSteps` updates, through as many
 * epochs as they need — `maxSteps` overrides `epochs`, as `max_steps` does in Hugging Face's
 * `Trainer`, so a small data set can still be trained for a fixed number of updates.
 */
export function runLength(params: RunLengthParams): RunLength {
  const { epochs, stepsPerEpoch, maxSteps } = params;
  if (maxSteps !== undefined) return { totalSteps: maxSteps, maxEpochs: Infinity };
  return { totalSteps: epochs * stepsPerEpoch, maxEpochs: epochs };
}

/** Inputs of {@link warmupLinearSchedule}. */
export interface WarmupScheduleParams {
  /** Peak learning rate. */
  lr: number;
  /** Warm-up updates; default `round(warmupRatio × totalSteps)`. Capped at `totalSteps`. */
  warmupSteps?: number;
  warmupRatio: number;
  totalSteps: number;
}

/**
 * The learning rate of each update ({@link linearSchedule}: linear warm-up, then linear decay to 0
 * at the end of the run) and the warm-up length it uses.
 */
export function warmupLinearSchedule(params: WarmupScheduleParams): { schedule: (step: number) => number; warmupSteps: number } {
  const { totalSteps } = params;
  const warmupSteps = Math.min(params.warmupSteps ?? Math.round(params.warmupRatio * totalSteps), totalSteps);
  return { schedule: linearSchedule({ lr: params.lr, warmupSteps, totalSteps }), warmupSteps };
}

/**
 * Checks an integer option: `undefined` passes (the default applies), anything else must be an
 * integer `>= min`.
 * @throws Error `"<who>: <name> must be an integer >= <min>, got <value>"`.
 */
export function requireInteger(who: string, value: number | undefined, name: string, min: number): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min))
    throw new Error(`${who}: ${name} must be an integer >= ${min}, got ${value}`);
}

/**
 * Checks an option that must be a number `> 0` (learning rate, minutes); `undefined` passes.
 * @throws Error `"<who>: <name> must be > 0, got <value>"`.
 */
export function requirePositive(who: string, value: number | undefined, name: string): void {
  if (value !== undefined && !(value > 0)) throw new Error(`${who}: ${name} must be > 0, got ${value}`);
}

/**
 * Checks a fraction option: `warmupRatio` in [0, 1], `dropout` in [0, 1) (a dropout of 1 drops
 * everything); `undefined` passes.
 * @throws Error `"<who>: <name> must be in [0, 1], got <value>"` (or `[0, 1)`).
 */
export function requireFraction(who: string, value: number | undefined, name: "warmupRatio" | "dropout"): void {
  const ok = name === "dropout" ? value === undefined || (value >= 0 && value < 1) : value === undefined || (value >= 0 && value <= 1);
  if (!ok) throw new Error(`${who}: ${name} must be in [0, 1${name === "dropout" ? ")" : "]"}, got ${value}`);
}

/**
 * The DPR training objective and one optimisation step of a dual encoder.
 *
 * The loss (Karpukhin et al., 2020): for question i, the scores are dot products with every passage
 * of the batch — its own positive p[i], the other questions' positives (in-batch negatives) and any
 * extra passages (hard negatives shared across the batch) — and the loss is the mean negative
 * log-likelihood of the positive under a softmax over those scores, optionally divided by a
 * temperature; optionally mixed with a listwise distillation term (KL from a teacher's softmax over the
 * same row). The full trainer (AdamW schedule, GradCache, checkpoints) builds on these.
 */
import "@tensorflow/tfjs"; // registers TF.js's gradient functions (not part of tfjs-core)
import * as tf from "@tensorflow/tfjs-core";
import type { BertEncoderTF, BertInputsTF, PoolingTF } from "./bert-tf.js";
import { matMulXnn } from "./ops.js";

/**
 * A teacher's scores for distillation: `scores[i][j]` is the teacher's score of passage j of the batch
 * (the B positives, then the hard negatives) for question i.
 */
export interface DistillationTarget {
  scores: readonly (readonly number[])[];
  /** Share of the loss given to the teacher: `(1 − weight)·NLL + weight·KL`, in [0, 1]. */
  weight: number;
  /** The teacher's scores are divided by this before its softmax (default 1). */
  temperature?: number;
}

/** Options of {@link dprLoss}. */
export interface DprLossOptions {
  /** Scores are divided by this (default 1: plain dot products, as in DPR). */
  temperature?: number;
  /** Score the product with untransposed-matmul gradients (the wasm fast path; default true). */
  fast?: boolean;
  /**
   * Listwise distillation: add `weight ×` the KL divergence from the teacher's softmax over each
   * question's row of the batch (every passage of the batch, as for the NLL) to the model's.
   */
  teacher?: DistillationTarget;
}

/**
 * In-batch negative log-likelihood. `q [B, H]`, `p [B + extra, H]`: p[i] is question i's positive;
 * every other row is a negative for it. Returns a scalar.
 * @throws Error when the shapes do not fit (fewer passages than questions, hidden sizes differ).
 */
export function dprLoss(q: tf.Tensor2D, p: tf.Tensor2D, opts: DprLossOptions = {}): tf.Scalar {
  const [B, H] = q.shape;
  const [P, Hp] = p.shape;
  if (q.rank !== 2 || p.rank !== 2) throw new Error(`dprLoss: q and p must be rank 2, got [${q.shape}] and [${p.shape}]`);
  if (H !== Hp) throw new Error(`dprLoss: hidden sizes differ: q has ${H}, p has ${Hp}`);
  if (P < B) throw new Error(`dprLoss: ${B} questions need at least ${B} passages (one positive each), got ${P}`);
  const temperature = opts.temperature ?? 1;
  if (!(temperature > 0)) throw new Error(`dprLoss: temperature must be > 0, got ${temperature}`);
  if (opts.teacher) checkDistillationTarget(opts.teacher, B, P);
  return tf.tidy(() => {
    let scores = (opts.fast ?? true) ? matMulXnn(q, tf.transpose(p)) : tf.matMul(q, p, false, true); // [B, P]
    if (temperature !== 1) scores = tf.div(scores, temperature);
    const logProbs = tf.logSoftmax(scores, -1);
    const positives = tf.oneHot(tf.range(0, B, 1, "int32"), P); // p[i] is question i's positive
    const nll = tf.neg(tf.mean(tf.sum(tf.mul(logProbs, positives), -1))) as tf.Scalar;
    const t = opts.teacher;
    if (!t || t.weight === 0) return nll;
    const target = tf.softmax(tf.div(tf.tensor2d(t.scores as number[][], [B, P], "float32"), t.temperature ?? 1), -1);
    // KL(target ‖ model) = Σ target·(log target − log model); 0·log 0 counts 0.
    const logTarget = tf.log(tf.maximum(target, 1e-30));
    const kl = tf.mean(tf.sum(tf.mul(target, tf.sub(logTarget, logProbs)), -1));
    return tf.add(tf.mul(nll, 1 - t.weight), tf.mul(kl, t.weight)) as tf.Scalar;
  });
}

/** Checks a {@link DistillationTarget} against a batch of `B` questions and `P` passages; throws naming what is wrong. */
export function checkDistillationTarget(t: DistillationTarget, B: number, P: number): void {
  if (!(t.weight >= 0 && t.weight <= 1)) throw new Error(`dprLoss: teacher weight must be in [0, 1], got ${t.weight}`);
  const temperature = t.temperature ?? 1;
  if (!(temperature > 0)) throw new Error(`dprLoss: teacher temperature must be > 0, got ${temperature}`);
  if (t.scores.length !== B) throw new Error(`dprLoss: teacher scores have ${t.scores.length} rows, the batch has ${B} questions`);
  t.scores.forEach((row, i) => {
    if (row.length !== P) throw new Error(`dprLoss: teacher row ${i} has ${row.length} scores, the batch has ${P} passages`);
    if (!row.every(Number.isFinite)) throw new Error(`dprLoss: teacher row ${i} has a score that is not a finite number`);
  });
}

/** A dual-encoder batch: B questions, and B positives followed by any shared hard negatives. */
export interface DualEncoderBatch {
  questions: BertInputsTF;
  passages: BertInputsTF;
}

/** Arguments of {@link dualEncoderTrainStep}. */
export interface DualEncoderStepParams {
  questionEncoder: BertEncoderTF;
  /** The passage encoder; the question encoder when omitted (shared weights). */
  passageEncoder?: BertEncoderTF;
  optimizer: tf.Optimizer;
  batch: DualEncoderBatch;
  /** Pooling of both encoders (default "cls", as DPR). */
  pooling?: PoolingTF;
  temperature?: number;
  /** Dropout on (default true). */
  training?: boolean;
}

/**
 * One optimisation step: forward both encoders, {@link dprLoss}, gradients, optimizer update.
 * Resolves to the loss before the update (read from the device once the step has run).
 */
export async function dualEncoderTrainStep(params: DualEncoderStepParams): Promise<number> {
  const qEnc = params.questionEncoder;
  const pEnc = params.passageEncoder ?? qEnc;
  const training = params.training ?? true;
  const pooling = params.pooling ?? "cls";
  const fast = qEnc.fastPaths.fastDense;
  const varList = qEnc === pEnc ? qEnc.variables : [...qEnc.variables, ...pEnc.variables];
  let loss: tf.Scalar | null;
  try {
    loss = params.optimizer.minimize(
      () => {
        const q = qEnc.encode(params.batch.questions, { training, pooling });
        const p = pEnc.encode(params.batch.passages, { training, pooling });
        return dprLoss(q, p, { temperature: params.temperature, fast });
      },
      true,
      varList,
    );
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (tf.getBackend() === "wasm" && /Aborted|out of memory|memory access out of bounds/i.test(message)) {
      throw new Error(
        `dualEncoderTrainStep: the wasm backend ran out of its 4 GiB heap (${message.split("\n")[0]}); ` +
          `use a smaller batch or gradient caching. The wasm backend cannot be used again in this process.`,
      );
    }
    throw err;
  }
  if (loss === null) throw new Error("dualEncoderTrainStep: the optimizer returned no loss");
  let value: number;
  try {
    value = (await loss.data())[0]!;
  } finally {
    loss.dispose();
  }
  if (!Number.isFinite(value)) throw new Error(`dualEncoderTrainStep: loss is ${value}`);
  return value;
}

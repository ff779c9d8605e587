/**
 * The DPR training objective and one optimisation step of a dual encoder.
 *
 * The loss (Karpukhin et al., 2020): for question i, the scores are dot products with every passage
 * of the batch — its own positive p[i], the other questions' positives (in-batch negatives) and any
 * extra passages (hard negatives shared across the batch) — and the loss is the mean negative
 * log-likelihood of the positive under a softmax over those scores, optionally divided by a
 * temperature. The full trainer (AdamW schedule, GradCache, checkpoints) builds on these.
 */
import "@tensorflow/tfjs"; // registers TF.js's gradient functions (not part of tfjs-core)
import * as tf from "@tensorflow/tfjs-core";
import type { BertEncoderTF, BertInputsTF, PoolingTF } from "./bert-tf.js";
import { matMulXnn } from "./ops.js";

/** Options of {@link dprLoss}. */
export interface DprLossOptions {
  /** Scores are divided by this (default 1: plain dot products, as in DPR). */
  temperature?: number;
  /** Score the product with untransposed-matmul gradients (the wasm fast path; default true). */
  fast?: boolean;
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
  return tf.tidy(() => {
    let scores = (opts.fast ?? true) ? matMulXnn(q, tf.transpose(p)) : tf.matMul(q, p, false, true); // [B, P]
    if (temperature !== 1) scores = tf.div(scores, temperature);
    const logProbs = tf.logSoftmax(scores, -1);
    const positives = tf.oneHot(tf.range(0, B, 1, "int32"), P); // p[i] is question i's positive
    return tf.neg(tf.mean(tf.sum(tf.mul(logProbs, positives), -1))) as tf.Scalar;
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

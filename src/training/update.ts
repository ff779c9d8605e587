/**
 * The optimiser update both trainers run after computing a batch's loss and gradients: global-norm
 * clipping, AdamW, then one read of the loss and the norm. Nothing in between waits for the device,
 * so on a GPU the whole step is queued before the single read at its end.
 */
import * as tf from "@tensorflow/tfjs-core";
import { globalNormScale, type AdamW } from "./optimizer.js";

/** Arguments of {@link applyUpdate}. */
export interface UpdateParams {
  /** The batch loss (a scalar on the device); disposed here. */
  loss: tf.Scalar;
  /** A gradient per optimiser variable; disposed here. */
  grads: Map<string, tf.Tensor>;
  optimizer: AdamW;
  lr: number;
  /** Global-norm clipping bound; 0 disables clipping. */
  maxGradNorm: number;
}

/** The values read back after an update. */
export interface UpdateResult {
  /** The loss of the batch, before the update. */
  loss: number;
  /** The global gradient norm before clipping. */
  gradNorm: number;
}

/** Reads scalars from the device in one wait and disposes them. */
export async function readScalars(...tensors: tf.Tensor[]): Promise<number[]> {
  try {
    const values = await Promise.all(tensors.map((t) => t.data()));
    return values.map((v) => Number(v[0]));
  } finally {
    for (const t of tensors) t.dispose();
  }
}

/**
 * Clips, applies AdamW and reads the loss and norm. The caller checks that the loss is finite (the
 * update has then already been applied in memory: a caller that throws must not save these weights).
 */
export async function applyUpdate(params: UpdateParams): Promise<UpdateResult> {
  const { grads, optimizer } = params;
  let norm: tf.Scalar | undefined;
  try {
    const clip = globalNormScale(grads, params.maxGradNorm);
    norm = clip.norm;
    try {
      optimizer.step(grads, params.lr, clip.scale);
    } finally {
      clip.scale.dispose();
    }
  } catch (err) {
    params.loss.dispose();
    norm?.dispose();
    throw err;
  } finally {
    for (const g of grads.values()) g.dispose();
  }
  const [loss, gradNorm] = await readScalars(params.loss, norm);
  return { loss: loss!, gradNorm: gradNorm! };
}

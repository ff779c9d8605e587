/**
 * Dropout masks as a function of (seed, element index): "hash" dropout.
 *
 * TF.js's `tf.dropout` draws its mask with `tf.randomUniform`, which fills the values in JavaScript on
 * the CPU and uploads them: harmless on cpu and wasm, but on a GPU it would cost more than the step
 * itself (BERT-base at batch 128 needs ~3·10^8 random numbers per step for attention dropout alone).
 * A hash mask is computed where the tensor lives: on webgpu by a WGSL kernel
 * (`./webgpu-kernels.ts`), elsewhere by the same integer arithmetic in JavaScript, so both give
 * bit-identical masks for the same (shape, rate, seed). That also lets the webgpu backend be checked
 * against cpu with dropout on.
 *
 * Element i of a mask with seed s is kept when `pcg(pcg(s) xor i) >> 8 >= floor(rate · 2^24)` (PCG-RXS-M-XS
 * output permutation on 32-bit words, O'Neill 2014), and kept elements are scaled by `1 / (1 − rate)`.
 */
import * as tf from "@tensorflow/tfjs-core";

/** How {@link dropout} draws its mask: TF.js's `tf.dropout`, or the hash of (seed, index). */
export type DropoutImpl = "tfjs" | "hash";

/** Name of the custom kernel that computes a hash mask on a backend (registered for webgpu). */
export const HASH_DROPOUT_KERNEL = "LangchainDprHashDropoutMask";

/** Attributes of {@link HASH_DROPOUT_KERNEL}. */
export interface HashDropoutAttrs {
  shape: number[];
  /** `pcg(seed)`, the per-mask constant. */
  seedHash: number;
  /** Keep element when `hash >> 8 >= threshold` (24-bit). */
  threshold: number;
  /** Value of kept elements, `fround(1 / (1 − rate))`. */
  scale: number;
}

/** PCG-RXS-M-XS output permutation of a 32-bit word (the WGSL kernel computes the same). */
export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul((state >>> ((state >>> 28) + 4)) ^ state, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The kernel attributes of a mask (validates the rate). */
export function hashDropoutAttrs(shape: readonly number[], rate: number, seed: number): HashDropoutAttrs {
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout: rate must be in [0, 1), got ${rate}`);
  return {
    shape: [...shape],
    seedHash: pcgHash(seed >>> 0),
    threshold: Math.floor(rate * 16777216),
    scale: Math.fround(1 / (1 - rate)),
  };
}

/** The mask values computed in JavaScript (what the webgpu kernel computes on the GPU). */
export function hashDropoutMaskValues(attrs: HashDropoutAttrs): Float32Array {
  const n = attrs.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const { seedHash, threshold, scale } = attrs;
  for (let i = 0; i < n; i++) if (pcgHash(seedHash ^ i) >>> 8 >= threshold) out[i] = scale;
  return out;
}

/** A `[...shape]` float32 mask of 0 and `1/(1−rate)`, computed on the active backend. */
export function hashDropoutMask(shape: readonly number[], rate: number, seed: number): tf.Tensor {
  const attrs = hashDropoutAttrs(shape, rate, seed);
  if (tf.getKernel(HASH_DROPOUT_KERNEL, tf.getBackend()) !== undefined) {
    return tf.engine().runKernel(HASH_DROPOUT_KERNEL, {}, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  return tf.tensor(hashDropoutMaskValues(attrs), [...shape], "float32");
}

let unseeded = 0;

/**
 * Inverted dropout of `x` with `rate`. `impl` "tfjs" is `tf.dropout` (seeded when `seed` is given);
 * "hash" multiplies by {@link hashDropoutMask} (an unseeded call draws a seed from Math.random).
 */
export function dropout(x: tf.Tensor, rate: number, seed: number | undefined, impl: DropoutImpl): tf.Tensor {
  if (rate <= 0) return x;
  if (impl === "tfjs") return tf.dropout(x, rate, undefined, seed);
  const s = seed ?? ((Math.random() * 4294967296) >>> 0) ^ unseeded++;
  return tf.mul(x, hashDropoutMask(x.shape, rate, s));
}

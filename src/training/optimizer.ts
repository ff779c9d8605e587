/**
 * The optimiser of the DPR trainer, written out so that its whole state can be checkpointed:
 *
 * - {@link AdamW}: Adam with decoupled weight decay (Loshchilov & Hutter; the update of Hugging Face's
 *   `AdamW`/PyTorch's `torch.optim.AdamW`), decay skipped for biases and LayerNorm weights;
 * - {@link linearSchedule}: linear warm-up from 0 to the peak rate, then linear decay to 0;
 * - {@link clipByGlobalNorm}: gradients scaled so that their global L2 norm is at most a bound.
 */
import "@tensorflow/tfjs"; // registers TF.js's gradient functions (not part of tfjs-core)
import * as tf from "@tensorflow/tfjs-core";
import type { BertWeights } from "../models/types.js";

/** Name of the fused AdamW kernel (registered for the webgpu backend by `./webgpu-kernels.ts`). */
export const ADAMW_KERNEL = "LangchainDprAdamW";

/** Attributes of {@link ADAMW_KERNEL}: the hyper-parameters of one update and which output to compute. */
export interface AdamWKernelAttrs {
  beta1: number;
  beta2: number;
  bc1: number;
  bc2: number;
  epsilon: number;
  lr: number;
  decay: number;
  /** 0: new first moment, 1: new second moment, 2: new weights. */
  which: 0 | 1 | 2;
}

/** Names excluded from weight decay by default: biases and LayerNorm parameters (as in BERT / DPR). */
export function defaultNoDecay(name: string): boolean {
  return name.endsWith(".bias") || name.includes("LayerNorm");
}

/** Parameters of {@link AdamW}. */
export interface AdamWParams {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled weight decay (default 0.01). */
  weightDecay?: number;
  /** Which variables get no decay (default {@link defaultNoDecay}). */
  noDecay?: (name: string) => boolean;
}

/**
 * AdamW over named variables. `step(grads, lr)` applies
 * `m ← β1 m + (1-β1) g`, `v ← β2 v + (1-β2) g²`, `w ← w − lr·(m̂ / (√v̂ + ε)) − lr·λ·w`
 * with bias-corrected m̂, v̂ (λ = 0 for excluded names).
 */
export class AdamW {
  beta1 = 0.9;
  beta2 = 0.999;
  epsilon = 1e-8;
  weightDecay = 0.01;
  noDecay: (name: string) => boolean = defaultNoDecay;
  /** Number of updates applied so far. */
  iterations = 0;

  private readonly vars: ReadonlyMap<string, tf.Variable>;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(variables: ReadonlyMap<string, tf.Variable>, params: AdamWParams = {}) {
    if (params.beta1 !== undefined) this.beta1 = params.beta1;
    if (params.beta2 !== undefined) this.beta2 = params.beta2;
    if (params.epsilon !== undefined) this.epsilon = params.epsilon;
    if (params.weightDecay !== undefined) this.weightDecay = params.weightDecay;
    if (params.noDecay !== undefined) this.noDecay = params.noDecay;
    if (!(this.weightDecay >= 0)) throw new Error(`AdamW: weightDecay must be >= 0, got ${this.weightDecay}`);
    this.vars = variables;
    for (const [name, w] of variables) {
      this.m.set(name, tf.variable(tf.zerosLike(w), false));
      this.v.set(name, tf.variable(tf.zerosLike(w), false));
    }
  }

  /**
   * One update with learning rate `lr`. `grads` must hold a gradient for every variable. With
   * `gradScale` (a scalar tensor, e.g. the clipping factor of {@link globalNormScale}) every gradient
   * is multiplied by it first. On a backend with the fused {@link ADAMW_KERNEL} (webgpu) each variable
   * takes 3 dispatches; elsewhere the same arithmetic runs as TF.js ops.
   * @throws Error naming a variable without gradient or with a gradient of the wrong shape.
   */
  step(grads: ReadonlyMap<string, tf.Tensor>, lr: number, gradScale?: tf.Scalar): void {
    for (const [name, w] of this.vars) {
      const g = grads.get(name);
      if (!g) throw new Error(`AdamW: no gradient for variable '${name}'`);
      if (g.shape.join(",") !== w.shape.join(",")) {
        throw new Error(`AdamW: gradient of '${name}' has shape [${g.shape}], the variable has [${w.shape}]`);
      }
    }
    this.iterations++;
    const t = this.iterations;
    const bc1 = 1 - this.beta1 ** t;
    const bc2 = 1 - this.beta2 ** t;
    const fused = tf.getKernel(ADAMW_KERNEL, tf.getBackend()) !== undefined;
    for (const [name, w] of this.vars) {
      const g = grads.get(name)!;
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      const decay = this.noDecay(name) ? 0 : this.weightDecay;
      tf.tidy(() => {
        if (fused) {
          const s = gradScale ?? tf.scalar(1);
          const attrs = { beta1: this.beta1, beta2: this.beta2, bc1, bc2, epsilon: this.epsilon, lr, decay };
          const run = (which: 0 | 1 | 2) =>
            tf.engine().runKernel(ADAMW_KERNEL, { w, g, m, v, s }, { ...attrs, which } as unknown as tf.NamedAttrMap) as tf.Tensor;
          const [m1, v1, w1] = [run(0), run(1), run(2)];
          m.assign(m1);
          v.assign(v1);
          w.assign(w1);
          return;
        }
        const gs = gradScale ? tf.mul(g, gradScale) : g;
        const m1 = tf.add(tf.mul(m, this.beta1), tf.mul(gs, 1 - this.beta1));
        const v1 = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(gs), 1 - this.beta2));
        m.assign(m1);
        v.assign(v1);
        const update = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), this.epsilon));
        let next = tf.sub(w, tf.mul(update, lr));
        if (decay > 0) next = tf.sub(next, tf.mul(w, lr * decay));
        w.assign(next);
      });
    }
  }

  /** The moments as named tensors (`m/<name>`, `v/<name>`), for a checkpoint (read from the device). */
  async stateTensors(): Promise<BertWeights> {
    const out: BertWeights = new Map();
    for (const [prefix, map] of [
      ["m", this.m],
      ["v", this.v],
    ] as const) {
      for (const [name, t] of map)
        out.set(`${prefix}/${name}`, { shape: [...t.shape], data: new Float32Array((await t.data()) as Float32Array) });
    }
    return out;
  }

  /**
   * Restores the moments written by {@link stateTensors} and the update count.
   * @throws Error naming a missing or misshapen moment.
   */
  loadState(tensors: BertWeights, iterations: number, source: string): void {
    for (const [prefix, map] of [
      ["m", this.m],
      ["v", this.v],
    ] as const) {
      for (const [name, t] of map) {
        const saved = tensors.get(`${prefix}/${name}`);
        if (!saved) throw new Error(`AdamW: ${source} has no moment '${prefix}/${name}'`);
        if (saved.shape.join(",") !== t.shape.join(",")) {
          throw new Error(`AdamW: moment '${prefix}/${name}' in ${source} has shape [${saved.shape}], expected [${t.shape}]`);
        }
        t.assign(tf.tensor(saved.data, saved.shape, "float32"));
      }
    }
    this.iterations = iterations;
  }

  /** Frees the moments. */
  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** Parameters of {@link linearSchedule}. */
export interface LinearScheduleParams {
  /** Peak learning rate. */
  lr: number;
  warmupSteps: number;
  totalSteps: number;
}

/**
 * Learning rate of the update at 0-based `step`: `lr · (step+1)/warmup` during warm-up (so the first
 * update is not wasted at rate 0), then `lr · (total − step)/(total − warmup)`, linearly down to
 * `lr / (total − warmup)` at the last step.
 */
export function linearSchedule(params: LinearScheduleParams): (step: number) => number {
  const { lr, warmupSteps, totalSteps } = params;
  if (!(lr > 0)) throw new Error(`linearSchedule: lr must be > 0, got ${lr}`);
  if (!Number.isInteger(totalSteps) || totalSteps < 1)
    throw new Error(`linearSchedule: totalSteps must be an integer >= 1, got ${totalSteps}`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0)
    throw new Error(`linearSchedule: warmupSteps must be an integer >= 0, got ${warmupSteps}`);
  return (step: number) => {
    const s = step + 1;
    if (s <= warmupSteps) return (lr * s) / warmupSteps;
    return lr * Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
  };
}

/**
 * The sum of same-shaped tensors as a tree of AddN over at most 7 inputs each: a GPU kernel binds
 * every input as a storage buffer, and WebGPU guarantees only 8 per shader stage.
 */
export function sumAll(tensors: tf.Tensor[]): tf.Tensor {
  if (tensors.length === 0) throw new Error("sumAll: no tensors");
  let level = tensors;
  while (level.length > 1) {
    const next: tf.Tensor[] = [];
    for (let i = 0; i < level.length; i += 7) {
      const part = level.slice(i, i + 7);
      next.push(part.length === 1 ? part[0]! : tf.addN(part));
    }
    level = next;
  }
  return level[0]!;
}

/**
 * The global L2 norm of `grads` and the factor that scales it to at most `maxNorm` (1 when below, or
 * when `maxNorm` is not positive), both as scalar tensors computed on the device: no read stalls a
 * GPU pipeline. The caller disposes both.
 */
export function globalNormScale(grads: ReadonlyMap<string, tf.Tensor>, maxNorm: number): { norm: tf.Scalar; scale: tf.Scalar } {
  const norm = tf.tidy(() => tf.sqrt(sumAll([...grads.values()].map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
  const scale = tf.tidy(() =>
    maxNorm > 0 ? (tf.where(tf.greater(norm, maxNorm), tf.div(maxNorm, tf.add(norm, 1e-6)), tf.onesLike(norm)) as tf.Scalar) : tf.scalar(1),
  );
  return { norm, scale };
}

/**
 * Scales gradients so that their global L2 norm is at most `maxNorm` ({@link globalNormScale}).
 * Returns new tensors (the caller disposes them) and the norm before clipping as a scalar tensor
 * (read it with `await norm.data()`, then dispose it).
 */
export function clipByGlobalNorm(
  grads: ReadonlyMap<string, tf.Tensor>,
  maxNorm: number,
): { grads: Map<string, tf.Tensor>; norm: tf.Scalar } {
  const { norm, scale } = globalNormScale(grads, maxNorm);
  const out = new Map<string, tf.Tensor>();
  for (const [name, g] of grads) out.set(name, tf.mul(g, scale));
  scale.dispose();
  return { grads: out, norm };
}

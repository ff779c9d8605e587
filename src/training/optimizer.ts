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
   * One update with learning rate `lr`. `grads` must hold a gradient for every variable.
   * @throws Error naming a variable without gradient or with a gradient of the wrong shape.
   */
  step(grads: ReadonlyMap<string, tf.Tensor>, lr: number): void {
    this.iterations++;
    const t = this.iterations;
    const bc1 = 1 - this.beta1 ** t;
    const bc2 = 1 - this.beta2 ** t;
    for (const [name, w] of this.vars) {
      const g = grads.get(name);
      if (!g) throw new Error(`AdamW: no gradient for variable '${name}'`);
      if (g.shape.join(",") !== w.shape.join(",")) {
        throw new Error(`AdamW: gradient of '${name}' has shape [${g.shape}], the variable has [${w.shape}]`);
      }
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      const decay = this.noDecay(name) ? 0 : this.weightDecay;
      tf.tidy(() => {
        const m1 = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
        const v1 = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        m.assign(m1);
        v.assign(v1);
        const update = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), this.epsilon));
        let next = tf.sub(w, tf.mul(update, lr));
        if (decay > 0) next = tf.sub(next, tf.mul(w, lr * decay));
        w.assign(next);
      });
    }
  }

  /** The moments as named tensors (`m/<name>`, `v/<name>`), for a checkpoint. */
  stateTensors(): BertWeights {
    const out: BertWeights = new Map();
    for (const [prefix, map] of [["m", this.m], ["v", this.v]] as const) {
      for (const [name, t] of map) out.set(`${prefix}/${name}`, { shape: [...t.shape], data: new Float32Array(t.dataSync() as Float32Array) });
    }
    return out;
  }

  /**
   * Restores the moments written by {@link stateTensors} and the update count.
   * @throws Error naming a missing or misshapen moment.
   */
  loadState(tensors: BertWeights, iterations: number, source: string): void {
    for (const [prefix, map] of [["m", this.m], ["v", this.v]] as const) {
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
  if (!Number.isInteger(totalSteps) || totalSteps < 1) throw new Error(`linearSchedule: totalSteps must be an integer >= 1, got ${totalSteps}`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) throw new Error(`linearSchedule: warmupSteps must be an integer >= 0, got ${warmupSteps}`);
  return (step: number) => {
    const s = step + 1;
    if (s <= warmupSteps) return (lr * s) / warmupSteps;
    return lr * Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
  };
}

/**
 * Scales gradients so that their global L2 norm is at most `maxNorm` (no-op when below, or when
 * `maxNorm` is not positive). Returns new tensors (the caller disposes them) and the norm before
 * clipping.
 */
export function clipByGlobalNorm(grads: ReadonlyMap<string, tf.Tensor>, maxNorm: number): { grads: Map<string, tf.Tensor>; norm: number } {
  const sq = tf.tidy(() => tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g)))));
  const norm = Math.sqrt(sq.dataSync()[0]!);
  sq.dispose();
  const scale = maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
  const out = new Map<string, tf.Tensor>();
  for (const [name, g] of grads) out.set(name, scale === 1 ? tf.clone(g) : tf.mul(g, scale));
  return { grads: out, norm };
}

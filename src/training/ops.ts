/**
 * Differentiable building blocks for training in TF.js, in two flavours:
 *
 * - stock: plain TF.js ops (`tf.matMul`, `tf.gather`) with TF.js's own gradients;
 * - fast: the same math with custom gradients shaped for what runs fast, verified to give the same
 *   loss (test/training/fast-paths.test.ts):
 *   - {@link denseXnn}: `x @ W + b` whose gradients are untransposed 2-D matmuls with explicit
 *     transposes (the wasm backend's XNNPACK path takes no transpose flags; TF.js's own matMul gradient
 *     uses them);
 *   - {@link matMulXnn} / {@link batchMatMulXnn}: the same for 2-D and batched (attention) products;
 *   - {@link embeddingLookup}: `tf.gather` whose gradient is a `scatterND` (sums duplicate ids) instead
 *     of `UnsortedSegmentSum`, which the wasm backend lacks and the cpu backend runs with memory
 *     proportional to the whole table per call.
 *
 * These are backend-neutral (they run on cpu, wasm and tfjs-node); the wasm-only kernel work lives in
 * `./wasm-kernels.ts`.
 */
import "@tensorflow/tfjs"; // registers TF.js's gradient functions (not part of tfjs-core)
import * as tf from "@tensorflow/tfjs-core";

type Grads = tf.Tensor[];

/** Wraps tf.customGrad with types for a fixed number of tensor inputs. */
function custom<I extends tf.Tensor[]>(
  f: (inputs: I, save: (tensors: tf.Tensor[]) => void) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => Grads },
): (...inputs: I) => tf.Tensor {
  const g = tf.customGrad(((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    return f(args.slice(0, -1) as I, save);
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (...inputs: I) => g(...inputs);
}

/** `x [N, K] @ w [K, M] + b [M]` with untransposed-matmul gradients. */
export const denseXnn: (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor = custom<[tf.Tensor, tf.Tensor, tf.Tensor]>(
  ([x, w, b], save) => {
    save([x, w]);
    return {
      value: tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b }),
      gradFunc: (dy, [sx, sw]) => [tf.matMul(dy, tf.transpose(sw)), tf.matMul(tf.transpose(sx), dy), tf.sum(dy, 0)],
    };
  },
);

/** `a [M, K] @ b [K, N]` with untransposed-matmul gradients. */
export const matMulXnn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor = custom<[tf.Tensor, tf.Tensor]>(([a, b], save) => {
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy, [sa, sb]) => [tf.matMul(dy, tf.transpose(sb)), tf.matMul(tf.transpose(sa), dy)],
  };
});

/** `a [G, M, K] @ b [G, K, N]` with untransposed batched-matmul gradients. */
export const batchMatMulXnn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor = custom<[tf.Tensor, tf.Tensor]>(([a, b], save) => {
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy, [sa, sb]) => [tf.matMul(dy, tf.transpose(sb, [0, 2, 1])), tf.matMul(tf.transpose(sa, [0, 2, 1]), dy)],
  };
});

/** Rows `ids [N]` (int32) of `table [V, H]`, with a scatterND gradient into the table. */
export const embeddingLookup: (table: tf.Tensor, ids: tf.Tensor) => tf.Tensor = custom<[tf.Tensor, tf.Tensor]>(([table, ids], save) => {
  save([ids]);
  const tableShape = table.shape;
  return {
    value: tf.gather(table, ids),
    gradFunc: (dy, [sids]) => [tf.scatterND(tf.expandDims(sids, 1), dy, tableShape), tf.zerosLike(sids)],
  };
});

/**
 * Which implementation each building block uses. The defaults depend on the backend that is active
 * when the encoder is built: on cpu/wasm the engineered fast paths (explicit transposes feed XNNPACK);
 * on webgpu TF.js's fused kernels (a GPU matmul takes transpose flags, so explicit transposes would
 * only add dispatches).
 */
export interface FastPathOptions {
  /** Dense layers via {@link denseXnn} (default true, false on webgpu). */
  fastDense?: boolean;
  /** Attention products via {@link batchMatMulXnn} with explicit transposes (default true, false on webgpu). */
  fastAttention?: boolean;
  /** Embedding gradients via scatterND (default true). Stock `tf.gather` needs UnsortedSegmentSum. */
  scatterEmbedding?: boolean;
  /**
   * Dense layers without `fastDense` as `tf.fused.matMul` with the bias (one kernel; TF.js's own
   * gradient) instead of a product and an add (default: true on webgpu, false elsewhere).
   */
  fusedBias?: boolean;
}

/** The fast-path switches with defaults filled in. */
export type ResolvedFastPaths = Required<FastPathOptions>;

/** Fills in defaults for the active backend (see {@link FastPathOptions}). */
export function resolveFastPaths(opts: FastPathOptions = {}): ResolvedFastPaths {
  const gpu = tf.getBackend() === "webgpu";
  return {
    fastDense: opts.fastDense ?? !gpu,
    fastAttention: opts.fastAttention ?? !gpu,
    scatterEmbedding: opts.scatterEmbedding ?? true,
    fusedBias: opts.fusedBias ?? gpu,
  };
}

/** `x [N, K] @ w [K, M] + b [M]`: {@link denseXnn}, `tf.fused.matMul` with the bias, or a product and an add. */
export function dense(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, fast: boolean, fusedBias = false): tf.Tensor {
  if (fast) return denseXnn(x, w, b);
  if (fusedBias) return tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b });
  return tf.add(tf.matMul(x, w), b);
}

/** Embedding rows, with the scatterND gradient or TF.js's stock gather gradient. */
export function lookup(table: tf.Tensor, ids: tf.Tensor, scatter: boolean): tf.Tensor {
  return scatter ? embeddingLookup(table, ids) : tf.gather(table, ids);
}

/** Names of the fused LayerNorm kernels (registered for webgpu by `./webgpu-kernels.ts`). */
export const LAYER_NORM_KERNELS = {
  stats: "LangchainDprLayerNormStats",
  output: "LangchainDprLayerNormOutput",
  gradX: "LangchainDprLayerNormGradX",
  gradGamma: "LangchainDprLayerNormGradGamma",
} as const;

const run = (name: string, inputs: Record<string, tf.Tensor>, eps = 0): tf.Tensor =>
  tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, { eps } as unknown as tf.NamedAttrMap) as tf.Tensor;

/**
 * LayerNorm of `x [N, H]` by the fused kernels: 2 dispatches forward (row mean and 1/σ, output) and 3
 * backward (dx, dγ, dβ). Same arithmetic as {@link layerNorm}'s composed form. One op per epsilon.
 */
const fusedByEps = new Map<number, (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor>();
function layerNormFused(eps: number): (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor {
  let op = fusedByEps.get(eps);
  if (op === undefined) {
    op = custom<[tf.Tensor, tf.Tensor, tf.Tensor]>(([x, gamma, beta], save) => {
      const stats = run(LAYER_NORM_KERNELS.stats, { X: x }, eps);
      save([x, gamma, stats]);
      return {
        value: run(LAYER_NORM_KERNELS.output, { X: x, S: stats, G: gamma, B: beta }),
        gradFunc: (dy, [sx, sg, ss]) => [
          run(LAYER_NORM_KERNELS.gradX, { DY: dy, X: sx!, S: ss!, G: sg! }),
          run(LAYER_NORM_KERNELS.gradGamma, { DY: dy, X: sx!, S: ss! }),
          tf.sum(dy, 0),
        ],
      };
    });
    fusedByEps.set(eps, op);
  }
  return op;
}

/** LayerNorm over the last axis: `(x - mean) / sqrt(var + eps) * gamma + beta` (biased variance). */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  if (x.rank === 2 && tf.getKernel(LAYER_NORM_KERNELS.output, tf.getBackend()) !== undefined) {
    return layerNormFused(eps)(x, gamma, beta);
  }
  const mean = tf.mean(x, -1, true);
  const centered = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centered), -1, true);
  return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

/** Exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (BERT's "gelu"; TF.js registers erf's gradient). */
export function geluErf(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/** Tanh-approximated GELU (HF "gelu_new" / "gelu_pytorch_tanh"). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

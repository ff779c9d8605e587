/**
 * A BERT encoder in TF.js for training, with exactly the math of our ONNX graph and of
 * `referenceBertForward` (src/models/reference.ts):
 *
 * embeddings (word + position + token type) → LayerNorm(eps) → dropout; per layer: Q/K/V linear,
 * `QKᵀ/√d + (1 − mask)·(−10000)`, softmax → dropout, context, output dense → dropout + residual →
 * LayerNorm, FFN (intermediate dense → hidden_act → output dense → dropout) + residual → LayerNorm.
 * Pooling: CLS (DPR), masked mean, or the BERT pooler `tanh(dense(CLS))` with an optional classifier
 * head (cross-encoders). Dropout runs only with `training: true`.
 *
 * Weights come from and go back to {@link BertWeights} (canonical Hugging Face names, PyTorch layout
 * `[out, in]` for Linear weights). Internally Linear weights are stored transposed, `[in, out]`, so
 * every dense layer is a plain `x @ W` (the layout the wasm backend's XNNPACK path wants).
 */
import "@tensorflow/tfjs"; // registers TF.js's gradient functions (not part of tfjs-core)
import * as tf from "@tensorflow/tfjs-core";
import type { BertConfig, BertWeights } from "../models/types.js";
import { expectedBertWeightShapes, validateBertWeights } from "../models/weights.js";
import {
  batchMatMulXnn,
  dense,
  geluErf,
  geluTanh,
  layerNorm,
  lookup,
  resolveFastPaths,
  type FastPathOptions,
  type ResolvedFastPaths,
} from "./ops.js";
import { dropout, type DropoutImpl } from "./dropout.js";

/** Value added to attention scores of padded keys (as in BERT, our ONNX graph and the reference). */
export const MASKED_SCORE = -10000;

/** A token-id matrix: a `[batch, seq]` tensor (int32) or nested arrays. */
export type TokenMatrix = tf.Tensor2D | number[][];

/** A tokenised batch for {@link BertEncoderTF.forward}. Rows must all have the same length. */
export interface BertInputsTF {
  inputIds: TokenMatrix;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: TokenMatrix;
  /** Segment ids; zeros when omitted. */
  tokenTypeIds?: TokenMatrix;
}

/** Options of {@link BertEncoderTF.forward}. */
export interface ForwardOptions {
  /** Dropout on (training) or off (inference). Default false. */
  training?: boolean;
}

/** Outputs of {@link BertEncoderTF.forward}. */
export interface BertOutputsTF {
  /** `[B, S, H]` */
  lastHiddenState: tf.Tensor3D;
  /** `[B, H]` hidden state of token 0 (DPR pooling). */
  cls: tf.Tensor2D;
  /** `[B, H]` `tanh(dense(CLS))` when the encoder has a BERT pooler. */
  pooled?: tf.Tensor2D;
  /** `[B, num_labels]` when the encoder has a classifier head. */
  logits?: tf.Tensor2D;
}

/** How {@link BertEncoderTF.encode} turns hidden states into one vector per row. */
export type PoolingTF = "cls" | "mean" | "max" | "bert";

/** Construction options shared by the factories. */
export interface BertEncoderTFParams extends FastPathOptions {
  /** Seed for dropout masks (each call advances it); random when omitted. */
  seed?: number;
  /** Prefix for TF.js variable names (e.g. "q" / "p" for a dual encoder); default "bert". */
  name?: string;
  /**
   * How dropout masks are drawn: "tfjs" (`tf.dropout`, random numbers made on the CPU) or "hash" (a
   * function of seed and element index, made on the device: see `./dropout.ts`). Default: "hash" on
   * the webgpu backend (CPU-made masks would cost more than the step), "tfjs" elsewhere.
   */
  dropoutImpl?: DropoutImpl;
}

/** Options of {@link BertEncoderTF.fromConfig}. */
export interface BertEncoderTFInitParams extends BertEncoderTFParams {
  /** Seed of the initial weights; default 42. */
  initSeed?: number;
  /** Add a BERT pooler (`pooler.dense.*`). */
  pooler?: boolean;
  /** Add a classifier head with this many labels (implies the pooler). */
  numLabels?: number;
}

/** Canonical names of Linear weights, stored `[in, out]` inside the encoder. */
function isLinearWeight(name: string): boolean {
  return name.endsWith(".weight") && !name.startsWith("embeddings.") && !name.endsWith("LayerNorm.weight");
}

function toTensor(m: TokenMatrix, what: string, dtype: "int32" | "float32"): tf.Tensor2D {
  if (m instanceof tf.Tensor) {
    if (m.rank !== 2) throw new Error(`BertEncoderTF: ${what} must be rank 2 [batch, seq], got shape [${m.shape}]`);
    return m.dtype === dtype ? m : tf.cast(m, dtype);
  }
  if (!Array.isArray(m) || m.length === 0) throw new Error(`BertEncoderTF: ${what} must be a non-empty [batch, seq] array`);
  const L = m[0].length;
  m.forEach((row, i) => {
    if (row.length !== L)
      throw new Error(`BertEncoderTF: ${what} row ${i} has length ${row.length}, row 0 has ${L}; pad rows to one length`);
  });
  return tf.tensor2d(m, [m.length, L], dtype);
}

/**
 * BERT encoder as TF.js variables. Create with {@link BertEncoderTF.fromWeights} or
 * {@link BertEncoderTF.fromConfig}; free with {@link BertEncoderTF.dispose}.
 *
 * @example
 * ```ts
 * const enc = BertEncoderTF.fromWeights(config, weights);
 * const cls = tf.tidy(() => enc.encode({ inputIds, attentionMask }, { pooling: "cls" }));
 * const trained: BertWeights = await enc.toWeights();
 * ```
 */
export class BertEncoderTF {
  /** The encoder's configuration. */
  readonly config: BertConfig;
  /** Fast-path switches in use. */
  readonly fastPaths: ResolvedFastPaths;
  /** Whether the encoder has a BERT pooler. */
  readonly hasPooler: boolean;
  /** Number of classifier labels, or undefined without a classifier head. */
  readonly numLabels: number | undefined;
  /** How dropout masks are drawn. */
  readonly dropoutImpl: DropoutImpl;

  private readonly vars = new Map<string, tf.Variable>();
  private dropoutSeed: number | undefined;
  private disposed = false;

  constructor(config: BertConfig, variables: Map<string, tf.Variable>, params: BertEncoderTFParams = {}) {
    if (config.hidden_size % config.num_attention_heads !== 0) {
      throw new Error(
        `BertEncoderTF: hidden_size ${config.hidden_size} is not a multiple of num_attention_heads ${config.num_attention_heads}`,
      );
    }
    this.config = config;
    this.fastPaths = resolveFastPaths(params);
    this.dropoutImpl = params.dropoutImpl ?? (tf.getBackend() === "webgpu" ? "hash" : "tfjs");
    this.dropoutSeed = params.seed;
    for (const [k, v] of variables) this.vars.set(k, v);
    this.hasPooler = this.vars.has("pooler.dense.weight");
    this.numLabels = this.vars.get("classifier.weight")?.shape[1];
  }

  /**
   * Builds the encoder from canonical PyTorch-layout weights (validated against the config).
   * @throws Error naming the missing or misshapen tensor.
   */
  static fromWeights(config: BertConfig, weights: BertWeights, params: BertEncoderTFParams = {}): BertEncoderTF {
    validateBertWeights(config, weights, "BertEncoderTF.fromWeights");
    const prefix = params.name ?? "bert";
    const vars = new Map<string, tf.Variable>();
    const classifier = weights.get("classifier.weight");
    const names = expectedBertWeightShapes(config, {
      pooler: weights.has("pooler.dense.weight"),
      numLabels: classifier?.shape[0],
    }).keys();
    try {
      for (const name of names) {
        const t = weights.get(name)!;
        const value = tf.tidy(() => {
          const x = tf.tensor(t.data, t.shape, "float32");
          return isLinearWeight(name) ? tf.transpose(x) : x;
        });
        vars.set(name, tf.variable(value, true, uniqueVarName(`${prefix}/${name}`)));
        value.dispose();
      }
    } catch (err) {
      for (const v of vars.values()) v.dispose();
      throw err;
    }
    return new this(config, vars, params);
  }

  /**
   * A freshly initialised encoder: Linear and embedding weights normal(0, initializer_range ?? 0.02),
   * LayerNorm 1 / 0, biases 0; deterministic for a given `initSeed`.
   */
  static fromConfig(config: BertConfig, params: BertEncoderTFInitParams = {}): BertEncoderTF {
    const prefix = params.name ?? "bert";
    const std = config.initializer_range ?? 0.02;
    let seed = params.initSeed ?? 42;
    const shapes = expectedBertWeightShapes(config, {
      pooler: params.pooler || params.numLabels !== undefined,
      numLabels: params.numLabels,
    });
    const vars = new Map<string, tf.Variable>();
    for (const [name, torchShape] of shapes) {
      const shape = isLinearWeight(name) ? [torchShape[1], torchShape[0]] : torchShape;
      const value = tf.tidy(() => {
        if (name.endsWith("LayerNorm.weight")) return tf.ones(shape);
        if (name.endsWith(".bias")) return tf.zeros(shape);
        return tf.randomNormal(shape, 0, std, "float32", seed++);
      });
      vars.set(name, tf.variable(value, true, uniqueVarName(`${prefix}/${name}`)));
      value.dispose();
    }
    return new this(config, vars, params);
  }

  /** Trainable variables, in canonical-name order. */
  get variables(): tf.Variable[] {
    this.assertLive();
    return [...this.vars.values()];
  }

  /** Variables by canonical name (Linear weights in `[in, out]` layout). */
  get namedVariables(): ReadonlyMap<string, tf.Variable> {
    this.assertLive();
    return this.vars;
  }

  /** Number of trainable parameters. */
  get parameterCount(): number {
    let n = 0;
    for (const v of this.vars.values()) n += v.size;
    return n;
  }

  /** Current weights as canonical PyTorch-layout {@link BertWeights} (copies, read from the device). */
  async toWeights(): Promise<BertWeights> {
    this.assertLive();
    const out: BertWeights = new Map();
    for (const [name, v] of this.vars) {
      const t = isLinearWeight(name) ? tf.tidy(() => tf.transpose(v)) : v;
      try {
        out.set(name, { shape: [...t.shape], data: new Float32Array((await t.data()) as Float32Array) });
      } finally {
        if (t !== v) t.dispose();
      }
    }
    return out;
  }

  /**
   * Overwrites every variable with `weights` (canonical names, PyTorch layout, as
   * {@link toWeights} gives them), e.g. to resume from a checkpoint. Exact: float32 copied as is.
   * @throws Error naming `source` and the first missing or misshapen tensor (nothing is changed then).
   */
  assignWeights(weights: BertWeights, source: string): void {
    this.assertLive();
    for (const [name, v] of this.vars) {
      const t = weights.get(name);
      if (!t) throw new Error(`BertEncoderTF.assignWeights: ${source} has no tensor '${name}'`);
      const expected = isLinearWeight(name) ? [v.shape[1], v.shape[0]] : v.shape;
      if (t.shape.join(",") !== expected.join(",")) {
        throw new Error(`BertEncoderTF.assignWeights: '${name}' in ${source} has shape [${t.shape}], expected [${expected}]`);
      }
    }
    for (const [name, v] of this.vars) {
      const t = weights.get(name)!;
      tf.tidy(() => {
        const x = tf.tensor(t.data, t.shape, "float32");
        v.assign(isLinearWeight(name) ? tf.transpose(x) : x);
      });
    }
  }

  /** Runs the encoder. Call inside `tf.tidy` (or an optimizer's `minimize`) to free intermediates. */
  forward(inputs: BertInputsTF, opts: ForwardOptions = {}): BertOutputsTF {
    this.assertLive();
    const c = this.config;
    const training = opts.training ?? false;
    const fp = this.fastPaths;
    const v = (name: string): tf.Variable => this.vars.get(name)!;
    const ids = toTensor(inputs.inputIds, "inputIds", "int32");
    const [B, L] = ids.shape;
    const mask = toTensor(inputs.attentionMask, "attentionMask", "float32");
    const types = inputs.tokenTypeIds === undefined ? tf.zeros([B, L], "int32") : toTensor(inputs.tokenTypeIds, "tokenTypeIds", "int32");
    for (const [t, what] of [
      [mask, "attentionMask"],
      [types, "tokenTypeIds"],
    ] as const) {
      if (t.shape[0] !== B || t.shape[1] !== L) {
        throw new Error(`BertEncoderTF: ${what} has shape [${t.shape}] but inputIds has [${B},${L}]`);
      }
    }
    if (L > c.max_position_embeddings) {
      throw new Error(`BertEncoderTF: sequence length ${L} exceeds max_position_embeddings ${c.max_position_embeddings}`);
    }
    if (Array.isArray(inputs.inputIds)) {
      for (const row of inputs.inputIds) {
        for (const id of row) {
          if (!Number.isInteger(id) || id < 0 || id >= c.vocab_size) {
            throw new Error(`BertEncoderTF: token id ${id} is outside the vocabulary [0, ${c.vocab_size})`);
          }
        }
      }
    }
    const H = c.hidden_size;
    const NH = c.num_attention_heads;
    const DH = H / NH;
    const hiddenDrop = training ? (c.hidden_dropout_prob ?? 0.1) : 0;
    const attnDrop = training ? (c.attention_probs_dropout_prob ?? 0.1) : 0;
    const drop = (x: tf.Tensor, rate: number): tf.Tensor => (rate > 0 ? dropout(x, rate, this.nextSeed(), this.dropoutImpl) : x);
    const act = c.hidden_act === "gelu" ? geluErf : c.hidden_act === "relu" ? tf.relu : geluTanh;

    // Embeddings, as [B*L, H] rows.
    const words = lookup(v("embeddings.word_embeddings.weight"), tf.reshape(ids, [B * L]), fp.scatterEmbedding);
    const segs = lookup(v("embeddings.token_type_embeddings.weight"), tf.reshape(types, [B * L]), fp.scatterEmbedding);
    const pos = tf.slice(v("embeddings.position_embeddings.weight"), [0, 0], [L, H]);
    let x = tf.reshape(tf.add(tf.reshape(tf.add(words, segs), [B, L, H]), pos), [B * L, H]);
    x = drop(layerNorm(x, v("embeddings.LayerNorm.weight"), v("embeddings.LayerNorm.bias"), c.layer_norm_eps), hiddenDrop);

    const maskAdd = tf.reshape(tf.mul(tf.sub(1, mask), MASKED_SCORE), [B, 1, 1, L]);
    const toHeads = (t: tf.Tensor): tf.Tensor => tf.transpose(tf.reshape(t, [B, L, NH, DH]), [0, 2, 1, 3]); // [B, NH, L, DH]
    const scale = 1 / Math.sqrt(DH);
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `encoder.layer.${l}.`;
      const lin = (t: tf.Tensor, name: string): tf.Tensor =>
        dense(t, v(`${p}${name}.weight`), v(`${p}${name}.bias`), fp.fastDense, fp.fusedBias);
      const qh = toHeads(tf.mul(lin(x, "attention.self.query"), scale));
      const kh = toHeads(lin(x, "attention.self.key"));
      const vh = toHeads(lin(x, "attention.self.value"));
      let scores: tf.Tensor;
      let context: tf.Tensor;
      if (fp.fastAttention) {
        const q3 = tf.reshape(qh, [B * NH, L, DH]);
        const kt3 = tf.transpose(tf.reshape(kh, [B * NH, L, DH]), [0, 2, 1]);
        scores = tf.reshape(batchMatMulXnn(q3, kt3), [B, NH, L, L]);
      } else {
        scores = tf.matMul(qh, kh, false, true);
      }
      const probs = drop(tf.softmax(tf.add(scores, maskAdd), -1), attnDrop);
      if (fp.fastAttention) {
        const p3 = tf.reshape(probs, [B * NH, L, L]);
        context = tf.reshape(batchMatMulXnn(p3, tf.reshape(vh, [B * NH, L, DH])), [B, NH, L, DH]);
      } else {
        context = tf.matMul(probs, vh);
      }
      const ctx = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [B * L, H]);
      const attnOut = drop(lin(ctx, "attention.output.dense"), hiddenDrop);
      x = layerNorm(
        tf.add(x, attnOut),
        v(`${p}attention.output.LayerNorm.weight`),
        v(`${p}attention.output.LayerNorm.bias`),
        c.layer_norm_eps,
      );
      const inter = act(lin(x, "intermediate.dense"));
      const out = drop(lin(inter, "output.dense"), hiddenDrop);
      x = layerNorm(tf.add(x, out), v(`${p}output.LayerNorm.weight`), v(`${p}output.LayerNorm.bias`), c.layer_norm_eps);
    }
    const lastHiddenState = tf.reshape(x, [B, L, H]) as tf.Tensor3D;
    const cls = tf.reshape(tf.slice(lastHiddenState, [0, 0, 0], [B, 1, H]), [B, H]) as tf.Tensor2D;
    const result: BertOutputsTF = { lastHiddenState, cls };
    if (this.hasPooler) {
      result.pooled = tf.tanh(dense(cls, v("pooler.dense.weight"), v("pooler.dense.bias"), fp.fastDense, fp.fusedBias)) as tf.Tensor2D;
      if (this.numLabels !== undefined) {
        const pooledIn = drop(result.pooled, hiddenDrop);
        result.logits = dense(pooledIn, v("classifier.weight"), v("classifier.bias"), fp.fastDense, fp.fusedBias) as tf.Tensor2D;
      }
    }
    return result;
  }

  /**
   * One vector per row: `cls` (token 0, DPR), `mean` (masked mean of the last hidden states) or `bert`
   * (the BERT pooler's output; needs a pooler).
   */
  encode(inputs: BertInputsTF, opts: ForwardOptions & { pooling?: PoolingTF } = {}): tf.Tensor2D {
    const pooling = opts.pooling ?? "cls";
    if (pooling === "bert" && !this.hasPooler) {
      throw new Error("BertEncoderTF: pooling 'bert' needs pooler.dense.* weights, which this encoder has not");
    }
    const out = this.forward(inputs, opts);
    if (pooling === "cls") return out.cls;
    if (pooling === "bert") return out.pooled!;
    const mask = toTensor(inputs.attentionMask, "attentionMask", "float32");
    if (pooling === "max") return maxPool(out.lastHiddenState, mask);
    return meanPool(out.lastHiddenState, mask);
  }

  /** Frees every variable. The encoder cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    this.disposed = true;
  }

  /**
   * Sets the seed of the next dropout mask (later masks use seed + 1, + 2, ...); `undefined` makes
   * dropout random. Trainers reseed per step so a resumed run draws the same masks.
   */
  reseedDropout(seed: number | undefined): void {
    this.dropoutSeed = seed;
  }

  private nextSeed(): number | undefined {
    if (this.dropoutSeed === undefined) return undefined;
    return this.dropoutSeed++;
  }

  private assertLive(): void {
    if (this.disposed) throw new Error("BertEncoderTF: used after dispose()");
  }
}

/** Masked mean over the sequence: `sum(h · mask) / max(sum(mask), 1e-9)`, `[B, S, H] → [B, H]`. */
export function meanPool(hidden: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor2D {
  const m = tf.expandDims(tf.cast(mask, "float32"), 2);
  const summed = tf.sum(tf.mul(hidden, m), 1);
  return tf.div(summed, tf.maximum(tf.sum(m, 1), 1e-9)) as tf.Tensor2D;
}

/** Masked max over the sequence (padding never wins): `[B, S, H] → [B, H]`. */
export function maxPool(hidden: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor2D {
  const m = tf.expandDims(tf.cast(mask, "float32"), 2);
  return tf.max(tf.add(hidden, tf.mul(tf.sub(1, m), -1e9)), 1) as tf.Tensor2D;
}

/** Rows scaled to unit L2 norm, `x / max(‖x‖, 1e-12)` (sentence-transformers' Normalize). */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.maximum(tf.norm(x, "euclidean", -1, true), 1e-12)) as tf.Tensor2D;
}

let varCounter = 0;
/** TF.js variable names are global: suffix a counter so several encoders can coexist. */
function uniqueVarName(base: string): string {
  varCounter += 1;
  return `${base}#${varCounter}`;
}

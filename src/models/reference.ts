/**
 * A plain-TypeScript BERT forward pass used as the ground truth for the ONNX writer.
 * It deliberately shares no code with the graph builder: straightforward loops over
 * PyTorch-layout weights (`[out, in]`), float64 accumulation. Slow; meant for small models.
 */
import type { BertConfig, BertWeights, NamedTensor } from "./types.js";

/** Value added to attention scores of padded keys, as in the original BERT. */
const MASKED_SCORE = -10000;

/** A tokenised batch: every row has the same length (pad with attention mask 0). */
export interface ReferenceBatch {
  inputIds: number[][];
  attentionMask: number[][];
  tokenTypeIds: number[][];
}

/** Outputs of {@link referenceBertForward}; arrays are row-major. */
export interface ReferenceOutput {
  /** `[B, S, H]` final hidden states. */
  lastHiddenState: Float32Array;
  shape: [number, number, number];
  /** `[B, H]` hidden state of token 0 (DPR pooling). */
  cls: Float32Array;
  /** `[B, H]` tanh(dense(CLS)) when `pooler.dense.*` weights are present. */
  bertPooled?: Float32Array;
  /** `[B, num_labels]` classifier(bertPooled) when `classifier.*` and pooler weights are present. */
  logits?: Float32Array;
}

function tensor(weights: BertWeights, name: string): NamedTensor {
  const t = weights.get(name);
  if (!t) throw new Error(`referenceBertForward: missing tensor '${name}'`);
  return t;
}

/** Numerical Recipes' Chebyshev erfc approximation (fractional error < 1.2e-7). */
function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const erfc =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - erfc : erfc - 1;
}

function activation(name: BertConfig["hidden_act"]): (x: number) => number {
  switch (name) {
    case "gelu":
      return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    case "gelu_new":
    case "gelu_pytorch_tanh":
      return (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    case "relu":
      return (x) => (x > 0 ? x : 0);
    default:
      throw new Error(`referenceBertForward: unsupported hidden_act '${String(name)}'`);
  }
}

/** y[r, o] = b[o] + sum_i x[r, i] * W[o, i] for `rows` rows. */
function linear(x: Float32Array, rows: number, w: NamedTensor, b: NamedTensor): Float32Array {
  const [outDim, inDim] = w.shape;
  const y = new Float32Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let acc = b.data[o];
      const wo = o * inDim;
      const xr = r * inDim;
      for (let i = 0; i < inDim; i++) acc += x[xr + i] * w.data[wo + i];
      y[r * outDim + o] = acc;
    }
  }
  return y;
}

function layerNormInPlace(x: Float32Array, rows: number, dim: number, gamma: NamedTensor, beta: NamedTensor, eps: number): void {
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[r * dim + i];
    mean /= dim;
    let variance = 0;
    for (let i = 0; i < dim; i++) variance += (x[r * dim + i] - mean) ** 2;
    variance /= dim;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < dim; i++) x[r * dim + i] = (x[r * dim + i] - mean) * inv * gamma.data[i] + beta.data[i];
  }
}

/**
 * Runs BERT on a batch with the exact Hugging Face `BertModel` math (eval mode).
 * @throws Error when rows have different lengths or token ids are out of range.
 */
export function referenceBertForward(config: BertConfig, weights: BertWeights, batch: ReferenceBatch): ReferenceOutput {
  const B = batch.inputIds.length;
  const S = B > 0 ? batch.inputIds[0].length : 0;
  const H = config.hidden_size;
  const nH = config.num_attention_heads;
  const d = H / nH;
  const eps = config.layer_norm_eps;
  for (let b = 0; b < B; b++) {
    if (batch.inputIds[b].length !== S || batch.attentionMask[b]?.length !== S || batch.tokenTypeIds[b]?.length !== S) {
      throw new Error(
        `referenceBertForward: row ${b} lengths differ (input_ids ${batch.inputIds[b].length}, attention_mask ` +
          `${batch.attentionMask[b]?.length}, token_type_ids ${batch.tokenTypeIds[b]?.length}; expected ${S})`,
      );
    }
  }
  if (S > config.max_position_embeddings) {
    throw new Error(`referenceBertForward: sequence length ${S} exceeds max_position_embeddings ${config.max_position_embeddings}`);
  }
  const act = activation(config.hidden_act);
  const rows = B * S;

  // Embeddings.
  const word = tensor(weights, "embeddings.word_embeddings.weight");
  const pos = tensor(weights, "embeddings.position_embeddings.weight");
  const typ = tensor(weights, "embeddings.token_type_embeddings.weight");
  let x = new Float32Array(rows * H);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const id = batch.inputIds[b][s];
      const tt = batch.tokenTypeIds[b][s];
      if (!(id >= 0 && id < config.vocab_size))
        throw new Error(`referenceBertForward: token id ${id} out of range [0, ${config.vocab_size})`);
      if (!(tt >= 0 && tt < config.type_vocab_size))
        throw new Error(`referenceBertForward: token type ${tt} out of range [0, ${config.type_vocab_size})`);
      const row = (b * S + s) * H;
      for (let h = 0; h < H; h++) x[row + h] = word.data[id * H + h] + pos.data[s * H + h] + typ.data[tt * H + h];
    }
  }
  layerNormInPlace(x, rows, H, tensor(weights, "embeddings.LayerNorm.weight"), tensor(weights, "embeddings.LayerNorm.bias"), eps);

  const scale = 1 / Math.sqrt(d);
  const scores = new Float64Array(S);
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `encoder.layer.${l}.`;
    const q = linear(x, rows, tensor(weights, `${p}attention.self.query.weight`), tensor(weights, `${p}attention.self.query.bias`));
    const k = linear(x, rows, tensor(weights, `${p}attention.self.key.weight`), tensor(weights, `${p}attention.self.key.bias`));
    const v = linear(x, rows, tensor(weights, `${p}attention.self.value.weight`), tensor(weights, `${p}attention.self.value.bias`));
    const context = new Float32Array(rows * H);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < nH; h++) {
        for (let i = 0; i < S; i++) {
          let max = -Infinity;
          for (let j = 0; j < S; j++) {
            let dot = 0;
            for (let e = 0; e < d; e++) dot += q[(b * S + i) * H + h * d + e] * k[(b * S + j) * H + h * d + e];
            scores[j] = dot * scale + (1 - batch.attentionMask[b][j]) * MASKED_SCORE;
            if (scores[j] > max) max = scores[j];
          }
          let sum = 0;
          for (let j = 0; j < S; j++) {
            scores[j] = Math.exp(scores[j] - max);
            sum += scores[j];
          }
          for (let e = 0; e < d; e++) {
            let acc = 0;
            for (let j = 0; j < S; j++) acc += scores[j] * v[(b * S + j) * H + h * d + e];
            context[(b * S + i) * H + h * d + e] = acc / sum;
          }
        }
      }
    }
    const attnOut = linear(
      context,
      rows,
      tensor(weights, `${p}attention.output.dense.weight`),
      tensor(weights, `${p}attention.output.dense.bias`),
    );
    for (let i = 0; i < attnOut.length; i++) attnOut[i] += x[i];
    layerNormInPlace(
      attnOut,
      rows,
      H,
      tensor(weights, `${p}attention.output.LayerNorm.weight`),
      tensor(weights, `${p}attention.output.LayerNorm.bias`),
      eps,
    );
    const inter = linear(attnOut, rows, tensor(weights, `${p}intermediate.dense.weight`), tensor(weights, `${p}intermediate.dense.bias`));
    for (let i = 0; i < inter.length; i++) inter[i] = act(inter[i]);
    const out = linear(inter, rows, tensor(weights, `${p}output.dense.weight`), tensor(weights, `${p}output.dense.bias`));
    for (let i = 0; i < out.length; i++) out[i] += attnOut[i];
    layerNormInPlace(out, rows, H, tensor(weights, `${p}output.LayerNorm.weight`), tensor(weights, `${p}output.LayerNorm.bias`), eps);
    x = out;
  }

  const cls = new Float32Array(B * H);
  for (let b = 0; b < B; b++) cls.set(x.subarray(b * S * H, b * S * H + H), b * H);
  const result: ReferenceOutput = { lastHiddenState: x, shape: [B, S, H], cls };
  if (weights.has("pooler.dense.weight")) {
    const pooled = linear(cls, B, tensor(weights, "pooler.dense.weight"), tensor(weights, "pooler.dense.bias"));
    for (let i = 0; i < pooled.length; i++) pooled[i] = Math.tanh(pooled[i]);
    result.bertPooled = pooled;
    if (weights.has("classifier.weight")) {
      result.logits = linear(pooled, B, tensor(weights, "classifier.weight"), tensor(weights, "classifier.bias"));
    }
  }
  return result;
}

/**
 * Writes BERT encoders as ONNX models that onnxruntime-node runs: `model.onnx` (graph, opset 17)
 * plus `model.onnx.data` (external weights, `[in, out]` layouts, aligned offsets), and
 * optionally an int8 dynamically quantized `model_quantized.onnx`.
 */
import { mkdir, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import type { BertConfig, BertWeights, NamedTensor } from "../types.js";
import { validateBertWeights } from "../weights.js";
import { commitTemp, writeTemp } from "../../utils/atomic-file.js";
import { attr, GraphBuilder } from "./graph-builder.js";
import { OnnxDataType, type ValueInfoDef } from "./onnx-proto.js";

/** Options for {@link exportBertOnnx}. */
export interface BertOnnxOptions {
  /**
   * `pooler_output` semantics: `"cls"` = hidden state of token 0 (facebook/dpr-* encoders),
   * `"bert"` = tanh(dense(CLS)) (BertModel's pooler, needs `pooler.dense.*`), `"none"` = no
   * `pooler_output`. Default `"cls"`, or `"bert"` when `classifier` is set.
   */
  pooler?: "cls" | "bert" | "none";
  /** Add `logits` `[B, num_labels]` = classifier(bert pooler) (BertForSequenceClassification). */
  classifier?: boolean;
  /** Also write an int8 dynamically quantized model next to the fp32 one. */
  quantize?: boolean;
  /**
   * Use onnxruntime contrib ops (com.microsoft MultiHeadAttention, SkipLayerNormalization,
   * BiasGelu / FastGelu) instead of standard-op subgraphs. Same math (tested against the
   * reference), but the model then runs only in onnxruntime, and scripts/bench-onnx-export.ts
   * measured no gain over the standard graph (which ORT's optimiser already fuses in part):
   * fp32 x1.02-1.08 on a 32-token query, int8 slower. Default false.
   */
  fused?: boolean;
  /** File name of the fp32 model. Default `model.onnx`; its weights go to `<fileName>.data`. */
  fileName?: string;
}

/** Value added to attention scores of padded keys (original BERT; ORT's Attention default). */
const MASKED_SCORE = -10000;
const OPSET = 17;
const MS_DOMAIN = "com.microsoft";

function transpose2d(t: NamedTensor): Float32Array {
  const [rows, cols] = t.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[base + c];
  }
  return out;
}

/**
 * Symmetric per-output-column int8 quantization of an `[in, out]` matrix:
 * `w ≈ q * scale[col]`, q in [-127, 127], zero point 0.
 */
export function quantizePerColumn(w: Float32Array, inDim: number, outDim: number): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(outDim);
  for (let i = 0; i < inDim; i++) {
    const row = i * outDim;
    for (let o = 0; o < outDim; o++) {
      const a = Math.abs(w[row + o]);
      if (a > scale[o]) scale[o] = a;
    }
  }
  for (let o = 0; o < outDim; o++) scale[o] = scale[o] > 0 ? scale[o] / 127 : 1;
  const q = new Int8Array(inDim * outDim);
  for (let i = 0; i < inDim; i++) {
    const row = i * outDim;
    for (let o = 0; o < outDim; o++) q[row + o] = Math.max(-127, Math.min(127, Math.round(w[row + o] / scale[o])));
  }
  return { q, scale };
}

interface BuildOptions {
  pooler: "cls" | "bert" | "none";
  classifier: boolean;
  quantize: boolean;
  fused: boolean;
  dataFileName: string;
}

function get(weights: BertWeights, name: string): NamedTensor {
  const t = weights.get(name);
  if (!t) throw new Error(`exportBertOnnx: missing tensor '${name}'`);
  return t;
}

/** Builds the graph; returns serialised model bytes and the external data chunks. */
function buildBertGraph(config: BertConfig, weights: BertWeights, opts: BuildOptions) {
  const g = new GraphBuilder(opts.dataFileName);
  const H = config.hidden_size;
  const nH = config.num_attention_heads;
  const headDim = H / nH;
  const inputIds = g.input("input_ids");
  const attentionMask = g.input("attention_mask");
  const tokenTypeIds = g.input("token_type_ids");

  /** x @ W^T + b for a PyTorch-layout Linear; int8 DynamicQuantizeMatMul when quantizing. */
  const linear = (x: string, prefix: string, quantizable: boolean): string => {
    const w = get(weights, `${prefix}.weight`);
    const b = get(weights, `${prefix}.bias`);
    const [outDim, inDim] = w.shape;
    const wt = transpose2d(w);
    const bias = g.floats(`${prefix}.bias`, [outDim], b.data);
    if (opts.quantize && quantizable) {
      const { q, scale } = quantizePerColumn(wt, inDim, outDim);
      const qName = g.initializer(`${prefix}.weight_quantized`, OnnxDataType.INT8, [inDim, outDim], q);
      const sName = g.floats(`${prefix}.weight_scale`, [outDim], scale);
      const zName = g.initializer(`${prefix}.weight_zero_point`, OnnxDataType.INT8, [outDim], new Int8Array(outDim));
      return g.op("DynamicQuantizeMatMul", [x, qName, sName, zName, bias], { domain: MS_DOMAIN, name: `${prefix}/DynamicQuantizeMatMul` });
    }
    const wName = g.floats(`${prefix}.weight_t`, [inDim, outDim], wt);
    const mm = g.op("MatMul", [x, wName], { name: `${prefix}/MatMul` });
    return g.op("Add", [mm, bias], { name: `${prefix}/Add` });
  };

  /**
   * Like {@link linear}, but in fused mode leaves the bias to the consumer (SkipLayerNormalization,
   * BiasGelu, FastGelu and MultiHeadAttention take a bias input): returns the bias initializer
   * as `bias` when it still has to be added.
   */
  const project = (x: string, prefix: string, biasInitializer = true): { value: string; bias?: string; biasPending: boolean } => {
    if (!opts.fused || opts.quantize) return { value: linear(x, prefix, true), biasPending: false };
    const w = get(weights, `${prefix}.weight`);
    const [outDim, inDim] = w.shape;
    const wName = g.floats(`${prefix}.weight_t`, [inDim, outDim], transpose2d(w));
    const value = g.op("MatMul", [x, wName], { name: `${prefix}/MatMul` });
    const bias = biasInitializer ? g.floats(`${prefix}.bias`, [outDim], get(weights, `${prefix}.bias`).data) : undefined;
    return { value, bias, biasPending: true };
  };

  /** LayerNorm(x + residual [+ bias]) as one com.microsoft SkipLayerNormalization node. */
  const skipLayerNorm = (x: { value: string; bias?: string }, residual: string, prefix: string): string =>
    g.op(
      "SkipLayerNormalization",
      [
        x.value,
        residual,
        g.floats(`${prefix}.weight`, [H], get(weights, `${prefix}.weight`).data),
        g.floats(`${prefix}.bias`, [H], get(weights, `${prefix}.bias`).data),
        ...(x.bias ? [x.bias] : []),
      ],
      { name: `${prefix}/SkipLayerNormalization`, domain: MS_DOMAIN, attributes: [attr.float("epsilon", config.layer_norm_eps)] },
    );

  /** The FFN activation with contrib kernels; adds the pending bias. */
  const fusedActivation = (x: { value: string; bias?: string }, prefix: string): string => {
    const inputs = x.bias ? [x.value, x.bias] : [x.value];
    switch (config.hidden_act) {
      case "gelu":
        return x.bias
          ? g.op("BiasGelu", inputs, { name: `${prefix}/BiasGelu`, domain: MS_DOMAIN })
          : g.op("Gelu", inputs, { name: `${prefix}/Gelu`, domain: MS_DOMAIN });
      case "gelu_new":
      case "gelu_pytorch_tanh":
        return g.op("FastGelu", inputs, { name: `${prefix}/FastGelu`, domain: MS_DOMAIN });
      case "relu": {
        const biased = x.bias ? g.op("Add", inputs, { name: `${prefix}/Add` }) : x.value;
        return g.op("Relu", [biased], { name: `${prefix}/Relu` });
      }
    }
  };

  const layerNorm = (x: string, prefix: string): string =>
    g.op(
      "LayerNormalization",
      [
        x,
        g.floats(`${prefix}.weight`, [H], get(weights, `${prefix}.weight`).data),
        g.floats(`${prefix}.bias`, [H], get(weights, `${prefix}.bias`).data),
      ],
      {
        name: `${prefix}/LayerNormalization`,
        attributes: [attr.int("axis", -1), attr.float("epsilon", config.layer_norm_eps)],
      },
    );

  let oneName: string | undefined;
  const one = (): string => (oneName ??= g.scalar("one", 1));
  let halfName: string | undefined;
  const half = (): string => (halfName ??= g.scalar("half", 0.5));
  const activation = (x: string, prefix: string): string => {
    switch (config.hidden_act) {
      case "gelu": {
        // 0.5 * x * (1 + erf(x / sqrt(2))), the pattern ORT fuses into its Gelu kernel.
        const div = g.op("Div", [x, g.scalar(`${prefix}.sqrt2`, Math.SQRT2)], { name: `${prefix}/gelu/Div` });
        const erf = g.op("Erf", [div], { name: `${prefix}/gelu/Erf` });
        const add = g.op("Add", [erf, one()], { name: `${prefix}/gelu/Add` });
        const mul = g.op("Mul", [x, add], { name: `${prefix}/gelu/Mul` });
        return g.op("Mul", [mul, half()], { name: `${prefix}/gelu/Mul_half` });
      }
      case "gelu_new":
      case "gelu_pytorch_tanh": {
        // 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
        const cube = g.op("Pow", [x, g.scalar(`${prefix}.three`, 3)], { name: `${prefix}/gelu_tanh/Pow` });
        const scaled = g.op("Mul", [cube, g.scalar(`${prefix}.c`, 0.044715)], { name: `${prefix}/gelu_tanh/Mul_c` });
        const inner = g.op("Add", [x, scaled], { name: `${prefix}/gelu_tanh/Add_x` });
        const arg = g.op("Mul", [inner, g.scalar(`${prefix}.k`, Math.sqrt(2 / Math.PI))], { name: `${prefix}/gelu_tanh/Mul_k` });
        const tanh = g.op("Tanh", [arg], { name: `${prefix}/gelu_tanh/Tanh` });
        const add = g.op("Add", [tanh, one()], { name: `${prefix}/gelu_tanh/Add_1` });
        const mul = g.op("Mul", [x, add], { name: `${prefix}/gelu_tanh/Mul_x` });
        return g.op("Mul", [mul, half()], { name: `${prefix}/gelu_tanh/Mul_half` });
      }
      case "relu":
        return g.op("Relu", [x], { name: `${prefix}/Relu` });
    }
  };

  // Embeddings: word + position (0..S-1) + token type, then LayerNorm.
  const word = g.op(
    "Gather",
    [
      g.floats("embeddings.word_embeddings.weight", [config.vocab_size, H], get(weights, "embeddings.word_embeddings.weight").data),
      inputIds,
    ],
    {
      name: "embeddings/word/Gather",
      attributes: [attr.int("axis", 0)],
    },
  );
  const seqLen = g.op("Shape", [inputIds], { name: "embeddings/seq_len", attributes: [attr.int("start", 1), attr.int("end", 2)] });
  const positions = g.op(
    "Slice",
    [
      g.floats(
        "embeddings.position_embeddings.weight",
        [config.max_position_embeddings, H],
        get(weights, "embeddings.position_embeddings.weight").data,
      ),
      g.int64s("zero_1d", [1], [0]),
      seqLen,
      g.int64s("axis0_1d", [1], [0]),
    ],
    { name: "embeddings/position/Slice" },
  );
  const tokenTypes = g.op(
    "Gather",
    [
      g.floats(
        "embeddings.token_type_embeddings.weight",
        [config.type_vocab_size, H],
        get(weights, "embeddings.token_type_embeddings.weight").data,
      ),
      tokenTypeIds,
    ],
    {
      name: "embeddings/token_type/Gather",
      attributes: [attr.int("axis", 0)],
    },
  );
  const sum1 = g.op("Add", [word, positions], { name: "embeddings/Add_position" });
  const sum2 = g.op("Add", [sum1, tokenTypes], { name: "embeddings/Add_token_type" });
  let hidden = layerNorm(sum2, "embeddings.LayerNorm");

  // Standard-op attention: additive mask [B, 1, 1, S] (0 for tokens, -10000 for padding),
  // heads split with Reshape + Transpose. Built only when not fused.
  const standardAttention = (() => {
    if (opts.fused) return undefined;
    const maskFloat = g.op("Cast", [attentionMask], { name: "mask/Cast", attributes: [attr.int("to", OnnxDataType.FLOAT)] });
    const inverted = g.op("Sub", [one(), maskFloat], { name: "mask/Sub" });
    const maskBias = g.op("Mul", [inverted, g.scalar("mask_value", MASKED_SCORE)], { name: "mask/Mul" });
    return {
      maskBias4d: g.op("Unsqueeze", [maskBias, g.int64s("mask_axes", [2], [1, 2])], { name: "mask/Unsqueeze" }),
      headsShape: g.int64s("heads_shape", [4], [0, 0, nH, headDim]),
      hiddenShape: g.int64s("hidden_shape", [3], [0, 0, H]),
      invSqrtD: g.scalar("inv_sqrt_head_dim", 1 / Math.sqrt(headDim)),
    };
  })();
  const splitHeads = (x: string, prefix: string, perm: number[]): string => {
    const reshaped = g.op("Reshape", [x, standardAttention!.headsShape], { name: `${prefix}/Reshape` });
    return g.op("Transpose", [reshaped], { name: `${prefix}/Transpose`, attributes: [attr.ints("perm", perm)] });
  };

  const keyPaddingMask = opts.fused
    ? g.op("Cast", [attentionMask], { name: "mask/Cast_int32", attributes: [attr.int("to", OnnxDataType.INT32)] })
    : "";
  for (let l = 0; l < config.num_hidden_layers && opts.fused; l++) {
    const p = `encoder.layer.${l}`;
    // Q/K/V biases go to MultiHeadAttention as one [3H] bias input.
    const q = project(hidden, `${p}.attention.self.query`, false);
    const k = project(hidden, `${p}.attention.self.key`, false);
    const v = project(hidden, `${p}.attention.self.value`, false);
    let qkvBias = "";
    if (q.biasPending) {
      const data = new Float32Array(3 * H);
      data.set(get(weights, `${p}.attention.self.query.bias`).data, 0);
      data.set(get(weights, `${p}.attention.self.key.bias`).data, H);
      data.set(get(weights, `${p}.attention.self.value.bias`).data, 2 * H);
      qkvBias = g.floats(`${p}.attention.self.qkv_bias`, [3 * H], data);
    }
    const context = g.op("MultiHeadAttention", [q.value, k.value, v.value, qkvBias, keyPaddingMask], {
      name: `${p}.attention.self/MultiHeadAttention`,
      domain: MS_DOMAIN,
      attributes: [attr.int("num_heads", nH), attr.float("mask_filter_value", MASKED_SCORE)],
    });
    const attnNorm = skipLayerNorm(project(context, `${p}.attention.output.dense`), hidden, `${p}.attention.output.LayerNorm`);
    const inter = fusedActivation(project(attnNorm, `${p}.intermediate.dense`), `${p}.intermediate`);
    hidden = skipLayerNorm(project(inter, `${p}.output.dense`), attnNorm, `${p}.output.LayerNorm`);
  }
  for (let l = 0; l < config.num_hidden_layers && standardAttention; l++) {
    const p = `encoder.layer.${l}`;
    const { maskBias4d, hiddenShape, invSqrtD } = standardAttention;
    const q = splitHeads(linear(hidden, `${p}.attention.self.query`, true), `${p}.attention.self.query`, [0, 2, 1, 3]);
    const k = splitHeads(linear(hidden, `${p}.attention.self.key`, true), `${p}.attention.self.key`, [0, 2, 3, 1]);
    const v = splitHeads(linear(hidden, `${p}.attention.self.value`, true), `${p}.attention.self.value`, [0, 2, 1, 3]);
    const scores = g.op("MatMul", [q, k], { name: `${p}.attention.self/scores/MatMul` });
    const scaled = g.op("Mul", [scores, invSqrtD], { name: `${p}.attention.self/scores/Mul` });
    const masked = g.op("Add", [scaled, maskBias4d], { name: `${p}.attention.self/scores/Add_mask` });
    const probs = g.op("Softmax", [masked], { name: `${p}.attention.self/Softmax`, attributes: [attr.int("axis", -1)] });
    const context = g.op("MatMul", [probs, v], { name: `${p}.attention.self/context/MatMul` });
    const merged = g.op("Transpose", [context], {
      name: `${p}.attention.self/context/Transpose`,
      attributes: [attr.ints("perm", [0, 2, 1, 3])],
    });
    const contextFlat = g.op("Reshape", [merged, hiddenShape], { name: `${p}.attention.self/context/Reshape` });
    const attnOut = linear(contextFlat, `${p}.attention.output.dense`, true);
    const attnResidual = g.op("Add", [attnOut, hidden], { name: `${p}.attention.output/Add_residual` });
    const attnNorm = layerNorm(attnResidual, `${p}.attention.output.LayerNorm`);
    const inter = activation(linear(attnNorm, `${p}.intermediate.dense`, true), `${p}.intermediate`);
    const ffnOut = linear(inter, `${p}.output.dense`, true);
    const ffnResidual = g.op("Add", [ffnOut, attnNorm], { name: `${p}.output/Add_residual` });
    hidden = layerNorm(ffnResidual, `${p}.output.LayerNorm`);
  }

  g.node("Identity", [hidden], { name: "output/last_hidden_state", outputs: ["last_hidden_state"] });
  const outputs: ValueInfoDef[] = [{ name: "last_hidden_state", elemType: OnnxDataType.FLOAT, shape: ["batch", "sequence", H] }];

  if (opts.pooler !== "none" || opts.classifier) {
    const cls = g.op("Gather", [hidden, g.int64s("cls_index", [], [0])], { name: "pooler/cls/Gather", attributes: [attr.int("axis", 1)] });
    let pooled = cls;
    if (opts.pooler === "bert") {
      pooled = g.op("Tanh", [linear(cls, "pooler.dense", false)], { name: "pooler/Tanh" });
    }
    if (opts.pooler !== "none") {
      g.node("Identity", [pooled], { name: "output/pooler_output", outputs: ["pooler_output"] });
      outputs.push({ name: "pooler_output", elemType: OnnxDataType.FLOAT, shape: ["batch", H] });
    }
    if (opts.classifier) {
      const numLabels = get(weights, "classifier.weight").shape[0];
      g.node("Identity", [linear(pooled, "classifier", false)], { name: "output/logits", outputs: ["logits"] });
      outputs.push({ name: "logits", elemType: OnnxDataType.FLOAT, shape: ["batch", numLabels] });
    }
  }

  const batchInput = (name: string): ValueInfoDef => ({ name, elemType: OnnxDataType.INT64, shape: ["batch", "sequence"] });
  return g.build({
    graphName: "bert",
    inputs: [batchInput(inputIds), batchInput(attentionMask), batchInput(tokenTypeIds)],
    outputs,
    opsets:
      opts.quantize || opts.fused
        ? [
            { domain: "", version: OPSET },
            { domain: MS_DOMAIN, version: 1 },
          ]
        : [{ domain: "", version: OPSET }],
    metadata: {
      bert_config: JSON.stringify(config),
      pooler: opts.pooler,
      classifier: String(opts.classifier),
      fused: String(opts.fused),
      quantization: opts.quantize ? "int8 dynamic, per-column symmetric weights (DynamicQuantizeMatMul)" : "none",
    },
    docString: "BERT encoder written by langchain-dpr (src/models/onnx/bert-graph.ts)",
  });
}

/**
 * Exports BERT weights (canonical names, PyTorch layout) as an ONNX model in `dir`.
 *
 * Writes `<fileName>` (default `model.onnx`) and `<fileName>.data`; with `quantize`, also
 * `<name>_quantized.onnx` + `.data`. Every file is written to a temp file and renamed, data
 * file first, so an earlier export in the same folder stays loadable if writing fails.
 *
 * Inputs: `input_ids`, `attention_mask`, `token_type_ids` (int64 `[batch, sequence]`).
 * Outputs: `last_hidden_state` `[B, S, H]`, `pooler_output` `[B, H]` (unless pooler is
 * `"none"`), `logits` `[B, num_labels]` with `classifier`. Sequences longer than
 * `max_position_embeddings` and out-of-range token ids make `session.run` throw (node
 * `embeddings/Add_position` / `embeddings/word/Gather`); callers truncate beforehand.
 * The external data file is referenced by a relative path: load the model from its path.
 *
 * @throws Error when weights are missing or mis-shaped for the config, or options conflict.
 */
export async function exportBertOnnx(
  dir: string,
  config: BertConfig,
  weights: BertWeights,
  opts: BertOnnxOptions = {},
): Promise<{ modelPath: string; quantizedPath?: string }> {
  const classifier = opts.classifier ?? false;
  const pooler = opts.pooler ?? (classifier ? "bert" : "cls");
  const fileName = opts.fileName ?? "model.onnx";
  if (fileName !== basename(fileName) || !fileName.endsWith(".onnx")) {
    throw new Error(`exportBertOnnx: fileName must be a plain file name ending in .onnx, got '${fileName}'`);
  }
  if (!["cls", "bert", "none"].includes(pooler)) {
    throw new Error(`exportBertOnnx: pooler must be one of cls, bert, none; got '${String(pooler)}'`);
  }
  if (classifier && pooler !== "bert") {
    throw new Error(`exportBertOnnx: classifier: true needs the BERT pooler (pooler 'bert'), got pooler '${pooler}'`);
  }
  validateBertWeights(config, weights, "exportBertOnnx");
  if (pooler === "bert" && !weights.has("pooler.dense.weight")) {
    throw new Error("exportBertOnnx: pooler 'bert' needs tensors 'pooler.dense.weight' and 'pooler.dense.bias'");
  }
  if (classifier && !weights.has("classifier.weight")) {
    throw new Error("exportBertOnnx: classifier: true needs tensors 'classifier.weight' and 'classifier.bias'");
  }

  await mkdir(dir, { recursive: true });
  const write = async (name: string, quantize: boolean): Promise<string> => {
    const dataFileName = `${name}.data`;
    const built = buildBertGraph(config, weights, { pooler, classifier, quantize, fused: opts.fused ?? false, dataFileName });
    const modelPath = join(dir, name);
    const dataPath = join(dir, dataFileName);
    const dataTmp = await writeTemp(dataPath, built.dataChunks);
    let modelTmp: string;
    try {
      modelTmp = await writeTemp(modelPath, [built.model]);
    } catch (err) {
      await rm(dataTmp, { force: true });
      throw err;
    }
    await commitTemp(dataTmp, dataPath);
    await commitTemp(modelTmp, modelPath);
    return modelPath;
  };
  const modelPath = await write(fileName, false);
  if (!opts.quantize) return { modelPath };
  const quantizedPath = await write(fileName.replace(/\.onnx$/, "_quantized.onnx"), true);
  return { modelPath, quantizedPath };
}

/**
 * Writes cross-encoder folders in the Hugging Face layout that
 * `cross-encoder/ms-marco-MiniLM-L-6-v2` uses: `config.json` with
 * `architectures: ["BertForSequenceClassification"]` and `num_labels`, the tokenizer files, and
 * `model.onnx` whose `logits` output is `[batch, num_labels]` (plus `model.safetensors`, and
 * optionally `model_quantized.onnx`). The folder is written atomically through
 * {@link writeEncoderDir}: built beside the target and renamed into place.
 *
 * `createRandomCrossEncoder` (in `langchain-dpr/testing`) makes a randomly initialised one for
 * tests and benchmarks.
 *
 * @module
 */
import { writeEncoderDir } from "../models/model-dir.js";
import type { BertConfig, BertWeights } from "../models/types.js";
import { BertTokenizer } from "../tokenizers/bert-tokenizer.js";

/** What goes into a cross-encoder folder. */
export interface CrossEncoderDirSpec {
  /** Encoder shape; `num_labels` is taken from the classifier weights. */
  config: BertConfig;
  /** BERT weights with `pooler.dense.*` and `classifier.weight` `[num_labels, H]` / `classifier.bias`. */
  weights: BertWeights;
  tokenizer: BertTokenizer;
  /** Also write `model_quantized.onnx` (int8). Default false. */
  quantize?: boolean;
  /** Also write `model.safetensors`. Default true. */
  safetensors?: boolean;
}

/**
 * Writes a cross-encoder folder (BertForSequenceClassification: `logits` = classifier(tanh(dense(CLS)))).
 * @throws Error when the weights have no classifier or pooler, or the tokenizer does not fit the config.
 */
export async function writeCrossEncoderDir(dir: string, spec: CrossEncoderDirSpec): Promise<void> {
  const classifier = spec.weights.get("classifier.weight");
  if (!classifier || classifier.shape.length !== 2) {
    throw new Error(
      "writeCrossEncoderDir: weights need 'classifier.weight' [num_labels, hidden_size] (e.g. randomBertWeights(config, { numLabels: 1 }))",
    );
  }
  if (!spec.weights.has("pooler.dense.weight")) {
    throw new Error("writeCrossEncoderDir: weights need the BERT pooler 'pooler.dense.weight' / 'pooler.dense.bias'");
  }
  const numLabels = classifier.shape[0]!;
  const id2label: Record<string, string> = {};
  const label2id: Record<string, number> = {};
  for (let i = 0; i < numLabels; i++) {
    id2label[String(i)] = `LABEL_${i}`;
    label2id[`LABEL_${i}`] = i;
  }
  await writeEncoderDir(dir, {
    config: { ...spec.config, num_labels: numLabels },
    weights: spec.weights,
    tokenizer: spec.tokenizer,
    onnx: { classifier: true, pooler: "bert", quantize: spec.quantize },
    safetensors: spec.safetensors,
    extraConfig: { architectures: ["BertForSequenceClassification"], id2label, label2id },
  });
}

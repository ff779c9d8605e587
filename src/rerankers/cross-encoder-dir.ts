/**
 * Writes cross-encoder folders in the Hugging Face layout that
 * `cross-encoder/ms-marco-MiniLM-L-6-v2` uses: `config.json` with
 * `architectures: ["BertForSequenceClassification"]` and `num_labels`, the tokenizer files, and
 * `model.onnx` whose `logits` output is `[batch, num_labels]` (plus `model.safetensors`, and
 * optionally `model_quantized.onnx`). The folder is written atomically through
 * {@link writeEncoderDir}: built beside the target and renamed into place.
 *
 * {@link createRandomCrossEncoder} makes a randomly initialised one (tests, benchmarks): the
 * scores mean nothing, but the files, shapes and costs are those of a real model of that shape.
 *
 * @module
 */
import { BERT_BASE_CONFIG, MINILM_L6_CONFIG, tinyBertConfig } from "../models/config.js";
import { writeEncoderDir } from "../models/model-dir.js";
import type { BertConfig, BertWeights } from "../models/types.js";
import { randomBertWeights } from "../models/weights.js";
import { BertTokenizer } from "../tokenizers/bert-tokenizer.js";
import { buildWordPieceVocab } from "../tokenizers/vocab.js";

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
    throw new Error("writeCrossEncoderDir: weights need 'classifier.weight' [num_labels, hidden_size] (e.g. randomBertWeights(config, { numLabels: 1 }))");
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

/** Shapes {@link createRandomCrossEncoder} can make. */
export type CrossEncoderShape = "minilm" | "bert-base" | "tiny";

/** Options of {@link createRandomCrossEncoder}. */
export interface RandomCrossEncoderOptions {
  /** minilm (6 layers x 384, the ms-marco-MiniLM-L-6-v2 shape), bert-base (12 x 768) or tiny (2 x 32). */
  shape: CrossEncoderShape;
  /** Texts the WordPiece vocabulary is learnt from. */
  texts: Iterable<string>;
  /** Vocabulary size (default 30522, 2000 for tiny); padded with [unused] entries. */
  vocabSize?: number;
  /** Weight seed. Default 7. */
  seed?: number;
  /** Logits per pair. Default 1 (a relevance score). */
  numLabels?: number;
  /**
   * Std of the random weights (config.json `initializer_range`). Default 0.02 as in BERT; with
   * it a random model gives nearly equal scores to every pair (differences ~1e-5), so tests that
   * check orderings use a larger value (0.3 spreads logits over ~1).
   */
  initializerRange?: number;
  /** Multiplies the classifier weights (random ones give logits close to 0; a larger spread makes orderings clear in tests). Default 1. */
  classifierScale?: number;
  /** Max sequence length of the config. Default 512 (128 for tiny). */
  maxPositionEmbeddings?: number;
  /** Also write model_quantized.onnx. Default false. */
  quantize?: boolean;
  /** Also write model.safetensors. Default false (saves time and disk in tests and benchmarks). */
  safetensors?: boolean;
}

/** The config of a {@link CrossEncoderShape}. */
export function crossEncoderConfig(shape: CrossEncoderShape, vocabSize: number, maxPositionEmbeddings?: number): BertConfig {
  const base =
    shape === "minilm" ? MINILM_L6_CONFIG : shape === "bert-base" ? BERT_BASE_CONFIG : shape === "tiny" ? tinyBertConfig() : undefined;
  if (!base) throw new Error(`createRandomCrossEncoder: shape '${String(shape)}' is not one of minilm, bert-base, tiny`);
  return { ...base, vocab_size: vocabSize, max_position_embeddings: maxPositionEmbeddings ?? base.max_position_embeddings };
}

/**
 * Writes a randomly initialised cross-encoder folder and returns what it was built from, so a
 * test can compute the expected logits with `referenceBertForward`.
 */
export async function createRandomCrossEncoder(
  dir: string,
  opts: RandomCrossEncoderOptions,
): Promise<{ config: BertConfig; weights: BertWeights; tokenizer: BertTokenizer }> {
  const vocabSize = opts.vocabSize ?? (opts.shape === "tiny" ? 2000 : 30522);
  const config = crossEncoderConfig(opts.shape, vocabSize, opts.maxPositionEmbeddings);
  const numLabels = opts.numLabels ?? 1;
  config.num_labels = numLabels;
  if (opts.initializerRange !== undefined) {
    if (!(opts.initializerRange > 0)) throw new Error(`createRandomCrossEncoder: initializerRange must be > 0, got ${opts.initializerRange}`);
    config.initializer_range = opts.initializerRange;
  }
  const tokenizer = BertTokenizer.fromVocab(buildWordPieceVocab(opts.texts, { vocabSize, lowercase: true }), {
    lowercase: true,
    modelMaxLength: config.max_position_embeddings,
  });
  const weights = randomBertWeights(config, { seed: opts.seed ?? 7, numLabels, pooler: true });
  const scale = opts.classifierScale ?? 1;
  if (scale !== 1) {
    const w = weights.get("classifier.weight")!.data;
    for (let i = 0; i < w.length; i++) w[i]! *= scale;
  }
  await writeCrossEncoderDir(dir, { config, weights, tokenizer, quantize: opts.quantize, safetensors: opts.safetensors ?? false });
  return { config, weights, tokenizer };
}

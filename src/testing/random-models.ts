/**
 * Random models in the real folder layouts: a DPR model folder ({@link createRandomDPRModel}) and a
 * cross-encoder folder ({@link createRandomCrossEncoder}) with random BERT weights and a WordPiece
 * vocabulary learnt from the given texts. Their vectors and scores mean nothing; the files, shapes
 * and costs are those of a real model of that shape, which is what tests, benchmarks and demos need
 * where no pretrained weights can be had.
 *
 * @module
 */
import { BERT_BASE_CONFIG, MINILM_L6_CONFIG, tinyBertConfig } from "../models/config.js";
import { saveDPRModel, type DPRModelConfig } from "../models/model-dir.js";
import type { BertConfig, BertWeights } from "../models/types.js";
import { randomBertWeights } from "../models/weights.js";
import { writeCrossEncoderDir } from "../rerankers/cross-encoder-dir.js";
import { BertTokenizer } from "../tokenizers/bert-tokenizer.js";
import { buildWordPieceVocab } from "../tokenizers/vocab.js";

/** Encoder shapes {@link createRandomDPRModel} can make. */
export type RandomModelShape = "bert-base" | "minilm" | "tiny";

/** Options of {@link createRandomDPRModel}. */
export interface RandomDPRModelOptions {
  /** bert-base (12x768, the facebook/dpr-* shape), minilm (6x384) or tiny (2x32). */
  shape: RandomModelShape;
  /** Texts the WordPiece vocabulary is learnt from. */
  texts: Iterable<string>;
  /** Vocabulary size (default 30522 for bert-base/minilm, 2000 for tiny); padded with [unused] entries. */
  vocabSize?: number;
  /** Question encoder seed; the passage encoder uses seed + 1. Default 42. */
  seed?: number;
  /** Also write model_quantized.onnx (int8). Default false. */
  quantize?: boolean;
  /** One shared encoder (encoder/) instead of two. Default false. */
  shared?: boolean;
  /** Also write model.safetensors. Default true. */
  safetensors?: boolean;
  /** Settings for dpr_config.json. */
  dprConfig?: Partial<DPRModelConfig>;
}

/** The BERT config of a {@link RandomModelShape} with the given vocabulary size. */
export function randomModelConfig(shape: RandomModelShape, vocabSize: number): BertConfig {
  switch (shape) {
    case "bert-base":
      return { ...BERT_BASE_CONFIG, vocab_size: vocabSize };
    case "minilm":
      return { ...MINILM_L6_CONFIG, vocab_size: vocabSize };
    case "tiny":
      return tinyBertConfig({ vocab_size: vocabSize });
    default:
      throw new Error(`createRandomDPRModel: shape '${String(shape)}' is not one of bert-base, minilm, tiny`);
  }
}

/**
 * Writes a randomly initialised DPR model folder (random BERT weights, a WordPiece vocabulary
 * learnt from `texts`) in the model folder format. The vectors mean nothing; the folder has
 * exactly the files, shapes and costs of a real model of that shape.
 */
export async function createRandomDPRModel(dir: string, opts: RandomDPRModelOptions): Promise<{ config: BertConfig }> {
  const vocabSize = opts.vocabSize ?? (opts.shape === "tiny" ? 2000 : 30522);
  const config = randomModelConfig(opts.shape, vocabSize);
  const tokenizer = BertTokenizer.fromVocab(buildWordPieceVocab(opts.texts, { vocabSize, lowercase: true }), { lowercase: true });
  const seed = opts.seed ?? 42;
  const encoder = (s: number) => ({
    config,
    weights: randomBertWeights(config, { seed: s }),
    onnx: { quantize: opts.quantize },
    safetensors: opts.safetensors,
  });
  await saveDPRModel(dir, {
    question: encoder(seed),
    passage: opts.shared ? undefined : encoder(seed + 1),
    tokenizer,
    dprConfig: opts.dprConfig,
  });
  return { config };
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
    if (!(opts.initializerRange > 0))
      throw new Error(`createRandomCrossEncoder: initializerRange must be > 0, got ${opts.initializerRange}`);
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

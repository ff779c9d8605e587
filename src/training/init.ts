/**
 * Where a training run starts from:
 *
 * - {@link loadInitialModel}: a model folder of ours (question_encoder/ + passage_encoder/, or a shared
 *   encoder/), or a Hugging Face BERT/DPR checkpoint folder (config.json + model.safetensors +
 *   vocab.txt or tokenizer.json; tensor names of bert-base-uncased or facebook/dpr-* are mapped by
 *   canonicalizeBertWeights), or a `model.safetensors` file with config.json and vocab.txt beside it;
 * - {@link scratchModel}: a config of the given shape and a WordPiece vocabulary learnt from the
 *   corpus with this project's `buildWordPieceVocab` (weights are then initialised by the trainer).
 */
import { stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { readBertCheckpoint } from "../models/checkpoint.js";
import { BERT_BASE_CONFIG, parseBertConfig } from "../models/config.js";
import { resolveDPRModelDir } from "../models/model-dir.js";
import type { BertConfig, BertWeights } from "../models/types.js";
import { BertTokenizer } from "../tokenizers/bert-tokenizer.js";
import { buildWordPieceVocab } from "../tokenizers/vocab.js";

const WHO = "training init";

/** A starting point for the trainer. */
export interface InitialModel {
  config: BertConfig;
  tokenizer: BertTokenizer;
  question: BertWeights;
  /** Present when the source has a separate passage encoder. */
  passage?: BertWeights;
  /** Human-readable description of the source (for training.json). */
  source: string;
}

async function readEncoder(dir: string): Promise<{ config: BertConfig; weights: BertWeights }> {
  try {
    await stat(`${dir}/model.safetensors`);
  } catch {
    throw new Error(`${WHO}: ${dir} has no model.safetensors; training starts from safetensors weights (an ONNX-only folder cannot be trained)`);
  }
  const { config, weights } = await readBertCheckpoint(dir);
  return { config, weights };
}

/**
 * Loads initial weights, config and tokenizer from a folder or a model.safetensors file.
 * @throws Error naming the path and what is missing.
 */
export async function loadInitialModel(path: string): Promise<InitialModel> {
  let s;
  try {
    s = await stat(path);
  } catch {
    throw new Error(`${WHO}: ${path} does not exist`);
  }
  const dir = s.isDirectory() ? path : dirname(path);
  if (!s.isDirectory() && basename(path) !== "model.safetensors") {
    throw new Error(`${WHO}: ${path}: expected a model folder or a file named model.safetensors`);
  }
  const layout = await resolveDPRModelDir(dir, WHO);
  const q = await readEncoder(layout.questionEncoderDir);
  const tokenizer = await BertTokenizer.fromDir(layout.questionEncoderDir);
  if (layout.shared) return { config: q.config, tokenizer, question: q.weights, source: `${layout.questionEncoderDir} (one encoder)` };
  const p = await readEncoder(layout.passageEncoderDir);
  for (const key of ["hidden_size", "num_hidden_layers", "vocab_size", "max_position_embeddings"] as const) {
    if (p.config[key] !== q.config[key]) {
      throw new Error(`${WHO}: ${key} differs between ${layout.questionEncoderDir} (${q.config[key]}) and ${layout.passageEncoderDir} (${p.config[key]})`);
    }
  }
  return { config: q.config, tokenizer, question: q.weights, passage: p.weights, source: `${layout.dir} (question + passage encoders)` };
}

/** Shape of a model trained from scratch. */
export interface ScratchModelParams {
  hidden: number;
  layers: number;
  heads: number;
  ffn: number;
  /** max_position_embeddings. */
  maxLen: number;
  /** WordPiece vocabulary size (exact; padded with [unused] entries). */
  vocabSize: number;
  /** Texts the vocabulary is learnt from (e.g. titles and texts of the corpus). */
  texts: Iterable<string>;
  /** Dropout of hidden states and attention (default 0.1). */
  dropout?: number;
}

/** A BERT config of the given shape and a WordPiece vocabulary learnt from `texts`. */
export function scratchModel(params: ScratchModelParams): { config: BertConfig; tokenizer: BertTokenizer } {
  const vocab = buildWordPieceVocab(params.texts, { vocabSize: params.vocabSize, lowercase: true });
  const config = parseBertConfig(
    {
      ...BERT_BASE_CONFIG,
      vocab_size: vocab.length,
      hidden_size: params.hidden,
      num_hidden_layers: params.layers,
      num_attention_heads: params.heads,
      intermediate_size: params.ffn,
      max_position_embeddings: params.maxLen,
      hidden_dropout_prob: params.dropout ?? 0.1,
      attention_probs_dropout_prob: params.dropout ?? 0.1,
    },
    "scratchModel",
  );
  if (params.hidden % params.heads !== 0) throw new Error(`${WHO}: hidden ${params.hidden} is not a multiple of heads ${params.heads}`);
  return { config, tokenizer: BertTokenizer.fromVocab(vocab, { lowercase: true, modelMaxLength: params.maxLen }) };
}

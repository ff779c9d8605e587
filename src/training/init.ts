/**
 * Where a training run starts from:
 *
 * - {@link loadInitialModel}: a model folder of ours (question_encoder/ + passage_encoder/, or a shared
 *   encoder/), or a Hugging Face BERT/DPR/sentence-transformers folder (config.json + weights:
 *   model.safetensors, pytorch_model.bin or their sharded forms + vocab.txt or tokenizer.json; tensor
 *   names of bert-base-uncased or facebook/dpr-* are mapped by canonicalizeBertWeights), or a weights
 *   file with config.json and the vocabulary beside it, or a hub id (`BAAI/bge-small-en-v1.5`,
 *   downloaded into the cache first). The folder's own settings (pooling, normalisation, prompts,
 *   titles) come along, so a fine-tuned model embeds as its source did;
 * - {@link scratchModel}: a config of the given shape and a WordPiece vocabulary learnt from the
 *   corpus with this project's `buildWordPieceVocab` (weights are then initialised by the trainer);
 *   {@link runTokenizer} keeps that vocabulary with the run, for `--resume`.
 */
import { mkdir, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { readBertCheckpoint } from "../models/checkpoint.js";
import { BERT_BASE_CONFIG, parseBertConfig } from "../models/config.js";
import { resolveDPRModelDir, type DPRModelConfig } from "../models/model-dir.js";
import { isHubId, loadFromHub, type HubDownloadParams } from "../models/hub.js";
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
  /** The source folder's settings (dpr_config.json, or its sentence-transformers files). */
  settings?: DPRModelConfig;
}

/** Files a weights path may name (a folder's weights are found by {@link readBertCheckpoint}). */
const WEIGHT_FILES = ["model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json"];

async function readEncoder(dir: string): Promise<{ config: BertConfig; weights: BertWeights }> {
  const { config, weights } = await readBertCheckpoint(dir, WHO);
  return { config, weights };
}

/**
 * Loads initial weights, config and tokenizer from a folder or a model.safetensors file.
 * @throws Error naming the path and what is missing.
 */
export async function loadInitialModel(path: string, hub: HubDownloadParams = {}): Promise<InitialModel> {
  let s;
  try {
    s = await stat(path);
  } catch {
    if (!isHubId(path)) throw new Error(`${WHO}: ${path} does not exist (and is not a hub id like owner/name)`);
    return loadFromHub(path, hub, async (dir) => ({ ...(await loadInitialModel(dir)), source: `${path} (hub, cached in ${dir})` }));
  }
  const dir = s.isDirectory() ? path : dirname(path);
  if (!s.isDirectory() && !WEIGHT_FILES.includes(basename(path))) {
    throw new Error(`${WHO}: ${path}: expected a model folder or a weights file named ${WEIGHT_FILES.join(", ")}`);
  }
  const layout = await resolveDPRModelDir(dir, WHO);
  const settings = layout.config;
  const q = await readEncoder(layout.questionEncoderDir);
  const tokenizer = await BertTokenizer.fromDir(layout.questionEncoderDir);
  if (layout.shared)
    return { config: q.config, tokenizer, question: q.weights, source: `${layout.questionEncoderDir} (one encoder)`, settings };
  const p = await readEncoder(layout.passageEncoderDir);
  for (const key of ["hidden_size", "num_hidden_layers", "vocab_size", "max_position_embeddings"] as const) {
    if (p.config[key] !== q.config[key]) {
      throw new Error(
        `${WHO}: ${key} differs between ${layout.questionEncoderDir} (${q.config[key]}) and ${layout.passageEncoderDir} (${p.config[key]})`,
      );
    }
  }
  return {
    config: q.config,
    tokenizer,
    question: q.weights,
    passage: p.weights,
    source: `${layout.dir} (question + passage encoders)`,
    settings,
  };
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

/**
 * The tokenizer of a run from scratch: a new run saves `built` in `<outputDir>/tokenizer/`; a resumed
 * run reads that saved vocabulary back (when there is one), so it trains on exactly the same ids
 * even if the corpus or the vocabulary builder changed since.
 */
export async function runTokenizer(outputDir: string, built: BertTokenizer, resume: boolean): Promise<BertTokenizer> {
  const dir = join(outputDir, "tokenizer");
  let saved = false;
  try {
    saved = (await stat(join(dir, "vocab.txt"))).isFile();
  } catch {
    saved = false;
  }
  if (resume && saved) return BertTokenizer.fromDir(dir);
  await mkdir(outputDir, { recursive: true });
  await built.save(dir);
  return built;
}

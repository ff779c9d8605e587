/**
 * BERT configuration: parsing and validating Hugging Face `config.json` files, plus the
 * standard shapes the project builds random encoders for.
 */
import { readFile } from "node:fs/promises";
import type { BertConfig, HiddenAct } from "./types.js";

/** Activations the ONNX writer and the reference forward pass implement. */
export const SUPPORTED_HIDDEN_ACTS: readonly HiddenAct[] = ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"];

const REQUIRED_INT_KEYS = [
  "vocab_size",
  "hidden_size",
  "num_hidden_layers",
  "num_attention_heads",
  "intermediate_size",
  "max_position_embeddings",
  "type_vocab_size",
] as const;

/**
 * Validates a parsed `config.json` object and returns a {@link BertConfig}.
 *
 * @param json - the parsed JSON value.
 * @param source - where it came from (a path or a label), used in error messages.
 * @throws Error naming the source and the offending key when a key is missing, has the wrong
 *   type, an unsupported value, or when `hidden_size` is not divisible by `num_attention_heads`.
 */
export function parseBertConfig(json: unknown, source: string): BertConfig {
  const where = `config.json (${source})`;
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error(`${where}: expected a JSON object, got ${Array.isArray(json) ? "an array" : json === null ? "null" : typeof json}`);
  }
  const raw = json as Record<string, unknown>;
  const ints: Record<string, number> = {};
  for (const key of REQUIRED_INT_KEYS) {
    const value = raw[key];
    if (value === undefined) throw new Error(`${where}: missing required key '${key}'`);
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
      throw new Error(`${where}: '${key}' must be a positive integer, got ${JSON.stringify(value)}`);
    }
    ints[key] = value;
  }
  const act = raw.hidden_act ?? "gelu";
  if (typeof act !== "string" || !(SUPPORTED_HIDDEN_ACTS as readonly string[]).includes(act)) {
    throw new Error(
      `${where}: hidden_act ${typeof act === "string" ? `'${act}'` : JSON.stringify(act)} is not supported; expected ` +
        `one of ${SUPPORTED_HIDDEN_ACTS.join(", ")}`,
    );
  }
  const eps = raw.layer_norm_eps ?? 1e-12;
  if (typeof eps !== "number" || !(eps > 0) || !Number.isFinite(eps)) {
    throw new Error(`${where}: 'layer_norm_eps' must be a positive number, got ${JSON.stringify(eps)}`);
  }
  if (ints.hidden_size % ints.num_attention_heads !== 0) {
    throw new Error(`${where}: hidden_size ${ints.hidden_size} is not divisible by num_attention_heads ${ints.num_attention_heads}`);
  }
  const config: BertConfig = {
    vocab_size: ints.vocab_size,
    hidden_size: ints.hidden_size,
    num_hidden_layers: ints.num_hidden_layers,
    num_attention_heads: ints.num_attention_heads,
    intermediate_size: ints.intermediate_size,
    max_position_embeddings: ints.max_position_embeddings,
    type_vocab_size: ints.type_vocab_size,
    layer_norm_eps: eps,
    hidden_act: act as HiddenAct,
  };
  const optionalNumber = (
    key: "pad_token_id" | "hidden_dropout_prob" | "attention_probs_dropout_prob" | "initializer_range" | "num_labels",
    integer: boolean,
  ) => {
    const value = raw[key];
    if (value === undefined || value === null) return;
    if (typeof value !== "number" || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < 0) {
      throw new Error(`${where}: '${key}' must be a non-negative ${integer ? "integer" : "number"}, got ${JSON.stringify(value)}`);
    }
    config[key] = value;
  };
  optionalNumber("pad_token_id", true);
  optionalNumber("hidden_dropout_prob", false);
  optionalNumber("attention_probs_dropout_prob", false);
  optionalNumber("initializer_range", false);
  optionalNumber("num_labels", true);
  // HF classification checkpoints often give id2label instead of num_labels.
  if (config.num_labels === undefined && typeof raw.id2label === "object" && raw.id2label !== null) {
    config.num_labels = Object.keys(raw.id2label).length;
  }
  if (raw.model_type !== undefined) {
    if (typeof raw.model_type !== "string")
      throw new Error(`${where}: 'model_type' must be a string, got ${JSON.stringify(raw.model_type)}`);
    if (!SUPPORTED_MODEL_TYPES.includes(raw.model_type)) {
      throw new Error(
        `${where}: model_type '${raw.model_type}' is not supported: this project runs BERT-family encoders with a WordPiece ` +
          `vocabulary (model_type ${SUPPORTED_MODEL_TYPES.join(", ")}: BERT, DPR, MiniLM, bge, e5, sentence-transformers BERT models); ` +
          "RoBERTa / XLM-R (BPE or SentencePiece tokenizers) and other architectures are not",
      );
    }
    config.model_type = raw.model_type;
  }
  if (raw.architectures !== undefined) {
    if (!Array.isArray(raw.architectures) || !raw.architectures.every((a) => typeof a === "string")) {
      throw new Error(`${where}: 'architectures' must be an array of strings, got ${JSON.stringify(raw.architectures)}`);
    }
    config.architectures = [...(raw.architectures as string[])];
  }
  return config;
}

/** `model_type` values of the BERT family (DPR checkpoints say "dpr"; their encoder is BERT). */
export const SUPPORTED_MODEL_TYPES: readonly string[] = ["bert", "dpr"];

/**
 * Reads and validates a `config.json` file.
 * @throws Error naming the path when the file is missing, not JSON, or not a valid BERT config.
 */
export async function readBertConfig(path: string): Promise<BertConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new Error(`readBertConfig: cannot read ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`config.json (${path}): not valid JSON: ${(err as Error).message}`);
  }
  return parseBertConfig(json, path);
}

/** bert-base-uncased / facebook/dpr-*-single-nq-base shape: 12 layers, 768 hidden, 12 heads. */
export const BERT_BASE_CONFIG: BertConfig = Object.freeze({
  vocab_size: 30522,
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  max_position_embeddings: 512,
  type_vocab_size: 2,
  layer_norm_eps: 1e-12,
  hidden_act: "gelu",
  pad_token_id: 0,
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.1,
  initializer_range: 0.02,
  model_type: "bert",
}) as BertConfig;

/** all-MiniLM-L6 / ms-marco-MiniLM-L-6 shape: 6 layers, 384 hidden, 12 heads, 1536 FFN. */
export const MINILM_L6_CONFIG: BertConfig = Object.freeze({
  ...BERT_BASE_CONFIG,
  hidden_size: 384,
  num_hidden_layers: 6,
  num_attention_heads: 12,
  intermediate_size: 1536,
}) as BertConfig;

/**
 * A tiny BERT shape for tests and quick experiments: hidden 32, 2 layers, 4 heads, FFN 64,
 * 128 positions, vocab 1000 unless overridden. Validated like a parsed config.
 */
export function tinyBertConfig(overrides: Partial<BertConfig> = {}): BertConfig {
  return parseBertConfig(
    {
      ...BERT_BASE_CONFIG,
      vocab_size: 1000,
      hidden_size: 32,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      intermediate_size: 64,
      max_position_embeddings: 128,
      ...overrides,
    },
    "tinyBertConfig",
  );
}

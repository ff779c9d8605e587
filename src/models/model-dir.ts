/**
 * The on-disk model folder format of langchain-dpr: how an encoder folder and a DPR model
 * folder are laid out, how they are resolved when loading, and how they are written
 * (atomically: built in a temporary sibling folder, then renamed into place).
 *
 * Encoder folder (Hugging Face layout):
 * ```
 * config.json                 BERT keys (vocab_size, hidden_size, ..., hidden_act)
 * vocab.txt and/or tokenizer.json (+ tokenizer_config.json, special_tokens_map.json)
 * model.onnx (+ model.onnx.data)          or  onnx/model.onnx (transformers.js / optimum placement)
 * model_quantized.onnx        optional    or  onnx/model_quantized.onnx
 * model.safetensors           optional: weights in PyTorch layout
 * ```
 * DPR model folder:
 * ```
 * dpr_config.json             optional: pooling, max lengths, normalize, titles, prompts, hybrid fusion
 * (or a sentence-transformers folder: modules.json, 1_Pooling/, sentence_bert_config.json,
 *  config_sentence_transformers.json, read when there is no dpr_config.json)
 * question_encoder/  passage_encoder/     two encoder folders (ctx_encoder/ is accepted for passages)
 *   or encoder/                            one encoder shared by questions and passages
 *   or the encoder files at the top level  (also shared)
 * ```
 */
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";

import type { BertConfig, BertWeights } from "./types.js";
import { exportBertOnnx, type BertOnnxOptions } from "./onnx/bert-graph.js";
import { writeSafetensors } from "./safetensors.js";
import { BertTokenizer } from "../tokenizers/bert-tokenizer.js";
import { readSentenceTransformersSettings } from "./sentence-transformers.js";
import { pathExists } from "../utils/fs.js";
import { replaceDirAtomically } from "../utils/atomic-file.js";
import { fusionToJson, parseFusionConfig, type ModelFusion } from "./fusion-config.js";

/** How token vectors become one vector per text: token 0, the masked mean, or the masked maximum. */
export type PoolingMode = "cls" | "mean" | "max";

/**
 * How a passage title is combined with its text.
 * - `"pair"`: Hugging Face DPR style, `[CLS] title [SEP] text [SEP]` with token_type_ids 0 then 1.
 * - `"space"`: one segment, `title + " " + text` (how BEIR feeds sentence-transformers models; the
 *   default for sentence-transformers folders).
 * - `"none"`: titles are ignored; only the text is encoded.
 */
export type TitleJoin = "pair" | "space" | "none";

/**
 * The one rule for the text a passage encoder sees: the passage prompt, then the title (as its own
 * segment for "pair", joined with a space for "space", dropped for "none"), then the text. Returns the
 * first segment and, for "pair" with a title, the second.
 */
export function passageSegments(
  p: { title?: string | null; text: string },
  titleJoin: TitleJoin,
  prompt = "",
): { text: string; pair?: string } {
  const title = typeof p.title === "string" ? p.title : undefined;
  if (title === undefined || titleJoin === "none") return { text: prompt + p.text };
  // "pair" keeps an empty title as an empty first segment ([CLS] [SEP] text [SEP]), as DPR trained.
  if (titleJoin === "pair") return { text: prompt + title, pair: p.text };
  return { text: title.trim() === "" ? prompt + p.text : `${prompt}${title} ${p.text}` };
}

/** Contents of `dpr_config.json`. */
export interface DPRModelConfig {
  /** Pooling of the token vectors. Default `"cls"` (DPR). */
  pooling: PoolingMode;
  /** Max tokens of a question including [CLS]/[SEP]. Default 64. */
  maxQueryLength: number;
  /** Max tokens of a passage (title + text) including special tokens. Default 256. */
  maxPassageLength: number;
  /** L2-normalise vectors. Default false: DPR scores by raw dot product. */
  normalize: boolean;
  /** How titles join passages. Default `"pair"`. */
  titleJoin: TitleJoin;
  /** Text prepended to every question (e.g. e5's "query: "). Default "". */
  queryPrompt: string;
  /** Text prepended to every passage (to its title when there is one). Default "". */
  passagePrompt: string;
  /**
   * How HybridRetriever fuses this model's dense list with BM25 when its caller does not say
   * (see ./fusion-config.ts); absent (or `null` in the file) when the model has none.
   */
  fusion?: ModelFusion;
}

/** Defaults used when `dpr_config.json` is absent or leaves a field out. */
export const DEFAULT_DPR_CONFIG: Readonly<DPRModelConfig> = Object.freeze({
  pooling: "cls",
  maxQueryLength: 64,
  maxPassageLength: 256,
  normalize: false,
  titleJoin: "pair",
  queryPrompt: "",
  passagePrompt: "",
});

/** File name of the DPR settings file inside a DPR model folder. */
export const DPR_CONFIG_FILE = "dpr_config.json";

/**
 * Validates a parsed `dpr_config.json`. Unknown keys are ignored; missing keys take defaults.
 * Accepts snake_case keys too (`max_query_length`, `title_join`, ...). The optional `fusion`
 * object is validated by {@link parseFusionConfig}.
 */
export function parseDPRConfig(json: unknown, source: string): DPRModelConfig {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new Error(`dpr_config.json (${source}): expected a JSON object`);
  }
  const o = json as Record<string, unknown>;
  const pick = (camel: string, snake: string): unknown => (camel in o ? o[camel] : o[snake]);
  const out: DPRModelConfig = { ...DEFAULT_DPR_CONFIG };
  const pooling = pick("pooling", "pooling");
  if (pooling !== undefined) {
    if (pooling !== "cls" && pooling !== "mean" && pooling !== "max") {
      throw new Error(`dpr_config.json (${source}): pooling '${String(pooling)}' is not supported; expected cls, mean or max`);
    }
    out.pooling = pooling;
  }
  for (const [camel, snake] of [
    ["maxQueryLength", "max_query_length"],
    ["maxPassageLength", "max_passage_length"],
  ] as const) {
    const v = pick(camel, snake);
    if (v !== undefined) {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 2) {
        throw new Error(`dpr_config.json (${source}): ${snake} must be an integer >= 2, got ${JSON.stringify(v)}`);
      }
      out[camel] = v;
    }
  }
  const normalize = pick("normalize", "normalize");
  if (normalize !== undefined) {
    if (typeof normalize !== "boolean") {
      throw new Error(`dpr_config.json (${source}): normalize must be true or false, got ${JSON.stringify(normalize)}`);
    }
    out.normalize = normalize;
  }
  const titleJoin = pick("titleJoin", "title_join");
  if (titleJoin !== undefined) {
    if (titleJoin !== "pair" && titleJoin !== "space" && titleJoin !== "none") {
      throw new Error(`dpr_config.json (${source}): title_join '${String(titleJoin)}' is not supported; expected pair, space or none`);
    }
    out.titleJoin = titleJoin;
  }
  for (const [camel, snake] of [
    ["queryPrompt", "query_prompt"],
    ["passagePrompt", "passage_prompt"],
  ] as const) {
    const v = pick(camel, snake);
    if (v !== undefined) {
      if (typeof v !== "string") throw new Error(`dpr_config.json (${source}): ${snake} must be a string, got ${JSON.stringify(v)}`);
      out[camel] = v;
    }
  }
  if (o.fusion !== undefined && o.fusion !== null) out.fusion = parseFusionConfig(o.fusion, source);
  return out;
}

/**
 * Reads `dir/dpr_config.json`; without it, a sentence-transformers folder's settings (pooling,
 * Normalize, max_seq_length, prompts); else the defaults.
 */
export async function readDPRConfig(dir: string): Promise<DPRModelConfig> {
  const path = join(dir, DPR_CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    const st = await readSentenceTransformersSettings(dir);
    if (st === undefined) return { ...DEFAULT_DPR_CONFIG };
    return {
      ...DEFAULT_DPR_CONFIG,
      pooling: st.pooling,
      normalize: st.normalize,
      ...(st.maxSeqLength !== undefined ? { maxQueryLength: st.maxSeqLength, maxPassageLength: st.maxSeqLength } : {}),
      // sentence-transformers encodes one string per text: a title joins the text (as BEIR does).
      titleJoin: "space",
      queryPrompt: st.queryPrompt,
      passagePrompt: st.passagePrompt,
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`dpr_config.json (${path}): invalid JSON: ${(err as Error).message}`);
  }
  return parseDPRConfig(json, path);
}

/** The files found in one encoder folder. */
export interface EncoderFiles {
  /** The encoder folder (absolute). */
  dir: string;
  /** `config.json`. */
  configPath: string;
  /** fp32 ONNX graph, when present. */
  modelPath?: string;
  /** int8 ONNX graph, when present. */
  quantizedPath?: string;
  /** `model.safetensors`, when present. */
  safetensorsPath?: string;
  /** `tokenizer.json`, when present. */
  tokenizerJsonPath?: string;
  /** `vocab.txt`, when present. */
  vocabPath?: string;
}

async function firstExisting(dir: string, names: string[]): Promise<string | undefined> {
  for (const n of names) {
    const p = join(dir, n);
    if (await pathExists(p)) return p;
  }
  return undefined;
}

/** True when `dir` looks like an encoder folder (has a config.json next to a model or tokenizer). */
export async function isEncoderDir(dir: string): Promise<boolean> {
  return (
    (await pathExists(join(dir, "config.json"))) &&
    (await firstExisting(dir, ["model.onnx", "onnx/model.onnx", "model.safetensors", "vocab.txt", "tokenizer.json"])) !== undefined
  );
}

/**
 * Finds the files of one encoder folder.
 * @param owner error-message prefix, e.g. `"DPREmbeddings"`.
 * @throws Error naming the folder and the missing file (config.json, vocab.txt/tokenizer.json,
 *   model.onnx) when the folder is incomplete.
 */
export async function resolveEncoderDir(dir: string, owner = "model-dir"): Promise<EncoderFiles> {
  const abs = resolve(dir);
  let s;
  try {
    s = await stat(abs);
  } catch {
    throw new Error(`${owner}: encoder folder not found: ${abs}`);
  }
  if (!s.isDirectory()) throw new Error(`${owner}: ${abs} is not a folder`);
  const configPath = join(abs, "config.json");
  if (!(await pathExists(configPath))) throw new Error(`${owner}: ${abs} has no config.json`);
  const files: EncoderFiles = {
    dir: abs,
    configPath,
    modelPath: await firstExisting(abs, ["model.onnx", "onnx/model.onnx"]),
    quantizedPath: await firstExisting(abs, ["model_quantized.onnx", "onnx/model_quantized.onnx"]),
    safetensorsPath: await firstExisting(abs, ["model.safetensors"]),
    tokenizerJsonPath: await firstExisting(abs, ["tokenizer.json"]),
    vocabPath: await firstExisting(abs, ["vocab.txt"]),
  };
  if (!files.tokenizerJsonPath && !files.vocabPath) {
    throw new Error(`${owner}: ${abs} has neither vocab.txt nor tokenizer.json`);
  }
  if (!files.modelPath && !files.quantizedPath && !files.safetensorsPath) {
    throw new Error(`${owner}: ${abs} has no model.onnx (also looked for onnx/model.onnx, model_quantized.onnx, model.safetensors)`);
  }
  return files;
}

/** A resolved DPR model folder. */
export interface DPRModelLayout {
  /** The DPR folder. */
  dir: string;
  /** Folder of the question encoder. */
  questionEncoderDir: string;
  /** Folder of the passage encoder (equal to the question's when shared). */
  passageEncoderDir: string;
  /** True when one encoder serves questions and passages. */
  shared: boolean;
  /** Settings from dpr_config.json merged over the defaults. */
  config: DPRModelConfig;
}

/**
 * Resolves a DPR model folder: `question_encoder/` + `passage_encoder/` (or `ctx_encoder/`),
 * or one shared `encoder/`, or a single encoder folder.
 */
export async function resolveDPRModelDir(dir: string, owner = "model-dir"): Promise<DPRModelLayout> {
  const abs = resolve(dir);
  let s;
  try {
    s = await stat(abs);
  } catch {
    throw new Error(`${owner}: model folder not found: ${abs}`);
  }
  if (!s.isDirectory()) throw new Error(`${owner}: ${abs} is not a folder`);
  const config = await readDPRConfig(abs);
  const q = join(abs, "question_encoder");
  const hasQ = await pathExists(q);
  const p = (await firstExisting(abs, ["passage_encoder", "ctx_encoder"])) ?? undefined;
  if (hasQ || p) {
    if (!hasQ) throw new Error(`${owner}: ${abs} has ${basename(p!)}/ but no question_encoder/`);
    if (!p) throw new Error(`${owner}: ${abs} has question_encoder/ but no passage_encoder/ (or ctx_encoder/)`);
    return { dir: abs, questionEncoderDir: q, passageEncoderDir: p, shared: false, config };
  }
  const shared = join(abs, "encoder");
  if (await pathExists(shared)) return { dir: abs, questionEncoderDir: shared, passageEncoderDir: shared, shared: true, config };
  const st = await readSentenceTransformersSettings(abs);
  if (st !== undefined && st.transformerPath !== "") {
    const t = join(abs, st.transformerPath);
    return { dir: abs, questionEncoderDir: t, passageEncoderDir: t, shared: true, config };
  }
  if (await pathExists(join(abs, "config.json"))) {
    return { dir: abs, questionEncoderDir: abs, passageEncoderDir: abs, shared: true, config };
  }
  throw new Error(
    `${owner}: ${abs} is not a DPR model folder: expected question_encoder/ and passage_encoder/, ` +
      `or encoder/, or an encoder's config.json at the top level`,
  );
}

// ---------------------------------------------------------------------------------------------
// Writing

/** What goes into one encoder folder. */
export interface EncoderDirSpec {
  config: BertConfig;
  weights: BertWeights;
  tokenizer: BertTokenizer;
  /** ONNX export options; pooler defaults to `"cls"` (DPR semantics). Set `quantize` for model_quantized.onnx. */
  onnx?: BertOnnxOptions;
  /** Also write model.safetensors (default true). */
  safetensors?: boolean;
  /** Extra keys written into config.json (e.g. `model_type: "dpr"`). */
  extraConfig?: Record<string, unknown>;
}

async function writeEncoderFiles(dir: string, spec: EncoderDirSpec): Promise<void> {
  const { config, weights, tokenizer } = spec;
  if (tokenizer.vocabSize > config.vocab_size) {
    throw new Error(`writeEncoderDir: tokenizer has ${tokenizer.vocabSize} entries but config vocab_size is ${config.vocab_size}`);
  }
  const configJson = { architectures: ["BertModel"], model_type: "bert", ...config, ...spec.extraConfig };
  await writeFile(join(dir, "config.json"), JSON.stringify(configJson, null, 2) + "\n");
  await tokenizer.save(dir);
  await exportBertOnnx(dir, config, weights, { pooler: "cls", ...spec.onnx });
  if (spec.safetensors ?? true) await writeSafetensors(join(dir, "model.safetensors"), weights, { format: "pt" });
}

/**
 * Writes one encoder folder (config.json, tokenizer files, model.onnx + model.onnx.data,
 * optional model_quantized.onnx, model.safetensors) atomically.
 */
export async function writeEncoderDir(dir: string, spec: EncoderDirSpec): Promise<void> {
  await replaceDirAtomically(dir, (tmp) => writeEncoderFiles(tmp, spec));
}

/** What goes into a DPR model folder. */
export interface DPRModelSpec {
  /** Question encoder; also used for passages when `passage` is omitted (written as `encoder/`). */
  question: Omit<EncoderDirSpec, "tokenizer">;
  /** Passage encoder. Omit for one shared encoder. */
  passage?: Omit<EncoderDirSpec, "tokenizer">;
  /** Tokenizer saved into each encoder folder. */
  tokenizer: BertTokenizer;
  /** Settings written to dpr_config.json (defaults fill the rest). */
  dprConfig?: Partial<DPRModelConfig>;
}

/**
 * Writes a DPR model folder: `question_encoder/` + `passage_encoder/` (or `encoder/` when
 * `passage` is omitted) and `dpr_config.json`. The whole folder is replaced atomically.
 */
export async function saveDPRModel(dir: string, spec: DPRModelSpec): Promise<void> {
  const dprConfig = parseDPRConfig({ ...DEFAULT_DPR_CONFIG, ...spec.dprConfig }, "saveDPRModel");
  await replaceDirAtomically(dir, async (tmp) => {
    if (spec.passage) {
      await mkdir(join(tmp, "question_encoder"));
      await mkdir(join(tmp, "passage_encoder"));
      await writeEncoderFiles(join(tmp, "question_encoder"), { ...spec.question, tokenizer: spec.tokenizer });
      await writeEncoderFiles(join(tmp, "passage_encoder"), { ...spec.passage, tokenizer: spec.tokenizer });
    } else {
      await mkdir(join(tmp, "encoder"));
      await writeEncoderFiles(join(tmp, "encoder"), { ...spec.question, tokenizer: spec.tokenizer });
    }
    const { fusion, ...settings } = dprConfig;
    const json = fusion === undefined ? settings : { ...settings, fusion: fusionToJson(fusion) };
    await writeFile(join(tmp, DPR_CONFIG_FILE), JSON.stringify(json, null, 2) + "\n");
  });
}

/**
 * Reads the settings of a sentence-transformers model folder, so that such a folder embeds exactly as
 * sentence-transformers would:
 *
 * - `modules.json`: the module list. Supported: `Transformer` (the BERT encoder; its `path` is where its
 *   config.json and weights are, "" for the top level), `Pooling`, `Normalize`. Anything else (e.g. a
 *   `Dense` projection) is refused with its name, rather than embedding differently from the author's
 *   library.
 * - `<Pooling path>/config.json`: exactly one of `pooling_mode_cls_token`, `pooling_mode_mean_tokens`,
 *   `pooling_mode_max_tokens` (masked max) true; other modes are refused, naming the supported ones.
 * - `sentence_bert_config.json`: `max_seq_length` (the truncation length of both queries and passages).
 * - `config_sentence_transformers.json`: `prompts` (`query`, and `passage`, `document` or `corpus`),
 *   prepended to the texts as sentence-transformers prepends them when a prompt name is used.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";

/** Pooling modes this project runs. */
export type SentenceTransformersPooling = "cls" | "mean" | "max";

/** What a sentence-transformers folder says about how to embed. */
export interface SentenceTransformersSettings {
  /** Folder of the Transformer module, relative to the model folder ("" = the top level). */
  transformerPath: string;
  pooling: SentenceTransformersPooling;
  /** A Normalize module follows the pooling. */
  normalize: boolean;
  /** `max_seq_length` of sentence_bert_config.json, when given. */
  maxSeqLength?: number;
  /** Prompt prepended to queries (config_sentence_transformers.json `prompts.query`), else "". */
  queryPrompt: string;
  /** Prompt prepended to passages (`prompts.passage`, `document` or `corpus`), else "". */
  passagePrompt: string;
}

const OWNER = "sentence-transformers";
const MODULE = "sentence_transformers.models.";

async function readJson(path: string): Promise<unknown | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${OWNER}: ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The pooling mode of a `1_Pooling/config.json` object. */
export function parsePoolingConfig(json: unknown, source: string): SentenceTransformersPooling {
  if (!isObject(json)) throw new Error(`${OWNER}: ${source} must be a JSON object`);
  const modes: [string, SentenceTransformersPooling | undefined][] = [
    ["pooling_mode_cls_token", "cls"],
    ["pooling_mode_mean_tokens", "mean"],
    ["pooling_mode_max_tokens", "max"],
    ["pooling_mode_mean_sqrt_len_tokens", undefined],
    ["pooling_mode_weightedmean_tokens", undefined],
    ["pooling_mode_lasttoken", undefined],
  ];
  const on = modes.filter(([key]) => json[key] === true);
  if (on.length !== 1) {
    throw new Error(
      `${OWNER}: ${source} turns on ${on.length === 0 ? "no pooling mode" : on.map(([k]) => k).join(" + ")}; ` +
        "supported: exactly one of pooling_mode_cls_token, pooling_mode_mean_tokens, pooling_mode_max_tokens",
    );
  }
  const [key, mode] = on[0]!;
  if (mode === undefined) {
    throw new Error(
      `${OWNER}: ${source}: ${key} is not supported; supported: pooling_mode_cls_token, pooling_mode_mean_tokens, pooling_mode_max_tokens`,
    );
  }
  if (json["include_prompt"] === false) {
    throw new Error(`${OWNER}: ${source}: include_prompt false (pooling that skips the prompt tokens) is not supported`);
  }
  return mode;
}

/**
 * Reads a sentence-transformers folder's settings, or returns undefined when `dir` has no
 * `modules.json` (not a sentence-transformers folder).
 * @throws Error naming the file and the problem (an unsupported module or pooling mode, bad JSON).
 */
export async function readSentenceTransformersSettings(dir: string): Promise<SentenceTransformersSettings | undefined> {
  const modulesPath = join(dir, "modules.json");
  const modules = await readJson(modulesPath);
  if (modules === undefined) return undefined;
  if (!Array.isArray(modules)) throw new Error(`${OWNER}: ${modulesPath} must be a JSON array of modules`);
  const out: SentenceTransformersSettings = { transformerPath: "", pooling: "cls", normalize: false, queryPrompt: "", passagePrompt: "" };
  let transformer = false;
  let pooling = false;
  for (const [i, m] of modules.entries()) {
    if (!isObject(m) || typeof m["type"] !== "string") throw new Error(`${OWNER}: ${modulesPath}[${i}] has no "type"`);
    const type = m["type"].startsWith(MODULE) ? m["type"].slice(MODULE.length) : m["type"];
    const path = typeof m["path"] === "string" ? m["path"] : "";
    if (path.split(/[\\/]/).includes("..")) throw new Error(`${OWNER}: ${modulesPath}[${i}] path '${path}' leaves the model folder`);
    if (type === "Transformer" || type === "models.Transformer") {
      if (transformer) throw new Error(`${OWNER}: ${modulesPath} has more than one Transformer module`);
      transformer = true;
      out.transformerPath = path;
    } else if (type === "Pooling") {
      const configPath = join(dir, path, "config.json");
      const json = await readJson(configPath);
      if (json === undefined)
        throw new Error(`${OWNER}: ${modulesPath} names a Pooling module at '${path}' but ${configPath} does not exist`);
      out.pooling = parsePoolingConfig(json, configPath);
      pooling = true;
    } else if (type === "Normalize") {
      out.normalize = true;
    } else {
      throw new Error(
        `${OWNER}: ${modulesPath}[${i}] is a ${m["type"]} module, which this project does not run ` +
          "(supported: Transformer, Pooling, Normalize); its vectors would differ from sentence-transformers'",
      );
    }
  }
  if (!transformer) throw new Error(`${OWNER}: ${modulesPath} has no Transformer module`);
  if (!pooling) throw new Error(`${OWNER}: ${modulesPath} has no Pooling module`);
  const bert = await readJson(join(dir, "sentence_bert_config.json"));
  if (isObject(bert) && bert["max_seq_length"] !== undefined) {
    const n = bert["max_seq_length"];
    if (typeof n !== "number" || !Number.isInteger(n) || n < 2) {
      throw new Error(
        `${OWNER}: ${join(dir, "sentence_bert_config.json")}: max_seq_length must be an integer >= 2, got ${JSON.stringify(n)}`,
      );
    }
    out.maxSeqLength = n;
  }
  const st = await readJson(join(dir, "config_sentence_transformers.json"));
  if (isObject(st) && isObject(st["prompts"])) {
    const prompts = st["prompts"];
    const pick = (...keys: string[]) => keys.map((k) => prompts[k]).find((v): v is string => typeof v === "string");
    out.queryPrompt = pick("query") ?? "";
    out.passagePrompt = pick("passage", "document", "corpus") ?? "";
  }
  return out;
}

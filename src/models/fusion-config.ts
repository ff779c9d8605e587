/**
 * The optional `fusion` entry of a DPR model's `dpr_config.json`: how HybridRetriever fuses this
 * model's dense list with BM25 by default, and where that setting came from. The evaluation CLI
 * writes it (`evaluate --tune-fusion ... --write-fusion`); a person may write it by hand.
 *
 * ```json
 * "fusion": { "method": "linear", "alpha": 0.15, "normalization": "minmax",
 *             "tuned_on": { "dataset": "/data/scifact", "split": "dev", "selection": "split", "questions": 300,
 *                           "metric": "ndcg@10", "score": 0.70, "bm25_score": 0.68, "dense_score": 0.41,
 *                           "depth": 100, "tuned_at": "2026-12-04T10:00:00.000Z" } }
 * "fusion": { "method": "rrf", "k": 60, "weights": [0.3, 1] }
 * ```
 *
 * Keys may be snake_case or camelCase (`tuned_on` / `tunedOn`, `bm25_score` / `bm25Score`, ...);
 * {@link fusionToJson} writes snake_case. `tuned_on` is optional and informational: HybridRetriever
 * only reads the setting.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";

import type { FusionSetting, ScoreNormalization } from "../retrievers/fusion.js";
import { writeFileAtomic } from "../utils/atomic-file.js";
import { pathExists } from "../utils/fs.js";

/** Where a stored fusion was tuned (written by the evaluation CLI; informational). */
export interface FusionProvenance {
  /** The BEIR folder the dev questions came from. */
  dataset: string;
  /** The qrels split the dev questions came from. */
  split: string;
  /** `"split"`: every judged question of {@link split}; `"fraction"`: a seeded share of them held out from the test figures. */
  selection: "split" | "fraction";
  /** The held-out share, for selection `"fraction"`. */
  fraction?: number;
  /** The hold-out seed, for selection `"fraction"`. */
  seed?: number;
  /** Dev questions scored (those with at least one relevant passage). */
  questions: number;
  /** The tuned metric, e.g. `"ndcg@10"`. */
  metric: string;
  /** Dev score of the chosen setting. */
  score: number;
  /** Dev score of BM25 alone. */
  bm25Score: number;
  /** Dev score of the dense side alone. */
  denseScore: number;
  /** Candidates taken from each side while tuning. */
  depth: number;
  /** When it was tuned (ISO 8601). */
  tunedAt: string;
}

/** A fusion setting stored with a model, with its optional provenance. */
export type ModelFusion = FusionSetting & { tunedOn?: FusionProvenance };

const FUSION_KEYS: Record<FusionSetting["method"], string[]> = {
  linear: ["method", "alpha", "normalization", "tuned_on", "tunedOn"],
  rrf: ["method", "k", "weights", "tuned_on", "tunedOn"],
};

function got(v: unknown): string {
  return v === undefined ? "nothing" : JSON.stringify(v);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseProvenance(v: unknown, where: string): FusionProvenance {
  if (!isRecord(v)) throw new Error(`${where}: expected a JSON object, got ${got(v)}`);
  const pick = (camel: string, snake: string): unknown => (camel in v ? v[camel] : v[snake]);
  const str = (camel: string, snake = camel): string => {
    const x = pick(camel, snake);
    if (typeof x !== "string" || x === "") throw new Error(`${where}.${snake}: expected a non-empty string, got ${got(x)}`);
    return x;
  };
  const num = (camel: string, snake = camel, integer = false): number => {
    const x = pick(camel, snake);
    if (typeof x !== "number" || !Number.isFinite(x) || (integer && (!Number.isInteger(x) || x < 0))) {
      throw new Error(`${where}.${snake}: expected ${integer ? "an integer >= 0" : "a finite number"}, got ${got(x)}`);
    }
    return x;
  };
  const selection = pick("selection", "selection");
  if (selection !== "split" && selection !== "fraction") {
    throw new Error(`${where}.selection: expected "split" or "fraction", got ${got(selection)}`);
  }
  const out: FusionProvenance = {
    dataset: str("dataset"),
    split: str("split"),
    selection,
    questions: num("questions", "questions", true),
    metric: str("metric"),
    score: num("score"),
    bm25Score: num("bm25Score", "bm25_score"),
    denseScore: num("denseScore", "dense_score"),
    depth: num("depth", "depth", true),
    tunedAt: str("tunedAt", "tuned_at"),
  };
  if (selection === "fraction") {
    out.fraction = num("fraction");
    out.seed = num("seed", "seed", true);
  }
  return out;
}

/**
 * Validates the `fusion` value of a dpr_config.json. Errors name the file (`source`), the field,
 * what was expected and what was found.
 */
export function parseFusionConfig(json: unknown, source: string): ModelFusion {
  const where = `dpr_config.json (${source}): fusion`;
  if (!isRecord(json))
    throw new Error(`${where}: expected a JSON object such as {"method": "rrf", "k": 60, "weights": [1, 1]}, got ${got(json)}`);
  const method = json.method;
  if (method !== "linear" && method !== "rrf") throw new Error(`${where}.method: expected "linear" or "rrf", got ${got(method)}`);
  const unknown = Object.keys(json).filter((k) => !FUSION_KEYS[method].includes(k));
  if (unknown.length > 0) {
    throw new Error(
      `${where}: ${unknown.map((k) => `"${k}"`).join(", ")} does not apply to method "${method}" ` +
        `(allowed: ${FUSION_KEYS[method].join(", ")})`,
    );
  }
  let setting: FusionSetting;
  if (method === "linear") {
    const alpha = json.alpha;
    if (typeof alpha !== "number" || !(alpha >= 0 && alpha <= 1)) {
      throw new Error(`${where}.alpha: expected the dense weight, a number in [0, 1], got ${got(alpha)}`);
    }
    const normalization = json.normalization ?? "minmax";
    if (normalization !== "minmax" && normalization !== "zscore") {
      throw new Error(`${where}.normalization: expected "minmax" or "zscore", got ${got(normalization)}`);
    }
    setting = { method, alpha, normalization: normalization as ScoreNormalization };
  } else {
    const k = json.k ?? 60;
    if (typeof k !== "number" || !Number.isFinite(k) || k < 0) throw new Error(`${where}.k: expected a finite number >= 0, got ${got(k)}`);
    const w = json.weights ?? [1, 1];
    if (!Array.isArray(w) || w.length !== 2 || w.some((x) => typeof x !== "number" || !Number.isFinite(x) || x < 0)) {
      throw new Error(`${where}.weights: expected [dense, sparse], two finite numbers >= 0, got ${got(w)}`);
    }
    if (w[0] === 0 && w[1] === 0) throw new Error(`${where}.weights: at least one weight must be > 0, got [0, 0]`);
    setting = { method, k, weights: [w[0] as number, w[1] as number] };
  }
  const prov = "tunedOn" in json ? json.tunedOn : json.tuned_on;
  return prov === undefined ? setting : { ...setting, tunedOn: parseProvenance(prov, `${where}.tuned_on`) };
}

/** The JSON written for a {@link ModelFusion} (snake_case keys, as {@link parseFusionConfig} reads them). */
export function fusionToJson(fusion: ModelFusion): Record<string, unknown> {
  const out: Record<string, unknown> =
    fusion.method === "linear"
      ? { method: "linear", alpha: fusion.alpha, normalization: fusion.normalization }
      : { method: "rrf", k: fusion.k, weights: [...fusion.weights] };
  const p = fusion.tunedOn;
  if (p) {
    out.tuned_on = {
      dataset: p.dataset,
      split: p.split,
      selection: p.selection,
      ...(p.selection === "fraction" ? { fraction: p.fraction, seed: p.seed } : {}),
      questions: p.questions,
      metric: p.metric,
      score: p.score,
      bm25_score: p.bm25Score,
      dense_score: p.denseScore,
      depth: p.depth,
      tuned_at: p.tunedAt,
    };
  }
  return out;
}

/**
 * Stores `fusion` in `modelDir/dpr_config.json`, keeping every other key as it is, written
 * atomically (a crash leaves the old file). The fusion is validated first. A folder without
 * dpr_config.json gets one holding only the fusion, except a sentence-transformers folder: there
 * a new dpr_config.json would replace the settings read from its sentence-transformers files, so
 * it is refused. Returns the file's path.
 */
export async function writeModelFusion(modelDir: string, fusion: ModelFusion): Promise<string> {
  const path = join(modelDir, "dpr_config.json");
  const value = fusionToJson(fusion);
  parseFusionConfig(value, path);
  let config: Record<string, unknown>;
  let text: string | undefined;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT")
      throw new Error(`writeModelFusion: cannot read ${path}: ${(err as Error).message}`);
  }
  if (text === undefined) {
    if (await pathExists(join(modelDir, "modules.json"))) {
      throw new Error(
        `writeModelFusion: ${modelDir} is a sentence-transformers folder without dpr_config.json; a new dpr_config.json would ` +
          `replace the pooling, normalisation and prompts read from its sentence-transformers files. Write dpr_config.json ` +
          `with those settings first, then store the fusion`,
      );
    }
    config = {};
  } else {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(`writeModelFusion: ${path} is not valid JSON (${(err as Error).message}); fix or remove it first`);
    }
    if (!isRecord(parsed)) throw new Error(`writeModelFusion: ${path} must hold a JSON object, got ${got(parsed)}`);
    config = parsed;
  }
  const next: Record<string, unknown> = { ...config, fusion: value };
  await writeFileAtomic(path, JSON.stringify(next, null, 2) + "\n");
  return path;
}

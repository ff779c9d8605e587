/**
 * The evaluator's side of fusion tuning: which questions are dev questions (a named split, or a
 * seeded share held out of the evaluated split), running them through the BM25 and DPR first
 * stages, and the record written to the report folder and, on request, into the model's
 * dpr_config.json. The grid search itself is the pure {@link tuneFusion}.
 *
 * @module
 */
import { join, resolve } from "node:path";

import { listBeirSplits, loadBeirQrels, loadBeirQueries } from "../data/beir.js";
import type { Qrels, Query } from "../data/types.js";
import type { FusionProvenance, ModelFusion } from "../models/fusion-config.js";
import type { FusionSetting } from "../retrievers/fusion.js";
import type { RetrievalService } from "../retrievers/types.js";
import { hitsOf } from "./methods.js";
import { holdOutShare } from "../data/holdout.js";
import { holdOutQuestions, parseTuningMetric, tuneFusion, type FusionTuningResult, type TuningQuestion } from "./fusion-tuning.js";

const WHO = "evaluate";

/**
 * How the evaluator tunes the hybrid fusion: `devSplit` alone (every judged question of that split),
 * `devFraction` alone (a share of the evaluated split), or both (the share of `devSplit` that
 * `train --dev-fraction F --seed S` held out, e.g. a model's own dev questions).
 */
export interface FusionTuningOptions {
  /**
   * Tune on the judged questions of this qrels split of the same folder (e.g. "dev"); without
   * {@link devFraction} it must differ from the evaluated split. Questions tuned on are left out of
   * the test figures.
   */
  devSplit?: string;
  /**
   * Tune on this share, in (0, 1), of the questions of {@link devSplit} (default: the evaluated split)
   * that have a relevant passage, drawn with {@link seed} by the trainer's rule (`holdOutShare`); they
   * are left out of every method's test figures.
   */
  devFraction?: number;
  /** Seed of the {@link devFraction} draw. Default 42 (the trainer's default seed). */
  seed?: number;
  /** `"<metric>@<k>"`. Default `"ndcg@10"`. */
  metric?: string;
  /** Settings to try. Default: defaultFusionGrid(). */
  grid?: FusionSetting[];
}

/** Checks the options; throws naming the option and the fix. */
export function checkTuningOptions(options: FusionTuningOptions, split: string): void {
  const { devSplit, devFraction } = options;
  if (devSplit === undefined && devFraction === undefined) {
    throw new Error(`${WHO}: fusion tuning needs devSplit (--dev-split), devFraction (--dev-fraction) or both`);
  }
  if (devSplit !== undefined && devFraction === undefined && devSplit === split) {
    throw new Error(
      `${WHO}: the dev split (--dev-split ${devSplit}) is the evaluated split (--split ${split}): tuning on the test questions ` +
        `inflates the test figures; name another split, or hold questions out with --dev-fraction`,
    );
  }
  if (devFraction !== undefined && !(devFraction > 0 && devFraction < 1)) {
    throw new Error(`${WHO}: the dev fraction (--dev-fraction) must be a number in (0, 1), got ${devFraction}`);
  }
  if (options.seed !== undefined && !(Number.isInteger(options.seed) && options.seed >= 0)) {
    throw new Error(`${WHO}: the hold-out seed (--dev-seed) must be an integer >= 0, got ${options.seed}`);
  }
  parseTuningMetric(options.metric ?? "ndcg@10");
}

/** The dev questions and what they take out of the test run. */
export interface DevQuestions {
  questions: Query[];
  qrels: Qrels;
  /** Evaluated-split question ids left out of the test figures (tuned on). */
  excluded: Set<string>;
  selection: Pick<FusionProvenance, "split" | "selection" | "fraction" | "seed">;
}

/** Picks the dev questions for `options` (see {@link FusionTuningOptions}). */
export async function selectDevQuestions(
  dataset: string,
  split: string,
  testQueries: readonly Query[],
  testQrels: Qrels,
  options: FusionTuningOptions,
): Promise<DevQuestions> {
  if (options.devSplit !== undefined && options.devSplit !== split) {
    const splits = await listBeirSplits(dataset);
    if (!splits.includes(options.devSplit)) {
      throw new Error(`${WHO}: dev split "${options.devSplit}" not found in ${dataset}/qrels (available: ${splits.join(", ")})`);
    }
    const splitQrels = await loadBeirQrels(join(dataset, "qrels", `${options.devSplit}.tsv`));
    let questions = (await loadBeirQueries(dataset)).filter((q) => splitQrels.has(q.id));
    if (questions.length === 0) throw new Error(`${WHO}: no question of queries.jsonl is judged in dev split "${options.devSplit}"`);
    const seed = options.seed ?? 42;
    // The share `train --dev-fraction F --seed S` held out of that split (the trainer draws from its judged questions).
    if (options.devFraction !== undefined) questions = holdOutShare(questions, options.devFraction, seed).dev;
    const qrels: Qrels = new Map(questions.map((q) => [q.id, splitQrels.get(q.id)!]));
    const excluded = new Set(testQueries.filter((q) => qrels.has(q.id)).map((q) => q.id));
    const selection: DevQuestions["selection"] =
      options.devFraction === undefined
        ? { split: options.devSplit, selection: "split" }
        : { split: options.devSplit, selection: "fraction", fraction: options.devFraction, seed };
    return { questions, qrels, excluded, selection };
  }
  const seed = options.seed ?? 42;
  const eligible = testQueries.filter((q) => [...(testQrels.get(q.id)?.values() ?? [])].some((g) => g > 0)).map((q) => q.id);
  const { dev } = holdOutQuestions(eligible, options.devFraction!, seed);
  const excluded = new Set(dev);
  const questions = testQueries.filter((q) => excluded.has(q.id));
  const qrels: Qrels = new Map(questions.map((q) => [q.id, testQrels.get(q.id)!]));
  return { questions, qrels, excluded, selection: { split, selection: "fraction", fraction: options.devFraction!, seed } };
}

/** What the report (and fusion-tuning.json) says about the tuning. */
export interface FusionTuningReport extends FusionTuningResult {
  /** Where the dev questions came from. */
  dev: DevQuestions["selection"] & { dataset: string; questionIds: string[] };
  /** Evaluated-split questions left out of every method's figures because they were tuned on. */
  excludedFromTest: string[];
  /** Candidates per side (the evaluator's depth). */
  depth: number;
  tunedAt: string;
}

/**
 * Runs each dev question through the BM25 and dense first stages (to `depth`) and grid-searches
 * the fusion on their lists.
 */
export async function runFusionTuning(
  stages: { sparse: RetrievalService; dense: RetrievalService },
  dev: DevQuestions,
  options: FusionTuningOptions,
  dataset: string,
  depth: number,
): Promise<FusionTuningReport> {
  const questions: TuningQuestion[] = [];
  for (const q of dev.questions) {
    const [sparse, dense] = [await stages.sparse.retrieve(q.text, { k: depth }), await stages.dense.retrieve(q.text, { k: depth })];
    questions.push({ id: q.id, sparse: hitsOf(sparse, "bm25"), dense: hitsOf(dense, "dpr") });
  }
  const result = tuneFusion({ questions, qrels: dev.qrels, metric: options.metric, grid: options.grid, limit: depth });
  return {
    ...result,
    dev: { ...dev.selection, dataset: resolve(dataset), questionIds: dev.questions.map((q) => q.id) },
    excludedFromTest: [...dev.excluded],
    depth,
    tunedAt: new Date().toISOString(),
  };
}

/** The dpr_config.json `fusion` entry for a tuning: the best setting and its provenance. */
export function tunedModelFusion(t: FusionTuningReport): ModelFusion {
  const { dataset, split, selection, fraction, seed } = t.dev;
  const tunedOn: FusionProvenance = {
    dataset,
    split,
    selection,
    ...(selection === "fraction" ? { fraction, seed } : {}),
    questions: t.questions,
    metric: t.metric,
    score: t.best.score,
    bm25Score: t.bm25Score,
    denseScore: t.denseScore,
    depth: t.depth,
    tunedAt: t.tunedAt,
  };
  return { ...t.best.setting, tunedOn };
}

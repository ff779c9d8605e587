/**
 * Training data → batches for the DPR trainer.
 *
 * - {@link examplesFromBeir}: one {@link TrainingExample} per (query, relevant passage) pair of a
 *   BEIR split (titles kept);
 * - {@link loadTrainingExamples}: a BEIR folder, DPR's JSON or JSONL pairs, by path;
 * - {@link planEpoch}: the seeded order of one epoch, cut into batches in which no two examples share
 *   a question or a positive passage (a repeated positive would be a false in-batch negative);
 * - {@link tokenizeBatch}: a planned batch as padded token matrices for {@link BertEncoderTF}, with
 *   the hard negatives (shared across the batch) appended after the positives.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { loadBeirDataset, type BeirDataset } from "../data/beir.js";
import { readDprJson, readJsonlPairs } from "../data/dpr.js";
import type { Passage, TrainingExample } from "../data/types.js";
import { passageSegments, type TitleJoin } from "../models/model-dir.js";
import type { BertTokenizer } from "../tokenizers/bert-tokenizer.js";
import type { BertInputsTF } from "./bert-tf.js";
import { SeededRandom } from "./random.js";

const WHO = "training data";

/**
 * One training example per (query, passage) pair judged relevant (grade > 0) in the dataset's split.
 * Queries without text, and judgements naming a passage missing from the corpus, are counted in
 * `skipped` rather than silently dropped.
 */
export function examplesFromBeir(dataset: BeirDataset): { examples: TrainingExample[]; skipped: { missingPassages: number } } {
  const byId = new Map(dataset.corpus.map((p) => [p.id, p]));
  const examples: TrainingExample[] = [];
  let missingPassages = 0;
  for (const q of dataset.queries) {
    const judged = dataset.qrels.get(q.id);
    if (!judged) continue;
    for (const [docId, grade] of judged) {
      if (grade <= 0) continue;
      const passage = byId.get(docId);
      if (!passage) {
        missingPassages++;
        continue;
      }
      examples.push({ question: q.text, positives: [passage], negatives: [], hardNegatives: [] });
    }
  }
  return { examples, skipped: { missingPassages } };
}

/** Where training examples come from. */
export type TrainingDataSource =
  { kind: "beir"; dir: string; split: string } | { kind: "dpr-json"; path: string } | { kind: "jsonl"; path: string };

/**
 * Guesses the source kind from a path: a folder with corpus.jsonl is BEIR, `*.json` is DPR JSON,
 * `*.jsonl` is JSONL pairs.
 * @throws Error naming the path when it is none of these.
 */
export async function detectDataSource(path: string, split = "train"): Promise<TrainingDataSource> {
  let s;
  try {
    s = await stat(path);
  } catch {
    throw new Error(`${WHO}: ${path} does not exist`);
  }
  if (s.isDirectory()) {
    try {
      await stat(join(path, "corpus.jsonl"));
    } catch {
      throw new Error(`${WHO}: folder ${path} has no corpus.jsonl (expected a BEIR folder)`);
    }
    return { kind: "beir", dir: path, split };
  }
  if (path.endsWith(".jsonl")) return { kind: "jsonl", path };
  if (path.endsWith(".json")) return { kind: "dpr-json", path };
  throw new Error(`${WHO}: cannot tell the format of ${path}: expected a BEIR folder, a DPR .json file or a .jsonl pairs file`);
}

/** Loads every training example of a source. */
export async function loadTrainingExamples(source: TrainingDataSource): Promise<TrainingExample[]> {
  switch (source.kind) {
    case "beir":
      return examplesFromBeir(await loadBeirDataset(source.dir, source.split)).examples;
    case "dpr-json":
      return readDprJson(source.path);
    case "jsonl":
      return readJsonlPairs(source.path);
    default:
      throw new Error(`${WHO}: unknown source kind ${JSON.stringify(source)}`);
  }
}

/** A key identifying a passage: its id when it has one, else its title and text. */
export function passageKey(p: Passage): string {
  return p.id !== "" ? `id:${p.id}` : `tx:${p.title}\u0000${p.text}`;
}

/** One planned batch: indices into the example list, in order. */
export type PlannedBatch = number[];

/** Options of {@link planEpoch}. */
export interface PlanEpochOptions {
  batchSize: number;
  /** Run seed; the epoch's order is a function of (seed, epoch) only, so a resumed run replans it. */
  seed: number;
  epoch: number;
  /** Drop a last batch with fewer than this many examples (default 2: one question has no in-batch negative). */
  minBatchSize?: number;
}

/**
 * The batches of one epoch: the examples shuffled with a generator seeded by (seed, epoch), then cut
 * greedily into batches of `batchSize` in which questions and positives are unique; an example that
 * would repeat one is deferred to the next batch. Every example with a positive appears exactly once
 * (except in a dropped last batch smaller than `minBatchSize`).
 * @throws Error when batchSize is not an integer >= 1 or no example has a positive.
 */
export function planEpoch(examples: readonly TrainingExample[], opts: PlanEpochOptions): PlannedBatch[] {
  const { batchSize, seed, epoch } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`planEpoch: batchSize must be an integer >= 1, got ${batchSize}`);
  const order: number[] = [];
  examples.forEach((e, i) => {
    if (e.positives.length > 0) order.push(i);
  });
  if (order.length === 0) throw new Error(`planEpoch: none of the ${examples.length} examples has a positive passage`);
  new SeededRandom(SeededRandom.mix(seed, epoch, 0x5eed)).shuffle(order);
  const batches: PlannedBatch[] = [];
  let pending = order;
  while (pending.length > 0) {
    const batch: number[] = [];
    const questions = new Set<string>();
    const positives = new Set<string>();
    const deferred: number[] = [];
    let i = 0;
    for (; i < pending.length && batch.length < batchSize; i++) {
      const idx = pending[i]!;
      const ex = examples[idx]!;
      const pk = passageKey(ex.positives[0]!);
      if (questions.has(ex.question) || positives.has(pk)) {
        deferred.push(idx);
        continue;
      }
      questions.add(ex.question);
      positives.add(pk);
      batch.push(idx);
    }
    batches.push(batch);
    pending = deferred.concat(pending.slice(i));
  }
  const min = opts.minBatchSize ?? 2;
  if (batches.length > 1 && batches[batches.length - 1]!.length < min) batches.pop();
  return batches;
}

/** Options of {@link tokenizeBatch}. */
export interface TokenizeBatchOptions {
  maxQueryLength: number;
  maxPassageLength: number;
  /** `pair`: `[CLS] title [SEP] text [SEP]` as DPREmbeddings encodes passages; `none`: text only. */
  titleJoin: TitleJoin;
  /** Hard negatives per question (the first ones of each example); default 0. */
  hardNegatives?: number;
  /** Pad lengths up to a multiple of this ({@link padEncodings}); default 1. */
  padMultiple?: number;
  /** Prepended to every question (the model's query prompt); default "". */
  queryPrompt?: string;
  /** Prepended to every passage ({@link encodePassage}); default "". */
  passagePrompt?: string;
}

/** A batch ready for the encoders. */
export interface TokenizedBatch {
  questions: BertInputsTF;
  /** B positives (row i for question i), then the shared hard negatives. */
  passages: BertInputsTF;
  /** Number of questions (= positives). */
  size: number;
  /** Number of hard negatives appended. */
  hardNegatives: number;
  /** The question texts (without prompt) and the passages, in row order (for a distillation teacher). */
  questionTexts: string[];
  passageList: Passage[];
}

/** How far {@link padEncodings} pads. */
export interface PadOptions {
  /** Round the padded length up to a multiple of this (default 1: the longest row). */
  multiple?: number;
  /** Never pad beyond this length (the model's maximum for these rows). */
  max?: number;
}

/**
 * Pads encodings to the longest row ([PAD] ids, attention mask 0, token type 0), rounded up to
 * `multiple` (capped at `max`): on a GPU backend every new tensor size costs a new buffer (and some
 * kernels a new shader), so lengths are bucketed there; padded positions are masked and change nothing.
 */
export function padEncodings(
  encodings: { inputIds: number[]; attentionMask: number[]; tokenTypeIds: number[] }[],
  padId: number,
  opts: PadOptions = {},
): BertInputsTF {
  const longest = Math.max(...encodings.map((e) => e.inputIds.length));
  const m = opts.multiple ?? 1;
  const L = Math.max(longest, Math.min(Math.ceil(longest / m) * m, opts.max ?? Infinity));
  const fill = (row: number[], v: number) => (row.length === L ? row : row.concat(new Array<number>(L - row.length).fill(v)));
  return {
    inputIds: encodings.map((e) => fill(e.inputIds, padId)),
    attentionMask: encodings.map((e) => fill(e.attentionMask, 0)),
    tokenTypeIds: encodings.map((e) => fill(e.tokenTypeIds, 0)),
  };
}

/** Tokenizes a passage as DPREmbeddings does ({@link passageSegments}: prompt, title, text). */
export function encodePassage(tokenizer: BertTokenizer, p: Passage, maxLength: number, titleJoin: TitleJoin, prompt = "") {
  const seg = passageSegments(p, titleJoin, prompt);
  return tokenizer.encode(seg.text, seg.pair ?? null, { maxLength });
}

/**
 * Tokenizes one planned batch. Hard negatives that equal a positive of the batch (or an earlier hard
 * negative) are skipped, so no passage is both a question's positive and a negative.
 */
export function tokenizeBatch(
  tokenizer: BertTokenizer,
  examples: readonly TrainingExample[],
  batch: PlannedBatch,
  opts: TokenizeBatchOptions,
): TokenizedBatch {
  const padId = tokenizer.tokenToIdOrUndefined("[PAD]") ?? 0;
  const exs = batch.map((i) => examples[i]!);
  const questions = exs.map((e) => tokenizer.encode((opts.queryPrompt ?? "") + e.question, null, { maxLength: opts.maxQueryLength }));
  const positives = exs.map((e) => e.positives[0]!);
  const seen = new Set(positives.map(passageKey));
  const negatives: Passage[] = [];
  const perQuestion = opts.hardNegatives ?? 0;
  for (const e of exs) {
    let taken = 0;
    for (const n of e.hardNegatives) {
      if (taken >= perQuestion) break;
      const k = passageKey(n);
      if (seen.has(k)) continue;
      seen.add(k);
      negatives.push(n);
      taken++;
    }
  }
  const passages = [...positives, ...negatives].map((p) =>
    encodePassage(tokenizer, p, opts.maxPassageLength, opts.titleJoin, opts.passagePrompt),
  );
  return {
    questions: padEncodings(questions, padId, { multiple: opts.padMultiple, max: opts.maxQueryLength }),
    passages: padEncodings(passages, padId, { multiple: opts.padMultiple, max: opts.maxPassageLength }),
    size: exs.length,
    hardNegatives: negatives.length,
    questionTexts: exs.map((e) => e.question),
    passageList: [...positives, ...negatives],
  };
}

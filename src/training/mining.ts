/**
 * Hard-negative mining: for every training question, passages that a first-stage retriever ranks
 * high but that are not labelled relevant. They make the dual encoder's and the cross-encoder's
 * training signal much sharper than random or in-batch negatives.
 *
 * Two retrievers, both over the whole corpus in one pass:
 *
 * - `bm25`: {@link BM25Index.searchBatch} (Pyserini-compatible BM25, thousands of queries/s);
 * - `dense`: a DPR model folder embeds the corpus once (DPREmbeddings, onnxruntime) and the
 *   questions, then an exact inner-product FAISS index (`Flat`) answers all questions in one
 *   batched search.
 *
 * Selection per question, on the retriever's ranking (ranks are 1-based and count every
 * retrieved passage, labelled positives included):
 *
 * 1. the rank window: ranks `skipTop + 1 … depth` (the very top is often made of relevant passages
 *    the qrels missed, so skipping it lowers the rate of false negatives);
 * 2. never a labelled positive (qrels grade > 0 for that query), nor a passage whose title and text
 *    equal a positive's (corpora hold duplicates under other ids);
 * 3. optional margin against the best labelled positive's score `s⁺` (its exact score, computed even
 *    when the positive is ranked below the window): BM25 keeps a candidate only when
 *    `score < s⁺ · (1 − margin)` (relative: BM25 scales with query length); dense keeps it only when
 *    `score < s⁺ − margin` (absolute, in dot-product units). A candidate scoring at or above the
 *    positive is thus always dropped when a margin is given, even `margin: 0`;
 * 4. the first `perQuestion` survivors in rank order (or a seeded random sample of them).
 *
 * The output is DPR's JSON: one record per question with every labelled positive in `positive_ctxs`
 * and the mined passages in `hard_negative_ctxs`, each context `{title, text, passage_id, score}`
 * (`score`: the retriever's score). {@link readDprJson} reads it back.
 *
 * @module
 */
import { performance } from "node:perf_hooks";
import { writeDprJson } from "../data/dpr.js";
import type { BeirDataset } from "../data/beir.js";
import type { Passage, TrainingExample } from "../data/types.js";
import { DPREmbeddings } from "../embeddings/dpr-embeddings.js";
import { FaissIndex } from "../native/faiss-index.js";
import { BM25Index, type BM25IndexParams } from "../retrievers/bm25/bm25-index.js";
import { SeededRandom } from "./random.js";

const WHO = "HardNegativeMiner";

/** Which first-stage retriever ranks the candidates. */
export type MiningMethod = "bm25" | "dense";

/** How survivors of the window and margin are picked. */
export type MiningSample = "top" | "random";

/** Parameters of {@link HardNegativeMiner}. */
export interface HardNegativeMinerParams {
  /** `bm25` (default) or `dense` (needs {@link modelPath}). */
  method?: MiningMethod;
  /** DPR model folder for `dense` mining (question + passage encoders, as DPREmbeddings loads). */
  modelPath?: string;
  /** Ranks 1 … skipTop are never taken (default 0). */
  skipTop?: number;
  /** Deepest rank considered (default 100). */
  depth?: number;
  /**
   * Drop candidates whose score is within `margin` of, or above, the best positive's score:
   * relative for BM25 (`score ≥ s⁺·(1 − margin)` is dropped, margin in [0, 1)), absolute for dense
   * (`score ≥ s⁺ − margin` is dropped). Undefined (default): no score filter.
   */
  margin?: number;
  /** Hard negatives kept per question (default 10). */
  perQuestion?: number;
  /** `top` (default): the best-ranked survivors; `random`: a seeded sample of the survivors. */
  sample?: MiningSample;
  /** Seed of `sample: "random"` (default 42). */
  seed?: number;
  /** BM25 settings (default Pyserini's k1 0.9, b 0.4). */
  bm25?: BM25IndexParams;
  /** Dense: texts per onnxruntime batch (default 64). */
  batchSize?: number;
  /** Dense: question token cap (default: the model's dpr_config.json). */
  maxQueryLength?: number;
  /** Dense: passage token cap (default: the model's dpr_config.json). */
  maxPassageLength?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** One ranked candidate of a question: a corpus passage and the retriever's score. */
export interface RankedPassage {
  id: string;
  score: number;
}

/** A mined hard negative: the passage, its retriever score and its rank (1-based). */
export interface MinedNegative {
  passage: Passage;
  score: number;
  rank: number;
}

/** One mined question: a {@link TrainingExample} plus the scores behind the choice. */
export interface MinedExample extends TrainingExample {
  queryId: string;
  /** Retriever score of each positive, aligned with `positives`. */
  positiveScores: number[];
  /** Mined negatives with score and rank, aligned with `hardNegatives`. */
  mined: MinedNegative[];
}

/**
 * Counts and timings of one mining run. The `dropped*` counts cover the candidates examined: with
 * `sample: "top"` a question's scan stops once `perQuestion` negatives are found.
 */
export interface MiningStats {
  method: MiningMethod;
  questions: number;
  /** Questions without any labelled positive in the corpus (left out). */
  questionsWithoutPositives: number;
  /** Questions for which fewer than `perQuestion` negatives survived. */
  questionsShort: number;
  /** Questions left with no negative at all (still written, with an empty list). */
  questionsEmpty: number;
  negatives: number;
  /** Candidates in the window dropped because they are labelled positives. */
  droppedPositives: number;
  /** Candidates dropped because their title and text equal a positive's. */
  droppedDuplicates: number;
  /** Candidates dropped by the margin. */
  droppedByMargin: number;
  /** Seconds: building the index (BM25) or embedding the corpus and building the FAISS index (dense). */
  indexSeconds: number;
  /** Seconds: retrieving every question (dense: includes embedding the questions). */
  searchSeconds: number;
  /** Seconds: window, filters, positive scores and sampling. */
  selectSeconds: number;
  /** Questions per second of the search phase. */
  queriesPerSecond: number;
}

/** What {@link HardNegativeMiner.mine} returns. */
export interface MiningResult {
  examples: MinedExample[];
  stats: MiningStats;
}

/** The resolved selection rules of {@link selectHardNegatives}. */
export interface SelectionRules {
  skipTop: number;
  depth: number;
  margin?: number;
  /** `relative` for BM25 scores, `absolute` for dot products. */
  marginMode: "relative" | "absolute";
  perQuestion: number;
  sample: MiningSample;
}

/** Why candidates were dropped by {@link selectHardNegatives}. */
export interface SelectionCounts {
  droppedPositives: number;
  droppedDuplicates: number;
  droppedByMargin: number;
}

/**
 * The selection rules applied to one question's ranking (see the module documentation): rank
 * window, no labelled positive, no duplicate of a positive, margin, count. Pure; exported for tests
 * and for callers with their own retriever.
 *
 * @param ranked the retriever's ranking, best first (rank = index + 1)
 * @param isPositive whether a passage id is a labelled positive
 * @param isDuplicate whether a passage id duplicates a positive's content
 * @param positiveScore the best positive's exact score (needed when a margin is set)
 * @param random the generator for `sample: "random"`
 */
export function selectHardNegatives(
  ranked: readonly RankedPassage[],
  isPositive: (id: string) => boolean,
  isDuplicate: (id: string) => boolean,
  positiveScore: number | undefined,
  rules: SelectionRules,
  random?: SeededRandom,
  counts?: SelectionCounts,
): { id: string; score: number; rank: number }[] {
  let threshold = Infinity;
  if (rules.margin !== undefined) {
    if (positiveScore === undefined || !Number.isFinite(positiveScore)) {
      throw new Error(`${WHO}: a margin needs the positive's score, got ${String(positiveScore)}`);
    }
    threshold = rules.marginMode === "relative" ? positiveScore * (1 - rules.margin) : positiveScore - rules.margin;
  }
  const survivors: { id: string; score: number; rank: number }[] = [];
  const end = Math.min(rules.depth, ranked.length);
  for (let i = rules.skipTop; i < end; i++) {
    const hit = ranked[i]!;
    if (isPositive(hit.id)) {
      if (counts) counts.droppedPositives++;
      continue;
    }
    if (isDuplicate(hit.id)) {
      if (counts) counts.droppedDuplicates++;
      continue;
    }
    if (!(hit.score < threshold)) {
      if (counts) counts.droppedByMargin++;
      continue;
    }
    survivors.push({ id: hit.id, score: hit.score, rank: i + 1 });
    if (rules.sample === "top" && survivors.length === rules.perQuestion) break;
  }
  if (rules.sample === "random" && survivors.length > rules.perQuestion) {
    if (!random) throw new Error(`${WHO}: sample "random" needs a random generator`);
    const picked = random.shuffle(survivors).slice(0, rules.perQuestion);
    return picked.sort((a, b) => a.rank - b.rank);
  }
  return survivors;
}

/** A key equal for passages with the same title and text. */
function contentKey(p: Passage): string {
  return `${p.title.trim()}\u0000${p.text.trim()}`;
}

function checkInt(value: number, name: string, min: number): void {
  if (!Number.isInteger(value) || value < min) throw new Error(`${WHO}: ${name} must be an integer >= ${min}, got ${value}`);
}

/**
 * Mines hard negatives for the questions of a BEIR split (see the module documentation).
 *
 * @example
 * ```ts
 * const data = await loadBeirDataset("datasets/scifact", "train");
 * const miner = new HardNegativeMiner({ method: "bm25", skipTop: 3, depth: 100, perQuestion: 10 });
 * const { examples, stats } = await miner.mine(data);
 * await writeMinedDprJson("scifact-train-bm25-negatives.json", examples);
 * ```
 */
export class HardNegativeMiner {
  method: MiningMethod = "bm25";
  modelPath?: string;
  skipTop = 0;
  depth = 100;
  margin?: number;
  perQuestion = 10;
  sample: MiningSample = "top";
  seed = 42;
  bm25: BM25IndexParams = {};
  batchSize = 64;
  maxQueryLength?: number;
  maxPassageLength?: number;
  log?: (line: string) => void;

  constructor(params: HardNegativeMinerParams = {}) {
    if (params === null || typeof params !== "object") throw new Error(`${WHO}: params must be an object`);
    this.method = params.method ?? this.method;
    this.modelPath = params.modelPath;
    this.skipTop = params.skipTop ?? this.skipTop;
    this.depth = params.depth ?? this.depth;
    this.margin = params.margin;
    this.perQuestion = params.perQuestion ?? this.perQuestion;
    this.sample = params.sample ?? this.sample;
    this.seed = params.seed ?? this.seed;
    this.bm25 = params.bm25 ?? this.bm25;
    this.batchSize = params.batchSize ?? this.batchSize;
    this.maxQueryLength = params.maxQueryLength;
    this.maxPassageLength = params.maxPassageLength;
    this.log = params.log;
    if (this.method !== "bm25" && this.method !== "dense")
      throw new Error(`${WHO}: method must be "bm25" or "dense", got ${JSON.stringify(this.method)}`);
    if (this.method === "dense" && (typeof this.modelPath !== "string" || this.modelPath === "")) {
      throw new Error(`${WHO}: method "dense" needs modelPath (a DPR model folder)`);
    }
    checkInt(this.skipTop, "skipTop", 0);
    checkInt(this.depth, "depth", 1);
    checkInt(this.perQuestion, "perQuestion", 1);
    checkInt(this.batchSize, "batchSize", 1);
    if (this.skipTop >= this.depth)
      throw new Error(`${WHO}: skipTop (${this.skipTop}) must be smaller than depth (${this.depth}): the window would be empty`);
    if (this.margin !== undefined) {
      if (!Number.isFinite(this.margin) || this.margin < 0)
        throw new Error(`${WHO}: margin must be a finite number >= 0, got ${this.margin}`);
      if (this.method === "bm25" && this.margin >= 1) {
        throw new Error(`${WHO}: the BM25 margin is relative (a fraction of the positive's score) and must be < 1, got ${this.margin}`);
      }
    }
    if (this.sample !== "top" && this.sample !== "random")
      throw new Error(`${WHO}: sample must be "top" or "random", got ${JSON.stringify(this.sample)}`);
  }

  /** The selection rules in force. */
  get rules(): SelectionRules {
    return {
      skipTop: this.skipTop,
      depth: this.depth,
      margin: this.margin,
      marginMode: this.method === "bm25" ? "relative" : "absolute",
      perQuestion: this.perQuestion,
      sample: this.sample,
    };
  }

  /**
   * Mines every question of `dataset` that has at least one labelled positive (grade > 0) present
   * in the corpus; the others are counted in `stats.questionsWithoutPositives`.
   * @throws Error when the corpus is empty or the dense model cannot be loaded.
   */
  async mine(dataset: BeirDataset): Promise<MiningResult> {
    if (dataset.corpus.length === 0) throw new Error(`${WHO}: the corpus is empty`);
    const byId = new Map<string, number>();
    dataset.corpus.forEach((p, i) => byId.set(p.id, i));
    const questions: { id: string; text: string; positives: number[] }[] = [];
    let withoutPositives = 0;
    for (const q of dataset.queries) {
      const judged = dataset.qrels.get(q.id);
      const positives: number[] = [];
      for (const [docId, grade] of judged ?? []) {
        if (grade <= 0) continue;
        const at = byId.get(docId);
        if (at !== undefined) positives.push(at);
      }
      if (positives.length === 0) withoutPositives++;
      else questions.push({ id: q.id, text: q.text, positives });
    }
    const retrieval =
      this.method === "bm25" ? await this.retrieveBm25(dataset.corpus, questions) : await this.retrieveDense(dataset.corpus, questions);

    const t0 = performance.now();
    const counts: SelectionCounts = { droppedPositives: 0, droppedDuplicates: 0, droppedByMargin: 0 };
    const random = new SeededRandom(this.seed);
    const rules = this.rules;
    // Passages with equal title and text share a content id (the index of the first of them).
    const firstWithContent = new Map<string, number>();
    const contentId = dataset.corpus.map((p, i) => {
      const key = contentKey(p);
      const first = firstWithContent.get(key);
      if (first === undefined) firstWithContent.set(key, i);
      return first ?? i;
    });
    firstWithContent.clear();
    const examples: MinedExample[] = [];
    let short = 0,
      empty = 0,
      negatives = 0;
    questions.forEach((q, qi) => {
      const positiveIds = new Set(q.positives.map((i) => dataset.corpus[i]!.id));
      const positiveContent = new Set(q.positives.map((i) => contentId[i]!));
      const positiveScores = retrieval.scoresOf(qi, q.positives);
      const best = Math.max(...positiveScores);
      const chosen = selectHardNegatives(
        retrieval.ranked[qi]!,
        (id) => positiveIds.has(id),
        (id) => positiveContent.has(contentId[byId.get(id)!]!),
        best,
        rules,
        random,
        counts,
      );
      if (chosen.length < this.perQuestion) short++;
      if (chosen.length === 0) empty++;
      negatives += chosen.length;
      const mined = chosen.map((c) => ({ passage: dataset.corpus[byId.get(c.id)!]!, score: c.score, rank: c.rank }));
      examples.push({
        queryId: q.id,
        question: q.text,
        positives: q.positives.map((i) => dataset.corpus[i]!),
        negatives: [],
        hardNegatives: mined.map((m) => m.passage),
        positiveScores,
        mined,
      });
    });
    const selectSeconds = (performance.now() - t0) / 1000;
    const stats: MiningStats = {
      method: this.method,
      questions: questions.length,
      questionsWithoutPositives: withoutPositives,
      questionsShort: short,
      questionsEmpty: empty,
      negatives,
      ...counts,
      indexSeconds: retrieval.indexSeconds,
      searchSeconds: retrieval.searchSeconds,
      selectSeconds,
      queriesPerSecond: retrieval.searchSeconds > 0 ? questions.length / retrieval.searchSeconds : Infinity,
    };
    return { examples, stats };
  }

  private async retrieveBm25(corpus: Passage[], questions: { text: string }[]): Promise<Retrieval> {
    const t0 = performance.now();
    const index = await BM25Index.fromPassages(corpus, { ...this.bm25, storePassages: false });
    index.searchBatch(["warm up the compiled postings"], 1);
    const t1 = performance.now();
    this.log?.(`${WHO}: BM25 index of ${corpus.length} passages in ${((t1 - t0) / 1000).toFixed(2)} s`);
    const ranked = index.searchBatch(
      questions.map((q) => q.text),
      this.depth,
    );
    const t2 = performance.now();
    this.log?.(`${WHO}: BM25 top-${this.depth} of ${questions.length} questions in ${((t2 - t1) / 1000).toFixed(2)} s`);
    return {
      ranked,
      // Exact even for a positive ranked below the window: the index scores the passage itself.
      scoresOf: (qi, passages) =>
        index.scoreDocuments(
          questions[qi]!.text,
          passages.map((i) => corpus[i]!.id),
        ),
      indexSeconds: (t1 - t0) / 1000,
      searchSeconds: (t2 - t1) / 1000,
    };
  }

  private async retrieveDense(corpus: Passage[], questions: { text: string }[]): Promise<Retrieval> {
    const embeddings = new DPREmbeddings({
      modelPath: this.modelPath!,
      batchSize: this.batchSize,
      maxQueryLength: this.maxQueryLength,
      maxPassageLength: this.maxPassageLength,
    });
    let index: FaissIndex | undefined;
    try {
      const t0 = performance.now();
      const p = await embeddings.embedPassagesMatrix(corpus.map((x) => ({ title: x.title, text: x.text })));
      index = FaissIndex.create(p.dim, "Flat");
      const ids = new BigInt64Array(corpus.length);
      for (let i = 0; i < ids.length; i++) ids[i] = BigInt(i);
      await index.add(p.data, ids);
      const t1 = performance.now();
      this.log?.(`${WHO}: embedded ${corpus.length} passages (dim ${p.dim}) in ${((t1 - t0) / 1000).toFixed(2)} s`);
      const q = await embeddings.embedQueriesMatrix(questions.map((x) => x.text));
      const k = Math.min(this.depth, corpus.length);
      const result = await index.search(q.data, k);
      const t2 = performance.now();
      this.log?.(`${WHO}: embedded and searched ${questions.length} questions in ${((t2 - t1) / 1000).toFixed(2)} s`);
      const ranked: RankedPassage[][] = [];
      for (let i = 0; i < questions.length; i++) {
        const row: RankedPassage[] = [];
        for (let j = 0; j < k; j++) {
          const label = result.labels[i * k + j]!;
          if (label < 0n) break;
          row.push({ id: corpus[Number(label)]!.id, score: result.distances[i * k + j]! });
        }
        ranked.push(row);
      }
      const dim = p.dim;
      return {
        ranked,
        scoresOf: (qi, passages) =>
          passages.map((passage) => {
            let s = 0;
            for (let d = 0; d < dim; d++) s += q.data[qi * dim + d]! * p.data[passage * dim + d]!;
            return s;
          }),
        indexSeconds: (t1 - t0) / 1000,
        searchSeconds: (t2 - t1) / 1000,
      };
    } finally {
      index?.dispose();
      await embeddings.dispose();
    }
  }
}

/** One retriever's answer for every question. */
interface Retrieval {
  ranked: RankedPassage[][];
  /** The exact scores of corpus passages (by position) for question `qi`, ranked or not. */
  scoresOf: (qi: number, passages: readonly number[]) => number[];
  indexSeconds: number;
  searchSeconds: number;
}

/** A passage carrying its retrieval score in `metadata.score` (written by writeDprJson). */
function scored(p: Passage, score: number): Passage {
  return { ...p, metadata: { ...p.metadata, score } };
}

/**
 * Writes mined examples as DPR JSON (`question`, `query_id`, `positive_ctxs`, `negative_ctxs: []`,
 * `hard_negative_ctxs`; contexts `{title, text, passage_id, score}`) with src/data's writeDprJson:
 * streamed and atomic (the previous file survives a crash). Read it back with `readDprJson`.
 */
export async function writeMinedDprJson(path: string, examples: Iterable<MinedExample>): Promise<void> {
  function* records(): Generator<TrainingExample> {
    for (const ex of examples) {
      yield {
        question: ex.question,
        queryId: ex.queryId,
        positives: ex.positives.map((p, i) => scored(p, ex.positiveScores[i] ?? 0)),
        negatives: [],
        hardNegatives: ex.mined.map((m) => scored(m.passage, m.score)),
      };
    }
  }
  await writeDprJson(path, records());
}

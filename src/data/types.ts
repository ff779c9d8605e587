/**
 * Data types shared by the loaders, BM25, evaluation and training.
 */

/** A passage (document) of a corpus. `title` is `""` when the source has none. */
export interface Passage {
  id: string;
  title: string;
  text: string;
  metadata?: Record<string, unknown>;
}

/** A query (question) with its id. */
export interface Query {
  id: string;
  text: string;
}

/**
 * Relevance judgements: query id → (passage id → graded relevance). A grade > 0 means relevant;
 * 0 (or less) means judged not relevant.
 */
export type Qrels = Map<string, Map<string, number>>;

/** One training question with its positive, (random) negative and hard-negative passages. */
export interface TrainingExample {
  question: string;
  /** Optional query id (written as DPR JSON `query_id`). */
  queryId?: string;
  /** Optional answer strings (DPR JSON `answers`). */
  answers?: string[];
  positives: Passage[];
  negatives: Passage[];
  hardNegatives: Passage[];
}

/**
 * Teachers for listwise distillation (`train --distill bm25`): a teacher scores every (question,
 * passage) pair of a training batch, and the loss adds the KL divergence from the teacher's softmax
 * over each question's row to the model's ({@link dprLoss}'s `teacher`).
 *
 * @module
 */
import type { Passage } from "../data/types.js";
import { BM25Index } from "../retrievers/bm25/bm25-index.js";

/** Scores (question, passage) pairs for distillation. */
export interface DistillationTeacher {
  /** Written to training.json, e.g. "bm25". */
  readonly name: string;
  /** `result[i][j]`: the score of `passages[j]` for `questions[i]`. */
  score(questions: readonly string[], passages: readonly Passage[]): number[][];
}

/** Distillation settings of a training run. */
export interface DistillationParams {
  teacher: DistillationTeacher;
  /** Share of the loss given to the teacher, in [0, 1]. Default 0.5. */
  weight?: number;
  /** The teacher's scores are divided by this before its softmax. Default 1. */
  temperature?: number;
}

/**
 * BM25 (Lucene-exact, the evaluator's) over `corpus` as a teacher: every passage of a batch must be
 * a corpus passage (by id), as BEIR examples and mined negatives are.
 */
export async function bm25Teacher(corpus: Iterable<Passage>): Promise<DistillationTeacher> {
  const index = await BM25Index.fromPassages(corpus);
  return {
    name: "bm25",
    score(questions, passages) {
      const ids = passages.map((p) => p.id);
      for (const id of ids) {
        if (!index.has(id))
          throw new Error(`distillation (bm25): passage "${id}" of a training batch is not in the corpus the teacher indexed`);
      }
      return questions.map((q) => index.scoreDocuments(q, ids));
    },
  };
}

/**
 * Unsupervised training pairs from a corpus alone, for domain pretraining with the same trainer:
 *
 * - {@link ictExamples}: the inverse cloze task (Lee et al., 2019): a sentence of a passage is the
 *   question; the passage (title kept) is the positive, with that sentence removed most of the time
 *   (`removeProb`, 0.9 as in ORQA) so the model learns context, not only word overlap;
 * - {@link cropExamples}: two random word spans of the same passage form a pair (independent
 *   cropping, as in Contriever).
 *
 * Both are functions of (seed, epoch): each epoch draws new pairs, and a resumed run redraws the same.
 */
import type { Passage, TrainingExample } from "../data/types.js";
import { SeededRandom } from "./random.js";

/** Splits text into sentences at `.`, `!` or `?` followed by white space (abbreviation-naive). */
export function splitSentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+(?=[\p{Lu}\p{N}(["'[])/u)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Options of {@link ictExamples}. */
export interface IctOptions {
  seed: number;
  epoch: number;
  /** Probability that the question sentence is removed from its passage (default 0.9). */
  removeProb?: number;
  /** Sentences shorter than this many words are not used as questions (default 4). */
  minQueryWords?: number;
  /** Questions are cut to this many words (default 64). */
  maxQueryWords?: number;
}

/**
 * One ICT pair per passage with at least two sentences (one of at least `minQueryWords` words).
 * The positive keeps the passage id and title.
 */
export function ictExamples(corpus: readonly Passage[], opts: IctOptions): TrainingExample[] {
  const rng = new SeededRandom(SeededRandom.mix(opts.seed, opts.epoch, 0x1c7));
  const removeProb = opts.removeProb ?? 0.9;
  const minWords = opts.minQueryWords ?? 4;
  const maxWords = opts.maxQueryWords ?? 64;
  const out: TrainingExample[] = [];
  for (const p of corpus) {
    const sentences = splitSentences(p.text);
    if (sentences.length < 2) continue;
    const candidates = sentences.map((s, i) => [s, i] as const).filter(([s]) => s.split(/\s+/).length >= minWords);
    if (candidates.length === 0) continue;
    const [sentence, index] = candidates[rng.int(candidates.length)]!;
    const remove = rng.next() < removeProb;
    const text = remove ? sentences.filter((_, i) => i !== index).join(" ") : p.text;
    out.push({
      question: sentence.split(/\s+/).slice(0, maxWords).join(" "),
      positives: [{ id: p.id, title: p.title, text }],
      negatives: [],
      hardNegatives: [],
    });
  }
  return out;
}

/** Options of {@link cropExamples}. */
export interface CropOptions {
  seed: number;
  epoch: number;
  /** Span length as a fraction of the passage's words, drawn in [minRatio, maxRatio] (default 0.1–0.5). */
  minRatio?: number;
  maxRatio?: number;
  /** Passages with fewer words are skipped; spans have at least this many words (default 8). */
  minWords?: number;
}

/** One pair of independent random word spans per passage; the second span is the positive (title kept). */
export function cropExamples(corpus: readonly Passage[], opts: CropOptions): TrainingExample[] {
  const rng = new SeededRandom(SeededRandom.mix(opts.seed, opts.epoch, 0xc70));
  const minRatio = opts.minRatio ?? 0.1;
  const maxRatio = opts.maxRatio ?? 0.5;
  const minWords = opts.minWords ?? 8;
  const out: TrainingExample[] = [];
  const span = (words: string[]): string => {
    const ratio = minRatio + rng.next() * (maxRatio - minRatio);
    const len = Math.min(words.length, Math.max(minWords, Math.round(ratio * words.length)));
    const start = rng.int(words.length - len + 1);
    return words.slice(start, start + len).join(" ");
  };
  for (const p of corpus) {
    const words = p.text.split(/\s+/).filter((w) => w.length > 0);
    if (words.length < minWords) continue;
    const question = span(words);
    out.push({ question, positives: [{ id: p.id, title: p.title, text: span(words) }], negatives: [], hardNegatives: [] });
  }
  return out;
}

/** Options of {@link spanExamples}. */
export interface SpanOptions {
  seed: number;
  epoch: number;
  /** Span length in words, drawn in [minWords, maxWords] (default 6–10). */
  minWords?: number;
  maxWords?: number;
  /** Spans lie within the passage's first `within` words (default 28), so they survive truncation. */
  within?: number;
}

/**
 * One pair per passage whose question is an exact word span from the start of the passage and whose
 * positive is the whole passage (title kept): the easiest matching signal there is, used as the first
 * stage of training a cross-encoder without a pretrained language model (it teaches the model to rank
 * by what the two segments share; `scripts/train-cross-encoder.ts --mode span`).
 */
export function spanExamples(corpus: readonly Passage[], opts: SpanOptions): TrainingExample[] {
  const rng = new SeededRandom(SeededRandom.mix(opts.seed, opts.epoch, 0x5a4));
  const minWords = opts.minWords ?? 6;
  const maxWords = Math.max(minWords, opts.maxWords ?? 10);
  const within = Math.max(maxWords, opts.within ?? 28);
  const out: TrainingExample[] = [];
  for (const p of corpus) {
    const words = p.text.split(/\s+/).filter((w) => w.length > 0);
    if (words.length < minWords + 1) continue;
    const len = Math.min(words.length - 1, minWords + rng.int(maxWords - minWords + 1));
    const start = rng.int(Math.min(within, words.length) - len + 1);
    out.push({
      question: words.slice(start, start + len).join(" "),
      positives: [{ id: p.id, title: p.title, text: p.text }],
      negatives: [],
      hardNegatives: [],
    });
  }
  return out;
}

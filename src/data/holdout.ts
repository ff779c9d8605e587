/**
 * The one rule for holding a seeded share of questions out as dev questions, shared by
 * `langchain-dpr train --dev-fraction F --seed S` and `langchain-dpr evaluate --dev-fraction F
 * --dev-seed S`, so that the evaluator can tune on exactly the questions a training run held out.
 *
 * @module
 */
import { SeededRandom } from "../utils/random.js";

/** Mixed into the seed so that the hold-out draw differs from other draws of the same run seed. */
const HOLD_OUT_STREAM = 0xde7;

/**
 * Splits `items` into a dev share and the rest: `max(1, round(fraction × n))` items (never all of
 * them when n ≥ 2) drawn by a seeded shuffle; both parts keep the input order. Deterministic for
 * (items, fraction, seed).
 * @throws Error when `fraction` is not in (0, 1) or `items` is empty.
 */
export function holdOutShare<T>(items: readonly T[], fraction: number, seed: number): { dev: T[]; rest: T[] } {
  if (!(fraction > 0 && fraction < 1)) throw new Error(`holdOutShare: the fraction must be in (0, 1), got ${fraction}`);
  if (items.length === 0) throw new Error("holdOutShare: nothing to hold out (no items)");
  const n = Math.min(Math.max(1, items.length - 1), Math.max(1, Math.round(fraction * items.length)));
  const order = new SeededRandom(SeededRandom.mix(seed, HOLD_OUT_STREAM)).shuffle(items.map((_, i) => i));
  const picked = new Set(order.slice(0, n));
  return { dev: items.filter((_, i) => picked.has(i)), rest: items.filter((_, i) => !picked.has(i)) };
}

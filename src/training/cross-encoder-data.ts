/**
 * What a cross-encoder trains on and against (see {@link CrossEncoderTrainer}): the groups of an
 * epoch (a question, its positive and sampled negatives), the passage text a pair holds, the
 * listwise or binary loss of a group's logits, and the classifier head added to an encoder.
 *
 * @module
 */
import "@tensorflow/tfjs"; // registers TF.js's gradient functions (not part of tfjs-core)
import * as tf from "@tensorflow/tfjs-core";
import type { Passage, TrainingExample } from "../data/types.js";
import type { BertConfig, BertWeights } from "../models/types.js";
import { crossEncoderText } from "../rerankers/cross-encoder-text.js";
import { passageKey } from "./batches.js";
import { SeededRandom } from "./random.js";

const WHO = "CrossEncoderTrainer";

/** The training objective. */
export type CrossEncoderLoss = "binary" | "listwise";

/** One question with its positive and its negatives, as scored in a step. */
export interface CrossEncoderGroup {
  question: string;
  positive: Passage;
  negatives: Passage[];
}

/**
 * The passage text a cross-encoder reads: `title text` — the reranker's rule
 * ({@link crossEncoderText} with `titleJoin: "space"`), so a model reads at inference what it was
 * trained on.
 */
export function crossEncoderPassageText(p: Passage): string {
  return crossEncoderText(p.title, p.text, "space");
}

/**
 * The groups of one epoch: per (example, positive), `n` negatives sampled with `random` from the
 * example's hard negatives, then its plain negatives, then other examples' positives. A negative
 * never equals one of the example's positives (by id, or by title and text when ids are missing).
 */
export function buildCrossEncoderGroups(examples: readonly TrainingExample[], n: number, random: SeededRandom): CrossEncoderGroup[] {
  const allPositives = examples.flatMap((e) => e.positives);
  const groups: CrossEncoderGroup[] = [];
  for (const ex of examples) {
    const own = new Set(ex.positives.map(passageKey));
    const seen = new Set<string>();
    const pool = (list: readonly Passage[]) =>
      list.filter((p) => {
        const k = passageKey(p);
        if (own.has(k) || seen.has(k)) return false;
        seen.add(k);
        return true;
      });
    const hard = pool(ex.hardNegatives);
    const plain = pool(ex.negatives);
    for (const positive of ex.positives) {
      const picked = random.shuffle([...hard]).slice(0, n);
      if (picked.length < n) picked.push(...random.shuffle([...plain]).slice(0, n - picked.length));
      let guard = 0;
      const taken = new Set(picked.map(passageKey));
      while (picked.length < n && allPositives.length > 0 && guard++ < 20 * n) {
        const p = allPositives[random.int(allPositives.length)]!;
        const k = passageKey(p);
        if (own.has(k) || taken.has(k)) continue;
        taken.add(k);
        picked.push(p);
      }
      if (picked.length < n) {
        throw new Error(
          `${WHO}: cannot find ${n} negatives for question "${ex.question.slice(0, 60)}" (the data holds too few distinct passages)`,
        );
      }
      groups.push({ question: ex.question, positive, negatives: picked });
    }
  }
  return groups;
}

/**
 * The loss of `logits` `[G·(1+n), 1]` laid out group by group (positive first): listwise softmax CE
 * of the positive, or the mean binary CE of all pairs.
 */
export function crossEncoderLoss(logits: tf.Tensor2D, groups: number, perGroup: number, kind: CrossEncoderLoss): tf.Scalar {
  return tf.tidy(() => {
    if (logits.shape[0] !== groups * perGroup) {
      throw new Error(`${WHO}: ${logits.shape[0]} logits for ${groups} groups of ${perGroup}`);
    }
    const z = tf.reshape(tf.slice(logits, [0, 0], [groups * perGroup, 1]), [groups, perGroup]);
    if (kind === "listwise") {
      const logProbs = tf.logSoftmax(z, -1);
      return tf.neg(tf.mean(tf.slice(logProbs, [0, 0], [groups, 1]))) as tf.Scalar;
    }
    const labels = tf.concat([tf.ones([groups, 1]), tf.zeros([groups, perGroup - 1])], 1);
    // BCE with logits, stable form: max(z, 0) − z·y + log(1 + exp(−|z|))
    const bce = tf.add(tf.sub(tf.relu(z), tf.mul(z, labels)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
    return tf.mean(bce) as tf.Scalar;
  });
}

/**
 * Adds what a cross-encoder needs and an encoder lacks: the BERT pooler and a one-logit classifier,
 * initialised as BERT does (normal(0, initializer_range), biases 0), seeded.
 * @throws Error when the weights have a classifier with more than one label.
 */
export function withClassifierHead(config: BertConfig, weights: BertWeights, seed: number): BertWeights {
  const classifier = weights.get("classifier.weight");
  if (classifier && classifier.shape[0] !== 1) {
    throw new Error(`${WHO}: the starting weights have a classifier with ${classifier.shape[0]} labels; a reranker needs exactly 1`);
  }
  if (weights.has("pooler.dense.weight") && classifier) return weights;
  const H = config.hidden_size;
  const std = config.initializer_range ?? 0.02;
  const random = new SeededRandom(seed);
  const normal = (n: number): Float32Array => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = random.normal() * std;
    return out;
  };
  const head: BertWeights = new Map([
    ["pooler.dense.weight", { shape: [H, H], data: normal(H * H) }],
    ["pooler.dense.bias", { shape: [H], data: new Float32Array(H) }],
    ["classifier.weight", { shape: [1, H], data: normal(H) }],
    ["classifier.bias", { shape: [1], data: new Float32Array(1) }],
  ]);
  const out: BertWeights = new Map(weights);
  for (const [name, t] of head) if (!out.has(name)) out.set(name, t);
  return out;
}

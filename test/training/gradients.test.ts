import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../../src/training/backend.js";
import { BertEncoderTF } from "../../src/training/bert-tf.js";
import { computeDprGradients, namedTrainableVariables, sliceRows, type DualEncoderTF } from "../../src/training/gradients.js";
import { dprLoss } from "../../src/training/loss.js";
import { SeededRandom } from "../../src/training/random.js";
import { tinyBertConfig } from "../../src/models/config.js";
import { randomBertWeights } from "../../src/models/weights.js";

const config = tinyBertConfig({ vocab_size: 60, initializer_range: 0.2 });

/** A padded batch of `n` rows of lengths between 4 and 9, deterministic. */
function rows(n: number, seed: number) {
  const L = 9;
  const inputIds: number[][] = [];
  const attentionMask: number[][] = [];
  const tokenTypeIds: number[][] = [];
  for (let i = 0; i < n; i++) {
    const len = 4 + ((i * 7 + seed) % 6);
    const ids = [2];
    for (let j = 1; j < len - 1; j++) ids.push(5 + ((i * 31 + j * 17 + seed * 13) % 50));
    ids.push(3);
    inputIds.push([...ids, ...new Array(L - len).fill(0)]);
    attentionMask.push([...new Array(len).fill(1), ...new Array(L - len).fill(0)]);
    tokenTypeIds.push([
      ...new Array(Math.ceil(len / 2)).fill(0),
      ...new Array(len - Math.ceil(len / 2)).fill(1),
      ...new Array(L - len).fill(0),
    ]);
  }
  return { inputIds, attentionMask, tokenTypeIds };
}

function maxAbs(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

function encoders(shared: boolean): DualEncoderTF {
  const question = BertEncoderTF.fromWeights(config, randomBertWeights(config, { seed: 3 }), { name: "q" });
  if (shared) return { question, passage: question };
  return { question, passage: BertEncoderTF.fromWeights(config, randomBertWeights(config, { seed: 4 }), { name: "p" }) };
}

describe("computeDprGradients: GradCache", () => {
  for (const backend of ["cpu", "wasm"] as const) {
    for (const shared of [false, true]) {
      it(
        `gives the plain step's loss and gradients (to 1e-4) on ${backend}, ${shared ? "shared" : "separate"} ` +
          `encoders, chunks of 3 over 8 questions + 11 passages`,
        async () => {
          await selectBackend({ prefer: backend, log: false });
          const enc = encoders(shared);
          try {
            const questions = rows(8, 1);
            const passages = rows(11, 2); // 8 positives + 3 shared hard negatives
            const plain = computeDprGradients({ encoders: enc, questions, passages, training: false, temperature: 0.5 });
            const cached = computeDprGradients({ encoders: enc, questions, passages, training: false, temperature: 0.5, chunkSize: 3 });
            const plainLoss = plain.loss.dataSync()[0]!;
            expect(plainLoss).toBeGreaterThan(0.5);
            expect(Math.abs(cached.loss.dataSync()[0]! - plainLoss)).toBeLessThan(1e-4);
            tf.dispose([plain.loss, cached.loss]);
            const names = [...namedTrainableVariables(enc).keys()];
            expect([...plain.grads.keys()].sort()).toEqual([...names].sort());
            expect([...cached.grads.keys()].sort()).toEqual([...names].sort());
            let worst = 0;
            let largest = 0;
            for (const name of names) {
              worst = Math.max(worst, maxAbs(plain.grads.get(name)!, cached.grads.get(name)!));
              largest = Math.max(
                largest,
                tf.tidy(() => tf.max(tf.abs(plain.grads.get(name)!)).dataSync()[0]!),
              );
            }
            expect(largest).toBeGreaterThan(1e-3); // the gradients are not trivially zero
            expect(worst).toBeLessThan(1e-4);
            for (const g of [...plain.grads.values(), ...cached.grads.values()]) g.dispose();
          } finally {
            enc.question.dispose();
            enc.passage.dispose();
          }
        },
      );
    }
  }

  it(
    "with dropout, each chunk draws the same masks in the embedding and backward passes: gradients equal one graph " +
      "over identically seeded chunks; same seed repeats, another differs",
    async () => {
      await selectBackend({ prefer: "wasm", log: false });
      const enc = encoders(false);
      try {
        const args = { encoders: enc, questions: rows(6, 5), passages: rows(6, 6), training: true, chunkSize: 4 };
        const a = computeDprGradients({ ...args, dropoutSeed: 11 });
        const b = computeDprGradients({ ...args, dropoutSeed: 11 });
        const c = computeDprGradients({ ...args, dropoutSeed: 12 });
        expect(b.loss.dataSync()[0]).toBe(a.loss.dataSync()[0]);
        expect(c.loss.dataSync()[0]).not.toBe(a.loss.dataSync()[0]);
        const w = "question/encoder.layer.0.attention.self.query.weight";
        expect(maxAbs(a.grads.get(w)!, b.grads.get(w)!)).toBe(0);
        expect(maxAbs(a.grads.get(w)!, c.grads.get(w)!)).toBeGreaterThan(0);
        // Reference: one graph over the same chunks, each encoded with the seed GradCache gives it
        // (mix(step seed, side, chunk)); if GradCache's backward pass drew other masks than its
        // embedding pass, its gradients would differ from this.
        const vars = namedTrainableVariables(enc);
        const chunkOf = (side: 0 | 1, inputs: ReturnType<typeof rows>, i: number) => {
          const e = side === 0 ? enc.question : enc.passage;
          e.reseedDropout(SeededRandom.mix(11, side, i));
          return e.encode(sliceRows(inputs, i * 4, i * 4 + 4), { training: true });
        };
        const ref = tf.variableGrads(
          () =>
            dprLoss(
              tf.concat([chunkOf(0, args.questions, 0), chunkOf(0, args.questions, 1)]) as tf.Tensor2D,
              tf.concat([chunkOf(1, args.passages, 0), chunkOf(1, args.passages, 1)]) as tf.Tensor2D,
            ),
          [...vars.values()],
        );
        expect(Math.abs(ref.value.dataSync()[0]! - a.loss.dataSync()[0]!)).toBeLessThan(1e-5);
        let worst = 0;
        for (const [name, v] of vars) worst = Math.max(worst, maxAbs(ref.grads[v.name]!, a.grads.get(name)!));
        expect(worst).toBeLessThan(1e-4);
        tf.dispose([ref.value, ...Object.values(ref.grads)]);
        for (const r of [a, b, c]) tf.dispose([r.loss, ...r.grads.values()]);
      } finally {
        enc.question.dispose();
        enc.passage.dispose();
      }
    },
  );

  it("with a distillation teacher, gives the plain step's loss and gradients (to 1e-4) in chunks", async () => {
    await selectBackend({ prefer: "cpu", log: false });
    const enc = encoders(true);
    try {
      const r = new SeededRandom(9);
      const teacher = {
        scores: Array.from({ length: 8 }, () => Array.from({ length: 11 }, () => 4 * r.next())),
        weight: 0.6,
        temperature: 0.5,
      };
      const args = { encoders: enc, questions: rows(8, 1), passages: rows(11, 2), training: false, teacher };
      const plain = computeDprGradients(args);
      const cached = computeDprGradients({ ...args, chunkSize: 3 });
      const without = computeDprGradients({ ...args, teacher: undefined });
      expect(Math.abs(cached.loss.dataSync()[0]! - plain.loss.dataSync()[0]!)).toBeLessThan(1e-4);
      expect(Math.abs(without.loss.dataSync()[0]! - plain.loss.dataSync()[0]!)).toBeGreaterThan(1e-3);
      let worst = 0;
      for (const [name, g] of plain.grads) worst = Math.max(worst, maxAbs(g, cached.grads.get(name)!));
      expect(worst).toBeLessThan(1e-4);
      tf.dispose([plain.loss, cached.loss, without.loss, ...plain.grads.values(), ...cached.grads.values(), ...without.grads.values()]);
    } finally {
      enc.question.dispose();
    }
  });

  it("rejects a chunk size that is not a positive integer", async () => {
    await selectBackend({ prefer: "cpu", log: false });
    const enc = encoders(true);
    try {
      expect(() => computeDprGradients({ encoders: enc, questions: rows(2, 1), passages: rows(2, 2), chunkSize: 0 })).toThrow(
        /chunkSize must be an integer >= 1, got 0/,
      );
    } finally {
      enc.question.dispose();
    }
  });
});

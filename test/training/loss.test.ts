import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../../src/training/backend.js";
import { BertEncoderTF } from "../../src/training/bert-tf.js";
import { dprLoss, dualEncoderTrainStep } from "../../src/training/loss.js";
import { tinyBertConfig } from "../../src/models/config.js";

/** -mean_i log softmax(q_i · p / T)[i], computed by hand. */
function expectedLoss(q: number[][], p: number[][], T = 1): number {
  let total = 0;
  q.forEach((qi, i) => {
    const s = p.map((pj) => pj.reduce((acc, x, k) => acc + x * qi[k], 0) / T);
    const max = Math.max(...s);
    const lse = max + Math.log(s.reduce((acc, x) => acc + Math.exp(x - max), 0));
    total += lse - s[i];
  });
  return total / q.length;
}

describe("dprLoss", () => {
  const q = [
    [1, 0.5, -1],
    [0.2, 2, 0.3],
  ];
  const p = [
    [0.9, 0.4, -0.8],
    [0.1, 1.5, 0.2],
    [1, 1, 1],
    [-1, 0.3, 2],
  ]; // 2 positives + 2 hard negatives

  it("is the NLL of each question's positive over in-batch and shared hard negatives", async () => {
    await selectBackend({ prefer: "cpu", log: false });
    for (const fast of [true, false]) {
      const l = tf.tidy(() => dprLoss(tf.tensor2d(q), tf.tensor2d(p), { fast }).dataSync()[0]);
      expect(l).toBeCloseTo(expectedLoss(q, p), 5);
    }
  });

  it("divides scores by the temperature", async () => {
    await selectBackend({ prefer: "cpu", log: false });
    const l = tf.tidy(() => dprLoss(tf.tensor2d(q), tf.tensor2d(p), { temperature: 0.05 }).dataSync()[0]);
    expect(l).toBeCloseTo(expectedLoss(q, p, 0.05), 4);
    expect(l).not.toBeCloseTo(expectedLoss(q, p), 2);
  });

  it("fast and stock products give the same gradients", async () => {
    await selectBackend({ prefer: "wasm", log: false });
    tf.tidy(() => {
      const qt = tf.tensor2d(q);
      const pt = tf.tensor2d(p);
      const [a1, b1] = tf.grads((x: tf.Tensor, y: tf.Tensor) => dprLoss(x as tf.Tensor2D, y as tf.Tensor2D, { fast: true }))([qt, pt]);
      const [a2, b2] = tf.grads((x: tf.Tensor, y: tf.Tensor) => dprLoss(x as tf.Tensor2D, y as tf.Tensor2D, { fast: false }))([qt, pt]);
      expect(Math.max(...tf.abs(tf.sub(a1, a2)).dataSync())).toBeLessThan(1e-6);
      expect(Math.max(...tf.abs(tf.sub(b1, b2)).dataSync())).toBeLessThan(1e-6);
    });
  });

  it("throws when there are fewer passages than questions, hidden sizes differ, or temperature <= 0", async () => {
    await selectBackend({ prefer: "cpu", log: false });
    tf.tidy(() => {
      expect(() => dprLoss(tf.tensor2d(q), tf.tensor2d([p[0]]))).toThrow(/2 questions need at least 2 passages/);
      expect(() =>
        dprLoss(
          tf.tensor2d(q),
          tf.tensor2d([
            [1, 2],
            [3, 4],
          ]),
        ),
      ).toThrow(/hidden sizes differ: q has 3, p has 2/);
      expect(() => dprLoss(tf.tensor2d(q), tf.tensor2d(p), { temperature: 0 })).toThrow(/temperature must be > 0/);
    });
  });
});

describe("dualEncoderTrainStep", () => {
  it("trains a tiny dual encoder: loss falls and every question ranks its positive first", async () => {
    const { tf: t } = await selectBackend({ prefer: "wasm", log: false });
    const config = tinyBertConfig({ vocab_size: 300, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0 });
    // 8 questions, each sharing two "topic" tokens with its positive passage.
    const B = 8;
    const questions = { inputIds: [] as number[][], attentionMask: [] as number[][] };
    const passages = { inputIds: [] as number[][], attentionMask: [] as number[][] };
    for (let i = 0; i < B; i++) {
      const topic = [10 + 2 * i, 11 + 2 * i];
      questions.inputIds.push([2, topic[0], 100 + i, topic[1], 3, 0]);
      questions.attentionMask.push([1, 1, 1, 1, 1, 0]);
      passages.inputIds.push([2, 200 + i, topic[1], 150 + ((i * 7) % 40), topic[0], 201 + i, 3, 0]);
      passages.attentionMask.push([1, 1, 1, 1, 1, 1, 1, 0]);
    }
    const q = BertEncoderTF.fromConfig(config, { initSeed: 5, name: "q" });
    const p = BertEncoderTF.fromConfig(config, { initSeed: 6, name: "p" });
    const optimizer = t.train.adam(3e-3);
    const top1 = (): number =>
      t.tidy(() => {
        const scores = t.matMul(q.encode(questions), p.encode(passages), false, true);
        const best = t.argMax(scores, 1).dataSync();
        return Array.from(best).filter((j, i) => j === i).length / B;
      });
    const before = top1();
    const losses: number[] = [];
    for (let s = 0; s < 40; s++) {
      losses.push(await dualEncoderTrainStep({ questionEncoder: q, passageEncoder: p, optimizer, batch: { questions, passages } }));
    }
    const after = top1();
    q.dispose();
    p.dispose();
    optimizer.dispose();
    expect(losses[39]).toBeLessThan(0.5 * losses[0]);
    expect(after).toBe(1);
    expect(before).toBeLessThan(1);
  });
});

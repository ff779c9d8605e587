import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { fastKernelsActive, selectBackend, useStockKernels } from "../../src/training/backend.js";
import { BertEncoderTF } from "../../src/training/bert-tf.js";
import { dualEncoderTrainStep, type DualEncoderBatch } from "../../src/training/loss.js";
import { batchMatMulXnn, denseXnn, embeddingLookup, matMulXnn } from "../../src/training/ops.js";
import { tinyBertConfig } from "../../src/models/config.js";
import { randomBertWeights } from "../../src/models/weights.js";

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function seededArray(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1);
}

interface Product {
  name: string;
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
}
const products: Product[] = [
  { name: "batched [6,5,7]@[6,7,3]", a: [6, 5, 7], b: [6, 7, 3], transposeA: false, transposeB: false },
  { name: "batched with transposeB (attention scores)", a: [6, 5, 7], b: [6, 3, 7], transposeA: false, transposeB: true },
  { name: "batched with transposeA", a: [6, 7, 5], b: [6, 7, 3], transposeA: true, transposeB: false },
  { name: "rank 4 [2,3,5,4]@[2,3,4,6]", a: [2, 3, 5, 4], b: [2, 3, 4, 6], transposeA: false, transposeB: false },
  { name: "2-D with transposeA (a dense weight gradient)", a: [9, 5], b: [9, 4], transposeA: true, transposeB: false },
  { name: "2-D with both flags", a: [4, 5], b: [3, 4], transposeA: true, transposeB: true },
  { name: "2-D plain (stock XNNPACK path)", a: [5, 4], b: [4, 3], transposeA: false, transposeB: false },
];

/** Values of the product and of the gradients of sum(product * w) w.r.t. a and b. */
function productAndGrads(p: Product): { y: Float32Array; da: Float32Array; db: Float32Array } {
  return tf.tidy(() => {
    const a = tf.tensor(
      seededArray(
        p.a.reduce((x, y) => x * y, 1),
        1,
      ),
      p.a,
    );
    const b = tf.tensor(
      seededArray(
        p.b.reduce((x, y) => x * y, 1),
        2,
      ),
      p.b,
    );
    const y = tf.matMul(a, b, p.transposeA, p.transposeB);
    const w = tf.tensor(seededArray(y.size, 3), y.shape);
    const [da, db] = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, z, p.transposeA, p.transposeB), w)))([a, b]);
    return { y: y.dataSync() as Float32Array, da: da.dataSync() as Float32Array, db: db.dataSync() as Float32Array };
  });
}

describe("fast wasm BatchMatMul kernel", () => {
  it("is installed by selectBackend on wasm and removed by useStockKernels", async () => {
    const { info } = await selectBackend({ prefer: "wasm", log: false });
    expect(info.fastKernels).toBe(true);
    expect(fastKernelsActive()).toBe(true);
    useStockKernels();
    expect(fastKernelsActive()).toBe(false);
    const again = await selectBackend({ prefer: "wasm", fastKernels: true, log: false });
    expect(again.info.fastKernels).toBe(true);
  });

  for (const p of products) {
    it(`matches the cpu backend for ${p.name}, values and gradients within 1e-5`, async () => {
      await selectBackend({ prefer: "cpu", log: false });
      const want = productAndGrads(p);
      await selectBackend({ prefer: "wasm", fastKernels: true, log: false });
      const before = tf.memory().numTensors;
      const got = productAndGrads(p);
      expect(tf.memory().numTensors).toBe(before); // the kernel leaks no temporaries
      expect(maxAbsDiff(got.y, want.y)).toBeLessThan(1e-5);
      expect(maxAbsDiff(got.da, want.da)).toBeLessThan(1e-5);
      expect(maxAbsDiff(got.db, want.db)).toBeLessThan(1e-5);
    });
  }
});

describe("custom-gradient fast ops match TF.js's own gradients", () => {
  for (const backend of ["cpu", "wasm"] as const) {
    it(`${backend}: denseXnn, matMulXnn, batchMatMulXnn give the stock values and gradients`, async () => {
      await selectBackend({ prefer: backend, log: false });
      tf.tidy(() => {
        const x = tf.tensor(seededArray(6 * 5, 4), [6, 5]);
        const w = tf.tensor(seededArray(5 * 3, 5), [5, 3]);
        const b = tf.tensor(seededArray(3, 6), [3]);
        const stock = tf.grads((x1: tf.Tensor, w1: tf.Tensor, b1: tf.Tensor) => tf.sum(tf.square(tf.add(tf.matMul(x1, w1), b1))))([
          x,
          w,
          b,
        ]);
        const fast = tf.grads((x1: tf.Tensor, w1: tf.Tensor, b1: tf.Tensor) => tf.sum(tf.square(denseXnn(x1, w1, b1))))([x, w, b]);
        stock.forEach((g, i) => expect(maxAbsDiff(fast[i].dataSync(), g.dataSync())).toBeLessThan(1e-5));
        const m1 = tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.square(tf.matMul(a, c))))([x, w]);
        const m2 = tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.square(matMulXnn(a, c))))([x, w]);
        m1.forEach((g, i) => expect(maxAbsDiff(m2[i].dataSync(), g.dataSync())).toBeLessThan(1e-5));
        const a3 = tf.tensor(seededArray(4 * 3 * 5, 7), [4, 3, 5]);
        const c3 = tf.tensor(seededArray(4 * 5 * 2, 8), [4, 5, 2]);
        const b1 = tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.square(tf.matMul(a, c))))([a3, c3]);
        const b2 = tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.square(batchMatMulXnn(a, c))))([a3, c3]);
        b1.forEach((g, i) => expect(maxAbsDiff(b2[i].dataSync(), g.dataSync())).toBeLessThan(1e-5));
      });
    });
  }

  it("cpu: the scatterND embedding gradient equals the gather gradient, duplicates summed", async () => {
    await selectBackend({ prefer: "cpu", log: false });
    tf.tidy(() => {
      const table = tf.tensor(seededArray(7 * 3, 9), [7, 3]);
      const ids = tf.tensor1d([1, 4, 1, 6, 1], "int32");
      const w = tf.tensor(seededArray(5 * 3, 10), [5, 3]);
      const g1 = tf
        .grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), w)))(table)
        .arraySync() as number[][];
      const g2 = tf
        .grad((t: tf.Tensor) => tf.sum(tf.mul(embeddingLookup(t, ids), w)))(table)
        .arraySync() as number[][];
      expect(maxAbsDiff(g2.flat(), g1.flat())).toBeLessThan(1e-6);
      const wv = w.arraySync() as number[][];
      expect(g2[1][0]).toBeCloseTo(wv[0][0] + wv[2][0] + wv[4][0], 5); // id 1 appears three times
      expect(g2[0]).toEqual([0, 0, 0]);
    });
  });

  it("wasm: TF.js's stock gather gradient cannot run (no UnsortedSegmentSum kernel); the scatterND one can", async () => {
    await selectBackend({ prefer: "wasm", log: false });
    const table = tf.tensor(seededArray(7 * 3, 9), [7, 3]);
    const ids = tf.tensor1d([1, 4, 1], "int32");
    expect(() => tf.grad((t: tf.Tensor) => tf.sum(tf.gather(t, ids)))(table)).toThrow(/UnsortedSegmentSum/);
    const g = tf.grad((t: tf.Tensor) => tf.sum(embeddingLookup(t, ids)))(table);
    expect(Array.from(g.dataSync().slice(3, 6))).toEqual([2, 2, 2]);
    tf.dispose([table, ids, g]);
  });
});

describe("engineered training gives the same losses as stock TF.js (4 decimals)", () => {
  const config = tinyBertConfig({ vocab_size: 500, hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 });
  const qWeights = randomBertWeights(config, { seed: 1 });
  const pWeights = randomBertWeights(config, { seed: 2 });
  function rows(B: number, L: number, minLen: number, seed: number) {
    const r = seededArray(B * (L + 1), seed).map((x) => (x + 1) / 2);
    const inputIds: number[][] = [];
    const attentionMask: number[][] = [];
    for (let b = 0; b < B; b++) {
      const len = minLen + Math.floor(r[b * (L + 1)] * (L - minLen + 1));
      inputIds.push(Array.from({ length: L }, (_, t) => (t === 0 ? 2 : t < len ? 5 + Math.floor(r[b * (L + 1) + t + 1] * 490) : 0)));
      attentionMask.push(Array.from({ length: L }, (_, t) => (t < len ? 1 : 0)));
    }
    return { inputIds, attentionMask };
  }
  // 4 questions; 4 positives + 2 shared hard negatives.
  const batch: DualEncoderBatch = { questions: rows(4, 8, 3, 21), passages: rows(6, 16, 6, 22) };

  async function losses(backend: "cpu" | "wasm", fastKernels: boolean, fastDense: boolean, fastAttention: boolean): Promise<number[]> {
    const { tf: t } = await selectBackend({ prefer: backend, fastKernels, log: false });
    const opts = { fastDense, fastAttention, scatterEmbedding: true };
    const q = BertEncoderTF.fromWeights(config, qWeights, { ...opts, seed: 100 });
    const p = BertEncoderTF.fromWeights(config, pWeights, { ...opts, seed: 200 });
    const optimizer = t.train.adam(1e-3);
    const out: number[] = [];
    for (let i = 0; i < 4; i++) out.push(await dualEncoderTrainStep({ questionEncoder: q, passageEncoder: p, optimizer, batch }));
    q.dispose();
    p.dispose();
    optimizer.dispose();
    return out;
  }

  it("wasm: stock, fast kernel, +denseXnn, +batched attention, all: same 4 losses (dropout on, seeded)", async () => {
    const stock = await losses("wasm", false, false, false);
    expect(stock[3]).toBeLessThan(stock[0]); // it does train
    const variants = [
      await losses("wasm", true, false, false),
      await losses("wasm", false, true, false),
      await losses("wasm", false, false, true),
      await losses("wasm", true, true, true),
    ];
    for (const v of variants) {
      v.forEach((l, i) => expect(Math.abs(l - stock[i])).toBeLessThan(5e-5));
    }
  });

  it("cpu stock and wasm engineered agree to 4 decimals", async () => {
    const cpu = await losses("cpu", false, false, false);
    const wasm = await losses("wasm", true, true, true);
    cpu.forEach((l, i) => expect(Math.abs(l - wasm[i])).toBeLessThan(5e-5));
  });
});

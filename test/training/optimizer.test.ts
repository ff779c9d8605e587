import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../../src/training/backend.js";
import { AdamW, clipByGlobalNorm, linearSchedule } from "../../src/training/optimizer.js";

/** AdamW by hand for one scalar parameter. */
function adamwByHand(w0: number, grads: number[], lr: number, decay: number): number {
  let w = w0,
    m = 0,
    v = 0;
  grads.forEach((g, i) => {
    const t = i + 1;
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    const upd = m / (1 - 0.9 ** t) / (Math.sqrt(v / (1 - 0.999 ** t)) + 1e-8);
    w = w - lr * upd - lr * decay * w;
  });
  return w;
}

describe("AdamW", () => {
  it("matches the decoupled-decay update by hand, with no decay on biases and LayerNorm", async () => {
    await selectBackend({ prefer: "cpu", log: false });
    const vars = new Map([
      ["q/encoder.layer.0.intermediate.dense.weight", tf.variable(tf.tensor1d([0.5, -2]))],
      ["q/encoder.layer.0.intermediate.dense.bias", tf.variable(tf.tensor1d([0.5, -2]))],
      ["q/embeddings.LayerNorm.weight", tf.variable(tf.tensor1d([0.5, -2]))],
    ]);
    const opt = new AdamW(vars, { weightDecay: 0.1 });
    const gradSeq = [
      [0.3, -1.2],
      [0.1, 0.4],
      [-0.5, 2.0],
    ];
    for (const g of gradSeq) {
      const grads = new Map([...vars.keys()].map((k) => [k, tf.tensor1d(g)]));
      opt.step(grads, 0.01);
      tf.dispose([...grads.values()]);
    }
    const got = (k: string) => [...vars.get(k)!.dataSync()];
    for (const [k, decay] of [
      ["q/encoder.layer.0.intermediate.dense.weight", 0.1],
      ["q/encoder.layer.0.intermediate.dense.bias", 0],
      ["q/embeddings.LayerNorm.weight", 0],
    ] as const) {
      const want = [0, 1].map((j) =>
        adamwByHand(
          [0.5, -2][j]!,
          gradSeq.map((g) => g[j]!),
          0.01,
          decay,
        ),
      );
      got(k).forEach((x, j) => expect(x).toBeCloseTo(want[j]!, 6));
    }
    // Weight decay made a difference where it applies.
    expect(got("q/encoder.layer.0.intermediate.dense.weight")[1]).not.toBeCloseTo(got("q/encoder.layer.0.intermediate.dense.bias")[1]!, 4);
    opt.dispose();
    tf.dispose([...vars.values()]);
  });

  it("restores its moments from stateTensors so that the next update is the same", async () => {
    await selectBackend({ prefer: "cpu", log: false });
    const mk = () =>
      new Map([
        [
          "w",
          tf.variable(
            tf.tensor2d([
              [1, 2],
              [3, 4],
            ]),
          ),
        ],
      ]);
    const a = mk();
    const optA = new AdamW(a);
    const g1 = new Map([
      [
        "w",
        tf.tensor2d([
          [0.1, -0.2],
          [0.3, 0.5],
        ]),
      ],
    ]);
    const g2 = new Map([
      [
        "w",
        tf.tensor2d([
          [-0.4, 0.2],
          [0.1, 0.05],
        ]),
      ],
    ]);
    optA.step(g1, 0.1);
    const b = mk();
    b.get("w")!.assign(a.get("w")!);
    const optB = new AdamW(b);
    optB.loadState(await optA.stateTensors(), optA.iterations, "test");
    optA.step(g2, 0.1);
    optB.step(g2, 0.1);
    expect([...b.get("w")!.dataSync()]).toEqual([...a.get("w")!.dataSync()]);
    expect(() => optB.loadState(new Map(), 1, "empty.safetensors")).toThrow(/AdamW: empty.safetensors has no moment 'm\/w'/);
    expect(() => optB.step(new Map(), 0.1)).toThrow(/AdamW: no gradient for variable 'w'/);
  });
});

describe("linearSchedule", () => {
  it("warms up linearly to the peak, then decays linearly", () => {
    const lr = linearSchedule({ lr: 1e-3, warmupSteps: 4, totalSteps: 12 });
    expect([0, 1, 2, 3].map(lr)).toEqual([0.25e-3, 0.5e-3, 0.75e-3, 1e-3]);
    expect(lr(4)).toBeCloseTo(1e-3, 12);
    expect(lr(8)).toBeCloseTo(0.5e-3, 12);
    expect(lr(11)).toBeCloseTo(0.125e-3, 12);
    expect(lr(12)).toBe(0);
    expect(() => linearSchedule({ lr: 0, warmupSteps: 0, totalSteps: 1 })).toThrow(/lr must be > 0/);
  });
});

describe("clipByGlobalNorm", () => {
  it("scales every gradient by maxNorm / global norm when above, leaves them when below", async () => {
    await selectBackend({ prefer: "cpu", log: false });
    const grads = new Map([
      ["a", tf.tensor1d([3, 0])],
      ["b", tf.tensor1d([0, 4])],
    ]);
    const clipped = clipByGlobalNorm(grads, 1);
    expect(clipped.norm.dataSync()[0]).toBeCloseTo(5, 6);
    expect([...clipped.grads.get("a")!.dataSync()][0]).toBeCloseTo(0.6, 5);
    expect([...clipped.grads.get("b")!.dataSync()][1]).toBeCloseTo(0.8, 5);
    const loose = clipByGlobalNorm(grads, 10);
    expect([...loose.grads.get("b")!.dataSync()]).toEqual([0, 4]);
  });
});

import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../../src/training/backend.js";

// Its own test file: the wasm thread count is fixed for a process once wasm starts.
describe("wasm backend with 2 XNNPACK threads in Node (patched bundle)", () => {
  it("starts 2 threads and computes the same products and gradients as the cpu backend", async () => {
    const run = () =>
      tf.tidy(() => {
        const a = tf.tensor(
          Array.from({ length: 64 * 48 }, (_, i) => Math.sin(i)),
          [64, 48],
        );
        const b = tf.tensor(
          Array.from({ length: 48 * 40 }, (_, i) => Math.cos(i)),
          [48, 40],
        );
        const y = tf.matMul(a, b);
        const g = tf.grad((x: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, b))))(a);
        return [Array.from(y.dataSync()), Array.from(g.dataSync())];
      });
    await selectBackend({ prefer: "cpu", log: false });
    const [y0, g0] = run();
    const { info } = await selectBackend({ prefer: "wasm", threads: 2, log: false });
    expect(info.threads).toBe(2);
    const [y1, g1] = run();
    expect(Math.max(...y1.map((v, i) => Math.abs(v - y0[i])))).toBeLessThan(1e-4);
    expect(Math.max(...g1.map((v, i) => Math.abs(v - g0[i])))).toBeLessThan(1e-3);
  });
});

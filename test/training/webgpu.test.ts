/**
 * The webgpu training backend, on a real WebGPU implementation: Dawn (the `webgpu` package) on Mesa's
 * lavapipe, a Vulkan driver that runs shaders on the CPU. Every WGSL kernel of the project compiles and
 * runs here exactly as it does on a GPU (the H200 figures in the README come from the same code).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { loadBeirDataset } from "../../src/data/beir.js";
import { selectBackend } from "../../src/training/backend.js";
import { examplesFromBeir } from "../../src/training/batches.js";
import { hashDropoutAttrs, hashDropoutMask, hashDropoutMaskValues } from "../../src/training/dropout.js";
import { evaluateModelDir, type DevSet } from "../../src/training/export.js";
import { checkBackendAgreement, syntheticRows } from "../../src/training/gpu-check.js";
import { scratchModel } from "../../src/training/init.js";
import { layerNorm, LAYER_NORM_KERNELS } from "../../src/training/ops.js";
import { DPRTrainer, type EpochRecord } from "../../src/training/trainer.js";
import { CrossEncoderTrainer, crossEncoderPassageText } from "../../src/training/cross-encoder-trainer.js";
import { HardNegativeMiner } from "../../src/training/mining.js";
import { CrossEncoderReranker } from "../../src/rerankers/cross-encoder-reranker.js";
import { writeMiningFixture } from "./mining-fixture.js";
import { guardGpuWork, releaseFreeGpuBuffers, sequencePadMultiple, webGpuMemory } from "../../src/training/webgpu.js";
import { requireSoftwareGpuInCi, SOFTWARE_GPU } from "./software-gpu.js";
import { syntheticTask, writeSyntheticBeir } from "./synthetic.js";

requireSoftwareGpuInCi();

describe.skipIf(!SOFTWARE_GPU)("webgpu backend (Dawn on lavapipe)", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "dpr-webgpu-"));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("automatic selection skips a software adapter and says why; forcing webgpu takes it", async () => {
    const auto = await selectBackend({ log: false });
    expect(auto.info.choice).not.toBe("webgpu");
    const reason = auto.info.skipped.find((s) => s.choice === "webgpu")?.reason;
    expect(reason).toMatch(/only adapter is a software rasteriser \(mesa .*llvmpipe.*\).*force it with --backend webgpu/);
    const forced = await selectBackend({ prefer: "webgpu", log: false });
    expect(forced.info.backend).toBe("webgpu");
    expect(forced.info.adapter?.software).toBe(true);
    expect(tf.getBackend()).toBe("webgpu");
    expect(sequencePadMultiple()).toBe(16);
  });

  it("a training update agrees with cpu: loss, embeddings, every gradient within 1e-3, and the fused AdamW update", async () => {
    const r = await checkBackendAgreement({ candidate: "webgpu", shape: "tiny", batch: 4, qLen: 16, pLen: 40 });
    expect(r.candidate).toBe("webgpu");
    expect(r.loss.relativeDifference).toBeLessThan(1e-5);
    expect(r.embeddings).toBeLessThan(1e-5);
    expect(r.gradients.tensors).toBe(74);
    expect(r.gradients.worst).toBeLessThan(1e-3);
    expect(r.adamwUpdate).toBeLessThan(1e-5);
    expect(r.pass).toBe(true);
  });

  it("hash dropout masks are bit-identical on the GPU and in JavaScript and drop the requested fraction", async () => {
    await selectBackend({ prefer: "webgpu", log: false });
    const shape = [37, 129];
    for (const [rate, seed] of [
      [0.1, 1],
      [0.5, 123456789],
      [0.3, 4294967295],
    ] as const) {
      const gpu = hashDropoutMask(shape, rate, seed);
      const values = (await gpu.data()) as Float32Array;
      gpu.dispose();
      const js = hashDropoutMaskValues(hashDropoutAttrs(shape, rate, seed));
      expect(Array.from(values)).toEqual(Array.from(js));
      const dropped = js.filter((v) => v === 0).length / js.length;
      expect(Math.abs(dropped - rate)).toBeLessThan(0.03);
      expect(js.find((v) => v !== 0)).toBe(Math.fround(1 / (1 - rate)));
    }
    const a = hashDropoutMaskValues(hashDropoutAttrs([1000], 0.5, 1));
    const b = hashDropoutMaskValues(hashDropoutAttrs([1000], 0.5, 2));
    expect(Array.from(a)).not.toEqual(Array.from(b));
  });

  it("fused LayerNorm kernels give the composed ops' values and gradients", async () => {
    await selectBackend({ prefer: "webgpu", log: false });
    expect(tf.getKernel(LAYER_NORM_KERNELS.output, "webgpu")).toBeDefined();
    const x = tf.randomNormal([23, 48], 0.5, 2, "float32", 1);
    const gamma = tf.randomNormal([48], 1, 0.2, "float32", 2);
    const beta = tf.randomNormal([48], 0, 0.2, "float32", 3);
    const dy = tf.randomNormal([23, 48], 0, 1, "float32", 4);
    const composed = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const mean = tf.mean(a, -1, true);
      const c = tf.sub(a, mean);
      return tf.add(tf.mul(tf.mul(c, tf.rsqrt(tf.add(tf.mean(tf.square(c), -1, true), 1e-12))), g), b);
    };
    const f = (fn: typeof composed) => tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(fn(a, g, b), dy)));
    const fusedY = layerNorm(x, gamma, beta, 1e-12);
    const refY = composed(x, gamma, beta);
    const fusedG = f((a, g, b) => layerNorm(a, g, b, 1e-12))([x, gamma, beta]);
    const refG = f(composed)([x, gamma, beta]);
    const maxRel = async (a: tf.Tensor, b: tf.Tensor) => {
      const [d, s] = await Promise.all([tf.max(tf.abs(tf.sub(a, b))).data(), tf.max(tf.abs(b)).data()]);
      return d[0]! / s[0]!;
    };
    expect(await maxRel(fusedY, refY)).toBeLessThan(1e-5);
    for (let i = 0; i < 3; i++) expect(await maxRel(fusedG[i]!, refG[i]!)).toBeLessThan(1e-4);
    tf.dispose([x, gamma, beta, dy, fusedY, refY, ...fusedG, ...refG]);
  });

  it("gives pooled GPU buffers back: tfjs keeps every freed buffer by size until released", async () => {
    await selectBackend({ prefer: "webgpu", log: false });
    for (let n = 1000; n < 1100; n++) {
      const t = tf.add(tf.ones([n * 16]), 1); // a new size each time: a new buffer, pooled when disposed
      t.dispose();
    }
    const before = webGpuMemory()!;
    expect(before.allocatedBytes - before.usedBytes).toBeGreaterThan(100 * 1000 * 16 * 4 * 0.9);
    const freed = releaseFreeGpuBuffers();
    const after = webGpuMemory()!;
    expect(freed).toBe(before.allocatedBytes - after.allocatedBytes);
    expect(after.allocatedBytes).toBe(after.usedBytes);
  });

  it("GPU errors become errors that name the work: a rejected binding, a missing kernel", async () => {
    await selectBackend({ prefer: "webgpu", log: false });
    const limit = (tf.backend() as unknown as { device: { limits: { maxStorageBufferBindingSize: number } } }).device.limits
      .maxStorageBufferBindingSize;
    const n = Math.floor(limit / 4) + 1024; // one float tensor larger than one binding may be
    await expect(
      guardGpuWork("training update 3 (batch 64)", async () => {
        const t = tf.add(tf.fill([n], 1), 1);
        await t.data();
        t.dispose();
      }),
    ).rejects.toThrow(/webgpu: the GPU rejected work during training update 3 \(batch 64\): .*/);
    await expect(
      guardGpuWork("training update 4", async () => {
        tf.sparse.sparseReshape(tf.tensor2d([[0, 0]], [1, 2], "int32"), [2, 2], [4]);
      }),
    ).rejects.toThrow(
      "webgpu: TF.js has no 'SparseReshape' kernel for the webgpu backend (needed by training update 4); train with --backend wasm or cpu",
    );
    // The backend still works afterwards.
    expect(Array.from(await tf.add(tf.tensor1d([1, 2]), 1).data())).toEqual([2, 3]);
  });

  it(
    "DPRTrainer on webgpu learns a synthetic task, evaluates dev on the GPU as the exported ONNX model does, and its " +
      "checkpoint resumes on wasm",
    async () => {
      const beir = join(root, "beir");
      await writeSyntheticBeir(beir, syntheticTask(32, 3));
      const ds = await loadBeirDataset(beir, "train");
      const dev: DevSet = { queries: ds.queries, corpus: ds.corpus, qrels: ds.qrels };
      const { config, tokenizer } = scratchModel({
        hidden: 32,
        layers: 1,
        heads: 2,
        ffn: 64,
        maxLen: 48,
        vocabSize: 300,
        texts: ds.corpus.flatMap((p) => [p.title, p.text]),
        dropout: 0.1,
      });
      await selectBackend({ prefer: "webgpu", log: false });
      const params = {
        outputDir: join(root, "run"),
        tokenizer,
        init: { config },
        train: examplesFromBeir(ds).examples,
        dev,
        shared: true,
        pooling: "mean" as const,
        batchSize: 8,
        lr: 3e-3,
        epochs: 2,
        maxQueryLength: 16,
        maxPassageLength: 40,
        seed: 5,
        progress: false as const,
      };
      const epochs: EpochRecord[] = [];
      const result = await new DPRTrainer({ ...params, onEpoch: (e) => epochs.push(e) }).train();
      expect(result.steps).toBe(8);
      expect(result.lastLoss).toBeLessThan(result.firstLoss);
      const training = JSON.parse(await readFile(join(result.modelDir, "training.json"), "utf8")) as {
        hyperparameters: { backend: string; devEvaluation: string };
      };
      expect(training.hyperparameters).toMatchObject({ backend: "webgpu", devEvaluation: "backend" });
      // The dev figures computed on the GPU by the TF.js encoders equal onnxruntime's on the exported model.
      const best = epochs.filter((e) => e.best).at(-1)!; // model/ holds the last epoch that improved
      const onnx = await evaluateModelDir(result.modelDir, dev);
      for (const k of ["recall@1", "recall@5", "mrr@10", "ndcg@10"]) expect(onnx[k]).toBeCloseTo(best.metrics![k]!, 6);
      // Checkpoints are backend-neutral: a run stopped on webgpu after its update-4 checkpoint resumes on wasm.
      const interrupted = { ...params, outputDir: join(root, "interrupted"), checkpointEvery: 4 };
      await expect(
        new DPRTrainer({
          ...interrupted,
          onStep: (s) => {
            if (s.step === 6) throw new Error("killed at update 6");
          },
        }).train(),
      ).rejects.toThrow("killed at update 6");
      await selectBackend({ prefer: "wasm", log: false });
      const resumed = await new DPRTrainer(interrupted).train({ resume: true });
      expect(resumed.resumedFromStep).toBe(4);
      expect(resumed.steps).toBe(8);
      expect(Number.isFinite(resumed.lastLoss)).toBe(true);
    },
  );

  it("CrossEncoderTrainer on webgpu with the match head learns, and its export scores as the trainer does", async () => {
    const fx = await writeMiningFixture(join(root, "ce"), { size: 40, questions: 10, testQuestions: 2 });
    const data = await loadBeirDataset(fx.dir, "train");
    const examples = (await new HardNegativeMiner({ depth: 20, perQuestion: 4 }).mine(data)).examples;
    const { config, tokenizer } = scratchModel({
      hidden: 32,
      layers: 2,
      heads: 4,
      ffn: 64,
      maxLen: 96,
      vocabSize: 400,
      texts: data.corpus.map((p) => p.text),
      dropout: 0,
    });
    await selectBackend({ prefer: "webgpu", log: false });
    const trainer = new CrossEncoderTrainer({
      outputDir: join(root, "ce-run"),
      tokenizer,
      config,
      train: examples,
      matchHead: true,
      negatives: 3,
      batchSize: 4,
      epochs: 3,
      lr: 3e-3,
      maxLength: 64,
      seed: 3,
      progress: false,
    });
    try {
      const groups = trainer.groupsForEpoch(0);
      const before = await trainer.evaluateGroups(groups);
      const result = await trainer.train();
      const after = await trainer.evaluateGroups(groups);
      expect(result.steps).toBeGreaterThan(4);
      expect(after.loss).toBeLessThan(before.loss);
      const q = examples[0]!;
      const passages = [q.positives[0]!, ...q.hardNegatives.slice(0, 2)];
      const expected = await trainer.scorePairs(q.question, passages);
      const reranker = new CrossEncoderReranker({ modelPath: result.modelDir });
      const scores = await reranker.scorePairs(q.question, passages.map(crossEncoderPassageText));
      await reranker.dispose();
      scores.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 3));
    } finally {
      trainer.dispose();
    }
  });

  it("a lost device fails the next step with what to do", async () => {
    await selectBackend({ prefer: "webgpu", log: false });
    const device = (tf.backend() as unknown as { device: { destroy(): void; lost: Promise<unknown> } }).device;
    device.destroy();
    await device.lost;
    await expect(guardGpuWork("training update 9", async () => {})).rejects.toThrow(
      /webgpu: the GPU device was lost \(destroyed.*\) during training update 9; the last checkpoint is intact: rerun with --resume/,
    );
  });
});

describe("padded lengths", () => {
  it("syntheticRows is deterministic", () => {
    expect(syntheticRows(2, 8, 3, 100, 1)).toEqual(syntheticRows(2, 8, 3, 100, 1));
  });
});

/**
 * Checks a training backend the way a GPU machine needs them checked, with the trainer's own code:
 *
 * - {@link checkBackendAgreement}: the same dual encoder, batch and dropout masks on two backends
 *   (e.g. cpu and webgpu): pooled embeddings, loss, every gradient, and the weight change of one AdamW
 *   update, as relative differences;
 * - {@link benchmarkTrainingStep}: time per training update (forward, backward, clipping, AdamW, one
 *   read) for a model shape and batch on the active backend, with the arithmetic it does.
 *
 * `scripts/gpu-check.ts` runs both (and an end-to-end fine-tuning) and writes the results as files.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BertConfig, BertWeights } from "../models/types.js";
import { selectBackend, type BackendChoice } from "./backend.js";
import { BertEncoderTF, type BertInputsTF } from "./bert-tf.js";
import { computeDprGradients, namedTrainableVariables, type DualEncoderTF } from "./gradients.js";
import { AdamW } from "./optimizer.js";
import { applyUpdate } from "./update.js";
import { guardGpuWork, releaseFreeGpuBuffers, webGpuAdapter, webGpuMemory } from "./webgpu.js";

/** The model shapes the check measures. */
export type BenchShape = "tiny" | "h256" | "base";

function bert(hidden: number, layers: number, heads: number, ffn: number, vocab: number, positions: number): BertConfig {
  return {
    vocab_size: vocab,
    hidden_size: hidden,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    intermediate_size: ffn,
    max_position_embeddings: positions,
    type_vocab_size: 2,
    layer_norm_eps: 1e-12,
    hidden_act: "gelu",
    hidden_dropout_prob: 0.1,
    attention_probs_dropout_prob: 0.1,
  };
}

/** tiny: hidden 128 × 2 layers (the shipped models' shape); h256: 256 × 4; base: BERT-base (768 × 12, 30,522 ids). */
export const BENCH_SHAPES: Readonly<Record<BenchShape, BertConfig>> = {
  tiny: bert(128, 2, 2, 512, 8192, 256),
  h256: bert(256, 4, 4, 1024, 8192, 256),
  base: bert(768, 12, 12, 3072, 30522, 512),
};

function shapeConfig(shape: BenchShape | BertConfig): BertConfig {
  if (typeof shape !== "string") return shape;
  const c = BENCH_SHAPES[shape];
  if (!c) throw new Error(`gpu-check: unknown shape '${String(shape)}'; expected one of ${Object.keys(BENCH_SHAPES).join(", ")}`);
  return c;
}

/**
 * Token rows with realistic padding: lengths uniform in [minLen, L], [CLS] first, ids in
 * [5, vocab); a deterministic function of the seed.
 */
export function syntheticRows(rows: number, L: number, minLen: number, vocab: number, seed: number): BertInputsTF {
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const inputIds: number[][] = [];
  const attentionMask: number[][] = [];
  for (let b = 0; b < rows; b++) {
    const len = minLen + Math.floor(rnd() * (L - minLen + 1));
    inputIds.push(Array.from({ length: L }, (_, t) => (t === 0 ? 2 : t < len ? 5 + Math.floor(rnd() * (vocab - 5)) : 0)));
    attentionMask.push(Array.from({ length: L }, (_, t) => (t < len ? 1 : 0)));
  }
  return { inputIds, attentionMask };
}

/**
 * Floating-point operations of one dual-encoder training update (forward ×3 for forward + backward),
 * counting matrix products only: per layer and sequence of length L, `8·L·H² + 4·L·H·F + 4·L²·H`.
 */
export function trainingFlops(config: BertConfig, rows: { questions: number; qLen: number; passages: number; pLen: number }): number {
  const H = config.hidden_size;
  const F = config.intermediate_size;
  const perSeq = (L: number) => config.num_hidden_layers * (8 * L * H * H + 4 * L * H * F + 4 * L * L * H);
  return 3 * (rows.questions * perSeq(rows.qLen) + rows.passages * perSeq(rows.pLen));
}

/** Largest |a − b| over largest |a| (or over `floor` when that is larger; 0 when both are zero). */
export function relativeDifference(a: ArrayLike<number>, b: ArrayLike<number>, floor = 0): number {
  if (a.length !== b.length) throw new Error(`relativeDifference: lengths differ (${a.length} vs ${b.length})`);
  let diff = 0;
  let scale = floor;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(a[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

/** ‖a − b‖₂ / ‖a‖₂ over several arrays taken as one vector. */
function l2RelativeDifference(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  let num = 0;
  let den = 0;
  a.forEach((x, k) => {
    const y = b[k]!;
    for (let i = 0; i < x.length; i++) {
      num += (x[i]! - y[i]!) ** 2;
      den += x[i]! ** 2;
    }
  });
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** What one backend computed for the agreement check. */
interface SideResult {
  qEmb: Float32Array;
  pEmb: Float32Array;
  loss: number;
  grads: Map<string, Float32Array>;
  delta: Map<string, Float32Array>;
}

/** Options of {@link checkBackendAgreement}. */
export interface AgreementParams {
  /** The backend under test. */
  candidate: BackendChoice;
  /** The backend it is compared with (default "cpu"). */
  reference?: BackendChoice;
  /** Model shape (default "tiny"). */
  shape?: BenchShape | BertConfig;
  /** Questions per batch (passages: the same number, in-batch negatives; default 8). */
  batch?: number;
  qLen?: number;
  pLen?: number;
  /** Relative difference allowed (default 1e-3). */
  tolerance?: number;
  seed?: number;
  /** webgpu: accept a software adapter (default true here: this is a check, not a training run). */
  allowSoftwareAdapter?: boolean;
}

/** The result of {@link checkBackendAgreement}. */
export interface AgreementReport {
  reference: string;
  candidate: string;
  adapter?: string;
  shape: string;
  batch: number;
  loss: { reference: number; candidate: number; relativeDifference: number };
  /** Largest relative difference of the pooled question and passage embeddings (dropout off). */
  embeddings: number;
  /**
   * Largest relative difference over every gradient tensor (dropout on, same masks), and which; each
   * tensor against the larger of its own largest |value| and 1e-4 of the largest gradient anywhere.
   */
  gradients: { worst: number; worstTensor: string; tensors: number };
  /** ‖Δw_ref − Δw_cand‖ / ‖Δw_ref‖ over all weights after one AdamW update (lr 1e-3) on the same (reference) gradients. */
  adamwUpdate: number;
  tolerance: number;
  pass: boolean;
}

async function readAll(t: tf.Tensor): Promise<Float32Array> {
  return new Float32Array((await t.data()) as Float32Array);
}

async function runSide(
  config: BertConfig,
  weights: { q: BertWeights; p: BertWeights },
  batch: { questions: BertInputsTF; passages: BertInputsTF },
  seed: number,
  updateWith?: ReadonlyMap<string, Float32Array>,
): Promise<SideResult> {
  const make = (w: BertWeights, name: string) => BertEncoderTF.fromWeights(config, w, { name, dropoutImpl: "hash" });
  const encoders: DualEncoderTF = { question: make(weights.q, "q"), passage: make(weights.p, "p") };
  const optimizer = new AdamW(namedTrainableVariables(encoders));
  try {
    const q = tf.tidy(() => encoders.question.encode(batch.questions, { training: false }));
    const p = tf.tidy(() => encoders.passage.encode(batch.passages, { training: false }));
    const qEmb = await readAll(q);
    const pEmb = await readAll(p);
    tf.dispose([q, p]);
    const { loss, grads } = computeDprGradients({ encoders, ...batch, training: true, dropoutSeed: seed });
    const gradValues = new Map<string, Float32Array>();
    for (const [name, g] of grads) gradValues.set(name, await readAll(g));
    const before = new Map<string, Float32Array>();
    for (const [name, v] of namedTrainableVariables(encoders)) before.set(name, await readAll(v));
    // The update is checked on given gradients (the reference's) when supplied: Adam divides each
    // gradient by its own magnitude, so float noise in gradients that are zero in exact arithmetic
    // would otherwise decide the sign of their update.
    let updateGrads = grads;
    if (updateWith) {
      tf.dispose([...grads.values()]);
      updateGrads = new Map([...updateWith].map(([name, g]) => [name, tf.tensor(g, grads.get(name)!.shape)]));
    }
    const result = await guardGpuWork("the agreement check's AdamW update", () =>
      applyUpdate({ loss, grads: updateGrads, optimizer, lr: 1e-3, maxGradNorm: 0 }),
    );
    const delta = new Map<string, Float32Array>();
    for (const [name, v] of namedTrainableVariables(encoders)) {
      const after = await readAll(v);
      const b = before.get(name)!;
      delta.set(
        name,
        after.map((x, i) => x - b[i]!),
      );
    }
    return { qEmb, pEmb, loss: result.loss, grads: gradValues, delta };
  } finally {
    optimizer.dispose();
    encoders.question.dispose();
    encoders.passage.dispose();
  }
}

/**
 * Runs the same dual encoder on two backends and compares what the trainer computes: embeddings
 * (dropout off), loss and gradients (dropout on: hash masks, identical on every backend), and the
 * weight change of one AdamW update. Leaves the candidate backend active.
 */
export async function checkBackendAgreement(params: AgreementParams): Promise<AgreementReport> {
  const reference = params.reference ?? "cpu";
  const config = shapeConfig(params.shape ?? "tiny");
  const B = params.batch ?? 8;
  const qLen = params.qLen ?? 32;
  const pLen = params.pLen ?? 128;
  const seed = params.seed ?? 7;
  const tolerance = params.tolerance ?? 1e-3;
  const batch = {
    questions: syntheticRows(B, qLen, Math.min(8, qLen), config.vocab_size, seed + 1),
    passages: syntheticRows(B, pLen, Math.min(32, pLen), config.vocab_size, seed + 2),
  };
  await selectBackend({ prefer: reference, log: false });
  const init = (name: string, initSeed: number) => {
    const e = BertEncoderTF.fromConfig(config, { name, initSeed });
    return e.toWeights().finally(() => e.dispose());
  };
  const weights = { q: await init("q", seed * 10 + 1), p: await init("p", seed * 10 + 2) };
  const ref = await runSide(config, weights, batch, seed);
  const { info } = await selectBackend({ prefer: params.candidate, log: false, allowSoftwareAdapter: params.allowSoftwareAdapter ?? true });
  const cand = await runSide(config, weights, batch, seed, ref.grads);
  // Gradients that are zero in exact arithmetic (attention key biases: softmax ignores a constant
  // added to a row) are float noise on both backends: each tensor is compared against the larger of
  // its own scale and 1e-4 of the largest gradient anywhere.
  let globalMax = 0;
  for (const g of ref.grads.values()) for (const x of g) globalMax = Math.max(globalMax, Math.abs(x));
  let worst = 0;
  let worstTensor = "";
  for (const [name, g] of ref.grads) {
    const d = relativeDifference(g, cand.grads.get(name)!, 1e-4 * globalMax);
    if (d > worst || worstTensor === "") {
      worst = d;
      worstTensor = name;
    }
  }
  const names = [...ref.delta.keys()];
  const report: AgreementReport = {
    reference,
    candidate: info.choice,
    adapter: info.adapter ? `${info.adapter.vendor} ${info.adapter.architecture} ${info.adapter.description}`.trim() : undefined,
    shape: typeof params.shape === "string" ? params.shape : params.shape ? "custom" : "tiny",
    batch: B,
    loss: {
      reference: ref.loss,
      candidate: cand.loss,
      relativeDifference: Math.abs(ref.loss - cand.loss) / Math.max(Math.abs(ref.loss), 1e-12),
    },
    embeddings: Math.max(relativeDifference(ref.qEmb, cand.qEmb), relativeDifference(ref.pEmb, cand.pEmb)),
    gradients: { worst, worstTensor, tensors: ref.grads.size },
    adamwUpdate: l2RelativeDifference(
      names.map((n) => ref.delta.get(n)!),
      names.map((n) => cand.delta.get(n)!),
    ),
    tolerance,
    pass: false,
  };
  report.pass =
    report.loss.relativeDifference <= tolerance && report.embeddings <= tolerance && worst <= tolerance && report.adamwUpdate <= tolerance;
  return report;
}

/** Options of {@link benchmarkTrainingStep}. */
export interface StepBenchParams {
  shape: BenchShape | BertConfig;
  /** Questions per batch; as many positive passages (in-batch negatives). */
  batch: number;
  qLen?: number;
  pLen?: number;
  /** Timed updates (default 5) after `warm` untimed ones (default 2: shaders compile in the first). */
  steps?: number;
  warm?: number;
  /** GradCache chunk rows (the wasm heap needs it for large shapes). */
  gradCache?: number;
  /** One encoder for questions and passages (default false: two, as DPR). */
  shared?: boolean;
  /** Stop timing after this many seconds (the steps done so far are reported). */
  maxSeconds?: number;
}

/** One row of {@link benchmarkTrainingStep}. */
export interface StepBenchRow {
  backend: string;
  shape: string;
  parametersPerEncoder: number;
  batch: number;
  qLen: number;
  pLen: number;
  gradCache?: number;
  shared: boolean;
  /** Median wall time per update, ms (the update ends with its read, so GPU work is included). */
  msPerStep: number;
  /** Time of the first (untimed) update: includes shader compilation on a GPU. */
  firstStepMs: number;
  stepsTimed: number;
  questionsPerSec: number;
  /** Matrix-product arithmetic per second ({@link trainingFlops}), in TFLOP/s. */
  tflops: number;
  /** GPU programs dispatched per update (webgpu only). */
  programsPerStep?: number;
  /** GiB the webgpu backend held after the last update, live tensors and pooled buffers (≈ the update's peak). */
  gpuAllocatedGiB?: number;
  losses: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

interface CountingBackend {
  runWebGPUProgram?: (...args: unknown[]) => unknown;
}

/**
 * Times the trainer's update (computeDprGradients → clipping → AdamW → read) on the active backend
 * for one shape and batch; the same code `DPRTrainer` runs per step.
 */
export async function benchmarkTrainingStep(params: StepBenchParams): Promise<StepBenchRow> {
  const config = shapeConfig(params.shape);
  const qLen = params.qLen ?? 32;
  const pLen = params.pLen ?? 128;
  const steps = params.steps ?? 5;
  const warm = params.warm ?? 2;
  const B = params.batch;
  const shared = params.shared ?? false;
  const question = BertEncoderTF.fromConfig(config, { name: "q", initSeed: 1 });
  const encoders: DualEncoderTF = { question, passage: shared ? question : BertEncoderTF.fromConfig(config, { name: "p", initSeed: 2 }) };
  const optimizer = new AdamW(namedTrainableVariables(encoders));
  const parametersPerEncoder = question.parameterCount;
  const batch = {
    questions: syntheticRows(B, qLen, Math.min(8, qLen), config.vocab_size, 11),
    passages: syntheticRows(B, pLen, Math.min(64, pLen), config.vocab_size, 12),
  };
  const backend = tf.backend() as unknown as CountingBackend;
  let programs = 0;
  const original = backend.runWebGPUProgram;
  if (original) {
    backend.runWebGPUProgram = function (this: unknown, ...args: unknown[]) {
      programs++;
      return original.apply(this, args);
    };
  }
  const times: number[] = [];
  const losses: number[] = [];
  let firstStepMs = NaN;
  let programsPerStep: number | undefined;
  let gpuAllocatedGiB: number | undefined;
  const started = performance.now();
  try {
    for (let i = 0; i < warm + steps; i++) {
      programs = 0;
      const t0 = performance.now();
      const what =
        `benchmark update ${i + 1} (${typeof params.shape === "string" ? params.shape : "custom"}, batch ` +
        `${B}: ${B} questions × ${qLen} tokens, ${B} passages × ${pLen} tokens)`;
      const r = await guardGpuWork(what, () =>
        applyUpdate({
          ...computeDprGradients({ encoders, ...batch, training: true, chunkSize: params.gradCache, dropoutSeed: 100 + i }),
          optimizer,
          lr: 1e-5,
          maxGradNorm: 2,
        }),
      );
      const ms = performance.now() - t0;
      losses.push(+r.loss.toFixed(4));
      if (i === 0) firstStepMs = ms;
      if (i >= warm) times.push(ms);
      if (original) programsPerStep = programs;
      const mem = webGpuMemory();
      if (mem) gpuAllocatedGiB = Math.max(gpuAllocatedGiB ?? 0, +(mem.allocatedBytes / 2 ** 30).toFixed(2));
      if (params.maxSeconds !== undefined && i >= warm && (performance.now() - started) / 1000 > params.maxSeconds) break;
    }
  } finally {
    if (original) backend.runWebGPUProgram = original;
    optimizer.dispose();
    question.dispose();
    if (!shared) encoders.passage.dispose();
    releaseFreeGpuBuffers();
  }
  const ms = median(times);
  const flops = trainingFlops(config, { questions: B, qLen, passages: B, pLen });
  return {
    backend: tf.getBackend(),
    shape: typeof params.shape === "string" ? params.shape : "custom",
    parametersPerEncoder,
    batch: B,
    qLen,
    pLen,
    gradCache: params.gradCache,
    shared,
    msPerStep: +ms.toFixed(1),
    firstStepMs: +firstStepMs.toFixed(1),
    stepsTimed: times.length,
    questionsPerSec: +((B * 1000) / ms).toFixed(1),
    tflops: +(flops / (ms / 1000) / 1e12).toFixed(3),
    programsPerStep,
    gpuAllocatedGiB,
    losses,
  };
}

/** A one-line description of the active backend's device, for reports. */
export function describeDevice(): string {
  const a = webGpuAdapter();
  if (tf.getBackend() === "webgpu" && a) return `webgpu: ${a.vendor} ${a.architecture} ${a.description}`.trim();
  return tf.getBackend();
}

/**
 * Kernels this project adds to TF.js's webgpu backend (installed by `./webgpu.ts` when the backend is
 * initialised):
 *
 * - {@link HASH_DROPOUT_KERNEL}: the dropout mask of `./dropout.ts`, computed on the GPU (WGSL) with the
 *   same integer arithmetic as its JavaScript form, so the two are bit-identical;
 * - {@link LAYER_NORM_KERNELS}: LayerNorm over the last axis as 2 dispatches forward (row statistics,
 *   output) and 3 backward (dx, dγ, dβ), where TF.js's composed ops take about 9 and 20;
 * - {@link ADAMW_KERNEL}: one AdamW update of one variable as 3 dispatches (new m, new v, new weights)
 *   instead of the ~14 elementwise TF.js ops of `AdamW.step`'s portable form: on a GPU each dispatch
 *   costs tens of microseconds of JavaScript and Dawn bookkeeping, and AdamW over BERT-base's ~400
 *   tensors would otherwise cost more than its forward and backward passes.
 *
 * Programs follow tfjs-backend-webgpu 4.22's `WebGPUProgram` contract (its own FillProgram is the
 * model): `size = true` gives `uniforms.size`, the program's own uniforms follow, and `main(index)` is
 * called once per output element of a flat dispatch.
 */
import * as tf from "@tensorflow/tfjs-core";
import { HASH_DROPOUT_KERNEL, type HashDropoutAttrs } from "./dropout.js";
import { ADAMW_KERNEL, type AdamWKernelAttrs } from "./optimizer.js";
import { LAYER_NORM_KERNELS } from "./ops.js";

/** What this module needs of `@tensorflow/tfjs-backend-webgpu`. */
export interface TfWebGpuUtil {
  webgpu_util: {
    flatDispatchLayout(shape: number[]): { x: number[] };
    computeDispatch(layout: { x: number[] }, outputShape: number[], workgroupSize: [number, number, number]): [number, number, number];
  };
}

interface WebGpuBackendLike {
  runWebGPUProgram(
    program: object,
    inputs: tf.TensorInfo[],
    dtype: tf.DataType,
    uniforms: { type: string; data: number[] }[],
  ): tf.TensorInfo;
}

/** WGSL of the PCG output permutation (same constants as `pcgHash` in `./dropout.ts`). */
const PCG_WGSL = `
  fn lcdprPcg(v : u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
  }`;

class HashDropoutProgram {
  variableNames: string[] = [];
  outputShape: number[];
  shaderKey = "lcdprHashDropout";
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  uniforms = "seedHash : u32, threshold : u32, scale : f32,";
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;

  constructor(shape: number[], util: TfWebGpuUtil["webgpu_util"]) {
    this.outputShape = shape;
    this.dispatchLayout = util.flatDispatchLayout(shape);
    this.dispatch = util.computeDispatch(this.dispatchLayout, shape, this.workgroupSize);
  }

  getUserCode(): string {
    return `
  ${PCG_WGSL}
  fn main(index : i32) {
    if (index < uniforms.size) {
      let h = lcdprPcg(uniforms.seedHash ^ bitcast<u32>(index));
      var value = 0.0;
      if ((h >> 8u) >= uniforms.threshold) {
        value = uniforms.scale;
      }
      setOutputAtIndex(index, value);
    }
  }`;
  }
}

/** Output `which` of AdamW: 0 the new first moment, 1 the new second moment, 2 the new weights. */
class AdamWProgram {
  variableNames = ["W", "G", "M", "V", "S"];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  uniforms =
    "beta1 : f32, oneMinusBeta1 : f32, beta2 : f32, oneMinusBeta2 : f32, bc1 : f32, bc2 : f32, eps : f32, lr : f32, lrDecay : f32,";
  workgroupSize: [number, number, number] = [128, 1, 1];
  size = true;
  private readonly which: 0 | 1 | 2;

  constructor(shape: number[], which: 0 | 1 | 2, util: TfWebGpuUtil["webgpu_util"]) {
    this.outputShape = shape;
    this.which = which;
    this.shaderKey = `lcdprAdamW${which}`;
    this.dispatchLayout = util.flatDispatchLayout(shape);
    this.dispatch = util.computeDispatch(this.dispatchLayout, shape, this.workgroupSize);
  }

  getUserCode(): string {
    const result = ["m1", "v1", "w0 - upd * uniforms.lr - w0 * uniforms.lrDecay"][this.which];
    // Every input is used in every variant (a phony assignment where the result does not need it):
    // the bind group layout is derived from the shader, and tfjs binds all five inputs.
    return `
  fn main(index : i32) {
    if (index < uniforms.size) {
      let w0 = W[index];
      _ = w0;
      let g = G[index] * S[0];
      let m1 = M[index] * uniforms.beta1 + g * uniforms.oneMinusBeta1;
      let v1 = V[index] * uniforms.beta2 + (g * g) * uniforms.oneMinusBeta2;
      let upd = (m1 / uniforms.bc1) / (sqrt(v1 / uniforms.bc2) + uniforms.eps);
      setOutputAtIndex(index, ${result});
    }
  }`;
  }
}

/** A program with one thread per row (or column) of a `[rows, cols]` matrix; `body` sees `index`. */
class RowProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  uniforms = "rows : i32, cols : i32, eps : f32,";
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;

  constructor(
    readonly variableNames: string[],
    outputShape: number[],
    threads: number,
    key: string,
    private readonly body: string,
    util: TfWebGpuUtil["webgpu_util"],
  ) {
    this.outputShape = outputShape;
    this.shaderKey = key;
    this.dispatchLayout = util.flatDispatchLayout([threads]);
    this.dispatch = util.computeDispatch(this.dispatchLayout, [threads], this.workgroupSize);
  }

  getUserCode(): string {
    return `
  fn main(index : i32) {
    let H = uniforms.cols;
    ${this.body}
  }`;
  }
}

/** Row statistics: output [rows, 2] = (mean, 1 / sqrt(variance + eps)), biased variance. */
const LN_STATS = `
    if (index < uniforms.rows) {
      let base = index * H;
      var mean = 0.0;
      for (var j = 0; j < H; j++) { mean += X[base + j]; }
      mean = mean / f32(H);
      var v = 0.0;
      for (var j = 0; j < H; j++) { let d = X[base + j] - mean; v += d * d; }
      setOutputAtIndex(index * 2, mean);
      setOutputAtIndex(index * 2 + 1, inverseSqrt(v / f32(H) + uniforms.eps));
    }`;
/** y = (x − mean) · rstd · γ + β, one row per thread. */
const LN_OUTPUT = `
    if (index < uniforms.rows) {
      let base = index * H;
      let mean = S[index * 2];
      let rstd = S[index * 2 + 1];
      for (var j = 0; j < H; j++) { setOutputAtIndex(base + j, (X[base + j] - mean) * rstd * G[j] + B[j]); }
    }`;
/** dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)) with g = dy · γ, one row per thread. */
const LN_GRAD_X = `
    if (index < uniforms.rows) {
      let base = index * H;
      let mean = S[index * 2];
      let rstd = S[index * 2 + 1];
      var s1 = 0.0;
      var s2 = 0.0;
      for (var j = 0; j < H; j++) {
        let g = DY[base + j] * G[j];
        s1 += g;
        s2 += g * (X[base + j] - mean) * rstd;
      }
      s1 = s1 / f32(H);
      s2 = s2 / f32(H);
      for (var j = 0; j < H; j++) {
        let xhat = (X[base + j] - mean) * rstd;
        setOutputAtIndex(base + j, rstd * (DY[base + j] * G[j] - s1 - xhat * s2));
      }
    }`;
/** dγ[j] = Σ_rows dy · x̂, one column per thread (reads are coalesced across the threads). */
const LN_GRAD_GAMMA = `
    if (index < H) {
      var acc = 0.0;
      for (var r = 0; r < uniforms.rows; r++) {
        acc += DY[r * H + index] * (X[r * H + index] - S[r * 2]) * S[r * 2 + 1];
      }
      setOutputAtIndex(index, acc);
    }`;

let registered = false;

/** Registers this module's kernels for the webgpu backend (once per process). */
export function registerWebGpuKernels(tfw: TfWebGpuUtil): void {
  if (registered) return;
  registered = true;
  tf.registerKernel({
    kernelName: HASH_DROPOUT_KERNEL,
    backendName: "webgpu",
    kernelFunc: ({ backend, attrs }) => {
      const a = attrs as unknown as HashDropoutAttrs;
      const program = new HashDropoutProgram(a.shape, tfw.webgpu_util);
      return (backend as unknown as WebGpuBackendLike).runWebGPUProgram(program, [], "float32", [
        { type: "uint32", data: [a.seedHash] },
        { type: "uint32", data: [a.threshold] },
        { type: "float32", data: [a.scale] },
      ]);
    },
  });
  const rowKernel = (
    name: string,
    vars: string[],
    body: string,
    out: (rows: number, cols: number) => number[],
    threads: "rows" | "cols",
  ) => {
    tf.registerKernel({
      kernelName: name,
      backendName: "webgpu",
      kernelFunc: ({ inputs, backend, attrs }) => {
        const ins = vars.map((v) => (inputs as Record<string, tf.TensorInfo>)[v]!);
        const [rows, cols] = ins.find((t) => t.shape.length === 2)!.shape as [number, number];
        const program = new RowProgram(vars, out(rows, cols), threads === "rows" ? rows : cols, name, body, tfw.webgpu_util);
        const eps = (attrs as { eps?: number }).eps ?? 0;
        return (backend as unknown as WebGpuBackendLike).runWebGPUProgram(program, ins, "float32", [
          { type: "int32", data: [rows] },
          { type: "int32", data: [cols] },
          { type: "float32", data: [eps] },
        ]);
      },
    });
  };
  rowKernel(LAYER_NORM_KERNELS.stats, ["X"], LN_STATS, (r) => [r, 2], "rows");
  rowKernel(LAYER_NORM_KERNELS.output, ["X", "S", "G", "B"], LN_OUTPUT, (r, c) => [r, c], "rows");
  rowKernel(LAYER_NORM_KERNELS.gradX, ["DY", "X", "S", "G"], LN_GRAD_X, (r, c) => [r, c], "rows");
  rowKernel(LAYER_NORM_KERNELS.gradGamma, ["DY", "X", "S"], LN_GRAD_GAMMA, (_, c) => [c], "cols");
  tf.registerKernel({
    kernelName: ADAMW_KERNEL,
    backendName: "webgpu",
    kernelFunc: ({ inputs, backend, attrs }) => {
      const a = attrs as unknown as AdamWKernelAttrs;
      const { w, g, m, v, s } = inputs as Record<string, tf.TensorInfo>;
      const uniforms = [a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.bc1, a.bc2, a.epsilon, a.lr, a.lr * a.decay];
      const program = new AdamWProgram([...w!.shape], a.which, tfw.webgpu_util);
      return (backend as unknown as WebGpuBackendLike).runWebGPUProgram(
        program,
        [w!, g!, m!, v!, s!],
        "float32",
        uniforms.map((x) => ({ type: "float32", data: [x] })),
      );
    },
  });
}

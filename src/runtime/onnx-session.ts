/**
 * The one module that owns onnxruntime-node: session creation, execution providers,
 * thread settings, input/output introspection and disposal. Everything else in the
 * project goes through {@link OnnxSession} and never imports onnxruntime-node directly,
 * so there is exactly one place that knows how native sessions are configured.
 *
 * onnxruntime-node is loaded on first use, not at import: code that never runs a session (training
 * on a machine that has only the TF.js side, e.g. the GPU bundle) imports the project without it.
 */
import { access, constants } from "node:fs/promises";
import { createRequire } from "node:module";
import type * as Ort from "onnxruntime-node";

let ortModule: typeof Ort | undefined;

/** onnxruntime-node, loaded on first use. @throws Error naming the package and the install command. */
function ort(): typeof Ort {
  if (ortModule === undefined) {
    try {
      ortModule = createRequire(import.meta.url)("onnxruntime-node") as typeof Ort;
    } catch (err) {
      const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
      throw new Error(
        `OnnxSession: onnxruntime-node could not be loaded (${msg}); install it with ` +
          "ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node (the CPU binary is inside the package)",
      );
    }
  }
  return ortModule;
}

/** Execution providers this project knows how to configure. */
export type ExecutionProviderName = "cpu" | "cuda" | "webgpu" | "tensorrt";

/** Graph optimisation levels accepted by onnxruntime. */
export type GraphOptimizationLevel = "disabled" | "basic" | "extended" | "all";

/** Settings for one native session. */
export interface OnnxSessionParams {
  /** Ordered list of execution providers; onnxruntime falls back along the list. Default `["cpu"]`. */
  executionProviders?: ExecutionProviderName[];
  /** Threads used inside one operator (0 or undefined: onnxruntime's default, one per core). */
  intraOpNumThreads?: number;
  /** Threads used across independent operators. */
  interOpNumThreads?: number;
  /** Graph optimisation level. Default `"all"`. */
  graphOptimizationLevel?: GraphOptimizationLevel;
  /** onnxruntime log level: 0 verbose, 1 info, 2 warning, 3 error (default), 4 fatal. */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** Name used as the prefix of error messages (e.g. `"DPREmbeddings"`). Default `"OnnxSession"`. */
  owner?: string;
}

/** The element types onnxruntime feeds and fetches in this project. */
export type OnnxElementType = "int64" | "int32" | "float32" | "float16" | "unknown";

/** Name and element type of one model input or output, read from the loaded session. */
export interface OnnxValueInfo {
  name: string;
  type: OnnxElementType;
  /** Declared shape: numbers for fixed axes, strings for symbolic ones, empty when unknown. */
  shape: ReadonlyArray<number | string>;
}

/** A dense output tensor copied out of onnxruntime. */
export interface OnnxOutputTensor {
  dims: number[];
  data: Float32Array;
}

/** An integer input tensor: data row-major with its dims. */
export interface OnnxIntInput {
  dims: [number, number];
  data: BigInt64Array | Int32Array;
}

/**
 * Execution providers whose native library ships with the installed onnxruntime-node.
 * `cuda`/`tensorrt` are listed by onnxruntime-node as "not bundled": they need the CUDA
 * provider libraries next to the binding (installed by onnxruntime-node's install script
 * with `ONNXRUNTIME_NODE_INSTALL=cuda12`).
 */
export function availableExecutionProviders(): { name: string; bundled: boolean }[] {
  return ort()
    .listSupportedBackends()
    .map((b) => ({ name: b.name, bundled: b.bundled }));
}

function toElementType(t: string): OnnxElementType {
  return t === "int64" || t === "int32" || t === "float32" || t === "float16" ? t : "unknown";
}

function describeInfo(meta: readonly Ort.InferenceSession.ValueMetadata[], names: readonly string[]): OnnxValueInfo[] {
  return names.map((name, i) => {
    const m = meta[i];
    if (m && m.isTensor) return { name, type: toElementType(m.type), shape: m.shape };
    return { name, type: "unknown", shape: [] };
  });
}

/**
 * A loaded onnxruntime session with its inputs/outputs described. Create with
 * {@link OnnxSession.create}; call {@link OnnxSession.dispose} to free the native memory.
 */
export class OnnxSession {
  /** Path of the `.onnx` file the session was loaded from. */
  readonly modelPath: string;
  /** Inputs declared by the model, in graph order. */
  readonly inputs: OnnxValueInfo[];
  /** Outputs declared by the model, in graph order. */
  readonly outputs: OnnxValueInfo[];
  /** Error-message prefix. */
  readonly owner: string;

  private session: Ort.InferenceSession | null;

  private constructor(modelPath: string, session: Ort.InferenceSession, owner: string) {
    this.modelPath = modelPath;
    this.session = session;
    this.owner = owner;
    this.inputs = describeInfo(session.inputMetadata, session.inputNames);
    this.outputs = describeInfo(session.outputMetadata, session.outputNames);
  }

  /**
   * Loads `modelPath` into a new native session.
   * @throws Error naming the file when it is missing or unreadable, or the provider when an
   *   execution provider is not available in this onnxruntime-node build.
   */
  static async create(modelPath: string, params: OnnxSessionParams = {}): Promise<OnnxSession> {
    const owner = params.owner ?? "OnnxSession";
    try {
      await access(modelPath, constants.R_OK);
    } catch {
      throw new Error(`${owner}: model file not found or not readable: ${modelPath}`);
    }
    const providers = params.executionProviders ?? ["cpu"];
    if (providers.length === 0) throw new Error(`${owner}: executionProviders must name at least one provider (e.g. ["cpu"])`);
    const supported = availableExecutionProviders();
    for (const p of providers) {
      if (!supported.some((s) => s.name === p)) {
        throw new Error(
          `${owner}: execution provider '${p}' is not supported by this onnxruntime-node build ` +
            `(supported: ${supported.map((s) => s.name).join(", ")})`,
        );
      }
    }
    const threads = params.intraOpNumThreads;
    if (threads !== undefined && (!Number.isInteger(threads) || threads < 0)) {
      throw new Error(`${owner}: intraOpNumThreads must be a non-negative integer, got ${threads}`);
    }
    const options: Ort.InferenceSession.SessionOptions = {
      executionProviders: providers,
      graphOptimizationLevel: params.graphOptimizationLevel ?? "all",
      logSeverityLevel: params.logSeverityLevel ?? 3,
    };
    if (threads !== undefined && threads > 0) options.intraOpNumThreads = threads;
    if (params.interOpNumThreads !== undefined && params.interOpNumThreads > 0) {
      options.interOpNumThreads = params.interOpNumThreads;
    }
    let session: Ort.InferenceSession;
    try {
      session = await ort().InferenceSession.create(modelPath, options);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      const gpu = providers.filter((p) => p !== "cpu");
      if (gpu.length > 0 && /provider|cuda|tensorrt|webgpu|\.so/i.test(msg)) {
        throw new Error(
          `${owner}: execution provider ${gpu.join("/")} could not be initialised for ${modelPath}: ${msg}. ` +
            `This onnxruntime-node install ships only: ${supported
              .filter((s) => s.bundled)
              .map((s) => s.name)
              .join(", ")}; ` +
            `CUDA needs an NVIDIA GPU with CUDA 12 and onnxruntime-node's CUDA provider libraries ` +
            `(ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js).`,
        );
      }
      throw new Error(`${owner}: onnxruntime could not load ${modelPath}: ${msg}`);
    }
    return new OnnxSession(modelPath, session, owner);
  }

  /** True until {@link dispose} is called. */
  get isOpen(): boolean {
    return this.session !== null;
  }

  /** Describes the input named `name`, or undefined. */
  input(name: string): OnnxValueInfo | undefined {
    return this.inputs.find((i) => i.name === name);
  }

  /** Describes the output named `name`, or undefined. */
  output(name: string): OnnxValueInfo | undefined {
    return this.outputs.find((o) => o.name === name);
  }

  /**
   * Runs the model on integer inputs (int64 or int32 matrices) and returns the requested
   * float outputs as Float32Arrays. The native output buffers are released before returning.
   */
  async run(feeds: Record<string, OnnxIntInput>, fetch: string[]): Promise<Record<string, OnnxOutputTensor>> {
    const session = this.session;
    if (!session) throw new Error(`${this.owner}: session for ${this.modelPath} was disposed`);
    const ortFeeds: Record<string, Ort.Tensor> = {};
    const { Tensor } = ort();
    for (const [name, v] of Object.entries(feeds)) {
      ortFeeds[name] = new Tensor(v.data instanceof BigInt64Array ? "int64" : "int32", v.data, v.dims);
    }
    const result = await session.run(ortFeeds, fetch);
    const out: Record<string, OnnxOutputTensor> = {};
    try {
      for (const name of fetch) {
        const t = result[name];
        if (!t) throw new Error(`${this.owner}: ${this.modelPath} returned no output '${name}'`);
        if (t.type !== "float32") {
          throw new Error(`${this.owner}: output '${name}' of ${this.modelPath} has type ${t.type}; expected float32`);
        }
        out[name] = { dims: t.dims.slice(), data: t.data as Float32Array };
      }
    } finally {
      for (const name of Object.keys(result)) {
        if (!(name in out)) result[name]?.dispose();
      }
    }
    return out;
  }

  /** Frees the native session. Safe to call more than once. */
  async dispose(): Promise<void> {
    const s = this.session;
    this.session = null;
    if (s) await s.release();
  }
}

/**
 * A memoised async value: concurrent first calls share one creation, a failed creation is
 * forgotten so the next call retries, and {@link Lazy.dispose} frees whatever was created.
 */
export class Lazy<T> {
  private pending: Promise<T> | null = null;
  private readonly factory: () => Promise<T>;
  private readonly release: (value: T) => Promise<void>;

  constructor(factory: () => Promise<T>, release: (value: T) => Promise<void> = async () => {}) {
    this.factory = factory;
    this.release = release;
  }

  /** Returns the value, creating it on first use. */
  get(): Promise<T> {
    if (!this.pending) {
      const p = this.factory();
      this.pending = p;
      p.catch(() => {
        if (this.pending === p) this.pending = null;
      });
    }
    return this.pending;
  }

  /** True once creation has started (and not failed). */
  get started(): boolean {
    return this.pending !== null;
  }

  /** Releases the created value (if any); the next {@link get} creates a fresh one. */
  async dispose(): Promise<void> {
    const p = this.pending;
    this.pending = null;
    if (!p) return;
    let value: T;
    try {
      value = await p;
    } catch {
      return;
    }
    await this.release(value);
  }
}

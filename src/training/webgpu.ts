/**
 * The WebGPU route for training (owned by `./backend.ts`, like `./wasm-kernels.ts` for wasm): Dawn for
 * Node (the `webgpu` npm package, whose `dawn.node` ships inside the package: nothing is downloaded)
 * drives the GPU through Vulkan, and `@tensorflow/tfjs-backend-webgpu` runs TF.js's kernels on it.
 * Both packages are optional peers of langchain-dpr, imported only when this backend is chosen.
 *
 * What this module adds to the stock backend:
 * - the GPU is created here, with the adapter's own limits (largest buffers), and the adapter is
 *   checked: none → an error that says what to install; a software rasteriser (llvmpipe / lavapipe,
 *   SwiftShader) is refused by automatic selection (it is slower than the wasm backend) and taken
 *   only when forced (the test suite does, on CPU-only machines);
 * - {@link guardGpuWork}: runs a training step inside WebGPU error scopes and turns out-of-memory,
 *   validation errors, missing kernels and a lost device into errors that name the step, the batch
 *   and what to do (smaller batch, `--grad-cache`, resume from the last checkpoint on any backend);
 * - Node has no `OffscreenCanvas`, which the stock backend's synchronous reads need: every read in the
 *   training code is asynchronous (`await tensor.data()`).
 */
import * as tf from "@tensorflow/tfjs-core";
import { registerWebGpuKernels, type TfWebGpuUtil } from "./webgpu-kernels.js";

/** The npm packages this backend needs, pinned to the versions it was tested with. */
export const WEBGPU_PACKAGES = ["webgpu@0.6.2", "@tensorflow/tfjs-backend-webgpu@4.22.0"] as const;

/** The command that installs the optional packages of the webgpu backend. */
export const WEBGPU_INSTALL = `npm install ${WEBGPU_PACKAGES.join(" ")}`;

/** Options of {@link initWebGpuBackend}. */
export interface WebGpuParams {
  /** Accept a software adapter (llvmpipe, SwiftShader). Default false: refused with a clear reason. */
  allowSoftwareAdapter?: boolean;
  /** Dawn toggles passed to `create()` (e.g. `["backend=vulkan"]`); default from `DAWN_FLAGS` (comma-separated). */
  dawnFlags?: string[];
}

/** The GPU that the webgpu backend runs on. */
export interface WebGpuAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU rasteriser (llvmpipe / lavapipe, SwiftShader) rather than a GPU. */
  software: boolean;
  /** Largest storage-buffer binding the device allows, bytes (bounds one tensor). */
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

/** The part of a WebGPU device this module uses (typed here so the public surface needs no @webgpu/types). */
interface GpuDeviceLike {
  pushErrorScope(filter: "out-of-memory" | "validation" | "internal"): void;
  popErrorScope(): Promise<{ message: string } | null>;
  lost: Promise<{ reason: string; message: string }>;
  limits: Record<string, number>;
  destroy(): void;
}

interface GpuAdapterLike {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string };
  limits: Record<string, number>;
  features: { has(name: string): boolean };
  requestDevice(descriptor: object): Promise<GpuDeviceLike>;
}

interface WebGpuModule {
  create(flags: string[]): { requestAdapter(options?: object): Promise<GpuAdapterLike | null> };
  globals: Record<string, unknown>;
}

interface TfWebGpuModule extends TfWebGpuUtil {
  WebGPUBackend: new (device: GpuDeviceLike, adapterInfo?: object) => tf.KernelBackend;
}

interface State {
  device: GpuDeviceLike;
  info: WebGpuAdapterInfo;
  lost?: string;
}

let state: State | undefined;

function missingModule(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  return code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND" || /Could not resolve|Cannot find (package|module)/.test(message);
}

/** Imports an optional peer (a literal import per package, so that bundlers can include it). */
async function importPeer<T>(spec: string, load: () => Promise<unknown>): Promise<T> {
  try {
    return (await load()) as T;
  } catch (err) {
    if (missingModule(err)) {
      throw new Error(`webgpu: ${spec} is not installed; the webgpu backend needs the optional packages: ${WEBGPU_INSTALL}`);
    }
    throw new Error(`webgpu: ${spec} failed to load: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`);
  }
}

/** Whether an adapter is a CPU rasteriser rather than a GPU. */
export function isSoftwareAdapter(info: { vendor?: string; architecture?: string; device?: string; description?: string }): boolean {
  const text = `${info.architecture ?? ""} ${info.device ?? ""} ${info.description ?? ""}`;
  return info.architecture === "software" || /llvmpipe|lavapipe|swiftshader/i.test(text);
}

/** Makes Dawn's WebGPU objects visible where TF.js looks for them (`navigator.gpu`, `GPUBufferUsage`...). */
function installGlobals(mod: WebGpuModule, gpu: unknown): void {
  const g = globalThis as Record<string, unknown>;
  for (const [k, v] of Object.entries(mod.globals)) if (!(k in g)) g[k] = v;
  const nav = g["navigator"];
  if (nav !== undefined && nav !== null && typeof nav === "object") {
    Object.defineProperty(nav, "gpu", { value: gpu, configurable: true, writable: true });
  } else {
    Object.defineProperty(g, "navigator", { value: { gpu }, configurable: true, writable: true });
  }
}

/**
 * Creates Dawn's GPU, picks the adapter, requests a device with the adapter's largest limits and
 * registers it as TF.js's `webgpu` backend (not yet active: `tf.setBackend("webgpu")` does that).
 * Called once per process; later calls return the same device's description.
 * @throws Error naming what is missing: the packages (with the install command), an adapter (with what
 *   provides one), or a refused software adapter.
 */
export async function initWebGpuBackend(params: WebGpuParams = {}): Promise<WebGpuAdapterInfo> {
  if (state !== undefined) {
    if (state.info.software && !params.allowSoftwareAdapter) throw softwareRefused(state.info);
    return state.info;
  }
  const mod = await importPeer<WebGpuModule>("webgpu", () => import("webgpu"));
  const flags = params.dawnFlags ?? (process.env["DAWN_FLAGS"] ? process.env["DAWN_FLAGS"].split(",").filter(Boolean) : []);
  const gpu = mod.create(flags);
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (adapter === null || adapter === undefined) {
    throw new Error(
      "webgpu: no GPU adapter found (Dawn found no Vulkan device). On a GPU machine install the GPU driver with its " +
        "Vulkan ICD and the Vulkan loader (Debian/Ubuntu: apt-get install libvulkan1); check with `vulkaninfo --summary`" +
        (flags.length ? `; Dawn flags in use: ${flags.join(",")}` : ""),
    );
  }
  const a = adapter.info ?? {};
  const info: WebGpuAdapterInfo = {
    vendor: a.vendor ?? "",
    architecture: a.architecture ?? "",
    device: a.device ?? "",
    description: a.description ?? "",
    software: isSoftwareAdapter(a),
    maxStorageBufferBindingSize: adapter.limits["maxStorageBufferBindingSize"] ?? 0,
    maxBufferSize: adapter.limits["maxBufferSize"] ?? 0,
  };
  if (info.software && !params.allowSoftwareAdapter) throw softwareRefused(info);
  installGlobals(mod, gpu);
  const limitNames = [
    "maxComputeWorkgroupStorageSize",
    "maxComputeWorkgroupsPerDimension",
    "maxStorageBufferBindingSize",
    "maxBufferSize",
    "maxComputeWorkgroupSizeX",
    "maxComputeInvocationsPerWorkgroup",
    "maxStorageBuffersPerShaderStage",
  ];
  const requiredLimits: Record<string, number> = {};
  for (const name of limitNames) if (adapter.limits[name] !== undefined) requiredLimits[name] = adapter.limits[name]!;
  const requiredFeatures = adapter.features.has("timestamp-query") ? ["timestamp-query"] : [];
  let device: GpuDeviceLike;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  } catch (err) {
    throw new Error(`webgpu: the adapter (${describeAdapter(info)}) refused a device: ${err instanceof Error ? err.message : String(err)}`);
  }
  const s: State = { device, info };
  void device.lost.then((l) => {
    s.lost = `${l.reason}${l.message ? `: ${l.message}` : ""}`;
  });
  const tfw = await importPeer<TfWebGpuModule>("@tensorflow/tfjs-backend-webgpu", () => import("@tensorflow/tfjs-backend-webgpu"));
  // The package registers a factory of its own on import (its own adapter, default limits): ours replaces it.
  if (tf.findBackendFactory("webgpu") != null) tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", () => new tfw.WebGPUBackend(device, adapter.info), 1);
  registerWebGpuKernels(tfw);
  state = s;
  return info;
}

function softwareRefused(info: WebGpuAdapterInfo): Error {
  return new Error(
    `webgpu: the only adapter is a software rasteriser (${describeAdapter(info)}), slower than the wasm backend; ` +
      'force it with --backend webgpu (selectBackend({ prefer: "webgpu" })) to test the GPU code path on a CPU',
  );
}

/** "vendor architecture (description)" for logs. */
export function describeAdapter(info: WebGpuAdapterInfo): string {
  const parts = [info.vendor, info.architecture, info.device].filter(Boolean).join(" ");
  return `${parts || "unknown adapter"}${info.description ? ` (${info.description})` : ""}${info.software ? ", software" : ""}`;
}

/** The adapter the webgpu backend runs on, when it was initialised in this process. */
export function webGpuAdapter(): WebGpuAdapterInfo | undefined {
  return state?.info;
}

/** Whether the webgpu backend is the active TF.js backend. */
export function onWebGpu(): boolean {
  return state !== undefined && tf.getBackend() === "webgpu";
}

/** What tfjs-backend-webgpu 4.22's buffer manager exposes (internals: it pools every freed buffer by exact size). */
interface BufferManagerLike {
  freeBuffers: Map<string, { size: number; destroy(): void }[]>;
  numFreeBuffers: number;
  numBytesAllocated: number;
  numBytesUsed: number;
}

function bufferManager(): BufferManagerLike | undefined {
  if (!onWebGpu()) return undefined;
  const bm = (tf.backend() as unknown as { bufferManager?: BufferManagerLike }).bufferManager;
  return bm && bm.freeBuffers instanceof Map && typeof bm.numBytesAllocated === "number" ? bm : undefined;
}

/** Bytes held by the webgpu backend: in live tensors (`used`) and in all, with the pooled free buffers (`allocated`). */
export function webGpuMemory(): { usedBytes: number; allocatedBytes: number } | undefined {
  const bm = bufferManager();
  return bm ? { usedBytes: bm.numBytesUsed, allocatedBytes: bm.numBytesAllocated } : undefined;
}

/**
 * Destroys the free buffers tfjs-backend-webgpu keeps for reuse. It pools every released buffer under
 * its exact size and never gives one back, so a run whose tensor sizes vary (padded lengths, several
 * model shapes) grows until the device is out of memory. Returns the bytes freed (0 off webgpu).
 */
export function releaseFreeGpuBuffers(): number {
  const bm = bufferManager();
  if (!bm) return 0;
  let freed = 0;
  for (const buffers of bm.freeBuffers.values()) {
    for (const b of buffers) {
      freed += b.size;
      b.destroy();
    }
    buffers.length = 0;
  }
  bm.numFreeBuffers = 0;
  bm.numBytesAllocated -= freed;
  return freed;
}

/** Keeps the pool of free buffers at most as large as the live tensors (and at least 1 GiB). */
function trimFreeGpuBuffers(): void {
  const m = webGpuMemory();
  if (m && m.allocatedBytes - m.usedBytes > Math.max(2 ** 30, m.usedBytes)) releaseFreeGpuBuffers();
}

/**
 * The multiple that sequence lengths are padded up to on the active backend: 16 on webgpu (each new
 * tensor size costs new buffers and, for some kernels, a new shader), 1 elsewhere (exact lengths).
 */
export function sequencePadMultiple(): number {
  return onWebGpu() ? 16 : 1;
}

/** The first GPU error of a scope, turned into an Error naming the work and the advice. */
function scopeError(kind: "out-of-memory" | "validation", message: string, what: string): Error {
  const first = message.split("\n")[0];
  if (kind === "out-of-memory") {
    return new Error(
      `webgpu: the GPU ran out of memory during ${what} (${first}); use a smaller --batch or --grad-cache N ` +
        "(GradCache: same gradients, one chunk of activations in memory at a time)",
    );
  }
  return new Error(`webgpu: the GPU rejected work during ${what}: ${first}`);
}

/**
 * Runs `work` (e.g. one training step, which must end with an awaited read so that all its GPU work
 * is submitted) inside WebGPU error scopes when the webgpu backend is active; on any other backend it
 * just runs it.
 * @param what names the work in errors, e.g. "training step 12 (batch 64: 64 questions × 32 tokens, 128 passages × 128 tokens)".
 * @throws Error on a GPU out-of-memory or validation error, a lost device, or a kernel TF.js lacks on
 *   webgpu, naming `what` and the remedy.
 */
export async function guardGpuWork<T>(what: string, work: () => Promise<T>): Promise<T> {
  if (!onWebGpu() || state === undefined) return work();
  const s = state;
  if (s.lost !== undefined) throw deviceLost(s.lost, what);
  s.device.pushErrorScope("out-of-memory");
  s.device.pushErrorScope("validation");
  let result: T | undefined;
  let failure: unknown;
  try {
    result = await work();
  } catch (err) {
    failure = err;
  }
  const validation = await s.device.popErrorScope();
  const oom = await s.device.popErrorScope();
  if (s.lost !== undefined) throw deviceLost(s.lost, what);
  if (oom) throw scopeError("out-of-memory", oom.message, what);
  if (validation) throw scopeError("validation", validation.message, what);
  if (failure === undefined) trimFreeGpuBuffers();
  if (failure !== undefined) {
    const message = failure instanceof Error ? failure.message : String(failure);
    const kernel = /Kernel '([^']+)' not registered for backend 'webgpu'/.exec(message);
    if (kernel) {
      throw new Error(
        `webgpu: TF.js has no '${kernel[1]}' kernel for the webgpu backend (needed by ${what}); train with --backend wasm or cpu`,
      );
    }
    throw failure;
  }
  return result as T;
}

function deviceLost(reason: string, what: string): Error {
  return new Error(
    `webgpu: the GPU device was lost (${reason}) during ${what}; the last checkpoint is intact: ` +
      "rerun with --resume (on this or any other backend)",
  );
}

/**
 * The one module that owns TF.js backends for training.
 *
 * `selectBackend()` picks, at run time, the fastest backend that loads on this machine:
 *
 * 1. `tensorflow` from `@tensorflow/tfjs-node-gpu` (libtensorflow with CUDA) — optional, detected;
 * 2. `webgpu` from `@tensorflow/tfjs-backend-webgpu` on Dawn (the `webgpu` package; Vulkan) — optional,
 *    detected; a software adapter (llvmpipe) is skipped unless webgpu is forced (see `./webgpu.ts`);
 * 3. `tensorflow` from `@tensorflow/tfjs-node` (libtensorflow on CPU) — optional, detected;
 * 4. `wasm` from `@tensorflow/tfjs-backend-wasm` (XNNPACK, SIMD) — a dependency of this package;
 * 5. `cpu` from `@tensorflow/tfjs-backend-cpu` (plain JavaScript) — always available.
 *
 * A forced choice (`prefer`) fails with a clear error when that backend cannot load. The log line says
 * which backend runs (and SIMD / threads for wasm). On wasm, `fastKernels` (default on) installs the
 * engineered kernels of `./wasm-kernels.ts`; they reach into tfjs-backend-wasm internals and are pinned
 * to the version in {@link PINNED_TFJS_VERSION}: on any other version they are skipped with a warning.
 *
 * Importing this module also registers TF.js's gradient functions (they ship in the `@tensorflow/tfjs`
 * union package, not in `@tensorflow/tfjs-core`), without which no training step can run.
 */
import "@tensorflow/tfjs"; // side effect: registers every op's gradient on the shared tfjs-core engine
import * as tf from "@tensorflow/tfjs-core";
import {
  PINNED_TFJS_VERSION,
  installFastWasmKernels,
  uninstallFastWasmKernels,
  fastWasmKernelsInstalled,
  loadWasmBackendModule,
  type WasmBackendModule,
} from "./wasm-kernels.js";
import { initWebGpuBackend, type WebGpuAdapterInfo } from "./webgpu.js";

export { PINNED_TFJS_VERSION };

/** The backends `selectBackend` knows, in its order of preference. */
export type BackendChoice = "tfjs-node-gpu" | "webgpu" | "tfjs-node" | "wasm" | "cpu";

/** The order `selectBackend` tries when nothing is forced. */
export const BACKEND_ORDER: readonly BackendChoice[] = ["tfjs-node-gpu", "webgpu", "tfjs-node", "wasm", "cpu"];

/** Options of {@link selectBackend}. */
export interface SelectBackendParams {
  /** Force one backend; fails with an error naming the reason when it cannot load. */
  prefer?: BackendChoice;
  /**
   * wasm only: worker threads for XNNPACK (default 1). More than one thread needs a patched copy of the
   * wasm backend's Node bundle (see `wasm-kernels.ts`); it must be chosen before the first wasm use in
   * the process.
   */
  threads?: number;
  /** wasm only: install the engineered kernels (default true). */
  fastKernels?: boolean;
  /**
   * webgpu only: accept a software adapter (llvmpipe / SwiftShader). Default: true when webgpu is
   * forced with `prefer`, false in automatic selection (a CPU rasteriser is slower than wasm).
   */
  allowSoftwareAdapter?: boolean;
  /** Where the "which backend runs" line goes (default `console.error`); `false` silences it. */
  log?: ((line: string) => void) | false;
}

/** What {@link selectBackend} chose. */
export interface BackendInfo {
  /** The choice that runs. */
  choice: BackendChoice;
  /** The TF.js backend name (`tensorflow`, `webgpu`, `wasm` or `cpu`). */
  backend: string;
  /** tfjs-core version in this process. */
  tfjsVersion: string;
  /** wasm: whether the SIMD build runs. */
  simd?: boolean;
  /** wasm: XNNPACK thread count actually in use. */
  threads?: number;
  /** wasm: whether the engineered kernels are installed. */
  fastKernels: boolean;
  /** webgpu: the adapter in use. */
  adapter?: WebGpuAdapterInfo;
  /** Backends tried before this one and why each was skipped. */
  skipped: { choice: BackendChoice; reason: string }[];
}

/** The result of {@link selectBackend}: the tfjs-core namespace (backend now active) and what runs. */
export interface SelectedBackend {
  tf: typeof tf;
  info: BackendInfo;
}

const BACKEND_NAME: Record<BackendChoice, string> = {
  "tfjs-node-gpu": "tensorflow",
  webgpu: "webgpu",
  "tfjs-node": "tensorflow",
  wasm: "wasm",
  cpu: "cpu",
};

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message.split("\n")[0] : String(err);
}

/** Imports an optional package by name; resolves to undefined (with the reason) when it is absent. */
async function importOptional(spec: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await import(spec);
    return { ok: true };
  } catch (err) {
    const code = (err as { code?: string }).code;
    // Node says ERR_MODULE_NOT_FOUND; bundlers and Vite (the tests) say "Could not resolve" for an
    // optional peer dependency that is not installed.
    if (
      code === "ERR_MODULE_NOT_FOUND" ||
      code === "MODULE_NOT_FOUND" ||
      /Could not resolve|Cannot find (package|module)/.test(errorMessage(err))
    ) {
      return { ok: false, reason: `${spec} is not installed` };
    }
    return { ok: false, reason: `${spec} failed to load: ${errorMessage(err)}` };
  }
}

let wasmModule: WasmBackendModule | undefined;
let wasmThreads: number | undefined;

/**
 * Makes one backend active. Throws an Error naming the backend and the reason when it cannot.
 */
async function activate(choice: BackendChoice, params: SelectBackendParams): Promise<BackendInfo> {
  const info: BackendInfo = {
    choice,
    backend: BACKEND_NAME[choice],
    tfjsVersion: tf.version_core,
    fastKernels: false,
    skipped: [],
  };
  if (choice === "tfjs-node-gpu" || choice === "tfjs-node") {
    const spec = choice === "tfjs-node-gpu" ? "@tensorflow/tfjs-node-gpu" : "@tensorflow/tfjs-node";
    const loaded = await importOptional(spec);
    if (!loaded.ok) throw new Error(`selectBackend: ${choice} unavailable: ${loaded.reason}`);
    if (tf.findBackendFactory("tensorflow") == null) {
      throw new Error(
        `selectBackend: ${choice} loaded but registered no "tensorflow" backend on this tfjs-core ` +
          `(${tf.version_core}); its @tensorflow/tfjs must be the same version as this package's`,
      );
    }
  } else if (choice === "webgpu") {
    try {
      info.adapter = await initWebGpuBackend({ allowSoftwareAdapter: params.allowSoftwareAdapter ?? params.prefer === "webgpu" });
    } catch (err) {
      throw new Error(`selectBackend: webgpu unavailable: ${errorMessage(err).replace(/^webgpu: /, "")}`);
    }
  } else if (choice === "wasm") {
    const threads = params.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) {
      throw new Error(`selectBackend: threads must be a positive integer, got ${params.threads}`);
    }
    if (wasmModule === undefined) {
      wasmModule = await loadWasmBackendModule(threads);
      wasmThreads = threads;
    } else if (wasmThreads !== threads) {
      throw new Error(
        `selectBackend: the wasm backend was already initialised with ${wasmThreads} thread(s) in this ` +
          `process; ${threads} cannot be set any more (choose threads before the first wasm use)`,
      );
    }
  }
  let ok: boolean;
  try {
    ok = await tf.setBackend(info.backend);
    await tf.ready();
  } catch (err) {
    throw new Error(`selectBackend: ${choice} failed to initialise: ${errorMessage(err)}`);
  }
  if (!ok || tf.getBackend() !== info.backend) {
    throw new Error(`selectBackend: ${choice} failed to initialise (tf.setBackend("${info.backend}") returned false)`);
  }
  if (choice === "wasm" && wasmModule !== undefined) {
    info.simd = (await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")) as boolean;
    info.threads = wasmModule.getThreadsCount();
    if (params.fastKernels ?? true) {
      info.fastKernels = installFastWasmKernels(wasmModule.version_wasm);
    } else {
      uninstallFastWasmKernels();
    }
  }
  return info;
}

/**
 * Chooses and activates a TF.js backend for training.
 *
 * @example
 * ```ts
 * const { tf, info } = await selectBackend();               // best available
 * const { tf } = await selectBackend({ prefer: "wasm" });   // forced; throws if wasm cannot load
 * ```
 */
export async function selectBackend(params: SelectBackendParams = {}): Promise<SelectedBackend> {
  if (params.prefer !== undefined && !BACKEND_ORDER.includes(params.prefer)) {
    throw new Error(`selectBackend: unknown backend "${String(params.prefer)}"; expected one of ${BACKEND_ORDER.join(", ")}`);
  }
  const order = params.prefer ? [params.prefer] : BACKEND_ORDER;
  const skipped: BackendInfo["skipped"] = [];
  let info: BackendInfo | undefined;
  for (const choice of order) {
    try {
      info = await activate(choice, params);
      break;
    } catch (err) {
      if (params.prefer) throw err;
      skipped.push({ choice, reason: errorMessage(err).replace(/^selectBackend: /, "") });
    }
  }
  if (info === undefined) {
    throw new Error(`selectBackend: no TF.js backend could be initialised: ${skipped.map((s) => s.reason).join("; ")}`);
  }
  info.skipped = skipped;
  const log = params.log === undefined ? (line: string) => console.error(line) : params.log;
  if (log) log(describeBackend(info));
  return { tf, info };
}

/** One human-readable line describing the running backend, as `selectBackend` logs it. */
export function describeBackend(info: BackendInfo): string {
  const parts = [`TF.js ${info.tfjsVersion} backend: ${info.backend} (${info.choice})`];
  if (info.choice === "wasm") {
    parts.push(`simd=${info.simd}`, `threads=${info.threads}`, `fastKernels=${info.fastKernels}`);
  }
  if (info.skipped.length > 0) parts.push(`skipped: ${info.skipped.map((s) => s.reason).join("; ")}`);
  return parts.join(", ");
}

/** Whether the engineered wasm kernels are installed right now. */
export function fastKernelsActive(): boolean {
  return fastWasmKernelsInstalled();
}

/** Removes the engineered wasm kernels (the stock ones run again), e.g. to compare against stock. */
export function useStockKernels(): void {
  uninstallFastWasmKernels();
}

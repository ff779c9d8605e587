/**
 * Backend-specific engineering for TF.js's wasm backend (owned by `./backend.ts`; nothing else in the
 * project reaches into tfjs-backend-wasm).
 *
 * 1. A replacement `BatchMatMul` kernel. The stock wasm kernel runs XNNPACK's fast matmul only for a
 *    plain 2-D product (batch 1, no transpose flags); every other product (attention's batched
 *    products, and every matMul gradient, which uses transpose flags) falls to a scalar triple loop.
 *    The replacement materialises transposes with the wasm Transpose kernel (memory-bound, O(n)) and
 *    sends each batch slice through the XNNPACK path as a zero-copy view registered on the slice's
 *    offset in the wasm heap.
 * 2. Loading the backend with more than one XNNPACK thread in Node: the stock Node bundle hands its
 *    worker a `blob:` URL, which Node's `worker_threads` rejects, and reports no thread support in Node.
 *    We write a patched copy of the bundle (worker script and threaded main script as files on disk)
 *    into the OS temp folder and load that instead.
 *
 * Both reach into internals of one exact tfjs-backend-wasm version, {@link PINNED_TFJS_VERSION}; on any
 * other version the kernel is not installed (with a warning) and threads > 1 are refused.
 */
import { createRequire } from "node:module";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";

/** The tfjs(-backend-wasm) version whose internals this module relies on. */
export const PINNED_TFJS_VERSION = "4.22.0";

/** The public surface of the `@tensorflow/tfjs-backend-wasm` module that we use. */
export interface WasmBackendModule {
  version_wasm: string;
  getThreadsCount(): number;
  setThreadsCount(n: number): void;
  setWasmPaths(prefix: string): void;
}

/** The internals of tfjs-backend-wasm 4.22's BackendWasm that the fast kernel uses. */
interface WasmBackendInternals {
  dataIdNextNumber: number;
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
  disposeData(dataId: object): boolean;
  wasm: {
    cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void;
    tfjs: {
      registerTensor(id: number, size: number, memoryOffset: number): void;
      disposeData(id: number): void;
    };
  };
}

const require = createRequire(import.meta.url);

let stockConfig: tf.KernelConfig | undefined;
let installed = false;
let warned = false;

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((x, y) => x * y, 1);
}

function checkInternals(backend: unknown): backend is WasmBackendInternals {
  const b = backend as Partial<WasmBackendInternals> | null;
  return (
    b != null &&
    typeof b.dataIdNextNumber === "number" &&
    typeof b.makeOutput === "function" &&
    typeof b.disposeData === "function" &&
    b.dataIdMap != null &&
    typeof b.wasm?.cwrap === "function" &&
    typeof b.wasm?.tfjs?.registerTensor === "function" &&
    typeof b.wasm?.tfjs?.disposeData === "function"
  );
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/**
 * Builds the replacement BatchMatMul kernel function around the stock one (which still handles what
 * the fast path does not: non-float32, broadcasting batch shapes, plain 2-D products).
 */
function makeFastBatchMatMul(stock: tf.KernelFunc): tf.KernelFunc {
  let cppBatchMatMul: ((...args: unknown[]) => void) | undefined;
  let transposeKernel: tf.KernelFunc | undefined;

  const fast = (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const transposeA = Boolean(args.attrs?.transposeA);
    const transposeB = Boolean(args.attrs?.transposeB);
    const backend = args.backend;
    const ra = a.shape.length;
    const rb = b.shape.length;
    const batchA = sizeOf(a.shape.slice(0, -2));
    const batchB = sizeOf(b.shape.slice(0, -2));
    const plain2d = batchA === 1 && batchB === 1 && !transposeA && !transposeB;
    const sameOuter = ra === rb && a.shape.slice(0, -2).every((d, i) => d === b.shape[i]);
    if (plain2d || !sameOuter || a.dtype !== "float32" || b.dtype !== "float32" || !checkInternals(backend)) {
      return stock(args as Parameters<tf.KernelFunc>[0]);
    }
    const batch = batchA;
    const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const Kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if (K !== Kb) return stock(args as Parameters<tf.KernelFunc>[0]); // let the stock kernel report it
    if (M * K === 0 || K * N === 0) return stock(args as Parameters<tf.KernelFunc>[0]);

    cppBatchMatMul ??= backend.wasm.cwrap("BatchMatMul", null, [
      "number",
      "array",
      "number",
      "number",
      "array",
      "number",
      "number",
      "number",
      "number",
    ]);
    transposeKernel ??= tf.getKernel("Transpose", "wasm")?.kernelFunc;
    if (transposeKernel === undefined) return stock(args as Parameters<tf.KernelFunc>[0]);

    // Materialise transposed operands as [batch, rows, cols] without flags.
    const temps: tf.TensorInfo[] = [];
    const untransposed = (x: tf.TensorInfo, rows: number, cols: number, flag: boolean): tf.TensorInfo => {
      if (!flag) return x;
      const view: tf.TensorInfo = { dataId: x.dataId, shape: [batch, cols, rows], dtype: x.dtype };
      const t = transposeKernel!({ inputs: { x: view }, backend: backend as unknown as tf.KernelBackend, attrs: { perm: [0, 2, 1] } });
      temps.push(t as tf.TensorInfo);
      return t as tf.TensorInfo;
    };
    const a3 = untransposed(a, M, K, transposeA);
    const b3 = untransposed(b, K, N, transposeB);

    const outShape = [...a.shape.slice(0, -2), M, N];
    const out = backend.makeOutput(outShape, "float32");
    const aOff = backend.dataIdMap.get(a3.dataId)!.memoryOffset;
    const bOff = backend.dataIdMap.get(b3.dataId)!.memoryOffset;
    const oOff = backend.dataIdMap.get(out.dataId)!.memoryOffset;
    const shapeA = new Uint8Array(new Int32Array([1, M, K]).buffer);
    const shapeB = new Uint8Array(new Int32Array([1, K, N]).buffer);
    const { registerTensor, disposeData } = backend.wasm.tfjs;
    for (let i = 0; i < batch; i++) {
      // Zero-copy views on slice i; disposing them also frees XNNPACK's operator cached on the B view.
      const ia = backend.dataIdNextNumber++;
      const ib = backend.dataIdNextNumber++;
      const io = backend.dataIdNextNumber++;
      registerTensor(ia, M * K, aOff + i * M * K * 4);
      registerTensor(ib, K * N, bOff + i * K * N * 4);
      registerTensor(io, M * N, oOff + i * M * N * 4);
      cppBatchMatMul(ia, shapeA, 3, ib, shapeB, 3, false, false, io);
      disposeData(ia);
      disposeData(ib);
      disposeData(io);
    }
    for (const t of temps) backend.disposeData(t.dataId);
    return out;
  };
  return fast as tf.KernelFunc;
}

/**
 * Installs the fast BatchMatMul kernel on the wasm backend. Returns false (and warns once) when the
 * wasm backend's version is not {@link PINNED_TFJS_VERSION}, leaving the stock kernel in place.
 */
export function installFastWasmKernels(wasmVersion: string): boolean {
  if (installed) return true;
  if (wasmVersion !== PINNED_TFJS_VERSION || tf.version_core !== PINNED_TFJS_VERSION) {
    if (!warned) {
      console.warn(
        `wasm-kernels: fast kernels are written against tfjs ${PINNED_TFJS_VERSION} internals but ` +
          `tfjs-backend-wasm ${wasmVersion} / tfjs-core ${tf.version_core} is installed; using the stock kernels`,
      );
      warned = true;
    }
    return false;
  }
  const current = tf.getKernel("BatchMatMul", "wasm");
  if (current === undefined) throw new Error("wasm-kernels: the wasm backend has no BatchMatMul kernel registered");
  stockConfig = current;
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel({ ...current, kernelFunc: makeFastBatchMatMul(current.kernelFunc) });
  installed = true;
  return true;
}

/** Puts the stock BatchMatMul kernel back (no-op when the fast one is not installed). */
export function uninstallFastWasmKernels(): void {
  if (!installed || stockConfig === undefined) return;
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel(stockConfig);
  installed = false;
}

/** Whether the fast BatchMatMul kernel is installed. */
export function fastWasmKernelsInstalled(): boolean {
  return installed;
}

/**
 * Loads the wasm backend module (registering the `wasm` backend). With `threads > 1` it loads a
 * patched copy of the Node bundle that can start XNNPACK worker threads in Node.
 */
export async function loadWasmBackendModule(threads: number): Promise<WasmBackendModule> {
  if (threads <= 1) {
    const mod = (await import("@tensorflow/tfjs-backend-wasm")) as unknown as WasmBackendModule;
    return mod;
  }
  const pkgDir = dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json"));
  const version = (JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { version: string }).version;
  if (version !== PINNED_TFJS_VERSION) {
    throw new Error(
      `wasm-kernels: threads > 1 needs a patch written for tfjs-backend-wasm ${PINNED_TFJS_VERSION}, ` + `found ${version}; use threads: 1`,
    );
  }
  const bundlePath = writeThreadedBundle(pkgDir);
  // The C++ side sizes its pool from navigator.hardwareConcurrency / os.cpus(); let the caller's count win.
  (globalThis as { __langchainDprWasmCores?: number }).__langchainDprWasmCores = 2 * threads;
  const mod = require(bundlePath) as WasmBackendModule; // registers the flag below and the `wasm` backend
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true); // the bundle answers false in Node
  mod.setWasmPaths(join(pkgDir, "dist") + "/");
  mod.setThreadsCount(threads);
  return mod;
}

function replaceOnce(src: string, find: string | RegExp, replacement: string, what: string): string {
  const found = typeof find === "string" ? src.includes(find) : find.test(src);
  if (!found) throw new Error(`wasm-kernels: cannot patch tfjs-backend-wasm for threads: ${what} not found`);
  return src.replace(find, () => replacement);
}

/** Writes (once per source hash) the patched threaded Node bundle; returns its path. */
function writeThreadedBundle(pkgDir: string): string {
  let src = readFileSync(join(pkgDir, "dist", "tf-backend-wasm.node.js"), "utf8");
  // Resolve tfjs-core / tfjs-backend-cpu to the very files this process uses (one engine, one registry).
  // The bundle embeds these absolute paths, so they are part of its cache key: two checkouts (or an
  // install that moved) never share a bundle that requires another tree's files.
  const deps = ["@tensorflow/tfjs-core", "@tensorflow/tfjs-backend-cpu"].map((dep) => [dep, require.resolve(dep)] as const);
  const key = createHash("sha256").update(src).update(pkgDir);
  for (const [, resolved] of deps) key.update("\0" + resolved);
  const hash = key.digest("hex").slice(0, 12);
  // `-w2`: the revision of the patch below (bundles written by an earlier revision are not reused).
  const outDir = join(tmpdir(), `langchain-dpr-tfjs-wasm-${PINNED_TFJS_VERSION}-${hash}-w2`);
  const outPath = join(outDir, "tf-backend-wasm.threaded.cjs");
  if (existsSync(outPath)) return outPath;
  const workerPath = join(outDir, "worker.cjs");
  for (const [dep, resolved] of deps) {
    src = src.split(`require('${dep}')`).join(`require(${JSON.stringify(resolved)})`);
  }
  src = replaceOnce(
    src,
    /var blob = new Blob\(\[response\], \{ type: 'application\/javascript' \}\);\s*return URL\.createObjectURL\(blob\);/,
    // Called once per pthread worker: write the (always identical) worker script once, atomically, so a
    // worker never reads a file that a later call is truncating (that race hung a CI run at start-up).
    `var fs = require('fs'), workerPath = ${JSON.stringify(workerPath)};` +
      `if (!fs.existsSync(workerPath)) { var tmp = workerPath + '.' + process.pid + '.' + Math.random().toString(36).slice(2) + '.tmp';` +
      ` fs.writeFileSync(tmp, response); fs.renameSync(tmp, workerPath); }` +
      ` return workerPath;`,
    "the worker blob URL",
  );
  src = replaceOnce(
    src,
    /factoryConfig\.mainScriptUrlOrBlob = new Blob\(\["var WasmBackendModuleThreadedSimd = " \+\s*wasmFactoryThreadedSimd\.toString\(\)\], \{ type: 'text\/javascript' \}\);/,
    `factoryConfig.mainScriptUrlOrBlob = ${JSON.stringify(join(pkgDir, "wasm-out", "tfjs-backend-wasm-threaded-simd.js"))};`,
    "the threaded main script blob",
  );
  src = replaceOnce(
    src,
    "return require$$4.cpus().length;",
    "return globalThis.__langchainDprWasmCores || require$$4.cpus().length;",
    "the logical core count",
  );
  mkdirSync(outDir, { recursive: true });
  const tmp = `${outPath}.${process.pid}.tmp`;
  writeFileSync(tmp, src);
  renameSync(tmp, outPath);
  return outPath;
}

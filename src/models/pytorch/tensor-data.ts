/**
 * Reading one tensor's values from where its storage lies in the file. Contiguous float32/int64
 * tensors are read straight into their own typed array (no intermediate buffer); float16/bfloat16
 * are read in chunks and widened exactly (every half/bfloat16 value is a float32); strided views
 * read the span they cover and are gathered in row-major order.
 */
import type { FileHandle } from "node:fs/promises";
import { dtypeBytes, type TensorRef, type TorchDtype } from "./torch-pickle.js";

/** One tensor of a checkpoint: its source dtype, shape and values (float16/bfloat16 widened to float32). */
export interface LoadedTensor {
  shape: number[];
  /** The dtype stored in the file. */
  dtype: TorchDtype;
  /** Row-major values: Float32Array for the float dtypes, BigInt64Array for int64. */
  data: Float32Array | BigInt64Array;
}

/** Where a storage's bytes lie in the file. */
export interface StorageBytes {
  offset: number;
  bytes: number;
}

/** A tensor to read: its description, name and supported dtype. */
export interface TensorToRead {
  name: string;
  ref: TensorRef;
  dtype: TorchDtype;
}

const CHUNK = 1 << 23; // bytes read per call when widening (8 MiB)

async function readInto(fh: FileHandle, target: Uint8Array, position: number, path: string, what: string): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await fh.read(target, done, Math.min(target.length - done, 1 << 28), position + done);
    if (bytesRead === 0) throw new Error(`${path}: short read of ${what} at byte ${position + done}: the file ended early`);
    done += bytesRead;
  }
}

/** Widens `count` little-endian float16/bfloat16 values of `src` into `out` at `at`. */
function widen(src: Uint8Array, dtype: "float16" | "bfloat16", out: Float32Array, at: number, count: number): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < count; i++) {
    const h = src[2 * i]! | (src[2 * i + 1]! << 8);
    if (dtype === "bfloat16") {
      bits[at + i] = h << 16; // bfloat16 is the upper half of a float32
      continue;
    }
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0)
      out[at + i] = (sign ? -1 : 1) * frac * 2 ** -24; // zero or subnormal (exact in float32)
    else if (exp === 31)
      bits[at + i] = sign | 0x7f800000 | (frac << 13); // inf / NaN, payload kept
    else bits[at + i] = sign | ((exp + 112) << 23) | (frac << 13);
  }
}

/** Reads `count` consecutive values of `dtype` at byte `position` into a new array. */
async function readValues(
  fh: FileHandle,
  position: number,
  count: number,
  dtype: TorchDtype,
  path: string,
  what: string,
): Promise<Float32Array | BigInt64Array> {
  if (dtype === "float32" || dtype === "int64") {
    const data = dtype === "float32" ? new Float32Array(count) : new BigInt64Array(count);
    await readInto(fh, new Uint8Array(data.buffer), position, path, what);
    return data;
  }
  const out = new Float32Array(count);
  const chunk = new Uint8Array(Math.min(CHUNK, count * 2));
  for (let at = 0; at < count; at += chunk.length / 2) {
    const n = Math.min(chunk.length / 2, count - at);
    const part = chunk.subarray(0, n * 2);
    await readInto(fh, part, position + at * 2, path, what);
    widen(part, dtype, out, at, n);
  }
  return out;
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

/** Number of elements a tensor has and how many storage elements its view spans (0 when empty). */
export function tensorExtent(ref: TensorRef): { count: number; span: number } {
  const count = ref.shape.reduce((a, b) => a * b, 1);
  if (count === 0) return { count, span: 0 };
  let span = 1;
  for (let i = 0; i < ref.shape.length; i++) span += (ref.shape[i]! - 1) * ref.stride[i]!;
  return { count, span };
}

/**
 * Checks, without reading or allocating anything, that a tensor's view lies inside its storage and the
 * storage inside the bytes the file holds for it. Returns the byte offset in the file of the view's first element.
 * @throws Error naming the file and the tensor when the storage is shorter than declared or the view reaches past it.
 */
export function checkTensorView(path: string, t: TensorToRead, storage: StorageBytes): number {
  const { ref, dtype, name } = t;
  const esize = dtypeBytes(dtype);
  const { count, span } = tensorExtent(ref);
  const viewBase = ref.storage.view ? ref.storage.view.offset * ref.storage.elementBytes : 0;
  const storageBytes = ref.storage.view ? ref.storage.view.numel * ref.storage.elementBytes : ref.storage.numel * ref.storage.elementBytes;
  if (viewBase + storageBytes > storage.bytes) {
    throw new Error(
      `${path}: storage '${ref.storage.key}' of tensor '${name}' has ${storage.bytes} bytes in the file but is declared ` +
        `with ${viewBase + storageBytes}: the file is truncated or damaged`,
    );
  }
  if (count > 0 && (!Number.isSafeInteger((ref.offset + span) * esize) || (ref.offset + span) * esize > storageBytes)) {
    throw new Error(
      `${path}: tensor '${name}' [${ref.shape}] at offset ${ref.offset} with strides [${ref.stride}] reaches ${dtype} ` +
        `element ${ref.offset + span} ` +
        `of a storage holding ${Math.floor(storageBytes / esize)}: the file is damaged`,
    );
  }
  return storage.offset + viewBase + ref.offset * esize;
}

/**
 * Reads one tensor. `storage` is where the bytes of `t.ref.storage` (or of the storage it is a
 * legacy view of) lie; the caller has checked that they are inside the file.
 * @throws Error naming the file and the tensor when the view reaches past its storage.
 */
export async function readTensorData(fh: FileHandle, path: string, t: TensorToRead, storage: StorageBytes): Promise<LoadedTensor> {
  const { ref, dtype, name } = t;
  const { count, span } = tensorExtent(ref);
  const start = checkTensorView(path, t, storage);
  const shape = [...ref.shape];
  if (count === 0) return { shape, dtype, data: dtype === "int64" ? new BigInt64Array(0) : new Float32Array(0) };
  const what = `the data of tensor '${name}'`;
  if (isContiguous(ref.shape, ref.stride)) return { shape, dtype, data: await readValues(fh, start, count, dtype, path, what) };
  // A strided view: read the span it covers, then gather in row-major order.
  const spanValues = await readValues(fh, start, span, dtype, path, what);
  const out = dtype === "int64" ? new BigInt64Array(count) : new Float32Array(count);
  gather(spanValues, out, ref.shape, ref.stride);
  return { shape, dtype, data: out };
}

function gather<A extends Float32Array | BigInt64Array>(src: A, out: A, shape: number[], stride: number[]): void {
  const index = new Array<number>(shape.length).fill(0);
  const s = src as unknown as ArrayLike<number>;
  const o = out as unknown as { [i: number]: number };
  let off = 0;
  for (let i = 0; i < out.length; i++) {
    o[i] = s[off]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d]! < shape[d]!) {
        off += stride[d]!;
        break;
      }
      off -= (shape[d]! - 1) * stride[d]!;
      index[d] = 0;
    }
  }
}

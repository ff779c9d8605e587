/**
 * Reads a PyTorch checkpoint (`pytorch_model.bin`) without Python and without running it:
 *
 * - the zip format (PyTorch ≥ 1.6): `<archive>/data.pkl` (the state_dict as a pickle whose storages
 *   are persistent ids) and `<archive>/data/<key>` (each storage's raw little-endian bytes);
 * - the legacy format (before 1.6): a stream of pickles (magic number, protocol version, system info,
 *   the state_dict, the storage keys) followed by each storage as an 8-byte element count and its
 *   bytes, in key order.
 *
 * The pickles go through the restricted unpickler of `./pickle.ts`. Tensor bytes are read from the
 * file where they lie, straight into the tensor's typed array (no whole-file buffer): peak memory is
 * about the weights themselves. Offsets, strides (non-contiguous views are gathered in row-major
 * order) and shared storages (tied weights) are honoured; float16 and bfloat16 are widened to float32.
 */
import { open, type FileHandle } from "node:fs/promises";
import { DTYPE_BYTES, storageFromPid, unpickle, PyTuple, type PyValue, type StorageRef, type TensorRef, type TorchDtype } from "./pickle.js";
import { isZipFile, readRange, readZipDirectory, type ZipEntry } from "./zip.js";

/** One tensor of a checkpoint: its source dtype, shape and values (floats widened to float32). */
export interface LoadedTensor {
  dtype: TorchDtype;
  shape: number[];
  data: Float32Array | BigInt64Array;
}

/** Where each storage's bytes are in the file. */
type StorageLocator = (key: string) => { offset: number; bytes: number };

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

function isTensorRef(v: PyValue): v is TensorRef {
  return v !== null && typeof v === "object" && "kind" in v && v.kind === "tensor";
}

/** The state_dict inside what was pickled: a dict of tensors, or a dict holding one (e.g. {"state_dict": ...}). */
function stateDict(root: PyValue, source: string): Map<string, TensorRef> {
  const asTensors = (m: Map<PyValue, PyValue>): Map<string, TensorRef> | undefined => {
    const out = new Map<string, TensorRef>();
    for (const [k, v] of m) {
      if (typeof k !== "string") return undefined;
      if (isTensorRef(v)) out.set(k, v);
      else if (v !== null && !(v instanceof Map)) return undefined;
    }
    return out.size > 0 ? out : undefined;
  };
  if (root instanceof Map) {
    const direct = asTensors(root);
    if (direct) return direct;
    for (const key of ["state_dict", "model", "module"]) {
      const inner = root.get(key);
      if (inner instanceof Map) {
        const t = asTensors(inner);
        if (t) return t;
      }
    }
  }
  throw new Error(`${source}: the checkpoint holds no state_dict (a dict of tensor names to tensors, or one under "state_dict", "model" or "module")`);
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

function widen(bytes: Buffer, dtype: TorchDtype, count: number): Float32Array | BigInt64Array {
  if (dtype === "int64") {
    const out = new BigInt64Array(count);
    new Uint8Array(out.buffer).set(bytes.subarray(0, count * 8));
    return out;
  }
  if (dtype === "float32") {
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(bytes.subarray(0, count * 4));
    return out;
  }
  const out = new Float32Array(count);
  const u32 = new Uint32Array(out.buffer);
  for (let i = 0; i < count; i++) {
    const h = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
    if (dtype === "bfloat16") {
      u32[i] = h << 16; // bfloat16 is the upper half of a float32
    } else {
      const sign = (h & 0x8000) << 16;
      const exp = (h >> 10) & 0x1f;
      const frac = h & 0x3ff;
      if (exp === 0) out[i] = (sign ? -1 : 1) * frac * 2 ** -24;
      else if (exp === 31) u32[i] = sign | 0x7f800000 | (frac << 13);
      else u32[i] = sign | ((exp + 112) << 23) | (frac << 13);
    }
  }
  return out;
}

/** Reads one tensor's values from the file. */
async function readTensor(fh: FileHandle, fileSize: number, path: string, name: string, t: TensorRef, locate: StorageLocator): Promise<LoadedTensor> {
  const dtype = t.storage.dtype;
  const esize = DTYPE_BYTES[dtype];
  const count = t.shape.reduce((a, b) => a * b, 1);
  const where = locate(t.storage.view?.key ?? t.storage.key);
  const base = t.storage.view ? t.storage.view.offset : 0;
  const storageNumel = t.storage.view ? t.storage.view.numel : t.storage.numel;
  if (where.bytes < (base + storageNumel) * esize) {
    throw new Error(`${path}: storage '${t.storage.key}' of '${name}' has ${where.bytes} bytes but needs ${(base + storageNumel) * esize} (${storageNumel} ${dtype} values)`);
  }
  if (count === 0) return { dtype, shape: t.shape, data: dtype === "int64" ? new BigInt64Array(0) : new Float32Array(0) };
  // The last element the view touches must lie inside the storage.
  let span = 1;
  for (let i = 0; i < t.shape.length; i++) span += (t.shape[i]! - 1) * t.stride[i]!;
  if (t.offset < 0 || t.offset + span > storageNumel) {
    throw new Error(`${path}: tensor '${name}' [${t.shape}] at offset ${t.offset} with strides [${t.stride}] reaches element ${t.offset + span} of a storage of ${storageNumel}: the file is damaged`);
  }
  const start = where.offset + (base + t.offset) * esize;
  if (isContiguous(t.shape, t.stride)) {
    if (dtype === "float32" || dtype === "int64") {
      // Straight from the file into the tensor's own memory: no intermediate buffer.
      const data = dtype === "float32" ? new Float32Array(count) : new BigInt64Array(count);
      const target = new Uint8Array(data.buffer);
      if (start + target.length > fileSize) throw new Error(`${path}: the data of '${name}' runs past the end of the file (${fileSize} bytes)`);
      let done = 0;
      while (done < target.length) {
        const { bytesRead } = await fh.read(target, done, Math.min(target.length - done, 1 << 26), start + done);
        if (bytesRead === 0) throw new Error(`${path}: short read of '${name}' at byte ${start + done}`);
        done += bytesRead;
      }
      return { dtype, shape: t.shape, data };
    }
    const bytes = await readRange(fh, start, count * esize, fileSize, path, `the data of '${name}'`);
    return { dtype, shape: t.shape, data: widen(bytes, dtype, count) };
  }
  // A strided view: read the span it covers, then gather in row-major order.
  const spanValues = widen(await readRange(fh, start, span * esize, fileSize, path, `the data of '${name}'`), dtype, span);
  const out = dtype === "int64" ? new BigInt64Array(count) : new Float32Array(count);
  const index = new Array<number>(t.shape.length).fill(0);
  for (let i = 0; i < count; i++) {
    let off = 0;
    for (let d = 0; d < index.length; d++) off += index[d]! * t.stride[d]!;
    (out as Float32Array)[i] = (spanValues as Float32Array)[off]!;
    for (let d = index.length - 1; d >= 0; d--) {
      if (++index[d]! < t.shape[d]!) break;
      index[d] = 0;
    }
  }
  return { dtype, shape: t.shape, data: out };
}

/** Reads everything of a zip-format checkpoint. */
async function readZip(fh: FileHandle, fileSize: number, path: string): Promise<Map<string, LoadedTensor>> {
  const entries = await readZipDirectory(fh, fileSize, path);
  const pkl = [...entries.values()].find((e) => e.name.endsWith("/data.pkl") || e.name === "data.pkl");
  if (!pkl) throw new Error(`${path}: zip archive without data.pkl: not a PyTorch checkpoint`);
  const prefix = pkl.name.slice(0, pkl.name.length - "data.pkl".length);
  const order = entries.get(`${prefix}byteorder`);
  if (order) {
    const text = (await readRange(fh, order.dataOffset, Math.min(order.size, 16), fileSize, path, "byteorder")).toString("utf8");
    if (text !== "little") throw new Error(`${path}: byteorder '${text}': only little-endian checkpoints are read`);
  }
  if (pkl.size > 256 * 1024 * 1024) throw new Error(`${path}: data.pkl of ${pkl.size} bytes is implausibly large for a state_dict`);
  const source = `${path} (${pkl.name})`;
  const bytes = await readRange(fh, pkl.dataOffset, pkl.size, fileSize, path, "data.pkl");
  const { value } = unpickle(bytes, 0, { source, persistentLoad: (pid) => storageFromPid(pid, source) });
  const locate: StorageLocator = (key) => {
    const e: ZipEntry | undefined = entries.get(`${prefix}data/${key}`);
    if (!e) throw new Error(`${path}: storage '${key}' named by data.pkl is missing from the archive`);
    return { offset: e.dataOffset, bytes: e.size };
  };
  const out = new Map<string, LoadedTensor>();
  for (const [name, t] of stateDict(value, source)) out.set(name, await readTensor(fh, fileSize, path, name, t, locate));
  return out;
}

/** Reads pickles from the head of a legacy file, growing the window until each parses. */
async function legacyPickles(fh: FileHandle, fileSize: number, path: string, count: number, persistentLoad: (pid: PyValue) => PyValue): Promise<{ values: PyValue[]; end: number }> {
  let window = Math.min(fileSize, 1 << 20);
  for (;;) {
    const buf = await readRange(fh, 0, window, fileSize, path, "the pickle header");
    try {
      const values: PyValue[] = [];
      let pos = 0;
      for (let i = 0; i < count; i++) {
        const r = unpickle(buf, pos, { source: `${path} (legacy pickle ${i + 1})`, persistentLoad });
        values.push(r.value);
        pos = r.end;
      }
      return { values, end: pos };
    } catch (err) {
      const truncated = /pickle truncated/.test((err as Error).message);
      if (!truncated || window >= fileSize || window >= 256 * 1024 * 1024) throw err;
      window = Math.min(fileSize, window * 4);
    }
  }
}

/** Reads everything of a legacy-format checkpoint. */
async function readLegacy(fh: FileHandle, fileSize: number, path: string): Promise<Map<string, LoadedTensor>> {
  const storages = new Map<string, StorageRef>();
  const source = `${path} (legacy format)`;
  const persistentLoad = (pid: PyValue): PyValue => {
    const ref = storageFromPid(pid, source);
    const known = storages.get(ref.key);
    if (!known || ref.numel > known.numel) storages.set(ref.key, ref);
    return ref;
  };
  const { values, end } = await legacyPickles(fh, fileSize, path, 5, persistentLoad);
  const [magic, protocol, , root, keys] = values;
  if (magic !== LEGACY_MAGIC && magic !== Number(LEGACY_MAGIC)) throw new Error(`${path}: not a PyTorch checkpoint (bad magic number)`);
  if (protocol !== LEGACY_PROTOCOL) throw new Error(`${path}: legacy protocol version ${String(protocol)}, expected ${LEGACY_PROTOCOL}`);
  const keyList = Array.isArray(keys) ? keys : keys instanceof PyTuple ? keys.items : undefined;
  if (!keyList || !keyList.every((k) => typeof k === "string" || typeof k === "number")) throw new Error(`${source}: the storage key list is missing or malformed`);
  // Each storage: an 8-byte little-endian element count, then its bytes (element size from its dtype).
  const located = new Map<string, { offset: number; bytes: number }>();
  let pos = end;
  for (const k of keyList) {
    const key = String(k);
    const ref = storages.get(key);
    if (!ref) throw new Error(`${source}: storage '${key}' is listed but no tensor uses it`);
    const header = await readRange(fh, pos, 8, fileSize, path, `the size of storage '${key}'`);
    const numel = Number(header.readBigInt64LE(0));
    const bytes = numel * DTYPE_BYTES[ref.dtype];
    if (!Number.isSafeInteger(bytes) || numel < 0 || pos + 8 + bytes > fileSize) {
      throw new Error(`${path}: storage '${key}' claims ${numel} values, past the end of the file (${fileSize} bytes): the file is truncated`);
    }
    located.set(key, { offset: pos + 8, bytes });
    pos += 8 + bytes;
  }
  const locate: StorageLocator = (key) => {
    const l = located.get(key);
    if (!l) throw new Error(`${source}: storage '${key}' has no data in the file`);
    return l;
  };
  const out = new Map<string, LoadedTensor>();
  for (const [name, t] of stateDict(root!, source)) out.set(name, await readTensor(fh, fileSize, path, name, t, locate));
  return out;
}

/**
 * Reads a PyTorch checkpoint (zip or legacy format) into named tensors.
 * @throws Error naming the file and the problem: a global or call outside the allow-list, an
 *   unsupported dtype, a truncated archive, a storage shorter than its tensor.
 */
export async function readTorchCheckpoint(path: string): Promise<Map<string, LoadedTensor>> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (err) {
    throw new Error(`${path}: cannot open the checkpoint: ${(err as Error).message}`);
  }
  try {
    const { size } = await fh.stat();
    return (await isZipFile(fh)) ? await readZip(fh, size, path) : await readLegacy(fh, size, path);
  } finally {
    await fh.close();
  }
}

/**
 * Reads a PyTorch checkpoint (`pytorch_model.bin`, `*.pt`) without Python and without running it:
 *
 * - the zip format (PyTorch ≥ 1.6): `<prefix>/data.pkl` (the pickled state_dict, whose storages are
 *   persistent ids), `<prefix>/data/<key>` (each storage's raw little-endian bytes) and
 *   `<prefix>/byteorder` (big-endian archives are refused);
 * - the legacy format (before 1.6): five pickles (magic number, protocol version 1001, system info,
 *   the state_dict, the sorted storage keys), then each storage as an 8-byte element count and its
 *   bytes, in key order.
 *
 * Pickles go through the restricted unpickler (`./torch-pickle.ts`); tensor bytes are read where they
 * lie (`./tensor-data.ts`), so peak memory is about the tensors themselves.
 */
import { open, type FileHandle } from "node:fs/promises";
import { findStateDict, tensorsToRead } from "./state-dict.js";
import { pyItems } from "./pickle.js";
import { checkTensorView, readTensorData, tensorExtent, type LoadedTensor, type StorageBytes, type TensorToRead } from "./tensor-data.js";
import { unpickleTorch, type StorageRef, type TorchValue } from "./torch-pickle.js";
import { isZipFile, readRange, readZipDirectory } from "./zip.js";

/** Options of {@link readTorchCheckpoint}. */
export interface ReadTorchCheckpointOptions {
  /**
   * The key of the top-level dict that holds the state_dict. Default: the top-level dict itself when
   * it maps names to tensors; else its only value that does; else the first of "state_dict",
   * "model_state_dict", "model", "module", "net", "network" that does.
   */
  stateDictKey?: string;
  /** Reads only the tensors whose name it accepts (the others' bytes are never read, their dtypes not checked). */
  filter?: (name: string) => boolean;
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
/** A state_dict pickle larger than this is refused (BERT-large's is ~40 KB). */
const MAX_PICKLE_BYTES = 256 * 1024 * 1024;
/** The tensors read may take at most this many times the file's size (+ 64 MiB): float16 doubles, ties repeat. */
const OUTPUT_FACTOR = 4;

/**
 * Reads every tensor of a PyTorch checkpoint (zip or legacy format), in the state_dict's order.
 * float16/bfloat16 values are widened to float32 (`dtype` keeps the stored type), int64 stays
 * BigInt64Array; storage offsets, strides (views are copied in row-major order) and shared storages
 * (tied weights: each name gets its own copy) are honoured. Nothing in the file is executed.
 * @throws Error naming the file and the problem: a global or call outside the allow-list, a dtype
 *   other than float32/float16/bfloat16/int64 (naming the tensor), a truncated or damaged file, a
 *   big-endian checkpoint, no state_dict.
 */
export async function readTorchCheckpoint(path: string, opts: ReadTorchCheckpointOptions = {}): Promise<Map<string, LoadedTensor>> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (err) {
    throw new Error(`${path}: cannot open the checkpoint: ${(err as Error).message}`);
  }
  try {
    const { size } = await fh.stat();
    if (await isZipFile(fh)) return await readZip(fh, size, path, opts);
    const head = await readRange(fh, 0, Math.min(2, size), size, path, "the first bytes");
    if (head[0] !== 0x80) {
      throw new Error(
        `${path}: not a PyTorch checkpoint: expected a zip archive (torch.save since 1.6) or a pickle stream (legacy ` +
          `format), got bytes ${head.toString("hex") || "(empty file)"}`,
      );
    }
    return await readLegacy(fh, size, path, opts);
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    throw message.startsWith(path) ? err : new Error(`${path}: ${message}`); // e.g. EISDIR from a read
  } finally {
    await fh.close();
  }
}

/**
 * Reads the tensors. First, without allocating anything, every tensor's view is checked against its
 * storage and the total the tensors will take (each name gets its own copy; a strided view also
 * reads the span it covers) is checked against the output budget; then the tensors are read.
 */
async function readAll(
  fh: FileHandle,
  fileSize: number,
  path: string,
  tensors: TensorToRead[],
  locate: (s: StorageRef) => StorageBytes,
): Promise<Map<string, LoadedTensor>> {
  const budget = OUTPUT_FACTOR * fileSize + 64 * 1024 * 1024;
  let total = 0;
  let firstOver: TensorToRead | undefined;
  let totalAtFirstOver = 0;
  const located: StorageBytes[] = [];
  const namesPerStorage = new Map<string, number>();
  for (const t of tensors) {
    const storage = locate(t.ref.storage);
    checkTensorView(path, t, storage);
    located.push(storage);
    const key = t.ref.storage.view?.key ?? t.ref.storage.key;
    namesPerStorage.set(key, (namesPerStorage.get(key) ?? 0) + 1);
    const { count, span } = tensorExtent(t.ref);
    total += (t.dtype === "int64" ? 8 : 4) * (count + (count === span ? 0 : span));
    if (total > budget && firstOver === undefined) {
      firstOver = t;
      totalAtFirstOver = total;
    }
  }
  if (firstOver !== undefined) {
    const [sharedKey, sharedBy] = [...namesPerStorage].reduce((a, b) => (b[1] > a[1] ? b : a));
    throw new Error(
      `${path}: tensor '${firstOver.name}' [${firstOver.ref.shape}] would bring the tensors read to ${totalAtFirstOver} bytes, more than ` +
        `${OUTPUT_FACTOR}× the file (${fileSize} bytes) + 64 MiB ` +
        `(all ${tensors.length} tensors declared take ${total} bytes; ${sharedBy} of them view storage '${sharedKey}'; ` +
        "a view repeating its storage, e.g. stride 0, or one storage under very many names): refused before reading any",
    );
  }
  const out = new Map<string, LoadedTensor>();
  for (const [i, t] of tensors.entries()) out.set(t.name, await readTensorData(fh, path, t, located[i]!));
  return out;
}

async function readZip(
  fh: FileHandle,
  fileSize: number,
  path: string,
  opts: ReadTorchCheckpointOptions,
): Promise<Map<string, LoadedTensor>> {
  const entries = await readZipDirectory(fh, fileSize, path);
  // torch writes one top folder (any name); take the shallowest data.pkl.
  const pkl = [...entries.values()]
    .filter((e) => e.name === "data.pkl" || e.name.endsWith("/data.pkl"))
    .sort((a, b) => a.name.length - b.name.length)[0];
  if (!pkl)
    throw new Error(
      `${path}: zip archive without a data.pkl entry: not a PyTorch checkpoint (entries: ${[...entries.keys()].slice(0, 5).join(", ")})`,
    );
  const prefix = pkl.name.slice(0, pkl.name.length - "data.pkl".length);
  const order = entries.get(`${prefix}byteorder`);
  if (order) {
    const text = (await readRange(fh, order.dataOffset, Math.min(order.size, 16), fileSize, path, "byteorder")).toString("latin1").trim();
    if (text !== "little")
      throw new Error(`${path}: ${prefix}byteorder is '${text}'; only little-endian checkpoints are read (expected 'little')`);
  }
  if (pkl.size > MAX_PICKLE_BYTES)
    throw new Error(`${path}: ${pkl.name} is ${pkl.size} bytes; a state_dict pickle over ${MAX_PICKLE_BYTES} bytes is refused`);
  const source = `${path} (${pkl.name})`;
  const bytes = await readRange(fh, pkl.dataOffset, pkl.size, fileSize, path, pkl.name);
  const { value } = unpickleTorch(bytes, 0, source);
  const tensors = tensorsToRead(findStateDict(value, source, opts.stateDictKey), source, opts.filter);
  return readAll(fh, fileSize, path, tensors, (s) => {
    const e = entries.get(`${prefix}data/${s.key}`);
    if (!e) throw new Error(`${path}: storage '${s.key}' named by ${pkl.name} is missing from the archive (no ${prefix}data/${s.key})`);
    return { offset: e.dataOffset, bytes: e.size };
  });
}

/** Parses the legacy format's five pickles from the head of the file, growing the window as needed. */
async function legacyHead(
  fh: FileHandle,
  fileSize: number,
  path: string,
): Promise<{ values: TorchValue[]; end: number; storages: Map<string, StorageRef> }> {
  for (let window = Math.min(fileSize, 1 << 20); ; window = Math.min(fileSize, MAX_PICKLE_BYTES, window * 8)) {
    const buf = await readRange(fh, 0, window, fileSize, path, "the legacy header");
    const storages = new Map<string, StorageRef>();
    try {
      const values: TorchValue[] = [];
      let pos = 0;
      for (const what of ["magic number", "protocol version", "system info", "state_dict", "storage keys"]) {
        const r = unpickleTorch(buf, pos, `${path} (legacy format, ${what} pickle)`, (s) => {
          if (!storages.has(s.key)) storages.set(s.key, s);
        });
        values.push(r.value);
        pos = r.end;
        if (values.length === 1 && r.value !== LEGACY_MAGIC) {
          throw new Error(
            `${path}: not a PyTorch checkpoint: the first pickle is ${String(r.value)}, expected the legacy magic ` +
              `number 0x${LEGACY_MAGIC.toString(16)}`,
          );
        }
      }
      return { values, end: pos, storages };
    } catch (err) {
      const truncated = /pickle truncated/.test((err as Error).message);
      if (!truncated || window >= fileSize || window >= MAX_PICKLE_BYTES) throw err;
    }
  }
}

async function readLegacy(
  fh: FileHandle,
  fileSize: number,
  path: string,
  opts: ReadTorchCheckpointOptions,
): Promise<Map<string, LoadedTensor>> {
  const source = `${path} (legacy format)`;
  const { values, end, storages } = await legacyHead(fh, fileSize, path);
  const [, protocol, sysInfo, root, keys] = values;
  if (protocol !== LEGACY_PROTOCOL) throw new Error(`${source}: protocol version ${String(protocol)}, expected ${LEGACY_PROTOCOL}`);
  if (sysInfo instanceof Map && sysInfo.get("little_endian") === false)
    throw new Error(`${source}: saved on a big-endian machine (little_endian False); only little-endian checkpoints are read`);
  const keyList = pyItems(keys);
  if (!keyList || !keyList.every((k) => typeof k === "string" || typeof k === "number"))
    throw new Error(`${source}: the storage key list is missing or malformed`);
  const tensors = tensorsToRead(findStateDict(root!, source, opts.stateDictKey), source, opts.filter);
  // Each storage: an 8-byte little-endian element count, then count × element size bytes.
  const located = new Map<string, StorageBytes>();
  let pos = end;
  for (const k of keyList) {
    const key = String(k);
    const ref = storages.get(key);
    if (!ref) throw new Error(`${source}: storage '${key}' is listed but no tensor names it`);
    const header = await readRange(fh, pos, 8, fileSize, path, `the size of storage '${key}'`);
    const numel = header.readBigInt64LE(0);
    const bytes = numel * BigInt(ref.elementBytes);
    if (numel < 0n || BigInt(pos + 8) + bytes > BigInt(fileSize)) {
      throw new Error(
        `${path}: storage '${key}' claims ${numel} values (${bytes} bytes) at byte ${pos + 8}, past the end of the file ` +
          `(${fileSize} bytes): the file is truncated`,
      );
    }
    located.set(key, { offset: pos + 8, bytes: Number(bytes) });
    pos += 8 + Number(bytes);
  }
  return readAll(fh, fileSize, path, tensors, (s) => {
    const l = located.get(s.key);
    if (!l) throw new Error(`${source}: storage '${s.key}' has no data in the file (not in the storage key list)`);
    return l;
  });
}

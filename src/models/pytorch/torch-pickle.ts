/**
 * What a PyTorch state_dict pickle may contain, and what its few allowed calls mean. Globals resolve
 * through an allow-list of names (collections.OrderedDict, torch's tensor rebuilders, storage types
 * and dtypes); nothing is imported. "Calling" a rebuilder returns a plain {@link TensorRef} (storage,
 * offset, shape, strides); storage types and dtypes are names only and calling one is refused.
 */
import { PyGlobal, describePy, pyItems, unpickle, type PyValue } from "./pickle.js";

/** Element types whose tensors are read. */
export type TorchDtype = "float32" | "float16" | "bfloat16" | "int64";

/** The dtypes read, in the order error messages list them. */
export const SUPPORTED_DTYPES: readonly TorchDtype[] = ["float32", "float16", "bfloat16", "int64"];

/** Bytes per element of every storage type torch names in a checkpoint (all needed to skip legacy storages). */
const STORAGE_TYPES: Readonly<Record<string, { dtype: string; bytes: number }>> = {
  FloatStorage: { dtype: "float32", bytes: 4 },
  HalfStorage: { dtype: "float16", bytes: 2 },
  BFloat16Storage: { dtype: "bfloat16", bytes: 2 },
  LongStorage: { dtype: "int64", bytes: 8 },
  DoubleStorage: { dtype: "float64", bytes: 8 },
  IntStorage: { dtype: "int32", bytes: 4 },
  ShortStorage: { dtype: "int16", bytes: 2 },
  CharStorage: { dtype: "int8", bytes: 1 },
  ByteStorage: { dtype: "uint8", bytes: 1 },
  BoolStorage: { dtype: "bool", bytes: 1 },
  ComplexFloatStorage: { dtype: "complex64", bytes: 8 },
  ComplexDoubleStorage: { dtype: "complex128", bytes: 16 },
  // torch ≥ 2.0 saves tensors of dtypes without a typed storage as raw bytes + _rebuild_tensor_v3(dtype).
  UntypedStorage: { dtype: "uint8", bytes: 1 },
};

/** torch.<name> dtype globals (aliases included) → dtype name. */
const DTYPE_GLOBALS: Readonly<Record<string, string>> = {
  float32: "float32",
  float: "float32",
  float16: "float16",
  half: "float16",
  bfloat16: "bfloat16",
  int64: "int64",
  long: "int64",
  float64: "float64",
  double: "float64",
  int32: "int32",
  int: "int32",
  int16: "int16",
  short: "int16",
  int8: "int8",
  uint8: "uint8",
  bool: "bool",
  complex64: "complex64",
  cfloat: "complex64",
  complex128: "complex128",
  cdouble: "complex128",
  uint16: "uint16",
  uint32: "uint32",
  uint64: "uint64",
  float8_e4m3fn: "float8_e4m3fn",
  float8_e5m2: "float8_e5m2",
  float8_e4m3fnuz: "float8_e4m3fnuz",
  float8_e5m2fnuz: "float8_e5m2fnuz",
};

const ELEMENT_BYTES: Readonly<Record<TorchDtype, number>> = { float32: 4, float16: 2, bfloat16: 2, int64: 8 };

/** The callables a state_dict pickle may REDUCE; everything else is refused. */
const CALLABLES = new Set([
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_tensor_v3",
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
]);

/** A storage named by a persistent id: which record of the file, its element type and size. */
export interface StorageRef {
  kind: "storage";
  /** The storage's element type (a torch dtype name; may be one that is not read). */
  dtype: string;
  /** Bytes per element of `dtype`. */
  elementBytes: number;
  key: string;
  /** Number of elements of `dtype`. */
  numel: number;
  /** Legacy format only: a view into another storage (its key, element offset and length). */
  view?: { key: string; offset: number; numel: number };
}

/** A tensor as a rebuilder describes it: offset, shape and strides in elements of `dtype`. */
export interface TensorRef {
  kind: "tensor";
  storage: StorageRef;
  /** The tensor's dtype (the storage's, or `_rebuild_tensor_v3`'s explicit one). */
  dtype: string;
  offset: number;
  shape: number[];
  stride: number[];
}

/** A value of a torch pickle. */
export type TorchValue = PyValue<StorageRef | TensorRef>;

/** True when `dtype` is one whose tensors are read. */
export function isSupportedDtype(dtype: string): dtype is TorchDtype {
  return (SUPPORTED_DTYPES as readonly string[]).includes(dtype);
}

/** Bytes per element of a supported dtype. */
export function dtypeBytes(dtype: TorchDtype): number {
  return ELEMENT_BYTES[dtype];
}

/** True for a value a rebuilder returned. */
export function isTensorRef(v: TorchValue | undefined): v is TensorRef {
  return v !== null && typeof v === "object" && "kind" in v && v.kind === "tensor";
}

function isStorageRef(v: TorchValue | undefined): v is StorageRef {
  return v !== null && typeof v === "object" && "kind" in v && v.kind === "storage";
}

function allowedGlobal(module: string, name: string): boolean {
  if (CALLABLES.has(`${module}.${name}`)) return true;
  return module === "torch" && (Object.hasOwn(STORAGE_TYPES, name) || Object.hasOwn(DTYPE_GLOBALS, name));
}

function toInt(v: TorchValue | undefined, what: string, source: string): number {
  if (typeof v === "number" && Number.isSafeInteger(v)) return v;
  throw new Error(`${source}: ${what} must be an integer, got ${describePy(v)}`);
}

function intList(v: TorchValue | undefined, what: string, fn: string, source: string): number[] {
  const items = pyItems(v);
  if (!items) throw new Error(`${source}: ${fn}: ${what} must be a tuple, got ${describePy(v)}`);
  if (items.length > 64) throw new Error(`${source}: ${fn}: ${what} has ${items.length} dimensions (at most 64)`);
  return items.map((d) => {
    const n = toInt(d, `each of ${what}`, source);
    if (n < 0) throw new Error(`${source}: ${fn}: negative ${what} ${n}`);
    return n;
  });
}

/** The plain description of what Python would have built by calling `fn`. */
function call(fn: PyGlobal, args: TorchValue[], source: string): TorchValue {
  const q = fn.qualified;
  if (!CALLABLES.has(q))
    throw new Error(`${source}: refusing to call ${q}: only OrderedDict and torch's tensor rebuilders may be called in a state_dict`);
  if (q === "collections.OrderedDict") {
    const m = new Map<TorchValue, TorchValue>();
    const pairs = args.length === 0 ? [] : pyItems(args[0]);
    if (pairs === undefined) throw new Error(`${source}: OrderedDict() called with ${describePy(args[0])}`);
    for (const p of pairs) {
      const kv = pyItems(p);
      if (!kv || kv.length !== 2) throw new Error(`${source}: OrderedDict() item ${describePy(p)} is not a pair`);
      m.set(kv[0]!, kv[1]!);
    }
    return m;
  }
  if (q.startsWith("torch._utils._rebuild_parameter")) {
    if (!isTensorRef(args[0])) throw new Error(`${source}: ${q} called with ${describePy(args[0])} instead of a tensor`);
    return args[0];
  }
  // _rebuild_tensor(storage, offset, size, stride), _v2(..., requires_grad, hooks[, metadata]),
  // _v3(..., requires_grad, hooks, dtype[, metadata]).
  const [storage, offset, size, stride] = args;
  if (!isStorageRef(storage)) throw new Error(`${source}: ${q} called with ${describePy(storage)} instead of a storage`);
  let dtype = storage.dtype;
  if (q.endsWith("_v3")) {
    const d = args[6];
    if (!(d instanceof PyGlobal) || d.module !== "torch" || !Object.hasOwn(DTYPE_GLOBALS, d.name)) {
      throw new Error(`${source}: ${q} called with ${describePy(d)} instead of a torch dtype`);
    }
    dtype = DTYPE_GLOBALS[d.name]!;
  }
  const shape = intList(size, "size", q, source);
  const strides = intList(stride, "stride", q, source);
  if (shape.length !== strides.length) throw new Error(`${source}: ${q}: size [${shape}] and stride [${strides}] have different ranks`);
  return { kind: "tensor", storage, dtype, offset: toInt(offset, "a storage offset", source), shape, stride: strides };
}

/** A persistent id of torch.save, ('storage', storage type, key, location, numel[, view]) → StorageRef. */
function storageFromPid(pid: TorchValue, source: string): StorageRef {
  const t = pyItems(pid);
  if (!t || t[0] !== "storage" || t.length < 5)
    throw new Error(`${source}: unexpected persistent id ${describePy(pid)}; expected ('storage', type, key, location, size)`);
  const type = t[1];
  if (!(type instanceof PyGlobal) || type.module !== "torch" || !Object.hasOwn(STORAGE_TYPES, type.name)) {
    throw new Error(`${source}: persistent id names ${describePy(type)} instead of a torch storage type`);
  }
  const key = t[2];
  if (typeof key !== "string" && typeof key !== "number")
    throw new Error(`${source}: storage key must be a string, got ${describePy(key)}`);
  const numel = toInt(t[4], "a storage size", source);
  if (numel < 0) throw new Error(`${source}: storage '${key}' has a negative size ${numel}`);
  const { dtype, bytes } = STORAGE_TYPES[type.name]!;
  const ref: StorageRef = { kind: "storage", dtype, elementBytes: bytes, key: String(key), numel };
  const view = t[5] === undefined || t[5] === null ? undefined : pyItems(t[5]);
  if (view) {
    ref.view = { key: String(view[0]), offset: toInt(view[1], "a view offset", source), numel: toInt(view[2], "a view size", source) };
    if (ref.view.offset < 0 || ref.view.numel < 0) throw new Error(`${source}: storage view '${key}' has a negative offset or size`);
  }
  return ref;
}

/**
 * Unpickles one torch pickle at `start` of `buf` with the allow-list, tensor rebuilders and storage
 * persistent ids; `onStorage` sees every storage as it is named (the legacy format needs them).
 * @throws Error naming `source` for any global outside the allow-list (as soon as it is named, before
 *   it could be used), any other call, or a malformed stream.
 */
export function unpickleTorch(
  buf: Uint8Array,
  start: number,
  source: string,
  onStorage?: (s: StorageRef) => void,
): { value: TorchValue; end: number } {
  return unpickle<StorageRef | TensorRef>(buf, start, {
    source,
    global: (module, name) => {
      if (!allowedGlobal(module, name)) {
        throw new Error(
          `${source}: refusing global ${module}.${name}: a checkpoint may name only collections.OrderedDict and torch's ` +
            `tensor rebuilders, storage types and dtypes (nothing is executed)`,
        );
      }
      return new PyGlobal(module, name);
    },
    call: (fn, args) => call(fn, args, source),
    // torch sets a state_dict's `_metadata` (OrderedDict attribute) by BUILD; it is not needed here.
    build: (target) => {
      if (!(target instanceof Map))
        throw new Error(
          `${source}: refusing BUILD (setting object state) on ${describePy(target)}: only a state_dict's metadata is set that way`,
        );
    },
    persistentLoad: (pid) => {
      const s = storageFromPid(pid, source);
      onStorage?.(s);
      return s;
    },
  });
}

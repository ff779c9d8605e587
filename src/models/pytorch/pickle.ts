/**
 * A restricted unpickler for PyTorch state_dicts. A pickle is a program for Python's pickle virtual
 * machine: GLOBAL names any importable callable and REDUCE calls it, which is how a malicious
 * checkpoint runs `os.system`. Here nothing is imported or called: globals resolve through an
 * allow-list of the few names a state_dict uses, and "calling" one builds a plain description of
 * what it would have built (a tensor's storage, offset, shape, strides). Any other global, or a call
 * of anything else, is an Error naming it. Sizes are checked before anything is allocated.
 */

/** A storage referenced by a persistent id: which dtype, which record of the file, how many elements. */
export interface StorageRef {
  kind: "storage";
  dtype: TorchDtype;
  key: string;
  numel: number;
  /** Legacy format: a view into another storage (key, element offset, length). */
  view?: { key: string; offset: number; numel: number };
}

/** What `_rebuild_tensor_v2` describes. */
export interface TensorRef {
  kind: "tensor";
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

/** Element types a state_dict may hold here. */
export type TorchDtype = "float32" | "float16" | "bfloat16" | "int64";

/** Bytes per element. */
export const DTYPE_BYTES: Readonly<Record<TorchDtype, number>> = { float32: 4, float16: 2, bfloat16: 2, int64: 8 };

/** A Python value as the unpickler represents it. */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | Map<PyValue, PyValue>
  | PyGlobal
  | StorageRef
  | TensorRef;

/** A Python tuple (kept apart from lists). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** An allowed global, by name. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

const STORAGE_TYPES: Record<string, TorchDtype> = {
  FloatStorage: "float32",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  LongStorage: "int64",
};
const DTYPE_GLOBALS: Record<string, TorchDtype> = { float32: "float32", float: "float32", float16: "float16", half: "float16", bfloat16: "bfloat16", int64: "int64", long: "int64" };

/** Storage types that are only ever names in a persistent id (never called): refused later, by dtype. */
const OTHER_STORAGE_TYPES = new Set(["DoubleStorage", "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage", "ComplexFloatStorage", "ComplexDoubleStorage"]);

/** The globals a state_dict may name; everything else is refused. */
function allowedGlobal(module: string, name: string): boolean {
  if (module === "collections" && name === "OrderedDict") return true;
  if (module === "torch._utils" && ["_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_tensor"].includes(name)) return true;
  if (module === "torch" && (name in STORAGE_TYPES || name in DTYPE_GLOBALS || OTHER_STORAGE_TYPES.has(name))) return true;
  return false;
}

/** Options of {@link unpickle}. */
export interface UnpickleOptions {
  /** Names the source in errors (the file, and the entry for archives). */
  source: string;
  /** Maps a persistent id (torch's storage tuples) to a value; errors are the caller's. */
  persistentLoad?: (pid: PyValue) => PyValue;
}

/** The result of {@link unpickle}: the value and where the pickle ended. */
export interface Unpickled {
  value: PyValue;
  end: number;
}

const MARK = Symbol("mark");
type StackItem = PyValue | typeof MARK;

function asArray(v: PyValue): PyValue[] | undefined {
  return Array.isArray(v) ? v : v instanceof PyTuple ? v.items : undefined;
}

function toInt(v: PyValue, what: string, source: string): number {
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "bigint" && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw new Error(`${source}: ${what} must be an integer, got ${describe(v)}`);
}

function describe(v: PyValue): string {
  if (v instanceof PyGlobal) return `global ${v.qualified}`;
  if (v instanceof PyTuple) return `tuple(${v.items.length})`;
  if (v instanceof Map) return "dict";
  if (Array.isArray(v)) return `list(${v.length})`;
  if (v instanceof Uint8Array) return `bytes(${v.length})`;
  if (v !== null && typeof v === "object") return v.kind;
  return JSON.stringify(typeof v === "bigint" ? v.toString() : v) ?? String(v);
}

/** torch.dtype or storage-type global → dtype, else undefined. */
export function dtypeOf(v: PyValue): TorchDtype | undefined {
  if (!(v instanceof PyGlobal) || v.module !== "torch") return undefined;
  return STORAGE_TYPES[v.name] ?? DTYPE_GLOBALS[v.name];
}

/** "Calls" an allowed global: the plain description of what Python would have built. */
function call(fn: PyGlobal, args: PyValue[], source: string): PyValue {
  const q = fn.qualified;
  if (q === "collections.OrderedDict") {
    const m = new Map<PyValue, PyValue>();
    const init = args[0];
    const pairs = init === undefined ? [] : asArray(init);
    if (pairs === undefined) throw new Error(`${source}: OrderedDict() called with ${describe(init!)}`);
    for (const p of pairs) {
      const kv = asArray(p);
      if (!kv || kv.length !== 2) throw new Error(`${source}: OrderedDict() item is not a pair`);
      m.set(kv[0]!, kv[1]!);
    }
    return m;
  }
  if (q === "torch._utils._rebuild_tensor_v2" || q === "torch._utils._rebuild_tensor") {
    const [storage, offset, size, stride] = args;
    if (storage === null || storage === undefined || typeof storage !== "object" || !("kind" in storage) || storage.kind !== "storage") {
      throw new Error(`${source}: ${q} called without a storage (got ${describe(storage ?? null)})`);
    }
    const shape = asArray(size ?? null)?.map((d) => toInt(d, "a tensor dimension", source));
    const strides = asArray(stride ?? null)?.map((d) => toInt(d, "a tensor stride", source));
    if (!shape || !strides || shape.length !== strides.length) throw new Error(`${source}: ${q} has a shape and strides of different ranks`);
    if (shape.some((d) => d < 0) || strides.some((d) => d < 0)) throw new Error(`${source}: ${q}: negative sizes or strides are not supported`);
    return { kind: "tensor", storage, offset: toInt(offset ?? null, "a storage offset", source), shape, stride: strides };
  }
  if (q === "torch._utils._rebuild_parameter") {
    const t = args[0];
    if (t === null || t === undefined || typeof t !== "object" || !("kind" in t) || t.kind !== "tensor") {
      throw new Error(`${source}: _rebuild_parameter called without a tensor`);
    }
    return t;
  }
  throw new Error(`${source}: refusing to call ${q}: only OrderedDict and torch's tensor rebuilders are allowed in a state_dict`);
}

/**
 * Interprets the pickle starting at `start` in `buf` (protocols 2 to 5).
 * @throws Error naming the source and the problem: a global outside the allow-list (before it could
 *   be used), an unknown opcode, a truncated stream, a size beyond the buffer.
 */
export function unpickle(buf: Uint8Array, start: number, opts: UnpickleOptions): Unpickled {
  const src = opts.source;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const stack: StackItem[] = [];
  const memo = new Map<number, PyValue>();
  let pos = start;
  const need = (n: number, what: string) => {
    if (n < 0 || pos + n > buf.length) throw new Error(`${src}: pickle truncated reading ${what} at byte ${pos} (needs ${n} bytes, ${buf.length - pos} left)`);
  };
  const u8 = () => (need(1, "an opcode argument"), buf[pos++]!);
  const u16 = () => (need(2, "a 2-byte argument"), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4, "a 4-byte argument"), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = () => (need(4, "a 4-byte integer"), (pos += 4), view.getInt32(pos - 4, true));
  const bytes = (n: number, what: string) => (need(n, what), (pos += n), buf.subarray(pos - n, pos));
  const text = (n: number) => new TextDecoder("utf-8", { fatal: false }).decode(bytes(n, "a string"));
  const line = () => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 4096) throw new Error(`${src}: pickle truncated reading a text line at byte ${pos}`);
    const s = new TextDecoder().decode(buf.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) throw new Error(`${src}: pickle stack underflow at byte ${pos}`);
    return v;
  };
  const popMark = (): PyValue[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw new Error(`${src}: pickle has no MARK at byte ${pos}`);
    const items = stack.splice(i) as PyValue[];
    items.shift();
    return items;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) throw new Error(`${src}: pickle stack underflow at byte ${pos}`);
    return v;
  };
  const global = (module: string, name: string): PyGlobal => {
    if (!allowedGlobal(module, name)) {
      throw new Error(`${src}: refusing global ${module}.${name}: a checkpoint may name only collections.OrderedDict and torch's tensor rebuilders and storage types (nothing is executed)`);
    }
    return new PyGlobal(module, name);
  };
  const setItems = (target: PyValue, items: PyValue[]) => {
    if (!(target instanceof Map)) throw new Error(`${src}: SETITEMS on ${describe(target)}`);
    for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i]!, items[i + 1]!);
  };
  for (;;) {
    need(1, "an opcode");
    const op = buf[pos++]!;
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: need(8, "a frame length"); pos += 8; break; // FRAME (the length is advisory)
      case 0x2e: return { value: pop(), end: pos }; // STOP
      case 0x28: stack.push(MARK); break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: { // LONG1
        const n = u8();
        const b = bytes(n, "a long");
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (n > 0 && b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: need(8, "a float"); stack.push(view.getFloat64(pos, false)); pos += 8; break; // BINFLOAT
      case 0x58: stack.push(text(u32())); break; // BINUNICODE
      case 0x8c: stack.push(text(u8())); break; // SHORT_BINUNICODE
      case 0x54: stack.push(text(i32())); break; // BINSTRING (Python 2)
      case 0x55: stack.push(text(u8())); break; // SHORT_BINSTRING
      case 0x42: stack.push(bytes(u32(), "bytes").slice()); break; // BINBYTES
      case 0x43: stack.push(bytes(u8(), "bytes").slice()); break; // SHORT_BINBYTES
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) throw new Error(`${src}: pickle reads memo ${k}, which was never set`);
        stack.push(memo.get(k)!);
        break;
      }
      case 0x85: stack.push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([a, b, c])); break; } // TUPLE3
      case 0x74: stack.push(new PyTuple(popMark())); break; // TUPLE
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x64: { const m = new Map<PyValue, PyValue>(); setItems(m, popMark()); stack.push(m); break; } // DICT
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) throw new Error(`${src}: APPEND to ${describe(l)}`); l.push(v); break; }
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) throw new Error(`${src}: APPENDS to ${describe(l)}`); l.push(...items); break; }
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x63: { const module = line(); const name = line(); stack.push(global(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") throw new Error(`${src}: STACK_GLOBAL needs two strings`);
        stack.push(global(module, name));
        break;
      }
      case 0x52: case 0x81: { // REDUCE, NEWOBJ
        const args = pop();
        const fn = pop();
        if (!(fn instanceof PyGlobal)) throw new Error(`${src}: refusing to call ${describe(fn)} (REDUCE of something that is not an allowed global)`);
        const list = asArray(args);
        if (!list) throw new Error(`${src}: call of ${fn.qualified} with ${describe(args)} instead of an argument tuple`);
        stack.push(call(fn, list, src));
        break;
      }
      case 0x62: { // BUILD: torch sets an OrderedDict's _metadata this way; state is ignored
        pop();
        const target = top();
        if (!(target instanceof Map)) throw new Error(`${src}: refusing BUILD (object state) on ${describe(target)}`);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) throw new Error(`${src}: persistent id without a loader`);
        stack.push(opts.persistentLoad(pid));
        break;
      }
      default:
        throw new Error(`${src}: unsupported pickle opcode 0x${op.toString(16).padStart(2, "0")} at byte ${pos - 1} (not one torch.save writes for a state_dict)`);
    }
  }
}

/** A persistent id of torch.save: ('storage', storage type, key, location, numel[, view]) → StorageRef. */
export function storageFromPid(pid: PyValue, source: string): StorageRef {
  const t = asArray(pid);
  if (!t || t[0] !== "storage" || t.length < 5) throw new Error(`${source}: unexpected persistent id ${describe(pid)}; expected a storage`);
  const dtype = dtypeOf(t[1]!);
  if (!dtype) {
    const name = t[1] instanceof PyGlobal ? t[1].qualified : describe(t[1]!);
    throw new Error(`${source}: storage type ${name} is not read; supported: float32, float16, bfloat16, int64 (FloatStorage, HalfStorage, BFloat16Storage, LongStorage)`);
  }
  const key = t[2];
  if (typeof key !== "string" && typeof key !== "number") throw new Error(`${source}: storage key must be a string, got ${describe(key!)}`);
  const ref: StorageRef = { kind: "storage", dtype, key: String(key), numel: toInt(t[4]!, "a storage size", source) };
  const view = t[5] === undefined || t[5] === null ? undefined : asArray(t[5]!);
  if (view) ref.view = { key: String(view[0]), offset: toInt(view[1]!, "a view offset", source), numel: toInt(view[2]!, "a view size", source) };
  return ref;
}

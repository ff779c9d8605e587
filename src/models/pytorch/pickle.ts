/**
 * A restricted pickle virtual machine. A pickle is a program for Python's pickle VM: GLOBAL names
 * any importable callable and REDUCE calls it, which is how a malicious checkpoint runs `os.system`.
 * This VM imports and calls nothing itself: every GLOBAL goes through the caller's `global` hook
 * (an allow-list, see `./torch-pickle.ts`), and every REDUCE/NEWOBJ through its `call` hook, which
 * builds plain descriptions. Without hooks, any GLOBAL or call is an Error.
 *
 * Protocols 2 to 5, the opcodes a state_dict uses, and sets (protocol 4's EMPTY_SET/ADDITEMS/
 * FROZENSET). Every length is checked against the bytes that remain before anything is allocated;
 * memo entries live in a Map (no index-sized allocation); the work of copying items is bounded by the
 * pickle's size.
 */

/** A Python value as the VM represents it (`D` is the caller's own description type). */
export type PyValue<D = never> =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue<D>[]
  | PyTuple<D>
  | Map<PyValue<D>, PyValue<D>>
  | PySet<D>
  | PyGlobal
  | D;

/** A Python tuple (kept apart from lists). */
export class PyTuple<D = never> {
  constructor(readonly items: PyValue<D>[]) {}
}

/**
 * A Python set or frozenset, as its items in pickle order (pydantic's `__pydantic_fields_set__` is
 * one). Items are kept as written: equality of Python objects is not modelled, so no deduplication.
 */
export class PySet<D = never> {
  constructor(
    readonly items: PyValue<D>[],
    readonly frozen = false,
  ) {}
}

/** A global the `global` hook allowed: a name, never an imported object. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  /** `module.name`. */
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Hooks and naming of {@link unpickle}. */
export interface UnpickleOptions<D> {
  /** Names the source in errors (the file, and the entry for archives). */
  source: string;
  /** Resolves GLOBAL/STACK_GLOBAL; must throw for anything outside its allow-list. Default: refuse all. */
  global?: (module: string, name: string) => PyGlobal;
  /** "Calls" an allowed global (REDUCE, NEWOBJ); must throw for what it does not know. Default: refuse all. */
  call?: (fn: PyGlobal, args: PyValue<D>[]) => PyValue<D>;
  /** BUILD (setting an object's state): may accept, else throw. Default: refuse. */
  build?: (target: PyValue<D>, state: PyValue<D>) => void;
  /** Maps a persistent id (BINPERSID) to a value. Default: refuse. */
  persistentLoad?: (pid: PyValue<D>) => PyValue<D>;
}

/** The result of {@link unpickle}: the value and the offset just past its STOP opcode. */
export interface Unpickled<D> {
  value: PyValue<D>;
  end: number;
}

const MARK = Symbol("mark");

/** A short description of a value for error messages (never its contents). */
export function describePy<D>(v: PyValue<D> | undefined): string {
  if (v === undefined) return "nothing";
  if (v instanceof PyGlobal) return `global ${v.qualified}`;
  if (v instanceof PyTuple) return `tuple(${v.items.length})`;
  if (v instanceof Map) return `dict(${v.size})`;
  if (v instanceof PySet) return `${v.frozen ? "frozenset" : "set"}(${v.items.length})`;
  if (Array.isArray(v)) return `list(${v.length})`;
  if (v instanceof Uint8Array) return `bytes(${v.length})`;
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === "bigint") return v.toString();
  if (v !== null && typeof v === "object") return "kind" in v ? String((v as { kind: unknown }).kind) : "object";
  return String(v);
}

/** A list or tuple's items, else undefined. */
export function pyItems<D>(v: PyValue<D> | undefined): PyValue<D>[] | undefined {
  return Array.isArray(v) ? v : v instanceof PyTuple ? v.items : undefined;
}

/**
 * Interprets the pickle starting at `start` in `buf`.
 * @throws Error naming `opts.source` and the problem: a global or call the hooks refuse, an opcode
 *   outside the supported set, a truncated stream, a length beyond the buffer.
 */
export function unpickle<D>(buf: Uint8Array, start: number, opts: UnpickleOptions<D>): Unpickled<D> {
  type V = PyValue<D>;
  const src = opts.source;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const decoder = new TextDecoder("utf-8");
  const stack: (V | typeof MARK)[] = [];
  const memo = new Map<number, V>();
  let copyBudget = buf.length; // items copied by APPENDS/SETITEMS/calls: linear in the pickle's size
  let pos = start;
  const fail = (what: string): never => {
    throw new Error(`${src}: ${what} (pickle byte ${pos})`);
  };
  const need = (n: number, what: string) => {
    if (!(n >= 0) || pos + n > buf.length) fail(`pickle truncated reading ${what}: needs ${n} bytes, ${buf.length - pos} left`);
  };
  const u8 = () => (need(1, "an opcode argument"), buf[pos++]!);
  const u16 = () => (need(2, "a 2-byte argument"), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4, "a 4-byte argument"), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = () => (need(4, "a 4-byte integer"), (pos += 4), view.getInt32(pos - 4, true));
  const bytes = (n: number, what: string) => (need(n, what), (pos += n), buf.subarray(pos - n, pos));
  const text = (n: number) => decoder.decode(bytes(n, "a string"));
  const line = () => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 1024) fail("pickle truncated reading a GLOBAL name (no newline within 1024 bytes)");
    const s = decoder.decode(buf.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const charge = (n: number) => {
    copyBudget -= n;
    if (copyBudget < 0) fail("pickle copies more items than its size allows (a crafted file?)");
  };
  const pop = (): V => {
    const v = stack.pop();
    if (v === undefined || v === MARK) return fail("pickle stack underflow");
    return v;
  };
  const top = (): V => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return fail("pickle stack underflow");
    return v;
  };
  const popMark = (): V[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail("pickle has no MARK to pop to");
    const items = stack.splice(i) as V[];
    items.shift();
    return items;
  };
  const global = (module: string, name: string): PyGlobal => {
    if (!opts.global) throw new Error(`${src}: refusing global ${module}.${name}: no globals are allowed here`);
    return opts.global(module, name);
  };
  const setItems = (target: V, items: V[]) => {
    if (!(target instanceof Map)) fail(`SETITEMS on ${describePy(target)}: only dicts take items`);
    if (items.length % 2 !== 0) fail("SETITEMS with an odd number of items");
    charge(items.length);
    const m = target as Map<V, V>;
    for (let i = 0; i < items.length; i += 2) m.set(items[i]!, items[i + 1]!);
  };
  const append = (target: V, items: V[]) => {
    if (!Array.isArray(target)) fail(`APPEND to ${describePy(target)}: only lists take items`);
    charge(items.length);
    for (const item of items) (target as V[]).push(item); // no spread: no call-stack limit on long lists
  };
  const addItems = (target: V, items: V[]) => {
    if (!(target instanceof PySet) || target.frozen) fail(`ADDITEMS to ${describePy(target)}: only sets take items`);
    charge(items.length);
    for (const item of items) (target as PySet<D>).items.push(item);
  };
  const memoize = (key: number) => {
    if (memo.size >= buf.length) fail("pickle memo larger than the pickle");
    memo.set(key, top());
  };
  for (;;) {
    need(1, "an opcode");
    const op = buf[pos++]!;
    switch (op) {
      case 0x80: {
        // PROTO
        const p = u8();
        if (p < 2 || p > 5) fail(`pickle protocol ${p}; expected 2 to 5`);
        break;
      }
      case 0x95: {
        // FRAME: an 8-byte length that must fit in what remains
        need(8, "a frame length");
        const n = view.getBigUint64(pos, true);
        pos += 8;
        if (n > BigInt(buf.length - pos)) fail(`pickle frame of ${n} bytes, but only ${buf.length - pos} remain`);
        break;
      }
      case 0x2e:
        return { value: pop(), end: pos }; // STOP
      case 0x28:
        stack.push(MARK);
        break; // MARK
      case 0x7d:
        stack.push(new Map());
        break; // EMPTY_DICT
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x29:
        stack.push(new PyTuple<D>([]));
        break; // EMPTY_TUPLE
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x88:
        stack.push(true);
        break; // NEWTRUE
      case 0x89:
        stack.push(false);
        break; // NEWFALSE
      case 0x4a:
        stack.push(i32());
        break; // BININT
      case 0x4b:
        stack.push(u8());
        break; // BININT1
      case 0x4d:
        stack.push(u16());
        break; // BININT2
      case 0x8a: {
        // LONG1: little-endian two's complement, at most 255 bytes
        const b = bytes(u8(), "a long integer");
        let v = 0n;
        for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (b.length > 0 && b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47:
        need(8, "a float");
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break; // BINFLOAT
      case 0x58:
        stack.push(text(u32()));
        break; // BINUNICODE
      case 0x8c:
        stack.push(text(u8()));
        break; // SHORT_BINUNICODE
      case 0x54:
        stack.push(text(i32()));
        break; // BINSTRING (Python 2)
      case 0x55:
        stack.push(text(u8()));
        break; // SHORT_BINSTRING
      case 0x42:
        stack.push(bytes(u32(), "bytes").slice());
        break; // BINBYTES
      case 0x43:
        stack.push(bytes(u8(), "bytes").slice());
        break; // SHORT_BINBYTES
      case 0x71:
        memoize(u8());
        break; // BINPUT
      case 0x72:
        memoize(u32());
        break; // LONG_BINPUT
      case 0x94:
        memoize(memo.size);
        break; // MEMOIZE
      case 0x68:
      case 0x6a: {
        // BINGET, LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`pickle reads memo ${k}, which was never set`);
        stack.push(memo.get(k)!);
        break;
      }
      case 0x85:
        stack.push(new PyTuple<D>([pop()]));
        break; // TUPLE1
      case 0x86: {
        const b = pop();
        const a = pop();
        stack.push(new PyTuple<D>([a, b]));
        break;
      } // TUPLE2
      case 0x87: {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(new PyTuple<D>([a, b, c]));
        break;
      } // TUPLE3
      case 0x74:
        stack.push(new PyTuple<D>(popMark()));
        break; // TUPLE
      case 0x6c:
        stack.push(popMark());
        break; // LIST
      case 0x64: {
        const m = new Map<V, V>();
        setItems(m, popMark());
        stack.push(m);
        break;
      } // DICT
      case 0x61: {
        const v = pop();
        append(top(), [v]);
        break;
      } // APPEND
      case 0x65: {
        const items = popMark();
        append(top(), items);
        break;
      } // APPENDS
      case 0x73: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      } // SETITEM
      case 0x75: {
        const items = popMark();
        setItems(top(), items);
        break;
      } // SETITEMS
      case 0x8f:
        stack.push(new PySet<D>([]));
        break; // EMPTY_SET
      case 0x90: {
        const items = popMark();
        addItems(top(), items);
        break;
      } // ADDITEMS
      case 0x91: {
        const items = popMark();
        charge(items.length);
        stack.push(new PySet<D>(items, true));
        break;
      } // FROZENSET
      case 0x63: {
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      } // GLOBAL
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string")
          fail(`STACK_GLOBAL needs two strings, got ${describePy(module)} and ${describePy(name)}`);
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52:
      case 0x81: {
        // REDUCE, NEWOBJ: fn(*args) / cls.__new__(cls, *args)
        const args = pop();
        const fn = pop();
        const what = op === 0x52 ? "REDUCE" : "NEWOBJ";
        if (!(fn instanceof PyGlobal)) throw new Error(`${src}: refusing ${what} of ${describePy(fn)}: only allowed globals may be called`);
        const list = pyItems(args);
        if (!list) throw new Error(`${src}: refusing ${what} of ${fn.qualified} with ${describePy(args)} instead of an argument tuple`);
        if (!opts.call) throw new Error(`${src}: refusing to call ${fn.qualified}: no calls are allowed here`);
        charge(list.length);
        stack.push(opts.call(fn, list));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const target = top();
        if (!opts.build) throw new Error(`${src}: refusing BUILD (setting object state) on ${describePy(target)}`);
        opts.build(target, state);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) throw new Error(`${src}: refusing a persistent id: none are expected here`);
        stack.push(opts.persistentLoad(pid));
        break;
      }
      default:
        throw new Error(
          `${src}: unsupported pickle opcode 0x${op.toString(16).padStart(2, "0")} at byte ${pos - 1} (not one ` +
            `torch.save writes for a state_dict)`,
        );
    }
  }
}

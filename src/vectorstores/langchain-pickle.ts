/**
 * Reads the `index.pkl` of LangChain Python's `FAISS.save_local`: the pickle of
 * `(docstore, index_to_docstore_id)`, an `InMemoryDocstore` whose `_dict` maps ids to `Document`s,
 * and a dict from faiss position to id. It runs on the project's restricted pickle machine
 * (src/models/pytorch/pickle.ts) with its own allow-list: nothing is imported or executed, classes
 * are names, and "calling" one only makes an empty description that BUILD fills with its state.
 *
 * Documents are pydantic models pickled by `__reduce_ex__` (NEWOBJ with no arguments, then BUILD
 * with `__getstate__()`): pydantic 2 state is `{__dict__: {id, metadata, page_content, type},
 * __pydantic_extra__, __pydantic_fields_set__, __pydantic_private__}`; pydantic 1 (langchain < 0.1)
 * has `{__dict__, __fields_set__}`. Only `__dict__` is read.
 *
 * @module
 */
import { PyGlobal, PyTuple, describePy, pyItems, unpickle, type PyValue } from "../models/pytorch/pickle.js";

/** LangChain `Document` classes, under every module path LangChain has defined them in. */
const DOCUMENT_CLASSES = [
  "langchain_core.documents.base.Document",
  "langchain.schema.document.Document",
  "langchain.schema.Document",
  "langchain.docstore.document.Document",
];
/** The in-memory docstore `FAISS` pickles (langchain_community, and langchain before the split). */
const DOCSTORE_CLASSES = ["langchain_community.docstore.in_memory.InMemoryDocstore", "langchain.docstore.in_memory.InMemoryDocstore"];
/** pathlib paths (loaders put them in `metadata.source`); read as strings. */
const PATH_CLASSES = ["PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath"].flatMap((c) => [
  `pathlib.${c}`,
  `pathlib._local.${c}`,
]);

/** Every global an index.pkl may name; any other (os.system, builtins.eval, ...) is refused by name. */
export const LANGCHAIN_PICKLE_GLOBALS: readonly string[] = [...DOCUMENT_CLASSES, ...DOCSTORE_CLASSES, ...PATH_CLASSES];

/** An object of an allowed class: its class name and the state BUILD gave it. */
interface PyObject {
  kind: "object";
  cls: string;
  state?: LcValue;
}
/** A pathlib path, as the string it names. */
interface PyPath {
  kind: "path";
  path: string;
}
type LcValue = PyValue<PyObject | PyPath>;

/** A document read from index.pkl. */
export interface PickledDocument {
  pageContent: string;
  metadata: Record<string, unknown>;
  /** `Document.id` when the pickle has one (langchain-core ≥ 0.2.11). */
  id?: string;
}

/** The contents of index.pkl. */
export interface LangChainPickle {
  /** Docstore id → document. */
  docstore: Map<string, PickledDocument>;
  /** faiss position → docstore id. */
  indexToDocstoreId: Map<number, string>;
}

function isObject(v: LcValue | undefined, classes: readonly string[]): v is PyObject {
  return v !== null && typeof v === "object" && "kind" in v && v.kind === "object" && classes.includes(v.cls);
}

function makePath(cls: string, args: LcValue[], source: string): PyPath {
  if (!args.every((a): a is string => typeof a === "string")) {
    throw new Error(`${source}: ${cls} called with ${args.map((a) => describePy(a)).join(", ")} instead of path parts`);
  }
  const windows = cls.includes("Windows");
  const sep = windows ? "\\" : "/";
  const [first = "", ...rest] = args;
  const rooted = first.endsWith(sep) || (!windows && first === "/");
  return { kind: "path", path: rooted ? first + rest.join(sep) : args.join(sep) };
}

function call(fn: PyGlobal, args: LcValue[], source: string): LcValue {
  const q = fn.qualified;
  if (PATH_CLASSES.includes(q)) return makePath(q, args, source);
  if (args.length !== 0)
    throw new Error(
      `${source}: refusing to call ${q} with arguments (${args.map((a) => describePy(a)).join(", ")}): pickles build it ` +
        `empty and set its state`,
    );
  return { kind: "object", cls: q, state: undefined };
}

/** A metadata value as JSON-compatible data; `where` names it in errors. */
function toPlain(v: LcValue | undefined, where: string, source: string): unknown {
  if (v === null || typeof v === "boolean" || typeof v === "number" || typeof v === "string") return v;
  if (typeof v === "bigint") {
    if (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
    throw new Error(`${source}: ${where} is the integer ${v}, beyond what a JavaScript number holds exactly`);
  }
  const items = pyItems(v);
  if (items) return items.map((item, i) => toPlain(item, `${where}[${i}]`, source));
  if (v instanceof Map) return toRecord(v, where, source);
  if (v !== undefined && typeof v === "object" && "kind" in v && v.kind === "path") return v.path;
  throw new Error(
    `${source}: ${where} is ${describePy(v)}; metadata may hold strings, numbers, booleans, None, lists, tuples, dicts and paths`,
  );
}

function toRecord(m: Map<LcValue, LcValue>, where: string, source: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of m) {
    if (typeof key !== "string" && typeof key !== "number")
      throw new Error(`${source}: ${where} has a key ${describePy(key)}; expected strings`);
    Object.defineProperty(out, String(key), {
      value: toPlain(value, `${where}.${String(key)}`, source),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function toDocument(v: LcValue | undefined, key: string, source: string): PickledDocument {
  const where = `docstore entry "${key}"`;
  if (!isObject(v, DOCUMENT_CLASSES)) throw new Error(`${source}: ${where} is ${describePy(v)}, expected a LangChain Document`);
  const state = v.state;
  const fields = state instanceof Map ? state.get("__dict__") : undefined;
  if (!(fields instanceof Map))
    throw new Error(`${source}: ${where} (${v.cls}) has state ${describePy(state)}, expected pydantic's {"__dict__": {...}}`);
  const pageContent = fields.get("page_content");
  if (typeof pageContent !== "string")
    throw new Error(`${source}: ${where}: page_content is ${describePy(pageContent)}, expected a string`);
  const type = fields.get("type");
  if (type !== undefined && type !== "Document") throw new Error(`${source}: ${where}: type is ${describePy(type)}, expected "Document"`);
  const meta = fields.get("metadata");
  if (meta !== undefined && meta !== null && !(meta instanceof Map))
    throw new Error(`${source}: ${where}: metadata is ${describePy(meta)}, expected a dict`);
  const id = fields.get("id");
  if (id !== undefined && id !== null && typeof id !== "string")
    throw new Error(`${source}: ${where}: id is ${describePy(id)}, expected a string or None`);
  const metadata = meta instanceof Map ? toRecord(meta, `${where} metadata`, source) : {};
  return typeof id === "string" ? { pageContent, metadata, id } : { pageContent, metadata };
}

/**
 * Parses index.pkl bytes.
 * @param source names the file in errors.
 * @throws Error naming the file and the problem: a global outside {@link LANGCHAIN_PICKLE_GLOBALS}
 *   (refused when named, before anything could use it), an unexpected shape, a damaged stream.
 */
export function readLangChainPickle(buf: Uint8Array, source: string): LangChainPickle {
  const { value, end } = unpickle<PyObject | PyPath>(buf, 0, {
    source,
    global: (module, name) => {
      if (!LANGCHAIN_PICKLE_GLOBALS.includes(`${module}.${name}`)) {
        throw new Error(
          `${source}: refusing global ${module}.${name}: a LangChain FAISS index.pkl may name only LangChain's Document ` +
            `and InMemoryDocstore classes and pathlib paths (nothing is executed)`,
        );
      }
      return new PyGlobal(module, name);
    },
    call: (fn, args) => call(fn, args, source),
    build: (target, state) => {
      if (!isObject(target, [...DOCUMENT_CLASSES, ...DOCSTORE_CLASSES]) || target.state !== undefined) {
        throw new Error(
          `${source}: refusing BUILD (setting object state) on ${describePy(target)}: only a new Document or InMemoryDocstore takes state`,
        );
      }
      target.state = state;
    },
  });
  if (end !== buf.length) throw new Error(`${source}: ${buf.length - end} trailing bytes after the pickle`);
  const top = value instanceof PyTuple ? value.items : undefined;
  if (!top || top.length !== 2) throw new Error(`${source}: expected the tuple (docstore, index_to_docstore_id), got ${describePy(value)}`);
  const [store, ids] = top;
  if (!isObject(store, DOCSTORE_CLASSES)) throw new Error(`${source}: the docstore is ${describePy(store)}, expected InMemoryDocstore`);
  const dict = store.state instanceof Map ? store.state.get("_dict") : undefined;
  if (!(dict instanceof Map)) throw new Error(`${source}: InMemoryDocstore state ${describePy(store.state)} has no _dict`);
  if (!(ids instanceof Map)) throw new Error(`${source}: index_to_docstore_id is ${describePy(ids)}, expected a dict`);
  const docstore = new Map<string, PickledDocument>();
  for (const [key, doc] of dict) {
    if (typeof key !== "string") throw new Error(`${source}: docstore key ${describePy(key)} is not a string`);
    docstore.set(key, toDocument(doc, key, source));
  }
  const indexToDocstoreId = new Map<number, string>();
  for (const [pos, id] of ids) {
    if (typeof pos !== "number" || !Number.isSafeInteger(pos) || pos < 0)
      throw new Error(`${source}: index_to_docstore_id key ${describePy(pos)} is not a faiss position`);
    if (typeof id !== "string") throw new Error(`${source}: index_to_docstore_id[${pos}] is ${describePy(id)}, expected a docstore id`);
    indexToDocstoreId.set(pos, id);
  }
  return { docstore, indexToDocstoreId };
}

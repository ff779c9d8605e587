#!/usr/bin/python3
"""Writes test/fixtures/langchain/: the index.pkl files LangChain Python's FAISS.save_local writes,
for test/vectorstores/langchain-import.test.ts, without LangChain installed.

    /usr/bin/python3 scripts/gen-langchain-fixtures.py [--out test/fixtures/langchain]

save_local(folder, index_name="index") writes two files: `index.faiss` (faiss.write_index, a plain
faiss file: the tests write it with faiss-node from corpus.json's vectors) and `index.pkl`:

    pickle.dump((self.docstore, self.index_to_docstore_id), f)    # default protocol (4; 5 from 3.14)

docstore is a langchain_community.docstore.in_memory.InMemoryDocstore (a plain class; its state is
{"_dict": {id: Document}}) and index_to_docstore_id a dict {faiss position: id}. Document is
langchain_core.documents.base.Document, a pydantic 2 model: pickling goes through
object.__reduce_ex__ (copyreg.__newobj__: NEWOBJ with no arguments) and pydantic's __getstate__:

    {"__dict__": {"id": ..., "metadata": {...}, "page_content": "...", "type": "Document"},
     "__pydantic_extra__": None, "__pydantic_fields_set__": {...}, "__pydantic_private__": None}

Stand-in classes with those pickling rules are registered here under the real module paths
(sys.modules), so the pickle names exactly the globals LangChain's does. Files:

  corpus.json                   the documents (id, page_content, metadata) and their vectors (d = 8,
                                unnormalised), in faiss position order, plus what each fixture holds
  python/index.pkl              langchain-core >= 0.2.11 layout (pydantic 2 state, Document.id set;
                                one document saved by an older version has id None); metadata with
                                nesting, a tuple, unicode, a float, a 2**40 int, None, a bool and a
                                pathlib.PosixPath (loaders put paths in metadata["source"])
  python-pydantic-v1/index.pkl  langchain < 0.1 layout: langchain.docstore.in_memory.InMemoryDocstore
                                and langchain.schema.document.Document with pydantic 1 state
                                {"__dict__", "__fields_set__", "__private_attribute_values__"}
  hostile/*.pkl                 pickles that run a shell command under pickle.load (checked here: each
                                creates a marker file when Python loads it, which is then removed):
                                global-os-system.pkl (protocol 2 GLOBAL os.system, REDUCE),
                                metadata-reduce.pkl (a save_local pickle whose first document's
                                metadata holds an object reducing to os.system: STACK_GLOBAL
                                posix.system), docstore-eval.pkl (builtins.eval in place of the
                                docstore class); and build-on-path.pkl (BUILD on a pathlib path,
                                which pickle.load refuses or ignores; the reader must refuse it)
Everything is byte-reproducible (the script re-runs itself with PYTHONHASHSEED=0)."""
import argparse
import copyreg
import io
import json
import math
import os
import pathlib
import pickle
import sys
import types

# sets of strings (pydantic's fields set) iterate in string-hash order: fix the hash seed so the
# bytes are the same on every run
if os.environ.get("PYTHONHASHSEED") != "0":
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})

parser = argparse.ArgumentParser()
parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "langchain"))
args = parser.parse_args()
OUT = os.path.abspath(args.out)


def module(name):
    """The module `name`, created empty (with its parents) in sys.modules when absent."""
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        n = ".".join(parts[:i])
        if n not in sys.modules:
            sys.modules[n] = types.ModuleType(n)
            if i > 1:
                setattr(sys.modules[".".join(parts[: i - 1])], parts[i - 1], sys.modules[n])
    return sys.modules[name]


def register(cls, module_name):
    cls.__module__ = module_name
    cls.__qualname__ = cls.__name__
    setattr(module(module_name), cls.__name__, cls)
    return cls


class PydanticV2Model:
    """pydantic.BaseModel's pickling (pydantic 2.x): slots as BaseModel declares them, no __reduce__
    (so object.__reduce_ex__ -> copyreg.__newobj__(cls) + __getstate__), and BaseModel.__getstate__."""

    __slots__ = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")

    def __getstate__(self):
        return {
            "__dict__": self.__dict__,
            "__pydantic_extra__": self.__pydantic_extra__,
            "__pydantic_fields_set__": self.__pydantic_fields_set__,
            "__pydantic_private__": self.__pydantic_private__,
        }

    def __setstate__(self, state):
        for key, value in state.items():
            object.__setattr__(self, key, value)


class Document(PydanticV2Model):
    __slots__ = ()

    def __init__(self, page_content, metadata=None, id=None):
        # pydantic keeps fields in declaration order, base classes first: BaseMedia (id, metadata), then Document
        object.__setattr__(self, "__dict__", {"id": id, "metadata": {} if metadata is None else metadata, "page_content": page_content, "type": "Document"})
        fields_set = {"page_content"} | ({"metadata"} if metadata is not None else set()) | ({"id"} if id is not None else set())
        object.__setattr__(self, "__pydantic_fields_set__", fields_set)
        object.__setattr__(self, "__pydantic_extra__", None)  # Serializable: extra="ignore"
        object.__setattr__(self, "__pydantic_private__", None)


class InMemoryDocstore:
    def __init__(self, _dict=None):
        self._dict = _dict if _dict is not None else {}


class DocumentV1:
    """langchain < 0.1's Document on pydantic 1: BaseModel.__getstate__ of pydantic 1.10."""

    def __init__(self, page_content, metadata=None):
        self.__dict__ = {"page_content": page_content, "metadata": {} if metadata is None else metadata, "type": "Document"}
        self.__fields_set__ = {"page_content", "metadata"}

    def __getstate__(self):
        return {"__dict__": self.__dict__, "__fields_set__": self.__fields_set__, "__private_attribute_values__": {}}


class InMemoryDocstoreV1:
    def __init__(self, _dict):
        self._dict = _dict


register(Document, "langchain_core.documents.base")
register(InMemoryDocstore, "langchain_community.docstore.in_memory")
DocumentV1.__name__ = "Document"
register(DocumentV1, "langchain.schema.document")
InMemoryDocstoreV1.__name__ = "InMemoryDocstore"
register(InMemoryDocstoreV1, "langchain.docstore.in_memory")

D = 8
CORPUS = [
    ("doc-apple", "Apples are rich in fibre and vitamin C.", {"source": pathlib.PosixPath("/data/fruit/apple.txt"), "page": 1, "tags": ["fruit", "food"]}),
    ("doc-faiss", "FAISS searches dense vectors by inner product or L2 distance.", {"source": "faiss.md", "score": 0.875, "big": 2**40, "nested": {"a": [1, 2, {"b": None}], "ok": True}}),
    ("doc-dpr", "Dense passage retrieval encodes questions and passages with two BERT encoders.", {"source": "dpr.pdf", "span": (3, 9), "title": "Dense Passage Retrieval"}),
    ("doc-unicode", "Ærøskøbing ligger på Ærø — 東京 は 日本 の 首都 です.", {"source": "unicode.txt", "lang": ["da", "ja"], "empty": {}}),
    ("doc-noid", "A document saved by an older LangChain, whose Document.id is None.", {"source": "old.txt", "missing": None}),
    ("doc-pasta", "Cook pasta in plenty of salted boiling water.", {}),
]


def vector(i):
    # deterministic, unnormalised (norms differ), distinct directions
    return [round(math.sin(1.3 * (i + 1) * (j + 1)) * (1 + 0.25 * i), 6) for j in range(D)]


def jsonable(v):
    if isinstance(v, pathlib.PurePath):
        return str(v)
    if isinstance(v, tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    return v


def save_local_pickle(docstore, index_to_id, protocol=pickle.DEFAULT_PROTOCOL):
    return pickle.dumps((docstore, index_to_id), protocol=protocol)


def write(rel, data):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


# ---- python/index.pkl: current LangChain
docs = {doc_id: Document(text, meta, None if doc_id == "doc-noid" else doc_id) for doc_id, text, meta in CORPUS}
index_to_id = {i: doc_id for i, (doc_id, _, _) in enumerate(CORPUS)}
current = save_local_pickle(InMemoryDocstore(docs), index_to_id)
write("python/index.pkl", current)
back = pickle.loads(current)
assert back[1] == index_to_id and back[0]._dict["doc-dpr"].__dict__["metadata"]["span"] == (3, 9)
assert b"\x8f" in current, "protocol 4 writes __pydantic_fields_set__ with EMPTY_SET"

# ---- python-pydantic-v1/index.pkl: langchain < 0.1 (no ids on Documents, no pathlib)
v1_corpus = [(doc_id, text, jsonable(meta)) for doc_id, text, meta in CORPUS[:3]]
v1 = save_local_pickle(InMemoryDocstoreV1({doc_id: DocumentV1(text, meta) for doc_id, text, meta in v1_corpus}), {i: c[0] for i, c in enumerate(v1_corpus)})
write("python-pydantic-v1/index.pkl", v1)

# ---- hostile pickles, each checked to run its command under pickle.load
MARKER = "/tmp/langchain-dpr-fixture-pwned"  # a fixed path: the bytes do not depend on the checkout


class Shell:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def global_os_system():
    # protocol 2, GLOBAL 'os\nsystem' (the name as written by hand; Python itself would write posix)
    cmd = f"touch {MARKER}".encode()
    return b"\x80\x02" + b"cos\nsystem\n" + b"X" + len(cmd).to_bytes(4, "little") + cmd + b"\x85" + b"R" + b"."


def metadata_reduce():
    evil = {"doc-apple": Document("Apples.", {"source": "apple.txt", "x": Shell()}, "doc-apple")}
    return save_local_pickle(InMemoryDocstore(evil), {0: "doc-apple"})


def docstore_eval():
    class EvalDocstore:
        def __reduce__(self):
            return (eval, (f"__import__('os').system('touch {MARKER}')",))

    return save_local_pickle(EvalDocstore(), {0: "doc-apple"})


hostile = {"global-os-system.pkl": global_os_system(), "metadata-reduce.pkl": metadata_reduce(), "docstore-eval.pkl": docstore_eval()}
for name, data in hostile.items():
    if os.path.exists(MARKER):
        os.remove(MARKER)
    try:
        pickle.loads(data)
    except Exception:
        pass
    assert os.path.exists(MARKER), f"{name} did not run its command under pickle.load"
    os.remove(MARKER)
    write(f"hostile/{name}", data)

# BUILD on an allowed path object: pickle.load calls PosixPath.__setstate__ / sets __dict__ (refused or
# ignored by Python); the reader must refuse it. PROTO 4, STACK_GLOBAL pathlib.PosixPath, ('/x',), REDUCE,
# {'a': 1}, BUILD, then a valid-looking tail is not needed: the reader stops at BUILD.
build_on_path = (
    b"\x80\x04" + b"\x8c\x07pathlib" + b"\x8c\x09PosixPath" + b"\x93" + b"\x8c\x02/x" + b"\x85" + b"R"
    + b"}" + b"\x8c\x01a" + b"K\x01" + b"s" + b"b" + b"."
)
write("hostile/build-on-path.pkl", build_on_path)

corpus = {
    "dims": D,
    "documents": [{"id": doc_id, "page_content": text, "metadata": jsonable(meta)} for doc_id, text, meta in CORPUS],
    "vectors": [vector(i) for i in range(len(CORPUS))],
    "fixtures": {
        "python/index.pkl": {"count": len(CORPUS), "document_ids": {c[0]: (None if c[0] == "doc-noid" else c[0]) for c in CORPUS}},
        "python-pydantic-v1/index.pkl": {"count": len(v1_corpus)},
    },
    "protocol": pickle.DEFAULT_PROTOCOL,
    "python": sys.version.split()[0],
}
write("corpus.json", (json.dumps(corpus, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
print(f"wrote {OUT}: python/index.pkl ({len(current)} bytes), python-pydantic-v1/index.pkl ({len(v1)} bytes), hostile/*.pkl, corpus.json")

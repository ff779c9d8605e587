#!/usr/bin/python3
"""Writes test/fixtures/torch/: small checkpoints saved by real PyTorch (Debian's python3-torch), the
tensors they must load as, and hostile or damaged files, for test/models/torch-checkpoint.test.ts.

    /usr/bin/python3 scripts/gen-torch-fixtures.py [--out test/fixtures/torch]

Files (all tiny; the committed outputs are what CI reads, CI has no PyTorch):
  zip-fp32.pt / legacy-fp32.pt   a tiny BERT's model.state_dict() (an OrderedDict with _metadata, so
                                 BUILD; nn.Module names; the int64 position_ids buffer as
                                 transformers registers it), zip and legacy formats
  zip-fp16.pt, zip-bf16.pt, legacy-fp16.pt, legacy-bf16.pt
                                 the same model in half / bfloat16, plus 'extremes' (±0, ±inf, NaN,
                                 subnormals, max) to check the widening bit for bit
  zip64.pt                       zip-fp32.pt's entries rewritten by Python's zipfile with every ZIP64
                                 record forced, under another folder name ('my model.v2/'); torch.load
                                 reads it (checked here)
  tied.pt / tied-legacy.pt       two names on one storage (tied embeddings)
  views.pt / views-legacy.pt     a transposed view, an offset slice, a row, an int64 column, a stride-0 view
  params.pt                      nn.Parameter values (torch._utils._rebuild_parameter)
  nested.pt                      {"model": state_dict, "optimizer": {...}, "epoch": 3}
  nested-two.pt                  {"model": ..., "ema": ...}: two candidate state_dicts
  shards/                        pytorch_model.bin.index.json + two .bin shards
  shards-st/                     model.safetensors.index.json + two .safetensors shards (bytes written
                                 here: the format is trivial): F32, an F16 tensor and an I64 buffer
  unsupported-{float64,uint8,complex64}.pt   one tensor each of a dtype that is not read
  expanded.pt                    torch.zeros(1).expand(50_000_000): 200 MB of float32 from a 1 KB file
  big-endian.pt                  zip-fp32.pt with a byteorder entry 'big'
  short-storage.pt               zip-fp32.pt with one storage entry cut to half its bytes
  expected.json                  file -> tensor -> {dtype, shape, data}: data is base64 of the
                                 little-endian float32 values torch gives for t.float() (int64 for
                                 int64 tensors), so the test compares bit for bit
  v3-float32.pt, v3-float8.pt    hand-written torch >= 2.0 layout: UntypedStorage + _rebuild_tensor_v3
  evil-*.pt                      pickles that run a shell command under torch.load (checked here: each
                                 creates the marker file when torch loads it, which is then removed):
                                 evil-global.pt (GLOBAL os.system), evil-stack-global.pt (STACK_GLOBAL
                                 builtins.eval), evil-reduce.pt (an object whose __reduce__ is
                                 posix.system), evil-legacy.pt (legacy format, __builtin__.eval in the
                                 state_dict pickle); plus evil-call-storage.pt, REDUCE of an allowed name
                                 that is not callable (torch.FloatStorage), and evil-build.pt, BUILD on a
                                 tensor (torch.load refuses or ignores these; the reader must refuse them)
Legacy files name storages by memory address, so their bytes differ run to run; everything else is
byte-reproducible (seeded)."""
import argparse
import base64
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile

import torch
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "torch"))
args = parser.parse_args()
out = os.path.abspath(args.out)
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
torch.manual_seed(7)
MARKER = "/tmp/langchain-dpr-pickle-was-executed"
expected = {}


def path(name):
    return os.path.join(out, name)


def record(name, sd):
    entry = {}
    for k, t in sd.items():
        t = t.detach()
        if t.dtype == torch.int64:
            dt, raw = "int64", t.contiguous().numpy().astype("<i8").tobytes()
        else:
            dt = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}[t.dtype]
            # What the loader must give: the values widened to float32 exactly as torch widens them.
            raw = t.float().contiguous().numpy().astype("<f4").tobytes()
        entry[k] = {"dtype": dt, "shape": list(t.shape), "data": base64.b64encode(raw).decode()}
    expected[name] = entry


def module(**children):
    m = nn.Module()
    for k, v in children.items():
        setattr(m, k, v)
    return m


def tiny_bert(vocab=11, hidden=8, ffn=16, positions=16):
    emb = module(word_embeddings=nn.Embedding(vocab, hidden), position_embeddings=nn.Embedding(positions, hidden),
                 token_type_embeddings=nn.Embedding(2, hidden), LayerNorm=nn.LayerNorm(hidden))
    emb.register_buffer("position_ids", torch.arange(positions).expand((1, -1)))  # as transformers registers it
    attention = module(self=module(query=nn.Linear(hidden, hidden), key=nn.Linear(hidden, hidden), value=nn.Linear(hidden, hidden)),
                       output=module(dense=nn.Linear(hidden, hidden), LayerNorm=nn.LayerNorm(hidden)))
    layer = module(attention=attention, intermediate=module(dense=nn.Linear(hidden, ffn)),
                   output=module(dense=nn.Linear(ffn, hidden), LayerNorm=nn.LayerNorm(hidden)))
    bert = module(embeddings=emb, encoder=module(layer=nn.ModuleList([layer])), pooler=module(dense=nn.Linear(hidden, hidden)))
    with torch.no_grad():
        for name, p in bert.named_parameters():
            if "LayerNorm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return bert


bert = tiny_bert()
sd = bert.state_dict()
torch.save(sd, path("zip-fp32.pt"))
record("zip-fp32.pt", sd)
torch.save(sd, path("legacy-fp32.pt"), _use_new_zipfile_serialization=False)
record("legacy-fp32.pt", sd)

extremes = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 65504.0, -65504.0, 5.960464477539063e-08,
                         6.097555160522461e-05, 1e-40, 3.0e38, -1.5, 1 / 3])
for dtype, tag in [(torch.float16, "fp16"), (torch.bfloat16, "bf16")]:
    h = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}
    h["extremes"] = extremes.to(dtype)
    for fmt, zipped in [("zip", True), ("legacy", False)]:
        name = f"{fmt}-{tag}.pt"
        torch.save(h, path(name), _use_new_zipfile_serialization=zipped)
        record(name, h)


def stored(name):
    """A zip entry with a fixed timestamp, so the files are byte-reproducible."""
    return zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))


def rewrite_zip(src, dst, prefix=None, replace=None, add=None, force_zip64=False):
    """Copies a torch zip entry by entry (STORED) with Python's zipfile: another folder name, replaced or added entries, ZIP64."""
    saved = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    if force_zip64:  # every size and offset "exceeds" the limit: ZIP64 extra fields and end records throughout
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = -1, 0
    try:
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zout:
            for info in zin.infolist():
                data = zin.read(info.filename)
                base = info.filename.split("/", 1)[1]
                data = (replace or {}).get(base, lambda d: d)(data)
                zout.writestr(stored((prefix or info.filename.split("/", 1)[0]) + "/" + base), data)
            for base, data in (add or {}).items():
                zout.writestr(stored((prefix or zin.infolist()[0].filename.split("/", 1)[0]) + "/" + base), data)
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = saved


rewrite_zip(path("zip-fp32.pt"), path("zip64.pt"), prefix="my model.v2", force_zip64=True)
with open(path("zip64.pt"), "rb") as f:
    assert b"PK\x06\x06" in f.read()  # the ZIP64 end-of-directory record
z64 = torch.load(path("zip64.pt"))
assert all(torch.equal(z64[k], sd[k]) for k in sd)
record("zip64.pt", z64)
# torch 1.13 writes no byteorder entry (2.1 and later write 'little'): add one saying 'big'.
rewrite_zip(path("zip-fp32.pt"), path("big-endian.pt"), add={"byteorder": b"big"})
rewrite_zip(path("zip-fp32.pt"), path("short-storage.pt"), replace={"data/0": lambda d: d[: len(d) // 2]})

emb = torch.randn(6, 4)
tied = {"embeddings.word_embeddings.weight": emb, "cls.predictions.decoder.weight": emb}
for name, zipped in [("tied.pt", True), ("tied-legacy.pt", False)]:
    torch.save(tied, path(name), _use_new_zipfile_serialization=zipped)
    record(name, tied)

m = torch.randn(5, 7)
ints = torch.arange(24).reshape(4, 6) * 1_000_000_007  # values beyond 2^32
views = {
    "transposed": m.t(),  # strides (1, 7): non-contiguous
    "slice": m[2:4, 1:6],  # offset 15, strides (7, 1): non-contiguous rows
    "row": m[3],  # offset 21, contiguous
    "whole": m,
    "int_column": ints[:, 2],  # int64, offset 2, stride 6
    "broadcast": m[1, :3].unsqueeze(0).expand(4, 3),  # stride 0
}
for name, zipped in [("views.pt", True), ("views-legacy.pt", False)]:
    torch.save(views, path(name), _use_new_zipfile_serialization=zipped)
    record(name, views)

small = tiny_bert(vocab=5, hidden=4, ffn=4, positions=4)
params = {k: v for k, v in small.named_parameters() if k.startswith("embeddings.")}
assert all(isinstance(v, nn.Parameter) for v in params.values())
torch.save(params, path("params.pt"))
record("params.pt", params)

small_sd = small.state_dict()
optimizer = torch.optim.AdamW(small.parameters())
for p in small.parameters():
    p.grad = torch.ones_like(p)
optimizer.step()  # optimizer state: tensors keyed by parameter index (not a state_dict)
torch.save({"model": small_sd, "optimizer": optimizer.state_dict(), "epoch": 3, "args": {"lr": 1e-3}}, path("nested.pt"))
record("nested.pt", small_sd)
ema = {"a.weight": torch.randn(3, 2)}
torch.save({"model": {"a.weight": torch.randn(2, 2)}, "ema": ema}, path("nested-two.pt"))
record("nested-two.pt#ema", ema)

# A two-shard checkpoint, as save_pretrained(max_shard_size=...) writes it.
os.makedirs(path("shards"))
s1 = {"embeddings.word_embeddings.weight": torch.randn(5, 4), "embeddings.position_ids": torch.arange(4).unsqueeze(0)}
s2 = {"encoder.layer.0.output.dense.weight": torch.randn(4, 4), "encoder.layer.0.output.dense.bias": torch.randn(4)}
for i, s in [(1, s1), (2, s2)]:
    torch.save(s, path(f"shards/pytorch_model-0000{i}-of-00002.bin"))
index = {"metadata": {"total_size": 0}, "weight_map": {**{k: "pytorch_model-00001-of-00002.bin" for k in s1}, **{k: "pytorch_model-00002-of-00002.bin" for k in s2}}}
with open(path("shards/pytorch_model.bin.index.json"), "w") as f:
    json.dump(index, f, indent=2, sort_keys=True)
record("shards/pytorch_model.bin.index.json", {**s1, **s2})


def write_safetensors(file, tensors):
    codes = {torch.float32: ("F32", "<f4"), torch.float16: ("F16", "<f2"), torch.int64: ("I64", "<i8")}
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        code, np_dtype = codes[tensors[k].dtype]
        b = tensors[k].contiguous().numpy().astype(np_dtype).tobytes()
        header[k] = {"dtype": code, "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    with open(file, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


os.makedirs(path("shards-st"))
st2 = {**s2, "encoder.layer.0.output.dense.weight": s2["encoder.layer.0.output.dense.weight"].half()}
write_safetensors(path("shards-st/model-00001-of-00002.safetensors"), s1)
write_safetensors(path("shards-st/model-00002-of-00002.safetensors"), st2)
index_st = {"metadata": {"total_size": 0}, "weight_map": {**{k: "model-00001-of-00002.safetensors" for k in s1}, **{k: "model-00002-of-00002.safetensors" for k in st2}}}
with open(path("shards-st/model.safetensors.index.json"), "w") as f:
    json.dump(index_st, f, indent=2, sort_keys=True)
record("shards-st/model.safetensors.index.json", {**s1, **st2})

torch.save({"w": torch.randn(2, 2, dtype=torch.float64)}, path("unsupported-float64.pt"))
torch.save({"w": torch.arange(4, dtype=torch.uint8)}, path("unsupported-uint8.pt"))
torch.save({"w": torch.randn(2, dtype=torch.complex64)}, path("unsupported-complex64.pt"))
torch.save({"w": torch.zeros(1).expand(50_000_000)}, path("expanded.pt"))


def evil_zip(name, data_pkl):
    """A zip laid out as torch.save lays it out, with a hand-made data.pkl."""
    with zipfile.ZipFile(path(name), "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(stored("archive/data.pkl"), data_pkl)
        z.writestr(stored("archive/byteorder"), "little")
        z.writestr(stored("archive/version"), "3\n")


def binunicode(s):
    return b"X" + struct.pack("<I", len(s.encode())) + s.encode()


touch = "touch " + MARKER
evil_zip("evil-global.pt", b"\x80\x02cos\nsystem\nq\x00" + binunicode(touch) + b"\x85R.")
evil_zip("evil-stack-global.pt", b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93" + binunicode(f"__import__('os').system('{touch}')") + b"\x85R.")


class Evil:
    def __reduce__(self):
        return (os.system, (touch,))


evil_zip("evil-reduce.pt", pickle.dumps({"w": Evil()}, protocol=2))
# Legacy format: magic, protocol, sys_info as torch writes them, then a state_dict pickle calling eval.
with open(path("evil-legacy.pt"), "wb") as f:
    for v in [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}]:
        f.write(pickle.dumps(v, protocol=2))
    f.write(b"\x80\x02c__builtin__\neval\n" + binunicode(f"__import__('os').system('{touch}')") + b"\x85R.")
    f.write(pickle.dumps([], protocol=2))
# REDUCE of an allowed name that is not a callable of a state_dict; BUILD on a tensor.
evil_zip("evil-call-storage.pt", b"\x80\x02ctorch\nFloatStorage\n" + binunicode(touch) + b"\x85R.")
with zipfile.ZipFile(path("tied.pt")) as z:
    tied_pkl = z.read("tied/data.pkl")
# tied.pt's pickle ends '...R' (the last tensor) 'q..' (memo) 'u.' (SETITEMS, STOP): BUILD the tensor first.
cut = tied_pkl.rindex(b"u.")
evil_zip("evil-build.pt", tied_pkl[:cut] + b"}" + binunicode("__class__") + binunicode("x") + b"sb" + tied_pkl[cut:])

# torch >= 2.0 saves dtypes without a typed storage (float8, uint16, ...) as an UntypedStorage (bytes) and
# _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype). torch 1.13 cannot write
# (or load) that, so the pickle is written by hand: a float32 view at element offset 1, and a float8 one.
def v3_zip(name, dtype):
    pkl = (b"\x80\x02}(" + binunicode("f") + b"ctorch._utils\n_rebuild_tensor_v3\n("
           + b"(" + binunicode("storage") + b"ctorch\nUntypedStorage\n" + binunicode("0") + binunicode("cpu") + b"K\x10tQ"
           + b"K\x01K\x03\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rctorch\n" + dtype.encode() + b"\ntRu.")
    with zipfile.ZipFile(path(name), "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(stored("v3/data.pkl"), pkl)
        z.writestr(stored("v3/data/0"), struct.pack("<4f", 1.5, 2.5, 3.5, 4.5))
        z.writestr(stored("v3/byteorder"), "little")


v3_zip("v3-float32.pt", "float32")
record("v3-float32.pt", {"f": torch.tensor([2.5, 3.5, 4.5])})
v3_zip("v3-float8.pt", "float8_e4m3fn")

# Each file that would run the command does run it under torch.load (so the reader's refusal matters).
for name in ["evil-global.pt", "evil-stack-global.pt", "evil-reduce.pt", "evil-legacy.pt"]:
    if os.path.exists(MARKER):
        os.remove(MARKER)
    code = "import sys, torch\ntry:\n    torch.load(sys.argv[1], weights_only=False)\nexcept Exception:\n    pass\n"
    subprocess.run([sys.executable, "-c", code, path(name)], check=True, capture_output=True)
    assert os.path.exists(MARKER), f"torch.load({name}) did not run the command"
    os.remove(MARKER)

with open(path("expected.json"), "w") as f:
    json.dump(expected, f, sort_keys=True, indent=0)
print("wrote", out, sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out) for fn in fns), "bytes")

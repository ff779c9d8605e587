#!/usr/bin/python3
"""Writes test/fixtures/torch/: small checkpoints saved by real PyTorch (Debian's python3-torch), the
tensors they must load as, and hostile files, for test/models/torch-checkpoint.test.ts.

    /usr/bin/python3 scripts/gen-torch-fixtures.py [--out test/fixtures/torch]

Files (all tiny; the committed outputs are what CI reads, CI has no PyTorch):
  zip-fp32.pt / legacy-fp32.pt        one state_dict (fp32 + an int64 buffer), zip and legacy formats
  zip-fp16.pt / zip-bf16.pt           the same weights in half and bfloat16
  tied.pt                             two names on one storage (tied embeddings)
  views.pt                            a transposed view, a slice at an offset, a view sharing a storage
  nested.pt                           {"state_dict": ...} as training scripts save it
  shards/pytorch_model.bin.index.json + two .bin shards;  shards-st/model.safetensors.index.json + two
                                      .safetensors shards (bytes written here: the format is trivial)
  expected.json                       name -> {dtype, shape, values as float32 (ints as decimal strings)}
                                      for every tensor of every file above, from PyTorch itself
  evil-global.pt                      zip checkpoint whose data.pkl names os.system via GLOBAL
  evil-stack-global.pt                ... names builtins.eval via STACK_GLOBAL (protocol 4)
  evil-reduce.pt                      ... REDUCEs posix.system (would create a marker file)
  unsupported-dtype.pt                a float64 tensor
Legacy files name storages by memory address, so their bytes differ run to run; everything else is
byte-reproducible (seeded)."""
import argparse
import io
import json
import os
import pickle
import shutil
import struct
import zipfile

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "torch"))
args = parser.parse_args()
out = os.path.abspath(args.out)
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
torch.manual_seed(7)

expected = {}


def record(name, sd):
    entry = {}
    for k, t in sd.items():
        if t.dtype == torch.int64:
            entry[k] = {"dtype": "int64", "shape": list(t.shape), "values": [str(int(v)) for v in t.reshape(-1).tolist()]}
        else:
            dt = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}[t.dtype]
            # What the loader must give: the values widened to float32 exactly as torch widens them.
            entry[k] = {"dtype": dt, "shape": list(t.shape), "values": t.float().reshape(-1).tolist()}
    expected[name] = entry


def base_state():
    sd = {
        "embeddings.word_embeddings.weight": torch.randn(11, 8),
        "embeddings.LayerNorm.weight": torch.ones(8) + 0.1 * torch.randn(8),
        "encoder.layer.0.attention.self.query.weight": torch.randn(8, 8) * 0.2,
        "encoder.layer.0.attention.self.query.bias": torch.randn(8) * 0.01,
        "embeddings.position_ids": torch.arange(16).unsqueeze(0),
    }
    return sd


sd = base_state()
torch.save(sd, os.path.join(out, "zip-fp32.pt"))
record("zip-fp32.pt", sd)
torch.save(sd, os.path.join(out, "legacy-fp32.pt"), _use_new_zipfile_serialization=False)
record("legacy-fp32.pt", sd)

for dtype, name in [(torch.float16, "zip-fp16.pt"), (torch.bfloat16, "zip-bf16.pt")]:
    h = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}
    torch.save(h, os.path.join(out, name))
    record(name, h)

emb = torch.randn(6, 4)
tied = {"embeddings.word_embeddings.weight": emb, "cls.predictions.decoder.weight": emb}
torch.save(tied, os.path.join(out, "tied.pt"))
record("tied.pt", tied)
torch.save(tied, os.path.join(out, "tied-legacy.pt"), _use_new_zipfile_serialization=False)
record("tied-legacy.pt", tied)

m = torch.randn(5, 7)
views = {
    "transposed": m.t(),  # strides (1, 7): non-contiguous
    "slice": m[2:4, 1:6],  # offset 15, strides (7, 1): non-contiguous rows
    "row": m[3],  # offset 21, contiguous
    "whole": m,
}
torch.save(views, os.path.join(out, "views.pt"))
record("views.pt", views)
torch.save(views, os.path.join(out, "views-legacy.pt"), _use_new_zipfile_serialization=False)
record("views-legacy.pt", views)

nested = {"state_dict": {"a.weight": torch.randn(3, 2)}, "epoch": 3}
torch.save(nested, os.path.join(out, "nested.pt"))
record("nested.pt", nested["state_dict"])

# A two-shard checkpoint, as save_pretrained(max_shard_size=...) writes it.
os.makedirs(os.path.join(out, "shards"))
s1 = {"embeddings.word_embeddings.weight": torch.randn(5, 4)}
s2 = {"encoder.layer.0.output.dense.weight": torch.randn(4, 4), "encoder.layer.0.output.dense.bias": torch.randn(4)}
torch.save(s1, os.path.join(out, "shards", "pytorch_model-00001-of-00002.bin"))
torch.save(s2, os.path.join(out, "shards", "pytorch_model-00002-of-00002.bin"))
index = {"metadata": {"total_size": 0}, "weight_map": {**{k: "pytorch_model-00001-of-00002.bin" for k in s1}, **{k: "pytorch_model-00002-of-00002.bin" for k in s2}}}
with open(os.path.join(out, "shards", "pytorch_model.bin.index.json"), "w") as f:
    json.dump(index, f, indent=2, sort_keys=True)
record("shards/pytorch_model.bin.index.json", {**s1, **s2})


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        b = tensors[k].contiguous().numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


os.makedirs(os.path.join(out, "shards-st"))
write_safetensors(os.path.join(out, "shards-st", "model-00001-of-00002.safetensors"), s1)
write_safetensors(os.path.join(out, "shards-st", "model-00002-of-00002.safetensors"), s2)
index_st = {"metadata": {"total_size": 0}, "weight_map": {**{k: "model-00001-of-00002.safetensors" for k in s1}, **{k: "model-00002-of-00002.safetensors" for k in s2}}}
with open(os.path.join(out, "shards-st", "model.safetensors.index.json"), "w") as f:
    json.dump(index_st, f, indent=2, sort_keys=True)
record("shards-st/model.safetensors.index.json", {**s1, **s2})

torch.save({"w": torch.randn(2, 2, dtype=torch.float64)}, os.path.join(out, "unsupported-dtype.pt"))


def evil_zip(name, data_pkl):
    """A zip laid out as torch.save lays it out, with a hand-made data.pkl."""
    with zipfile.ZipFile(os.path.join(out, name), "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")


marker = "/tmp/langchain-dpr-pickle-was-executed"
# GLOBAL os.system, called with a shell command that would create the marker file.
evil_zip("evil-global.pt", b"\x80\x02cos\nsystem\nq\x00X" + struct.pack("<I", len("touch " + marker)) + ("touch " + marker).encode() + b"\x85R.")
# STACK_GLOBAL builtins.eval (protocol 4 style).
payload = "__import__('os').system('touch %s')" % marker
evil_zip(
    "evil-stack-global.pt",
    b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93X" + struct.pack("<I", len(payload)) + payload.encode() + b"\x85R.",
)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + marker,))


buf = io.BytesIO()
pickle.Pickler(buf, protocol=2).dump({"w": Evil()})
evil_zip("evil-reduce.pt", buf.getvalue())

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f, sort_keys=True)
print("wrote", out, sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out) for fn in fns), "bytes")

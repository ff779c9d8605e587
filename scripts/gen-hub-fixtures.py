#!/usr/bin/env python3
"""Generates test/fixtures/hub/: tiny random-weight copies of public Hugging Face repositories
(file names and config keys as the real repositories publish them) plus the outputs their
authors' libraries (transformers DPR, sentence-transformers, CrossEncoder) would give,
computed by an independent float64 BERT forward pass written here in plain torch.

    /usr/bin/python3 scripts/gen-hub-fixtures.py [--out DIR]

Needs only python3 and torch (Debian: `apt-get install -y python3-torch`; no transformers,
tokenizers, safetensors or sentence-transformers package). Seeded: running it twice gives
byte-identical files (checked with --check, which regenerates into two temporary folders,
compares them with each other and with DIR, and reloads every weight file).

Layout (DIR defaults to test/fixtures/hub next to this script's repository root):
    DIR/<owner>--<name>/...              one folder per repository (served by the test hub)
    DIR/expected/<owner>--<name>.json    expected vectors / scores (outside the repo folders)
    DIR/README.md                        what each folder mirrors and what was left out
"""

import argparse
import collections
import filecmp
import json
import math
import os
import pickle
import shutil
import struct
import sys
import tempfile
import zipfile

try:
    import torch
except ImportError:  # pragma: no cover
    sys.exit("gen-hub-fixtures.py needs PyTorch: apt-get install -y python3-torch, then run it with /usr/bin/python3")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "test", "fixtures", "hub")

# --------------------------------------------------------------------------------------------
# Shapes (tiny), vocabulary and texts
# --------------------------------------------------------------------------------------------

HIDDEN = 32
LAYERS = 2
HEADS = 4
INTERMEDIATE = 64
POSITIONS = 64
TYPE_VOCAB = 2
LN_EPS = 1e-12

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PUNCT = [".", ":"]
WORDS = sorted(
    set(
        """
        a and antibodies blood body bone brain by cancer cannot caused causes cells children chronic
        control cough diabetes diet disease does dose drug exercise faster fever fight for gene heart
        high how immune in includes infection insulin is kidney liver low lowers lungs often pain
        passage patients protein query respond risk skin sleep stress study sugar symptoms system the
        therapy to train treatment trial uses vaccines viral virus vitamin water what which white
        with young
        """.split()
    )
)
VOCAB = SPECIALS + PUNCT + WORDS
TOKEN_ID = {t: i for i, t in enumerate(VOCAB)}
assert len(TOKEN_ID) == len(VOCAB) == 82  # README.md says 82
PAD, UNK, CLS, SEP, MASK = range(5)

# Three queries and four passages of different lengths (padding matters in a batch). Only
# vocabulary words and the punctuation "." and ":", some capitalised (the BERT normalizer
# lowercases), so WordPiece equals whole-word lookup.
QUERIES = [
    "What causes fever in children",
    "Insulin treatment for diabetes",
    "How does the immune system fight a viral infection in the lungs",
]
PASSAGES = [
    "Fever in young children is often caused by a viral infection.",
    "Insulin lowers blood sugar.",
    "The immune system uses antibodies and white blood cells to fight infection. "
    "Vaccines train the immune system to respond faster.",
    "Diabetes: a chronic disease in which the body cannot control blood sugar. "
    "Treatment includes insulin and diet and exercise.",
]
E5_QUERY_PREFIX = "query: "
E5_PASSAGE_PREFIX = "passage: "


def words(text):
    """BERT basic tokenisation restricted to this vocabulary: lowercase, whitespace split,
    '.' and ':' split off as tokens of their own."""
    text = text.lower()
    for p in PUNCT:
        text = text.replace(p, f" {p} ")
    out = []
    for w in text.split():
        if w not in TOKEN_ID:
            raise ValueError(f"{w!r} (from {text!r}) is not in the fixture vocabulary")
        out.append(w)
    return out


def encode(text, pair=None):
    """[CLS] a [SEP] (b [SEP]) -> (input_ids, token_type_ids)."""
    ids = [CLS] + [TOKEN_ID[w] for w in words(text)] + [SEP]
    types = [0] * len(ids)
    if pair is not None:
        b = [TOKEN_ID[w] for w in words(pair)] + [SEP]
        ids += b
        types += [1] * len(b)
    assert len(ids) <= POSITIONS
    return ids, types


def batch(encoded):
    """Right-pads a list of (ids, types) with [PAD] -> int64 tensors ids, types, mask."""
    t = max(len(ids) for ids, _ in encoded)
    ids = torch.zeros(len(encoded), t, dtype=torch.int64)
    types = torch.zeros(len(encoded), t, dtype=torch.int64)
    mask = torch.zeros(len(encoded), t, dtype=torch.int64)
    for i, (a, b) in enumerate(encoded):
        ids[i, : len(a)] = torch.tensor(a)
        types[i, : len(b)] = torch.tensor(b)
        mask[i, : len(a)] = 1
    return ids, types, mask


# --------------------------------------------------------------------------------------------
# Random weights (transformers BertModel names) and the float64 reference forward pass
# --------------------------------------------------------------------------------------------


def bert_weights(seed, pooler=True, position_ids=True, num_labels=None):
    """BertModel state dict (no prefix) with tiny random float32 weights. Scales are large
    enough that attention, GELU and LayerNorm all matter (a wrong GELU variant or mask shows)."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, std=1.0, mean=0.0):
        # Rounded to multiples of 1/256: exact in float32 (and float16), and the files compress
        # well in git (the low mantissa bytes are zero).
        x = torch.randn(*shape, generator=g, dtype=torch.float32) * std + mean
        return (torch.round(x * 256.0) / 256.0).contiguous()

    def linear(name, n_out, n_in, gain=1.0):
        sd[f"{name}.weight"] = randn(n_out, n_in, std=gain / math.sqrt(n_in))
        sd[f"{name}.bias"] = randn(n_out, std=0.1)

    def layer_norm(name):
        sd[f"{name}.weight"] = randn(HIDDEN, std=0.1, mean=1.0)
        sd[f"{name}.bias"] = randn(HIDDEN, std=0.1)

    sd = {}
    sd["embeddings.word_embeddings.weight"] = randn(len(VOCAB), HIDDEN, std=0.5)
    sd["embeddings.position_embeddings.weight"] = randn(POSITIONS, HIDDEN, std=0.3)
    sd["embeddings.token_type_embeddings.weight"] = randn(TYPE_VOCAB, HIDDEN, std=0.3)
    layer_norm("embeddings.LayerNorm")
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        linear(f"{p}.attention.self.query", HIDDEN, HIDDEN, gain=2.0)
        linear(f"{p}.attention.self.key", HIDDEN, HIDDEN, gain=2.0)
        linear(f"{p}.attention.self.value", HIDDEN, HIDDEN)
        linear(f"{p}.attention.output.dense", HIDDEN, HIDDEN)
        layer_norm(f"{p}.attention.output.LayerNorm")
        linear(f"{p}.intermediate.dense", INTERMEDIATE, HIDDEN, gain=1.5)
        linear(f"{p}.output.dense", HIDDEN, INTERMEDIATE)
        layer_norm(f"{p}.output.LayerNorm")
    if pooler:
        linear("pooler.dense", HIDDEN, HIDDEN, gain=1.5)
    if position_ids:
        # transformers < 4.31 saved this buffer (persistent) in every BERT checkpoint.
        sd["embeddings.position_ids"] = torch.arange(POSITIONS, dtype=torch.int64).unsqueeze(0)
    if num_labels is not None:
        sd["classifier.weight"] = randn(num_labels, HIDDEN, std=1.0 / math.sqrt(HIDDEN))
        sd["classifier.bias"] = randn(num_labels, std=0.1)
    return sd


def gelu(x):
    """Exact (erf) GELU, transformers' "gelu"."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def layer_norm(x, w, b):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + LN_EPS) * w + b


def bert_forward(sd, ids, types, mask):
    """float64 BERT forward. sd: unprefixed BertModel weights. Returns (hidden [B,T,H],
    pooler_output [B,H] or None, logits [B,L] or None)."""
    w = {k: v.to(torch.float64) for k, v in sd.items() if v.is_floating_point()}

    def lin(x, name):
        return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    bsz, t = ids.shape
    pos = torch.arange(t)
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][pos][None]
        + w["embeddings.token_type_embeddings.weight"][types]
    )
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    additive = (1.0 - mask.to(torch.float64))[:, None, None, :] * -10000.0
    dh = HIDDEN // HEADS
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"

        def heads(y):
            return y.view(bsz, t, HEADS, dh).transpose(1, 2)

        q = heads(lin(x, f"{p}.attention.self.query"))
        k = heads(lin(x, f"{p}.attention.self.key"))
        v = heads(lin(x, f"{p}.attention.self.value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh) + additive
        probs = torch.softmax(scores, dim=-1)
        ctx = (probs @ v).transpose(1, 2).reshape(bsz, t, HIDDEN)
        a = layer_norm(
            lin(ctx, f"{p}.attention.output.dense") + x,
            w[f"{p}.attention.output.LayerNorm.weight"],
            w[f"{p}.attention.output.LayerNorm.bias"],
        )
        h = gelu(lin(a, f"{p}.intermediate.dense"))
        x = layer_norm(lin(h, f"{p}.output.dense") + a, w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"])
    pooled = torch.tanh(lin(x[:, 0], "pooler.dense")) if "pooler.dense.weight" in w else None
    logits = lin(pooled, "classifier") if "classifier.weight" in w else None
    return x, pooled, logits


def self_check_forward(sd):
    """Checks bert_forward's encoder layers against torch.nn.TransformerEncoderLayer (post-LN,
    erf GELU), an implementation that shares nothing with the code above."""
    ids, types, mask = batch([encode(t) for t in QUERIES + PASSAGES])
    w = {k: v.to(torch.float64) for k, v in sd.items() if v.is_floating_point()}
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][torch.arange(ids.shape[1])][None]
        + w["embeddings.token_type_embeddings.weight"][types]
    )
    x = torch.nn.functional.layer_norm(x, (HIDDEN,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], LN_EPS)
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        layer = torch.nn.TransformerEncoderLayer(
            HIDDEN, HEADS, INTERMEDIATE, dropout=0.0, activation="gelu", layer_norm_eps=LN_EPS, batch_first=True
        ).to(torch.float64)
        layer.eval()
        with torch.no_grad():
            layer.self_attn.in_proj_weight.copy_(torch.cat([w[f"{p}.attention.self.{n}.weight"] for n in ("query", "key", "value")]))
            layer.self_attn.in_proj_bias.copy_(torch.cat([w[f"{p}.attention.self.{n}.bias"] for n in ("query", "key", "value")]))
            for dst, src in (
                (layer.self_attn.out_proj, "attention.output.dense"),
                (layer.linear1, "intermediate.dense"),
                (layer.linear2, "output.dense"),
                (layer.norm1, "attention.output.LayerNorm"),
                (layer.norm2, "output.LayerNorm"),
            ):
                dst.weight.copy_(w[f"{p}.{src}.weight"])
                dst.bias.copy_(w[f"{p}.{src}.bias"])
            x = layer(x, src_key_padding_mask=mask == 0)
    ours, _, _ = bert_forward(sd, ids, types, mask)
    m = mask.bool()
    diff = (ours[m] - x[m]).abs().max().item()
    if diff > 1e-9:
        raise AssertionError(f"reference BERT disagrees with nn.TransformerEncoderLayer: max |diff| {diff}")


# --------------------------------------------------------------------------------------------
# Encoders as their libraries define them
# --------------------------------------------------------------------------------------------


def embed(sd, texts, pooling, normalize):
    """sentence-transformers Transformer -> Pooling -> (Normalize), or DPR ("cls", no norm).
    Also checks that batched (padded) and one-by-one results agree."""
    enc = [encode(t) for t in texts]
    ids, types, mask = batch(enc)
    hidden, _, _ = bert_forward(sd, ids, types, mask)
    if pooling == "cls":
        vec = hidden[:, 0]
    elif pooling == "mean":
        m = mask.to(torch.float64).unsqueeze(-1)
        vec = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    else:
        raise ValueError(pooling)
    if normalize:
        vec = torch.nn.functional.normalize(vec, p=2, dim=1)
    for i, (a, b) in enumerate(enc):
        one = embed(sd, [texts[i]], pooling, normalize)[0] if len(texts) > 1 else None
        if one is not None and (one[0] - vec[i]).abs().max().item() > 1e-10:
            raise AssertionError(f"padding changed the vector of {texts[i]!r}")
    return vec, [a for a, _ in enc]


def cross_scores(sd, pairs):
    enc = [encode(q, p) for q, p in pairs]
    ids, types, mask = batch(enc)
    _, _, logits = bert_forward(sd, ids, types, mask)
    return logits, enc


# --------------------------------------------------------------------------------------------
# File writers
# --------------------------------------------------------------------------------------------


def write_bytes(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def write_json(path, obj, sort_keys=False, indent=2):
    write_bytes(path, (json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=False) + "\n").encode())


def write_expected(path, obj):
    """JSON with one top-level key per line and one row per line for lists of lists."""

    def dump(v):
        return json.dumps(v, ensure_ascii=False)

    lines = []
    for k, v in obj.items():
        if isinstance(v, list) and v and all(isinstance(r, list) for r in v):
            body = "[\n" + ",\n".join("    " + dump(r) for r in v) + "\n  ]"
        else:
            body = dump(v)
        lines.append(f"  {dump(k)}: {body}")
    write_text(path, "{\n" + ",\n".join(lines) + "\n}\n")


def write_text(path, text):
    write_bytes(path, text.encode())


SAFETENSORS_DTYPE = {torch.float32: "F32", torch.int64: "I64"}


def write_safetensors(path, sd):
    """safetensors by hand: u64 little-endian header size, JSON header (padded with spaces to a
    multiple of 8), then the tensors' little-endian bytes. Data sorted by alignment, then name,
    as the safetensors library lays it out."""
    names = sorted(sd, key=lambda n: (-sd[n].element_size(), n))
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for n in names:
        t = sd[n].contiguous()
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[n] = {"dtype": SAFETENSORS_DTYPE[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    write_bytes(path, struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, e in header.items():
        dtype = {"F32": torch.float32, "I64": torch.int64}[e["dtype"]]
        b, end = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[base + b : base + end]), dtype=dtype).reshape(e["shape"])
    return out


def write_torch_bin(path, sd, legacy=False):
    """pytorch_model.bin of an OrderedDict state dict (as model.state_dict() is): the zip format
    of torch.save, or the legacy (pre-1.6, non-zip) format the 2020 DPR files use."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sd = collections.OrderedDict(sd)
    if legacy:
        write_legacy_torch(path, sd)
    else:
        torch.save(sd, path)


def write_legacy_torch(path, obj):
    """What torch.save(obj, f, _use_new_zipfile_serialization=False) writes, byte for byte,
    except for the storage keys: torch uses str(storage._cdata), a memory address that changes
    from run to run; here they are address-like numbers in order of first use, so the file is
    reproducible. Layout: pickles of the magic number, the protocol version and sys_info; the
    object pickle, whose tensors refer to storages by persistent id ('storage', <torch
    XStorage>, key, location, numel, None); the pickled sorted key list; then for each key an
    int64 element count followed by the raw little-endian data."""
    storages = {}

    class Pickler(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, torch.storage.TypedStorage):
                ptr = o._storage.data_ptr()
                if ptr not in storages:
                    storages[ptr] = (str(94_000_000_000_000 + 4096 * len(storages)), o)
                key, _ = storages[ptr]
                return ("storage", getattr(torch, o.pickle_storage_type()), key, "cpu", o.size(), None)
            return None

    sys_info = dict(
        protocol_version=1001,
        little_endian=True,
        type_sizes=dict(short=struct.calcsize("=h"), int=struct.calcsize("=i"), long=struct.calcsize("=l")),
    )
    with open(path, "wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump(sys_info, f, protocol=2)
        Pickler(f, protocol=2).dump(obj)
        entries = sorted(storages.values(), key=lambda e: e[0])
        pickle.dump([k for k, _ in entries], f, protocol=2)
        for _, st in entries:
            t = torch.tensor([], dtype=st.dtype).set_(st)
            f.write(struct.pack("<q", st.size()))
            f.write(t.numpy().tobytes())


def prefixed(sd, prefix):
    return {prefix + k: v for k, v in sd.items()}


def bert_config(architectures, model_type="bert", **extra):
    """config.json keys as transformers' BertConfig / DPRConfig write them (sorted, indent 2)."""
    cfg = {
        "architectures": architectures,
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE,
        "layer_norm_eps": LN_EPS,
        "max_position_embeddings": POSITIONS,
        "model_type": model_type,
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "type_vocab_size": TYPE_VOCAB,
        "vocab_size": len(VOCAB),
    }
    cfg.update(extra)
    return cfg


SPECIAL_TOKENS_MAP = {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]", "unk_token": "[UNK]"}


def bert_tokenizer_config(model_max_length=512, added_tokens_decoder=False, tokenizer_class=True):
    """tokenizer_config.json as transformers' BertTokenizer(Fast).save_pretrained writes it."""
    cfg = {}
    if added_tokens_decoder:  # transformers >= 4.34
        cfg["added_tokens_decoder"] = {
            str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True}
            for i, t in enumerate(SPECIALS)
        }
    cfg.update(
        {
            "clean_up_tokenization_spaces": True,
            "cls_token": "[CLS]",
            "do_basic_tokenize": True,
            "do_lower_case": True,
            "mask_token": "[MASK]",
            "model_max_length": model_max_length,
            "never_split": None,
            "pad_token": "[PAD]",
            "sep_token": "[SEP]",
            "strip_accents": None,
            "tokenize_chinese_chars": True,
        }
    )
    if tokenizer_class:
        cfg["tokenizer_class"] = "BertTokenizer"
    cfg["unk_token"] = "[UNK]"
    return cfg


def tokenizer_json(truncation=None, padding=None):
    """Hugging Face tokenizers JSON of a BERT uncased WordPiece tokenizer (BertTokenizerFast)."""

    def special(i):
        return {"id": i, "content": VOCAB[i], "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}

    def tok(kind, name, type_id):
        return {kind: {"id": name, "type_id": type_id}}

    return {
        "version": "1.0",
        "truncation": truncation,
        "padding": padding,
        "added_tokens": [special(i) for i in range(len(SPECIALS))],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tok("SpecialToken", "[CLS]", 0), tok("Sequence", "A", 0), tok("SpecialToken", "[SEP]", 0)],
            "pair": [
                tok("SpecialToken", "[CLS]", 0),
                tok("Sequence", "A", 0),
                tok("SpecialToken", "[SEP]", 0),
                tok("Sequence", "B", 1),
                tok("SpecialToken", "[SEP]", 1),
            ],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [CLS], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [SEP], "tokens": ["[SEP]"]},
            },
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {
            "type": "WordPiece",
            "unk_token": "[UNK]",
            "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100,
            "vocab": {t: i for i, t in enumerate(VOCAB)},
        },
    }


TRUNCATION_512 = {"direction": "Right", "max_length": 512, "strategy": "LongestFirst", "stride": 0}
PADDING_BATCH_LONGEST = {
    "strategy": "BatchLongest",
    "direction": "Right",
    "pad_to_multiple_of": None,
    "pad_id": 0,
    "pad_type_id": 0,
    "pad_token": "[PAD]",
}


def write_vocab(d):
    write_text(os.path.join(d, "vocab.txt"), "".join(t + "\n" for t in VOCAB))


def write_tokenizer_files(d, with_json=True, truncation=None, padding=None, **cfg):
    write_vocab(d)
    write_json(os.path.join(d, "tokenizer_config.json"), bert_tokenizer_config(**cfg))
    write_json(os.path.join(d, "special_tokens_map.json"), SPECIAL_TOKENS_MAP)
    if with_json:
        write_json(os.path.join(d, "tokenizer.json"), tokenizer_json(truncation, padding))


def modules_json(normalize):
    mods = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        mods.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    return mods


def pooling_config(mode, newer=False):
    cfg = {
        "word_embedding_dimension": HIDDEN,
        "pooling_mode_cls_token": mode == "cls",
        "pooling_mode_mean_tokens": mode == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    if newer:  # sentence-transformers >= 2.3 adds these
        cfg.update({"pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True})
    return cfg


def model_card(repo, note):
    return (
        f"# Test fixture mirroring `{repo}`\n\n"
        f"Tiny random weights (hidden {HIDDEN}, {LAYERS} layers) and generated configs laid out with the file names of "
        f"the real Hugging Face repository `{repo}`. Not the real model. {note}\n"
        "Generated by scripts/gen-hub-fixtures.py; see test/fixtures/hub/README.md.\n"
    )


def vectors(t):
    return [[float(x) for x in row] for row in t.tolist()]


# --------------------------------------------------------------------------------------------
# The repositories
# --------------------------------------------------------------------------------------------

REPOS = [
    "facebook/dpr-question_encoder-single-nq-base",
    "facebook/dpr-ctx_encoder-single-nq-base",
    "BAAI/bge-small-en-v1.5",
    "intfloat/e5-small-v2",
    "sentence-transformers/msmarco-bert-base-dot-v5",
    "cross-encoder/ms-marco-MiniLM-L-6-v2",
    "test-org/two-label-cross-encoder",
]
SEED_BASE = 20240611


def folder(repo):
    return repo.replace("/", "--")


def embedding_expected(repo, sd, pooling, normalize, queries, passages, qp="", pp=""):
    out = {"repo": repo, "queries": queries, "passages": passages}
    qv, qids = embed(sd, [qp + q for q in queries], pooling, normalize) if queries else (torch.zeros(0, HIDDEN), [])
    pv, pids = embed(sd, [pp + p for p in passages], pooling, normalize) if passages else (torch.zeros(0, HIDDEN), [])
    out.update(
        {
            "query_prefix": qp,
            "passage_prefix": pp,
            "pooling": pooling,
            "normalize": normalize,
            "dim": HIDDEN,
            "query_input_ids": qids,
            "passage_input_ids": pids,
            "query_vectors": vectors(qv),
            "passage_vectors": vectors(pv),
        }
    )
    return out


def cross_expected(repo, sd, label_index):
    pairs = [[q, p] for q in QUERIES for p in PASSAGES]
    logits, enc = cross_scores(sd, pairs)
    n = logits.shape[1]
    probs = torch.sigmoid(logits[:, 0]) if n == 1 else torch.softmax(logits, dim=-1)[:, label_index]
    return {
        "repo": repo,
        "pairs": pairs,
        "num_labels": n,
        "label_index": label_index,
        "input_ids": [a for a, _ in enc],
        "token_type_ids": [b for _, b in enc],
        "logits": vectors(logits),
        "scores": [float(x) for x in logits[:, label_index].tolist()],
        "probabilities": [float(x) for x in probs.tolist()],
    }


def generate(out):
    os.makedirs(out, exist_ok=True)
    for repo in REPOS:
        d = os.path.join(out, folder(repo))
        if os.path.isdir(d):
            shutil.rmtree(d)
    exp_dir = os.path.join(out, "expected")
    if os.path.isdir(exp_dir):
        shutil.rmtree(exp_dir)

    seeds = {repo: SEED_BASE + i for i, repo in enumerate(REPOS)}
    checked = False

    # 1, 2: DPR (transformers DPRQuestionEncoder / DPRContextEncoder, legacy torch pickle)
    for repo, arch, prefix, side in (
        (REPOS[0], "DPRQuestionEncoder", "question_encoder.bert_model.", "query"),
        (REPOS[1], "DPRContextEncoder", "ctx_encoder.bert_model.", "passage"),
    ):
        d = os.path.join(out, folder(repo))
        sd = bert_weights(seeds[repo], pooler=True, position_ids=True)
        if not checked:
            self_check_forward(sd)
            checked = True
        write_json(
            os.path.join(d, "config.json"),
            bert_config([arch], model_type="dpr", gradient_checkpointing=False, projection_dim=0),
            sort_keys=True,
        )
        write_torch_bin(os.path.join(d, "pytorch_model.bin"), prefixed(sd, prefix), legacy=True)
        write_vocab(d)
        write_json(os.path.join(d, "tokenizer_config.json"), {"do_lower_case": True})
        write_text(os.path.join(d, "tf_model.h5"), "stub: not HDF5; a DPR loader must never download this file\n")
        write_text(os.path.join(d, "README.md"), model_card(repo, "tf_model.h5 is a stub."))
        q, p = (QUERIES, []) if side == "query" else ([], PASSAGES)
        # DPR pooler_output with projection_dim 0 is the [CLS] hidden state, not normalised.
        write_expected(os.path.join(exp_dir, folder(repo) + ".json"), embedding_expected(repo, sd, "cls", False, q, p))

    # 3: BAAI/bge-small-en-v1.5 (CLS pooling + Normalize)
    repo = REPOS[2]
    d = os.path.join(out, folder(repo))
    sd = bert_weights(seeds[repo], pooler=True, position_ids=True)
    write_json(
        os.path.join(d, "config.json"),
        bert_config(
            ["BertModel"],
            classifier_dropout=None,
            id2label={"0": "LABEL_0"},
            label2id={"LABEL_0": 0},
            torch_dtype="float32",
            transformers_version="4.30.0",
            use_cache=True,
        ),
        sort_keys=True,
    )
    write_safetensors(os.path.join(d, "model.safetensors"), sd)
    write_torch_bin(os.path.join(d, "pytorch_model.bin"), sd)
    write_json(os.path.join(d, "modules.json"), modules_json(normalize=True))
    write_json(os.path.join(d, "1_Pooling", "config.json"), pooling_config("cls"))
    write_json(os.path.join(d, "sentence_bert_config.json"), {"max_seq_length": 512, "do_lower_case": True})
    write_json(
        os.path.join(d, "config_sentence_transformers.json"),
        {"__version__": {"sentence_transformers": "2.2.2", "transformers": "4.28.1", "pytorch": "1.13.0+cu117"}},
    )
    write_tokenizer_files(d, truncation=TRUNCATION_512, padding=PADDING_BATCH_LONGEST)
    write_text(os.path.join(d, "README.md"), model_card(repo, "CLS pooling, normalised."))
    write_expected(os.path.join(exp_dir, folder(repo) + ".json"), embedding_expected(repo, sd, "cls", True, QUERIES, PASSAGES))

    # 4: intfloat/e5-small-v2 (mean pooling + Normalize; prefixes are the user's job)
    repo = REPOS[3]
    d = os.path.join(out, folder(repo))
    sd = bert_weights(seeds[repo], pooler=True, position_ids=True)
    write_json(
        os.path.join(d, "config.json"),
        bert_config(["BertModel"], classifier_dropout=None, torch_dtype="float32", transformers_version="4.29.0.dev0", use_cache=True),
        sort_keys=True,
    )
    write_safetensors(os.path.join(d, "model.safetensors"), {k: v for k, v in sd.items() if k != "embeddings.position_ids"})
    write_torch_bin(os.path.join(d, "pytorch_model.bin"), sd)
    write_json(os.path.join(d, "modules.json"), modules_json(normalize=True))
    write_json(os.path.join(d, "1_Pooling", "config.json"), pooling_config("mean", newer=True))
    write_json(os.path.join(d, "sentence_bert_config.json"), {"max_seq_length": 512, "do_lower_case": False})
    write_tokenizer_files(d, truncation=TRUNCATION_512, added_tokens_decoder=True)
    write_text(os.path.join(d, "README.md"), model_card(repo, 'Mean pooling, normalised; callers add "query: " / "passage: ".'))
    write_expected(os.path.join(exp_dir, folder(repo) + ".json"), embedding_expected(repo, sd, "mean", True, QUERIES, PASSAGES))
    write_expected(
        os.path.join(exp_dir, folder(repo) + ".prefixed.json"),
        embedding_expected(repo, sd, "mean", True, QUERIES, PASSAGES, E5_QUERY_PREFIX, E5_PASSAGE_PREFIX),
    )

    # 5: sentence-transformers/msmarco-bert-base-dot-v5 (mean pooling, no Normalize: dot product)
    repo = REPOS[4]
    d = os.path.join(out, folder(repo))
    sd = bert_weights(seeds[repo], pooler=True, position_ids=True)
    write_json(
        os.path.join(d, "config.json"),
        bert_config(["BertModel"], gradient_checkpointing=False, transformers_version="4.7.0"),
        sort_keys=True,
    )
    write_torch_bin(os.path.join(d, "pytorch_model.bin"), sd)
    write_json(os.path.join(d, "modules.json"), modules_json(normalize=False))
    write_json(os.path.join(d, "1_Pooling", "config.json"), pooling_config("mean"))
    write_json(os.path.join(d, "sentence_bert_config.json"), {"max_seq_length": 512, "do_lower_case": False})
    write_json(
        os.path.join(d, "config_sentence_transformers.json"),
        {"__version__": {"sentence_transformers": "2.0.0", "transformers": "4.7.0", "pytorch": "1.9.0+cu102"}},
    )
    write_tokenizer_files(d, truncation=TRUNCATION_512)
    write_text(os.path.join(d, "README.md"), model_card(repo, "Mean pooling, not normalised (dot-product model)."))
    write_expected(os.path.join(exp_dir, folder(repo) + ".json"), embedding_expected(repo, sd, "mean", False, QUERIES, PASSAGES))

    # 6: cross-encoder/ms-marco-MiniLM-L-6-v2 (BertForSequenceClassification, one logit)
    repo = REPOS[5]
    d = os.path.join(out, folder(repo))
    sd = bert_weights(seeds[repo], pooler=True, position_ids=True, num_labels=1)
    head = {k: v for k, v in sd.items() if k.startswith("classifier.")}
    body = {("bert." + k): v for k, v in sd.items() if not k.startswith("classifier.")}
    write_json(
        os.path.join(d, "config.json"),
        bert_config(
            ["BertForSequenceClassification"],
            gradient_checkpointing=False,
            id2label={"0": "LABEL_0"},
            label2id={"LABEL_0": 0},
            transformers_version="4.6.1",
        ),
        sort_keys=True,
    )
    write_torch_bin(os.path.join(d, "pytorch_model.bin"), {**body, **head})
    write_tokenizer_files(d, model_max_length=512, tokenizer_class=False)
    write_text(os.path.join(d, "README.md"), model_card(repo, "One relevance logit per pair."))
    write_expected(os.path.join(exp_dir, folder(repo) + ".json"), cross_expected(repo, sd, 0))

    # 7: test-org/two-label-cross-encoder (made up: two labels, positive class 1, safetensors only)
    repo = REPOS[6]
    d = os.path.join(out, folder(repo))
    sd = bert_weights(seeds[repo], pooler=True, position_ids=False, num_labels=2)
    head = {k: v for k, v in sd.items() if k.startswith("classifier.")}
    body = {("bert." + k): v for k, v in sd.items() if not k.startswith("classifier.")}
    write_json(
        os.path.join(d, "config.json"),
        bert_config(
            ["BertForSequenceClassification"],
            classifier_dropout=None,
            id2label={"0": "LABEL_0", "1": "LABEL_1"},
            label2id={"LABEL_0": 0, "LABEL_1": 1},
            torch_dtype="float32",
            transformers_version="4.40.0",
            use_cache=True,
        ),
        sort_keys=True,
    )
    write_safetensors(os.path.join(d, "model.safetensors"), {**body, **head})
    write_tokenizer_files(d, with_json=False, added_tokens_decoder=True)
    write_text(os.path.join(d, "README.md"), model_card(repo, "Made-up repository: two labels, the positive class is index 1."))
    write_expected(os.path.join(exp_dir, folder(repo) + ".json"), cross_expected(repo, sd, 1))

    write_text(os.path.join(out, "README.md"), README)


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def check_weights(out):
    """Reloads every weight file and compares it with the regenerated state dict."""
    seeds = {repo: SEED_BASE + i for i, repo in enumerate(REPOS)}
    want = {
        REPOS[0]: prefixed(bert_weights(seeds[REPOS[0]]), "question_encoder.bert_model."),
        REPOS[1]: prefixed(bert_weights(seeds[REPOS[1]]), "ctx_encoder.bert_model."),
        REPOS[2]: bert_weights(seeds[REPOS[2]]),
        REPOS[3]: bert_weights(seeds[REPOS[3]]),
        REPOS[4]: bert_weights(seeds[REPOS[4]]),
    }
    for repo, nl, pid in ((REPOS[5], 1, True), (REPOS[6], 2, False)):
        sd = bert_weights(seeds[repo], position_ids=pid, num_labels=nl)
        want[repo] = {(k if k.startswith("classifier.") else "bert." + k): v for k, v in sd.items()}
    report = []
    for repo in REPOS:
        d = os.path.join(out, folder(repo))
        for name in ("pytorch_model.bin", "model.safetensors"):
            path = os.path.join(d, name)
            if not os.path.exists(path):
                continue
            if name.endswith(".bin"):
                legacy = repo.startswith("facebook/")
                if zipfile.is_zipfile(path) == legacy:
                    raise AssertionError(f"{path}: expected {'legacy' if legacy else 'zip'} torch format")
                got = torch.load(path, map_location="cpu")
            else:
                got = read_safetensors(path)
            exp = dict(want[repo])
            if name.endswith(".safetensors") and repo == REPOS[3]:
                exp.pop("embeddings.position_ids")
            if set(got) != set(exp):
                raise AssertionError(f"{path}: keys differ: {sorted(set(got) ^ set(exp))}")
            for k, v in exp.items():
                if got[k].dtype != v.dtype or tuple(got[k].shape) != tuple(v.shape) or not torch.equal(got[k], v):
                    raise AssertionError(f"{path}: {k} differs")
            report.append(f"ok {folder(repo)}/{name}: {len(got)} tensors")
    return report


def tree_files(d):
    out = []
    for root, _, files in os.walk(d):
        for f in files:
            out.append(os.path.relpath(os.path.join(root, f), d))
    return sorted(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: test/fixtures/hub)")
    ap.add_argument("--check", action="store_true", help="also regenerate twice in temp folders, compare bytes, reload weights")
    args = ap.parse_args()
    torch.set_num_threads(1)  # same reduction order every run
    generate(args.out)
    if args.check:
        for line in check_weights(args.out):
            print(line)
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            generate(a)
            generate(b)
            files = tree_files(args.out)
            assert files == tree_files(a) == tree_files(b), "file lists differ between runs"
            for f in files:
                if not (filecmp.cmp(os.path.join(a, f), os.path.join(b, f), shallow=False) and filecmp.cmp(os.path.join(a, f), os.path.join(args.out, f), shallow=False)):
                    raise AssertionError(f"{f} differs between runs")
            print(f"ok {len(files)} files byte-identical over three runs")
    total = 0
    for f in tree_files(args.out):
        size = os.path.getsize(os.path.join(args.out, f))
        total += size
        print(f"{size:8d}  {f}")
    print(f"{total:8d}  total bytes")


README = """# Hub fixtures: tiny copies of public Hugging Face repositories

Generated by `/usr/bin/python3 scripts/gen-hub-fixtures.py` (python3 + torch only; add `--check` to
reload every weight file and regenerate twice into temporary folders to confirm byte-identical
output). Do not edit by hand: change the script and regenerate.

Each `<owner>--<name>/` folder mirrors the *layout* of the Hugging Face repository `<owner>/<name>`:
the same file names and the same config keys (with tiny sizes), so that a loader can be tested
against a loopback hub that serves these folders. The weights are random (seeded), not the real
models: hidden 32, 2 layers, 4 heads, intermediate 64, 64 positions, type vocabulary 2,
layer_norm_eps 1e-12, hidden_act "gelu" (exact erf). All repositories share one 82-entry
vocabulary: `[PAD]`=0, `[UNK]`=1, `[CLS]`=2, `[SEP]`=3, `[MASK]`=4, `.`=5, `:`=6, then 75 lowercase
English words in alphabetical order. Weight values are random normals rounded to multiples of
1/256 (exact in float32 and float16; the files compress to about a third in git). Each folder
also has a short `README.md` standing in for the model card.

`expected/` is *not* a repository: it holds, per repository, what the authors' library would
return for the fixture texts, computed by an independent float64 BERT forward pass in the script
(plain torch tensor code, itself checked against `torch.nn.TransformerEncoderLayer`). It lives
outside the repository folders so the test hub does not serve it.

## Folders

| folder | mirrors | files | library behaviour reproduced in `expected/` |
|---|---|---|---|
| `facebook--dpr-question_encoder-single-nq-base` | transformers `DPRQuestionEncoder` | config.json (model_type dpr, projection_dim 0), pytorch_model.bin (legacy non-zip pickle, keys `question_encoder.bert_model.*` incl. the unused pooler and the int64 `embeddings.position_ids`), vocab.txt, tokenizer_config.json, tf_model.h5 (stub), README.md | `pooler_output` = [CLS] hidden state, not normalised; queries only |
| `facebook--dpr-ctx_encoder-single-nq-base` | transformers `DPRContextEncoder` | same, keys `ctx_encoder.bert_model.*` | same; passages only (single texts, no title) |
| `BAAI--bge-small-en-v1.5` | sentence-transformers Transformer → Pooling(cls) → Normalize | config.json, model.safetensors (with the I64 `embeddings.position_ids`), pytorch_model.bin (zip, same tensors), modules.json, 1_Pooling/config.json, sentence_bert_config.json, config_sentence_transformers.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.txt, README.md | CLS, L2-normalised |
| `intfloat--e5-small-v2` | Transformer → Pooling(mean) → Normalize | config.json, model.safetensors (F32 only, no position_ids), pytorch_model.bin (zip, with position_ids), modules.json, 1_Pooling/config.json (newer 7-key form), sentence_bert_config.json, tokenizer files (tokenizer_config.json with `added_tokens_decoder`), README.md | mean over the attention mask, L2-normalised; plus `*.prefixed.json` with "query: "/"passage: " |
| `sentence-transformers--msmarco-bert-base-dot-v5` | Transformer → Pooling(mean), no Normalize | config.json, pytorch_model.bin (zip) only, modules.json, 1_Pooling/config.json, sentence_bert_config.json, config_sentence_transformers.json, tokenizer files, README.md | mean, not normalised (dot product) |
| `cross-encoder--ms-marco-MiniLM-L-6-v2` | transformers `BertForSequenceClassification`, 1 label | config.json, pytorch_model.bin (zip; `bert.*` incl. pooler and position_ids, `classifier.weight` [1,32], `classifier.bias` [1]), tokenizer files, README.md | logit of `[CLS] q [SEP] p [SEP]` via pooler (tanh) + classifier |
| `test-org--two-label-cross-encoder` | made up: `BertForSequenceClassification`, 2 labels, positive class 1 | config.json, model.safetensors only (no position_ids), vocab.txt, tokenizer_config.json, special_tokens_map.json (no tokenizer.json), README.md | score = logits[1] |

"tokenizer files" = vocab.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json.
tokenizer.json is a Hugging Face tokenizers file for BERT uncased WordPiece (BertNormalizer with
lowercase and `strip_accents: null`, BertPreTokenizer, TemplateProcessing `[CLS] $A [SEP]` /
`[CLS] $A [SEP] $B:1 [SEP]:1`, WordPiece decoder and model). The DPR folders have no tokenizer.json
(the loader must build the tokenizer from vocab.txt + tokenizer_config.json).

## Expected files

Embedding repositories, `expected/<owner>--<name>.json`:

- `repo`: the repository id.
- `queries`, `passages`: the texts as given (without prefixes). The DPR question file has
  `passages: []`, the DPR context file `queries: []`.
- `query_prefix`, `passage_prefix`: strings prepended to each text before encoding ("" except in
  `intfloat--e5-small-v2.prefixed.json`: "query: " / "passage: ").
- `pooling`: "cls" or "mean" (mean = sum(h·mask)/sum(mask) over all unpadded tokens, [CLS] and
  [SEP] included, as sentence-transformers' Pooling does).
- `normalize`: whether the vectors are L2-normalised (sentence-transformers Normalize).
- `dim`: 32.
- `query_input_ids`, `passage_input_ids`: unpadded token ids of `[CLS] prefix+text [SEP]`.
- `query_vectors`, `passage_vectors`: one float64 vector per text (computed from the float32
  weights in float64; compare with a tolerance suited to float32 inference, e.g. 1e-4).

Cross-encoders, `expected/<owner>--<name>.json`:

- `repo`; `pairs`: [[query, passage], ...] (all 3 × 4 combinations).
- `num_labels`: 1 or 2; `label_index`: the logit used as the score (0, or 1 for the two-label model).
- `input_ids`, `token_type_ids`: unpadded `[CLS] q [SEP] p [SEP]`, types 0…0 1…1.
- `logits`: [[...num_labels]] per pair; `scores`: `logits[i][label_index]`.
- `probabilities`: sigmoid(logit) for one label (what sentence-transformers' `CrossEncoder.predict`
  returns by default for num_labels 1), softmax(logits)[label_index] for two labels.

## Weight file formats

- `pytorch_model.bin`, zip: `torch.save(state_dict, path)` of an OrderedDict (records
  `pytorch_model/data.pkl`, `pytorch_model/data/<n>`, `pytorch_model/version`).
- `pytorch_model.bin`, legacy (DPR): the pre-1.6 non-zip pickle stream. torch.save with
  `_use_new_zipfile_serialization=False` names storages by memory address, so its bytes change
  from run to run; the script writes the same stream itself (magic number, protocol 1001,
  sys_info, the object pickle with persistent ids `('storage', torch.FloatStorage, key, 'cpu',
  numel, None)`, the sorted key list, then per storage an int64 element count and the raw
  data) with address-like keys `94000000000000`, `94000000004096`, ... in order of first use.
  Apart from the key strings it was checked to be identical to torch's own output; `torch.load`
  reads it.
- `model.safetensors`: u64 little-endian header length, JSON header
  (`__metadata__: {"format": "pt"}`, then `name: {dtype, shape, data_offsets}`) padded with
  spaces to a multiple of 8, then the data, sorted by element size then name. F32, plus one I64
  tensor (`embeddings.position_ids`) in bge's file: a reader must accept or skip integer tensors.

Sizes: about 0.99 MB on disk in all, about 0.37 MB zlib-compressed (as git stores it). The nine
weight files are 96-106 KB each at these shapes and make up nearly all of it.

## Left out or stubbed (real repositories have more)

- All: `.gitattributes`; the real model cards (README.md here is a two-line stand-in); ONNX /
  OpenVINO exports (`onnx/`, `openvino/`) that some of these repositories carry now.
- DPR: `tf_model.h5` is a stub of a few bytes (not HDF5). A loader must never download it. Any
  `model.safetensors` or `tokenizer.json` the real DPR repositories may have gained later is
  left out on purpose, so the pytorch_model.bin (legacy format) and vocab.txt paths are tested.
- bge-small-en-v1.5 / e5-small-v2: `onnx/` folders, `flax_model.msgpack` / `tf_model.h5` if any.
- msmarco-bert-base-dot-v5: `model.safetensors` (if the repository has one now), `tf_model.h5`.
- ms-marco-MiniLM-L-6-v2: `model.safetensors`, `flax_model.msgpack`, `onnx/`, `openvino/`
  (later additions); only pytorch_model.bin is written.
- e5-small-v2: no `config_sentence_transformers.json` is written (not known to exist; also tests
  the missing-file path).

## From memory, not checked (no internet when these were written)

- Config keys and values such as `transformers_version`, `torch_dtype`, `gradient_checkpointing`,
  `classifier_dropout`, bge's `id2label`/`label2id`, and the `__version__` blocks of
  config_sentence_transformers.json are recalled, not copied.
- bge-small-en-v1.5's config_sentence_transformers.json is believed to have only the
  `__version__` block (sentence-transformers 2.2.2 had no prompts), so no `prompts`: the
  retrieval instruction "Represent this sentence for searching relevant passages: " is
  documented in the model card, not in the config. Likewise msmarco-bert-base-dot-v5.
- e5-small-v2: the "query: " / "passage: " prefixes are added by the user; the repository is
  believed not to configure prompts, so none are written.
- sentence_bert_config.json `do_lower_case` (true for bge, false for e5 and msmarco) and the
  1_Pooling key sets (old 4-key form for bge and msmarco, newer form for e5).
- Whether the real safetensors files include the int64 `embeddings.position_ids` buffer
  (transformers < 4.31 saved it; bge's model.safetensors here has it, e5's does not).
- The DPR tokenizer_config.json content (`{"do_lower_case": true}` here).
- tokenizer.json `truncation` / `padding` blocks (bge: truncation 512 and BatchLongest padding;
  e5 and msmarco: truncation 512, no padding; MiniLM: neither).
- Real `config.json` files carry no `num_labels` key (transformers derives it from `id2label`);
  the cross-encoder configs here follow that.

## Licence

Everything here is generated by scripts/gen-hub-fixtures.py: random weights, a made-up
82-token vocabulary and configs written from key names. No weights, vocabulary or other
content of the third-party repositories is included; the folder names only refer to them.
"""


if __name__ == "__main__":
    main()

/**
 * PyTorch checkpoints written by real PyTorch (scripts/gen-torch-fixtures.py; committed, CI has no
 * PyTorch): every tensor loads bit-equal to what torch itself gives (fp16/bf16 compared with torch's
 * own t.float()), in the zip, ZIP64 and legacy formats, tied weights, strided views, parameters,
 * nested and sharded checkpoints; malicious pickles (which torch.load executes: the generator checks
 * that) and damaged files are refused with the file and the problem named, and nothing runs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { floatWeights, readCheckpointShards, readTorchCheckpoint, type LoadedTensor } from "../../src/models/pytorch/index.js";
import { readSafetensors } from "../../src/models/safetensors.js";

const DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "torch");
const MARKER = "/tmp/langchain-dpr-pickle-was-executed";

type Expected = Record<string, Record<string, { dtype: string; shape: number[]; data: string }>>;
let expected: Expected;
let tmp: string;

beforeAll(async () => {
  expected = JSON.parse(await readFile(join(DIR, "expected.json"), "utf8")) as Expected;
  tmp = await mkdtemp(join(tmpdir(), "torch-ckpt-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function bytesOf(t: LoadedTensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Every tensor of `got` has the dtype, shape and exact bytes torch gave (float32 of t.float(), or int64). */
function matches(key: string, got: ReadonlyMap<string, LoadedTensor>): void {
  const want = expected[key]!;
  expect(want, key).toBeDefined();
  expect([...got.keys()].sort()).toEqual(Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const t = got.get(name)!;
    expect(t.dtype, name).toBe(w.dtype);
    expect(t.shape, name).toEqual(w.shape);
    expect(t.data).toBeInstanceOf(w.dtype === "int64" ? BigInt64Array : Float32Array);
    expect(bytesOf(t).equals(Buffer.from(w.data, "base64")), `${key}: ${name} bit for bit`).toBe(true);
  }
}

const load = (file: string, opts?: Parameters<typeof readTorchCheckpoint>[1]) => readTorchCheckpoint(join(DIR, file), opts);

describe("readTorchCheckpoint: files written by PyTorch", () => {
  const files = ["zip-fp32.pt", "legacy-fp32.pt", "zip-fp16.pt", "legacy-fp16.pt", "zip-bf16.pt", "legacy-bf16.pt", "zip64.pt"];
  for (const file of [...files, "tied.pt", "tied-legacy.pt", "views.pt", "views-legacy.pt", "params.pt", "nested.pt"]) {
    it(`${file}: every tensor bit-equal to PyTorch's`, async () => {
      matches(file, await load(file));
    });
  }

  it("torch >= 2.0's UntypedStorage + _rebuild_tensor_v3(dtype): float32 read at its offset, float8 refused by name", async () => {
    matches("v3-float32.pt", await load("v3-float32.pt"));
    await expect(load("v3-float8.pt")).rejects.toThrow(
      /v3-float8\.pt \(v3\/data\.pkl\): tensor 'f' has dtype float8_e4m3fn, which is not read; supported: float32, float16, bfloat16, int64/,
    );
  });

  it("zip = legacy = ZIP64 under another folder name, for each dtype; int64 kept as BigInt64Array", async () => {
    for (const [a, b] of [
      ["zip-fp32.pt", "legacy-fp32.pt"],
      ["zip-fp32.pt", "zip64.pt"],
      ["zip-fp16.pt", "legacy-fp16.pt"],
      ["zip-bf16.pt", "legacy-bf16.pt"],
      ["views.pt", "views-legacy.pt"],
    ]) {
      const x = await load(a!);
      const y = await load(b!);
      expect([...y.keys()], `${a} vs ${b}`).toEqual([...x.keys()]);
      for (const [k, t] of x) expect(bytesOf(y.get(k)!).equals(bytesOf(t)), `${a} vs ${b}: ${k}`).toBe(true);
    }
    const ids = (await load("zip-fp32.pt")).get("embeddings.position_ids")!;
    expect(ids.dtype).toBe("int64");
    expect(Array.from(ids.data as BigInt64Array)).toEqual(Array.from({ length: 16 }, (_, i) => BigInt(i)));
  });

  it("tied weights: both names load the shared storage, each into its own array", async () => {
    for (const file of ["tied.pt", "tied-legacy.pt"]) {
      const t = await load(file);
      const a = t.get("embeddings.word_embeddings.weight")!;
      const b = t.get("cls.predictions.decoder.weight")!;
      expect(bytesOf(a).equals(bytesOf(b))).toBe(true);
      expect(a.data).not.toBe(b.data);
    }
  });

  it("views: transposed, offset slice, int64 column and stride-0 broadcast in row-major order", async () => {
    const v = await load("views.pt");
    const whole = v.get("whole")!.data as Float32Array;
    const at = (r: number, c: number) => whole[r * 7 + c]!;
    expect(v.get("transposed")!.shape).toEqual([7, 5]);
    expect((v.get("transposed")!.data as Float32Array)[1 * 5 + 3]).toBe(at(3, 1));
    expect(Array.from(v.get("slice")!.data as Float32Array)).toEqual([2, 3].flatMap((r) => [1, 2, 3, 4, 5].map((c) => at(r, c))));
    expect(Array.from(v.get("broadcast")!.data as Float32Array)).toEqual([0, 1, 2, 3].flatMap(() => [at(1, 0), at(1, 1), at(1, 2)]));
    expect(Array.from(v.get("int_column")!.data as BigInt64Array)).toEqual([0, 1, 2, 3].map((r) => BigInt(r * 6 + 2) * 1_000_000_007n));
  });

  it("nested checkpoints: the only dict of tensors is unwrapped; with two, 'model' wins unless stateDictKey says", async () => {
    expect([...(await load("nested-two.pt")).keys()]).toEqual(["a.weight"]);
    expect((await load("nested-two.pt")).get("a.weight")!.shape).toEqual([2, 2]);
    matches("nested-two.pt#ema", await load("nested-two.pt", { stateDictKey: "ema" }));
    await expect(load("nested-two.pt", { stateDictKey: "optimizer" })).rejects.toThrow(
      /nested-two\.pt .*stateDictKey 'optimizer' does not name a dict of tensors .*'model', 'ema'/,
    );
  });

  it("filter reads only the tensors asked for, and floatWeights drops integer tensors by name", async () => {
    const some = await load("zip-fp32.pt", { filter: (n) => n.startsWith("embeddings.") });
    expect([...some.keys()].every((n) => n.startsWith("embeddings."))).toBe(true);
    expect(some.size).toBe(6);
    const { weights, dropped } = floatWeights(await load("legacy-fp16.pt"));
    expect(dropped).toEqual(["embeddings.position_ids"]);
    expect(weights.get("embeddings.word_embeddings.weight")!.shape).toEqual([11, 8]);
    expect(weights.get("embeddings.word_embeddings.weight")!.data).toBeInstanceOf(Float32Array);
  });
});

describe("readCheckpointShards", () => {
  it("merges .bin shards and safetensors shards (F16 kept as float16, I64 as int64) bit for bit", async () => {
    matches("shards/pytorch_model.bin.index.json", await readCheckpointShards(join(DIR, "shards", "pytorch_model.bin.index.json")));
    matches("shards-st/model.safetensors.index.json", await readCheckpointShards(join(DIR, "shards-st", "model.safetensors.index.json")));
  });

  it("readSafetensors loads a file with an I64 buffer: floats as before, the buffer listed and kept", async () => {
    const st = await readSafetensors(join(DIR, "shards-st", "model-00001-of-00002.safetensors"));
    expect([...st.tensors.keys()]).toEqual(["embeddings.word_embeddings.weight"]);
    expect(st.skipped).toEqual(["embeddings.position_ids"]);
    expect(Array.from(st.int64.get("embeddings.position_ids")!.data)).toEqual([0n, 1n, 2n, 3n]);
    expect(st.dtypes.get("embeddings.position_ids")).toBe("I64");
  });

  it("a missing shard, a tensor absent from its shard, a path leaving the folder: errors naming the index", async () => {
    const d = join(tmp, "bad-shards");
    await mkdir(d, { recursive: true });
    await copyFile(join(DIR, "shards", "pytorch_model-00001-of-00002.bin"), join(d, "pytorch_model-00001-of-00002.bin"));
    const index = join(d, "pytorch_model.bin.index.json");
    const cases: [unknown, RegExp][] = [
      [
        { weight_map: { "a.weight": "pytorch_model-00009-of-00009.bin" } },
        /pytorch_model\.bin\.index\.json: shard pytorch_model-00009-of-00009\.bin: .*cannot open the checkpoint/,
      ],
      [
        { weight_map: { "no.such.weight": "pytorch_model-00001-of-00002.bin" } },
        /index\.json: 'no\.such\.weight' is mapped to pytorch_model-00001-of-00002\.bin, which does not contain it/,
      ],
      [{ weight_map: { "a.weight": "../x" } }, /index\.json: shard '\.\.\/x' \(for 'a\.weight'\) leaves the model folder/],
      [{ weight_map: { "a.weight": "sub/../../x" } }, /index\.json: shard 'sub\/\.\.\/\.\.\/x' .*leaves the model folder/],
      [{ weight_map: { "a.weight": "/etc/passwd" } }, /index\.json: shard '\/etc\/passwd' .*leaves the model folder/],
      [{ weight_map: { "a.weight": 3 } }, /index\.json: weight_map\["a\.weight"\] must be a shard file name, got 3/],
      [{ metadata: {} }, /index\.json: no "weight_map" object/],
    ];
    for (const [json, error] of cases) {
      await writeFile(index, JSON.stringify(json));
      await expect(readCheckpointShards(index)).rejects.toThrow(error);
    }
    await writeFile(index, "{ not json");
    await expect(readCheckpointShards(index)).rejects.toThrow(/index\.json: cannot read the shard index/);
  });
});

describe("readTorchCheckpoint: hostile and damaged files", () => {
  it("refuses every pickle that would run code (torch.load runs them), naming the file and the global or call; nothing runs", async () => {
    await rm(MARKER, { force: true });
    const cases: [string, RegExp][] = [
      [
        "evil-global.pt",
        /evil-global\.pt \(archive\/data\.pkl\): refusing global os\.system: a checkpoint may name only collections\.OrderedDict/,
      ],
      ["evil-stack-global.pt", /evil-stack-global\.pt \(archive\/data\.pkl\): refusing global builtins\.eval/],
      ["evil-reduce.pt", /evil-reduce\.pt \(archive\/data\.pkl\): refusing global (posix|os)\.system/],
      ["evil-legacy.pt", /evil-legacy\.pt \(legacy format, state_dict pickle\): refusing global __builtin__\.eval/],
      [
        "evil-call-storage.pt",
        /evil-call-storage\.pt \(archive\/data\.pkl\): refusing to call torch\.FloatStorage: only OrderedDict and torch's tensor rebuilders/,
      ],
      ["evil-build.pt", /evil-build\.pt \(archive\/data\.pkl\): refusing BUILD \(setting object state\) on tensor/],
    ];
    for (const [file, error] of cases) await expect(load(file)).rejects.toThrow(error);
    expect(existsSync(MARKER)).toBe(false);
  });

  it("names the tensor, its dtype and the supported ones for dtypes that are not read", async () => {
    for (const dtype of ["float64", "uint8", "complex64"]) {
      await expect(load(`unsupported-${dtype}.pt`)).rejects.toThrow(
        new RegExp(
          `unsupported-${dtype}\\.pt \\(unsupported-${dtype}/data\\.pkl\\): tensor 'w' has dtype ${dtype}, which is not ` +
            `read; supported: float32, float16, bfloat16, int64`,
        ),
      );
    }
    // ... unless the filter leaves it out.
    expect((await load("unsupported-float64.pt", { filter: () => false })).size).toBe(0);
  });

  it("damaged archives and legacy files: the file and the problem named", async () => {
    const zip = await readFile(join(DIR, "zip-fp32.pt"));
    const legacy = await readFile(join(DIR, "legacy-fp32.pt"));
    const write = async (name: string, bytes: Uint8Array | string) => {
      const p = join(tmp, name);
      await writeFile(p, bytes);
      return p;
    };
    const cases: [string, RegExp][] = [
      [await write("cut-tail.pt", zip.subarray(0, zip.length - 200)), /cut-tail\.pt: .*(truncated|damaged)/],
      [
        await write("cut-half.pt", zip.subarray(0, zip.length >> 1)),
        /cut-half\.pt: no zip end-of-central-directory record: the file is truncated/,
      ],
      [
        await write("cut-legacy.pt", legacy.subarray(0, legacy.length - 12)),
        /cut-legacy\.pt: storage '.*' claims \d+ values .* past the end of the file .*truncated/,
      ],
      [await write("cut-legacy-head.pt", legacy.subarray(0, 300)), /cut-legacy-head\.pt \(legacy format, .* pickle\): pickle truncated/],
      [await write("text.pt", "hello, world\n"), /text\.pt: not a PyTorch checkpoint: expected a zip archive .* got bytes 6865/],
      [await write("empty.pt", ""), /empty\.pt: not a PyTorch checkpoint/],
      [
        await write("pickle.pt", Buffer.from([0x80, 0x02, 0x4b, 0x07, 0x2e])),
        /pickle\.pt: not a PyTorch checkpoint: the first pickle is 7, expected the legacy magic number/,
      ],
      [join(DIR, "short-storage.pt"), /short-storage\.pt: storage '0' of tensor '.*' has \d+ bytes in the file but is declared with \d+/],
      [join(DIR, "big-endian.pt"), /big-endian\.pt: zip-fp32\/byteorder is 'big'; only little-endian checkpoints are read/],
      [
        join(DIR, "expanded.pt"),
        /expanded\.pt: tensor 'w' \[50000000\] would bring the tensors read to 20000000\d bytes, more than 4× the file \(\d+ bytes\) \+ 64 MiB/,
      ],
      [join(tmp, "missing.pt"), /missing\.pt: cannot open the checkpoint/],
      [tmp, /torch-ckpt-\w+: EISDIR/],
    ];
    for (const [file, error] of cases) await expect(readTorchCheckpoint(file)).rejects.toThrow(error);
  });

  it("every truncation and seeded byte corruption of small files is a clean Error naming the file", async () => {
    let seed = 12345;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (const file of ["tied.pt", "tied-legacy.pt", "views.pt"]) {
      const bytes = await readFile(join(DIR, file));
      const p = join(tmp, `mutated-${file}`);
      const variants: Buffer[] = [];
      for (let n = 0; n < bytes.length; n += 7) variants.push(bytes.subarray(0, n));
      for (let i = 0; i < 300; i++) {
        const b = Buffer.from(bytes);
        b[rand(b.length)] = rand(256);
        variants.push(b);
      }
      for (const v of variants) {
        await writeFile(p, v);
        try {
          await readTorchCheckpoint(p);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
          expect((err as Error).message.startsWith(p)).toBe(true);
        }
      }
    }
  });
});

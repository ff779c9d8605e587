/**
 * PyTorch checkpoints written by real PyTorch (scripts/gen-torch-fixtures.py; committed, CI has no
 * PyTorch): every tensor loads bit-equal to what torch itself holds, in the zip and legacy formats,
 * fp16/bf16 widened as torch widens them, tied weights, strided views, nested and sharded checkpoints;
 * malicious pickles (which torch.load executes: the generator checks that) and damaged files are
 * refused with the file and the problem named, and nothing runs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile, copyFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { floatWeights, readCheckpointShards, readTorchCheckpoint, type LoadedTensor } from "../../src/models/pytorch/index.js";

const DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "torch");
const MARKER = "/tmp/langchain-dpr-pickle-was-executed";

type Expected = Record<string, Record<string, { dtype: string; shape: number[]; values: (number | string)[] }>>;
let expected: Expected;
let tmp: string;

beforeAll(async () => {
  expected = JSON.parse(await readFile(join(DIR, "expected.json"), "utf8")) as Expected;
  tmp = await mkdtemp(join(tmpdir(), "torch-ckpt-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function matches(file: string, got: ReadonlyMap<string, LoadedTensor>): void {
  const want = expected[file]!;
  expect([...got.keys()].sort()).toEqual(Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const t = got.get(name)!;
    expect(t.dtype, name).toBe(w.dtype);
    expect(t.shape, name).toEqual(w.shape);
    if (w.dtype === "int64") {
      expect(Array.from(t.data as BigInt64Array, String), name).toEqual(w.values);
    } else {
      // Bit-equal: the JSON holds torch's float32 values exactly (float64 round trip of float32 is exact).
      expect(Array.from(t.data as Float32Array), name).toEqual(w.values.map((v) => Math.fround(v as number)));
    }
  }
}

describe("readTorchCheckpoint", () => {
  for (const file of ["zip-fp32.pt", "legacy-fp32.pt", "zip-fp16.pt", "zip-bf16.pt", "tied.pt", "tied-legacy.pt", "views.pt", "views-legacy.pt", "nested.pt"]) {
    it(`loads ${file} bit-equal to PyTorch's tensors`, async () => {
      matches(file, await readTorchCheckpoint(join(DIR, file)));
    });
  }

  it("zip and legacy formats of one state_dict give the same tensors; floatWeights drops the int64 buffer", async () => {
    const a = await readTorchCheckpoint(join(DIR, "zip-fp32.pt"));
    const b = await readTorchCheckpoint(join(DIR, "legacy-fp32.pt"));
    expect([...a.keys()]).toEqual([...b.keys()]);
    for (const [k, t] of a) expect(b.get(k)!.data).toEqual(t.data);
    const { weights, dropped } = floatWeights(a);
    expect(dropped).toEqual(["embeddings.position_ids"]);
    expect(weights.has("embeddings.word_embeddings.weight")).toBe(true);
  });

  it("reads sharded checkpoints (.bin and safetensors shards) through their index", async () => {
    matches("shards/pytorch_model.bin.index.json", await readCheckpointShards(join(DIR, "shards", "pytorch_model.bin.index.json")));
    const st = await readCheckpointShards(join(DIR, "shards-st", "model.safetensors.index.json"));
    const want = expected["shards-st/model.safetensors.index.json"]!;
    expect([...st.keys()].sort()).toEqual(Object.keys(want).sort());
  });

  it("refuses pickles that name other globals or call anything else, and runs nothing", async () => {
    await rm(MARKER, { force: true });
    await expect(readTorchCheckpoint(join(DIR, "evil-global.pt"))).rejects.toThrow(
      /evil-global\.pt \(archive\/data\.pkl\): refusing global os\.system: a checkpoint may name only collections\.OrderedDict/,
    );
    await expect(readTorchCheckpoint(join(DIR, "evil-stack-global.pt"))).rejects.toThrow(/evil-stack-global\.pt .*refusing global builtins\.eval/);
    await expect(readTorchCheckpoint(join(DIR, "evil-reduce.pt"))).rejects.toThrow(/evil-reduce\.pt .*refusing global (posix|os)\.system/);
    expect(existsSync(MARKER)).toBe(false);
  });

  it("names the file and the problem for damaged files and unsupported dtypes", async () => {
    await expect(readTorchCheckpoint(join(DIR, "unsupported-dtype.pt"))).rejects.toThrow(
      /unsupported-dtype\.pt .*storage type torch\.DoubleStorage is not read; supported: float32, float16, bfloat16, int64/,
    );
    const bytes = await readFile(join(DIR, "zip-fp32.pt"));
    const truncated = join(tmp, "truncated.pt");
    await writeFile(truncated, bytes.subarray(0, bytes.length - 200));
    await expect(readTorchCheckpoint(truncated)).rejects.toThrow(/truncated\.pt: .*(truncated|damaged|end-of-central-directory)/);
    // A legacy file cut inside its last storage: the storage is shorter than its tensor.
    const legacy = await readFile(join(DIR, "legacy-fp32.pt"));
    const short = join(tmp, "short.pt");
    await writeFile(short, legacy.subarray(0, legacy.length - 12));
    await expect(readTorchCheckpoint(short)).rejects.toThrow(/short\.pt: storage '.*' claims \d+ values, past the end of the file/);
    await expect(readTorchCheckpoint(join(tmp, "missing.pt"))).rejects.toThrow(/missing\.pt: cannot open the checkpoint/);
    const notTorch = join(tmp, "text.pt");
    await writeFile(notTorch, "hello, world\n");
    await expect(readTorchCheckpoint(notTorch)).rejects.toThrow(/text\.pt/);
  });

  it("an index naming a missing shard, a tensor absent from its shard, or a path leaving the folder is an error naming the index", async () => {
    const d = join(tmp, "bad-shards");
    await mkdir(d, { recursive: true });
    await copyFile(join(DIR, "shards", "pytorch_model-00001-of-00002.bin"), join(d, "pytorch_model-00001-of-00002.bin"));
    const index = join(d, "pytorch_model.bin.index.json");
    await writeFile(index, JSON.stringify({ weight_map: { "a.weight": "pytorch_model-00009-of-00009.bin" } }));
    await expect(readCheckpointShards(index)).rejects.toThrow(/pytorch_model\.bin\.index\.json: shard pytorch_model-00009-of-00009\.bin: .*cannot open/);
    await writeFile(index, JSON.stringify({ weight_map: { "no.such.weight": "pytorch_model-00001-of-00002.bin" } }));
    await expect(readCheckpointShards(index)).rejects.toThrow(/'no\.such\.weight' is mapped to pytorch_model-00001-of-00002\.bin, which does not contain it/);
    await writeFile(index, JSON.stringify({ weight_map: { "a.weight": "../../etc/passwd" } }));
    await expect(readCheckpointShards(index)).rejects.toThrow(/shard '\.\.\/\.\.\/etc\/passwd' leaves the model folder/);
  });
});

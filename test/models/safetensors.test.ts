import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  readSafetensors,
  SAFETENSORS_MAX_HEADER_BYTES,
  SAFETENSORS_MAX_HEADER_DEPTH,
  writeSafetensors,
} from "../../src/models/safetensors.js";
import type { BertWeights } from "../../src/models/types.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "safetensors-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Builds a safetensors file by hand (independent of the writer). */
function handMade(header: Record<string, unknown>, data: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, json, data]);
}

describe("safetensors", () => {
  it("round-trips float32 tensors and metadata exactly", async () => {
    const tensors: BertWeights = new Map([
      ["a.weight", { shape: [2, 3], data: Float32Array.of(1, -2.5, 3e-8, 4, 5, 3.4e38) }],
      ["b.bias", { shape: [3], data: Float32Array.of(0.1, 0.2, 0.3) }],
      ["scalar", { shape: [], data: Float32Array.of(7) }],
    ]);
    const path = join(dir, "round.safetensors");
    await writeSafetensors(path, tensors, { format: "pt", note: "unit test" });
    const { tensors: back, metadata } = await readSafetensors(path);
    expect(metadata).toEqual({ format: "pt", note: "unit test" });
    expect([...back.keys()].sort()).toEqual(["a.weight", "b.bias", "scalar"]);
    for (const [name, t] of tensors) {
      expect(back.get(name)?.shape).toEqual(t.shape);
      expect(Array.from(back.get(name)!.data)).toEqual(Array.from(t.data));
    }
    // The data section starts 8-byte aligned, as the format recommends.
    const raw = await readFile(path);
    expect((8 + Number(raw.readBigUInt64LE(0))) % 8).toBe(0);
  });

  it("reads F16 and BF16 tensors as float32", async () => {
    // F16: 1.0 = 0x3c00, -2.0 = 0xc000, 0.5 = 0x3800, 65504 = 0x7bff, smallest subnormal 0x0001
    // BF16: 1.0 = 0x3f80, -3.0 = 0xc040, 0.15625 = 0x3e20
    const f16 = Buffer.alloc(10);
    [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001].forEach((v, i) => f16.writeUInt16LE(v, i * 2));
    const bf16 = Buffer.alloc(6);
    [0x3f80, 0xc040, 0x3e20].forEach((v, i) => bf16.writeUInt16LE(v, i * 2));
    const file = handMade(
      {
        half: { dtype: "F16", shape: [5], data_offsets: [0, 10] },
        brain: { dtype: "BF16", shape: [1, 3], data_offsets: [10, 16] },
      },
      Buffer.concat([f16, bf16]),
    );
    const path = join(dir, "halves.safetensors");
    await writeFile(path, file);
    const { tensors } = await readSafetensors(path);
    expect(Array.from(tensors.get("half")!.data)).toEqual([1, -2, 0.5, 65504, Math.fround(2 ** -24)]);
    expect(tensors.get("brain")!.shape).toEqual([1, 3]);
    expect(Array.from(tensors.get("brain")!.data)).toEqual([1, -3, 0.15625]);
  });

  it("throws naming the file when it is truncated", async () => {
    const tensors: BertWeights = new Map([["w", { shape: [4, 4], data: new Float32Array(16).fill(1) }]]);
    const path = join(dir, "truncated.safetensors");
    await writeSafetensors(path, tensors);
    const full = await readFile(path);
    await writeFile(path, full.subarray(0, full.length - 10));
    await expect(readSafetensors(path)).rejects.toThrow(/truncated\.safetensors.*'w'.*past the end/);
    await writeFile(path, full.subarray(0, 5));
    await expect(readSafetensors(path)).rejects.toThrow(/too short/);
  });

  it("throws on garbage files and inconsistent headers", async () => {
    const garbage = join(dir, "garbage.safetensors");
    await writeFile(garbage, Buffer.from("this is not a safetensors file at all, just text"));
    await expect(readSafetensors(garbage)).rejects.toThrow(/garbage\.safetensors.*header length/);

    const badJson = join(dir, "badjson.safetensors");
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(5n);
    await writeFile(badJson, Buffer.concat([prefix, Buffer.from("{nope")]));
    await expect(readSafetensors(badJson)).rejects.toThrow(/not valid UTF-8 JSON/);

    const wrongSize = join(dir, "wrongsize.safetensors");
    await writeFile(wrongSize, handMade({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, Buffer.alloc(8)));
    await expect(readSafetensors(wrongSize)).rejects.toThrow(/'w' F32\[3\] needs 12 bytes but data_offsets \[0, 8\] span 8/);

    const badDtype = join(dir, "int.safetensors");
    await writeFile(badDtype, handMade({ w: { dtype: "F64", shape: [1], data_offsets: [0, 8] } }, Buffer.alloc(8)));
    await expect(readSafetensors(badDtype)).rejects.toThrow(/'w' has dtype "F64"; supported: F32, F16, BF16, I64/);
    // Integer tensors (older transformers saved embeddings.position_ids as I64) are checked, then skipped.
    const withIds = join(dir, "with-ids.safetensors");
    await writeFile(withIds, handMade({ "embeddings.position_ids": { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, Buffer.alloc(8)));
    const read = await readSafetensors(withIds);
    expect([...read.tensors.keys()]).toEqual([]);
    expect(read.skipped).toEqual(["embeddings.position_ids"]);
    await writeFile(withIds, handMade({ ids: { dtype: "I64", shape: [2], data_offsets: [0, 8] } }, Buffer.alloc(8)));
    await expect(readSafetensors(withIds)).rejects.toThrow(/'ids' I64\[2\] needs 16 bytes/);
    await writeFile(badDtype, handMade({ w: { dtype: "toString", shape: [1], data_offsets: [0, 8] } }, Buffer.alloc(8)));
    await expect(readSafetensors(badDtype)).rejects.toThrow(/'w' has dtype "toString"/);

    const overlap = join(dir, "overlap.safetensors");
    await writeFile(
      overlap,
      handMade(
        { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } },
        Buffer.alloc(12),
      ),
    );
    await expect(readSafetensors(overlap)).rejects.toThrow(/'a' \(data_offsets \[0, 8\]\) and 'b' \(data_offsets \[4, 12\]\) overlap/);
    await expect(readSafetensors(join(dir, "missing.safetensors"))).rejects.toThrow(/readSafetensors: cannot read .*missing\.safetensors/);
  });

  it("keeps the previous file intact when a write fails, and leaves no temp files", async () => {
    const path = join(dir, "keep.safetensors");
    const good: BertWeights = new Map([["w", { shape: [2], data: Float32Array.of(1, 2) }]]);
    await writeSafetensors(path, good);
    const bad: BertWeights = new Map([["w", { shape: [3], data: Float32Array.of(1, 2) }]]);
    await expect(writeSafetensors(path, bad)).rejects.toThrow(/writeSafetensors: tensor 'w' has shape \[3\] \(3 values\) but 2 values/);
    const { tensors } = await readSafetensors(path);
    expect(Array.from(tensors.get("w")!.data)).toEqual([1, 2]);
    expect((await readdir(dir)).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });
});

describe("safetensors: hostile headers fail before parsing or allocating", () => {
  it("refuses a declared header length over the 16 MiB cap, naming the cap", async () => {
    const path = join(dir, "huge-header.safetensors");
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(SAFETENSORS_MAX_HEADER_BYTES) + 1n);
    await writeFile(path, Buffer.concat([prefix, Buffer.from("{}")]));
    await expect(readSafetensors(path)).rejects.toThrow(
      /huge-header\.safetensors\): header length 16777217 is over the 16777216-byte cap \(SAFETENSORS_MAX_HEADER_BYTES, 16 MiB\)/,
    );
    expect(SAFETENSORS_MAX_HEADER_BYTES).toBe(16 * 1024 * 1024);
  });

  it("refuses 16 MB of nested brackets by its nesting depth, before JSON.parse", async () => {
    const path = join(dir, "nested.safetensors");
    const body = Buffer.alloc(16 * 1024 * 1024, "[");
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(body.length));
    await writeFile(path, Buffer.concat([prefix, body]));
    // The scan stops at the first bracket past the limit: byte 8 of the header (0-based).
    await expect(readSafetensors(path)).rejects.toThrow(
      new RegExp(`header nests deeper than ${SAFETENSORS_MAX_HEADER_DEPTH} levels of \\{\\} / \\[\\] \\(at header byte 8\\)`),
    );
    // Brackets inside strings do not count, and a valid header with extra nested fields still loads.
    const ok = join(dir, "brackets-in-strings.safetensors");
    const header = { __metadata__: { note: "[[[[[[[[[[{{{{{{{{{{" }, w: { dtype: "F32", shape: [1], data_offsets: [0, 4], x: [[[1]]] } };
    await writeFile(ok, handMade(header, Buffer.from(Float32Array.of(2.5).buffer)));
    const read = await readSafetensors(ok);
    expect(read.tensors.get("w")?.data).toEqual(Float32Array.of(2.5));
    expect(read.metadata.note).toBe("[[[[[[[[[[{{{{{{{{{{");
  });

  it("refuses a header of millions of empty arrays at a valid depth by counting them, before JSON.parse", async () => {
    // '{"a":[[],[],...]}' is 3 levels deep but 16 MB of it held 5.6 million arrays for JSON.parse to build.
    const path = join(dir, "dense.safetensors");
    const arrays = 5_000_000;
    const body = Buffer.from(`{"a":[${"[],".repeat(arrays - 1)}[]]}`);
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(body.length));
    await writeFile(path, Buffer.concat([prefix, body]));
    const max = 64 + Math.floor(body.length / 16);
    await expect(readSafetensors(path)).rejects.toThrow(
      new RegExp(`dense\\.safetensors\\): header of ${body.length} bytes holds ${arrays + 2} objects/arrays, more than ${max} `),
    );
  });

  it("rejects 20,000 F16 tensors aliasing one 8 MB region before decoding any (would need 320 GB as float32)", async () => {
    const n = 8 * 1024 * 1024;
    const header: Record<string, unknown> = {};
    for (let i = 0; i < 20_000; i++) header[`t${i}`] = { dtype: "F16", shape: [n / 2], data_offsets: [0, n] };
    const path = join(dir, "aliased.safetensors");
    await writeFile(path, handMade(header, Buffer.alloc(n)));
    const before = process.memoryUsage().arrayBuffers;
    await expect(readSafetensors(path)).rejects.toThrow(
      /aliased\.safetensors\): tensors 't0' \(data_offsets \[0, 8388608\]\) and 't1' \(data_offsets \[0, 8388608\]\) overlap/,
    );
    // Only the file itself was held: no 16 MB float32 copy of any tensor was made.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(4 * n);
  });
});

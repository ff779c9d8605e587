/**
 * PyTorch checkpoints written by the test itself (legacy torch.save format, pickles built byte by
 * byte) whose declared views would make the reader allocate far more than the file holds
 * (issue #16): the total is checked from the declared views before any tensor is read.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readTorchCheckpoint } from "../../src/models/pytorch/index.js";

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "torch-hostile-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const PROTO2 = [0x80, 0x02];
const STOP = 0x2e;
const MARK = 0x28;
const TUPLE = 0x74;
const REDUCE = 0x52;

function str(s: string): number[] {
  const b = Buffer.from(s, "utf8");
  const n = Buffer.alloc(4);
  n.writeUInt32LE(b.length);
  return [0x58, ...n, ...b]; // BINUNICODE
}
function int(v: number): number[] {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return [0x4a, ...b]; // BININT
}
function global(module: string, name: string): number[] {
  return [0x63, ...Buffer.from(`${module}\n${name}\n`, "latin1")];
}
function tuple(items: number[][]): number[] {
  return [MARK, ...items.flat(), TUPLE];
}

interface View {
  name: string;
  offset: number;
  shape: number[];
  stride: number[];
}

/**
 * A legacy-format checkpoint (magic, protocol 1001, system info, state_dict, storage keys, then the
 * storage as an 8-byte count and its float32 bytes) with one FloatStorage '0' of `numel` values and
 * one tensor per view.
 */
function legacyCheckpoint(numel: number, views: View[]): Buffer {
  const magic = [...PROTO2, 0x8a, 10, ...Buffer.from("6cfc9c46f9206aa85019", "hex"), STOP];
  const protocol = [...PROTO2, 0x4d, 0xe9, 0x03, STOP]; // BININT2 1001
  const sysInfo = [...PROTO2, 0x7d, ...str("little_endian"), 0x88, 0x73, STOP]; // {"little_endian": True}
  const pid = tuple([str("storage"), global("torch", "FloatStorage"), str("0"), str("cpu"), int(numel), [0x4e]]);
  const items = views.map((v) => [
    ...str(v.name),
    ...global("torch._utils", "_rebuild_tensor_v2"),
    ...tuple([
      [...pid, 0x51], // BINPERSID
      int(v.offset),
      tuple(v.shape.map(int)),
      tuple(v.stride.map(int)),
      [0x89], // requires_grad False
      [...global("collections", "OrderedDict"), 0x29, REDUCE],
    ]),
    REDUCE,
  ]);
  const state = [...PROTO2, 0x7d, MARK, ...items.flat(), 0x75, STOP]; // {}, SETITEMS
  const keys = [...PROTO2, 0x5d, MARK, ...str("0"), 0x65, STOP]; // ["0"] (APPENDS)
  const count = Buffer.alloc(8);
  count.writeBigInt64LE(BigInt(numel));
  const data = Buffer.alloc(numel * 4);
  new Float32Array(data.buffer, data.byteOffset, numel).forEach((_, i, a) => (a[i] = i));
  return Buffer.concat([Buffer.from([...magic, ...protocol, ...sysInfo, ...state, ...keys]), count, data]);
}

describe("readTorchCheckpoint: declared views are checked before anything is read", () => {
  it("reads a well-formed hand-written checkpoint (a whole view and a transposed one) with the right values", async () => {
    const path = join(tmp, "ok.pt");
    await writeFile(
      path,
      legacyCheckpoint(6, [
        { name: "a", offset: 0, shape: [2, 3], stride: [3, 1] },
        { name: "aT", offset: 0, shape: [3, 2], stride: [1, 3] },
      ]),
    );
    const got = await readTorchCheckpoint(path);
    expect([...got.get("a")!.data]).toEqual([0, 1, 2, 3, 4, 5]);
    expect([...got.get("aT")!.data]).toEqual([0, 3, 1, 4, 2, 5]);
  });

  it("refuses 40 names aliasing one 4 MB storage from the declared total, naming the storage they share", async () => {
    const numel = 1 << 20; // 4 MiB of float32; budget = 4 × file + 64 MiB ≈ 80 MiB; 40 copies = 160 MiB
    const views = Array.from({ length: 40 }, (_, i) => ({ name: `t${i}`, offset: 0, shape: [numel], stride: [1] }));
    const path = join(tmp, "aliased.pt");
    await writeFile(path, legacyCheckpoint(numel, views));
    const before = process.memoryUsage().arrayBuffers;
    await expect(readTorchCheckpoint(path)).rejects.toThrow(
      new RegExp(
        `aliased\\.pt: tensor 't20' \\[${numel}\\] would bring the tensors read to ${21 * 4 * numel} bytes, more than 4× the file ` +
          `\\(\\d+ bytes\\) \\+ 64 MiB \\(all 40 tensors declared take ${40 * 4 * numel} bytes; 40 of them view storage '0'; .*` +
          `refused before reading any`,
      ),
    );
    // The old reader had made 20 copies (80 MiB) by the time it refused; now none is made.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 * 4 * numel);
    // A filter that keeps few enough of them reads those.
    const few = await readTorchCheckpoint(path, { filter: (n) => n === "t0" || n === "t39" });
    expect([...few.keys()]).toEqual(["t0", "t39"]);
    expect(few.get("t39")!.data[numel - 1]).toBe(numel - 1);
  });

  it("refuses a damaged view of the last tensor before reading the first", async () => {
    const views = [
      { name: "fine", offset: 0, shape: [4], stride: [1] },
      { name: "past-the-end", offset: 2, shape: [4], stride: [1] },
    ];
    const path = join(tmp, "damaged.pt");
    await writeFile(path, legacyCheckpoint(4, views));
    await expect(readTorchCheckpoint(path)).rejects.toThrow(
      /damaged\.pt: tensor 'past-the-end' \[4\] at offset 2 with strides \[1\] reaches float32 element 6 of a storage holding 4/,
    );
  });
});

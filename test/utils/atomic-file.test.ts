/**
 * The one atomic-save module: files (temp + fsync + rename), streams, folders (build beside, swap),
 * and the temporary-name rule that lets leftovers of killed saves be recognised.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  isTempName,
  moveDirAtomically,
  replaceDirAtomically,
  tempPathFor,
  writeFileAtomic,
  writeStreamAtomic,
} from "../../src/utils/atomic-file.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "atomic-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("writeFileAtomic", () => {
  it("replaces the content and leaves no temporary file", async () => {
    const file = join(root, "a.json");
    await writeFileAtomic(file, "one");
    await writeFileAtomic(file, [Buffer.from("tw"), Buffer.from("o")]);
    expect(await readFile(file, "utf8")).toBe("two");
    expect((await readdir(root)).filter(isTempName)).toEqual([]);
  });

  it("keeps the previous copy when producing the data fails midway", async () => {
    const file = join(root, "b.txt");
    await writeFileAtomic(file, "good");
    function* chunks(): Generator<Uint8Array> {
      yield Buffer.from("half");
      throw new Error("producer failed");
    }
    await expect(writeFileAtomic(file, chunks())).rejects.toThrow("producer failed");
    expect(await readFile(file, "utf8")).toBe("good");
    expect((await readdir(root)).filter(isTempName)).toEqual([]);
  });
});

describe("writeStreamAtomic", () => {
  it("keeps the previous copy when the producer throws after writing", async () => {
    const file = join(root, "c.jsonl");
    await writeStreamAtomic(file, async (write) => {
      for (let i = 0; i < 3; i++) await write(`${i}\n`);
    });
    expect(await readFile(file, "utf8")).toBe("0\n1\n2\n");
    await expect(
      writeStreamAtomic(file, async (write) => {
        await write("x".repeat(1 << 20));
        throw new Error("cut off");
      }),
    ).rejects.toThrow("cut off");
    expect(await readFile(file, "utf8")).toBe("0\n1\n2\n");
    expect((await readdir(root)).filter(isTempName)).toEqual([]);
  });
});

describe("folders", () => {
  it("replaceDirAtomically swaps in the new folder and keeps the old one when the build fails", async () => {
    const dir = join(root, "model");
    await replaceDirAtomically(dir, async (tmp) => {
      await mkdir(join(tmp, "sub"));
      await writeFile(join(tmp, "sub", "w.bin"), "v1");
    });
    await expect(
      replaceDirAtomically(dir, async (tmp) => {
        await writeFile(join(tmp, "partial"), "x");
        throw new Error("disk full");
      }),
    ).rejects.toThrow("disk full");
    expect(await readFile(join(dir, "sub", "w.bin"), "utf8")).toBe("v1");
    await replaceDirAtomically(dir, async (tmp) => writeFile(join(tmp, "w.bin"), "v2"));
    expect(await readdir(dir)).toEqual(["w.bin"]);
    expect((await readdir(root)).filter(isTempName)).toEqual([]);
  });

  it("moveDirAtomically replaces an existing folder and restores it when the source is missing", async () => {
    const target = join(root, "best");
    const a = join(root, "candidate-a");
    await mkdir(a);
    await writeFile(join(a, "f"), "a");
    await moveDirAtomically(a, target);
    expect(await readFile(join(target, "f"), "utf8")).toBe("a");
    await expect(moveDirAtomically(join(root, "does-not-exist"), target)).rejects.toThrow(/ENOENT/);
    expect(await readFile(join(target, "f"), "utf8")).toBe("a");
    const b = join(root, "candidate-b");
    await mkdir(b);
    await writeFile(join(b, "f"), "b");
    await moveDirAtomically(b, target);
    expect(await readFile(join(target, "f"), "utf8")).toBe("b");
    expect((await readdir(root)).filter((n) => n.startsWith("candidate") || isTempName(n))).toEqual([]);
  });
});

describe("isTempName", () => {
  it("recognises the names tempPathFor makes and nothing a save commits", () => {
    const name = (p: string) => p.slice(p.lastIndexOf("/") + 1);
    expect(isTempName(name(tempPathFor("/x/manifest.json")))).toBe(true);
    expect(isTempName(name(tempPathFor("/x/docs.abc.jsonl")) + ".old")).toBe(true);
    for (const committed of ["manifest.json", "docs.abc.jsonl", "index.abc.faiss", ".gitignore", "model.onnx.tmp", ".x.tmp-1-zz"]) {
      expect(isTempName(committed)).toBe(false);
    }
  });
});

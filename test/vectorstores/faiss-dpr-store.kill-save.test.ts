/**
 * Atomic save: a child process is SIGKILLed while saving a second, larger version; the folder
 * must still load as the first version. Kill points: as soon as the new generation's index file
 * appears, and as soon as its documents file appears.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTempName } from "../../src/utils/atomic-file.js";
import { FaissDPRStore } from "../../src/vectorstores/faiss-dpr-store.js";
import { HashEmbeddings } from "./helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "faiss-kill-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Runs the child; after "saving-second", polls the folder and SIGKILLs when `pattern` names a new file. */
async function killDuringSave(dir: string, pattern: RegExp): Promise<{ killedBy: string | null; newFile: string | undefined }> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(here, "save-child.ts"), dir], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let firstFiles: string[] = [];
  let newFile: string | undefined;
  const done = new Promise<string | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
  let buf = "";
  child.stdout.on("data", async (chunk: Buffer) => {
    buf += chunk.toString();
    if (buf.includes("saved-first") && firstFiles.length === 0) firstFiles = await readdir(dir);
    if (buf.includes("saving-second")) {
      buf = "";
      for (;;) {
        const files = await readdir(dir).catch(() => [] as string[]);
        newFile = files.find((f) => pattern.test(f) && !firstFiles.includes(f));
        if (newFile || child.exitCode !== null) break;
        await new Promise((r) => setImmediate(r));
      }
      child.kill("SIGKILL");
    }
  });
  const killedBy = await done;
  return { killedBy, newFile };
}

describe("FaissDPRStore.save under SIGKILL", () => {
  for (const [label, pattern] of [
    ["index file", /^index\..*\.faiss$/],
    ["documents file", /^\.docs\..*\.jsonl\.tmp-/], // written to a temporary name, then renamed
  ] as const) {
    it(`leaves the previous copy loadable when killed while writing the ${label}`, async () => {
      const dir = path.join(tmp, label.replace(" ", "-"));
      const { killedBy, newFile } = await killDuringSave(dir, pattern);
      expect(killedBy).toBe("SIGKILL");
      expect(newFile).toBeDefined(); // the second save had started
      const manifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as { count: number };
      expect(manifest.count).toBe(1000);
      const store = await FaissDPRStore.load(dir, new HashEmbeddings(128));
      expect(store.size).toBe(1000);
      const [hit] = await store.searchVectors(
        new Float32Array(128).map((_, i) => Math.sin(i)),
        { k: 1 },
      );
      expect(hit![0]![0].id).toMatch(/^first-\d+$/);
      // the load removed the interrupted generation (the killed saver's lock is stale), and a later save works
      for (const files of [await readdir(dir), await store.save(dir).then(() => readdir(dir))]) {
        expect(files.filter((f) => f.endsWith(".faiss"))).toHaveLength(1);
        expect(files.filter((f) => f.endsWith(".jsonl"))).toHaveLength(1);
        expect(files.filter(isTempName)).toEqual([]);
        expect(files).not.toContain(".lock");
      }
      await store.dispose();
    });
  }
});

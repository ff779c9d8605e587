/**
 * Atomic saving, the one implementation every save in the project uses. A file goes to a temporary
 * file in the destination folder, is flushed to disk (fsync), and only then renamed over the
 * destination; a folder is built as a temporary sibling, flushed, and swapped in. A crash or an
 * error mid-write never leaves a truncated file or half a folder at the destination and never loses
 * the previous good copy. Temporary names all match {@link isTempName}, so leftovers of killed
 * saves can be recognised and removed.
 *
 * What is not promised: durability of the rename itself across a power loss on file systems that
 * do not order metadata (the parent folder is fsynced where the platform allows it).
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdir, open, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";

import { pathExists } from "./fs.js";

/** Data accepted by {@link writeFileAtomic}: a string (UTF-8), bytes, or a sequence of byte chunks. */
export type AtomicData = string | Uint8Array | Iterable<Uint8Array>;

/** A temporary path in the same folder as `path` (so that `rename` is atomic); its name matches {@link isTempName}. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

const TEMP_NAME = /^\..+\.tmp-\d+-[0-9a-f]{8}(\.old)?$/;

/** Whether a file or folder name is one {@link tempPathFor} makes (a leftover when no save is running). */
export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/** Flushes a folder's entries (new names, renames) to disk; a no-op where folders cannot be opened (Windows). */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, "r");
  } catch {
    return;
  }
  try {
    await handle.sync();
  } catch {
    // some file systems refuse fsync on a folder; the rename is still atomic
  } finally {
    await handle.close();
  }
}

/** Flushes one file written by other means (a native writer, for instance) to disk. */
export async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes every file under `dir`, then each folder, so a tree renamed into place is on disk. */
async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) {
      await syncTree(p);
    } else if (entry.isFile()) {
      await fsyncFile(p);
    }
  }
  await fsyncDir(dir);
}

function chunksOf(data: AtomicData): Iterable<Uint8Array> {
  if (typeof data === "string") return [Buffer.from(data, "utf8")];
  if (data instanceof Uint8Array) return [data];
  return data;
}

/**
 * Writes `data` to a temporary file next to `path`, fsyncs it, and returns the temp path. The
 * caller renames it with {@link commitTemp} (used when several files must appear together).
 */
export async function writeTemp(path: string, data: AtomicData): Promise<string> {
  const tmp = tempPathFor(path);
  const handle = await open(tmp, "w");
  try {
    for (const chunk of chunksOf(data)) {
      let written = 0;
      while (written < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, written, chunk.byteLength - written);
        written += bytesWritten;
      }
    }
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  return tmp;
}

/** Renames a temp file written by {@link writeTemp} over its destination (removing it on failure). */
export async function commitTemp(tmp: string, path: string): Promise<void> {
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

/** Writes `data` to `path` atomically (temp file in the same folder, fsync, rename). */
export async function writeFileAtomic(path: string, data: AtomicData): Promise<void> {
  await commitTemp(await writeTemp(path, data), path);
}

/**
 * Streams chunks produced by `produce` into `path` atomically (temp file, fsync, rename), with
 * back-pressure, so that large outputs never have to exist as one string in memory.
 */
export async function writeStreamAtomic(
  path: string,
  produce: (write: (chunk: string | Uint8Array) => Promise<void>) => Promise<void>,
): Promise<void> {
  const tmp = tempPathFor(path);
  const stream = createWriteStream(tmp);
  const write = async (chunk: string | Uint8Array): Promise<void> => {
    if (!stream.write(chunk)) await once(stream, "drain");
  };
  try {
    await produce(write);
    stream.end();
    await once(stream, "finish");
    const handle = await open(tmp, "r+");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    await fsyncDir(dirname(path));
  } catch (err) {
    stream.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Moves folder `src` to `target`, replacing it: an existing target is renamed aside first and
 * deleted only once `src` is in place (restored if the move fails). Both must be on one file system.
 */
export async function moveDirAtomically(src: string, target: string): Promise<void> {
  const abs = resolve(target);
  await syncTree(src);
  let old: string | undefined;
  if (await pathExists(abs)) {
    old = `${tempPathFor(abs)}.old`;
    await rename(abs, old);
  }
  try {
    await rename(src, abs);
  } catch (err) {
    if (old) await rename(old, abs);
    throw err;
  }
  await fsyncDir(dirname(abs));
  if (old) await rm(old, { recursive: true, force: true });
}

/**
 * Replaces folder `target` with the folder built by `build(tmpDir)`: the new folder is built
 * beside the target, flushed, and swapped in by {@link moveDirAtomically}. When `build` throws,
 * the temporary folder is removed and the previous target is untouched.
 */
export async function replaceDirAtomically(target: string, build: (tmpDir: string) => Promise<void>): Promise<void> {
  const abs = resolve(target);
  await mkdir(dirname(abs), { recursive: true });
  const tmp = tempPathFor(abs);
  await mkdir(tmp, { recursive: true });
  try {
    await build(tmp);
    await moveDirAtomically(tmp, abs);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

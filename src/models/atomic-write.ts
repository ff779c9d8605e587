/**
 * Atomic file writing: data goes to a temporary file in the destination folder, is flushed
 * to disk, and only then renamed over the destination. A crash or an error mid-write never
 * leaves a truncated file at the destination and never loses the previous good copy.
 */
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

/** A temporary path in the same folder as `path` (so that rename is atomic). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/**
 * Writes the given chunks to a temporary file next to `path`, fsyncs it, and returns the temp
 * path. The caller renames it with {@link commitTemp} (or removes it on failure).
 */
export async function writeTemp(path: string, chunks: Iterable<Uint8Array>): Promise<string> {
  const tmp = tempPathFor(path);
  const handle = await open(tmp, "w");
  try {
    for (const chunk of chunks) {
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

/** Renames a temp file written by {@link writeTemp} over its destination. */
export async function commitTemp(tmp: string, path: string): Promise<void> {
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Writes `chunks` to `path` atomically (temp file in the same folder + rename). */
export async function writeFileAtomic(path: string, chunks: Iterable<Uint8Array>): Promise<void> {
  const tmp = await writeTemp(path, chunks);
  await commitTemp(tmp, path);
}

/**
 * Atomic file writing, used by every save in the project: data goes to a temporary file in the
 * destination folder, is flushed to disk (fsync), and only then renamed over the destination.
 * A crash or an error mid-write never leaves a truncated file at the destination and never
 * loses the previous good copy.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Data accepted by {@link writeFileAtomic}: a string (UTF-8), bytes, or a sequence of byte chunks. */
export type AtomicData = string | Uint8Array | Iterable<Uint8Array>;

/** A temporary path in the same folder as `path` (so that `rename` is atomic). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
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
  } catch (err) {
    stream.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
}

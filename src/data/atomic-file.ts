import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { once } from "node:events";

/** A temporary path in the same folder as `path` (so that `rename` is atomic). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
}

/**
 * Writes `data` to `path` atomically: into a temporary file in the same folder, then renamed over
 * `path`. A crash mid-write leaves the previous file intact.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Streams chunks produced by `produce` into `path` atomically (temporary file + rename), with
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
    await rename(tmp, path);
  } catch (err) {
    stream.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
}

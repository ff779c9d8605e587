/**
 * File checksums: SHA-256 of a file's bytes, read as a stream (constant memory).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

/** A file's size and SHA-256, as saved in manifests. */
export interface FileChecksum {
  /** Size in bytes. */
  bytes: number;
  /** SHA-256 of the content, lowercase hex. */
  sha256: string;
}

/** Streams `file` through SHA-256 and returns its size and digest. */
export async function checksumFile(file: string): Promise<FileChecksum> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest("hex") };
}

/**
 * A minimal reader for the zip archives `torch.save` writes (PyTorch ≥ 1.6): every entry STORED
 * (no compression), found through the central directory, with ZIP64 records where counts, sizes or
 * offsets need them. Only the directory is read into memory; entry bytes are read where they lie, on
 * demand. CRC-32s are not checked (tensor bytes are never copied through this module).
 */
import type { FileHandle } from "node:fs/promises";

/** One stored entry of the archive. */
export interface ZipEntry {
  name: string;
  /** Offset of the entry's bytes in the file. */
  dataOffset: number;
  /** Length of the entry's bytes. */
  size: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
/** A central directory larger than this is refused (torch's hold a few hundred bytes per tensor). */
const MAX_DIRECTORY_BYTES = 64 * 1024 * 1024;

/**
 * Reads `length` bytes at `offset` of the file, checked against its size first.
 * @throws Error naming `path` and `what` when the range is outside the file or the read comes up short.
 */
export async function readRange(
  fh: FileHandle,
  offset: number,
  length: number,
  fileSize: number,
  path: string,
  what: string,
): Promise<Buffer> {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > fileSize) {
    throw new Error(
      `${path}: ${what} at byte ${offset} (+${length} bytes) lies past the end of the file (${fileSize} bytes): the ` +
        `file is truncated or damaged`,
    );
  }
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, offset);
  if (bytesRead !== length) throw new Error(`${path}: short read of ${what} at byte ${offset}: ${bytesRead} of ${length} bytes`);
  return buf;
}

/** True when the file starts with a zip local file header. */
export async function isZipFile(fh: FileHandle): Promise<boolean> {
  const sig = Buffer.alloc(4);
  const { bytesRead } = await fh.read(sig, 0, 4, 0);
  return bytesRead === 4 && sig.readUInt32LE(0) === LOCAL;
}

function u64(buf: Buffer, at: number, path: string, what: string): number {
  if (at + 8 > buf.length) throw new Error(`${path}: ZIP64 ${what} field is cut short`);
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${path}: ZIP64 ${what} ${v} is too large`);
  return Number(v);
}

/** Count, size and offset of the central directory, from the (ZIP64) end-of-directory records. */
async function findDirectory(fh: FileHandle, fileSize: number, path: string): Promise<{ count: number; size: number; offset: number }> {
  const tailLength = Math.min(fileSize, 65_535 + 22);
  const tail = await readRange(fh, fileSize - tailLength, tailLength, fileSize, path, "the end of the archive");
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${path}: no zip end-of-central-directory record: the file is truncated or not a zip archive`);
  const dir = { count: tail.readUInt16LE(eocd + 10), size: tail.readUInt32LE(eocd + 12), offset: tail.readUInt32LE(eocd + 16) };
  if (dir.count !== 0xffff && dir.size !== 0xffffffff && dir.offset !== 0xffffffff) return dir;
  const loc = eocd - 20;
  if (loc < 0 || tail.readUInt32LE(loc) !== ZIP64_LOCATOR)
    throw new Error(`${path}: ZIP64 archive without its end-of-directory locator (the file is damaged)`);
  const at = u64(tail, loc + 8, path, "end-of-directory offset");
  const rec = await readRange(fh, at, 56, fileSize, path, "the ZIP64 end-of-directory record");
  if (rec.readUInt32LE(0) !== ZIP64_EOCD) throw new Error(`${path}: no ZIP64 end-of-directory record at byte ${at} (the file is damaged)`);
  return {
    count: u64(rec, 32, path, "entry count"),
    size: u64(rec, 40, path, "directory size"),
    offset: u64(rec, 48, path, "directory offset"),
  };
}

/**
 * Reads the central directory of the archive open in `fh` and locates every entry's bytes.
 * @throws Error naming `path` when the archive is truncated, damaged, compressed, or its directory
 *   is implausibly large.
 */
export async function readZipDirectory(fh: FileHandle, fileSize: number, path: string): Promise<Map<string, ZipEntry>> {
  const { count, size: dirSize, offset: dirOffset } = await findDirectory(fh, fileSize, path);
  if (dirSize > MAX_DIRECTORY_BYTES)
    throw new Error(`${path}: zip central directory of ${dirSize} bytes is refused (at most ${MAX_DIRECTORY_BYTES})`);
  if (count * 46 > dirSize)
    throw new Error(`${path}: zip directory claims ${count} entries in ${dirSize} bytes (each takes at least 46): the file is damaged`);
  const dir = await readRange(fh, dirOffset, dirSize, fileSize, path, "the zip central directory");
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > dir.length || dir.readUInt32LE(p) !== CENTRAL)
      throw new Error(`${path}: zip central directory entry ${n} at byte ${dirOffset + p} is damaged`);
    const method = dir.readUInt16LE(p + 10);
    const size32 = dir.readUInt32LE(p + 24);
    const csize32 = dir.readUInt32LE(p + 20);
    const offset32 = dir.readUInt32LE(p + 42);
    const nameEnd = p + 46 + dir.readUInt16LE(p + 28);
    const extraEnd = nameEnd + dir.readUInt16LE(p + 30);
    const next = extraEnd + dir.readUInt16LE(p + 32);
    if (next > dir.length) throw new Error(`${path}: zip central directory entry ${n} runs past the directory's end (the file is damaged)`);
    const name = dir.toString("utf8", p + 46, nameEnd);
    let size = size32;
    let localOffset = offset32;
    // ZIP64 extended information (id 1): the saturated fields follow in order (size, compressed size, offset).
    for (let e = nameEnd; e + 4 <= extraEnd;) {
      const id = dir.readUInt16LE(e);
      const end = e + 4 + dir.readUInt16LE(e + 2);
      if (end > extraEnd) throw new Error(`${path}: extra field of zip entry '${name}' runs past its end (the file is damaged)`);
      if (id === 0x0001) {
        const field = dir.subarray(e + 4, end);
        let q = 0;
        if (size32 === 0xffffffff) {
          size = u64(field, q, path, `size of '${name}'`);
          q += 8;
        }
        if (csize32 === 0xffffffff) q += 8;
        if (offset32 === 0xffffffff) localOffset = u64(field, q, path, `offset of '${name}'`);
      }
      e = end;
    }
    if (method !== 0)
      throw new Error(`${path}: zip entry '${name}' is compressed (method ${method}); torch.save writes stored entries only`);
    const local = await readRange(fh, localOffset, 30, fileSize, path, `the local header of zip entry '${name}'`);
    if (local.readUInt32LE(0) !== LOCAL)
      throw new Error(`${path}: zip entry '${name}' has no local header at byte ${localOffset} (the file is damaged)`);
    const dataOffset = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    if (dataOffset + size > fileSize) {
      throw new Error(
        `${path}: zip entry '${name}' (${size} bytes at byte ${dataOffset}) runs past the end of the file (${fileSize} ` +
          `bytes): the archive is truncated`,
      );
    }
    entries.set(name, { name, dataOffset, size });
    p = next;
  }
  return entries;
}

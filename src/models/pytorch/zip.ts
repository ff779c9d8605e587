/**
 * A minimal reader for the zip archives `torch.save` writes (PyTorch ≥ 1.6): every entry is STORED
 * (no compression), found through the central directory, ZIP64 where sizes or offsets need it. Only
 * the directory is read into memory; entry bytes are read where they lie, on demand.
 */
import type { FileHandle } from "node:fs/promises";

/** One stored entry of the archive. */
export interface ZipEntry {
  name: string;
  /** Offset of the entry's bytes in the file. */
  dataOffset: number;
  size: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

async function readAt(fh: FileHandle, offset: number, length: number, fileSize: number, path: string, what: string): Promise<Buffer> {
  if (offset < 0 || length < 0 || offset + length > fileSize) {
    throw new Error(`${path}: ${what} at byte ${offset} (+${length}) lies past the end of the file (${fileSize} bytes); the archive is truncated or damaged`);
  }
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, offset);
  if (bytesRead !== length) throw new Error(`${path}: short read of ${what} at byte ${offset}: ${bytesRead} of ${length} bytes`);
  return buf;
}

function u64(buf: Buffer, at: number, path: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${path}: a ZIP64 size or offset (${v}) is too large`);
  return Number(v);
}

/** True when the file starts like a zip archive (a local file header). */
export async function isZipFile(fh: FileHandle): Promise<boolean> {
  const sig = Buffer.alloc(4);
  const { bytesRead } = await fh.read(sig, 0, 4, 0);
  return bytesRead === 4 && sig.readUInt32LE(0) === LOCAL;
}

/**
 * Reads the central directory of the archive open in `fh`.
 * @throws Error naming `path` when the archive is truncated, compressed or otherwise not what torch writes.
 */
export async function readZipDirectory(fh: FileHandle, fileSize: number, path: string): Promise<Map<string, ZipEntry>> {
  const tailLength = Math.min(fileSize, 65_536 + 22);
  const tail = await readAt(fh, fileSize - tailLength, tailLength, fileSize, path, "the end of the archive");
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${path}: no zip end-of-central-directory record (the file is truncated or not a zip archive)`);
  let count = tail.readUInt16LE(eocd + 10);
  let dirSize = tail.readUInt32LE(eocd + 12);
  let dirOffset = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || tail.readUInt32LE(loc) !== ZIP64_LOCATOR) throw new Error(`${path}: ZIP64 archive without its end-of-directory locator`);
    const recOffset = u64(tail, loc + 8, path);
    const rec = await readAt(fh, recOffset, 56, fileSize, path, "the ZIP64 end-of-directory record");
    if (rec.readUInt32LE(0) !== ZIP64_EOCD) throw new Error(`${path}: bad ZIP64 end-of-directory record at byte ${recOffset}`);
    count = u64(rec, 32, path);
    dirSize = u64(rec, 40, path);
    dirOffset = u64(rec, 48, path);
  }
  if (dirSize > 64 * 1024 * 1024) throw new Error(`${path}: central directory of ${dirSize} bytes is implausibly large`);
  const dir = await readAt(fh, dirOffset, dirSize, fileSize, path, "the central directory");
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > dir.length || dir.readUInt32LE(p) !== CENTRAL) throw new Error(`${path}: central directory entry ${n} is damaged`);
    const method = dir.readUInt16LE(p + 10);
    let size = dir.readUInt32LE(p + 24);
    const nameLength = dir.readUInt16LE(p + 28);
    const extraLength = dir.readUInt16LE(p + 30);
    const commentLength = dir.readUInt16LE(p + 32);
    let localOffset = dir.readUInt32LE(p + 42);
    const name = dir.toString("utf8", p + 46, p + 46 + nameLength);
    // ZIP64 extended information: the 0xffffffff fields follow in order (uncompressed, compressed, offset).
    let e = p + 46 + nameLength;
    const extraEnd = e + extraLength;
    while (e + 4 <= extraEnd) {
      const id = dir.readUInt16LE(e);
      const len = dir.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (dir.readUInt32LE(p + 24) === 0xffffffff) {
          size = u64(dir, q, path);
          q += 8;
        }
        if (dir.readUInt32LE(p + 20) === 0xffffffff) q += 8;
        if (dir.readUInt32LE(p + 42) === 0xffffffff) localOffset = u64(dir, q, path);
      }
      e += 4 + len;
    }
    if (method !== 0) throw new Error(`${path}: entry '${name}' is compressed (method ${method}); torch.save writes stored entries only`);
    const local = await readAt(fh, localOffset, 30, fileSize, path, `the header of entry '${name}'`);
    if (local.readUInt32LE(0) !== LOCAL) throw new Error(`${path}: entry '${name}' has no local header at byte ${localOffset}`);
    const dataOffset = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    if (dataOffset + size > fileSize) {
      throw new Error(`${path}: entry '${name}' (${size} bytes at byte ${dataOffset}) runs past the end of the file (${fileSize} bytes); the archive is truncated`);
    }
    entries.set(name, { name, dataOffset, size });
    p = extraEnd + commentLength;
  }
  return entries;
}

/** Reads `length` bytes of the file at `offset` (checked against the file size). */
export function readRange(fh: FileHandle, offset: number, length: number, fileSize: number, path: string, what: string): Promise<Buffer> {
  return readAt(fh, offset, length, fileSize, path, what);
}

/**
 * Integrity checks of hub downloads (see {@link downloadModel} in ./hub.ts): cache folder names that
 * cannot collide, the sizes and SHA-256 digests a server announces in its headers, format checks that
 * catch a truncated body no header describes, and the removal of temporary files left by killed
 * downloads.
 *
 * @module
 */
import { lstat, readdir, rm } from "node:fs/promises";
import { join } from "node:path";

import { isTempName } from "../utils/atomic-file.js";
import { SAFETENSORS_MAX_HEADER_BYTES } from "./safetensors.js";

/** Why a repository id is refused, or null when it is valid (`owner/name`, Hugging Face's rules). */
export function repoIdProblem(repo: string): string | null {
  if (!/^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/.test(repo)) {
    return "expected owner/name: letters, digits, '-', '_' and '.', each part starting with a letter or digit";
  }
  // Hugging Face refuses both; '--' is also the separator of the cache folder name (models--owner--name).
  if (repo.includes("--")) return "'--' is not allowed in a repository id (Hugging Face refuses it)";
  if (repo.includes("..")) return "'..' is not allowed in a repository id (Hugging Face refuses it)";
  return null;
}

/** Why a revision is refused, or null when it is valid (empty, leading '.', '..', control characters). */
export function revisionProblem(revision: string): string | null {
  if (revision.length === 0) return "the revision is empty";
  if (revision.startsWith(".")) return "a revision may not start with '.' (git refuses such ref names)";
  if (revision.includes("..")) return "a revision may not contain '..' (git refuses such ref names)";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(revision)) return "a revision may not contain control characters";
  if (revisionFolderName(revision).length > 200) return "the revision is too long for a folder name (over 200 characters encoded)";
  return null;
}

/**
 * The cache folder name of a revision: letters, digits, '_', '-' and '.' stay as they are (so folders
 * written by earlier versions, which kept these and replaced the rest by '_', are still found), every
 * other character becomes '%' and its UTF-8 bytes in upper-case hex ('v1/x' → 'v1%2Fx', '%' → '%25').
 * '%' is never kept, so two revisions never get one name.
 */
export function revisionFolderName(revision: string): string {
  let out = "";
  for (const ch of revision) {
    if (/^[\w.-]$/.test(ch)) {
      out += ch;
    } else {
      for (const byte of Buffer.from(ch, "utf8")) out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    }
  }
  return out;
}

/** The cache folder name of a valid repository id (`models--owner--name`, Hugging Face's layout). */
export function repoFolderName(repo: string): string {
  return `models--${repo.replace("/", "--")}`;
}

/** What a server's headers promise about one file's bytes. */
export interface Expectation {
  /** The size in bytes, and the header it came from (`content-length`, `x-linked-size`). */
  sizes: Array<{ bytes: number; from: string }>;
  /** SHA-256 digests (64 lower-case hex digits) and where each came from (`x-linked-etag`, `etag`, `caller`). */
  sha256: Array<{ hex: string; from: string }>;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The hex digest an ETag value carries when it is a strong SHA-256 ETag (`"<64 hex>"`), else undefined. */
export function sha256OfEtag(value: string | null, allowWeak: boolean): string | undefined {
  if (value === null) return undefined;
  let v = value.trim();
  if (v.startsWith("W/")) {
    if (!allowWeak) return undefined;
    v = v.slice(2);
  }
  v = v.replace(/^"(.*)"$/, "$1").toLowerCase();
  return SHA256_HEX.test(v) ? v : undefined;
}

/** Whether a string is a SHA-256 hex digest (64 hex digits, either case). */
export function isSha256Hex(value: unknown): value is string {
  return typeof value === "string" && SHA256_HEX.test(value.toLowerCase());
}

/**
 * Collects what the responses of one transfer (redirect hops, then the final response) say about the
 * file: `X-Linked-Size` and `X-Linked-Etag` (Hugging Face's size and SHA-256 of LFS files, on the
 * resolve response) from any response, a strong ETag of 64 hex digits (LFS files' SHA-256) from the
 * first response (the resolve URL's) when it is not content-encoded, and `Content-Length` of the
 * final response when it is not content-encoded. ETags of other shapes (git blob SHA-1, MD5) say nothing checkable and are ignored.
 */
export function expectationOf(hops: Response[], final: Response): Expectation {
  const sizes: Expectation["sizes"] = [];
  const sha256: Expectation["sha256"] = [];
  const addSha = (hex: string | undefined, from: string) => {
    if (hex && !sha256.some((s) => s.hex === hex && s.from === from)) sha256.push({ hex, from });
  };
  const all = [...hops, final];
  for (const res of all) {
    const linkedSize = res.headers.get("x-linked-size");
    if (linkedSize !== null && /^\d+$/.test(linkedSize.trim()) && !sizes.some((s) => s.from === "x-linked-size")) {
      sizes.push({ bytes: Number(linkedSize.trim()), from: "x-linked-size" });
    }
    addSha(sha256OfEtag(res.headers.get("x-linked-etag"), true), "x-linked-etag");
  }
  // The ETag of the first answer only (the resolve URL's, as huggingface_hub reads it): what a CDN
  // further down the redirects calls its ETag is its own business.
  if (all[0]!.headers.get("content-encoding") === null) addSha(sha256OfEtag(all[0]!.headers.get("etag"), false), "etag");
  const length = final.headers.get("content-length");
  if (length !== null && /^\d+$/.test(length.trim()) && final.headers.get("content-encoding") === null) {
    sizes.push({ bytes: Number(length.trim()), from: "content-length" });
  }
  return { sizes, sha256 };
}

/** Checks a file's bytes as they stream by; `finish` throws when they are not a whole file of the format. */
export interface FormatCheck {
  update(chunk: Uint8Array): void;
  /**
   * Throws an Error saying what is wrong (truncated, not the format) when the bytes are not a whole
   * file; else returns the name of the check that passed (`json`, `utf-8`, `safetensors`, `onnx`,
   * `zip`), or undefined when there was nothing to check (a text over 64 MiB, a legacy PyTorch file).
   */
  finish(): string | undefined;
}

/** Text and JSON files up to this size are kept in memory while they stream and parsed at the end. */
const MAX_PARSED_TEXT_BYTES = 64 * 1024 * 1024;

class TextCheck implements FormatCheck {
  private chunks: Uint8Array[] = [];
  private size = 0;
  constructor(readonly name: "json" | "utf-8") {}
  update(chunk: Uint8Array): void {
    this.size += chunk.byteLength;
    if (this.size <= MAX_PARSED_TEXT_BYTES) this.chunks.push(chunk.slice());
    else this.chunks = [];
  }
  finish(): string | undefined {
    if (this.size > MAX_PARSED_TEXT_BYTES) return undefined;
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(this.chunks));
    } catch {
      throw new Error("is not valid UTF-8 (truncated in the middle of a character?)");
    }
    if (this.name === "json") {
      try {
        JSON.parse(text);
      } catch (err) {
        throw new Error(`is not valid JSON (truncated?): ${(err as Error).message}`);
      }
    }
    return this.name;
  }
}

/** The 8-byte header length, the JSON header, then exactly as many data bytes as the header's offsets reach. */
class SafetensorsCheck implements FormatCheck {
  private head: Uint8Array[] = [];
  private headSize = 0;
  private received = 0;
  private expected: number | undefined;
  private problem: string | undefined;
  update(chunk: Uint8Array): void {
    this.received += chunk.byteLength;
    if (this.expected !== undefined || this.problem !== undefined) return;
    this.head.push(chunk.slice());
    this.headSize += chunk.byteLength;
    if (this.headSize < 8) return;
    const all = Buffer.concat(this.head);
    const headerLength = Number(all.readBigUInt64LE(0));
    if (headerLength > SAFETENSORS_MAX_HEADER_BYTES) {
      this.problem = `declares a ${headerLength}-byte header (over ${SAFETENSORS_MAX_HEADER_BYTES}): not a safetensors file`;
      return;
    }
    if (all.byteLength < 8 + headerLength) return;
    this.head = [];
    let end = 0;
    try {
      const header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(all.subarray(8, 8 + headerLength))) as unknown;
      if (typeof header !== "object" || header === null || Array.isArray(header)) throw new Error("the header is not a JSON object");
      for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
        if (name === "__metadata__") continue;
        const offsets = (entry as { data_offsets?: unknown } | null)?.data_offsets;
        if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) {
          throw new Error(`tensor '${name}' has no valid data_offsets`);
        }
        end = Math.max(end, offsets[1] as number);
      }
    } catch (err) {
      this.problem = `has an invalid header: ${(err as Error).message}`;
      return;
    }
    this.expected = 8 + headerLength + end;
  }
  finish(): string {
    if (this.problem) throw new Error(this.problem);
    if (this.expected === undefined) throw new Error(`ends after ${this.received} bytes, inside its header (truncated)`);
    if (this.received !== this.expected) {
      const what = this.received < this.expected ? "truncated" : "trailing bytes";
      throw new Error(`is ${this.received} bytes but its header describes ${this.expected} (${what})`);
    }
    return "safetensors";
  }
}

/**
 * Walks the top-level fields of a protocol-buffers message (an ONNX ModelProto): a body cut inside a
 * field, or a model without its graph (field 7), is refused. A cut exactly between two top-level
 * fields after the graph would pass; the graph is nearly the whole file.
 */
class OnnxCheck implements FormatCheck {
  private state: "tag" | "varint" | "length" | "skip" = "tag";
  private varint = 0;
  private shift = 0;
  private field = 0;
  private skip = 0;
  private sawGraph = false;
  private problem: string | undefined;
  private offset = 0;
  update(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.byteLength && this.problem === undefined) {
      if (this.state === "skip") {
        const n = Math.min(this.skip, chunk.byteLength - i);
        this.skip -= n;
        i += n;
        if (this.skip === 0) this.state = "tag";
        continue;
      }
      const byte = chunk[i++]!;
      if (this.shift > 63) {
        this.problem = `has a varint longer than 10 bytes at byte ${this.offset + i}: not an ONNX model`;
        break;
      }
      this.varint += (byte & 0x7f) * 2 ** this.shift;
      this.shift += 7;
      if (byte & 0x80) continue;
      const value = this.varint;
      this.varint = 0;
      this.shift = 0;
      if (this.state === "tag") {
        const wire = value % 8;
        this.field = Math.floor(value / 8);
        if (this.field === 0 || wire === 3 || wire === 4 || wire > 5) {
          const where = `number ${this.field}, wire type ${wire}) at byte ${this.offset + i}`;
          this.problem = `has an invalid protobuf field (${where}: not an ONNX model`;
          break;
        }
        if (this.field === 7) this.sawGraph = true;
        if (wire === 0) this.state = "varint";
        else if (wire === 2) this.state = "length";
        else [this.state, this.skip] = ["skip", wire === 1 ? 8 : 4];
      } else if (this.state === "varint") {
        this.state = "tag";
      } else {
        this.skip = value;
        this.state = value === 0 ? "tag" : "skip";
      }
    }
    this.offset += chunk.byteLength;
  }
  finish(): string {
    if (this.problem) throw new Error(this.problem);
    if (this.state !== "tag" || this.shift !== 0) throw new Error(`ends inside a protobuf field after ${this.offset} bytes (truncated)`);
    if (!this.sawGraph) throw new Error("has no graph (ModelProto field 7): truncated or not an ONNX model");
    return "onnx";
  }
}

/** A zip archive (PyTorch's current format) ends with an end-of-central-directory record. */
class ZipCheck implements FormatCheck {
  private tail = Buffer.alloc(0);
  private first: number[] = [];
  update(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.byteLength && this.first.length < 4; i++) this.first.push(chunk[i]!);
    // The record sits in the last 22 + 65535 (comment) bytes.
    const keep = 65557;
    if (chunk.byteLength >= keep) this.tail = Buffer.from(chunk.subarray(chunk.byteLength - keep));
    else this.tail = Buffer.concat([this.tail.subarray(Math.max(0, this.tail.byteLength + chunk.byteLength - keep)), chunk]);
  }
  finish(): string | undefined {
    if (this.first.join() !== "80,75,3,4") return undefined; // PyTorch's legacy (pickle) format: nothing to check here
    if (this.tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06])) < 0) {
      throw new Error("is a zip archive without its end-of-central-directory record (truncated)");
    }
    return "zip";
  }
}

/** The format check for a repository path, or undefined when its format has nothing cheap to check. */
export function formatCheckFor(path: string): FormatCheck | undefined {
  if (path.endsWith(".json")) return new TextCheck("json");
  if (path.endsWith(".txt")) return new TextCheck("utf-8");
  if (path.endsWith(".safetensors")) return new SafetensorsCheck();
  if (path.endsWith(".onnx")) return new OnnxCheck();
  if (path.endsWith(".bin")) return new ZipCheck();
  return undefined;
}

/** A temporary file is left alone while this recent, even when its writer's pid is not found. */
export const STALE_TEMP_MS = 60 * 60 * 1000;

function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes, below `dir`, the temporary files and folders of saves that can no longer finish: those
 * whose name ({@link isTempName}: `.<name>.tmp-<pid>-<random>`) carries the pid of a process not
 * running on this machine, and those not written for {@link STALE_TEMP_MS} (a live writer keeps its
 * file's modification time current). Returns the removed paths.
 */
export async function removeStaleTemps(dir: string, now: number = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return removed;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (isTempName(entry.name)) {
      const pid = Number(/\.tmp-(\d+)-[0-9a-f]{8}(\.old)?$/.exec(entry.name)?.[1]);
      let mtime: number;
      try {
        mtime = (await lstat(path)).mtimeMs;
      } catch {
        continue;
      }
      if (!processAlive(pid) || now - mtime > STALE_TEMP_MS) {
        await rm(path, { recursive: true, force: true });
        removed.push(path);
      }
    } else if (entry.isDirectory()) {
      removed.push(...(await removeStaleTemps(path, now)));
    }
  }
  return removed;
}

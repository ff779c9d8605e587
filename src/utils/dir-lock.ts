/**
 * A folder's writer lock: `<dir>/.lock`, created atomically with the holder's pid, host and start
 * time (as PostgreSQL's postmaster.pid). A lock whose process is gone (same host, pid not running)
 * is stale and taken over; a live one is refused with a message naming its holder.
 *
 * @module
 */
import { hostname } from "node:os";
import { link, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tempPathFor } from "./atomic-file.js";

/** The lock file's name inside the locked folder. */
export const LOCK_FILE = ".lock";

interface LockInfo {
  pid: number;
  host: string;
  since: string;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by another user
  }
}

async function readLock(file: string): Promise<LockInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(file, "utf8")) as Partial<LockInfo>;
    if (Number.isInteger(info.pid) && typeof info.host === "string") return info as LockInfo;
  } catch {
    // missing or unreadable: treated as absent / foreign below
  }
  return undefined;
}

/** What {@link acquireDirLock} returns: call `release` once the guarded work is done. */
export interface DirLock {
  release(): Promise<void>;
}

/**
 * Takes `<dir>/.lock` for this process. Returns undefined when another live process holds it (or a
 * lock file that cannot be read); a stale lock (its process gone, on this host) is removed and retaken.
 * Errors other than "already locked" (a read-only folder, say) are thrown to the caller.
 */
export async function tryDirLock(dir: string): Promise<DirLock | undefined> {
  const file = join(dir, LOCK_FILE);
  const info: LockInfo = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  const temp = tempPathFor(file);
  await writeFile(temp, JSON.stringify(info));
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await link(temp, file); // atomic: fails with EEXIST when held, and the content is complete when it appears
        return {
          release: async () => {
            const now = await readLock(file);
            if (now && now.pid === info.pid && now.host === info.host && now.since === info.since) await rm(file, { force: true });
          },
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      const holder = await readLock(file);
      const stale = holder !== undefined && holder.host === info.host && !processAlive(holder.pid);
      if (!stale) return undefined;
      await rm(file, { force: true });
    }
    return undefined;
  } finally {
    await rm(temp, { force: true });
  }
}

/**
 * Takes `<dir>/.lock` or throws an Error naming the holder and the fix (`who` names the caller).
 */
export async function acquireDirLock(dir: string, who: string): Promise<DirLock> {
  const lock = await tryDirLock(dir);
  if (lock) return lock;
  const file = join(dir, LOCK_FILE);
  const holder = await readLock(file);
  const by = holder ? `process ${holder.pid} on ${holder.host} since ${holder.since}` : "another process";
  throw new Error(`${who}: ${dir} is being written by ${by} (${file}); wait for it, or remove ${file} if no such process is running`);
}

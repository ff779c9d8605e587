/**
 * Where the installed package is: its root (two folders above this module, from src/cli in a clone
 * and from dist/cli in the published package alike) and its version.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root (package.json, scripts/, src/assets/). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The package's version from its package.json. */
export function packageVersion(root: string = PACKAGE_ROOT): string {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: unknown };
  if (typeof pkg.version !== "string") throw new Error(`${join(root, "package.json")} has no version`);
  return pkg.version;
}

/**
 * `langchain-dpr build-native`: runs the package's scripts/build-native.sh with bash (faiss-node and
 * the FaissDPRStore addon against the system faiss) and passes its exit code through.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { constants } from "node:os";
import { join } from "node:path";

import { parseCliArgs, PROCESS_IO, runCommandLine, type CliIO } from "../utils/cli-args.js";
import { PACKAGE_ROOT } from "./package.js";
import { BUILD_NATIVE_USAGE } from "./usage.js";

const WHO = "build-native";

/** The build script of the package. */
export const BUILD_NATIVE_SCRIPT = join(PACKAGE_ROOT, "scripts", "build-native.sh");

/**
 * Runs `bash <script>` with the terminal's stdio and returns its exit code (128 + the signal number
 * when a signal ended it); 1 when the script is missing or bash cannot start; 2 for any argument
 * but `--help` (the script takes none; its settings are environment variables).
 */
export async function runBuildNativeCli(argv: string[], io: CliIO = PROCESS_IO, options: { script?: string } = {}): Promise<number> {
  const script = options.script ?? BUILD_NATIVE_SCRIPT;
  return runCommandLine({ who: WHO, usage: BUILD_NATIVE_USAGE, io }, async () => {
    const { values } = parseCliArgs(WHO, { args: argv, options: { help: { type: "boolean" } } });
    if (values.help) {
      io.stdout(BUILD_NATIVE_USAGE);
      return 0;
    }
    if (!existsSync(script)) throw new Error(`${WHO}: ${script} is missing (the package ships scripts/build-native.sh)`);
    return new Promise<number>((resolvePromise, reject) => {
      const child = spawn("bash", [script], { stdio: "inherit" });
      child.on("error", (err) => reject(new Error(`${WHO}: cannot run bash: ${err.message}`)));
      child.on("exit", (code, signal) => {
        if (code !== null) resolvePromise(code);
        else resolvePromise(128 + ((signal && constants.signals[signal]) || 0));
      });
    });
  });
}

/**
 * The `langchain-dpr` dispatcher: `langchain-dpr <command> [options]`. Exit codes, the same for
 * every command: 0 success; 1 runtime error (the message on stderr; its stack trace too with
 * `LANGCHAIN_DPR_DEBUG=1`), a missing optional peer included (the message names the `npm install`
 * command); 2 usage error (unknown command or flag, bad or missing flag value: the message, then the
 * usage, on stderr). `build-native` passes its script's exit code through.
 *
 * @module
 */
import { PROCESS_IO, reportCliError, UsageError, type CliIO } from "../utils/cli-args.js";
import { assertPeers, type OptionalFeature } from "../utils/optional-peer.js";
import { COMMANDS, findCommand } from "./commands.js";
import { packageVersion } from "./package.js";

const WHO = "langchain-dpr";

/** `langchain-dpr --help`. */
export function mainUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return `Usage: langchain-dpr <command> [options]
       langchain-dpr <command> --help      the command's options
       langchain-dpr --version

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join("\n")}

Exit codes: 0 success, 1 runtime error, 2 usage error (LANGCHAIN_DPR_DEBUG=1 prints stack traces).
Optional peers: train, pretrain, train-cross-encoder and gpu-check need TF.js; serve needs fastify;
evaluate draws its SVG plots with vega and vega-lite when they are installed.
`;
}

/** Options of {@link runCli} (tests). */
export interface RunCliOptions {
  io?: CliIO;
  /** The optional-peer check (default: {@link assertPeers}); throws when a feature's packages are missing. */
  assertPeers?: (feature: OptionalFeature, who: string) => void;
}

function wantsHelp(argv: string[]): boolean {
  for (const a of argv) {
    if (a === "--") return false;
    if (a === "--help" || a === "-h") return true;
  }
  return false;
}

/**
 * Runs `langchain-dpr` with `argv` (the arguments after the program name) and returns the exit code.
 * Never throws.
 */
export async function runCli(argv: readonly string[], options: RunCliOptions = {}): Promise<number> {
  const io = options.io ?? PROCESS_IO;
  const checkPeers = options.assertPeers ?? assertPeers;
  const [name, ...rest] = argv;
  if (name === undefined) return reportCliError(new UsageError(`${WHO}: no command given`), { who: WHO, usage: mainUsage(), io });
  if (name === "--help" || name === "-h" || name === "help") {
    const topic = name === "help" ? rest[0] : undefined;
    if (topic !== undefined) {
      const command = findCommand(topic);
      if (!command) return reportCliError(unknownCommand(topic), { who: WHO, usage: mainUsage(), io });
      io.stdout(command.usage);
      return 0;
    }
    io.stdout(mainUsage());
    return 0;
  }
  if (name === "--version" || name === "-v") {
    return runSafely(io, () => {
      io.stdout(`${packageVersion()}\n`);
      return 0;
    });
  }
  if (name.startsWith("-"))
    return reportCliError(new UsageError(`${WHO}: unknown option '${name}'; a command comes first`), { who: WHO, usage: mainUsage(), io });
  const command = findCommand(name);
  if (!command) return reportCliError(unknownCommand(name), { who: WHO, usage: mainUsage(), io });
  if (wantsHelp(rest)) {
    io.stdout(command.usage);
    return 0;
  }
  const who = `${WHO} ${command.name}`;
  try {
    for (const feature of command.peers) checkPeers(feature, who);
    return await command.run(rest, io);
  } catch (err) {
    // A missing peer, or a module that failed to load: runtime errors (the commands report their own).
    return reportCliError(err, { who, usage: command.usage, io });
  }
}

function unknownCommand(name: string): UsageError {
  return new UsageError(`${WHO}: unknown command '${name}'; commands: ${COMMANDS.map((c) => c.name).join(", ")}`);
}

async function runSafely(io: CliIO, body: () => number): Promise<number> {
  try {
    return body();
  } catch (err) {
    return reportCliError(err, { who: WHO, io });
  }
}

/**
 * The process entry: runs {@link runCli} on `argv` and exits with its code, except after a command
 * that keeps running (the server), whose process stays up with exit code 0 until it is stopped.
 * Exiting explicitly matters: TF.js backends and onnxruntime may leave threads that would keep the
 * process alive after the command has finished.
 */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const code = await runCli(argv);
  if (code === 0 && findCommand(argv[0])?.keepsRunning && !wantsHelp(argv.slice(1))) {
    process.exitCode = 0;
    return;
  }
  process.exit(code);
}

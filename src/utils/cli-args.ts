/**
 * What every command line of the project shares: number-valued flags parsed one way, one kind of
 * usage error, strict `parseArgs`, and one mapping from what a command throws to its exit code
 * (0 success, 1 runtime error, 2 usage error).
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/**
 * A usage error: an unknown command or flag, a bad flag value, a missing required flag, flags
 * that exclude each other. Commands exit 2 on it, after the message and the usage text.
 */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Whether `err` is a usage error: a {@link UsageError}, or one of Node's `parseArgs` strict-mode
 * errors (`ERR_PARSE_ARGS_UNKNOWN_OPTION`, `ERR_PARSE_ARGS_INVALID_OPTION_VALUE`,
 * `ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL`).
 */
export function isUsageError(err: unknown): boolean {
  if (err instanceof UsageError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}

/** What a numeric flag must be. */
export interface NumberFlagRule {
  /** Only whole numbers. */
  integer?: boolean;
  /** Smallest accepted value. */
  min?: number;
}

function describeRule(rule: NumberFlagRule): string {
  const kind = rule.integer ? "an integer" : "a number";
  return rule.min === undefined ? kind : `${kind} >= ${rule.min}`;
}

/**
 * Parses a numeric flag's text; `undefined` when the flag was not given.
 * @throws UsageError `"<who>: <flag> must be an integer >= 1, got "x""` naming the CLI, the flag and the text.
 */
export function parseNumberFlag(who: string, flag: string, text: string | undefined, rule: NumberFlagRule = {}): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  const ok =
    text.trim() !== "" &&
    Number.isFinite(n) &&
    // integers in plain decimal only (no "1e3", "0x10")
    (!rule.integer || /^\s*[+-]?\d+\s*$/.test(text)) &&
    (rule.min === undefined || n >= rule.min);
  if (!ok) throw new UsageError(`${who}: ${flag} must be ${describeRule(rule)}, got "${text}"`);
  return n;
}

/**
 * Node's `parseArgs`, strict and without positionals unless the config says otherwise; its errors
 * become {@link UsageError}s prefixed `"<who>: "` (without Node's hint about `--` positionals).
 */
export function parseCliArgs<T extends ParseArgsConfig>(who: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs<T>({ strict: true, allowPositionals: false, ...config });
  } catch (err) {
    if (!isUsageError(err)) throw err;
    throw new UsageError(`${who}: ${(err as Error).message.replace(/\. To specify a positional argument.*$/s, "")}`);
  }
}

/** Where a command line writes. */
export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** The process's stdout and stderr. */
export const PROCESS_IO: CliIO = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

/** Whether stack traces are printed (`LANGCHAIN_DPR_DEBUG=1`). */
export function debugEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.LANGCHAIN_DPR_DEBUG === "1";
}

function withNewline(text: string): string {
  return text.endsWith("\n") ? text : `${text}\n`;
}

/** `err`'s message prefixed `"<who>: "` unless it already starts with `who` (`"<who>: ..."`, `"<who> needs ..."`). */
export function cliErrorMessage(err: unknown, who: string): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.startsWith(`${who}:`) || msg.startsWith(`${who} `) ? msg : `${who}: ${msg}`;
}

/**
 * Writes what a command threw and returns its exit code: a usage error ({@link isUsageError}) →
 * the message, a blank line and `usage` on stderr, 2; anything else → the message on stderr
 * (its stack too with `LANGCHAIN_DPR_DEBUG=1`), 1.
 */
export function reportCliError(err: unknown, context: { who: string; usage?: string; io?: CliIO }): number {
  const io = context.io ?? PROCESS_IO;
  const message = cliErrorMessage(err, context.who);
  if (isUsageError(err)) {
    io.stderr(withNewline(message) + (context.usage ? `\n${withNewline(context.usage)}` : ""));
    return 2;
  }
  const stack = debugEnabled() && err instanceof Error && err.stack ? `\n${err.stack}` : "";
  io.stderr(withNewline(message + stack));
  return 1;
}

/**
 * Runs a command's body and maps the outcome to an exit code: the code it returns (0 when it
 * returns nothing), else {@link reportCliError}'s. Never throws.
 */
export async function runCommandLine(
  context: { who: string; usage?: string; io?: CliIO },
  body: () => Promise<number | void> | number | void,
): Promise<number> {
  try {
    return (await body()) ?? 0;
  } catch (err) {
    return reportCliError(err, context);
  }
}

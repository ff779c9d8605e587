/**
 * A one-line progress bar for command-line tools, written to stderr so stdout stays clean for
 * results. On a TTY the line is rewritten in place; otherwise (CI logs, pipes) a line is printed
 * at most every `intervalMs` and at completion.
 */
export interface ProgressBarParams {
  /** Label printed before the bar. */
  label?: string;
  /** `"tty"` rewrites one line, `"lines"` prints lines, `"off"` prints nothing. Default: tty when stderr is a TTY, else lines. */
  mode?: "tty" | "lines" | "off";
  /** Minimum time between printed lines in `"lines"` mode. Default 10 s. */
  intervalMs?: number;
  /** Where to write. Default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** A progress bar: `[#####-----] 50/100 text`. */
export class ProgressBar {
  label = "";
  mode: "tty" | "lines" | "off";
  intervalMs = 10_000;
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean };
  private lastLine = 0;
  private shown = false;
  /** First update seen (count and time): the rate is measured from it, so a resumed job's ETA is right. */
  private first: { done: number; at: number } | undefined;

  constructor(params: ProgressBarParams = {}) {
    this.stream = params.stream ?? process.stderr;
    this.label = params.label ?? this.label;
    this.intervalMs = params.intervalMs ?? this.intervalMs;
    this.mode = params.mode ?? (this.stream.isTTY ? "tty" : "lines");
  }

  /** Shows `done` of `total` with an optional text; an ETA is added from the rate since the first update. */
  update(done: number, total: number, text = ""): void {
    if (this.mode === "off") return;
    const width = 24;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const filled = Math.round(width * frac);
    const now = Date.now();
    this.first ??= { done, at: now };
    const elapsed = (now - this.first.at) / 1000;
    const rate = elapsed > 0 ? (done - this.first.done) / elapsed : 0;
    const eta = rate > 0 && total > done ? ` ETA ${formatDuration((total - done) / rate)}` : "";
    const prefix = this.label ? `${this.label} ` : "";
    const line = `${prefix}[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}${text ? ` ${text}` : ""}${eta}`;
    if (this.mode === "tty") {
      this.stream.write(`\r${line}\x1b[K`);
      this.shown = true;
      if (done >= total) this.done();
    } else if (Date.now() - this.lastLine >= this.intervalMs || done >= total) {
      this.stream.write(line + "\n");
      this.lastLine = Date.now();
    }
  }

  /** Ends the bar's line (TTY mode). */
  done(): void {
    if (this.mode === "tty" && this.shown) {
      this.stream.write("\n");
      this.shown = false;
    }
  }

  /** Erases the bar's line (TTY mode) so other output can follow. */
  clear(): void {
    if (this.mode === "tty" && this.shown) {
      this.stream.write("\r\x1b[K");
      this.shown = false;
    }
  }
}

/** Seconds as "1h02m", "3m05s" or "12s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

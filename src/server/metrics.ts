/**
 * A minimal Prometheus metrics registry (counters, gauges, histograms with labels) rendering the
 * text exposition format 0.0.4. Small on purpose: the server needs a handful of series.
 *
 * @module
 */

/** Label values of one series. */
export type Labels = Record<string, string>;

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function labelKey(names: readonly string[], labels: Labels, metric: string): string {
  const extra = Object.keys(labels).filter((k) => !names.includes(k));
  if (extra.length > 0)
    throw new Error(`metrics: ${metric} has no label ${JSON.stringify(extra[0])} (labels: ${names.join(", ") || "none"})`);
  return names.map((n) => labels[n] ?? "").join("\u0000");
}

function renderLabels(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i]!)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function formatValue(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (Number.isNaN(v)) return "NaN";
  return String(v);
}

interface Metric {
  readonly name: string;
  render(): string;
}

abstract class Base implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    private readonly type: string,
  ) {
    if (!NAME_RE.test(name)) throw new Error(`metrics: invalid metric name ${JSON.stringify(name)}`);
    for (const l of labelNames) {
      if (!LABEL_RE.test(l) || l === "le") throw new Error(`metrics: invalid label name ${JSON.stringify(l)} on ${name}`);
    }
  }

  protected header(): string {
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
  }

  abstract render(): string;
}

/** A monotonically increasing counter. */
export class Counter extends Base {
  private readonly values = new Map<string, { labels: string[]; value: number }>();

  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, labelNames, "counter");
    if (labelNames.length === 0) this.values.set("", { labels: [], value: 0 });
  }

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`metrics: counter ${this.name} can only increase (got ${by})`);
    const key = labelKey(this.labelNames, labels, this.name);
    const e = this.values.get(key);
    if (e) e.value += by;
    else this.values.set(key, { labels: this.labelNames.map((n) => labels[n] ?? ""), value: by });
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelKey(this.labelNames, labels, this.name))?.value ?? 0;
  }

  render(): string {
    let out = this.header();
    for (const e of this.values.values()) out += `${this.name}${renderLabels(this.labelNames, e.labels)} ${formatValue(e.value)}\n`;
    return out;
  }
}

/** A gauge whose value is read from a callback at scrape time (or set directly). */
export class Gauge extends Base {
  private value = 0;

  constructor(
    name: string,
    help: string,
    private readonly collect?: () => number,
  ) {
    super(name, help, [], "gauge");
  }

  set(v: number): void {
    this.value = v;
  }

  get(): number {
    return this.collect ? this.collect() : this.value;
  }

  render(): string {
    return `${this.header()}${this.name} ${formatValue(this.get())}\n`;
  }
}

/** Default latency buckets in seconds: 1 ms … 10 s. */
export const DEFAULT_SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A cumulative histogram with fixed upper bounds (`le`), plus `_sum` and `_count`. */
export class Histogram extends Base {
  readonly buckets: number[];

  private readonly series = new Map<string, { labels: string[]; counts: number[]; sum: number; count: number }>();

  constructor(name: string, help: string, labelNames: readonly string[] = [], buckets = DEFAULT_SECONDS_BUCKETS) {
    super(name, help, labelNames, "histogram");
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))) {
      throw new Error(`metrics: histogram ${name} needs finite, strictly increasing buckets`);
    }
    this.buckets = [...buckets];
  }

  observe(labels: Labels, value: number): void {
    if (!Number.isFinite(value)) return;
    const key = labelKey(this.labelNames, labels, this.name);
    let s = this.series.get(key);
    if (!s) {
      s = { labels: this.labelNames.map((n) => labels[n] ?? ""), counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  /** Observation count for a label set (tests, /health). */
  count(labels: Labels = {}): number {
    return this.series.get(labelKey(this.labelNames, labels, this.name))?.count ?? 0;
  }

  render(): string {
    let out = this.header();
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => {
        out += `${this.name}_bucket${renderLabels(this.labelNames, s.labels, ["le", formatValue(b)])} ${s.counts[i]}\n`;
      });
      out += `${this.name}_bucket${renderLabels(this.labelNames, s.labels, ["le", "+Inf"])} ${s.count}\n`;
      out += `${this.name}_sum${renderLabels(this.labelNames, s.labels)} ${formatValue(s.sum)}\n`;
      out += `${this.name}_count${renderLabels(this.labelNames, s.labels)} ${s.count}\n`;
    }
    return out;
  }
}

/** Holds metrics and renders them all. */
export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  /** Content-Type of the exposition. */
  static readonly contentType = "text/plain; version=0.0.4; charset=utf-8";

  register<M extends Metric>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new Error(`metrics: ${metric.name} is already registered`);
    this.metrics.set(metric.name, metric);
    return metric;
  }

  render(): string {
    return [...this.metrics.values()].map((m) => m.render()).join("");
  }
}

/** One parsed sample line of a text exposition. */
export interface ParsedSample {
  name: string;
  labels: Labels;
  value: number;
}

/**
 * Parses the text exposition format (sample lines; comments skipped). Throws on a malformed line.
 * Used by tests and the load-test script to read /metrics back.
 */
export function parsePrometheusText(text: string): ParsedSample[] {
  const out: ParsedSample[] = [];
  const lineRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/;
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "" || line.startsWith("#")) return;
    const m = lineRe.exec(line);
    if (!m) throw new Error(`parsePrometheusText: line ${i + 1} is not a sample: ${JSON.stringify(line)}`);
    const labels: Labels = {};
    const body = m[3] ?? "";
    labelRe.lastIndex = 0;
    while (labelRe.lastIndex < body.length) {
      const lm = labelRe.exec(body);
      if (!lm) throw new Error(`parsePrometheusText: line ${i + 1} has malformed labels: ${JSON.stringify(body)}`);
      labels[lm[1]!] = lm[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    }
    const raw = m[4]!;
    const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    if (Number.isNaN(value) && raw !== "NaN") throw new Error(`parsePrometheusText: line ${i + 1} has a bad value ${raw}`);
    out.push({ name: m[1]!, labels, value });
  });
  return out;
}

/**
 * The notebooks under notebooks/ run headless on the tslab kernel: `scripts/run-notebooks.sh --out DIR`
 * builds dist/, executes every notebook with jupyter-nbconvert and writes the executed copies to DIR.
 * These tests execute them all once and check each copy: no cell failed, and the outputs a reader is
 * promised (tables, SVG plots, recall figures) are there with plausible values.
 *
 * The static checks (cell ids, kernelspec, stored outputs free of errors) need no Jupyter; the execution
 * needs jupyter-nbconvert (CI installs it in scripts/setup.sh) and is skipped, saying so, without it.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const NOTEBOOKS = join(ROOT, "notebooks");
const EXPECTED = ["01-quickstart.ipynb", "02-fine-tuning.ipynb", "03-bm25-vs-dpr.ipynb"];

interface Output {
  output_type: "stream" | "display_data" | "execute_result" | "error";
  name?: "stdout" | "stderr";
  text?: string | string[];
  data?: Record<string, string | string[]>;
  ename?: string;
  evalue?: string;
}
interface Cell {
  cell_type: "code" | "markdown" | "raw";
  id?: string;
  source: string | string[];
  execution_count?: number | null;
  outputs?: Output[];
}
interface Notebook {
  nbformat: number;
  nbformat_minor: number;
  metadata: { kernelspec?: { name?: string } };
  cells: Cell[];
}

const join_ = (t: string | string[] | undefined): string => (Array.isArray(t) ? t.join("") : (t ?? ""));

async function readNotebook(path: string): Promise<Notebook> {
  return JSON.parse(await readFile(path, "utf8")) as Notebook;
}

/** Problems in a notebook's outputs: error outputs and stderr text that reports an error. */
function outputProblems(nb: Notebook): string[] {
  const problems: string[] = [];
  nb.cells.forEach((cell, i) => {
    for (const o of cell.outputs ?? []) {
      if (o.output_type === "error") problems.push(`cell ${i}: ${o.ename ?? "?"}: ${o.evalue ?? ""}`);
      if (o.output_type === "stream" && o.name === "stderr" && /error/i.test(join_(o.text))) {
        problems.push(`cell ${i} stderr: ${join_(o.text).slice(0, 300)}`);
      }
    }
  });
  return problems;
}

/** All stdout text of a notebook, in cell order. */
function stdoutText(nb: Notebook): string {
  return nb.cells
    .flatMap((c) => (c.outputs ?? []).filter((o) => o.output_type === "stream" && o.name === "stdout").map((o) => join_(o.text)))
    .join("\n");
}

/** The rich outputs of one MIME type (e.g. image/svg+xml, text/markdown). */
function richOutputs(nb: Notebook, mime: string): string[] {
  return nb.cells.flatMap((c) => (c.outputs ?? []).flatMap((o) => (o.data?.[mime] !== undefined ? [join_(o.data[mime])] : [])));
}

/** Parses the rows of a Markdown table whose header starts with `header`, keyed by the first columns. */
function tableRows(markdown: string, header: string): { columns: string[]; rows: string[][] } {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => l.startsWith(header));
  if (start < 0) throw new Error(`no table with header "${header}" in:\n${markdown.slice(0, 500)}`);
  const cells = (l: string) =>
    l
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim());
  const rows: string[][] = [];
  for (const l of lines.slice(start + 2)) {
    if (!l.startsWith("|")) break;
    rows.push(cells(l));
  }
  return { columns: cells(lines[start]!), rows };
}

function hasNbconvert(): boolean {
  try {
    execFileSync("jupyter-nbconvert", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("notebooks as committed", () => {
  it("has the three notebooks, each nbformat 4.5 on the tslab kernel with a unique id per cell", async () => {
    const files = (await readdir(NOTEBOOKS)).filter((f) => f.endsWith(".ipynb")).sort();
    expect(files).toEqual(EXPECTED);
    for (const f of files) {
      const nb = await readNotebook(join(NOTEBOOKS, f));
      expect([nb.nbformat, nb.nbformat_minor], f).toEqual([4, 5]);
      expect(nb.metadata.kernelspec?.name, f).toBe("tslab");
      const ids = nb.cells.map((c) => c.id);
      expect(
        ids.every((id) => typeof id === "string" && /^[a-zA-Z0-9-_]{1,64}$/.test(id)),
        f,
      ).toBe(true);
      expect(new Set(ids).size, f).toBe(ids.length);
    }
  });

  it("stores executed outputs with no errors, importing the compiled package (../dist)", async () => {
    for (const f of EXPECTED) {
      const nb = await readNotebook(join(NOTEBOOKS, f));
      const code = nb.cells.filter((c) => c.cell_type === "code");
      // (tslab leaves execution_count null; every code cell of these notebooks prints something)
      expect(
        code.every((c) => (c.outputs ?? []).length > 0),
        `${f}: every code cell ran`,
      ).toBe(true);
      expect(outputProblems(nb), f).toEqual([]);
      expect(
        code.some((c) => join_(c.source).includes('from "../dist/')),
        f,
      ).toBe(true);
      expect(
        code.some((c) => /from "\.\.\/src\//.test(join_(c.source))),
        f,
      ).toBe(false);
    }
  });
});

const nbconvert = hasNbconvert();
if (!nbconvert) {
  console.warn("notebooks.test: jupyter-nbconvert is not installed (apt-get install jupyter-nbconvert): skipping notebook execution");
}

describe.skipIf(!nbconvert)("notebooks executed headless (scripts/run-notebooks.sh --out)", () => {
  let out: string;
  let log = "";
  let exitCode = 0;
  const executed = new Map<string, Notebook>();

  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), "notebooks-"));
    await new Promise<void>((done) => {
      execFile(
        "bash",
        [join(ROOT, "scripts", "run-notebooks.sh"), "--out", out],
        { cwd: ROOT, maxBuffer: 64 << 20, timeout: 900_000 },
        (err, stdout, stderr) => {
          log = `${stdout}\n${stderr}`;
          exitCode = err ? (typeof err.code === "number" ? err.code : 1) : 0;
          done();
        },
      );
    });
    for (const f of EXPECTED) {
      try {
        executed.set(f, await readNotebook(join(out, f)));
      } catch {
        // reported by the tests below
      }
    }
  }, 900_000);

  afterAll(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  it("runs every notebook to the end (script exit 0, one executed copy each, no error outputs)", () => {
    expect(exitCode, log).toBe(0);
    for (const f of EXPECTED) {
      const nb = executed.get(f);
      expect(nb, `${f} executed copy missing\n${log}`).toBeDefined();
      expect(outputProblems(nb!), f).toEqual([]);
      expect(
        nb!.cells.filter((c) => c.cell_type === "code").every((c) => (c.outputs ?? []).length > 0),
        f,
      ).toBe(true);
    }
  });

  it("01 quickstart indexes the whole bundled corpus, reranks, reports stage latencies and answers through the LCEL chain", () => {
    const nb = executed.get("01-quickstart.ipynb");
    expect(nb).toBeDefined();
    const text = stdoutText(nb!);
    expect(text).toMatch(/indexed 1000 passages in [\d.]+ s/);
    expect(text).toMatch(/dense top 3/);
    // Three questions answered with per-stage timings and three reranked passages each.
    expect(text.match(/encode [\d.]+ ms · search [\d.]+ ms · rerank [\d.]+ ms · total [\d.]+ ms/g)?.length).toBe(3);
    expect(text.match(/^ {3}[123]\. \[\d+\] dot -?[\d.]+ · rerank -?[\d.]+/gm)?.length).toBe(9);
    expect(text).toMatch(/repeated question: cacheHit=true/);
    expect(text).toMatch(/A: Yes\. \(canned answer from FakeListChatModel/);
    // The prompt the chat model received contains the retrieved passages.
    expect(text).toMatch(/Context:\n\[1\] \(PMID \d+\)/);
  });

  it("02 fine-tuning lowers the loss, plots it, and raises held-out recall", () => {
    const nb = executed.get("02-fine-tuning.ipynb");
    expect(nb).toBeDefined();
    const text = stdoutText(nb!);
    const loss = /(\d+) updates in \d+ s; loss ([\d.]+) → ([\d.]+)/.exec(text);
    expect(loss, text).not.toBeNull();
    expect(Number(loss![1])).toBeGreaterThanOrEqual(100);
    const means = /first 10 updates ([\d.]+), of the last 10 ([\d.]+)/.exec(text)!;
    expect(Number(means[2])).toBeLessThan(0.8 * Number(means[1])); // about ln 32 = 3.47 at the start
    const svgs = richOutputs(nb!, "image/svg+xml");
    expect(svgs.length).toBe(2); // loss curve, recall bars
    for (const svg of svgs) expect(svg).toMatch(/^<svg[^>]*>[\s\S]*<\/svg>\s*$/);
    expect(svgs[0]).toContain("DPRTrainer loss");
    const { columns, rows } = tableRows(richOutputs(nb!, "text/markdown").join("\n"), "| questions | model |");
    const r10 = columns.indexOf("R@10");
    const r100 = columns.indexOf("R@100");
    const row = (set: string, model: string) => rows.find((r) => r[0] === set && r[1] === model)!;
    const before = row("200 held out", "before");
    const after = row("200 held out", "after");
    // Chance on 1,000 passages: R@10 = 0.01, R@100 = 0.1; the tiny model is far above it after training.
    expect(Number(after[r10])).toBeGreaterThan(Number(before[r10]) + 0.15);
    expect(Number(after[r100])).toBeGreaterThan(Number(before[r100]) + 0.3);
    // On the questions it trained on, it does better still.
    expect(Number(row("300 trained on", "after")[r10])).toBeGreaterThan(Number(after[r10]));
  });

  it(
    "03 compares BM25, DPR and hybrid (and hybrid+rerank with a shipped cross-encoder) in a table with recall-curve " + "and latency plots",
    () => {
      const nb = executed.get("03-bm25-vs-dpr.ipynb");
      expect(nb).toBeDefined();
      const text = stdoutText(nb!);
      const shippedDpr = /DPR model: +\S*src\/assets\/models\/dpr-pubmedqa\n/.test(text);
      const shippedCrossEncoder = /cross-encoder: +\S*src\/assets\/models\/cross-encoder-pubmedqa\n/.test(text);
      expect(text.includes("NOTE: no shipped DPR model")).toBe(!shippedDpr);
      const { columns, rows } = tableRows(richOutputs(nb!, "text/markdown").join("\n"), "| method |");
      expect(rows.map((r) => r[0])).toEqual(["bm25", "dpr", "hybrid", ...(shippedCrossEncoder ? ["hybrid+rerank"] : [])]);
      const ndcg = columns.indexOf("ndcg@10");
      const r100 = columns.indexOf("R@100");
      for (const r of rows) {
        for (const v of r.slice(1)) expect(Number.isFinite(Number(v)), `${r[0]}: ${v}`).toBe(true);
      }
      // Each bundled question was written about its own abstract: BM25 is near saturated (about 0.97).
      expect(Number(rows[0]![ndcg])).toBeGreaterThan(0.9);
      // Hybrid keeps BM25's candidates in its fused top 100 whatever the dense model is.
      expect(Number(rows[2]![r100])).toBeGreaterThanOrEqual(Number(rows[0]![r100]) - 0.02);
      // A trained DPR model is far above chance (R@10 = 0.01 on 1,000 passages); a random one is not.
      const r10 = columns.indexOf("R@10");
      if (shippedDpr) expect(Number(rows[1]![r10])).toBeGreaterThan(0.1);
      else expect(Number(rows[1]![r10])).toBeLessThan(0.1);
      const svgs = richOutputs(nb!, "image/svg+xml");
      expect(svgs.length).toBe(2);
      expect(svgs[0]).toMatch(/Recall@k on pubmedqa/);
      expect(svgs[1]).toMatch(/Latency per query and stage/);
      expect(text).toMatch(/500 queries evaluated/);
    },
  );
});

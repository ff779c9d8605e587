/**
 * The evaluation outputs: SVG plots (well-formed XML, one series per method), the Markdown
 * report and the JSON, from a real evaluation of BM25 + a tiny random DPR model on a tiny BEIR
 * folder written by the test.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { RetrievalEvaluator, type EvaluationReport } from "../../src/eval/evaluate.js";
import { writeEvaluationOutputs } from "../../src/eval/evaluate-cli.js";
import { latencySpec, recallCurveSpec, renderSvg } from "../../src/eval/plots.js";
import { ARTICLE_RECALL_NOTE, NO_PLOTS_NOTE, renderMarkdownReport, reportToJson } from "../../src/eval/report.js";
import { writeTinyBeir, writeTinyDpr } from "./evaluate-fixture.js";

/**
 * Checks XML well-formedness: every tag closed in order, attributes quoted, no stray `<` or
 * `&` in text, exactly one root element. Returns the element names seen (throws on a defect).
 */
function checkWellFormedXml(xml: string): string[] {
  const names: string[] = [];
  const stack: string[] = [];
  let roots = 0;
  const token =
    /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|([^<]+)|(<)/g;
  let m: RegExpExecArray | null;
  while ((m = token.exec(xml)) !== null) {
    if (m[6]) throw new Error(`stray "<" at offset ${m.index}: ${xml.slice(m.index, m.index + 40)}`);
    if (m[5] !== undefined) {
      if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(m[5])) throw new Error(`bad entity in text at ${m.index}`);
      if (stack.length === 0 && m[5].trim() !== "") throw new Error(`text outside the root at ${m.index}`);
      continue;
    }
    if (!m[2]) continue; // comment or processing instruction
    const [, closing, name, attrs, selfClosing] = m;
    if (attrs && /&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(attrs)) throw new Error(`bad entity in attributes of <${name}>`);
    if (closing) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
    } else {
      names.push(name!);
      if (stack.length === 0) roots++;
      if (!selfClosing) stack.push(name!);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join("> <")}>`);
  if (roots !== 1) throw new Error(`expected one root element, got ${roots}`);
  return names;
}

let tmp: string;
let report: EvaluationReport;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "eval-report-"));
  const beir = await writeTinyBeir(join(tmp, "tiny-beir"));
  const model = join(tmp, "dpr");
  await writeTinyDpr(
    model,
    beir.passages.map((p) => p.text),
  );
  const ev = new RetrievalEvaluator({ dataset: beir.dir, dprModelPath: model, depth: 20 });
  try {
    report = await ev.evaluate();
  } finally {
    await ev.dispose();
  }
}, 120_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("SVG plots", () => {
  it("the well-formedness check rejects broken XML (so it can fail)", () => {
    expect(() => checkWellFormedXml("<svg><g></svg>")).toThrow(/closes/);
    expect(() => checkWellFormedXml("<svg a=1></svg>")).toThrow(/stray/);
    expect(() => checkWellFormedXml("<svg>a & b</svg>")).toThrow(/entity/);
    expect(checkWellFormedXml('<svg a="1"><g/><text>x &amp; y</text></svg>')).toEqual(["svg", "g", "text"]);
  });

  it("the recall@k plot is well-formed SVG with a legend entry and a line per method", async () => {
    const svg = await renderSvg(recallCurveSpec(report));
    expect(svg.startsWith("<svg")).toBe(true);
    const names = checkWellFormedXml(svg);
    expect(names[0]).toBe("svg");
    for (const m of ["bm25", "dpr", "hybrid"]) expect(svg).toContain(`>${m}</text>`);
    expect(svg).toContain("recall@k");
    // One line mark per method, and 3 methods × 5 cut-offs points.
    expect(svg.match(/class="mark-line role-mark[^"]*"/g)?.length).toBe(3);
    const points = svg.slice(svg.indexOf('class="mark-symbol role-mark'));
    expect(points.slice(0, points.indexOf("</g>")).match(/<path /g)?.length).toBe(15);
  });

  it("the latency plot is well-formed SVG naming every method and stage", async () => {
    const svg = await renderSvg(latencySpec(report));
    checkWellFormedXml(svg);
    for (const s of ["bm25", "dpr", "hybrid", "encode", "search", "milliseconds (log scale)"]) expect(svg).toContain(`>${s}</text>`);
    expect(svg).not.toContain(">rerank</text>"); // no method reranks here
  });

  it("the plotted data are the report's numbers", () => {
    const spec = recallCurveSpec(report) as { data: { values: Array<{ method: string; k: number; recall: number }> } };
    const bm25 = report.methods.find((m) => m.method === "bm25")!;
    expect(spec.data.values.filter((v) => v.method === "bm25")).toEqual(
      [1, 5, 10, 20, 100].map((k) => ({ method: "bm25", k, recall: bm25.metrics[`recall@${k}`] })),
    );
    const lat = latencySpec(report) as { data: { values: Array<{ method: string; stage: string; p50: number }> } };
    expect(lat.data.values.filter((v) => v.method === "hybrid").map((v) => v.stage)).toEqual(["encode", "search"]);
  });
});

describe("Markdown report and JSON", () => {
  it("the quality table has the eight metrics and the article column, one row per method", () => {
    const md = renderMarkdownReport(report);
    expect(md).toContain('| method | R@1 | R@5 | R@10 | R@20 | R@100 | mrr@10 | ndcg@10 | map@100 | article "recall" |');
    const dpr = report.methods.find((m) => m.method === "dpr")!;
    const row = md.split("\n").find((l) => l.startsWith("| dpr |"))!;
    const cells = row
      .split("|")
      .slice(2, -1)
      .map((c) => c.trim());
    expect(cells).toEqual([
      ...["recall@1", "recall@5", "recall@10", "recall@20", "recall@100", "mrr@10", "ndcg@10", "map@100"].map((k) =>
        dpr.metrics[k]!.toFixed(4),
      ),
      dpr.articleRecallAt10.toFixed(4),
    ]);
    expect(md).toContain(ARTICLE_RECALL_NOTE);
  });

  it("the latency table marks stages a method does not run with a dash", () => {
    const md = renderMarkdownReport(report);
    const row = md.split("\n").filter((l) => l.startsWith("| bm25 |"))[1]!;
    const cells = row
      .split("|")
      .slice(2, -1)
      .map((c) => c.trim());
    expect(cells).toHaveLength(4); // encode, search, rerank, total
    expect(cells[0]).toBe("–");
    expect(cells[1]).toMatch(/^[\d.]+ \/ [\d.]+$/);
    expect(cells[2]).toBe("–");
    expect(cells[3]).toMatch(/^[\d.]+ \/ [\d.]+$/);
  });

  it("the JSON holds settings, build costs, per-query values and machine, but not the runs", () => {
    const j = JSON.parse(JSON.stringify(reportToJson(report)));
    expect(j.format).toBe("langchain-dpr-evaluation");
    expect(j.runs).toBeUndefined();
    expect(j.settings.depth).toBe(20);
    expect(j.settings.dprDimension).toBe(32);
    expect(j.build.corpusEncodeMs).toBeGreaterThan(0);
    expect(j.methods).toHaveLength(3);
    expect(Object.keys(j.methods[0].perQuery)).toHaveLength(11);
    expect(j.machine.cpus).toBeGreaterThan(0);
  });

  it("writes the four files atomically (no temporary file left) and replaces an older report", async () => {
    const out = join(tmp, "out");
    await writeEvaluationOutputs(report, out);
    await writeFile(join(out, "report.md"), "old");
    const written = await writeEvaluationOutputs(report, out, { trecRuns: true });
    expect((await readdir(out)).sort()).toEqual([
      "bm25.trec",
      "dpr.trec",
      "hybrid.trec",
      "latency.svg",
      "recall-at-k.svg",
      "report.md",
      "results.json",
    ]);
    expect(await readFile(written.markdown, "utf8")).toBe(renderMarkdownReport(report));
  });

  it(
    "without plots (the optional vega packages missing, or plots: false) writes the report and JSON, no SVG, and the " + "report says so",
    async () => {
      const out = join(tmp, "out-no-plots");
      const written = await writeEvaluationOutputs(report, out, { plots: false });
      expect((await readdir(out)).sort()).toEqual(["report.md", "results.json"]);
      expect(written.recallSvg).toBeUndefined();
      expect(written.latencySvg).toBeUndefined();
      expect(written.plotsSkipped).toMatch(/^SVG plots not drawn/);
      const md = await readFile(written.markdown, "utf8");
      expect(md).toBe(written.markdownText);
      expect(md).toMatch(/## Plots\n\nSVG plots not drawn/);
      expect(md).not.toContain("![");
      expect(renderMarkdownReport(report, null)).toContain(NO_PLOTS_NOTE);
      // With the packages installed (as here), plots are drawn by default and nothing is said.
      const drawn = await writeEvaluationOutputs(report, join(tmp, "out-plots"));
      expect(drawn.plotsSkipped).toBeUndefined();
      expect(drawn.markdownText).toBe(renderMarkdownReport(report));
    },
  );

  it("an output path that is a file fails naming the folder", async () => {
    const file = join(tmp, "a-file");
    await writeFile(file, "x");
    await expect(writeEvaluationOutputs(report, join(file, "sub"))).rejects.toThrow(/^evaluate: cannot create output folder .*a-file\/sub/);
  });
});

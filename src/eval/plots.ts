/**
 * SVG plots of an evaluation, drawn offline in Node: Vega-Lite specs compiled to Vega and
 * rendered headless (no browser, no canvas) to SVG strings.
 *
 * @module
 */
import type { TopLevelSpec } from "vega-lite";

import { assertPeers } from "../utils/optional-peer.js";
import type { EvaluationReport } from "./evaluate.js";
import { LATENCY_STAGES } from "./methods.js";

/** The recall cut-offs plotted on the recall@k curve. */
const RECALL_KS = [1, 5, 10, 20, 100];

/** Vega-Lite spec: recall@k against k (log scale), one line per method. */
export function recallCurveSpec(report: EvaluationReport): TopLevelSpec {
  const values = report.methods.flatMap((r) =>
    RECALL_KS.filter((k) => Number.isFinite(r.metrics[`recall@${k}`])).map((k) => ({
      method: r.method,
      k,
      recall: r.metrics[`recall@${k}`]!,
    })),
  );
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: `Recall@k on ${report.dataset.name} (${report.dataset.split}, ${report.dataset.evaluatedQueries} queries)`,
    width: 420,
    height: 280,
    data: { values },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "k", type: "quantitative", title: "k", scale: { type: "log" }, axis: { values: RECALL_KS } },
      y: { field: "recall", type: "quantitative", title: "recall@k", scale: { domain: [0, 1] } },
      color: { field: "method", type: "nominal", title: "method", sort: report.methods.map((r) => r.method) },
      tooltip: [{ field: "method" }, { field: "k" }, { field: "recall", format: ".4f" }],
    },
  };
}

/** Vega-Lite spec: p50 latency per stage (grouped bars per method, log scale) with the p95 as a tick. */
export function latencySpec(report: EvaluationReport): TopLevelSpec {
  const values = report.methods.flatMap((r) =>
    // Log scale: stages span µs (a BM25 search) to 100s of ms (reranking); clamp to 1 µs so log works.
    r.stages.map((stage) => ({
      method: r.method,
      stage,
      p50: Math.max(r.latency[stage].p50, 1e-3),
      p95: Math.max(r.latency[stage].p95, 1e-3),
    })),
  );
  const stages = [...LATENCY_STAGES];
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: `Latency per query and stage on ${report.dataset.name} (bars p50, ticks p95)`,
    width: 420,
    height: 280,
    data: { values },
    encoding: {
      x: { field: "method", type: "nominal", title: "method", sort: report.methods.map((r) => r.method), axis: { labelAngle: -20 } },
      xOffset: { field: "stage", type: "nominal", sort: stages },
      color: { field: "stage", type: "nominal", title: "stage", sort: stages },
    },
    layer: [
      {
        mark: { type: "bar" },
        encoding: { y: { field: "p50", type: "quantitative", title: "milliseconds (log scale)", scale: { type: "log" }, stack: null } },
      },
      {
        mark: { type: "tick", thickness: 2 },
        encoding: { y: { field: "p95", type: "quantitative", scale: { type: "log" } }, color: { value: "black" } },
      },
    ],
  };
}

/**
 * Renders a Vega-Lite spec to an SVG string (headless).
 * @throws Error naming the `npm install` command when the optional vega / vega-lite packages are missing.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  assertPeers("plots", "renderSvg");
  const [vega, vegaLite] = await Promise.all([import("vega"), import("vega-lite")]);
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

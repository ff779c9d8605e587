/**
 * Evaluation (the `langchain-dpr/eval` entry point): trec_eval metrics, TREC files, the
 * {@link RetrievalEvaluator} over BEIR folders, its Markdown/JSON report and SVG plots, and the
 * command line behind scripts/evaluate.ts.
 *
 * @module
 */
export * from "./metrics.js";
export { writeTrecRun, readTrecRun, readTrecQrels } from "./trec.js";
export {
  RetrievalEvaluator,
  EVALUATION_METHODS,
  LATENCY_STAGES,
  loadCrossEncoder,
  methodNeedsDpr,
  methodNeedsReranker,
  parseMethod,
  type EvaluationMethod,
  type EvaluationProgress,
  type EvaluationReport,
  type HybridFusion,
  type LatencyStage,
  type MethodResult,
  type RetrievalEvaluatorParams,
  type StageLatency,
} from "./evaluate.js";
export {
  ARTICLE_RECALL_NOTE,
  DEFAULT_REPORT_FILES,
  NO_PLOTS_NOTE,
  REPORT_METRICS,
  renderMarkdownReport,
  reportToJson,
  type ReportFiles,
} from "./report.js";
export { latencySpec, recallCurveSpec, renderSvg } from "./plots.js";
export {
  EVALUATE_USAGE,
  parseEvaluateArgs,
  runEvaluateCli,
  writeEvaluationOutputs,
  type CliStreams,
  type EvaluateCliOptions,
  type WriteEvaluationOptions,
  type WrittenOutputs,
} from "./evaluate-cli.js";

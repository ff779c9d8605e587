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
  type HybridFusionReport,
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
  DEFAULT_TUNING_METRIC,
  defaultFusionGrid,
  holdOutQuestions,
  parseTuningMetric,
  tuneFusion,
  type FusionGridOptions,
  type FusionGridPoint,
  type FusionTuningParams,
  type FusionTuningResult,
  type TuningMetric,
  type TuningQuestion,
} from "./fusion-tuning.js";
export { tunedModelFusion, type FusionTuningOptions, type FusionTuningReport } from "./tune-hybrid.js";
export {
  EVALUATE_USAGE,
  FUSION_TUNING_FILE,
  parseEvaluateArgs,
  runEvaluateCli,
  writeEvaluationOutputs,
  type CliStreams,
  type EvaluateCliOptions,
  type WriteEvaluationOptions,
  type WrittenOutputs,
} from "./evaluate-cli.js";

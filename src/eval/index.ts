/** Evaluation (`langchain-dpr/eval`): the BM25 / DPR / hybrid / reranked comparison, reports and plots. */
export * from "./metrics.js";
export { writeTrecRun, readTrecRun, readTrecQrels } from "./trec.js";
export {
  RetrievalEvaluator,
  EVALUATION_METHODS,
  type EvaluationMethod,
  type EvaluationReport,
  type MethodResult,
  type RetrievalEvaluatorParams,
  type PairScorer,
} from "./evaluate.js";
export { renderMarkdownReport, reportToJson } from "./report.js";
export { recallCurveSpec, latencySpec, renderSvg } from "./plots.js";

/**
 * Second-stage rerankers: {@link CrossEncoderReranker} and the cross-encoder folder writers.
 *
 * @module
 */
export {
  CrossEncoderReranker,
  type CrossEncoderRerankerParams,
  type CrossEncoderFromPretrainedParams,
  type CrossEncoderTitleJoin,
  type RerankResult,
} from "./cross-encoder-reranker.js";
export { writeCrossEncoderDir, type CrossEncoderDirSpec } from "./cross-encoder-dir.js";

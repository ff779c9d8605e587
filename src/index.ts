/**
 * langchain-dpr: Dense Passage Retrieval for LangChain.js.
 *
 * The main entry point holds what a retrieval application needs at run time. Training (TF.js)
 * is a separate entry point, `langchain-dpr/training`, so that applications never load TF.js;
 * the HTTP server is `langchain-dpr/server`, evaluation reports `langchain-dpr/eval`.
 *
 * @packageDocumentation
 */

// Embeddings: DPR question/passage encoders on onnxruntime-node.
export {
  DPREmbeddings,
  type DPREmbeddingsParams,
  type DPRFromPretrainedParams,
  type Passage as PassageInput,
} from "./embeddings/dpr-embeddings.js";
export { OnnxEncoder, type OnnxEncoderParams, type EmbeddingMatrix, type EncoderInput } from "./embeddings/onnx-encoder.js";

// Vector store: FAISS with inner-product scores.
export {
  FaissDPRStore,
  type FaissDPRStoreParams,
  type FaissDPRSearchOptions,
  type FaissDPRAddOptions,
  type FaissDPRFilter,
  type VectorRows,
} from "./vectorstores/faiss-dpr-store.js";
export { trainingRule, type TrainingRule } from "./vectorstores/training-rule.js";
export { FaissIndex, type FaissIndexInfo, type FaissSearchKnobs, type FaissSearchResult } from "./native/faiss-index.js";

// Second stage.
export * from "./rerankers/index.js";

// Retrievers: BM25, fusion, hybrid, two-stage, cached DPR retriever.
export * from "./retrievers/bm25/index.js";
export { reciprocalRankFusion, linearFusion, type RankedItem, type FusedItem, type RRFOptions, type LinearFusionOptions, type ScoreNormalization } from "./retrievers/fusion.js";
export { HybridRetriever, type HybridRetrieverParams, type FusionMethod } from "./retrievers/hybrid-retriever.js";
export { TwoStageRetriever, type TwoStageRetrieverParams } from "./retrievers/two-stage-retriever.js";
export { DPRRetriever, type DPRRetrieverParams, type DPRRetrieverStats, type QueryCacheOptions } from "./retrievers/dpr-retriever.js";
export { LRUCache, type LRUCacheParams } from "./retrievers/query-cache.js";
export { LatencyWindow, type LatencySummary } from "./retrievers/latency-stats.js";
export type { RetrievalTimings, RetrieveOptions, RetrievalResult, RetrievalService } from "./retrievers/types.js";

// Models: configs, safetensors, ONNX export, model folders, hub download.
export * from "./models/index.js";
export {
  DEFAULT_DPR_CONFIG,
  createRandomDPRModel,
  readDPRConfig,
  resolveDPRModelDir,
  saveDPRModel,
  writeEncoderDir,
  type DPRModelConfig,
  type DPRModelSpec,
  type EncoderDirSpec,
  type PoolingMode,
  type TitleJoin,
} from "./models/model-dir.js";
export { downloadModel, type HubDownloadParams } from "./models/hub.js";
export { OnnxSession, availableExecutionProviders, type OnnxSessionParams, type ExecutionProviderName } from "./runtime/onnx-session.js";

// Tokenization.
export * from "./tokenizers/index.js";

// Data loaders (BEIR, DPR JSON, JSONL pairs) and IR metrics.
export * from "./data/index.js";
export * from "./eval/metrics.js";
export { writeTrecRun, readTrecRun, readTrecQrels } from "./eval/trec.js";

/**
 * langchain-dpr: Dense Passage Retrieval for LangChain.js.
 *
 * The main entry point holds what a retrieval application uses: the LangChain components (embeddings,
 * vector store, reranker, retrievers), their parameter and result types, and the helpers that load
 * models. It needs only onnxruntime-node and @langchain/core. The rest is in subpath entry points:
 *
 * - `langchain-dpr/models`: model folders, safetensors, the ONNX writer, BERT configs, hub download;
 * - `langchain-dpr/tokenizers`: the BERT WordPiece tokenizer (Hugging Face parity) and vocabulary trainer;
 * - `langchain-dpr/bm25`: the Lucene-compatible analyzer (tokenizer, stop words, Porter stemmer, norms);
 * - `langchain-dpr/vectorstores`: the vector store and the low-level faiss index it runs on;
 * - `langchain-dpr/data`: BEIR, DPR JSON and JSONL loaders;
 * - `langchain-dpr/eval`: IR metrics (trec_eval definitions), the evaluator, reports;
 * - `langchain-dpr/runtime`: onnxruntime sessions and execution providers;
 * - `langchain-dpr/testing`: random models of the real layouts, for tests;
 * - `langchain-dpr/training` (needs the optional TF.js packages) and `langchain-dpr/server` (needs fastify).
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

// Vector store: FAISS with inner-product scores.
export {
  FaissDPRStore,
  type FaissDPRStoreParams,
  type FaissDPRSearchOptions,
  type FaissDPRAddOptions,
  type FaissDPRFilter,
  type FaissDPRImportMetric,
  type FaissDPRImportOptions,
  type MMRSimilarity,
  type VectorRows,
} from "./vectorstores/faiss-dpr-store.js";
export { type FaissDPRLoadOptions } from "./vectorstores/persistence.js";

// Second stage.
export {
  CrossEncoderReranker,
  type CrossEncoderRerankerParams,
  type CrossEncoderFromPretrainedParams,
  type CrossEncoderTitleJoin,
  type RerankResult,
} from "./rerankers/cross-encoder-reranker.js";
export { crossEncoderText } from "./rerankers/cross-encoder-text.js";

// Retrievers: BM25, fusion, hybrid, two-stage, cached DPR retriever.
export { BM25Index, type BM25IndexParams, type BM25Hit } from "./retrievers/bm25/bm25-index.js";
export {
  BM25Retriever,
  type BM25RetrieverParams,
  type BM25RetrieverFromParams,
  type BM25DocumentMetadata,
} from "./retrievers/bm25/bm25-retriever.js";
export {
  reciprocalRankFusion,
  linearFusion,
  fuseDenseSparse,
  denseShare,
  describeFusion,
  DEFAULT_FUSION,
  type FusionSetting,
  type LinearFusionSetting,
  type RRFFusionSetting,
  type RankedItem,
  type FusedItem,
  type RRFOptions,
  type LinearFusionOptions,
  type ScoreNormalization,
} from "./retrievers/fusion.js";
export {
  HybridRetriever,
  fusionOptions,
  type HybridRetrieverParams,
  type FusionMethod,
  type FusionSource,
  type ResolvedFusion,
} from "./retrievers/hybrid-retriever.js";
export { TwoStageRetriever, type TwoStageRetrieverParams } from "./retrievers/two-stage-retriever.js";
export { DPRRetriever, type DPRRetrieverParams, type DPRRetrieverStats, type QueryCacheOptions } from "./retrievers/dpr-retriever.js";
export type { LatencySummary } from "./retrievers/latency-stats.js";
export {
  RETRIEVAL_TIMINGS_EVENT,
  type RetrievalTimings,
  type RetrieveOptions,
  type RetrievalResult,
  type RetrievalService,
} from "./retrievers/types.js";
export { matchesFilter, type MetadataFilter } from "./retrievers/filter.js";

// Loading models: the shipped defaults, the Hugging Face hub, and the settings a model folder carries.
export { DEFAULT_DPR_MODEL, DEFAULT_CROSS_ENCODER } from "./models/defaults.js";
export { DEFAULT_MAX_DOWNLOAD_BYTES, downloadModel, loadFromHub, repairCachedModel, type HubDownloadParams } from "./models/hub.js";
export type { DPRModelConfig, PoolingMode, TitleJoin } from "./models/model-dir.js";
export { parseFusionConfig, writeModelFusion, type FusionProvenance, type ModelFusion } from "./models/fusion-config.js";
export type { ExecutionProviderName } from "./runtime/onnx-session.js";

/**
 * `langchain-dpr/vectorstores`: FaissDPRStore (also in the main entry), the rule that decides when an
 * index trains, the metadata-filter rule, and the low-level faiss index (our N-API addon) it runs on.
 */
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
} from "./faiss-dpr-store.js";
export { type FaissDPRLoadOptions } from "./persistence.js";
export { LANGCHAIN_PICKLE_GLOBALS } from "./langchain-pickle.js";
export { matchesFilter, deepEqual, type MetadataFilter } from "../retrievers/filter.js";
export { trainingRule, type TrainingRule } from "./training-rule.js";
export { FaissIndex, type FaissIndexInfo, type FaissSearchKnobs, type FaissSearchResult } from "../native/faiss-index.js";

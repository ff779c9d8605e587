export type { Passage, Query, Qrels, TrainingExample } from "./types.js";
export {
  streamBeirCorpus,
  loadBeirCorpus,
  loadBeirQueries,
  loadBeirQrels,
  listBeirSplits,
  loadBeirDataset,
  type BeirDataset,
} from "./beir.js";
export { readDprJson, writeDprJson, readJsonlPairs, parseDprRecord } from "./dpr.js";
export { readJsonLines, type JsonLine } from "./jsonl.js";
export { holdOutShare } from "./holdout.js";

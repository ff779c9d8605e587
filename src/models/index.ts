/**
 * Models: BERT configs, safetensors I/O, weight sets, the ONNX writer and the reference
 * forward pass. (The model folder format and hub download live in ./model-dir.ts and ./hub.ts.)
 */
export type { BertConfig, BertWeights, HiddenAct, NamedTensor } from "./types.js";
export { BERT_BASE_CONFIG, MINILM_L6_CONFIG, SUPPORTED_HIDDEN_ACTS, parseBertConfig, readBertConfig } from "./config.js";
export { encodeSafetensors, parseSafetensors, readSafetensors, writeSafetensors } from "./safetensors.js";
export { canonicalizeBertWeights, expectedBertWeightShapes, validateBertWeights } from "./weights.js";
export { exportBertOnnx, quantizePerColumn, type BertOnnxOptions } from "./onnx/bert-graph.js";
export { referenceBertForward, type ReferenceBatch, type ReferenceOutput } from "./reference.js";
export { exportCheckpointToOnnx, readBertCheckpoint } from "./checkpoint.js";
export {
  DEFAULT_DPR_CONFIG,
  readDPRConfig,
  resolveDPRModelDir,
  saveDPRModel,
  writeEncoderDir,
  type DPRModelConfig,
  type DPRModelSpec,
  type EncoderDirSpec,
  type PoolingMode,
  type TitleJoin,
} from "./model-dir.js";
export { fusionToJson, parseFusionConfig, writeModelFusion, type FusionProvenance, type ModelFusion } from "./fusion-config.js";
export { DEFAULT_MAX_DOWNLOAD_BYTES, downloadModel, loadFromHub, repairCachedModel, type HubDownloadParams } from "./hub.js";
export { DEFAULT_DPR_MODEL, DEFAULT_CROSS_ENCODER, DEMO_DATASET } from "./defaults.js";
export { writeCrossEncoderDir, type CrossEncoderDirSpec } from "../rerankers/cross-encoder-dir.js";
export { readTorchCheckpoint, readCheckpointShards, floatWeights, type LoadedTensor, type TorchDtype } from "./pytorch/index.js";
export { readSentenceTransformersSettings, type SentenceTransformersSettings } from "./sentence-transformers.js";

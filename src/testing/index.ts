/**
 * `langchain-dpr/testing`: models of the real layouts with random weights, for tests and examples
 * that need a model folder but no trained model (their retrieval quality means nothing).
 */
export { createRandomDPRModel } from "../models/model-dir.js";
export { createRandomCrossEncoder, type RandomCrossEncoderOptions, type CrossEncoderShape } from "../rerankers/cross-encoder-dir.js";
export { randomBertWeights, type RandomBertWeightsOptions } from "../models/weights.js";
export { tinyBertConfig } from "../models/config.js";

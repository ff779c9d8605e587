/**
 * `langchain-dpr/testing`: models of the real layouts with random weights, for tests and examples
 * that need a model folder but no trained model (their retrieval quality means nothing).
 *
 * @module
 */
export {
  createRandomDPRModel,
  randomModelConfig,
  createRandomCrossEncoder,
  crossEncoderConfig,
  type RandomModelShape,
  type RandomDPRModelOptions,
  type RandomCrossEncoderOptions,
  type CrossEncoderShape,
} from "./random-models.js";
export { randomBertWeights, type RandomBertWeightsOptions } from "../models/weights.js";
export { tinyBertConfig } from "../models/config.js";

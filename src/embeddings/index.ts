/** Embeddings: DPREmbeddings and the ONNX encoder it runs on. */
export { DPREmbeddings, type DPREmbeddingsParams, type DPRFromPretrainedParams, type Passage } from "./dpr-embeddings.js";
export { OnnxEncoder, normalizeRows, type EmbeddingMatrix, type EncoderInput, type OnnxEncoderParams } from "./onnx-encoder.js";

/** The onnxruntime-node owner: sessions, execution providers, lazy creation, and the BERT encoder on them. */
export {
  OnnxSession,
  availableExecutionProviders,
  type ExecutionProviderName,
  type GraphOptimizationLevel,
  type OnnxElementType,
  type OnnxIntInput,
  type OnnxOutputTensor,
  type OnnxSessionParams,
  type OnnxValueInfo,
} from "./onnx-session.js";
export { OnnxEncoder, normalizeRows, type EmbeddingMatrix, type EncoderInput, type OnnxEncoderParams } from "./onnx-encoder.js";

/** The onnxruntime-node owner: sessions, execution providers, lazy creation. */
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

/** Embeddings: DPREmbeddings (the ONNX encoder it runs on is in langchain-dpr/runtime). */
export { DPREmbeddings, type DPREmbeddingsParams, type DPRFromPretrainedParams, type Passage } from "./dpr-embeddings.js";

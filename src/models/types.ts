/**
 * Shared model types: the BERT configuration (Hugging Face `config.json` keys) and
 * named weight tensors. Every part of the project (safetensors I/O, the ONNX writer,
 * the TF.js trainer) exchanges weights in this one form.
 */

/** Activation names accepted in `config.json`'s `hidden_act`. */
export type HiddenAct = "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "relu";

/** The BERT keys of a Hugging Face `config.json` that define the encoder's shape. */
export interface BertConfig {
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  max_position_embeddings: number;
  type_vocab_size: number;
  layer_norm_eps: number;
  hidden_act: HiddenAct;
  pad_token_id?: number;
  hidden_dropout_prob?: number;
  attention_probs_dropout_prob?: number;
  initializer_range?: number;
  model_type?: string;
  architectures?: string[];
  /** Number of labels for sequence classification heads (cross-encoders). */
  num_labels?: number;
}

/** One weight tensor: row-major float32 data with its shape. */
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

/**
 * Encoder weights keyed by canonical Hugging Face `BertModel` names without any prefix,
 * in PyTorch layout (Linear weights are `[out, in]`), e.g.
 * `embeddings.word_embeddings.weight`, `encoder.layer.0.attention.self.query.weight`,
 * `encoder.layer.0.output.LayerNorm.bias`, `pooler.dense.weight` (optional),
 * and for cross-encoders `classifier.weight` / `classifier.bias`.
 */
export type BertWeights = Map<string, NamedTensor>;

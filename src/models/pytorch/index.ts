/**
 * PyTorch checkpoints in TypeScript: `pytorch_model.bin` (zip and legacy formats) through a restricted
 * unpickler that never executes anything, Hugging Face sharded checkpoints, and the float tensors as
 * the project's BertWeights.
 */
import type { BertWeights } from "../types.js";
import type { LoadedTensor } from "./tensor-data.js";

export { readTorchCheckpoint, type ReadTorchCheckpointOptions } from "./torch-checkpoint.js";
export type { LoadedTensor } from "./tensor-data.js";
export { readCheckpointShards } from "./shards.js";
export { NESTED_STATE_DICT_KEYS } from "./state-dict.js";
export { SUPPORTED_DTYPES, type TorchDtype } from "./torch-pickle.js";

/**
 * The float tensors (float32, and float16/bfloat16 already widened) as BertWeights, sharing their
 * arrays; integer tensors (e.g. `embeddings.position_ids`, saved by older transformers versions) are
 * left out and their names listed in `dropped`.
 */
export function floatWeights(tensors: ReadonlyMap<string, LoadedTensor>): { weights: BertWeights; dropped: string[] } {
  const weights: BertWeights = new Map();
  const dropped: string[] = [];
  for (const [name, t] of tensors) {
    if (t.data instanceof Float32Array) weights.set(name, { shape: t.shape, data: t.data });
    else dropped.push(name);
  }
  return { weights, dropped };
}

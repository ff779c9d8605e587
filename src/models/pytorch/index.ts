/**
 * PyTorch checkpoints in TypeScript: `pytorch_model.bin` (zip and legacy formats) through a restricted
 * unpickler that never executes anything, and Hugging Face sharded checkpoints.
 */
import type { BertWeights } from "../types.js";
import type { LoadedTensor } from "./torch-checkpoint.js";

export { readTorchCheckpoint, type LoadedTensor } from "./torch-checkpoint.js";
export { readCheckpointShards } from "./shards.js";
export type { TorchDtype } from "./pickle.js";

/** The float tensors as BertWeights; integer tensors (e.g. `embeddings.position_ids`) are dropped and listed. */
export function floatWeights(tensors: ReadonlyMap<string, LoadedTensor>): { weights: BertWeights; dropped: string[] } {
  const weights: BertWeights = new Map();
  const dropped: string[] = [];
  for (const [name, t] of tensors) {
    if (t.data instanceof Float32Array) weights.set(name, { shape: t.shape, data: t.data });
    else dropped.push(name);
  }
  return { weights, dropped };
}

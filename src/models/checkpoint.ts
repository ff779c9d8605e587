/**
 * Loading BERT checkpoints (a folder with `config.json` + `model.safetensors`) and writing them
 * as ONNX: the path from weights our TF.js training or a Hugging Face repository produced to
 * a model onnxruntime-node runs.
 */
import { access } from "node:fs/promises";
import { join } from "node:path";
import { readBertConfig } from "./config.js";
import { exportBertOnnx, type BertOnnxOptions } from "./onnx/bert-graph.js";
import { readSafetensors } from "./safetensors.js";
import type { BertConfig, BertWeights } from "./types.js";
import { canonicalizeBertWeights, validateBertWeights } from "./weights.js";

/**
 * Reads `config.json` and `model.safetensors` from `dir`, canonicalises tensor names (DPR,
 * `bert.`-prefixed and TF-style checkpoints) and validates them against the config.
 * @throws Error naming the file and the problem (missing file, bad header, shape mismatch).
 */
export async function readBertCheckpoint(dir: string, owner = "readBertCheckpoint"): Promise<{ config: BertConfig; weights: BertWeights; metadata: Record<string, string> }> {
  const config = await readBertConfig(join(dir, "config.json"));
  const path = join(dir, "model.safetensors");
  try {
    await access(path);
  } catch {
    throw new Error(`${owner}: ${dir} has no model.safetensors; training starts from safetensors weights (an ONNX-only folder cannot be trained)`);
  }
  const { tensors, metadata } = await readSafetensors(path);
  const weights = canonicalizeBertWeights(tensors);
  validateBertWeights(config, weights, path);
  return { config, weights, metadata };
}

/**
 * Exports the checkpoint in `srcDir` (config.json + model.safetensors) as ONNX into `outDir`
 * (default: the same folder). The pooler defaults to `"bert"` when the checkpoint has a
 * classifier and `classifier` is set, else `"cls"` (DPR semantics).
 */
export async function exportCheckpointToOnnx(
  srcDir: string,
  outDir: string = srcDir,
  opts: BertOnnxOptions = {},
): Promise<{ modelPath: string; quantizedPath?: string; config: BertConfig }> {
  const { config, weights } = await readBertCheckpoint(srcDir);
  const result = await exportBertOnnx(outDir, config, weights, opts);
  return { ...result, config };
}

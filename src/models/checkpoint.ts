/**
 * Loading BERT checkpoints (a folder with `config.json` + `model.safetensors`) and writing them
 * as ONNX: the path from weights our TF.js training or a Hugging Face repository produced to
 * a model onnxruntime-node runs.
 */
import { join } from "node:path";
import { readBertConfig } from "./config.js";
import { exportBertOnnx, type BertOnnxOptions } from "./onnx/bert-graph.js";
import { readSafetensors } from "./safetensors.js";
import { floatWeights, readCheckpointShards, readTorchCheckpoint } from "./pytorch/index.js";
import type { BertConfig, BertWeights } from "./types.js";
import { canonicalizeBertWeights, validateBertWeights } from "./weights.js";
import { pathExists } from "../utils/fs.js";

/** Weights files of a checkpoint folder, in the order they are preferred. */
export const CHECKPOINT_WEIGHT_FILES = [
  "model.safetensors",
  "model.safetensors.index.json",
  "pytorch_model.bin",
  "pytorch_model.bin.index.json",
] as const;

/**
 * Reads the weights of a checkpoint folder as float tensors: `model.safetensors`, else its sharded
 * index, else `pytorch_model.bin` (zip or legacy format, read without executing anything), else its
 * sharded index. Integer buffers (e.g. `embeddings.position_ids`) are left out.
 * @throws Error naming the folder when it has none of these files, or the file and the problem.
 */
export async function readCheckpointWeights(
  dir: string,
  owner = "readBertCheckpoint",
): Promise<{ weights: BertWeights; path: string; metadata: Record<string, string> }> {
  for (const file of CHECKPOINT_WEIGHT_FILES) {
    const path = join(dir, file);
    if (!(await pathExists(path))) continue;
    if (file === "model.safetensors") {
      const { tensors, metadata } = await readSafetensors(path);
      return { weights: tensors, path, metadata };
    }
    const tensors = file.endsWith(".index.json") ? await readCheckpointShards(path) : await readTorchCheckpoint(path);
    return { weights: floatWeights(tensors).weights, path, metadata: {} };
  }
  throw new Error(
    `${owner}: ${dir} has no weights (looked for ${CHECKPOINT_WEIGHT_FILES.join(", ")}); ` +
      "an ONNX-only folder cannot be read as weights (training needs them)",
  );
}

/**
 * Reads `config.json` and the weights ({@link readCheckpointWeights}) from `dir`, canonicalises tensor
 * names (DPR, `bert.`-prefixed and TF-style checkpoints) and validates them against the config.
 * @throws Error naming the file and the problem (missing file, bad header, shape mismatch).
 */
export async function readBertCheckpoint(
  dir: string,
  owner = "readBertCheckpoint",
): Promise<{ config: BertConfig; weights: BertWeights; metadata: Record<string, string> }> {
  const config = await readBertConfig(join(dir, "config.json"));
  const { weights: tensors, path, metadata } = await readCheckpointWeights(dir, owner);
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

/**
 * Hugging Face sharded checkpoints: `model.safetensors.index.json` or `pytorch_model.bin.index.json`,
 * whose `weight_map` names the shard file of every tensor. Each shard is read once and the tensors
 * merged; a missing shard, a tensor absent from its shard, or a shard path leaving the folder is an
 * error naming the index file.
 */
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, sep } from "node:path";
import { readSafetensors } from "../safetensors.js";
import { readTorchCheckpoint, type LoadedTensor } from "./torch-checkpoint.js";

/** Reads every shard an index names and merges their tensors. */
export async function readCheckpointShards(indexPath: string): Promise<Map<string, LoadedTensor>> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(indexPath, "utf8"));
  } catch (err) {
    throw new Error(`${indexPath}: cannot read the shard index: ${(err as Error).message}`);
  }
  const map = (json as { weight_map?: unknown }).weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) throw new Error(`${indexPath}: no "weight_map" object`);
  const byShard = new Map<string, string[]>();
  for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== "string") throw new Error(`${indexPath}: weight_map["${name}"] must be a file name, got ${JSON.stringify(file)}`);
    const norm = normalize(file);
    if (isAbsolute(norm) || norm.split(sep).includes("..")) throw new Error(`${indexPath}: shard '${file}' leaves the model folder`);
    byShard.set(norm, [...(byShard.get(norm) ?? []), name]);
  }
  const out = new Map<string, LoadedTensor>();
  for (const [file, names] of byShard) {
    const path = join(dirname(indexPath), file);
    const tensors = new Map<string, LoadedTensor>();
    if (file.endsWith(".safetensors")) {
      let read;
      try {
        read = await readSafetensors(path);
      } catch (err) {
        throw new Error(`${indexPath}: shard ${file}: ${(err as Error).message}`);
      }
      for (const [name, t] of read.tensors) tensors.set(name, { dtype: "float32", shape: t.shape, data: t.data });
    } else {
      try {
        for (const [name, t] of await readTorchCheckpoint(path)) tensors.set(name, t);
      } catch (err) {
        throw new Error(`${indexPath}: shard ${file}: ${(err as Error).message}`);
      }
    }
    for (const name of names) {
      const t = tensors.get(name);
      if (!t && !(file.endsWith(".safetensors") && /position_ids$/.test(name))) {
        throw new Error(`${indexPath}: '${name}' is mapped to ${file}, which does not contain it`);
      }
      if (t) out.set(name, t);
    }
  }
  return out;
}

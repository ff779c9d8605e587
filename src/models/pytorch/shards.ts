/**
 * Hugging Face sharded checkpoints: `model.safetensors.index.json` or `pytorch_model.bin.index.json`,
 * whose `weight_map` names the shard file of every tensor. Each shard is read once (safetensors
 * through `../safetensors.ts`, `.bin` through {@link readTorchCheckpoint}) and the tensors merged.
 */
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, sep } from "node:path";
import { readSafetensors } from "../safetensors.js";
import type { LoadedTensor } from "./tensor-data.js";
import { readTorchCheckpoint } from "./torch-checkpoint.js";
import type { TorchDtype } from "./torch-pickle.js";

const SAFETENSORS_DTYPES: Readonly<Record<string, TorchDtype>> = { F32: "float32", F16: "float16", BF16: "bfloat16", I64: "int64" };

/** The tensors of one safetensors shard as LoadedTensors (F32/F16/BF16 as float32, I64 kept; other integers absent). */
async function safetensorsShard(path: string): Promise<{ tensors: Map<string, LoadedTensor>; skipped: Set<string> }> {
  const st = await readSafetensors(path);
  const tensors = new Map<string, LoadedTensor>();
  for (const [name, t] of st.tensors) tensors.set(name, { shape: t.shape, dtype: SAFETENSORS_DTYPES[st.dtypes.get(name)!]!, data: t.data });
  for (const [name, t] of st.int64) tensors.set(name, { shape: t.shape, dtype: "int64", data: t.data });
  return { tensors, skipped: new Set(st.skipped.filter((n) => !st.int64.has(n))) };
}

/**
 * Reads every shard a Hugging Face index names, once each, and returns the tensors the index lists,
 * merged (in index order of the shards). Integer tensors of safetensors shards other than I64 are
 * left out (as `readSafetensors` leaves them out); everything else is as {@link readTorchCheckpoint}.
 * @throws Error naming the index file and the problem: an unreadable index, a shard path leaving the
 *   index's folder, a missing or broken shard (with the shard's own error), a tensor listed but absent
 *   from its shard.
 */
export async function readCheckpointShards(indexPath: string): Promise<Map<string, LoadedTensor>> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(indexPath, "utf8"));
  } catch (err) {
    throw new Error(`${indexPath}: cannot read the shard index: ${(err as Error).message}`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map))
    throw new Error(`${indexPath}: no "weight_map" object (expected tensor name → shard file)`);
  const byShard = new Map<string, string[]>();
  for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== "string" || file === "")
      throw new Error(`${indexPath}: weight_map["${name}"] must be a shard file name, got ${JSON.stringify(file)}`);
    const norm = normalize(file);
    if (isAbsolute(file) || isAbsolute(norm) || norm.split(sep).includes("..") || norm.split("/").includes("..")) {
      throw new Error(`${indexPath}: shard '${file}' (for '${name}') leaves the model folder; expected a file name next to the index`);
    }
    byShard.set(norm, [...(byShard.get(norm) ?? []), name]);
  }
  const out = new Map<string, LoadedTensor>();
  for (const [file, names] of byShard) {
    const path = join(dirname(indexPath), file);
    let shard: { tensors: Map<string, LoadedTensor>; skipped: Set<string> };
    try {
      shard = file.endsWith(".safetensors")
        ? await safetensorsShard(path)
        : { tensors: await readTorchCheckpoint(path), skipped: new Set() };
    } catch (err) {
      throw new Error(`${indexPath}: shard ${file}: ${(err as Error).message}`);
    }
    for (const name of names) {
      const t = shard.tensors.get(name);
      if (t) out.set(name, t);
      else if (!shard.skipped.has(name)) throw new Error(`${indexPath}: '${name}' is mapped to ${file}, which does not contain it`);
    }
  }
  return out;
}

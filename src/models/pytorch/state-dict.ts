/**
 * Finding the state_dict in what a checkpoint pickled: the top-level dict itself, or one nested a
 * level down ({"state_dict": ...}, {"model": ...}, ...), then checking every tensor's dtype before
 * any bytes are read.
 */
import { describePy } from "./pickle.js";
import { SUPPORTED_DTYPES, isSupportedDtype, isTensorRef, type TensorRef, type TorchValue } from "./torch-pickle.js";
import type { TensorToRead } from "./tensor-data.js";

/** Keys under which training scripts commonly nest a state_dict, preferred in this order. */
export const NESTED_STATE_DICT_KEYS = ["state_dict", "model_state_dict", "model", "module", "net", "network"] as const;

/** A dict of string keys to tensors only (at least one), else undefined. */
function asStateDict(v: TorchValue | undefined): Map<string, TensorRef> | undefined {
  if (!(v instanceof Map) || v.size === 0) return undefined;
  const out = new Map<string, TensorRef>();
  for (const [k, t] of v) {
    if (typeof k !== "string" || !isTensorRef(t)) return undefined;
    out.set(k, t);
  }
  return out;
}

/**
 * The state_dict of a checkpoint's root value: the root when it is a dict of tensors; else, when
 * `key` is given, the dict under that key; else the only value of the root that is a dict of tensors,
 * or, when several are, the first of {@link NESTED_STATE_DICT_KEYS} present.
 * @throws Error naming `source` and the keys found when there is no such dict.
 */
export function findStateDict(root: TorchValue, source: string, key?: string): Map<string, TensorRef> {
  if (key !== undefined) {
    const inner = root instanceof Map ? asStateDict(root.get(key)) : undefined;
    if (!inner)
      throw new Error(`${source}: stateDictKey '${key}' does not name a dict of tensors in the checkpoint (found ${keysOf(root)})`);
    return inner;
  }
  const direct = asStateDict(root);
  if (direct) return direct;
  if (root instanceof Map) {
    const candidates = [...root].filter(([k, v]) => typeof k === "string" && asStateDict(v)) as [string, TorchValue][];
    if (candidates.length === 1) return asStateDict(candidates[0]![1])!;
    for (const k of NESTED_STATE_DICT_KEYS) {
      const hit = candidates.find(([ck]) => ck === k);
      if (hit) return asStateDict(hit[1])!;
    }
    if (candidates.length > 1) {
      throw new Error(
        `${source}: several dicts of tensors (${candidates.map(([k]) => `'${k}'`).join(", ")}); choose one with the stateDictKey option`,
      );
    }
  }
  throw new Error(`${source}: no state_dict: expected a dict of tensor names to tensors, or a dict holding one (found ${keysOf(root)})`);
}

function keysOf(root: TorchValue): string {
  if (!(root instanceof Map)) return describePy(root);
  const keys = [...root.keys()].slice(0, 8).map((k) => (typeof k === "string" ? `'${k}'` : describePy(k)));
  return `a dict with keys ${keys.join(", ")}${root.size > 8 ? ", …" : ""}`;
}

/**
 * The tensors to read (those `filter` keeps), each with its dtype checked.
 * @throws Error naming `source`, the tensor, its dtype and the supported ones.
 */
export function tensorsToRead(state: Map<string, TensorRef>, source: string, filter?: (name: string) => boolean): TensorToRead[] {
  const out: TensorToRead[] = [];
  for (const [name, ref] of state) {
    if (filter && !filter(name)) continue;
    if (!isSupportedDtype(ref.dtype)) {
      throw new Error(`${source}: tensor '${name}' has dtype ${ref.dtype}, which is not read; supported: ${SUPPORTED_DTYPES.join(", ")}`);
    }
    out.push({ name, ref, dtype: ref.dtype });
  }
  return out;
}

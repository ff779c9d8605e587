/** CLI flags for a from-scratch model shape, shared by the training CLI tests. */
export interface ShapeFlags {
  hidden: number;
  layers: number;
  heads: number;
  ffn: number;
  maxLen?: number;
  vocabSize: number;
}

/** `--hidden H --layers L --heads A --ffn F [--max-len M] --vocab-size V` as argv entries. */
export function shapeFlags(s: ShapeFlags): string[] {
  const flags = ["--hidden", s.hidden, "--layers", s.layers, "--heads", s.heads, "--ffn", s.ffn];
  if (s.maxLen !== undefined) flags.push("--max-len", s.maxLen);
  flags.push("--vocab-size", s.vocabSize);
  return flags.map(String);
}

/** The cross-encoder CLI tests' model: hidden 32, one layer, 4 heads, ffn 64, 64 positions, 400 words. */
export const TINY_CROSS_ENCODER = shapeFlags({ hidden: 32, layers: 1, heads: 4, ffn: 64, maxLen: 64, vocabSize: 400 });

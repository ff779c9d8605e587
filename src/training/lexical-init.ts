/**
 * Lexical initialisation of a dual encoder: weights under which a BERT encoder with mean pooling
 * already ranks like a bag-of-words retriever (IDF-weighted term matching) before any update, so that
 * fine-tuning adds to lexical matching instead of climbing from a random start.
 *
 * The construction (H = hidden size; dimensions 0 and 1 are reserved for the direction
 * `u = (e₀ − e₁)/√2`, every other dimension carries a token's own random direction):
 *
 * - word embedding of token t: `e_t = w_t·r_t + √(1 − w_t²)·u`, with `r_t` a seeded random unit vector
 *   of zero mean over dimensions 2…H−1 (Johnson–Lindenstrauss: `⟨r_a, r_b⟩ ≈ 0` for a ≠ b, with a spread
 *   of about 1/√(H−2)) and `w_t = (idf_t / max idf)^(idfPower/2)` (special tokens: w = 0). Every row
 *   has norm 1 and mean 0, so the embedding LayerNorm maps it to `√H·e_t` whatever `w_t` is: the IDF
 *   weight survives LayerNorm because it sits in the split between `r_t` and `u`, not in the length;
 * - position and token-type embeddings 0;
 * - every residual branch near zero (attention output and FFN output projections drawn with
 *   `residualStd`, default 1e-3; the other weights as BERT's initialiser), every LayerNorm 1/0, so each
 *   layer is close to the identity on that path;
 * - the last LayerNorm's gain is `scale` on dimensions 2…H−1 and 0 on the two `u` dimensions, which
 *   removes `u` after the last layer.
 *
 * With mean pooling, a question q and a passage p then score about
 * `scale²·H/(|q|·|p|) · Σ_t tf_q(t)·tf_p(t)·(idf_t / max idf)^idfPower` plus projection noise, i.e.
 * TF-IDF with length normalisation. `scale` is chosen so that the in-batch softmax loss of the
 * calibration pairs (questions and their positives) is lowest at the start: a starting point whose
 * scores are neither flat (loss ln B) nor saturated.
 */
import type { Passage, TrainingExample } from "../data/types.js";
import { passageSegments, type TitleJoin } from "../models/model-dir.js";
import type { BertConfig, BertWeights, NamedTensor } from "../models/types.js";
import { expectedBertWeightShapes } from "../models/weights.js";
import type { BertTokenizer } from "../tokenizers/bert-tokenizer.js";
import { SeededRandom } from "./random.js";

const WHO = "lexical init";

/** Options of {@link lexicalInitWeights}. */
export interface LexicalInitParams {
  /** Shape of the encoder (hidden size ≥ 3). */
  config: BertConfig;
  /** Its tokenizer (IDF is counted over its token ids). */
  tokenizer: BertTokenizer;
  /** Passages the IDF is computed over (title and text, not truncated). */
  corpus: readonly Pick<Passage, "title" | "text">[];
  /** A shared token adds `(idf / max idf)^idfPower` to the score. Default 2 (1 is BM25's IDF). */
  idfPower?: number;
  /** Standard deviation of the attention-output and FFN-output projections. Default 1e-3. */
  residualStd?: number;
  /** Standard deviation of the other Linear weights. Default `config.initializer_range` or 0.02. */
  std?: number;
  /** Seed of the random directions and weights. Default 42. */
  seed?: number;
  /** Gain of the last LayerNorm; when omitted it is calibrated on `calibration`. */
  scale?: number;
  /** (Question, positive) pairs for calibrating `scale` (up to 1,024 are used). */
  calibration?: readonly TrainingExample[];
  /** Rows per in-batch softmax during calibration (the training batch size). Default 32. */
  batchSize?: number;
  /** Softmax temperature of the training loss. Default 1. */
  temperature?: number;
  /** Token caps and title rule used to tokenise calibration pairs (as the trainer does). */
  maxQueryLength?: number;
  maxPassageLength?: number;
  titleJoin?: TitleJoin;
  queryPrompt?: string;
  passagePrompt?: string;
}

/** What {@link lexicalInitWeights} built, for training.json and the README table. */
export interface LexicalInitInfo {
  idfPower: number;
  residualStd: number;
  /** The last LayerNorm's gain on the token dimensions. */
  scale: number;
  /** How `scale` was chosen. */
  scaleFrom: "given" | "calibrated" | "default";
  /** In-batch loss of the calibration pairs at `scale`, and chance (ln batch). */
  calibrationLoss?: number;
  chanceLoss?: number;
  calibrationPairs?: number;
  /** Corpus passages counted for IDF, and vocabulary ids that occur in it. */
  passages: number;
  tokensSeen: number;
}

/** Default `scale` when there is nothing to calibrate on. */
const DEFAULT_SCALE = 4;
const MAX_CALIBRATION_PAIRS = 1024;

/** Lucene BM25's IDF, `ln(1 + (N − df + 0.5)/(df + 0.5))`, per token id (special ids get 0). */
export function tokenIdf(tokenizer: BertTokenizer, corpus: readonly Pick<Passage, "title" | "text">[], vocabSize: number): Float64Array {
  const df = new Float64Array(vocabSize);
  for (const p of corpus) {
    const seen = new Set<number>();
    for (const id of tokenizer.encode(p.title ?? "", p.text, { maxLength: 1_000_000 }).inputIds) seen.add(id);
    for (const id of seen) if (id < vocabSize) df[id]++;
  }
  const n = corpus.length;
  const idf = new Float64Array(vocabSize);
  for (let t = 0; t < vocabSize; t++) idf[t] = Math.log(1 + (n - df[t]! + 0.5) / (df[t]! + 0.5));
  const special = [tokenizer.padId, tokenizer.unkId, tokenizer.clsId, tokenizer.sepId, tokenizer.maskId];
  for (const id of special) if (id !== undefined && id < vocabSize) idf[id] = 0;
  return idf;
}

function checkParams(p: LexicalInitParams): void {
  const H = p.config.hidden_size;
  if (H < 3) throw new Error(`${WHO}: hidden size must be at least 3 (2 dimensions are reserved), got ${H}`);
  if (p.corpus.length === 0) throw new Error(`${WHO}: the corpus is empty; IDF needs passages`);
  const positive = (name: string, v: number | undefined) => {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new Error(`${WHO}: ${name} must be a positive number, got ${v}`);
  };
  positive("idfPower", p.idfPower);
  positive("scale", p.scale);
  positive("temperature", p.temperature);
  if (p.residualStd !== undefined && !(Number.isFinite(p.residualStd) && p.residualStd >= 0))
    throw new Error(`${WHO}: residualStd must be a number >= 0, got ${p.residualStd}`);
}

/**
 * Builds lexically initialised weights (canonical BERT names, PyTorch layout, no pooler) for the
 * encoder shape of `params.config`; see the module comment for the construction. Deterministic for a
 * given seed, corpus and tokenizer.
 * @throws Error naming the parameter when the shape or an option is unusable.
 */
export function lexicalInitWeights(params: LexicalInitParams): { weights: BertWeights; info: LexicalInitInfo } {
  checkParams(params);
  const c = params.config;
  const H = c.hidden_size;
  const V = c.vocab_size;
  const idfPower = params.idfPower ?? 2;
  const residualStd = params.residualStd ?? 1e-3;
  const std = params.std ?? c.initializer_range ?? 0.02;
  const seed = params.seed ?? 42;
  const idf = tokenIdf(params.tokenizer, params.corpus, V);
  let maxIdf = 0;
  let tokensSeen = 0;
  for (let t = 0; t < V; t++) maxIdf = Math.max(maxIdf, idf[t]!);
  const w = new Float64Array(V);
  for (let t = 0; t < V; t++) w[t] = maxIdf > 0 ? Math.pow(idf[t]! / maxIdf, idfPower / 2) : 0;
  const words = tokenDirections(V, H, w, SeededRandom.mix(seed, 0x1e7));
  // A token in no passage has the IDF of df = 0; special tokens have 0.
  const unseenIdf = Math.log(1 + (params.corpus.length + 0.5) / 0.5);
  for (let t = 0; t < V; t++) if (idf[t]! > 0 && idf[t]! < unseenIdf - 1e-9) tokensSeen++;

  const rng = new SeededRandom(SeededRandom.mix(seed, 0x1e8));
  const weights: BertWeights = new Map();
  const last = `encoder.layer.${c.num_hidden_layers - 1}.output.LayerNorm.weight`;
  let scale = params.scale ?? DEFAULT_SCALE;
  let scaleFrom: LexicalInitInfo["scaleFrom"] = params.scale !== undefined ? "given" : "default";
  let calibration: { scale: number; loss: number; chance: number; pairs: number } | undefined;
  if (params.scale === undefined && params.calibration && params.calibration.length > 0) {
    calibration = calibrateScale(params, words, H);
    scale = calibration.scale;
    scaleFrom = "calibrated";
  }
  for (const [name, shape] of expectedBertWeightShapes(c, { pooler: false })) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (name === "embeddings.word_embeddings.weight") data.set(words);
    else if (name === last) data.fill(scale, 2);
    else if (name.endsWith("LayerNorm.weight")) data.fill(1);
    else if (name.endsWith(".bias") || name.startsWith("embeddings.")) data.fill(0);
    else {
      const s = name.endsWith("attention.output.dense.weight") || /layer\.\d+\.output\.dense\.weight$/.test(name) ? residualStd : std;
      for (let i = 0; i < size; i++) data[i] = s * rng.normal();
    }
    weights.set(name, { shape: [...shape], data } satisfies NamedTensor);
  }
  const info: LexicalInitInfo = { idfPower, residualStd, scale, scaleFrom, passages: params.corpus.length, tokensSeen };
  if (calibration)
    Object.assign(info, { calibrationLoss: calibration.loss, chanceLoss: calibration.chance, calibrationPairs: calibration.pairs });
  return { weights, info };
}

/** `[V, H]` rows `w_t·r_t + √(1 − w_t²)·u`: unit norm, zero mean, r_t ⊥ u. */
function tokenDirections(V: number, H: number, w: Float64Array, seed: number): Float32Array {
  const rng = new SeededRandom(seed);
  const out = new Float32Array(V * H);
  const r = new Float64Array(H - 2);
  const u = Math.SQRT1_2;
  for (let t = 0; t < V; t++) {
    let mean = 0;
    for (let j = 0; j < H - 2; j++) mean += r[j] = rng.normal();
    mean /= H - 2;
    let norm = 0;
    for (let j = 0; j < H - 2; j++) norm += (r[j]! - mean) ** 2;
    norm = Math.sqrt(norm) || 1;
    const wt = w[t]!;
    const ut = Math.sqrt(Math.max(0, 1 - wt * wt)) * u;
    const row = t * H;
    out[row] = ut;
    out[row + 1] = -ut;
    for (let j = 0; j < H - 2; j++) out[row + 2 + j] = (wt * (r[j]! - mean)) / norm;
  }
  return out;
}

/**
 * The pooled vector of a token sequence at the start, for scale 1: the mean over its tokens of
 * `√H·e_t` on dimensions 2…H−1 (what embedding LayerNorm, identity layers and mean pooling give).
 */
function pooledAtInit(ids: readonly number[], words: Float32Array, H: number): Float64Array {
  const v = new Float64Array(H - 2);
  for (const t of ids) for (let j = 0; j < H - 2; j++) v[j] += words[t * H + 2 + j]!;
  const f = Math.sqrt(H) / Math.max(ids.length, 1);
  for (let j = 0; j < H - 2; j++) v[j] *= f;
  return v;
}

/** Picks the scale minimising the mean in-batch NLL of the calibration pairs (log grid, then refined). */
function calibrateScale(
  p: LexicalInitParams,
  words: Float32Array,
  H: number,
): { scale: number; loss: number; chance: number; pairs: number } {
  // One pair per question, in a seeded order: consecutive examples often share a question (one per judged
  // passage), and a question's other positives must not count as its in-batch negatives.
  const seen = new Set<string>();
  const unique = p.calibration!.filter((e) => e.positives.length > 0 && !seen.has(e.question) && seen.add(e.question));
  const pairs = new SeededRandom(SeededRandom.mix(p.seed ?? 42, 0xca1)).shuffle(unique).slice(0, MAX_CALIBRATION_PAIRS);
  const B = Math.max(2, Math.min(p.batchSize ?? 32, pairs.length));
  const tau = p.temperature ?? 1;
  const qs = pairs.map((e) =>
    pooledAtInit(p.tokenizer.encode((p.queryPrompt ?? "") + e.question, null, { maxLength: p.maxQueryLength ?? 64 }).inputIds, words, H),
  );
  const ps = pairs.map((e) => {
    const s = passageSegments(e.positives[0]!, p.titleJoin ?? "pair", p.passagePrompt ?? "");
    return pooledAtInit(p.tokenizer.encode(s.text, s.pair ?? null, { maxLength: p.maxPassageLength ?? 256 }).inputIds, words, H);
  });
  // Dot products of each batch at scale 1.
  const batches: number[][][] = [];
  for (let start = 0; start + 1 < pairs.length; start += B) {
    const end = Math.min(start + B, pairs.length);
    const m: number[][] = [];
    for (let i = start; i < end; i++) {
      const row: number[] = [];
      for (let j = start; j < end; j++) {
        let d = 0;
        for (let k = 0; k < H - 2; k++) d += qs[i]![k]! * ps[j]![k]!;
        row.push(d / tau);
      }
      m.push(row);
    }
    batches.push(m);
  }
  const lossAt = (s2: number): number => {
    let total = 0;
    let n = 0;
    for (const m of batches) {
      m.forEach((row, i) => {
        let max = -Infinity;
        for (const x of row) max = Math.max(max, s2 * x);
        let z = 0;
        for (const x of row) z += Math.exp(s2 * x - max);
        total += max + Math.log(z) - s2 * row[i]!;
        n++;
      });
    }
    return total / n;
  };
  let best = { s2: 1, loss: Infinity };
  for (let e = -3; e <= 5; e += 0.25) {
    const s2 = 10 ** e;
    const loss = lossAt(s2);
    if (loss < best.loss) best = { s2, loss };
  }
  for (let f = 0.8; f <= 1.25; f += 0.05) {
    const loss = lossAt(best.s2 * f);
    if (loss < best.loss) best = { s2: best.s2 * f, loss };
  }
  return { scale: Math.sqrt(best.s2), loss: best.loss, chance: Math.log(B), pairs: pairs.length };
}

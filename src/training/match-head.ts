/**
 * Lexical match head: an initialisation that lets a cross-encoder trained without a pretrained language
 * model see, from its first update, which tokens of one segment also occur in the other.
 *
 * Why: a cross-encoder scores `[CLS] question [SEP] passage [SEP]`. To rank by relevance it must first
 * compare the two segments, which takes an attention head whose query·key score is high for the same
 * token in both segments. Starting from random or bi-encoder weights no head does that, and training
 * sits on a plateau: on PubMedQA, listwise training from the inverse-cloze DPR encoder stayed near the
 * chance loss ln 4 for 218–375 updates at learning rates 3e-4 and 1e-3 (README, "Training a cross-encoder"). Pretrained BERT
 * checkpoints have such heads; this module builds one directly.
 *
 * How (one head of one layer, by default head 0 of layer 0; the rest of the model is left as it is):
 * - query = key = `s · R (x − μ)`, where the rows of `R` are the top canonical directions shared by
 *   two views of the same token (another position in segment 0, another in segment 1): generalised
 *   eigenvectors of their cross-covariance against the embeddings' total covariance, i.e. the
 *   directions that carry token identity rather than position or segment. `s` is set so that a
 *   token scores `matchScore` against the same token at another position in the other segment; distinct tokens score near 0.
 * - value reads the segment: its first row is the direction from segment-1 to segment-0 embeddings
 *   (centred), the other rows are 0. A passage token that also occurs in the question puts part of its
 *   attention on that copy and so carries a segment-0 component; one that does not, almost none.
 * - the attention output projection writes that one value along a random direction (scaled by `gain`)
 *   of the residual stream, where later layers, the pooler and the classifier can read it.
 */
import type { BertConfig, BertWeights, NamedTensor } from "../models/types.js";
import { SeededRandom } from "../utils/random.js";

const WHO = "matchHeadInit";

/** Options of {@link matchHeadInit}. */
export interface MatchHeadOptions {
  /** Layer whose head is rewritten (default 0: it sees the embeddings, where token identity is plain). */
  layer?: number;
  /** Head index in that layer (default 0). */
  head?: number;
  /** Mean attention score of a token against the same token at another position in the other segment (default 7). */
  matchScore?: number;
  /** Scale of the feature written into the residual stream (default 2). */
  gain?: number;
  /** Seed of the token, position and direction draws (default 11). */
  seed?: number;
  /** Tokens drawn to estimate the covariances (default 4000). */
  samples?: number;
}

/** What {@link matchHeadInit} built, measured on fresh token draws. */
export interface MatchHeadReport {
  layer: number;
  head: number;
  /** Multiplier applied to the projection `R`. */
  scale: number;
  /** Mean score of a token against itself (same position and segment). */
  selfScore: number;
  /** Mean score against the same token at another position, other segment (≈ matchScore). */
  matchScore: number;
  /** Mean and standard deviation of the score between two different tokens. */
  otherScore: { mean: number; std: number };
}

/**
 * Returns a copy of `weights` whose attention head `opts.head` of layer `opts.layer` is a lexical match
 * head (see the module documentation), and what it measures.
 * @throws Error when the config has fewer than 2 token types (cross-encoders need segment ids), the layer
 *   or head is out of range, or a tensor is missing or misshapen.
 */
export function matchHeadInit(
  config: BertConfig,
  weights: BertWeights,
  opts: MatchHeadOptions = {},
): { weights: BertWeights; report: MatchHeadReport } {
  const layer = opts.layer ?? 0;
  const head = opts.head ?? 0;
  const target = opts.matchScore ?? 7;
  const gain = opts.gain ?? 2;
  const samples = opts.samples ?? 4000;
  const H = config.hidden_size;
  const heads = config.num_attention_heads;
  const dh = H / heads;
  if (config.type_vocab_size < 2)
    throw new Error(`${WHO}: needs 2 token types (segment ids) but the config has type_vocab_size ${config.type_vocab_size}`);
  if (!Number.isInteger(layer) || layer < 0 || layer >= config.num_hidden_layers)
    throw new Error(`${WHO}: layer must be in [0, ${config.num_hidden_layers - 1}], got ${layer}`);
  if (!Number.isInteger(head) || head < 0 || head >= heads) throw new Error(`${WHO}: head must be in [0, ${heads - 1}], got ${head}`);
  if (!(target > 0)) throw new Error(`${WHO}: matchScore must be > 0, got ${target}`);
  if (!(gain > 0)) throw new Error(`${WHO}: gain must be > 0, got ${gain}`);
  if (!Number.isInteger(samples) || samples < 4 * H)
    throw new Error(`${WHO}: samples must be an integer >= 4 × hidden_size (${4 * H}), got ${samples}`);

  const get = (name: string, shape: number[]): NamedTensor => {
    const t = weights.get(name);
    if (!t) throw new Error(`${WHO}: the weights have no '${name}'`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${WHO}: '${name}' has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`);
    }
    return t;
  };
  const V = config.vocab_size;
  const P = config.max_position_embeddings;
  const word = get("embeddings.word_embeddings.weight", [V, H]).data;
  const pos = get("embeddings.position_embeddings.weight", [P, H]).data;
  const type = get("embeddings.token_type_embeddings.weight", [config.type_vocab_size, H]).data;
  const gamma = get("embeddings.LayerNorm.weight", [H]).data;
  const beta = get("embeddings.LayerNorm.bias", [H]).data;
  const prefix = `encoder.layer.${layer}.attention`;
  const names = {
    q: `${prefix}.self.query.weight`,
    qb: `${prefix}.self.query.bias`,
    k: `${prefix}.self.key.weight`,
    kb: `${prefix}.self.key.bias`,
    v: `${prefix}.self.value.weight`,
    vb: `${prefix}.self.value.bias`,
    o: `${prefix}.output.dense.weight`,
  };
  for (const n of [names.q, names.k, names.v, names.o]) get(n, [H, H]);
  for (const n of [names.qb, names.kb, names.vb]) get(n, [H]);

  const random = new SeededRandom(opts.seed ?? 11);
  // Skip the low ids (special and [unused] tokens in BERT vocabularies) when the vocabulary allows.
  const lo = Math.min(1000, Math.floor(V / 4));
  const token = () => lo + random.int(V - lo);
  const eps = config.layer_norm_eps;
  /** The embedding layer's output for one (token, position, segment). */
  const embed = (t: number, p: number, s: number): Float64Array => {
    const x = new Float64Array(H);
    let mean = 0;
    for (let i = 0; i < H; i++) {
      x[i] = word[t * H + i]! + pos[p * H + i]! + type[s * H + i]!;
      mean += x[i]!;
    }
    mean /= H;
    let v = 0;
    for (let i = 0; i < H; i++) v += (x[i]! - mean) ** 2;
    const inv = 1 / Math.sqrt(v / H + eps);
    for (let i = 0; i < H; i++) x[i] = (x[i]! - mean) * inv * gamma[i]! + beta[i]!;
    return x;
  };

  // Embedding outputs of random (token, position, segment) draws: their mean and total covariance.
  const X: Float64Array[] = [];
  for (let n = 0; n < samples; n++) X.push(embed(token(), random.int(P), random.int(2)));
  const mu = meanOf(X, H);
  // Two views of each drawn token: another position in segment 0 and another in segment 1. Their
  // cross-covariance keeps what the views share (token identity) and cancels what they do not (position,
  // segment); against the total covariance this is canonical correlation between the two views.
  const viewA: Float64Array[] = [];
  const viewB: Float64Array[] = [];
  for (let n = 0; n < samples; n++) {
    const t = token();
    viewA.push(embed(t, random.int(P), 0));
    viewB.push(embed(t, random.int(P), 1));
  }
  const signal = crossCovariance(viewA, viewB, mu, H);
  const total = covariance(X, mu, H);
  const ridge = 1e-3 * (trace(total, H) / H || 1);
  for (let i = 0; i < H; i++) total[i * H + i] = total[i * H + i]! + ridge;
  const R = generalisedTopEigenvectors(signal, total, H, dh, random);

  // Scale so that the same token at another position in the other segment scores `target` on average.
  const project = (x: Float64Array): Float64Array => {
    const out = new Float64Array(dh);
    for (let r = 0; r < dh; r++) {
      let s = 0;
      for (let i = 0; i < H; i++) s += R[r * H + i]! * (x[i]! - mu[i]!);
      out[r] = s;
    }
    return out;
  };
  const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i]!, 0) / Math.sqrt(dh);
  const pairs = 1000;
  let raw = 0;
  for (let n = 0; n < pairs; n++) {
    const t = token();
    raw += dot(project(embed(t, random.int(P), 0)), project(embed(t, random.int(P), 1)));
  }
  raw /= pairs;
  if (!(raw > 0))
    throw new Error(`${WHO}: the embeddings carry no token identity apart from position and segment (mean match score ${raw})`);
  const scale = Math.sqrt(target / raw);

  // Segment direction: segment 0 minus segment 1 at the same token and position, unit length.
  const seg = new Float64Array(H);
  for (let n = 0; n < pairs; n++) {
    const t = token();
    const p = random.int(P);
    const a = embed(t, p, 0);
    const b = embed(t, p, 1);
    for (let i = 0; i < H; i++) seg[i] = seg[i]! + a[i]! - b[i]!;
  }
  normalise(seg);
  const segMean = X.reduce((s, x) => s + x.reduce((t, v, i) => t + v * seg[i]!, 0), 0) / X.length;
  const u = new Float64Array(H);
  for (let i = 0; i < H; i++) u[i] = random.normal();
  normalise(u);

  const copy = (name: string): NamedTensor => {
    const t = weights.get(name)!;
    return { shape: [...t.shape], data: new Float32Array(t.data) };
  };
  const q = copy(names.q),
    qb = copy(names.qb),
    k = copy(names.k),
    kb = copy(names.kb);
  const v = copy(names.v),
    vb = copy(names.vb),
    o = copy(names.o);
  const r0 = head * dh;
  for (let r = 0; r < dh; r++) {
    const row = r0 + r;
    let bias = 0;
    for (let i = 0; i < H; i++) {
      const w = scale * R[r * H + i]!;
      q.data[row * H + i] = w;
      k.data[row * H + i] = w;
      v.data[row * H + i] = r === 0 ? seg[i]! : 0;
      bias -= w * mu[i]!;
    }
    qb.data[row] = bias;
    kb.data[row] = bias;
    vb.data[row] = r === 0 ? -segMean : 0;
    // Output dense is [out, in]: column `row` maps this head's value r into the residual stream.
    for (let i = 0; i < H; i++) o.data[i * H + row] = r === 0 ? gain * u[i]! : 0;
  }
  const out: BertWeights = new Map(weights);
  out.set(names.q, q).set(names.qb, qb).set(names.k, k).set(names.kb, kb).set(names.v, v).set(names.vb, vb).set(names.o, o);

  // Report on fresh draws, through the weights just written.
  const score = (a: Float64Array, b: Float64Array): number => {
    let s = 0;
    for (let r = 0; r < dh; r++) {
      const row = r0 + r;
      let query = qb.data[row]!;
      let key = kb.data[row]!;
      for (let i = 0; i < H; i++) {
        query += q.data[row * H + i]! * a[i]!;
        key += k.data[row * H + i]! * b[i]!;
      }
      s += query * key;
    }
    return s / Math.sqrt(dh);
  };
  let self = 0,
    match = 0;
  const others: number[] = [];
  for (let n = 0; n < 500; n++) {
    const t = token();
    const a = embed(t, random.int(P), 0);
    self += score(a, a);
    match += score(a, embed(t, random.int(P), 1));
    let t2 = token();
    while (t2 === t) t2 = token();
    others.push(score(a, embed(t2, random.int(P), 1)));
  }
  const om = others.reduce((s, x) => s + x, 0) / others.length;
  const os = Math.sqrt(others.reduce((s, x) => s + (x - om) ** 2, 0) / others.length);
  return {
    weights: out,
    report: { layer, head, scale, selfScore: self / 500, matchScore: match / 500, otherScore: { mean: om, std: os } },
  };
}

function normalise(x: Float64Array): void {
  const n = Math.sqrt(x.reduce((s, v) => s + v * v, 0)) || 1;
  for (let i = 0; i < x.length; i++) x[i] = x[i]! / n;
}

function meanOf(rows: readonly Float64Array[], H: number): Float64Array {
  const m = new Float64Array(H);
  for (const x of rows) for (let i = 0; i < H; i++) m[i] = m[i]! + x[i]!;
  for (let i = 0; i < H; i++) m[i] = m[i]! / rows.length;
  return m;
}

/** Sample covariance, `H × H` row-major. */
function covariance(rows: readonly Float64Array[], mean: Float64Array, H: number): Float64Array {
  const c = new Float64Array(H * H);
  const d = new Float64Array(H);
  for (const x of rows) {
    for (let i = 0; i < H; i++) d[i] = x[i]! - mean[i]!;
    for (let i = 0; i < H; i++) {
      const di = d[i]!;
      if (di === 0) continue;
      const off = i * H;
      for (let j = i; j < H; j++) c[off + j] = c[off + j]! + di * d[j]!;
    }
  }
  const n = Math.max(rows.length - 1, 1);
  for (let i = 0; i < H; i++) {
    for (let j = i; j < H; j++) {
      const v = c[i * H + j]! / n;
      c[i * H + j] = v;
      c[j * H + i] = v;
    }
  }
  return c;
}

/** Symmetrised cross-covariance of paired rows, `(E[a bᵀ] + E[b aᵀ]) / 2` about `mean`, `H × H`. */
function crossCovariance(a: readonly Float64Array[], b: readonly Float64Array[], mean: Float64Array, H: number): Float64Array {
  const c = new Float64Array(H * H);
  const da = new Float64Array(H);
  const db = new Float64Array(H);
  for (let n = 0; n < a.length; n++) {
    for (let i = 0; i < H; i++) {
      da[i] = a[n]![i]! - mean[i]!;
      db[i] = b[n]![i]! - mean[i]!;
    }
    for (let i = 0; i < H; i++) for (let j = 0; j < H; j++) c[i * H + j] = c[i * H + j]! + da[i]! * db[j]!;
  }
  const out = new Float64Array(H * H);
  for (let i = 0; i < H; i++)
    for (let j = 0; j < H; j++) out[i * H + j] = (c[i * H + j]! + c[j * H + i]!) / (2 * Math.max(a.length - 1, 1));
  return out;
}

function trace(a: Float64Array, H: number): number {
  let t = 0;
  for (let i = 0; i < H; i++) t += a[i * H + i]!;
  return t;
}

/**
 * The `k` generalised eigenvectors of `A v = λ B v` with the largest λ (A symmetric, possibly
 * indefinite; B symmetric positive definite), as unit-length rows of a `k × H` array. Cholesky `B = L Lᵀ` turns the problem
 * into the symmetric `M = L⁻¹ A L⁻ᵀ`, whose top eigenvectors `y` come from orthogonal iteration; then
 * `v = L⁻ᵀ y`.
 */
function generalisedTopEigenvectors(A: Float64Array, B: Float64Array, H: number, k: number, random: SeededRandom): Float64Array {
  const L = cholesky(B, H);
  // M = L⁻¹ A L⁻ᵀ: solve L Y = A (columns), then L Mᵀ = Yᵀ.
  const Y = new Float64Array(H * H);
  for (let c = 0; c < H; c++) forwardSolveColumn(L, A, Y, c, H);
  const Yt = transpose(Y, H);
  const Mt = new Float64Array(H * H);
  for (let c = 0; c < H; c++) forwardSolveColumn(L, Yt, Mt, c, H);
  const M = transpose(Mt, H);
  for (let i = 0; i < H; i++)
    for (let j = i + 1; j < H; j++) {
      const s = (M[i * H + j]! + M[j * H + i]!) / 2;
      M[i * H + j] = s;
      M[j * H + i] = s;
    }
  // A may be indefinite: shift by a Gershgorin bound so the iteration finds the largest algebraic
  // eigenvalues, not the largest in magnitude.
  let bound = 0;
  for (let i = 0; i < H; i++) {
    let row = 0;
    for (let j = 0; j < H; j++) row += Math.abs(M[i * H + j]!);
    bound = Math.max(bound, row);
  }
  for (let i = 0; i < H; i++) M[i * H + i] = M[i * H + i]! + bound;
  // Orthogonal iteration on k columns (stored as k rows of length H).
  const Q = new Float64Array(k * H);
  for (let i = 0; i < Q.length; i++) Q[i] = random.normal();
  gramSchmidt(Q, k, H);
  const Z = new Float64Array(k * H);
  for (let it = 0; it < 150; it++) {
    Z.fill(0);
    for (let r = 0; r < k; r++) {
      for (let i = 0; i < H; i++) {
        let s = 0;
        const off = i * H;
        for (let j = 0; j < H; j++) s += M[off + j]! * Q[r * H + j]!;
        Z[r * H + i] = s;
      }
    }
    gramSchmidt(Z, k, H);
    Q.set(Z);
  }
  // v = L⁻ᵀ y: back-substitution with Lᵀ.
  const out = new Float64Array(k * H);
  for (let r = 0; r < k; r++) {
    for (let i = H - 1; i >= 0; i--) {
      let s = Q[r * H + i]!;
      for (let j = i + 1; j < H; j++) s -= L[j * H + i]! * out[r * H + j]!;
      out[r * H + i] = s / L[i * H + i]!;
    }
    const row = out.subarray(r * H, (r + 1) * H);
    normalise(row);
  }
  return out;
}

function cholesky(B: Float64Array, H: number): Float64Array {
  const L = new Float64Array(H * H);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j <= i; j++) {
      let s = B[i * H + j]!;
      for (let p = 0; p < j; p++) s -= L[i * H + p]! * L[j * H + p]!;
      if (i === j) {
        if (!(s > 0)) throw new Error(`${WHO}: the position/segment covariance is not positive definite`);
        L[i * H + i] = Math.sqrt(s);
      } else {
        L[i * H + j] = s / L[j * H + j]!;
      }
    }
  }
  return L;
}

/** Solves `L x = b[:, c]` (L lower triangular) into `out[:, c]`. */
function forwardSolveColumn(L: Float64Array, b: Float64Array, out: Float64Array, c: number, H: number): void {
  for (let i = 0; i < H; i++) {
    let s = b[i * H + c]!;
    for (let p = 0; p < i; p++) s -= L[i * H + p]! * out[p * H + c]!;
    out[i * H + c] = s / L[i * H + i]!;
  }
}

function transpose(a: Float64Array, H: number): Float64Array {
  const t = new Float64Array(H * H);
  for (let i = 0; i < H; i++) for (let j = 0; j < H; j++) t[j * H + i] = a[i * H + j]!;
  return t;
}

/** Orthonormalises `k` rows of length `H` in place (modified Gram–Schmidt). */
function gramSchmidt(rows: Float64Array, k: number, H: number): void {
  for (let r = 0; r < k; r++) {
    const row = rows.subarray(r * H, (r + 1) * H);
    for (let p = 0; p < r; p++) {
      const prev = rows.subarray(p * H, (p + 1) * H);
      let d = 0;
      for (let i = 0; i < H; i++) d += row[i]! * prev[i]!;
      for (let i = 0; i < H; i++) row[i] = row[i]! - d * prev[i]!;
    }
    normalise(row);
  }
}

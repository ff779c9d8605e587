/**
 * BERT weight sets: the expected tensor names and shapes for a config, deterministic random
 * initialisation, canonical naming of checkpoints (bert-base-uncased, DPR encoders,
 * sequence classifiers), and validation against a config.
 */
import type { BertConfig, BertWeights, NamedTensor } from "./types.js";
import { seededUniform } from "../utils/random.js";

/**
 * The tensors a {@link BertConfig} needs, in PyTorch layout (Linear weights `[out, in]`).
 * Pooler and classifier tensors are included only when asked for.
 */
export function expectedBertWeightShapes(config: BertConfig, opts: { pooler?: boolean; numLabels?: number } = {}): Map<string, number[]> {
  const H = config.hidden_size;
  const I = config.intermediate_size;
  const shapes = new Map<string, number[]>([
    ["embeddings.word_embeddings.weight", [config.vocab_size, H]],
    ["embeddings.position_embeddings.weight", [config.max_position_embeddings, H]],
    ["embeddings.token_type_embeddings.weight", [config.type_vocab_size, H]],
    ["embeddings.LayerNorm.weight", [H]],
    ["embeddings.LayerNorm.bias", [H]],
  ]);
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `encoder.layer.${l}.`;
    for (const name of ["query", "key", "value"]) {
      shapes.set(`${p}attention.self.${name}.weight`, [H, H]);
      shapes.set(`${p}attention.self.${name}.bias`, [H]);
    }
    shapes.set(`${p}attention.output.dense.weight`, [H, H]);
    shapes.set(`${p}attention.output.dense.bias`, [H]);
    shapes.set(`${p}attention.output.LayerNorm.weight`, [H]);
    shapes.set(`${p}attention.output.LayerNorm.bias`, [H]);
    shapes.set(`${p}intermediate.dense.weight`, [I, H]);
    shapes.set(`${p}intermediate.dense.bias`, [I]);
    shapes.set(`${p}output.dense.weight`, [H, I]);
    shapes.set(`${p}output.dense.bias`, [H]);
    shapes.set(`${p}output.LayerNorm.weight`, [H]);
    shapes.set(`${p}output.LayerNorm.bias`, [H]);
  }
  if (opts.pooler) {
    shapes.set("pooler.dense.weight", [H, H]);
    shapes.set("pooler.dense.bias", [H]);
  }
  if (opts.numLabels !== undefined) {
    shapes.set("classifier.weight", [opts.numLabels, H]);
    shapes.set("classifier.bias", [opts.numLabels]);
  }
  return shapes;
}

/** Fills `out` with normal(0, std) samples (Box-Muller, both outputs used). */
function fillNormal(out: Float32Array, std: number, uniform: () => number): void {
  for (let i = 0; i < out.length; i += 2) {
    const u1 = uniform() || Number.MIN_VALUE;
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    const theta = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(theta);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(theta);
  }
}

/** Options for {@link randomBertWeights}. */
export interface RandomBertWeightsOptions {
  /** PRNG seed; the same seed and config give identical weights. Default 42. */
  seed?: number;
  /** Add `pooler.dense.*` (BertModel pooler). Default false (true when numLabels is set). */
  pooler?: boolean;
  /** Add `classifier.weight` `[numLabels, H]` and `classifier.bias`. */
  numLabels?: number;
}

/**
 * Random BERT weights as `BertModel.init_weights` makes them: Linear and embedding weights
 * normal(0, initializer_range ?? 0.02), LayerNorm weight 1 / bias 0, Linear biases 0.
 * Deterministic for a given seed. The padding token's embedding row is NOT zeroed.
 */
export function randomBertWeights(config: BertConfig, opts: RandomBertWeightsOptions = {}): BertWeights {
  const std = config.initializer_range ?? 0.02;
  const uniform = seededUniform(opts.seed ?? 42);
  const numLabels = opts.numLabels;
  if (numLabels !== undefined && (!Number.isInteger(numLabels) || numLabels <= 0)) {
    throw new Error(`randomBertWeights: numLabels must be a positive integer, got ${numLabels}`);
  }
  const shapes = expectedBertWeightShapes(config, { pooler: opts.pooler ?? numLabels !== undefined, numLabels });
  const weights: BertWeights = new Map();
  for (const [name, shape] of shapes) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith("LayerNorm.weight")) data.fill(1);
    else if (name.endsWith(".weight")) fillNormal(data, std, uniform);
    // biases stay 0
    weights.set(name, { shape: [...shape], data });
  }
  return weights;
}

/** Prefixes used by common checkpoints in front of the BertModel names. */
const KNOWN_PREFIXES = [
  "question_encoder.bert_model.",
  "ctx_encoder.bert_model.",
  "span_predictor.encoder.bert_model.",
  "bert_model.",
  "bert.",
];

/**
 * Maps checkpoint tensor names to canonical `BertModel` names: strips `bert.`,
 * `question_encoder.bert_model.`, `ctx_encoder.bert_model.` (DPR) and similar prefixes, renames
 * TF-style LayerNorm `gamma`/`beta` to `weight`/`bias`, keeps `classifier.*`, and drops
 * training-only tensors (`cls.*` MLM/NSP heads, `embeddings.position_ids`).
 * @throws Error when two source names map to the same canonical name.
 */
export function canonicalizeBertWeights(tensors: BertWeights): BertWeights {
  const out: BertWeights = new Map();
  const origin = new Map<string, string>();
  for (const [name, tensor] of tensors) {
    let canonical = name;
    for (const prefix of KNOWN_PREFIXES) {
      if (canonical.startsWith(prefix)) {
        canonical = canonical.slice(prefix.length);
        break;
      }
    }
    if (canonical.startsWith("cls.") || canonical === "embeddings.position_ids") continue;
    canonical = canonical.replace(/LayerNorm\.gamma$/, "LayerNorm.weight").replace(/LayerNorm\.beta$/, "LayerNorm.bias");
    const previous = origin.get(canonical);
    if (previous !== undefined) {
      throw new Error(`canonicalizeBertWeights: '${name}' and '${previous}' both map to '${canonical}'`);
    }
    origin.set(canonical, name);
    out.set(canonical, tensor);
  }
  return out;
}

function describeShape(shape: number[]): string {
  return `[${shape.join(", ")}]`;
}

/**
 * Checks that every tensor the config needs is present with the expected shape and data length
 * (pooler and classifier tensors are checked when present). Weights must be canonical
 * (see {@link canonicalizeBertWeights}).
 * @throws Error naming the source, the tensor and expected vs actual, e.g.
 *   "vocab_size 30522 in config.json but embeddings.word_embeddings.weight has 30000 rows".
 */
export function validateBertWeights(config: BertConfig, weights: BertWeights, source: string): void {
  const classifier = weights.get("classifier.weight");
  const expected = expectedBertWeightShapes(config, {
    pooler: weights.has("pooler.dense.weight") || weights.has("pooler.dense.bias"),
    numLabels: classifier ? classifier.shape[0] : weights.has("classifier.bias") ? (config.num_labels ?? 1) : undefined,
  });
  const where = `validateBertWeights (${source})`;
  const word = weights.get("embeddings.word_embeddings.weight");
  if (word && word.shape.length === 2 && word.shape[0] !== config.vocab_size) {
    throw new Error(
      `${where}: vocab_size ${config.vocab_size} in config.json but embeddings.word_embeddings.weight has ${word.shape[0]} rows`,
    );
  }
  const pos = weights.get("embeddings.position_embeddings.weight");
  if (pos && pos.shape.length === 2 && pos.shape[0] !== config.max_position_embeddings) {
    throw new Error(
      `${where}: max_position_embeddings ${config.max_position_embeddings} in config.json but ` +
        `embeddings.position_embeddings.weight has ${pos.shape[0]} rows`,
    );
  }
  const tt = weights.get("embeddings.token_type_embeddings.weight");
  if (tt && tt.shape.length === 2 && tt.shape[0] !== config.type_vocab_size) {
    throw new Error(
      `${where}: type_vocab_size ${config.type_vocab_size} in config.json but embeddings.token_type_embeddings.weight ` +
        `has ${tt.shape[0]} rows`,
    );
  }
  if (!weights.has(`encoder.layer.${config.num_hidden_layers - 1}.output.LayerNorm.weight`)) {
    throw new Error(
      `${where}: num_hidden_layers ${config.num_hidden_layers} in config.json but ` +
        `encoder.layer.${config.num_hidden_layers - 1}.* is missing`,
    );
  }
  if (weights.has(`encoder.layer.${config.num_hidden_layers}.output.LayerNorm.weight`)) {
    throw new Error(
      `${where}: num_hidden_layers ${config.num_hidden_layers} in config.json but the weights have more layers ` +
        `(encoder.layer.${config.num_hidden_layers}.* exists)`,
    );
  }
  if (classifier && config.num_labels !== undefined && classifier.shape[0] !== config.num_labels) {
    throw new Error(`${where}: num_labels ${config.num_labels} in config.json but classifier.weight has ${classifier.shape[0]} rows`);
  }
  for (const [name, shape] of expected) {
    const tensor = weights.get(name);
    if (!tensor) throw new Error(`${where}: missing tensor '${name}' (expected shape ${describeShape(shape)})`);
    if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
      throw new Error(
        `${where}: tensor '${name}' has shape ${describeShape(tensor.shape)}, expected ${describeShape(shape)} from config.json`,
      );
    }
    const count = shape.reduce((a, b) => a * b, 1);
    if (tensor.data.length !== count) {
      throw new Error(`${where}: tensor '${name}' has ${tensor.data.length} values, expected ${count} for shape ${describeShape(shape)}`);
    }
  }
}

/** Returns the tensor or throws a clear error naming it. */
export function requireTensor(weights: BertWeights, name: string, caller: string): NamedTensor {
  const tensor = weights.get(name);
  if (!tensor) throw new Error(`${caller}: missing tensor '${name}'`);
  return tensor;
}

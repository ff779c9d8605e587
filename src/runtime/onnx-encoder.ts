/**
 * One BERT encoder folder running on onnxruntime: tokenizer + native session + pooling (or
 * logits, for a cross-encoder). DPREmbeddings holds one of these per encoder (one when questions
 * and passages share an encoder); CrossEncoderReranker holds one. Batches are formed after sorting texts by token length so padding is
 * minimal; results come back in input order as one row-major Float32Array.
 */
import { readBertConfig } from "../models/config.js";
import type { EncoderFiles, PoolingMode } from "../models/model-dir.js";
import type { BertConfig } from "../models/types.js";
import { BertTokenizer, type Encoding } from "../tokenizers/bert-tokenizer.js";
import { Lazy, OnnxSession, type OnnxIntInput, type OnnxSessionParams } from "./onnx-session.js";

/** One text to encode: a single segment, or a pair (`text` first, `pair` second). */
export interface EncoderInput {
  text: string;
  pair?: string | null;
}

/** A matrix of `count` vectors of `dim` floats, row-major. */
export interface EmbeddingMatrix {
  data: Float32Array;
  dim: number;
  count: number;
}

/** Settings of one {@link OnnxEncoder}. */
export interface OnnxEncoderParams extends OnnxSessionParams {
  /** Load `model_quantized.onnx` instead of `model.onnx`. */
  quantized?: boolean;
}

/** Accepted spellings of the model's inputs (first match wins). */
const INPUT_ALIASES = {
  inputIds: ["input_ids", "input_ids:0", "ids"],
  attentionMask: ["attention_mask", "attention_mask:0", "input_mask"],
  tokenTypeIds: ["token_type_ids", "token_type_ids:0", "segment_ids"],
} as const;

/** Accepted spellings of the model's outputs. */
const OUTPUT_ALIASES = {
  lastHiddenState: ["last_hidden_state", "sequence_output", "hidden_states", "token_embeddings"],
  pooled: ["pooler_output", "pooled_output"],
  logits: ["logits"],
} as const;

/** What the loaded graph offers, resolved once at load time. */
interface LoadedEncoder {
  config: BertConfig;
  tokenizer: BertTokenizer;
  session: OnnxSession;
  inputIds: string;
  inputType: "int64" | "int32";
  attentionMask: string;
  tokenTypeIds?: string;
  lastHiddenState?: string;
  pooled?: string;
  /** `[B, num_labels]` output of sequence-classification graphs (cross-encoders). */
  logits?: string;
}

/** Classifier outputs of {@link OnnxEncoder.logitsTokenized}: `count` rows of `numLabels` logits, row-major. */
export interface LogitsMatrix {
  data: Float32Array;
  numLabels: number;
  count: number;
}

/** A BERT encoder (tokenizer + ONNX session) loaded lazily from an encoder folder. */
export class OnnxEncoder {
  /** The folder's files. */
  readonly files: EncoderFiles;
  /** Error-message prefix. */
  readonly owner: string;
  private readonly params: OnnxEncoderParams;
  private readonly loaded: Lazy<LoadedEncoder>;

  constructor(files: EncoderFiles, params: OnnxEncoderParams = {}) {
    this.files = files;
    this.params = params;
    this.owner = params.owner ?? "OnnxEncoder";
    this.loaded = new Lazy(
      () => this.load(),
      (l) => l.session.dispose(),
    );
  }

  /** Path of the ONNX file this encoder runs (fp32 or quantized). */
  get modelPath(): string {
    if (this.params.quantized) {
      if (!this.files.quantizedPath) {
        throw new Error(
          `${this.owner}: quantized: true but ${this.files.dir} has no model_quantized.onnx ` +
            `(export one with quantize: true, or set quantized: false)`,
        );
      }
      return this.files.quantizedPath;
    }
    if (!this.files.modelPath) {
      throw new Error(
        `${this.owner}: ${this.files.dir} has no model.onnx (nor onnx/model.onnx)` +
          (this.files.quantizedPath ? "; it has model_quantized.onnx: pass quantized: true" : "") +
          (this.files.safetensorsPath ? "; it has model.safetensors: export it with exportBertOnnx first" : ""),
      );
    }
    return this.files.modelPath;
  }

  private async load(): Promise<LoadedEncoder> {
    const modelPath = this.modelPath;
    const config = await readBertConfig(this.files.configPath);
    const tokenizer = await BertTokenizer.fromDir(this.files.dir);
    if (tokenizer.vocabSize > config.vocab_size) {
      throw new Error(
        `${this.owner}: vocabulary mismatch in ${this.files.dir}: the tokenizer has ${tokenizer.vocabSize} tokens ` +
          `but config.json vocab_size is ${config.vocab_size} (the embedding matrix has one row per id)`,
      );
    }
    const session = await OnnxSession.create(modelPath, { ...this.params, owner: this.owner });
    try {
      return { config, tokenizer, session, ...this.bindNames(session) };
    } catch (err) {
      await session.dispose();
      throw err;
    }
  }

  private bindNames(session: OnnxSession): Omit<LoadedEncoder, "config" | "tokenizer" | "session"> {
    const inputNames = session.inputs.map((i) => i.name);
    const outputNames = session.outputs.map((o) => o.name);
    const find = (names: readonly string[], aliases: readonly string[]) => aliases.find((a) => names.includes(a));
    const where = `${this.owner}: ${session.modelPath}`;
    const inputIds = find(inputNames, INPUT_ALIASES.inputIds);
    const attentionMask = find(inputNames, INPUT_ALIASES.attentionMask);
    const tokenTypeIds = find(inputNames, INPUT_ALIASES.tokenTypeIds);
    if (!inputIds || !attentionMask) {
      throw new Error(`${where} has inputs [${inputNames.join(", ")}]; expected input_ids and attention_mask (token_type_ids optional)`);
    }
    const known = new Set<string>([inputIds, attentionMask, tokenTypeIds].filter((n): n is string => !!n));
    const unknown = inputNames.filter((n) => !known.has(n));
    if (unknown.length > 0) {
      throw new Error(`${where} has unexpected inputs [${unknown.join(", ")}]; expected input_ids, attention_mask, token_type_ids`);
    }
    for (const name of known) {
      const t = session.input(name)!.type;
      if (t !== "int64" && t !== "int32") throw new Error(`${where}: input '${name}' has type ${t}; expected int64 or int32`);
    }
    const inputType = session.input(inputIds)!.type as "int64" | "int32";
    for (const name of known) {
      if (session.input(name)!.type !== inputType) {
        throw new Error(`${where}: inputs mix int32 and int64 ('${name}' is ${session.input(name)!.type}, input_ids is ${inputType})`);
      }
    }
    const lastHiddenState = find(outputNames, OUTPUT_ALIASES.lastHiddenState);
    const pooled = find(outputNames, OUTPUT_ALIASES.pooled);
    const logits = find(outputNames, OUTPUT_ALIASES.logits);
    if (!lastHiddenState && !pooled && !logits) {
      throw new Error(`${where} has outputs [${outputNames.join(", ")}]; expected last_hidden_state and/or pooler_output (or logits)`);
    }
    return { inputIds, inputType, attentionMask, tokenTypeIds, lastHiddenState, pooled, logits };
  }

  /** Loads the tokenizer and session now (they load on first use otherwise). */
  async ready(): Promise<void> {
    await this.loaded.get();
  }

  /** The tokenizer (loads the encoder if needed). */
  async tokenizer(): Promise<BertTokenizer> {
    return (await this.loaded.get()).tokenizer;
  }

  /** The encoder's config.json (loads the encoder if needed). */
  async config(): Promise<BertConfig> {
    return (await this.loaded.get()).config;
  }

  /** Inputs and outputs of the loaded graph (for diagnostics). */
  async describe(): Promise<{ inputs: string[]; outputs: string[]; modelPath: string }> {
    const l = await this.loaded.get();
    return { inputs: l.session.inputs.map((i) => i.name), outputs: l.session.outputs.map((o) => o.name), modelPath: l.session.modelPath };
  }

  /** Tokenizes inputs, truncating each to `maxLength` tokens. */
  async tokenize(items: EncoderInput[], maxLength: number): Promise<Encoding[]> {
    const { tokenizer } = await this.loaded.get();
    return tokenizer.encodeBatch(items, { maxLength });
  }

  /**
   * Encodes `items` into one vector each.
   * @param opts.sortByLength form batches from length-sorted inputs (default true); false keeps input order (benchmark baseline).
   */
  async encode(
    items: EncoderInput[],
    opts: { maxLength: number; batchSize: number; pooling: PoolingMode; normalize: boolean; sortByLength?: boolean },
  ): Promise<EmbeddingMatrix> {
    const encodings = await this.tokenize(items, opts.maxLength);
    return this.encodeTokenized(encodings, opts);
  }

  /** Encodes already tokenized inputs (see {@link encode}). */
  async encodeTokenized(
    encodings: Encoding[],
    opts: { batchSize: number; pooling: PoolingMode; normalize: boolean; sortByLength?: boolean },
  ): Promise<EmbeddingMatrix> {
    const l = await this.loaded.get();
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
      throw new Error(`${this.owner}: batchSize must be a positive integer, got ${opts.batchSize}`);
    }
    const dim = l.config.hidden_size;
    const n = encodings.length;
    const out = new Float32Array(n * dim);
    if (n === 0) return { data: out, dim, count: 0 };
    const order = batchOrder(encodings, opts.sortByLength ?? true);
    for (let start = 0; start < n; start += opts.batchSize) {
      const idx = order.slice(start, start + opts.batchSize);
      await this.runBatch(
        l,
        idx.map((i) => encodings[i]!),
        idx,
        out,
        dim,
        opts.pooling,
      );
    }
    if (opts.normalize) normalizeRows(out, dim);
    return { data: out, dim, count: n };
  }

  /**
   * Runs a sequence-classification graph (one with a `logits` output, e.g. a cross-encoder
   * exported as BertForSequenceClassification) on already tokenized inputs and returns the
   * logits in input order. Batches are formed like {@link encodeTokenized}'s.
   * @throws Error when the graph has no `logits` output or its shape is not `[B, num_labels]`.
   */
  async logitsTokenized(encodings: Encoding[], opts: { batchSize: number; sortByLength?: boolean }): Promise<LogitsMatrix> {
    const l = await this.loaded.get();
    if (!l.logits) {
      throw new Error(
        `${this.owner}: ${l.session.modelPath} has outputs [${l.session.outputs.map((o) => o.name).join(", ")}]; ` +
          `expected a 'logits' output (a BertForSequenceClassification export)`,
      );
    }
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
      throw new Error(`${this.owner}: batchSize must be a positive integer, got ${opts.batchSize}`);
    }
    const n = encodings.length;
    let out: Float32Array | undefined;
    let numLabels = 0;
    const order = batchOrder(encodings, opts.sortByLength ?? true);
    for (let start = 0; start < n; start += opts.batchSize) {
      const idx = order.slice(start, start + opts.batchSize);
      const feeds = this.buildFeeds(
        l,
        idx.map((i) => encodings[i]!),
      );
      const result = (await l.session.run(feeds, [l.logits]))[l.logits]!;
      if (result.dims.length !== 2 || result.dims[0] !== idx.length || result.dims[1]! < 1 || (out && result.dims[1] !== numLabels)) {
        throw new Error(
          `${this.owner}: output '${l.logits}' of ${l.session.modelPath} has shape [${result.dims.join(", ")}]; ` +
            `expected [${idx.length}, num_labels]`,
        );
      }
      if (!out) {
        numLabels = result.dims[1]!;
        out = new Float32Array(n * numLabels);
      }
      for (let r = 0; r < idx.length; r++) {
        out.set(result.data.subarray(r * numLabels, (r + 1) * numLabels), idx[r]! * numLabels);
      }
    }
    return { data: out ?? new Float32Array(0), numLabels, count: n };
  }

  /** Pads a batch into the graph's integer input tensors. */
  private buildFeeds(l: LoadedEncoder, batch: Encoding[]): Record<string, OnnxIntInput> {
    const b = batch.length;
    let seq = 1;
    for (const e of batch) seq = Math.max(seq, e.inputIds.length);
    const size = b * seq;
    const int64 = l.inputType === "int64";
    const ids = int64 ? new BigInt64Array(size) : new Int32Array(size);
    const mask = int64 ? new BigInt64Array(size) : new Int32Array(size);
    const types = int64 ? new BigInt64Array(size) : new Int32Array(size);
    const pad = l.tokenizer.padId;
    for (let r = 0; r < b; r++) {
      const e = batch[r]!;
      const base = r * seq;
      const len = e.inputIds.length;
      if (int64) {
        const I = ids as BigInt64Array,
          M = mask as BigInt64Array,
          T = types as BigInt64Array;
        for (let j = 0; j < len; j++) {
          I[base + j] = BigInt(e.inputIds[j]!);
          M[base + j] = BigInt(e.attentionMask[j]!);
          T[base + j] = BigInt(e.tokenTypeIds[j]!);
        }
        if (pad !== 0) for (let j = len; j < seq; j++) I[base + j] = BigInt(pad);
      } else {
        const I = ids as Int32Array,
          M = mask as Int32Array,
          T = types as Int32Array;
        for (let j = 0; j < len; j++) {
          I[base + j] = e.inputIds[j]!;
          M[base + j] = e.attentionMask[j]!;
          T[base + j] = e.tokenTypeIds[j]!;
        }
        if (pad !== 0) I.fill(pad, base + len, base + seq);
      }
    }
    const dims: [number, number] = [b, seq];
    const feeds: Record<string, OnnxIntInput> = {
      [l.inputIds]: { dims, data: ids },
      [l.attentionMask]: { dims, data: mask },
    };
    if (l.tokenTypeIds) feeds[l.tokenTypeIds] = { dims, data: types };
    return feeds;
  }

  private async runBatch(
    l: LoadedEncoder,
    batch: Encoding[],
    rows: number[],
    out: Float32Array,
    dim: number,
    pooling: PoolingMode,
  ): Promise<void> {
    const b = batch.length;
    let seq = 1;
    for (const e of batch) seq = Math.max(seq, e.inputIds.length);
    if (!l.lastHiddenState && !l.pooled) {
      throw new Error(
        `${this.owner}: ${l.session.modelPath} only has a '${l.logits}' output (a sequence classifier, e.g. a cross-encoder); ` +
          `embeddings need last_hidden_state or pooler_output`,
      );
    }
    const feeds = this.buildFeeds(l, batch);
    const useHidden = pooling !== "cls" || l.lastHiddenState !== undefined;
    if (pooling !== "cls" && !l.lastHiddenState) {
      throw new Error(`${this.owner}: pooling '${pooling}' needs a last_hidden_state output; ${l.session.modelPath} only has ${l.pooled}`);
    }
    const fetchName = useHidden ? l.lastHiddenState! : l.pooled!;
    const result = (await l.session.run(feeds, [fetchName]))[fetchName]!;
    const expected = useHidden ? [b, seq, dim] : [b, dim];
    if (result.dims.length !== expected.length || result.dims.some((d, i) => d !== expected[i])) {
      throw new Error(
        `${this.owner}: output '${fetchName}' of ${l.session.modelPath} has shape [${result.dims.join(", ")}]; ` +
          `expected [${expected.join(", ")}] (hidden_size ${dim} from config.json)`,
      );
    }
    const h = result.data;
    for (let r = 0; r < b; r++) {
      const dst = rows[r]! * dim;
      if (!useHidden) {
        out.set(h.subarray(r * dim, (r + 1) * dim), dst);
      } else if (pooling === "cls") {
        out.set(h.subarray(r * seq * dim, r * seq * dim + dim), dst);
      } else if (pooling === "max") {
        // Masked max over the tokens (sentence-transformers' pooling_mode_max_tokens).
        const e = batch[r]!;
        out.fill(-Infinity, dst, dst + dim);
        for (let j = 0; j < e.inputIds.length; j++) {
          if (!e.attentionMask[j]) continue;
          const src = (r * seq + j) * dim;
          for (let k = 0; k < dim; k++) if (h[src + k]! > out[dst + k]!) out[dst + k] = h[src + k]!;
        }
      } else {
        const e = batch[r]!;
        let count = 0;
        for (let j = 0; j < e.inputIds.length; j++) {
          if (!e.attentionMask[j]) continue;
          count++;
          const src = (r * seq + j) * dim;
          for (let k = 0; k < dim; k++) out[dst + k]! += h[src + k]!;
        }
        const inv = 1 / Math.max(count, 1);
        for (let k = 0; k < dim; k++) out[dst + k]! *= inv;
      }
    }
  }

  /** Frees the native session; the next call reloads it. */
  async dispose(): Promise<void> {
    await this.loaded.dispose();
  }
}

/**
 * Order in which inputs are batched: longest first when `sort` (the biggest batch runs first,
 * so an out-of-memory shows up at once; ties keep input order), else input order.
 */
function batchOrder(encodings: Encoding[], sort: boolean): number[] {
  const order = encodings.map((_, i) => i);
  if (sort) order.sort((a, b) => encodings[b]!.inputIds.length - encodings[a]!.inputIds.length || a - b);
  return order;
}

/** L2-normalises each row of a row-major matrix in place (zero rows stay zero). */
export function normalizeRows(data: Float32Array, dim: number): void {
  for (let off = 0; off < data.length; off += dim) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += data[off + k]! * data[off + k]!;
    if (s === 0) continue;
    const inv = 1 / Math.sqrt(s);
    for (let k = 0; k < dim; k++) data[off + k]! *= inv;
  }
}

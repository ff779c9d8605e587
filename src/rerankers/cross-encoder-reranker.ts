/**
 * CrossEncoderReranker: the second stage of two-stage retrieval. A BERT sequence-classification
 * model ("cross-encoder", e.g. `cross-encoder/ms-marco-MiniLM-L-6-v2` exported to ONNX) reads
 * the query and one passage together and gives one relevance logit per pair; candidates are
 * reordered by it. Runs on onnxruntime-node through {@link OnnxEncoder}.
 *
 * @module
 */
import type { Callbacks } from "@langchain/core/callbacks/manager";
import { Document, type DocumentInterface } from "@langchain/core/documents";
import { BaseDocumentCompressor } from "@langchain/core/retrievers/document_compressors";

import { OnnxEncoder } from "../runtime/onnx-encoder.js";
import { downloadModel, isHubId, retryAfterRepair, splitHubParams, type HubDownloadParams } from "../models/hub.js";
import { resolveEncoderDir } from "../models/model-dir.js";
import { Lazy, type ExecutionProviderName } from "../runtime/onnx-session.js";
import { isDirectory } from "../utils/fs.js";
import { inChainRun } from "../utils/callbacks.js";
import { CROSS_ENCODER_TITLE_JOINS, crossEncoderText, type CrossEncoderTitleJoin } from "./cross-encoder-text.js";

export type { CrossEncoderTitleJoin } from "./cross-encoder-text.js";

const OWNER = "CrossEncoderReranker";

/** Parameters of {@link CrossEncoderReranker}. */
export interface CrossEncoderRerankerParams {
  /**
   * A cross-encoder folder in Hugging Face layout: `config.json` (BertForSequenceClassification,
   * num_labels 1), `vocab.txt` or `tokenizer.json` (+ tokenizer_config.json), and `model.onnx`
   * or `onnx/model.onnx` with inputs input_ids, attention_mask (token_type_ids) and output
   * `logits` `[batch, num_labels]`.
   */
  modelPath: string;
  /** Documents {@link CrossEncoderReranker.compressDocuments} keeps. Default 10. */
  topN?: number;
  /** Pairs per session.run. Default 32. */
  batchSize?: number;
  /**
   * Max tokens of a pair including [CLS]/[SEP]/[SEP]; longer pairs are truncated longest-first
   * (like the Hugging Face tokenizer with `truncation=True`). Default: the tokenizer's
   * `model_max_length` (tokenizer_config.json), capped at config.json `max_position_embeddings`.
   */
  maxLength?: number;
  /** Map logits through the logistic sigmoid to (0, 1). Default false: raw logits (same order). */
  sigmoid?: boolean;
  /**
   * Which logit is the relevance score when the model has several. Default: the only one
   * (num_labels 1), or the positive class of a binary classifier (num_labels 2: index 1, as
   * transformers' binary sequence classifiers order their labels). With more labels (e.g. NLI) it is
   * required: such a model is refused unless you say which label means "relevant".
   */
  labelIndex?: number;
  /** How `metadata.title` is combined with the passage. Default `"space"`. */
  titleJoin?: CrossEncoderTitleJoin;
  /** Use model_quantized.onnx (int8). Default false. */
  quantized?: boolean;
  /** onnxruntime execution providers. Default `["cpu"]`. */
  executionProviders?: ExecutionProviderName[];
  /** Threads per operator (default: onnxruntime's choice, one per core). */
  intraOpNumThreads?: number;
  /** Batch pairs after sorting them by token length (default true). false keeps input order; for benchmarks. */
  sortByLength?: boolean;
}

/** Parameters of {@link CrossEncoderReranker.fromPretrained}: the reranker's params plus hub download settings. */
export type CrossEncoderFromPretrainedParams = Omit<CrossEncoderRerankerParams, "modelPath"> & HubDownloadParams;

/** One scored document of {@link CrossEncoderReranker.rerank}. */
export interface RerankResult {
  /** Position of the document in the input array. */
  index: number;
  /** The model's score (a logit, or its sigmoid when `sigmoid` is set). */
  relevanceScore: number;
  /** The input document (not copied; a string input becomes a Document with that pageContent). */
  document: DocumentInterface;
}

/** Options of {@link CrossEncoderReranker.rerank}. */
export interface RerankOptions {
  /** Return only the best `topN` (default: all documents). */
  topN?: number;
}

interface Loaded {
  encoder: OnnxEncoder;
  maxLength: number;
  /** num_labels from config.json, when it says. */
  configLabels?: number;
}

/**
 * Reranks documents with a cross-encoder. Extends LangChain's `BaseDocumentCompressor`, so it
 * plugs into `ContextualCompressionRetriever` (@langchain/classic) and this package's
 * DPRRetriever / TwoStageRetriever.
 *
 * Each pair is encoded as `[CLS] query [SEP] passage [SEP]` (token types 0 then 1), where the
 * passage is `pageContent`, preceded by `metadata.title` and a space when the title is a
 * non-empty string (see {@link CrossEncoderTitleJoin}). Pairs are batched after sorting by
 * length; results come back in score order (ties keep input order).
 *
 * {@link compressDocuments} returns the best `topN` as new documents whose metadata is the
 * input's plus `relevanceScore`. The native session loads on first use; {@link dispose} frees it.
 *
 * @example
 * ```ts
 * const reranker = new CrossEncoderReranker({ modelPath: "./models/ms-marco-MiniLM-L-6-v2", topN: 5 });
 * const retriever = new ContextualCompressionRetriever({ baseCompressor: reranker, baseRetriever: store.asRetriever(100) });
 * const docs = await retriever.invoke("what causes scurvy?"); // docs[0].metadata.relevanceScore
 * await reranker.dispose();
 * ```
 */
export class CrossEncoderReranker extends BaseDocumentCompressor {
  modelPath: string;
  topN = 10;
  batchSize = 32;
  maxLength?: number;
  sigmoid = false;
  labelIndex?: number;
  titleJoin: CrossEncoderTitleJoin = "space";
  quantized = false;
  executionProviders: ExecutionProviderName[] = ["cpu"];
  intraOpNumThreads?: number;
  sortByLength = true;

  private readonly loaded: Lazy<Loaded>;

  constructor(params: CrossEncoderRerankerParams) {
    super();
    if (params === null || typeof params !== "object") throw new Error(`${OWNER}: params must be an object with modelPath`);
    if (typeof params.modelPath !== "string" || params.modelPath.length === 0) {
      throw new Error(`${OWNER}: modelPath must be a cross-encoder folder path, got ${JSON.stringify(params.modelPath)}`);
    }
    this.modelPath = params.modelPath;
    this.topN = params.topN ?? this.topN;
    this.batchSize = params.batchSize ?? this.batchSize;
    this.maxLength = params.maxLength;
    this.sigmoid = params.sigmoid ?? this.sigmoid;
    this.labelIndex = params.labelIndex;
    this.titleJoin = params.titleJoin ?? this.titleJoin;
    this.quantized = params.quantized ?? this.quantized;
    this.executionProviders = params.executionProviders ?? this.executionProviders;
    this.intraOpNumThreads = params.intraOpNumThreads;
    this.sortByLength = params.sortByLength ?? this.sortByLength;
    const positiveInt = (key: "topN" | "batchSize", v: number) => {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${OWNER}: ${key} must be a positive integer, got ${v}`);
    };
    positiveInt("topN", this.topN);
    positiveInt("batchSize", this.batchSize);
    if (this.maxLength !== undefined && (!Number.isInteger(this.maxLength) || this.maxLength < 3)) {
      throw new Error(`${OWNER}: maxLength must be an integer >= 3 ([CLS] query [SEP] passage [SEP]), got ${this.maxLength}`);
    }
    if (this.labelIndex !== undefined && (!Number.isInteger(this.labelIndex) || this.labelIndex < 0)) {
      throw new Error(`${OWNER}: labelIndex must be a non-negative integer, got ${this.labelIndex}`);
    }
    if (!CROSS_ENCODER_TITLE_JOINS.includes(this.titleJoin)) {
      throw new Error(
        `${OWNER}: titleJoin must be one of ${CROSS_ENCODER_TITLE_JOINS.map((j) => `'${j}'`).join(", ")}, got '${String(this.titleJoin)}'`,
      );
    }
    this.loaded = new Lazy(
      () => this.load(),
      (l) => l.encoder.dispose(),
    );
  }

  /**
   * Loads from a local cross-encoder folder, or downloads a hub repository (`owner/name`, it
   * must contain an ONNX export, e.g. `onnx/model.onnx`) into the cache first.
   */
  static async fromPretrained<T extends typeof CrossEncoderReranker>(
    this: T,
    idOrPath: string,
    params: CrossEncoderFromPretrainedParams = {},
  ): Promise<InstanceType<T>> {
    const { hub, rest } = splitHubParams(params);
    let modelPath: string;
    const fromHub: string[] = [];
    if (await isDirectory(idOrPath)) {
      modelPath = idOrPath;
    } else {
      if (!isHubId(idOrPath)) throw new Error(`${OWNER}: '${idOrPath}' is neither a folder nor a hub id like owner/name`);
      modelPath = await downloadModel(idOrPath, hub);
      fromHub.push(idOrPath);
    }
    // A cached file cut short where no check could tell fails the load: it is fetched again once.
    return retryAfterRepair(fromHub, hub, async () => {
      const instance = new this({ ...rest, modelPath });
      await instance.ready();
      return instance as InstanceType<T>;
    });
  }

  private async load(): Promise<Loaded> {
    const files = await resolveEncoderDir(this.modelPath, OWNER);
    const encoder = new OnnxEncoder(files, {
      owner: OWNER,
      executionProviders: this.executionProviders,
      intraOpNumThreads: this.intraOpNumThreads,
      quantized: this.quantized,
    });
    try {
      await encoder.ready();
      const config = await encoder.config();
      const { outputs, modelPath } = await encoder.describe();
      if (!outputs.includes("logits")) {
        const arch = config.architectures ? ` (config.json architectures: ${config.architectures.join(", ")})` : "";
        throw new Error(
          `${OWNER}: ${modelPath} has no 'logits' output (outputs: ${outputs.join(", ")})${arch}; ` +
            `a cross-encoder must be exported as BertForSequenceClassification with a logits [batch, 1] output`,
        );
      }
      const configLabels = config.num_labels;
      if (configLabels !== undefined) this.checkLabels(configLabels, files.configPath);
      const positions = config.max_position_embeddings;
      let maxLength: number;
      if (this.maxLength !== undefined) {
        if (this.maxLength > positions) {
          throw new Error(
            `${OWNER}: maxLength ${this.maxLength} exceeds the model's max_position_embeddings ${positions} (${files.configPath})`,
          );
        }
        maxLength = this.maxLength;
      } else {
        maxLength = Math.min((await encoder.tokenizer()).options.modelMaxLength, positions);
      }
      return { encoder, maxLength, configLabels };
    } catch (err) {
      await encoder.dispose();
      throw err;
    }
  }

  /** Throws unless the model's label count and {@link labelIndex} pick exactly one logit. */
  private checkLabels(numLabels: number, where: string): void {
    if (numLabels > 2 && this.labelIndex === undefined) {
      throw new Error(
        `${OWNER}: the model has num_labels ${numLabels} (${where}); a reranker needs one relevance logit per pair. ` +
          `Pass labelIndex to choose which logit is the score, or use a cross-encoder with num_labels 1`,
      );
    }
    const index = this.scoreIndex(numLabels);
    if (index >= numLabels) {
      throw new Error(`${OWNER}: labelIndex ${index} is out of range for num_labels ${numLabels} (${where})`);
    }
  }

  /** The logit that is the score: labelIndex, else 1 for a binary classifier, else 0. */
  private scoreIndex(numLabels: number): number {
    return this.labelIndex ?? (numLabels === 2 ? 1 : 0);
  }

  /** Loads the tokenizer and session now (they load on first use otherwise). */
  async ready(): Promise<void> {
    await this.loaded.get();
  }

  /** Effective max pair length in tokens (loads the model if needed). */
  async effectiveMaxLength(): Promise<number> {
    return (await this.loaded.get()).maxLength;
  }

  /**
   * Scores `(query, text)` pairs; returns one score per text, in input order: the logit
   * (at {@link labelIndex}, default 0), or its sigmoid when `sigmoid` is set.
   * @throws Error when query or a text is not a string.
   */
  async scorePairs(query: string, texts: string[]): Promise<number[]> {
    if (typeof query !== "string") throw new Error(`${OWNER}: query must be a string, got ${describe(query)}`);
    if (!Array.isArray(texts)) throw new Error(`${OWNER}: texts must be an array of strings, got ${describe(texts)}`);
    texts.forEach((t, i) => {
      if (typeof t !== "string") throw new Error(`${OWNER}: texts[${i}] must be a string, got ${describe(t)}`);
    });
    if (texts.length === 0) return [];
    const l = await this.loaded.get();
    const tokenizer = await l.encoder.tokenizer();
    const encodings = tokenizer.encodeBatch(
      texts.map((t) => ({ text: query, pair: t })),
      { maxLength: l.maxLength },
    );
    const logits = await l.encoder.logitsTokenized(encodings, { batchSize: this.batchSize, sortByLength: this.sortByLength });
    if (l.configLabels !== undefined && logits.numLabels !== l.configLabels) {
      throw new Error(
        `${OWNER}: the model's logits have ${logits.numLabels} columns but config.json num_labels is ${l.configLabels} (${this.modelPath})`,
      );
    }
    if (l.configLabels === undefined) this.checkLabels(logits.numLabels, `${this.modelPath} logits output`);
    const index = this.scoreIndex(logits.numLabels);
    const scores = new Array<number>(texts.length);
    for (let i = 0; i < texts.length; i++) {
      const x = logits.data[i * logits.numLabels + index]!;
      scores[i] = this.sigmoid ? 1 / (1 + Math.exp(-x)) : x;
    }
    return scores;
  }

  /** The second segment scored for a document (pageContent, with the title in front per {@link titleJoin}). */
  passageText(doc: DocumentInterface): string {
    return crossEncoderText(doc.metadata?.title, doc.pageContent, this.titleJoin);
  }

  /**
   * Scores every document against the query and returns them best first (ties keep input
   * order), all of them or the best `options.topN`. The argument order is LangChain's rerankers'
   * (`CohereRerank.rerank(documents, query, options)`); strings are scored as passages without a
   * title. Documents are not modified.
   */
  async rerank(documents: Array<DocumentInterface | string>, query: string, options: RerankOptions = {}): Promise<RerankResult[]> {
    if (typeof documents === "string" && Array.isArray(query)) {
      throw new Error(
        `${OWNER}: rerank takes (documents, query, options), LangChain's order; got (query, documents). Swap the first two arguments`,
      );
    }
    if (!Array.isArray(documents)) throw new Error(`${OWNER}: documents must be an array, got ${describe(documents)}`);
    const topN = options.topN ?? documents.length;
    if (!Number.isInteger(topN) || topN < 0) throw new Error(`${OWNER}: options.topN must be a non-negative integer, got ${topN}`);
    const docs = documents.map((d, i): DocumentInterface => {
      if (typeof d === "string") return new Document({ pageContent: d });
      if (d === null || typeof d !== "object" || typeof d.pageContent !== "string") {
        throw new Error(`${OWNER}: documents[${i}] must be a string or a Document with a string pageContent`);
      }
      return d;
    });
    const scores = await this.scorePairs(
      query,
      docs.map((d) => this.passageText(d)),
    );
    return scores
      .map((relevanceScore, index) => ({ index, relevanceScore, document: docs[index]! }))
      .sort((a, b) => b.relevanceScore - a.relevanceScore || a.index - b.index)
      .slice(0, topN);
  }

  /**
   * Returns the `topN` best documents for the query, best first, as new documents with the
   * input's metadata plus `relevanceScore` (the inputs are not mutated). With callbacks it runs as
   * a chain run named `CrossEncoderReranker` (a child run of the retriever that called it).
   */
  override async compressDocuments(documents: DocumentInterface[], query: string, callbacks?: Callbacks): Promise<DocumentInterface[]> {
    return inChainRun(
      OWNER,
      ["langchain_dpr", "rerankers"],
      callbacks,
      { query, documents: Array.isArray(documents) ? documents.length : 0, topN: this.topN },
      async () => {
        const ranked = await this.rerank(documents, query, { topN: this.topN });
        return ranked.map(
          ({ document, relevanceScore }) =>
            new Document({ pageContent: document.pageContent, metadata: { ...document.metadata, relevanceScore }, id: document.id }),
        );
      },
      (docs) => ({ documents: docs.length, relevanceScores: docs.map((d) => d.metadata.relevanceScore as number) }),
    );
  }

  /** Frees the native session. The instance stays usable: the next call reloads it. */
  async dispose(): Promise<void> {
    await this.loaded.dispose();
  }
}

function describe(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : typeof v;
}

/**
 * DPREmbeddings: LangChain.js embeddings backed by a Dense Passage Retrieval model (a
 * question encoder and a passage encoder) running on onnxruntime-node.
 */

import type { DocumentInterface } from "@langchain/core/documents";
import { Embeddings, type EmbeddingsParams } from "@langchain/core/embeddings";

import {
  DEFAULT_DPR_CONFIG,
  passageSegments,
  readDPRConfig,
  resolveDPRModelDir,
  resolveEncoderDir,
  type DPRModelConfig,
  type PoolingMode,
  type TitleJoin,
} from "../models/model-dir.js";
import type { ModelFusion } from "../models/fusion-config.js";
import { downloadModel, isHubId, retryAfterRepair, splitHubParams, type HubDownloadParams } from "../models/hub.js";
import { Lazy, type ExecutionProviderName } from "../runtime/onnx-session.js";
import { OnnxEncoder, type EmbeddingMatrix, type EncoderInput } from "../runtime/onnx-encoder.js";
import { isDirectory } from "../utils/fs.js";

/** A passage with an optional title. */
export interface Passage {
  title?: string;
  text: string;
}

/** Parameters of {@link DPREmbeddings}. */
export interface DPREmbeddingsParams extends EmbeddingsParams {
  /** A DPR model folder (question_encoder/ + passage_encoder/, or encoder/). */
  modelPath?: string;
  /** Question encoder folder (with {@link passageEncoderPath}, instead of modelPath). */
  questionEncoderPath?: string;
  /** Passage encoder folder (with {@link questionEncoderPath}, instead of modelPath). */
  passageEncoderPath?: string;
  /** Max question tokens incl. special tokens (default: dpr_config.json, else 64). Longer input is truncated. */
  maxQueryLength?: number;
  /**
   * Max passage tokens incl. special tokens (default: dpr_config.json, else 256, lowered to the
   * model's max_position_embeddings when that is smaller; an explicit larger value is an error).
   * Longer input is truncated.
   */
  maxPassageLength?: number;
  /** Texts per session.run (default 32). */
  batchSize?: number;
  /** cls (DPR), mean or max (default: dpr_config.json or the sentence-transformers pooling, else cls). */
  pooling?: PoolingMode;
  /** L2-normalise vectors (default: dpr_config.json, else false: DPR scores by raw dot product). */
  normalize?: boolean;
  /** How passage titles are joined (default: dpr_config.json, "space" for sentence-transformers folders, else "pair"). */
  titleJoin?: TitleJoin;
  /**
   * Text prepended to every question, e.g. e5's `"query: "` or bge's query instruction (default:
   * dpr_config.json or the folder's config_sentence_transformers.json prompts, else "").
   */
  queryPrompt?: string;
  /** Text prepended to every passage, e.g. e5's `"passage: "` (default as {@link queryPrompt}). */
  passagePrompt?: string;
  /** onnxruntime execution providers (default ["cpu"]). */
  executionProviders?: ExecutionProviderName[];
  /** Threads per operator (default: onnxruntime's choice, one per core). */
  intraOpNumThreads?: number;
  /** Use model_quantized.onnx (int8). Default false. */
  quantized?: boolean;
  /** Form batches from length-sorted texts (default true). false keeps input order; for benchmarks only. */
  sortByLength?: boolean;
}

/** Parameters of {@link DPREmbeddings.fromPretrained}: the embeddings' params plus hub download settings. */
export type DPRFromPretrainedParams = Omit<DPREmbeddingsParams, "modelPath" | "questionEncoderPath" | "passageEncoderPath"> &
  HubDownloadParams;

const OWNER = "DPREmbeddings";

type ModelSettingKey = "maxQueryLength" | "maxPassageLength" | "pooling" | "normalize" | "titleJoin" | "queryPrompt" | "passagePrompt";
const MODEL_SETTING_KEYS: ModelSettingKey[] = [
  "maxQueryLength",
  "maxPassageLength",
  "pooling",
  "normalize",
  "titleJoin",
  "queryPrompt",
  "passagePrompt",
];

interface Encoders {
  question: OnnxEncoder;
  passage: OnnxEncoder;
}

/**
 * Embeddings from a DPR model: {@link embedQuery} runs the question encoder,
 * {@link embedDocuments} the passage encoder (the two are asymmetric). Native sessions and
 * tokenizers load on first use and are shared by concurrent first calls; call
 * {@link dispose} to free them.
 *
 * Empty strings are embedded as `[CLS] [SEP]` (what the Hugging Face tokenizer produces);
 * texts longer than the max length are truncated, never rejected.
 *
 * @example
 * ```ts
 * const embeddings = await DPREmbeddings.fromPretrained("./models/my-dpr");
 * const q = await embeddings.embedQuery("what causes scurvy?");
 * const docs = await embeddings.embedPassages([{ title: "Scurvy", text: "Scurvy is caused by ..." }]);
 * ```
 */
export class DPREmbeddings extends Embeddings {
  modelPath?: string;
  questionEncoderPath?: string;
  passageEncoderPath?: string;
  maxQueryLength = DEFAULT_DPR_CONFIG.maxQueryLength;
  maxPassageLength = DEFAULT_DPR_CONFIG.maxPassageLength;
  batchSize = 32;
  pooling: PoolingMode = DEFAULT_DPR_CONFIG.pooling;
  normalize = DEFAULT_DPR_CONFIG.normalize;
  titleJoin: TitleJoin = DEFAULT_DPR_CONFIG.titleJoin;
  queryPrompt = DEFAULT_DPR_CONFIG.queryPrompt;
  passagePrompt = DEFAULT_DPR_CONFIG.passagePrompt;
  executionProviders: ExecutionProviderName[] = ["cpu"];
  intraOpNumThreads?: number;
  quantized = false;
  sortByLength = true;

  /** Settings the caller passed explicitly (these win over dpr_config.json). */
  private readonly explicit: Set<ModelSettingKey>;
  private readonly encoders: Lazy<Encoders>;
  private configRead?: Promise<DPRModelConfig | undefined>;

  constructor(params: DPREmbeddingsParams) {
    // Local inference errors are not transient: don't retry them unless asked.
    super({ maxRetries: 0, ...params });
    const hasPair = params.questionEncoderPath !== undefined || params.passageEncoderPath !== undefined;
    if (params.modelPath === undefined && !hasPair) {
      throw new Error(`${OWNER}: pass modelPath (a DPR model folder) or questionEncoderPath and passageEncoderPath`);
    }
    if (params.modelPath !== undefined && hasPair) {
      throw new Error(`${OWNER}: pass either modelPath or questionEncoderPath/passageEncoderPath, not both`);
    }
    if (hasPair && (params.questionEncoderPath === undefined || params.passageEncoderPath === undefined)) {
      throw new Error(`${OWNER}: questionEncoderPath and passageEncoderPath must be given together`);
    }
    this.modelPath = params.modelPath;
    this.questionEncoderPath = params.questionEncoderPath;
    this.passageEncoderPath = params.passageEncoderPath;
    this.explicit = new Set(MODEL_SETTING_KEYS.filter((k) => params[k] !== undefined));
    if (params.maxQueryLength !== undefined) this.maxQueryLength = params.maxQueryLength;
    if (params.maxPassageLength !== undefined) this.maxPassageLength = params.maxPassageLength;
    if (params.pooling !== undefined) this.pooling = params.pooling;
    if (params.normalize !== undefined) this.normalize = params.normalize;
    if (params.titleJoin !== undefined) this.titleJoin = params.titleJoin;
    if (params.queryPrompt !== undefined) this.queryPrompt = params.queryPrompt;
    if (params.passagePrompt !== undefined) this.passagePrompt = params.passagePrompt;
    this.batchSize = params.batchSize ?? this.batchSize;
    this.executionProviders = params.executionProviders ?? this.executionProviders;
    this.intraOpNumThreads = params.intraOpNumThreads ?? this.intraOpNumThreads;
    this.quantized = params.quantized ?? this.quantized;
    this.sortByLength = params.sortByLength ?? this.sortByLength;
    this.checkSettings();
    this.encoders = new Lazy(
      () => this.openEncoders(),
      async (e) => {
        await e.question.dispose();
        if (e.passage !== e.question) await e.passage.dispose();
      },
    );
  }

  private checkSettings(): void {
    for (const key of ["maxQueryLength", "maxPassageLength", "batchSize"] as const) {
      const v = this[key];
      const min = key === "batchSize" ? 1 : 2;
      if (!Number.isInteger(v) || v < min) throw new Error(`${OWNER}: ${key} must be an integer >= ${min}, got ${v}`);
    }
    if (this.pooling !== "cls" && this.pooling !== "mean" && this.pooling !== "max") {
      throw new Error(`${OWNER}: pooling must be 'cls', 'mean' or 'max', got '${String(this.pooling)}'`);
    }
    if (this.titleJoin !== "pair" && this.titleJoin !== "space" && this.titleJoin !== "none") {
      throw new Error(`${OWNER}: titleJoin must be 'pair', 'space' or 'none', got '${String(this.titleJoin)}'`);
    }
    for (const key of ["queryPrompt", "passagePrompt"] as const) {
      if (typeof this[key] !== "string") throw new Error(`${OWNER}: ${key} must be a string, got ${typeof this[key]}`);
    }
  }

  /**
   * Loads from a local folder, or downloads a hub repository (`owner/name`) into the cache
   * first. The pair form `{ question, passage }` takes two encoder repositories or folders,
   * e.g. `{ question: "facebook/dpr-question_encoder-single-nq-base", passage: "facebook/dpr-ctx_encoder-single-nq-base" }`
   * (each must contain an ONNX export).
   */
  static async fromPretrained<T extends typeof DPREmbeddings>(
    this: T,
    idOrPath: string | { question: string; passage: string },
    params: DPRFromPretrainedParams = {},
  ): Promise<InstanceType<T>> {
    const { hub, rest } = splitHubParams(params);
    const fromHub: string[] = [];
    const locate = async (ref: string): Promise<string> => {
      if (await isDirectory(ref)) return ref;
      if (!isHubId(ref)) throw new Error(`${OWNER}: '${ref}' is neither a folder nor a hub id like owner/name`);
      try {
        const dir = await downloadModel(ref, hub);
        fromHub.push(ref);
        return dir;
      } catch (err) {
        throw new Error(`${OWNER}: '${ref}' is not a local folder, and downloading it as a hub id failed: ${(err as Error).message}`);
      }
    };
    let paths: Pick<DPREmbeddingsParams, "modelPath" | "questionEncoderPath" | "passageEncoderPath">;
    if (typeof idOrPath === "string") {
      paths = { modelPath: await locate(idOrPath) };
    } else {
      const questionEncoderPath = await locate(idOrPath.question);
      const passageEncoderPath = idOrPath.passage === idOrPath.question ? questionEncoderPath : await locate(idOrPath.passage);
      paths = { questionEncoderPath, passageEncoderPath };
    }
    // A cached file cut short where no check could tell fails the load: it is fetched again once.
    return retryAfterRepair(fromHub, hub, async () => {
      const instance = new this({ ...rest, ...paths });
      await instance.ready();
      return instance as InstanceType<T>;
    });
  }

  private async openEncoders(): Promise<Encoders> {
    const sessionParams = {
      owner: OWNER,
      executionProviders: this.executionProviders,
      intraOpNumThreads: this.intraOpNumThreads,
      quantized: this.quantized,
    };
    let questionDir: string;
    let passageDir: string;
    let shared: boolean;
    let config: DPRModelConfig | undefined;
    if (this.modelPath !== undefined) {
      const layout = await resolveDPRModelDir(this.modelPath, OWNER);
      questionDir = layout.questionEncoderDir;
      passageDir = layout.passageEncoderDir;
      shared = layout.shared;
      config = layout.config;
    } else {
      questionDir = this.questionEncoderPath!;
      passageDir = this.passageEncoderPath!;
      shared = questionDir === passageDir;
    }
    if (config) {
      for (const key of MODEL_SETTING_KEYS) {
        if (!this.explicit.has(key)) (this as Record<ModelSettingKey, unknown>)[key] = config[key];
      }
      this.checkSettings();
    }
    const question = new OnnxEncoder(await resolveEncoderDir(questionDir, OWNER), sessionParams);
    const passage = shared ? question : new OnnxEncoder(await resolveEncoderDir(passageDir, OWNER), sessionParams);
    try {
      await Promise.all([question.ready(), passage === question ? undefined : passage.ready()]);
      const [qc, pc] = await Promise.all([question.config(), passage.config()]);
      for (const [key, limit, dir] of [
        ["maxQueryLength", qc.max_position_embeddings, questionDir],
        ["maxPassageLength", pc.max_position_embeddings, passageDir],
      ] as const) {
        if (this[key] <= limit) continue;
        // A length the caller asked for is an error; a default is fitted to the model.
        if (this.explicit.has(key)) {
          throw new Error(`${OWNER}: ${key} ${this[key]} exceeds max_position_embeddings ${limit} in ${dir}/config.json`);
        }
        this[key] = limit;
      }
      if (qc.hidden_size !== pc.hidden_size) {
        throw new Error(
          `${OWNER}: question encoder hidden_size ${qc.hidden_size} (${questionDir}) differs from passage encoder ` +
            `hidden_size ${pc.hidden_size} (${passageDir}); their vectors could not be compared`,
        );
      }
    } catch (err) {
      await question.dispose();
      if (passage !== question) await passage.dispose();
      throw err;
    }
    return { question, passage };
  }

  /**
   * The settings of the model folder's dpr_config.json (defaults filled in; a sentence-transformers
   * folder's settings when it has none), read without loading the encoders; undefined for an
   * encoder pair given by questionEncoderPath/passageEncoderPath. Read once, on the first call, and
   * kept (a failed read is retried on the next call). Settings passed to the constructor are not
   * merged in: they are this object's fields.
   */
  async modelConfig(): Promise<DPRModelConfig | undefined> {
    if (this.modelPath === undefined) return undefined;
    this.configRead ??= readDPRConfig(this.modelPath).catch((err: unknown) => {
      this.configRead = undefined;
      throw new Error(`${OWNER}: cannot read the settings of ${this.modelPath}: ${(err as Error).message}`);
    });
    return this.configRead;
  }

  /**
   * The hybrid fusion stored in the model's dpr_config.json (`fusion`, written by
   * `langchain-dpr evaluate --tune-fusion ... --write-fusion`), or undefined when there is none.
   * HybridRetriever uses it when its caller sets no fusion option. Does not load the encoders.
   */
  async storedFusion(): Promise<ModelFusion | undefined> {
    return (await this.modelConfig())?.fusion;
  }

  /** Loads both encoders now (they load on first use otherwise). Concurrent calls share one load. */
  async ready(): Promise<void> {
    await this.encoders.get();
  }

  /** The vector dimension (hidden_size), loading the model if needed. */
  async dimension(): Promise<number> {
    const { question } = await this.encoders.get();
    return (await question.config()).hidden_size;
  }

  /** The two encoders (the same object when shared). For diagnostics and benchmarks. */
  async getEncoders(): Promise<{ question: OnnxEncoder; passage: OnnxEncoder }> {
    return this.encoders.get();
  }

  private encodeOptions(maxLength: number) {
    return {
      maxLength,
      batchSize: this.batchSize,
      pooling: this.pooling,
      normalize: this.normalize,
      sortByLength: this.sortByLength,
    };
  }

  private checkText(value: unknown, what: string): string {
    if (typeof value !== "string") throw new Error(`${OWNER}: ${what} must be a string, got ${value === null ? "null" : typeof value}`);
    return value;
  }

  /** Embeds one question with the question encoder, as a Float32Array. */
  async embedQueryVector(query: string): Promise<Float32Array> {
    const text = this.checkText(query, "query");
    return this.caller.call(async () => {
      const { question } = await this.encoders.get();
      return (await question.encode([{ text: this.queryPrompt + text }], this.encodeOptions(this.maxQueryLength))).data;
    });
  }

  /** Embeds questions with the question encoder as one row-major matrix. */
  async embedQueriesMatrix(queries: string[]): Promise<EmbeddingMatrix> {
    const items = queries.map((q, i) => ({ text: this.queryPrompt + this.checkText(q, `queries[${i}]`) }));
    return this.caller.call(async () => {
      const { question } = await this.encoders.get();
      return question.encode(items, this.encodeOptions(this.maxQueryLength));
    });
  }

  /**
   * Embeds passages (with optional titles) with the passage encoder as one row-major matrix
   * `[count * dim]`, without number[] copies (for the FAISS store).
   */
  async embedPassagesMatrix(passages: Passage[]): Promise<EmbeddingMatrix> {
    const items: EncoderInput[] = passages.map((p, i) => {
      if (p === null || typeof p !== "object") throw new Error(`${OWNER}: passages[${i}] must be an object { title?, text }`);
      const text = this.checkText(p.text, `passages[${i}].text`);
      if (p.title !== undefined && p.title !== null && typeof p.title !== "string") {
        throw new Error(`${OWNER}: passages[${i}].title must be a string, got ${typeof p.title}`);
      }
      return passageSegments({ title: p.title, text }, this.titleJoin, this.passagePrompt);
    });
    return this.caller.call(async () => {
      const { passage } = await this.encoders.get();
      return passage.encode(items, this.encodeOptions(this.maxPassageLength));
    });
  }

  /** Embeds passages (with optional titles) with the passage encoder. */
  async embedPassages(passages: Passage[]): Promise<number[][]> {
    return toRows(await this.embedPassagesMatrix(passages));
  }

  /** Embeds LangChain documents with the passage encoder, using `metadata.title` as the title when it is a string. */
  async embedDocumentsWithTitles(documents: DocumentInterface[]): Promise<number[][]> {
    return this.embedPassages(
      documents.map((d) => ({
        text: d.pageContent,
        title: typeof d.metadata?.title === "string" ? (d.metadata.title as string) : undefined,
      })),
    );
  }

  /** Embeds a question with the question encoder. */
  override async embedQuery(query: string): Promise<number[]> {
    return Array.from(await this.embedQueryVector(query));
  }

  /** Embeds passages (no titles) with the passage encoder. */
  override async embedDocuments(documents: string[]): Promise<number[][]> {
    return toRows(await this.embedPassagesMatrix(documents.map((text) => ({ text }))));
  }

  /** Frees the native sessions. The instance stays usable: the next call reloads them. */
  async dispose(): Promise<void> {
    await this.encoders.dispose();
  }
}

function toRows(m: EmbeddingMatrix): number[][] {
  const rows: number[][] = new Array(m.count);
  for (let i = 0; i < m.count; i++) rows[i] = Array.from(m.data.subarray(i * m.dim, (i + 1) * m.dim));
  return rows;
}

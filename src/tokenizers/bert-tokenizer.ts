/**
 * BERT WordPiece tokenization with the exact behaviour of Hugging Face's `BertTokenizerFast`
 * (Rust `tokenizers`): BertNormalizer, BertPreTokenizer, WordPiece, `[CLS] a [SEP] b [SEP]`
 * post-processing and `longest_first` truncation.
 *
 * Parity with the Rust library is proven by test/tokenizers/parity.test.ts (real passages, hard
 * cases, every Unicode code point, a truncation grid). It is not a wrapper over the pure-JS
 * `@huggingface/tokenizers` because that package differs from Rust on some inputs (CJK outside the
 * BMP, Greek final sigma, empty pairs), has no truncation, and was slower in
 * scripts/bench-tokenizer.ts.
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { bertNormalize, bertPreTokenize, type BertNormalizerOptions } from "./bert-text.js";
import { pathExists } from "../utils/fs.js";
import { writeFileAtomic } from "../utils/atomic-file.js";

/** User-facing options (the keys of a `tokenizer_config.json`, camel-cased). */
export interface BertTokenizerOptions {
  /** Lower-case input (`do_lower_case`). Default true. */
  lowercase?: boolean;
  /** Strip accents (`strip_accents`). Default: same as `lowercase`, as in Hugging Face. */
  stripAccents?: boolean;
  /** Isolate CJK ideographs (`tokenize_chinese_chars`). Default true. */
  tokenizeChineseChars?: boolean;
  /** Truncation length used when `encode` gets no `maxLength` (`model_max_length`). Default 512. */
  modelMaxLength?: number;
  /** Remove control characters and normalize whitespace (`clean_text`). Default true. */
  cleanText?: boolean;
  /** Words longer than this many characters become `[UNK]` (`max_input_chars_per_word`). Default 100. */
  maxInputCharsPerWord?: number;
  /** Prefix of word-continuation pieces. Default "##". */
  continuingSubwordPrefix?: string;
  /** Special token strings. Defaults: [PAD] [UNK] [CLS] [SEP] [MASK]. */
  padToken?: string;
  unkToken?: string;
  clsToken?: string;
  sepToken?: string;
  maskToken?: string;
}

/** Model inputs for one text or text pair, unpadded. */
export interface Encoding {
  inputIds: number[];
  attentionMask: number[];
  tokenTypeIds: number[];
}

/** Options of {@link BertTokenizer.encode}. */
export interface EncodeOptions {
  /** Total length including special tokens; defaults to the tokenizer's `modelMaxLength`. */
  maxLength?: number;
}

const DEFAULTS = {
  lowercase: true,
  tokenizeChineseChars: true,
  modelMaxLength: 512,
  cleanText: true,
  maxInputCharsPerWord: 100,
  continuingSubwordPrefix: "##",
  padToken: "[PAD]",
  unkToken: "[UNK]",
  clsToken: "[CLS]",
  sepToken: "[SEP]",
  maskToken: "[MASK]",
} as const;

/** Fully resolved settings of a tokenizer. */
type ResolvedOptions = Required<BertTokenizerOptions>;

function resolveOptions(opts: BertTokenizerOptions): ResolvedOptions {
  const lowercase = opts.lowercase ?? DEFAULTS.lowercase;
  return {
    lowercase,
    stripAccents: opts.stripAccents ?? lowercase,
    tokenizeChineseChars: opts.tokenizeChineseChars ?? DEFAULTS.tokenizeChineseChars,
    modelMaxLength: opts.modelMaxLength ?? DEFAULTS.modelMaxLength,
    cleanText: opts.cleanText ?? DEFAULTS.cleanText,
    maxInputCharsPerWord: opts.maxInputCharsPerWord ?? DEFAULTS.maxInputCharsPerWord,
    continuingSubwordPrefix: opts.continuingSubwordPrefix ?? DEFAULTS.continuingSubwordPrefix,
    padToken: opts.padToken ?? DEFAULTS.padToken,
    unkToken: opts.unkToken ?? DEFAULTS.unkToken,
    clsToken: opts.clsToken ?? DEFAULTS.clsToken,
    sepToken: opts.sepToken ?? DEFAULTS.sepToken,
    maskToken: opts.maskToken ?? DEFAULTS.maskToken,
  };
}

function fail(message: string): never {
  throw new Error(`BertTokenizer: ${message}`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  const text = await readFile(path, "utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    fail(`${path} is not valid JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) fail(`${path} must hold a JSON object`);
  return parsed as Record<string, unknown>;
}

/** Reads an optional typed field of a parsed JSON object, failing clearly on a wrong type. */
function field<T extends "boolean" | "number" | "string">(
  obj: Record<string, unknown>,
  key: string,
  type: T,
  where: string,
): (T extends "boolean" ? boolean : T extends "number" ? number : string) | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== type) fail(`${where}: field "${key}" must be a ${type}, got ${JSON.stringify(v)}`);
  return v as never;
}

/** Special-token string: may be written as a plain string or as an AddedToken object `{content}`. */
function tokenField(obj: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  let token: string | undefined;
  if (typeof v === "string") token = v;
  else if (typeof v === "object" && typeof (v as { content?: unknown }).content === "string") token = (v as { content: string }).content;
  else fail(`${where}: field "${key}" must be a token string or {"content": string}, got ${JSON.stringify(v)}`);
  return nonEmptyToken(token, `${where}: field "${key}"`);
}

/**
 * Rejects an empty special-token string: it would match between every two characters of every
 * input. (Rust `tokenizers` skips empty added tokens; a special token whose role needs an id cannot be
 * skipped, so an empty one is a broken file.)
 */
function nonEmptyToken(token: string, what: string): string {
  if (token.length === 0) {
    fail(`${what} is the empty string; a special token must be a non-empty string of the vocabulary (remove the field to use the default)`);
  }
  return token;
}

/** Options found in a `tokenizer_config.json` (only keys that are present). */
function optionsFromTokenizerConfig(cfg: Record<string, unknown>, where: string): BertTokenizerOptions {
  const out: BertTokenizerOptions = {};
  const lowercase = field(cfg, "do_lower_case", "boolean", where);
  if (lowercase !== undefined) out.lowercase = lowercase;
  const strip = field(cfg, "strip_accents", "boolean", where);
  if (strip !== undefined) out.stripAccents = strip;
  const cjk = field(cfg, "tokenize_chinese_chars", "boolean", where);
  if (cjk !== undefined) out.tokenizeChineseChars = cjk;
  const maxLen = field(cfg, "model_max_length", "number", where);
  // HF writes a huge sentinel (1e30) when a model has no limit; treat it as "not set".
  if (maxLen !== undefined && maxLen < 1e9) out.modelMaxLength = maxLen;
  for (const [key, opt] of [
    ["pad_token", "padToken"],
    ["unk_token", "unkToken"],
    ["cls_token", "clsToken"],
    ["sep_token", "sepToken"],
    ["mask_token", "maskToken"],
  ] as const) {
    const v = tokenField(cfg, key, where);
    if (v !== undefined) out[opt] = v;
  }
  return out;
}

/** Parses the parts of a Hugging Face `tokenizer.json` a BERT WordPiece tokenizer uses. */
function parseTokenizerJson(json: Record<string, unknown>, where: string): { vocab: string[]; opts: BertTokenizerOptions } {
  const model = json.model as Record<string, unknown> | undefined;
  if (!model || typeof model !== "object") fail(`${where}: missing "model"`);
  if (model.type !== "WordPiece") fail(`${where}: model.type must be "WordPiece", got ${JSON.stringify(model.type)}`);
  const vocabObj = model.vocab;
  if (!vocabObj || typeof vocabObj !== "object" || Array.isArray(vocabObj)) fail(`${where}: model.vocab must be an object of token -> id`);
  const entries = Object.entries(vocabObj as Record<string, unknown>);
  const vocab: string[] = new Array(entries.length);
  for (const [token, id] of entries) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= entries.length) {
      fail(`${where}: model.vocab["${token}"] = ${JSON.stringify(id)} is not an id in 0..${entries.length - 1}`);
    }
    if (vocab[id] !== undefined) fail(`${where}: model.vocab id ${id} is used by both "${vocab[id]}" and "${token}"`);
    vocab[id] = token;
  }
  const unk = field(model, "unk_token", "string", `${where} model`);
  const opts: BertTokenizerOptions = {
    unkToken: unk === undefined ? undefined : nonEmptyToken(unk, `${where}: model.unk_token`),
    continuingSubwordPrefix: field(model, "continuing_subword_prefix", "string", `${where} model`),
    maxInputCharsPerWord: field(model, "max_input_chars_per_word", "number", `${where} model`),
  };
  const normalizer = json.normalizer as Record<string, unknown> | null | undefined;
  if (normalizer === null || normalizer === undefined) {
    Object.assign(opts, { cleanText: false, tokenizeChineseChars: false, lowercase: false, stripAccents: false });
  } else if (normalizer.type === "BertNormalizer") {
    const lowercase = field(normalizer, "lowercase", "boolean", `${where} normalizer`) ?? true;
    Object.assign(opts, {
      cleanText: field(normalizer, "clean_text", "boolean", `${where} normalizer`) ?? true,
      tokenizeChineseChars: field(normalizer, "handle_chinese_chars", "boolean", `${where} normalizer`) ?? true,
      lowercase,
      stripAccents: field(normalizer, "strip_accents", "boolean", `${where} normalizer`) ?? lowercase,
    });
  } else {
    fail(`${where}: normalizer.type ${JSON.stringify(normalizer.type)} is not supported (expected "BertNormalizer")`);
  }
  const pre = json.pre_tokenizer as Record<string, unknown> | null | undefined;
  if (!pre || pre.type !== "BertPreTokenizer") {
    fail(`${where}: pre_tokenizer must be {"type": "BertPreTokenizer"}, got ${JSON.stringify(pre?.type ?? pre)}`);
  }
  const post = json.post_processor as Record<string, unknown> | null | undefined;
  if (post && post.type === "BertProcessing") {
    const sep = post.sep as [string, number] | undefined;
    const cls = post.cls as [string, number] | undefined;
    if (Array.isArray(sep) && typeof sep[0] === "string") opts.sepToken = nonEmptyToken(sep[0], `${where}: post_processor.sep[0]`);
    if (Array.isArray(cls) && typeof cls[0] === "string") opts.clsToken = nonEmptyToken(cls[0], `${where}: post_processor.cls[0]`);
  } else if (post && post.type === "TemplateProcessing") {
    const single = post.single as Array<Record<string, { id: string }>> | undefined;
    const first = single?.[0]?.SpecialToken?.id;
    const last = single?.[single.length - 1]?.SpecialToken?.id;
    if (typeof first !== "string" || typeof last !== "string" || single?.length !== 3) {
      fail(`${where}: post_processor TemplateProcessing must be "[CLS] $A [SEP]"-shaped, got ${JSON.stringify(single)}`);
    }
    opts.clsToken = nonEmptyToken(first, `${where}: post_processor.single[0].SpecialToken.id`);
    opts.sepToken = nonEmptyToken(last, `${where}: post_processor.single[2].SpecialToken.id`);
  } else {
    fail(`${where}: post_processor must be BertProcessing or TemplateProcessing, got ${JSON.stringify(post?.type ?? post)}`);
  }
  const trunc = json.truncation as Record<string, unknown> | null | undefined;
  if (trunc && typeof trunc.max_length === "number") opts.modelMaxLength = trunc.max_length;
  return { vocab, opts };
}

/**
 * BERT WordPiece tokenizer, identical in output to Hugging Face's `BertTokenizerFast`
 * (ids, token type ids and `longest_first` truncation), in plain TypeScript.
 *
 * ```ts
 * const tok = await BertTokenizer.fromDir("models/dpr-question-encoder");
 * const q = tok.encode("what is dense retrieval?");                    // [CLS] q [SEP]
 * const p = tok.encode("Title", "Passage text ...", { maxLength: 256 }); // [CLS] title [SEP] text [SEP]
 * ```
 */
export class BertTokenizer {
  /** Number of entries in the vocabulary (ids are 0..vocabSize-1). */
  readonly vocabSize: number;
  readonly padId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly unkId: number;
  /** Id of the mask token, or undefined when the vocabulary has none. */
  readonly maskId: number | undefined;
  /** Resolved settings (lower-casing, accents, lengths, special tokens). */
  readonly options: Readonly<ResolvedOptions>;

  private readonly vocab: readonly string[];
  private readonly tokenToId: Map<string, number>;
  private readonly normalizerOptions: BertNormalizerOptions;
  /** Longest vocabulary entry in UTF-16 units: no WordPiece match can be longer. */
  private readonly maxPieceLength: number;
  /** Matches special tokens written literally in the input (HF treats them as special). */
  private readonly specialPattern: RegExp;
  private readonly specialIds: Map<string, number>;
  /** WordPiece results of recent words that are not whole vocabulary entries (bounded; a speed-up only). */
  private readonly pieceCache = new Map<string, number[]>();

  constructor(vocab: readonly string[], opts: BertTokenizerOptions = {}) {
    if (!Array.isArray(vocab) || vocab.length === 0) fail("vocabulary is empty");
    this.options = Object.freeze(resolveOptions(opts));
    const o = this.options;
    if (!Number.isInteger(o.modelMaxLength) || o.modelMaxLength < 3)
      fail(`modelMaxLength must be an integer >= 3, got ${o.modelMaxLength}`);
    if (!Number.isInteger(o.maxInputCharsPerWord) || o.maxInputCharsPerWord < 1) {
      fail(`maxInputCharsPerWord must be a positive integer, got ${o.maxInputCharsPerWord}`);
    }
    for (const [name, token] of [
      ["padToken", o.padToken],
      ["unkToken", o.unkToken],
      ["clsToken", o.clsToken],
      ["sepToken", o.sepToken],
      ["maskToken", o.maskToken],
    ] as const) {
      if (typeof token !== "string") fail(`${name} must be a string, got ${typeof token}`);
      nonEmptyToken(token, `option ${name}`);
    }
    this.vocab = vocab.slice();
    this.tokenToId = new Map();
    let maxLen = 0;
    this.vocab.forEach((token, id) => {
      if (typeof token !== "string") fail(`vocabulary entry ${id} is not a string`);
      this.tokenToId.set(token, id); // a repeated token maps to its last id, as in HF's vocab.txt loader
      if (token.length > maxLen) maxLen = token.length;
    });
    this.maxPieceLength = maxLen;
    this.vocabSize = this.vocab.length;
    const idOf = (name: string, token: string): number => {
      const id = this.tokenToId.get(token);
      if (id === undefined) fail(`the ${name} token "${token}" is not in the vocabulary`);
      return id;
    };
    this.padId = idOf("pad", o.padToken);
    this.unkId = idOf("unk", o.unkToken);
    this.clsId = idOf("cls", o.clsToken);
    this.sepId = idOf("sep", o.sepToken);
    this.maskId = this.tokenToId.get(o.maskToken);
    this.normalizerOptions = {
      cleanText: o.cleanText,
      handleChineseChars: o.tokenizeChineseChars,
      stripAccents: o.stripAccents,
      lowercase: o.lowercase,
    };
    this.specialIds = new Map();
    for (const t of [o.padToken, o.unkToken, o.clsToken, o.sepToken, o.maskToken]) {
      const id = this.tokenToId.get(t);
      if (id !== undefined) this.specialIds.set(t, id);
    }
    // Longest first so the alternation is leftmost-longest, like HF's added-token matcher.
    const alternatives = [...this.specialIds.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
    this.specialPattern = new RegExp(alternatives.join("|"), "g");
  }

  /** Builds a tokenizer from a vocabulary list (index = id). */
  static fromVocab(vocab: string[], opts: BertTokenizerOptions = {}): BertTokenizer {
    return new this(vocab, opts);
  }

  /**
   * Loads a Hugging Face tokenizer folder: `tokenizer.json` when present, else `vocab.txt`;
   * `tokenizer_config.json` (optional) supplies do_lower_case, strip_accents,
   * tokenize_chinese_chars, model_max_length and special tokens, and its explicit keys
   * override `tokenizer.json`'s normalizer the way `BertTokenizerFast` does.
   */
  static async fromDir(dir: string): Promise<BertTokenizer> {
    const jsonPath = join(dir, "tokenizer.json");
    const vocabPath = join(dir, "vocab.txt");
    const configPath = join(dir, "tokenizer_config.json");
    const configOpts = (await pathExists(configPath)) ? optionsFromTokenizerConfig(await readJson(configPath), configPath) : {};
    if (await pathExists(jsonPath)) {
      const { vocab, opts } = parseTokenizerJson(await readJson(jsonPath), jsonPath);
      const merged: BertTokenizerOptions = { ...opts };
      for (const [k, v] of Object.entries(configOpts)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
      // strip_accents follows lowercase when the config changes lowercase but says nothing about accents.
      if (configOpts.lowercase !== undefined && configOpts.stripAccents === undefined) merged.stripAccents = undefined;
      return new this(vocab, merged);
    }
    if (await pathExists(vocabPath)) {
      const vocab = (await readFile(vocabPath, "utf8")).split(/\r\n|\n|\r/);
      if (vocab.length > 0 && vocab[vocab.length - 1] === "") vocab.pop();
      if (vocab.length === 0) fail(`${vocabPath} is empty`);
      return new this(vocab, configOpts);
    }
    fail(`no tokenizer in ${dir}: expected tokenizer.json or vocab.txt`);
  }

  /** Token string of an id, or undefined when out of range. */
  idToToken(id: number): string | undefined {
    return this.vocab[id];
  }

  /** Id of a token string, or undefined when it is not in the vocabulary. */
  tokenToIdOrUndefined(token: string): number | undefined {
    return this.tokenToId.get(token);
  }

  /** A copy of the vocabulary, index = id. */
  getVocab(): string[] {
    return this.vocab.slice();
  }

  /** Word pieces of a text, without special tokens added around it. */
  tokenize(text: string): string[] {
    return this.textToIds(text).map((id) => this.vocab[id]);
  }

  /**
   * Encodes a question (`[CLS] text [SEP]`) or a title/text pair (`[CLS] title [SEP] text [SEP]`,
   * token type 0 then 1). Truncates to `maxLength` (default `modelMaxLength`) with
   * Hugging Face's `longest_first` rule; never throws on long input.
   */
  encode(text: string, pair?: string | null, opts: EncodeOptions = {}): Encoding {
    const maxLength = opts.maxLength ?? this.options.modelMaxLength;
    const hasPair = pair !== undefined && pair !== null;
    const added = hasPair ? 3 : 2;
    if (!Number.isInteger(maxLength) || maxLength < added) {
      fail(`maxLength must be an integer >= ${added} for ${hasPair ? "a pair" : "a single text"}, got ${maxLength}`);
    }
    if (typeof text !== "string") fail(`encode: text must be a string, got ${typeof text}`);
    if (hasPair && typeof pair !== "string") fail(`encode: pair must be a string or null, got ${typeof pair}`);
    // Tokenize only up to maxLength tokens (whole words) per sequence, as Rust tokenizers does
    // since its "early exit for truncation" change; this also decides which side longest_first cuts.
    let a = this.textToIds(text, maxLength);
    const budget = maxLength - added;
    if (!hasPair) {
      if (a.length > budget) a = a.slice(0, budget);
      const n = a.length + 2;
      return {
        inputIds: [this.clsId, ...a, this.sepId],
        attentionMask: new Array<number>(n).fill(1),
        tokenTypeIds: new Array<number>(n).fill(0),
      };
    }
    let b = this.textToIds(pair as string, maxLength);
    if (a.length + b.length > budget) {
      const [na, nb] = longestFirstLengths(a.length, b.length, budget);
      a = a.slice(0, na);
      b = b.slice(0, nb);
    }
    const nA = a.length + 2;
    const nB = b.length + 1;
    const tokenTypeIds = new Array<number>(nA + nB).fill(0, 0, nA).fill(1, nA);
    return {
      inputIds: [this.clsId, ...a, this.sepId, ...b, this.sepId],
      attentionMask: new Array<number>(nA + nB).fill(1),
      tokenTypeIds,
    };
  }

  /** Encodes many texts or pairs (see {@link encode}). */
  encodeBatch(items: Array<{ text: string; pair?: string | null }>, opts: EncodeOptions = {}): Encoding[] {
    return items.map((item) => this.encode(item.text, item.pair ?? null, opts));
  }

  /**
   * Writes `vocab.txt`, `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json`
   * (each atomically), readable by {@link fromDir}, by Hugging Face transformers and by the
   * Rust `tokenizers` library.
   */
  async save(dir: string): Promise<void> {
    const o = this.options;
    await mkdir(dir, { recursive: true });
    for (const [i, t] of this.vocab.entries()) {
      if (/[\n\r]/.test(t)) fail(`save: vocabulary entry ${i} contains a line break and cannot be written to vocab.txt`);
    }
    const specials = [o.padToken, o.unkToken, o.clsToken, o.sepToken, o.maskToken].filter((t) => this.specialIds.has(t));
    const addedTokens = specials
      .map((t) => ({
        id: this.specialIds.get(t) as number,
        content: t,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      }))
      .sort((x, y) => x.id - y.id);
    const vocabObj: Record<string, number> = {};
    this.vocab.forEach((t, id) => {
      vocabObj[t] = this.tokenToId.get(t) === id ? id : (this.tokenToId.get(t) as number);
    });
    const tokenizerJson = {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: addedTokens,
      normalizer: {
        type: "BertNormalizer",
        clean_text: o.cleanText,
        handle_chinese_chars: o.tokenizeChineseChars,
        strip_accents: o.stripAccents,
        lowercase: o.lowercase,
      },
      pre_tokenizer: { type: "BertPreTokenizer" },
      post_processor: { type: "BertProcessing", sep: [o.sepToken, this.sepId], cls: [o.clsToken, this.clsId] },
      decoder: { type: "WordPiece", prefix: o.continuingSubwordPrefix, cleanup: true },
      model: {
        type: "WordPiece",
        unk_token: o.unkToken,
        continuing_subword_prefix: o.continuingSubwordPrefix,
        max_input_chars_per_word: o.maxInputCharsPerWord,
        vocab: vocabObj,
      },
    };
    const specialMap: Record<string, string> = {
      unk_token: o.unkToken,
      sep_token: o.sepToken,
      pad_token: o.padToken,
      cls_token: o.clsToken,
    };
    if (this.maskId !== undefined) specialMap.mask_token = o.maskToken;
    const tokenizerConfig = {
      tokenizer_class: "BertTokenizer",
      do_lower_case: o.lowercase,
      strip_accents: o.stripAccents,
      tokenize_chinese_chars: o.tokenizeChineseChars,
      model_max_length: o.modelMaxLength,
      clean_up_tokenization_spaces: true,
      ...specialMap,
    };
    await writeFileAtomic(join(dir, "vocab.txt"), this.vocab.join("\n") + "\n");
    await writeFileAtomic(join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson));
    await writeFileAtomic(join(dir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig, null, 2) + "\n");
    await writeFileAtomic(join(dir, "special_tokens_map.json"), JSON.stringify(specialMap, null, 2) + "\n");
  }

  /**
   * Ids of a text without special tokens around it: special-token split, normalize, pre-tokenize,
   * WordPiece. With a `limit`, stops after the first word that brings the count to `limit` or more,
   * like Rust `tokenizers`' early exit under truncation (whole words are kept; special tokens
   * count but never end the loop themselves).
   */
  private textToIds(text: string, limit = Infinity): number[] {
    const out: number[] = [];
    if (text.length === 0) return out;
    this.specialPattern.lastIndex = 0;
    let last = 0;
    for (let m = this.specialPattern.exec(text); m !== null; m = this.specialPattern.exec(text)) {
      if (m.index > last && this.segmentToIds(text.slice(last, m.index), out, limit)) return out;
      out.push(this.specialIds.get(m[0]) as number);
      last = m.index + m[0].length;
    }
    if (last < text.length) this.segmentToIds(last === 0 ? text : text.slice(last), out, limit);
    return out;
  }

  /** Appends a plain-text segment's ids; returns true when the early-exit limit was reached. */
  private segmentToIds(segment: string, out: number[], limit: number): boolean {
    const normalized = bertNormalize(segment, this.normalizerOptions);
    for (const word of bertPreTokenize(normalized)) {
      this.wordPiece(word, out);
      if (out.length >= limit) return true;
    }
    return false;
  }

  /** Greedy longest-match-first WordPiece of one word; the whole word becomes [UNK] if any part fails. */
  private wordPiece(word: string, out: number[]): void {
    const whole = this.tokenToId.get(word);
    if (whole !== undefined && word.length <= this.options.maxInputCharsPerWord) {
      out.push(whole);
      return;
    }
    if (word.length > this.options.maxInputCharsPerWord && countCodePoints(word) > this.options.maxInputCharsPerWord) {
      out.push(this.unkId);
      return;
    }
    const cached = this.pieceCache.get(word);
    if (cached !== undefined) {
      for (const id of cached) out.push(id);
      return;
    }
    const prefix = this.options.continuingSubwordPrefix;
    const firstOut = out.length;
    let start = 0;
    while (start < word.length) {
      let end = Math.min(word.length, start + this.maxPieceLength);
      if (end < word.length && isLowSurrogate(word.charCodeAt(end))) end--; // never split a surrogate pair
      let id: number | undefined;
      while (end > start) {
        const piece = start > 0 ? prefix + word.slice(start, end) : word.slice(start, end);
        id = this.tokenToId.get(piece);
        if (id !== undefined) break;
        end -= end - 2 >= start && isLowSurrogate(word.charCodeAt(end - 1)) ? 2 : 1;
      }
      if (id === undefined) {
        out.length = firstOut;
        out.push(this.unkId);
        break;
      }
      out.push(id);
      start = end;
    }
    if (this.pieceCache.size >= PIECE_CACHE_SIZE) this.pieceCache.clear();
    this.pieceCache.set(word, out.slice(firstOut));
  }
}

/** Entries kept in the multi-piece word cache before it is cleared. */
const PIECE_CACHE_SIZE = 50_000;

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

function countCodePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (!isLowSurrogate(s.charCodeAt(i))) n++;
  return n;
}

/**
 * Lengths kept for a pair under Hugging Face's `longest_first` truncation (Rust `tokenizers`):
 * keep the shorter sequence whole when the longer one can absorb the cut; otherwise split the
 * budget in half, the extra odd token going to the longer sequence.
 */
export function longestFirstLengths(lenA: number, lenB: number, budget: number): [number, number] {
  if (lenA + lenB <= budget) return [lenA, lenB];
  const swap = lenA > lenB;
  let n1 = swap ? lenB : lenA; // the shorter
  let n2: number;
  n2 = n1 > budget ? n1 : Math.max(n1, budget - n1);
  if (n1 + n2 > budget) {
    n1 = Math.floor(budget / 2);
    n2 = n1 + (budget % 2);
  }
  const [keepA, keepB] = swap ? [n2, n1] : [n1, n2];
  return [Math.min(lenA, keepA), Math.min(lenB, keepB)];
}

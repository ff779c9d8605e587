import { porterStem } from "./porter.js";

/**
 * Lucene's English stop-word set (`EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`, 33 words), which
 * Pyserini's default analyzer removes.
 */
export const LUCENE_ENGLISH_STOP_WORDS: readonly string[] = Object.freeze([
  "a",
  "an",
  "and",
  "are",
  "as",
  "at",
  "be",
  "but",
  "by",
  "for",
  "if",
  "in",
  "into",
  "is",
  "it",
  "no",
  "not",
  "of",
  "on",
  "or",
  "such",
  "that",
  "the",
  "their",
  "then",
  "there",
  "these",
  "they",
  "this",
  "to",
  "was",
  "will",
  "with",
]);

/** Options of {@link EnglishAnalyzer}; every default reproduces Pyserini's default analyzer. */
export interface EnglishAnalyzerParams {
  /** Lower-case tokens (default true). */
  lowercase?: boolean;
  /** Remove English possessives ("'s", "’s") at token ends (default true). */
  possessive?: boolean;
  /** Stop words to drop, or `false` for none (default: {@link LUCENE_ENGLISH_STOP_WORDS}). */
  stopWords?: readonly string[] | false;
  /** Stemmer: `"porter"` (Lucene's PorterStemFilter, default) or `"none"`. */
  stemmer?: "porter" | "none";
  /** Tokens longer than this are split into pieces of this length, as Lucene does (default 255). */
  maxTokenLength?: number;
}

/**
 * Word tokenizer following the Unicode word-break rules (UAX #29) that Lucene's
 * `StandardTokenizer` implements, for the cases that matter in Latin-script text: letters and
 * digits join ("H2O", "covid19"); "." and apostrophes join letters ("U.S.A", "don't", "e.g") and
 * digits ("3.14"); ":" and "·" join letters; "," and ";" join digits ("1,000"); "_" joins
 * anything; "-" and other punctuation split. Han and Hiragana characters are one token each.
 * Not covered: emoji tokens, Katakana/letter boundaries, Southeast Asian scripts.
 */
const START = String.raw`[[\p{L}\p{Nd}\p{Pc}]--[\p{sc=Han}\p{sc=Hiragana}]]`;
// Marks and format characters (e.g. soft hyphen) inside a word belong to it (UAX #29 rule WB4).
const UNIT = String.raw`[[\p{L}\p{Nd}\p{M}\p{Pc}\p{Cf}]--[\p{sc=Han}\p{sc=Hiragana}]]`;
// UAX #29 MidLetter + MidNumLet (between letters) and MidNum + MidNumLet (between digits).
const MID_LETTER = String.raw`[:\u00B7\u0387\u2027\uFE13\uFE55\uFF1A.'\u2018\u2019\u2024\uFE52\uFF07\uFF0E]`;
const MID_NUM =
  String.raw`[,;\u037E\u0589\u060C\u060D\u066C\u07F8\u2044\uFE10\uFE14\uFE50\uFE54\uFF0C\uFF1B` +
  String.raw`.'\u2018\u2019\u2024\uFE52\uFF07\uFF0E]`;
const TOKEN_PATTERN = new RegExp(
  String.raw`${START}${UNIT}*(?:(?:(?<=[\p{L}\p{M}\p{Cf}])${MID_LETTER}(?=\p{L})|(?<=\p{Nd})${MID_NUM}(?=\p{Nd}))${UNIT}+)*` +
    String.raw`|[\p{sc=Han}\p{sc=Hiragana}]`,
  "gv",
);
const HAS_ALNUM = /[\p{L}\p{Nd}]/u;
const POSSESSIVE = /['\u2019\uFF07][sS]$/;

/** Splits text into raw word tokens (before any filter). */
export function standardTokenize(text: string, maxTokenLength = 255): string[] {
  const out: string[] = [];
  for (const match of text.matchAll(TOKEN_PATTERN)) {
    const token = match[0];
    if (token.length <= maxTokenLength) {
      if (HAS_ALNUM.test(token)) out.push(token);
    } else {
      for (let i = 0; i < token.length; i += maxTokenLength) out.push(token.slice(i, i + maxTokenLength));
    }
  }
  return out;
}

/**
 * An English analyzer equivalent to Pyserini's default (Lucene `EnglishAnalyzer`): standard
 * tokenization, possessive removal, lower-casing, Lucene's 33 English stop words, Porter stemming.
 * Stems are memoised (a bounded cache), so analysing a large corpus stays fast.
 */
export class EnglishAnalyzer {
  lowercase = true;
  possessive = true;
  stopWords: readonly string[] | false = LUCENE_ENGLISH_STOP_WORDS;
  stemmer: "porter" | "none" = "porter";
  maxTokenLength = 255;

  private readonly stopSet: Set<string>;
  private readonly cache = new Map<string, string>();
  private static readonly CACHE_LIMIT = 500_000;

  constructor(params: EnglishAnalyzerParams = {}) {
    if (params.lowercase !== undefined) this.lowercase = params.lowercase;
    if (params.possessive !== undefined) this.possessive = params.possessive;
    if (params.stopWords !== undefined) this.stopWords = params.stopWords;
    if (params.stemmer !== undefined) this.stemmer = params.stemmer;
    if (params.maxTokenLength !== undefined) this.maxTokenLength = params.maxTokenLength;
    if (this.stemmer !== "porter" && this.stemmer !== "none") {
      throw new Error(`EnglishAnalyzer: stemmer must be "porter" or "none", got ${JSON.stringify(this.stemmer)}`);
    }
    if (!Number.isInteger(this.maxTokenLength) || this.maxTokenLength < 1) {
      throw new Error(`EnglishAnalyzer: maxTokenLength must be a positive integer, got ${this.maxTokenLength}`);
    }
    this.stopSet = new Set(this.stopWords === false ? [] : this.stopWords);
  }

  /** The options needed to rebuild this analyzer (saved with an index). */
  toJSON(): Required<EnglishAnalyzerParams> {
    return {
      lowercase: this.lowercase,
      possessive: this.possessive,
      stopWords: this.stopWords === false ? false : [...this.stopWords],
      stemmer: this.stemmer,
      maxTokenLength: this.maxTokenLength,
    };
  }

  /** Analyses text into index terms. */
  analyze(text: string): string[] {
    const out: string[] = [];
    for (let token of standardTokenize(text, this.maxTokenLength)) {
      if (this.possessive && POSSESSIVE.test(token)) {
        token = token.slice(0, -2);
        if (token === "") continue;
      }
      if (this.lowercase) token = token.toLowerCase();
      if (this.stopSet.has(token)) continue;
      out.push(this.stem(token));
    }
    return out;
  }

  private stem(token: string): string {
    if (this.stemmer === "none") return token;
    let stemmed = this.cache.get(token);
    if (stemmed === undefined) {
      stemmed = porterStem(token);
      if (this.cache.size >= EnglishAnalyzer.CACHE_LIMIT) this.cache.clear();
      this.cache.set(token, stemmed);
    }
    return stemmed;
  }
}

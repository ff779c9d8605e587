/**
 * BERT text pre-processing with the exact semantics of Hugging Face `tokenizers`
 * (the Rust library behind `BertTokenizerFast`): `BertNormalizer` followed by
 * `BertPreTokenizer`.
 *
 * Character classes come from {@link ./unicode-tables.ts}, measured from the Rust library
 * itself, because its Unicode category tables are older than the ones built into V8
 * (a modern `\p{P}` or `\p{Mn}` regex disagrees with it on a few hundred code points).
 */
import { CLEAN_WHITESPACE, CONTROL, NOT_DECOMPOSED, PUNCTUATION, SPLIT_WHITESPACE, STRIPPED_MARK } from "./unicode-tables.js";

/** Options of `BertNormalizer`, named as in Hugging Face's `tokenizer.json`. */
export interface BertNormalizerOptions {
  /** Remove control characters and map every whitespace character to a space. Default true. */
  cleanText: boolean;
  /** Put spaces around CJK ideographs so each becomes its own word. Default true. */
  handleChineseChars: boolean;
  /** Decompose (NFD) and drop nonspacing marks. HF default: follows `lowercase`. */
  stripAccents: boolean;
  /** Lower-case every character (character by character, no final-sigma rule). */
  lowercase: boolean;
}

/** A code point membership test over a flat [start, end, ...] range list, with an ASCII fast path. */
class CodePointSet {
  private readonly ranges: Uint32Array;
  private readonly ascii: Uint8Array;

  constructor(ranges: readonly number[]) {
    this.ranges = Uint32Array.from(ranges);
    this.ascii = new Uint8Array(128);
    for (let cp = 0; cp < 128; cp++) this.ascii[cp] = this.search(cp) ? 1 : 0;
  }

  has(cp: number): boolean {
    return cp < 128 ? this.ascii[cp] === 1 : this.search(cp);
  }

  private search(cp: number): boolean {
    const r = this.ranges;
    let lo = 0;
    let hi = r.length / 2 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (cp < r[2 * mid]) hi = mid - 1;
      else if (cp > r[2 * mid + 1]) lo = mid + 1;
      else return true;
    }
    return false;
  }
}

const controlSet = new CodePointSet(CONTROL);
const cleanWhitespaceSet = new CodePointSet(CLEAN_WHITESPACE);
const splitWhitespaceSet = new CodePointSet(SPLIT_WHITESPACE);
const punctuationSet = new CodePointSet(PUNCTUATION);
const strippedMarkSet = new CodePointSet(STRIPPED_MARK);
const notDecomposedSet = new CodePointSet(NOT_DECOMPOSED);

/**
 * The CJK ideograph blocks BERT isolates, as Hugging Face's Rust `tokenizers` defines them.
 * Note: Rust starts the Extension E block at U+2B920 where the original BERT (and HF's Python
 * tokenizer) starts it at U+2B820; we follow Rust, the engine of `BertTokenizerFast`.
 */
export function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** True when the string is printable ASCII plus \t \n \r (the common case, handled without per-char work). */
function isPlainAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x7f || (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d)) return false;
  }
  return true;
}

/** NFD, except for the few recent characters the Rust library's older tables leave whole. */
function nfdLikeRust(text: string): string {
  let out = "";
  let segmentStart = 0;
  for (let i = 0; i < text.length;) {
    const cp = text.codePointAt(i) as number;
    const width = cp > 0xffff ? 2 : 1;
    if (notDecomposedSet.has(cp)) {
      out += text.slice(segmentStart, i).normalize("NFD") + text.slice(i, i + width);
      segmentStart = i + width;
    }
    i += width;
  }
  return segmentStart === 0 ? text.normalize("NFD") : out + text.slice(segmentStart).normalize("NFD");
}

/**
 * Normalizes text exactly like Hugging Face's `BertNormalizer`, in its order:
 * clean text, isolate CJK ideographs, strip accents, lower-case.
 */
export function bertNormalize(text: string, opts: BertNormalizerOptions): string {
  if (isPlainAscii(text)) {
    // ASCII: cleaning only maps \t \n \r to spaces; no CJK, no accents; lower-casing is plain.
    let out = opts.cleanText ? text.replace(/[\t\n\r]/g, " ") : text;
    if (opts.lowercase) out = out.toLowerCase();
    return out;
  }
  let out = "";
  for (let ch of text) {
    let cp = ch.codePointAt(0) as number;
    if (cp >= 0xd800 && cp <= 0xdfff) {
      // A lone surrogate is not valid Unicode; Rust receives it as U+FFFD (which cleaning removes).
      ch = "\ufffd";
      cp = 0xfffd;
    }
    if (opts.cleanText) {
      if (controlSet.has(cp)) continue;
      if (cleanWhitespaceSet.has(cp)) {
        out += " ";
        continue;
      }
    }
    if (opts.handleChineseChars && isChineseChar(cp)) out += ` ${ch} `;
    else out += ch;
  }
  if (opts.stripAccents) {
    let stripped = "";
    for (const ch of nfdLikeRust(out)) {
      if (!strippedMarkSet.has(ch.codePointAt(0) as number)) stripped += ch;
    }
    out = stripped;
  }
  if (opts.lowercase) {
    // HF lower-cases character by character; String#toLowerCase differs only for Σ
    // (its final-sigma rule turns word-final Σ into ς), so go per character when Σ is present.
    if (out.includes("\u03a3")) {
      let lowered = "";
      for (const ch of out) lowered += ch.toLowerCase();
      out = lowered;
    } else {
      out = out.toLowerCase();
    }
  }
  return out;
}

/**
 * Splits normalized text into words like Hugging Face's `BertPreTokenizer`: whitespace
 * separates words and is dropped; every punctuation character is a word of its own.
 */
export function bertPreTokenize(text: string): string[] {
  const words: string[] = [];
  let start = -1; // start of the current word, -1 when none
  for (let i = 0; i < text.length;) {
    const cp = text.codePointAt(i) as number;
    const width = cp > 0xffff ? 2 : 1;
    if (splitWhitespaceSet.has(cp)) {
      if (start >= 0) words.push(text.slice(start, i));
      start = -1;
    } else if (punctuationSet.has(cp)) {
      if (start >= 0) words.push(text.slice(start, i));
      words.push(text.slice(i, i + width));
      start = -1;
    } else if (start < 0) {
      start = i;
    }
    i += width;
  }
  if (start >= 0) words.push(text.slice(start));
  return words;
}

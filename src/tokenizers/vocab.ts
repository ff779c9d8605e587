/**
 * Deterministic WordPiece vocabulary training, for tests, demos and from-scratch models.
 *
 * Layout of the result (ids are fixed):
 *   0 [PAD], 1 [UNK], 2 [CLS], 3 [SEP], 4 [MASK] (see {@link SPECIAL_TOKEN_IDS}),
 *   then every character seen in the corpus, most frequent first, then the `##` form of each,
 *   then pieces learnt by merging the most frequent adjacent pair (the way Hugging Face's
 *   WordPieceTrainer, a BPE trainer with a `##` continuation prefix, learns them),
 *   then `[unused0]`, `[unused1]`, ... to reach exactly `vocabSize` entries.
 * Ties are broken by the token string, so the same corpus always gives the same vocabulary.
 */
import { bertNormalize, bertPreTokenize } from "./bert-text.js";

/** Fixed ids of the special tokens in a vocabulary made by {@link buildWordPieceVocab}. */
export const SPECIAL_TOKEN_IDS = Object.freeze({ "[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4 });

const SPECIALS = Object.keys(SPECIAL_TOKEN_IDS);
const PREFIX = "##";

/** Options of {@link buildWordPieceVocab}. */
export interface BuildVocabOptions {
  /** Exact number of entries in the result (>= 5). */
  vocabSize: number;
  /** Lower-case and strip accents before counting (an "uncased" vocabulary). Default true. */
  lowercase?: boolean;
  /** Pairs seen fewer times than this are not merged. Default 2. */
  minFrequency?: number;
}

/** A max-heap of candidate merges keyed by (count desc, merged token asc); stale entries are skipped on pop. */
class MergeHeap {
  private readonly items: Array<{ count: number; key: string }> = [];

  push(count: number, key: string): void {
    const a = this.items;
    a.push({ count, key });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }

  pop(): { count: number; key: string } | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop() as { count: number; key: string };
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < a.length && this.before(a[l], a[best])) best = l;
        if (r < a.length && this.before(a[r], a[best])) best = r;
        if (best === i) break;
        [a[i], a[best]] = [a[best], a[i]];
        i = best;
      }
    }
    return top;
  }

  private before(x: { count: number; key: string }, y: { count: number; key: string }): boolean {
    return x.count > y.count || (x.count === y.count && x.key < y.key);
  }
}

/**
 * Trains a WordPiece vocabulary of exactly `opts.vocabSize` entries from raw texts.
 * Texts are normalized and split as BERT does (lower-casing and accent stripping when
 * `lowercase`), so the vocabulary fits a {@link BertTokenizer} built with the same `lowercase`.
 * If the corpus has more distinct characters than fit, the rarest are left out.
 */
export function buildWordPieceVocab(texts: Iterable<string>, opts: BuildVocabOptions): string[] {
  const { vocabSize } = opts;
  const lowercase = opts.lowercase ?? true;
  const minFrequency = opts.minFrequency ?? 2;
  if (!Number.isInteger(vocabSize) || vocabSize < SPECIALS.length) {
    throw new Error(`buildWordPieceVocab: vocabSize must be an integer >= ${SPECIALS.length}, got ${vocabSize}`);
  }
  const normOpts = { cleanText: true, handleChineseChars: true, lowercase, stripAccents: lowercase };

  // 1. Word counts.
  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    if (typeof text !== "string") throw new Error(`buildWordPieceVocab: every text must be a string, got ${typeof text}`);
    for (const w of bertPreTokenize(bertNormalize(text, normOpts))) wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  }
  const words = [...wordCounts.keys()].sort();

  // 2. Alphabet, most frequent first.
  const charCounts = new Map<string, number>();
  for (const w of words) {
    const c = wordCounts.get(w) as number;
    for (const ch of w) charCounts.set(ch, (charCounts.get(ch) ?? 0) + c);
  }
  const alphabet = [...charCounts.entries()].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)).map(([ch]) => ch);

  const vocab: string[] = [...SPECIALS];
  const inVocab = new Set<string>(vocab);
  const add = (t: string): boolean => {
    if (vocab.length >= vocabSize) return false;
    if (!inVocab.has(t)) {
      inVocab.add(t);
      vocab.push(t);
    }
    return true;
  };
  const charRoom = Math.floor((vocabSize - vocab.length) / 2);
  const kept = alphabet.slice(0, charRoom);
  for (const ch of kept) add(ch);
  for (const ch of kept) add(PREFIX + ch);

  // 3. Merges: each word is a sequence of symbols ("a", "##b", ...); merge the most frequent pair.
  const symbols: string[][] = words.map((w) => [...w].map((ch, i) => (i === 0 ? ch : PREFIX + ch)));
  const counts: number[] = words.map((w) => wordCounts.get(w) as number);
  const merged = (a: string, b: string): string => a + b.slice(PREFIX.length);
  const pairCount = new Map<string, number>(); // key: a + "\u0000" + b
  const pairWords = new Map<string, Set<number>>();
  const keyOf = (a: string, b: string): string => `${a}\u0000${b}`;
  const addPairs = (wi: number, sign: 1 | -1): string[] => {
    const s = symbols[wi];
    const touched: string[] = [];
    for (let i = 0; i + 1 < s.length; i++) {
      const k = keyOf(s[i], s[i + 1]);
      pairCount.set(k, (pairCount.get(k) ?? 0) + sign * counts[wi]);
      if (sign > 0) {
        let set = pairWords.get(k);
        if (!set) pairWords.set(k, (set = new Set()));
        set.add(wi);
      }
      touched.push(k);
    }
    return touched;
  };
  for (let wi = 0; wi < symbols.length; wi++) addPairs(wi, 1);
  const heap = new MergeHeap();
  // Heap keys are the pair keys; ties between equal counts go to the smaller pair key.
  for (const [k, c] of pairCount) heap.push(c, k);

  while (vocab.length < vocabSize) {
    const top = heap.pop();
    if (!top || top.count < minFrequency) break;
    if (pairCount.get(top.key) !== top.count) continue; // stale entry
    const [a, b] = top.key.split("\u0000");
    const token = merged(a, b);
    add(token);
    const affected = pairWords.get(top.key) ?? new Set<number>();
    pairWords.delete(top.key);
    const changed = new Set<string>();
    for (const wi of affected) {
      for (const k of addPairs(wi, -1)) changed.add(k);
      const s = symbols[wi];
      const next: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          next.push(token);
          i++;
        } else {
          next.push(s[i]);
        }
      }
      symbols[wi] = next;
      for (const k of addPairs(wi, 1)) changed.add(k);
    }
    for (const k of changed) {
      const c = pairCount.get(k) as number;
      if (c > 0) heap.push(c, k);
    }
  }

  // 4. Pad to the exact size.
  for (let i = 0; vocab.length < vocabSize; i++) add(`[unused${i}]`);
  return vocab;
}

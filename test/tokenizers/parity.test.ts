/**
 * Parity with Hugging Face's Rust `tokenizers` (the engine of BertTokenizerFast): identical ids and
 * token type ids on real PubMedQA passages and hand-written hard cases, for uncased+accent-stripping
 * and cased vocabularies, single texts and title/text pairs, with and without truncation; and
 * identical normalization and pre-tokenization for every Unicode code point.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BertTokenizer } from "../../src/tokenizers/bert-tokenizer.js";
import { bertNormalize, bertPreTokenize } from "../../src/tokenizers/bert-text.js";
import { buildWordPieceVocab } from "../../src/tokenizers/vocab.js";
import { loadPassages, rustTokenizers as rs, type Passage } from "./fixtures.js";

const passages = loadPassages("pubmedqa-300.jsonl");
const hard = loadPassages("hard-cases.jsonl");
const all: Passage[] = [...passages, ...hard];
const corpus = all.flatMap((p) => [p.title, p.text]);

const tmp = mkdtempSync(join(tmpdir(), "bert-parity-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Setup {
  ours: BertTokenizer;
  ref: import("tokenizers").Tokenizer;
}

/** Our tokenizer from a trained vocabulary, and the Rust tokenizer built from the same vocab by the Rust API. */
function setup(lowercase: boolean): Setup {
  const vocab = buildWordPieceVocab(corpus, { vocabSize: 3000, lowercase });
  const ours = BertTokenizer.fromVocab(vocab, { lowercase });
  const model = rs.WordPiece.init(Object.fromEntries(vocab.map((t, i) => [t, i])), { unkToken: "[UNK]" });
  const ref = new rs.Tokenizer(model);
  ref.setNormalizer(rs.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: lowercase, lowercase }));
  ref.setPreTokenizer(rs.bertPreTokenizer());
  ref.setPostProcessor(rs.bertProcessing(["[SEP]", ours.sepId], ["[CLS]", ours.clsId]));
  ref.addSpecialTokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
  return { ours, ref };
}

interface Mismatch {
  id: string;
  kind: string;
  ref: string[];
  ours: string[];
}

async function compare(s: Setup, maxLength: number): Promise<{ checked: number; mismatches: Mismatch[] }> {
  s.ref.setTruncation(maxLength);
  const mismatches: Mismatch[] = [];
  let checked = 0;
  for (const p of all) {
    const cases: Array<[string, string, string | null]> = [
      ["text", p.text, null],
      ["question", p.title, null],
      ["title+text", p.title, p.text],
    ];
    for (const [kind, a, b] of cases) {
      const ref = await s.ref.encode(a, b);
      const ours = s.ours.encode(a, b, { maxLength });
      checked++;
      const same =
        JSON.stringify(ref.getIds()) === JSON.stringify(ours.inputIds) &&
        JSON.stringify(ref.getTypeIds()) === JSON.stringify(ours.tokenTypeIds) &&
        JSON.stringify(ref.getAttentionMask()) === JSON.stringify(ours.attentionMask);
      if (!same) {
        mismatches.push({ id: p.id, kind, ref: ref.getTokens(), ours: ours.inputIds.map((i) => s.ours.idToToken(i) ?? "?") });
      }
    }
  }
  return { checked, mismatches };
}

describe.each([
  ["uncased with accent stripping", true],
  ["cased without accent stripping", false],
])("BertTokenizer matches Rust tokenizers, %s", (_name, lowercase) => {
  let s: Setup;
  beforeAll(() => {
    s = setup(lowercase);
  });

  it.each([512, 128, 16])("gives identical ids, type ids and masks on all fixtures at maxLength %i", async (maxLength) => {
    const { checked, mismatches } = await compare(s, maxLength);
    expect(checked).toBe(all.length * 3);
    expect(mismatches.slice(0, 3)).toEqual([]);
  });

  it("actually truncates pairs at 128 (the comparison exercises longest_first)", () => {
    const lengths = passages.map((p) => s.ours.encode(p.title, p.text, { maxLength: 128 }).inputIds.length);
    expect(lengths.filter((n) => n === 128).length).toBeGreaterThan(250);
    const full = passages.map((p) => s.ours.encode(p.title, p.text, { maxLength: 100000 }).inputIds.length);
    expect(Math.max(...full)).toBeGreaterThan(200);
  });

  it("is identical after save(): the Rust library loads our tokenizer.json and agrees", async () => {
    const dir = join(tmp, lowercase ? "uncased" : "cased");
    await s.ours.save(dir);
    const reloadedRef = rs.Tokenizer.fromFile(join(dir, "tokenizer.json"));
    const reloadedOurs = await BertTokenizer.fromDir(dir);
    const { mismatches } = await compare({ ours: reloadedOurs, ref: reloadedRef }, 64);
    expect(mismatches.slice(0, 3)).toEqual([]);
  });
});

describe("BERT normalization and pre-tokenization match Rust for every code point", () => {
  /** All code points except surrogates, interleaved with "x" so combining marks never reorder across neighbours. */
  function chunks(size: number): string[] {
    const out: string[] = [];
    let cur = "";
    let n = 0;
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      cur += "x" + String.fromCodePoint(cp);
      if (++n === size) {
        out.push(cur);
        cur = "";
        n = 0;
      }
    }
    if (cur) out.push(cur);
    return out;
  }
  const allChunks = chunks(8192);

  it.each([
    { lowercase: true, stripAccents: true, cleanText: true, handleChineseChars: true },
    { lowercase: false, stripAccents: false, cleanText: true, handleChineseChars: true },
    { lowercase: true, stripAccents: false, cleanText: false, handleChineseChars: false },
  ])("normalizer %o", (opts) => {
    const ref = rs.bertNormalizer(opts);
    const firstDiff: string[] = [];
    for (const chunk of allChunks) {
      const r = ref.normalizeString(chunk);
      const o = bertNormalize(chunk, opts);
      if (r !== o) {
        const a = [...r];
        const b = [...o];
        let k = 0;
        while (a[k] === b[k]) k++;
        firstDiff.push(`ref ${JSON.stringify(a.slice(k, k + 4).join(""))} ours ${JSON.stringify(b.slice(k, k + 4).join(""))}`);
      }
    }
    expect(allChunks.length).toBeGreaterThan(100);
    expect(firstDiff.slice(0, 3)).toEqual([]);
  });

  it("pre-tokenizer splits every code point the same way", () => {
    const pre = rs.bertPreTokenizer();
    let diffs = 0;
    for (const chunk of allChunks) {
      const r = pre.preTokenizeString(chunk).map(([w]) => w);
      const o = bertPreTokenize(chunk);
      if (JSON.stringify(r) !== JSON.stringify(o)) diffs++;
    }
    expect(diffs).toBe(0);
  });
});

describe("longest_first truncation matches Rust on a grid of pair lengths", () => {
  // Words of one and of three pieces ("xyz" -> x ##y ##z), so whole-word early exit matters.
  const vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "x", "##y", "##z"];
  const ours = BertTokenizer.fromVocab(vocab);
  const ref = new rs.Tokenizer(rs.WordPiece.init(Object.fromEntries(vocab.map((t, i) => [t, i])), { unkToken: "[UNK]" }));
  ref.setNormalizer(rs.bertNormalizer({}));
  ref.setPreTokenizer(rs.bertPreTokenizer());
  ref.setPostProcessor(rs.bertProcessing(["[SEP]", 3], ["[CLS]", 2]));
  const text = (n: number, word: string): string => Array.from({ length: n }, (_, i) => (i % 3 === 1 ? "xyz" : word)).join(" ");

  it.each([3, 4, 7, 16, 33])("maxLength %i, both sides 0..30 words", async (maxLength) => {
    ref.setTruncation(maxLength);
    const bad: string[] = [];
    for (let na = 0; na <= 30; na += 1) {
      for (let nb = 0; nb <= 30; nb += 3) {
        const a = text(na, "a");
        const b = text(nb, "b");
        const r = await ref.encode(a, b);
        const o = ours.encode(a, b, { maxLength });
        if (JSON.stringify(r.getIds()) !== JSON.stringify(o.inputIds)) bad.push(`${na}/${nb}`);
      }
    }
    expect(bad).toEqual([]);
  });
});

describe("fromDir reads a tokenizer.json written by the Rust library itself", () => {
  it("loads a Hub-style file (TemplateProcessing, strip_accents null) and encodes identically", async () => {
    const vocab = buildWordPieceVocab(
      passages.slice(0, 80).flatMap((p) => [p.title, p.text]),
      { vocabSize: 1500 },
    );
    const ref = new rs.Tokenizer(rs.WordPiece.init(Object.fromEntries(vocab.map((t, i) => [t, i])), { unkToken: "[UNK]" }));
    ref.setNormalizer(rs.bertNormalizer({ cleanText: true, handleChineseChars: true, lowercase: true }));
    ref.setPreTokenizer(rs.bertPreTokenizer());
    ref.setPostProcessor(
      rs.templateProcessing("[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1", [
        ["[CLS]", 2],
        ["[SEP]", 3],
      ]),
    );
    ref.addSpecialTokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
    const dir = join(tmp, "rust-written");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    ref.save(join(dir, "tokenizer.json"));
    const ours = await BertTokenizer.fromDir(dir);
    expect(ours.options.stripAccents).toBe(true);
    ref.setTruncation(96);
    let mismatches = 0;
    for (const p of [...passages.slice(0, 100), ...hard]) {
      const r = await ref.encode(p.title, p.text);
      const o = ours.encode(p.title, p.text, { maxLength: 96 });
      if (JSON.stringify(r.getIds()) !== JSON.stringify(o.inputIds) || JSON.stringify(r.getTypeIds()) !== JSON.stringify(o.tokenTypeIds))
        mismatches++;
    }
    expect(mismatches).toBe(0);
  });
});

describe("invalid UTF-16", () => {
  it("treats lone surrogates as U+FFFD like the Rust binding (removed by clean_text)", () => {
    for (const cleanText of [true, false]) {
      const opts = { cleanText, handleChineseChars: true, lowercase: true, stripAccents: true };
      const text = "a\ud800b c\udc00 \ud83d";
      expect(bertNormalize(text, opts)).toBe(rs.bertNormalizer(opts).normalizeString(text));
    }
  });
});

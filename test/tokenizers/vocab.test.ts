import { describe, expect, it } from "vitest";
import { BertTokenizer } from "../../src/tokenizers/bert-tokenizer.js";
import { buildWordPieceVocab, SPECIAL_TOKEN_IDS } from "../../src/tokenizers/vocab.js";
import { loadPassages } from "./fixtures.js";

const passages = loadPassages("pubmedqa-300.jsonl");
const hard = loadPassages("hard-cases.jsonl");
const texts = [...passages, ...hard].flatMap((p) => [p.title, p.text]);

describe("buildWordPieceVocab", () => {
  const vocab = buildWordPieceVocab(texts, { vocabSize: 30522 });

  it("has exactly the requested size, padded with [unusedN] when the corpus runs out of merges", () => {
    expect(vocab.length).toBe(30522);
    expect(new Set(vocab).size).toBe(vocab.length);
    expect(vocab.at(-1)).toMatch(/^\[unused\d+\]$/);
  });

  it("puts the special tokens at their documented ids", () => {
    for (const [token, id] of Object.entries(SPECIAL_TOKEN_IDS)) expect(vocab[id]).toBe(token);
    const tok = BertTokenizer.fromVocab(vocab);
    expect([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId]).toEqual([0, 1, 2, 3, 4]);
  });

  it("is deterministic", () => {
    expect(buildWordPieceVocab(texts, { vocabSize: 30522 })).toEqual(vocab);
  });

  it("covers every character of the corpus, so only over-long words become [UNK]", () => {
    const tok = BertTokenizer.fromVocab(vocab);
    let unk = 0;
    for (const t of texts) unk += tok.tokenize(t).filter((x) => x === "[UNK]").length;
    // hard-cases.jsonl holds exactly four words over 100 characters (three in texts, one 150-char title).
    expect(unk).toBe(4);
  });

  it("learns frequent words and subwords, so common text takes few pieces", () => {
    const tok = BertTokenizer.fromVocab(vocab);
    for (const w of ["patients", "the", "study", "results", "treatment"]) expect(tok.tokenize(w)).toEqual([w]);
    const words = passages.reduce((n, p) => n + p.text.split(/\s+/).length, 0);
    const pieces = passages.reduce((n, p) => n + tok.tokenize(p.text).length, 0);
    expect(pieces / words).toBeLessThan(1.4);
  });

  it("keeps case and accents when lowercase is false", () => {
    const cased = buildWordPieceVocab(["Café CAFÉ café"], { vocabSize: 40, lowercase: false });
    expect(cased).toContain("É");
    expect(cased).toContain("C");
    const uncased = buildWordPieceVocab(["Café CAFÉ café"], { vocabSize: 40 });
    expect(uncased).not.toContain("é");
    expect(uncased).toContain("cafe");
  });

  it("gives a small vocabulary the most frequent characters first", () => {
    const small = buildWordPieceVocab(["aaaa bbb cc d"], { vocabSize: 9 });
    expect(small).toEqual(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "##a", "##b"]);
  });

  it("rejects a size too small for the special tokens", () => {
    expect(() => buildWordPieceVocab(["x"], { vocabSize: 4 })).toThrow(/buildWordPieceVocab: vocabSize must be an integer >= 5, got 4/);
  });
});

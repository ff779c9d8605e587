import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BertTokenizer, longestFirstLengths } from "../../src/tokenizers/bert-tokenizer.js";
import { buildWordPieceVocab } from "../../src/tokenizers/vocab.js";
import { loadPassages } from "./fixtures.js";

const tmp = mkdtempSync(join(tmpdir(), "bert-tok-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const vocab = [
  "[PAD]",
  "[UNK]",
  "[CLS]",
  "[SEP]",
  "[MASK]",
  "the",
  "cat",
  "sat",
  "on",
  "mat",
  "un",
  "##believ",
  "##able",
  ".",
  "cafe",
  "café",
  "Cat",
  "中",
  "文",
  ",",
  "?",
];
const tok = BertTokenizer.fromVocab(vocab);

describe("BertTokenizer.encode", () => {
  it("wraps a question as [CLS] q [SEP] with type ids 0 and a full attention mask", () => {
    const e = tok.encode("The cat sat.");
    expect(e.inputIds).toEqual([2, 5, 6, 7, 13, 3]);
    expect(e.tokenTypeIds).toEqual([0, 0, 0, 0, 0, 0]);
    expect(e.attentionMask).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it("encodes a passage as [CLS] title [SEP] text [SEP] with type ids 0 then 1", () => {
    const e = tok.encode("The cat", "sat on the mat");
    expect(e.inputIds).toEqual([2, 5, 6, 3, 7, 8, 5, 9, 3]);
    expect(e.tokenTypeIds).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 1]);
  });

  it("splits unknown words into WordPiece continuations and maps unmatchable words to [UNK]", () => {
    expect(tok.tokenize("unbelievable zzz")).toEqual(["un", "##believ", "##able", "[UNK]"]);
  });

  it("lower-cases and strips accents by default (uncased), keeps them when cased", () => {
    expect(tok.tokenize("CAFÉ Café")).toEqual(["cafe", "cafe"]);
    const cased = BertTokenizer.fromVocab(vocab, { lowercase: false });
    expect(cased.tokenize("café Cat cat CAT")).toEqual(["café", "Cat", "cat", "[UNK]"]);
  });

  it("keeps accents when lower-casing with stripAccents: false", () => {
    const t = BertTokenizer.fromVocab(vocab, { lowercase: true, stripAccents: false });
    expect(t.tokenize("CAFÉ")).toEqual(["café"]);
  });

  it("isolates CJK ideographs, and glues them when tokenizeChineseChars is false", () => {
    expect(tok.tokenize("中文,中")).toEqual(["中", "文", ",", "中"]);
    const noCjk = BertTokenizer.fromVocab(vocab, { tokenizeChineseChars: false });
    // One word "中文": "中" matches but "##文" is not in the vocabulary, so the whole word is [UNK].
    expect(noCjk.tokenize("中文")).toEqual(["[UNK]"]);
  });

  it("drops control and zero-width format characters (joining the word) and treats tabs/newlines as spaces", () => {
    expect(tok.tokenize("the c\u0000a\u200bt\tsat\non\u0007 m\u00adat")).toEqual(["the", "cat", "sat", "on", "mat"]);
  });

  it("turns a word longer than 100 characters into a single [UNK]", () => {
    expect(tok.tokenize(`the ${"a".repeat(101)} cat`)).toEqual(["the", "[UNK]", "cat"]);
  });

  it("encodes empty and whitespace-only text as just the special tokens", () => {
    expect(tok.encode("").inputIds).toEqual([2, 3]);
    expect(tok.encode(" \t\n\u3000").inputIds).toEqual([2, 3]);
    expect(tok.encode("", "").inputIds).toEqual([2, 3, 3]);
  });

  it("recognises special tokens written in the text, as Hugging Face does", () => {
    expect(tok.encode("the [SEP] cat [MASK]").inputIds).toEqual([2, 5, 3, 6, 4, 3]);
  });

  it("never throws on very long input and truncates to maxLength", () => {
    const long = "the cat sat on the mat . ".repeat(20000);
    const single = tok.encode(long, null, { maxLength: 64 });
    expect(single.inputIds.length).toBe(64);
    expect(single.inputIds.at(-1)).toBe(tok.sepId);
    const pair = tok.encode("the cat", long, { maxLength: 64 });
    expect(pair.inputIds.length).toBe(64);
    expect(pair.inputIds.slice(0, 4)).toEqual([2, 5, 6, 3]); // the short title is kept whole
    expect(pair.tokenTypeIds.filter((t) => t === 1).length).toBe(64 - 4);
  });

  it("defaults maxLength to modelMaxLength", () => {
    const t = BertTokenizer.fromVocab(vocab, { modelMaxLength: 10 });
    expect(t.encode("the cat ".repeat(50)).inputIds.length).toBe(10);
  });

  it("throws a clear error when maxLength cannot hold the special tokens", () => {
    expect(() => tok.encode("a", "b", { maxLength: 2 })).toThrow(/BertTokenizer: maxLength must be an integer >= 3 for a pair, got 2/);
    expect(() => tok.encode("a", null, { maxLength: 1.5 })).toThrow(/>= 2 for a single text/);
  });

  it("encodeBatch gives the same result as encode one by one", () => {
    const items = [{ text: "the cat" }, { text: "the", pair: "mat ." }, { text: "" }];
    expect(tok.encodeBatch(items, { maxLength: 5 })).toEqual(items.map((i) => tok.encode(i.text, i.pair ?? null, { maxLength: 5 })));
  });
});

describe("longestFirstLengths", () => {
  it("keeps the shorter sequence whole when the longer one can absorb the cut", () => {
    expect(longestFirstLengths(5, 100, 20)).toEqual([5, 15]);
    expect(longestFirstLengths(100, 5, 20)).toEqual([15, 5]);
  });
  it("halves the budget when both are long, the odd token going to the longer one", () => {
    expect(longestFirstLengths(50, 100, 13)).toEqual([6, 7]);
    expect(longestFirstLengths(100, 50, 13)).toEqual([7, 6]);
    expect(longestFirstLengths(40, 40, 13)).toEqual([6, 7]);
  });
  it("leaves pairs that fit untouched", () => {
    expect(longestFirstLengths(3, 4, 7)).toEqual([3, 4]);
  });
});

describe("BertTokenizer construction errors", () => {
  it("names the missing special token", () => {
    expect(() => BertTokenizer.fromVocab(["[PAD]", "[UNK]", "[CLS]", "a"])).toThrow(
      /BertTokenizer: the sep token "\[SEP\]" is not in the vocabulary/,
    );
  });
  it("rejects an empty vocabulary", () => {
    expect(() => BertTokenizer.fromVocab([])).toThrow(/BertTokenizer: vocabulary is empty/);
  });
});

describe("BertTokenizer.fromDir / save", () => {
  it("loads vocab.txt with tokenizer_config.json (do_lower_case false -> cased, model_max_length)", async () => {
    const dir = join(tmp, "vocab-only");
    mkdirSync(dir);
    writeFileSync(join(dir, "vocab.txt"), vocab.join("\n") + "\n");
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ do_lower_case: false, model_max_length: 6 }));
    const t = await BertTokenizer.fromDir(dir);
    expect(t.vocabSize).toBe(vocab.length);
    expect(t.options.lowercase).toBe(false);
    expect(t.options.stripAccents).toBe(false);
    expect(t.tokenize("Cat cat")).toEqual(["Cat", "cat"]);
    expect(t.encode("the cat sat on the mat").inputIds.length).toBe(6);
  });

  it("loads vocab.txt alone with Hugging Face defaults (uncased, 512)", async () => {
    const dir = join(tmp, "vocab-defaults");
    mkdirSync(dir);
    writeFileSync(join(dir, "vocab.txt"), vocab.join("\r\n"));
    const t = await BertTokenizer.fromDir(dir);
    expect(t.vocabSize).toBe(vocab.length);
    expect(t.options.modelMaxLength).toBe(512);
    expect(t.tokenize("CAT")).toEqual(["cat"]);
  });

  it("round-trips through save(): same ids for every fixture passage, no temp files left", async () => {
    const passages = loadPassages("pubmedqa-300.jsonl").slice(0, 50);
    const v = buildWordPieceVocab(
      passages.map((p) => p.text),
      { vocabSize: 1200 },
    );
    const original = BertTokenizer.fromVocab(v, { modelMaxLength: 128 });
    const dir = join(tmp, "saved");
    await original.save(dir);
    expect(readdirSync(dir).sort()).toEqual(["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]);
    const config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
    expect(config).toMatchObject({ do_lower_case: true, strip_accents: true, tokenize_chinese_chars: true, model_max_length: 128 });
    const reloaded = await BertTokenizer.fromDir(dir);
    for (const p of passages) expect(reloaded.encode(p.title, p.text)).toEqual(original.encode(p.title, p.text));
    // The vocab.txt route gives the same tokenizer as tokenizer.json.
    rmSync(join(dir, "tokenizer.json"));
    const fromVocabTxt = await BertTokenizer.fromDir(dir);
    for (const p of passages.slice(0, 10)) expect(fromVocabTxt.encode(p.title, p.text)).toEqual(original.encode(p.title, p.text));
  });

  it("lets tokenizer_config.json override tokenizer.json's lower-casing, like BertTokenizerFast", async () => {
    const dir = join(tmp, "override");
    await BertTokenizer.fromVocab(vocab).save(dir);
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ do_lower_case: false }));
    const t = await BertTokenizer.fromDir(dir);
    expect(t.options.lowercase).toBe(false);
    expect(t.options.stripAccents).toBe(false);
    expect(t.tokenize("Cat")).toEqual(["Cat"]);
  });

  it("names the folder when neither tokenizer.json nor vocab.txt exists", async () => {
    const dir = join(tmp, "empty");
    mkdirSync(dir);
    await expect(BertTokenizer.fromDir(dir)).rejects.toThrow(
      /BertTokenizer: no tokenizer in .*empty: expected tokenizer.json or vocab.txt/,
    );
  });

  it("names the file and field of a malformed tokenizer.json", async () => {
    const dir = join(tmp, "bad-json");
    mkdirSync(dir);
    writeFileSync(join(dir, "tokenizer.json"), "{ not json");
    await expect(BertTokenizer.fromDir(dir)).rejects.toThrow(/BertTokenizer: .*tokenizer.json is not valid JSON/);
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ model: { type: "BPE", vocab: {} } }));
    await expect(BertTokenizer.fromDir(dir)).rejects.toThrow(/model.type must be "WordPiece", got "BPE"/);
  });

  it("names a tokenizer_config.json field of the wrong type", async () => {
    const dir = join(tmp, "bad-config");
    mkdirSync(dir);
    writeFileSync(join(dir, "vocab.txt"), vocab.join("\n"));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ do_lower_case: "yes" }));
    await expect(BertTokenizer.fromDir(dir)).rejects.toThrow(/tokenizer_config.json: field "do_lower_case" must be a boolean, got "yes"/);
  });

  it("saving over an existing folder replaces it completely and stays loadable", async () => {
    const dir = join(tmp, "resave");
    await BertTokenizer.fromVocab(vocab).save(dir);
    const other = BertTokenizer.fromVocab([...vocab, "extra"], { lowercase: false });
    await other.save(dir);
    const t = await BertTokenizer.fromDir(dir);
    expect(t.vocabSize).toBe(vocab.length + 1);
    expect(t.options.lowercase).toBe(false);
    expect(readdirSync(dir).some((f) => f.includes(".tmp"))).toBe(false);
  });
});

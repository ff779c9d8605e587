/**
 * Tokenizer folders written by a hostile-but-fair user (issue #16): an empty special token used to
 * match between every two characters, so each encode grew an array until a RangeError.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BertTokenizer } from "../../src/tokenizers/bert-tokenizer.js";

const tmp = mkdtempSync(join(tmpdir(), "tok-hostile-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A vocabulary that holds the empty string (an empty line in vocab.txt), so "" resolves to an id. */
const vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "", "the", "cat", "sat"];

function folder(name: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  return dir;
}

async function savedTokenizerJson(name: string): Promise<{ dir: string; json: Record<string, unknown> }> {
  const dir = join(tmp, name);
  await BertTokenizer.fromVocab(vocab).save(dir);
  rmSync(join(dir, "tokenizer_config.json"));
  return { dir, json: JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")) as Record<string, unknown> };
}

describe("BertTokenizer rejects an empty special token at load", () => {
  it("names tokenizer_config.json and the field when mask_token is the empty string", async () => {
    const dir = folder("config-empty-mask");
    writeFileSync(join(dir, "vocab.txt"), vocab.join("\n") + "\n");
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ mask_token: "" }));
    await expect(BertTokenizer.fromDir(dir)).rejects.toThrow(
      /BertTokenizer: .*tokenizer_config.json: field "mask_token" is the empty string; a special token must be a non-empty/,
    );
  });

  it("rejects the AddedToken form {content: ''} of cls_token the same way", async () => {
    const dir = folder("config-empty-cls-object");
    writeFileSync(join(dir, "vocab.txt"), vocab.join("\n") + "\n");
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ cls_token: { content: "", special: true } }));
    await expect(BertTokenizer.fromDir(dir)).rejects.toThrow(/tokenizer_config.json: field "cls_token" is the empty string/);
  });

  it("names tokenizer.json's post_processor.cls[0] and model.unk_token when they are empty", async () => {
    const a = await savedTokenizerJson("json-empty-cls");
    (a.json.post_processor as { cls: [string, number] }).cls = ["", 5];
    writeFileSync(join(a.dir, "tokenizer.json"), JSON.stringify(a.json));
    await expect(BertTokenizer.fromDir(a.dir)).rejects.toThrow(/tokenizer.json: post_processor.cls\[0\] is the empty string/);

    const b = await savedTokenizerJson("json-empty-unk");
    (b.json.model as { unk_token: string }).unk_token = "";
    writeFileSync(join(b.dir, "tokenizer.json"), JSON.stringify(b.json));
    await expect(BertTokenizer.fromDir(b.dir)).rejects.toThrow(/tokenizer.json: model.unk_token is the empty string/);
  });

  it("rejects an empty special token passed as an option to fromVocab", () => {
    expect(() => BertTokenizer.fromVocab(vocab, { maskToken: "" })).toThrow(/BertTokenizer: option maskToken is the empty string/);
    expect(() => BertTokenizer.fromVocab(vocab, { sepToken: "" })).toThrow(/option sepToken is the empty string/);
  });
});

describe("BertTokenizer ignores files and entries it does not read", () => {
  it("encodes normally when tokenizer.json added_tokens and special_tokens_map.json hold an empty token", async () => {
    // Rust tokenizers skips added tokens whose content is empty; this loader takes special tokens from
    // tokenizer_config.json and tokenizer.json's model/post_processor only, so both files are inert here.
    const { dir, json } = await savedTokenizerJson("json-empty-added");
    (json.added_tokens as Array<Record<string, unknown>>).push({ id: 5, content: "", special: true, normalized: false });
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
    writeFileSync(join(dir, "special_tokens_map.json"), JSON.stringify({ mask_token: "", additional_special_tokens: [""] }));
    const t = await BertTokenizer.fromDir(dir);
    expect(t.encode("the cat sat").inputIds).toEqual([2, 6, 7, 8, 3]);
    const long = "the cat sat ".repeat(2000);
    expect(t.encode(long, null, { maxLength: 8 }).inputIds).toEqual([2, 6, 7, 8, 6, 7, 8, 3]);
  });
});

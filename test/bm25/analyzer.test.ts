import { describe, expect, it } from "vitest";
import { stemmer as referencePorter } from "stemmer";
import { EnglishAnalyzer, LUCENE_ENGLISH_STOP_WORDS, porterStem, standardTokenize } from "../../src/retrievers/bm25/index.js";

describe("standardTokenize (UAX #29 word rules as Lucene's StandardTokenizer)", () => {
  it("keeps acronyms, contractions, decimals and underscores together and splits hyphens", () => {
    expect(standardTokenize("The Cat's running, U.S.A. don't 3.14 1,000 COVID-19 foo_bar a:b x.5")).toEqual([
      "The",
      "Cat's",
      "running",
      "U.S.A",
      "don't",
      "3.14",
      "1,000",
      "COVID",
      "19",
      "foo_bar",
      "a:b",
      "x",
      "5",
    ]);
  });
  it("emits each Han character as its own token", () => {
    expect(standardTokenize("日本 ok")).toEqual(["日", "本", "ok"]);
  });
  it("agrees with ICU's word segmentation (Intl.Segmenter) on mixed English text", () => {
    const text = "IL-6 levels (p<0.05) rose 2.5-fold in the patients' mRNA; e.g. α-synuclein, H2O, naïve T-cells.";
    const icu = [...new Intl.Segmenter("en", { granularity: "word" }).segment(text)].filter((s) => s.isWordLike).map((s) => s.segment);
    expect(standardTokenize(text)).toEqual(icu);
  });
  it("splits tokens longer than maxTokenLength like Lucene", () => {
    expect(standardTokenize("a".repeat(7), 3)).toEqual(["aaa", "aaa", "a"]);
  });
});

describe("porterStem (Lucene's PorterStemFilter algorithm)", () => {
  it("reproduces the examples of Porter's paper", () => {
    const cases: Record<string, string> = {
      caresses: "caress",
      ponies: "poni",
      ties: "ti",
      cats: "cat",
      feed: "feed",
      agreed: "agre",
      plastered: "plaster",
      motoring: "motor",
      sing: "sing",
      conflated: "conflat",
      hopping: "hop",
      filing: "file",
      happy: "happi",
      relational: "relat",
      generalizations: "gener",
      oscillators: "oscil",
      agreement: "agreement",
      hopefulness: "hope",
      controlling: "control",
      rolling: "roll",
    };
    for (const [word, stem] of Object.entries(cases)) expect(porterStem(word), word).toBe(stem);
  });
  it("keeps the reference implementation's departures that Lucene keeps (-bli → -ble, -logi → -log)", () => {
    expect(porterStem("sensibility")).toBe("sensibl");
    expect(porterStem("archaeology")).toBe("archaeolog");
  });
  it("leaves words of one or two letters alone and does not shorten 'eed' (measure 0)", () => {
    expect(porterStem("is")).toBe("is");
    expect(porterStem("eed")).toBe("eed");
  });
  it("agrees with the `stemmer` package (original Porter) on a varied vocabulary", () => {
    const words =
      "running jumped easily cities national organization activities biology effective adjustment communism homologous " +
      "electricity formalize triplicate hopeful goodness revival allowance inference airliner gyroscopic adjustable " +
      "defensible irritant replacement dependent adoption angularity bowdlerize probate cease".split(" ");
    for (const w of words) expect(porterStem(w), w).toBe(referencePorter(w));
  });
});

describe("EnglishAnalyzer (Pyserini's default analyzer)", () => {
  it("removes possessives and Lucene's stop words, lower-cases and stems", () => {
    expect(new EnglishAnalyzer().analyze("The Cat's toys are running into THE garden")).toEqual(["cat", "toi", "run", "garden"]);
  });
  it("uses Lucene's 33-word English stop set", () => {
    expect(LUCENE_ENGLISH_STOP_WORDS).toHaveLength(33);
    expect(new EnglishAnalyzer().analyze("with their such these")).toEqual([]);
    expect(new EnglishAnalyzer().analyze("we were")).toEqual(["we", "were"]); // not Lucene stop words
  });
  it("can disable stemming and stop words", () => {
    expect(new EnglishAnalyzer({ stemmer: "none", stopWords: false }).analyze("The running")).toEqual(["the", "running"]);
  });
  it("throws on an unknown stemmer name", () => {
    expect(() => new EnglishAnalyzer({ stemmer: "snowball" as "porter" })).toThrow(/EnglishAnalyzer: stemmer must be "porter" or "none"/);
  });
});

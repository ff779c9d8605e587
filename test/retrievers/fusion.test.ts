import { describe, expect, it } from "vitest";
import { linearFusion, reciprocalRankFusion } from "../../src/retrievers/fusion.js";

const ids = (xs: Array<{ id: string }>) => xs.map((x) => x.id);

describe("reciprocalRankFusion", () => {
  const dense = [{ id: "a" }, { id: "b" }, { id: "c" }];
  const sparse = [{ id: "c" }, { id: "d" }, { id: "a" }];

  it("sums 1/(60 + rank) over the lists and orders by it, ties by id", () => {
    const fused = reciprocalRankFusion([dense, sparse]);
    // a: 1/61 + 1/63, c: 1/63 + 1/61 (tie → id order), b: 1/62, d: 1/62 (tie → id order)
    expect(ids(fused)).toEqual(["a", "c", "b", "d"]);
    expect(fused[0]!.score).toBeCloseTo(1 / 61 + 1 / 63, 15);
    expect(fused[1]!.score).toBeCloseTo(1 / 61 + 1 / 63, 15);
    expect(fused[2]!.score).toBeCloseTo(1 / 62, 15);
    expect(fused[0]!.ranks).toEqual([1, 3]);
    expect(fused[2]!.ranks).toEqual([2, null]);
  });

  it("uses the k constant and per-list weights", () => {
    const fused = reciprocalRankFusion([dense, sparse], { k: 0, weights: [2, 1] });
    // a: 2/1 + 1/3 = 2.3333, b: 2/2 = 1, c: 2/3 + 1/1 = 1.6667, d: 1/2
    expect(ids(fused)).toEqual(["a", "c", "b", "d"]);
    expect(fused.map((f) => f.score)).toEqual([2 + 1 / 3, 2 / 3 + 1, 1, 0.5]);
  });

  it("a document in both lists beats one ranked first in only one list", () => {
    const fused = reciprocalRankFusion([
      [{ id: "x" }, { id: "y" }],
      [{ id: "z" }, { id: "y" }],
    ]);
    expect(fused[0]!.id).toBe("y");
    expect(fused[0]!.score).toBeCloseTo(2 / 62, 15);
  });

  it("counts only the first occurrence of an id within a list and ranks distinct ids", () => {
    const fused = reciprocalRankFusion([[{ id: "a" }, { id: "a" }, { id: "b" }]]);
    expect(fused.map((f) => [f.id, f.ranks[0], f.score])).toEqual([
      ["a", 1, 1 / 61],
      ["b", 2, 1 / 62],
    ]);
  });

  it("keeps the payload of the first list that has the id, and limits the output", () => {
    const fused = reciprocalRankFusion(
      [
        [{ id: "a", item: "dense-a" }],
        [
          { id: "a", item: "sparse-a" },
          { id: "b", item: "sparse-b" },
        ],
      ],
      { limit: 1 },
    );
    expect(fused).toHaveLength(1);
    expect(fused[0]!.item).toBe("dense-a");
  });

  it("throws on a weight count that does not match the lists, and on missing ids", () => {
    expect(() => reciprocalRankFusion([dense, sparse], { weights: [1] })).toThrow(
      /reciprocalRankFusion: expected one weight per ranked list \(2 lists\), got 1/,
    );
    expect(() => reciprocalRankFusion([[{ id: "" }]])).toThrow(/list 0 entry at rank 1 has no id/);
    expect(() => reciprocalRankFusion([dense], { k: -1 })).toThrow(/k must be a finite number ≥ 0/);
  });
});

describe("linearFusion", () => {
  const dense = [
    { id: "a", score: 10 },
    { id: "b", score: 8 },
    { id: "c", score: 5 },
  ];
  const sparse = [
    { id: "c", score: 3 },
    { id: "d", score: 2 },
    { id: "a", score: 1 },
  ];

  it("min-max normalises each side and weights them; a missing document counts 0", () => {
    const fused = linearFusion([dense, sparse], { weights: [0.7, 0.3] });
    // dense: a=1, b=0.6, c=0 ; sparse: c=1, d=0.5, a=0
    expect(ids(fused)).toEqual(["a", "b", "c", "d"]);
    const s = Object.fromEntries(fused.map((f) => [f.id, f.score]));
    expect(s.a).toBeCloseTo(0.7, 12);
    expect(s.b).toBeCloseTo(0.7 * 0.6, 12);
    expect(s.c).toBeCloseTo(0.3, 12);
    expect(s.d).toBeCloseTo(0.3 * 0.5, 12);
    expect(fused.find((f) => f.id === "b")!.normalizedScores).toEqual([expect.closeTo(0.6, 12), null]);
  });

  it("alpha decides which side wins", () => {
    expect(linearFusion([dense, sparse], { weights: [0.2, 0.8] })[0]!.id).toBe("c");
    expect(linearFusion([dense, sparse], { weights: [0.8, 0.2] })[0]!.id).toBe("a");
  });

  it("z-score normalises with the population std; a missing document gets the side's minimum z", () => {
    const fused = linearFusion([dense, sparse], { weights: [0.5, 0.5], normalization: "zscore" });
    const mD = 23 / 3;
    const sdD = Math.sqrt(((10 - mD) ** 2 + (8 - mD) ** 2 + (5 - mD) ** 2) / 3);
    const sdS = Math.sqrt(2 / 3); // sparse mean 2
    const z = { a: (10 - mD) / sdD, b: (8 - mD) / sdD, c: (5 - mD) / sdD };
    const zs = { c: 1 / sdS, d: 0, a: -1 / sdS };
    const expected: Record<string, number> = {
      a: 0.5 * z.a + 0.5 * zs.a,
      b: 0.5 * z.b + 0.5 * zs.a, // missing from sparse → min z there (a's)
      c: 0.5 * z.c + 0.5 * zs.c,
      d: 0.5 * z.c + 0.5 * zs.d, // missing from dense → min z there (c's)
    };
    expect(ids(fused)).toEqual(["c", "a", "b", "d"]);
    for (const f of fused) expect(f.score).toBeCloseTo(expected[f.id]!, 12);
  });

  it("gives every document 1 when a side's scores are all equal (min-max)", () => {
    const fused = linearFusion([
      [
        { id: "a", score: 4 },
        { id: "b", score: 4 },
      ],
    ]);
    expect(fused.map((f) => f.score)).toEqual([1, 1]);
  });

  it("ignores an empty side", () => {
    const fused = linearFusion([dense, []], { weights: [0.5, 0.5] });
    expect(fused.map((f) => f.score)).toEqual([0.5, 0.5 * 0.6, 0]);
  });

  it("throws when a side has no score, or for a non-finite score or unknown normalisation", () => {
    expect(() => linearFusion([[{ id: "a" }]])).toThrow(/linearFusion: list 0 entry "a" at rank 1 has no score/);
    expect(() => linearFusion([[{ id: "a", score: NaN }]])).toThrow(/non-finite score/);
    expect(() => linearFusion([dense], { normalization: "l2" as never })).toThrow(/normalization must be "minmax" or "zscore"/);
  });
});

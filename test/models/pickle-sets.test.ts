/**
 * The restricted pickle VM reads Python sets (protocol 4's EMPTY_SET / ADDITEMS / FROZENSET, as in
 * pydantic's __pydantic_fields_set__) and refuses set opcodes applied to anything else.
 */
import { describe, expect, it } from "vitest";
import { PySet, unpickle } from "../../src/models/pytorch/pickle.js";

/** Bytes of a short unicode string (SHORT_BINUNICODE). */
const str = (s: string) => [0x8c, s.length, ...Buffer.from(s, "utf8")];
const PROTO4 = [0x80, 4];
const STOP = 0x2e;

describe("unpickle: Python sets", () => {
  it("reads a set built with EMPTY_SET and ADDITEMS, items in pickle order", () => {
    // {'id', 'metadata'} as pickle.dumps(..., protocol=4) writes it: EMPTY_SET MARK ... ADDITEMS
    const buf = Uint8Array.from([...PROTO4, 0x8f, 0x28, ...str("metadata"), ...str("id"), 0x90, STOP]);
    const { value } = unpickle(buf, 0, { source: "set.pkl" });
    expect(value).toBeInstanceOf(PySet);
    expect((value as PySet).items).toEqual(["metadata", "id"]);
    expect((value as PySet).frozen).toBe(false);
  });

  it("reads a frozenset (FROZENSET)", () => {
    const buf = Uint8Array.from([...PROTO4, 0x28, 0x4b, 1, 0x4b, 2, 0x91, STOP]);
    const { value } = unpickle(buf, 0, { source: "frozen.pkl" });
    expect((value as PySet).items).toEqual([1, 2]);
    expect((value as PySet).frozen).toBe(true);
  });

  it("refuses ADDITEMS on a list or a frozenset, naming the file", () => {
    const onList = Uint8Array.from([...PROTO4, 0x5d, 0x28, 0x4b, 1, 0x90, STOP]);
    expect(() => unpickle(onList, 0, { source: "bad.pkl" })).toThrow(/bad\.pkl: ADDITEMS to list\(0\): only sets take items/);
    const onFrozen = Uint8Array.from([...PROTO4, 0x28, 0x91, 0x28, 0x4b, 1, 0x90, STOP]);
    expect(() => unpickle(onFrozen, 0, { source: "bad.pkl" })).toThrow(/ADDITEMS to frozenset\(0\)/);
  });
});

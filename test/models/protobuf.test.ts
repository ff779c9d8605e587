import { describe, expect, it } from "vitest";
import { ProtoWriter } from "../../src/models/onnx/protobuf.js";
import { encodeTensor, OnnxDataType } from "../../src/models/onnx/onnx-proto.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("ProtoWriter", () => {
  it("encodes varints, negative int64, floats and strings as protobuf does", () => {
    expect(hex(new ProtoWriter().varint(1, 150).finish())).toBe("089601");
    expect(hex(new ProtoWriter().varint(2, 300).finish())).toBe("10ac02");
    // -1 as int64: ten bytes of two's complement.
    expect(hex(new ProtoWriter().varint(3, -1).finish())).toBe("18ffffffffffffffffff01");
    expect(hex(new ProtoWriter().float(2, 1).finish())).toBe("150000803f");
    expect(hex(new ProtoWriter().string(2, "testing").finish())).toBe("120774657374696e67");
    expect(hex(new ProtoWriter().packedInt64(1, [3, 270]).finish())).toBe("0a03038e02");
    expect(() => new ProtoWriter().varint(1, 2 ** 60)).toThrow(/not a safe integer/);
  });

  it("grows its buffer for large payloads", () => {
    const payload = new Uint8Array(100_000).fill(7);
    const bytes = new ProtoWriter().bytes(9, payload).finish();
    expect(bytes.length).toBe(1 + 3 + 100_000);
    expect(bytes[bytes.length - 1]).toBe(7);
  });

  it("writes external-data tensors with location, offset and length entries", () => {
    const encoded = Buffer.from(
      encodeTensor({
        name: "w",
        dataType: OnnxDataType.FLOAT,
        dims: [2, 3],
        external: { location: "model.onnx.data", offset: 65536, length: 24 },
      }).finish(),
    );
    const text = encoded.toString("latin1");
    expect(text).toContain("location");
    expect(text).toContain("model.onnx.data");
    expect(text).toContain("65536");
    // data_location = EXTERNAL (field 14, varint 1) is the last field.
    expect(hex(encoded.subarray(encoded.length - 2))).toBe("7001");
    expect(() =>
      encodeTensor({
        name: "x",
        dataType: OnnxDataType.FLOAT,
        dims: [1],
        raw: new Uint8Array(4),
        external: { location: "a", offset: 0, length: 4 },
      }),
    ).toThrow(/both raw and external/);
  });
});

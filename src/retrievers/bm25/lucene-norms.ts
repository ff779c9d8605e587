/**
 * Lucene's lossy one-byte document-length encoding (`SmallFloat.intToByte4` / `byte4ToInt`),
 * which `BM25Similarity` uses for its length normalisation since Lucene 7: lengths below 24 are
 * exact; above, only the 4 most significant bits survive (rounded down), so a 300-token passage
 * is scored as if it had 288 tokens. Written from the description of the format.
 */

/** Encodes a non-negative integer into 4 bits of "float": 3 mantissa bits + exponent, rounded down. */
function longToInt4(i: number): number {
  const numBits = i === 0 ? 0 : Math.floor(Math.log2(i)) + 1;
  if (numBits < 4) return i; // subnormal: exact
  const shift = numBits - 4;
  let encoded = Math.floor(i / 2 ** shift) & 0x07; // drop the implicit leading bit
  encoded |= (shift + 1) << 3;
  return encoded;
}

function int4ToLong(i: number): number {
  const bits = i & 0x07;
  const shift = (i >>> 3) - 1;
  return shift === -1 ? bits : (bits | 0x08) * 2 ** shift;
}

const MAX_INT4 = longToInt4(2 ** 31 - 1);
/** Byte values below this encode lengths exactly (24). */
export const NUM_FREE_VALUES = 255 - MAX_INT4;

/** Encodes a document length into one byte (0..255) as Lucene does. */
export function lengthToByte(length: number): number {
  if (!Number.isInteger(length) || length < 0) throw new Error(`lengthToByte: length must be a non-negative integer, got ${length}`);
  if (length < NUM_FREE_VALUES) return length;
  return NUM_FREE_VALUES + longToInt4(length - NUM_FREE_VALUES);
}

/** Decodes a byte from {@link lengthToByte} back to the (rounded-down) length. */
export function byteToLength(byte: number): number {
  if (byte < NUM_FREE_VALUES) return byte;
  return NUM_FREE_VALUES + int4ToLong(byte - NUM_FREE_VALUES);
}

/** The length Lucene's BM25 sees for a document of `length` tokens. */
export function luceneLength(length: number): number {
  return byteToLength(lengthToByte(length));
}

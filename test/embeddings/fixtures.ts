/**
 * Test fixtures for the embeddings tests: tiny DPR model folders written with the project's
 * own writer (random weights, a WordPiece vocabulary built from the texts below), plus a
 * wire-level ONNX graph editor used to imitate other exporters (renamed or missing inputs
 * and outputs).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { tinyBertConfig } from "../../src/models/config.js";
import { saveDPRModel, writeEncoderDir, type DPRModelConfig } from "../../src/models/model-dir.js";
import type { BertConfig, BertWeights } from "../../src/models/types.js";
import { randomBertWeights } from "../../src/models/weights.js";
import { BertTokenizer } from "../../src/tokenizers/bert-tokenizer.js";
import { buildWordPieceVocab } from "../../src/tokenizers/vocab.js";

/** Short texts in the fixture vocabulary's domain. */
export const TEXTS = [
  "what causes scurvy in sailors",
  "Scurvy is a disease resulting from a lack of vitamin C.",
  "Vitamin C is found in citrus fruits such as oranges and lemons.",
  "The heart pumps blood through the circulatory system of the body.",
  "Insulin regulates the level of glucose in the blood.",
  "how does insulin work",
  "Aspirin reduces fever and relieves mild pain in adults.",
  "A randomized trial of aspirin for the prevention of heart disease in older adults found no benefit on survival.",
  "the role of the liver",
  "The liver filters the blood coming from the digestive tract before passing it to the rest of the body.",
];

/** A tiny BERT config whose weights (std 0.3) make context visibly change the CLS vector. */
export function testConfig(vocabSize: number, overrides: Partial<BertConfig> = {}): BertConfig {
  return tinyBertConfig({ vocab_size: vocabSize, initializer_range: 0.3, max_position_embeddings: 128, ...overrides });
}

/**
 * Random weights with non-zero biases and LayerNorm parameters too (randomBertWeights leaves
 * biases at 0 and LayerNorm at 1/0, which would hide a graph that ignores them).
 */
export function testWeights(config: BertConfig, seed: number): BertWeights {
  const weights = randomBertWeights(config, { seed });
  let state = (seed * 2654435761) >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296 - 0.5;
  };
  for (const [name, t] of weights) {
    if (name.endsWith(".bias")) for (let i = 0; i < t.data.length; i++) t.data[i] = 0.2 * next();
    else if (name.endsWith("LayerNorm.weight")) for (let i = 0; i < t.data.length; i++) t.data[i] = 1 + 0.2 * next();
  }
  return weights;
}

/** The fixture tokenizer (uncased WordPiece over {@link TEXTS}). */
export function testTokenizer(): BertTokenizer {
  const vocab = buildWordPieceVocab(TEXTS, { vocabSize: 400, lowercase: true });
  return BertTokenizer.fromVocab(vocab, { lowercase: true });
}

/** A made tiny DPR model with its parts, for parity checks against the reference forward pass. */
export interface TinyDPR {
  dir: string;
  tokenizer: BertTokenizer;
  config: BertConfig;
  questionWeights: BertWeights;
  passageWeights: BertWeights;
}

/** Writes a two-encoder DPR folder (different seeds) into a fresh temp folder. */
export async function makeTinyDPR(opts: { dprConfig?: Partial<DPRModelConfig>; quantize?: boolean; root?: string } = {}): Promise<TinyDPR> {
  const root = opts.root ?? (await mkdtemp(join(tmpdir(), "dpr-emb-")));
  const tokenizer = testTokenizer();
  const config = testConfig(tokenizer.vocabSize);
  const questionWeights = testWeights(config, 1);
  const passageWeights = testWeights(config, 2);
  const dir = join(root, "dpr");
  await saveDPRModel(dir, {
    question: { config, weights: questionWeights, onnx: { quantize: opts.quantize }, safetensors: false },
    passage: { config, weights: passageWeights, onnx: { quantize: opts.quantize }, safetensors: false },
    tokenizer,
    dprConfig: opts.dprConfig,
  });
  return { dir, tokenizer, config, questionWeights, passageWeights };
}

/** Writes one encoder folder (seed 3) into `dir`. */
export async function makeTinyEncoder(
  dir: string,
  overrides: Partial<BertConfig> = {},
): Promise<{ config: BertConfig; weights: BertWeights; tokenizer: BertTokenizer }> {
  const tokenizer = testTokenizer();
  const config = testConfig(tokenizer.vocabSize, overrides);
  const weights = testWeights(config, 3);
  await writeEncoderDir(dir, { config, weights, tokenizer, safetensors: false });
  return { config, weights, tokenizer };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// A protobuf wire-format editor for ONNX graphs: enough to drop or rename graph inputs/outputs
// and to prepend a node, the way other exporters' graphs differ from ours.

interface Field {
  no: number;
  wire: number;
  /** The whole encoded field (tag + payload). */
  raw: Uint8Array;
  /** Payload of a length-delimited field. */
  body?: Uint8Array;
}

function readVarint(buf: Uint8Array, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
}

function parseFields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [tag, p1] = readVarint(buf, pos);
    pos = p1;
    const no = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    let body: Uint8Array | undefined;
    if (wire === 0) pos = readVarint(buf, pos)[1];
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos);
      body = buf.subarray(p2, p2 + Number(len));
      pos = p2 + Number(len);
    } else throw new Error(`unsupported wire type ${wire}`);
    out.push({ no, wire, raw: buf.subarray(start, pos), body });
  }
  return out;
}

function varint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

function lenField(no: number, body: Uint8Array): Uint8Array {
  return Uint8Array.from([...varint((no << 3) | 2), ...varint(body.length), ...body]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (s: string) => new TextEncoder().encode(s);

/** Renames value `from` to `to` everywhere in a NodeProto (inputs field 1, outputs field 2). */
function renameInNode(node: Uint8Array, renames: Map<string, string>): Uint8Array {
  return concat(
    parseFields(node).map((f) =>
      (f.no === 1 || f.no === 2) && f.wire === 2 && renames.has(text(f.body!)) ? lenField(f.no, bytes(renames.get(text(f.body!))!)) : f.raw,
    ),
  );
}

/** Renames a ValueInfoProto (name = field 1). */
function renameValueInfo(vi: Uint8Array, renames: Map<string, string>): Uint8Array {
  return concat(
    parseFields(vi).map((f) => (f.no === 1 && renames.has(text(f.body!)) ? lenField(1, bytes(renames.get(text(f.body!))!)) : f.raw)),
  );
}

function valueInfoName(vi: Uint8Array): string {
  const f = parseFields(vi).find((x) => x.no === 1);
  return f ? text(f.body!) : "";
}

/** Edits to apply to an ONNX model file's graph. */
export interface GraphEdit {
  /** Graph outputs to remove (the values stay computed internally). */
  dropOutputs?: string[];
  /** Renames of graph inputs/outputs (and every node reference to them). */
  rename?: Record<string, string>;
  /** Replace graph input `token_type_ids` by zeros computed inside the graph (Sub(input_ids, input_ids)). */
  dropTokenTypeIds?: boolean;
  /** Declare the integer inputs int32 (as TF exports do) and Cast them to int64 inside the graph. */
  int32Inputs?: boolean;
}

function varintField(no: number, v: number): Uint8Array {
  return Uint8Array.from([...varint(no << 3), ...varint(v)]);
}

/** Sets the elem_type of a tensor ValueInfoProto (type = 2 → TypeProto.tensor_type = 1 → elem_type = 1). */
function setElemType(vi: Uint8Array, elemType: number): Uint8Array {
  return concat(
    parseFields(vi).map((f) => {
      if (f.no !== 2) return f.raw;
      const typeProto = concat(
        parseFields(f.body!).map((t) => {
          if (t.no !== 1) return t.raw;
          const tensor = concat(parseFields(t.body!).map((x) => (x.no === 1 ? varintField(1, elemType) : x.raw)));
          return lenField(1, tensor);
        }),
      );
      return lenField(2, typeProto);
    }),
  );
}

/** NodeProto Cast(input) -> output with to = INT64 (7). AttributeProto: name 1, i 3, type 20 (INT = 2). */
function castToInt64Node(input: string, output: string): Uint8Array {
  const attribute = concat([lenField(1, bytes("to")), varintField(3, 7), varintField(20, 2)]);
  return concat([
    lenField(1, bytes(input)),
    lenField(2, bytes(output)),
    lenField(3, bytes(`cast_${input}`)),
    lenField(4, bytes("Cast")),
    lenField(5, attribute),
  ]);
}

/**
 * Rewrites `src` (an ONNX model with external data next to it) into `dest` in the same folder,
 * applying `edit`. ModelProto.graph = field 7; GraphProto: node = 1, input = 11, output = 12.
 */
export async function editOnnxGraph(src: string, dest: string, edit: GraphEdit): Promise<void> {
  const model = new Uint8Array(await readFile(src));
  const renames = new Map(Object.entries(edit.rename ?? {}));
  const INT_INPUTS = ["input_ids", "attention_mask", "token_type_ids"];
  // Nodes read the cast copies; the graph inputs keep their names.
  const nodeRenames = new Map(renames);
  if (edit.int32Inputs) for (const n of INT_INPUTS) nodeRenames.set(n, `${n}_int64`);
  const drop = new Set(edit.dropOutputs ?? []);
  const modelFields = parseFields(model);
  const parts: Uint8Array[] = [];
  for (const mf of modelFields) {
    if (mf.no !== 7) {
      parts.push(mf.raw);
      continue;
    }
    const graphParts: Uint8Array[] = [];
    if (edit.int32Inputs) for (const n of INT_INPUTS) graphParts.push(lenField(1, castToInt64Node(n, `${n}_int64`)));
    if (edit.dropTokenTypeIds) {
      const ids = renames.get("input_ids") ?? "input_ids";
      const node = concat([
        lenField(1, bytes(ids)),
        lenField(1, bytes(ids)),
        lenField(2, bytes("token_type_ids")),
        lenField(3, bytes("zero_token_types")),
        lenField(4, bytes("Sub")),
      ]);
      graphParts.push(lenField(1, node));
    }
    for (const gf of parseFields(mf.body!)) {
      if (gf.no === 1) graphParts.push(lenField(1, renameInNode(gf.body!, nodeRenames)));
      else if (gf.no === 11) {
        if (edit.dropTokenTypeIds && valueInfoName(gf.body!) === "token_type_ids") continue;
        const vi = renameValueInfo(gf.body!, renames);
        graphParts.push(lenField(11, edit.int32Inputs ? setElemType(vi, 6) : vi));
      } else if (gf.no === 12) {
        if (drop.has(valueInfoName(gf.body!))) continue;
        graphParts.push(lenField(12, renameValueInfo(gf.body!, renames)));
      } else graphParts.push(gf.raw);
    }
    parts.push(lenField(7, concat(graphParts)));
  }
  await writeFile(dest, concat(parts));
}

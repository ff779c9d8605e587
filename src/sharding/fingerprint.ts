/**
 * What ties a vector shard to the model and corpus it came from: the passage encoder's fingerprint
 * (the SHA-256 of its files and of every setting that changes a vector) and the corpus file's
 * SHA-256; and the one rule that turns a corpus passage into the LangChain Document (and so into
 * the encoder input) that both `encode-shard` and `build-index` use.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, join } from "node:path";

import { Document } from "@langchain/core/documents";

import type { Passage } from "../data/types.js";
import type { DPREmbeddings } from "../embeddings/dpr-embeddings.js";
import { checksumFile } from "../utils/checksum.js";
import { isDirectory, isFile } from "../utils/fs.js";

/** What the model fingerprint covers (no paths: the same model in two folders has one fingerprint). */
export interface ModelDescription {
  /** The passage encoder's files that change its vectors: ONNX graph (+ external data), config, tokenizer. */
  files: Array<{ name: string; bytes: number; sha256: string }>;
  dims: number;
  pooling: string;
  normalize: boolean;
  titleJoin: string;
  passagePrompt: string;
  maxPassageLength: number;
}

/** A model fingerprint: the digest stored in shard headers and what it was computed from. */
export interface ModelFingerprint {
  /** SHA-256 (hex) of the canonical JSON of {@link description}. */
  digest: string;
  description: ModelDescription;
}

const TOKENIZER_EXTRAS = ["tokenizer_config.json", "special_tokens_map.json"];

/**
 * The fingerprint of `embeddings`' passage encoder: SHA-256 of each file that shapes a passage
 * vector (the ONNX graph it runs, fp32 or int8, with `<graph>.data` when present; config.json;
 * vocab.txt / tokenizer.json / tokenizer_config.json / special_tokens_map.json) and the settings
 * dims, pooling, normalize, titleJoin, passagePrompt and maxPassageLength. Loads the model.
 */
export async function passageEncoderFingerprint(embeddings: DPREmbeddings): Promise<ModelFingerprint> {
  await embeddings.ready();
  const { passage } = await embeddings.getEncoders();
  const graph = passage.modelPath;
  const candidates: Array<[string, string | undefined]> = [
    [basename(graph), graph],
    [`${basename(graph)}.data`, `${graph}.data`],
    ["config.json", passage.files.configPath],
    ["vocab.txt", passage.files.vocabPath],
    ["tokenizer.json", passage.files.tokenizerJsonPath],
    ...TOKENIZER_EXTRAS.map((name): [string, string] => [name, join(passage.files.dir, name)]),
  ];
  const files: ModelDescription["files"] = [];
  for (const [name, path] of candidates) {
    if (path === undefined || !(await isFile(path))) continue;
    const { bytes, sha256 } = await checksumFile(path);
    files.push({ name, bytes, sha256 });
  }
  const description: ModelDescription = {
    files,
    dims: await embeddings.dimension(),
    pooling: embeddings.pooling,
    normalize: embeddings.normalize,
    titleJoin: embeddings.titleJoin,
    passagePrompt: embeddings.passagePrompt,
    maxPassageLength: embeddings.maxPassageLength,
  };
  const digest = createHash("sha256")
    .update(JSON.stringify({ format: "langchain-dpr passage encoder v1", ...description }))
    .digest("hex");
  return { digest, description };
}

/**
 * The corpus file behind `--corpus`: `<dir>/corpus.jsonl` for a BEIR folder, the path itself for a
 * `.jsonl` file (the rule of `streamBeirCorpus`). Throws naming the path when it is neither.
 */
export async function resolveCorpusFile(pathOrDir: string, who: string): Promise<string> {
  if (await isDirectory(pathOrDir)) {
    const file = join(pathOrDir, "corpus.jsonl");
    if (!(await isFile(file))) throw new Error(`${who}: --corpus ${pathOrDir} is a folder without corpus.jsonl (expected a BEIR folder)`);
    return file;
  }
  if (!(await isFile(pathOrDir)))
    throw new Error(`${who}: --corpus ${pathOrDir} not found (expected a BEIR folder or a corpus.jsonl file)`);
  if (!pathOrDir.endsWith(".jsonl")) {
    throw new Error(`${who}: --corpus ${pathOrDir} is a file not ending in .jsonl; expected a BEIR folder or a corpus.jsonl file`);
  }
  return pathOrDir;
}

/**
 * The LangChain Document of a corpus passage: `pageContent` = text, `id` = the corpus id, metadata =
 * the passage's BEIR `metadata` plus `title` when the passage has a non-empty one (as
 * `langchain-dpr evaluate` builds its store). FaissDPRStore encodes `metadata.title` as the title.
 */
export function passageDocument(p: Passage): Document {
  const metadata: Record<string, unknown> = { ...(p.metadata ?? {}) };
  if (p.title !== "") metadata.title = p.title;
  return new Document({ pageContent: p.text, metadata, id: p.id });
}

/** The encoder input of a Document, exactly as FaissDPRStore.addDocuments makes it with DPREmbeddings. */
export function documentPassage(doc: Document): { title?: string; text: string } {
  const title = doc.metadata.title;
  return { text: doc.pageContent, title: typeof title === "string" ? title : undefined };
}

/**
 * Embedding for FaissDPRStore: passages through the embeddings object's Float32Array path when it
 * has one (DPREmbeddings' `embedPassagesMatrix`, with `metadata.title` as the title), else
 * LangChain's `embedDocuments`; queries through `embedQueryVector` when offered, else `embedQuery`.
 *
 * @module
 */
import type { DocumentInterface } from "@langchain/core/documents";
import type { EmbeddingsInterface } from "@langchain/core/embeddings";
import type { VectorRows } from "./types.js";

/** Embeddings that can hand back a Float32Array directly (DPREmbeddings does). */
interface MatrixEmbeddings {
  embedPassagesMatrix?(passages: Array<{ title?: string; text: string }>): Promise<{ data: Float32Array; dim: number }>;
  embedQueryVector?(query: string): Promise<Float32Array>;
}

/** Passage vectors: `{ data, dim }` from the matrix path, or rows from `embedDocuments`. */
export async function embedPassages(
  embeddings: EmbeddingsInterface,
  docs: DocumentInterface[],
): Promise<{ rows: VectorRows; dim?: number }> {
  const emb = embeddings as EmbeddingsInterface & MatrixEmbeddings;
  if (typeof emb.embedPassagesMatrix === "function") {
    const m = await emb.embedPassagesMatrix(
      docs.map((doc) => ({
        text: doc.pageContent,
        title: typeof doc.metadata?.title === "string" ? (doc.metadata.title as string) : undefined,
      })),
    );
    return { rows: m.data, dim: m.dim };
  }
  return { rows: await embeddings.embedDocuments(docs.map((doc) => doc.pageContent)) };
}

/** A query vector, as the embeddings object returns it (not rounded to float32). */
export async function embedQuery(embeddings: EmbeddingsInterface, query: string): Promise<number[] | Float32Array> {
  const emb = embeddings as EmbeddingsInterface & MatrixEmbeddings;
  if (typeof emb.embedQueryVector === "function") return emb.embedQueryVector(query);
  return embeddings.embedQuery(query);
}

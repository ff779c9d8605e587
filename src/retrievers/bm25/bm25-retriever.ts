import { BaseRetriever, type BaseRetrieverInput } from "@langchain/core/retrievers";
import { Document } from "@langchain/core/documents";
import type { CallbackManagerForRetrieverRun } from "@langchain/core/callbacks/manager";
import type { Passage } from "../../data/types.js";
import { BM25Index, type BM25IndexParams } from "./bm25-index.js";

/** Metadata on each document the {@link BM25Retriever} returns. */
export interface BM25DocumentMetadata extends Record<string, unknown> {
  /** Passage id. */
  id: string;
  /** BM25 score. */
  score: number;
  /** Passage title ("" when none). */
  title: string;
}

/** Parameters of {@link BM25Retriever}. */
export interface BM25RetrieverParams extends BaseRetrieverInput {
  /** The index to search; it must store passages (`storePassages`, the default). */
  index: BM25Index;
  /** Number of documents to return (default 10). */
  k?: number;
}

/**
 * A LangChain retriever over a {@link BM25Index}. Each `Document` has the passage text as
 * `pageContent` and `metadata.id`, `metadata.score`, `metadata.title` plus the passage's own
 * metadata.
 *
 * @example
 * const retriever = await BM25Retriever.fromPassages(passages, { k: 5 });
 * const docs = await retriever.invoke("statins and muscle pain");
 */
export class BM25Retriever extends BaseRetriever<BM25DocumentMetadata> {
  static override lc_name(): string {
    return "BM25Retriever";
  }

  lc_namespace = ["langchain_dpr", "retrievers", "bm25"];

  k = 10;
  index: BM25Index;

  constructor(params: BM25RetrieverParams) {
    super(params);
    if (!(params?.index instanceof BM25Index)) throw new Error("BM25Retriever: params.index must be a BM25Index");
    if (!params.index.storePassages) {
      throw new Error("BM25Retriever: the index was built with storePassages: false, so it cannot return documents");
    }
    this.index = params.index;
    if (params.k !== undefined) this.k = params.k;
    if (!Number.isInteger(this.k) || this.k < 1) throw new Error(`BM25Retriever: k must be a positive integer, got ${this.k}`);
  }

  /** Builds an index over `passages` and a retriever on it. */
  static async fromPassages(
    passages: Iterable<Passage> | AsyncIterable<Passage>,
    params: Omit<BM25RetrieverParams, "index"> & { indexParams?: BM25IndexParams } = {},
  ): Promise<BM25Retriever> {
    const { indexParams, ...rest } = params;
    const index = await BM25Index.fromPassages(passages, indexParams);
    return new this({ ...rest, index });
  }

  override async _getRelevantDocuments(
    query: string,
    _runManager?: CallbackManagerForRetrieverRun,
  ): Promise<Document<BM25DocumentMetadata>[]> {
    return this.index.search(query, this.k).map((hit) => {
      const passage = this.index.getPassage(hit.id);
      if (!passage) throw new Error(`BM25Retriever: passage "${hit.id}" missing from the index store`);
      return new Document<BM25DocumentMetadata>({
        pageContent: passage.text,
        metadata: { ...(passage.metadata ?? {}), id: hit.id, score: hit.score, title: passage.title },
        id: hit.id,
      });
    });
  }
}

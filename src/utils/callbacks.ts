/**
 * LangChain runs for work that happens outside `Runnable.invoke`: a retriever's `retrieve()`
 * and a reranker's `compressDocuments()` open their own run when given callbacks, so a trace (or
 * `streamEvents`) shows every stage as a child of the run that called it.
 *
 * @module
 */
import {
  CallbackManager,
  type CallbackManagerForChainRun,
  type CallbackManagerForRetrieverRun,
  type Callbacks,
} from "@langchain/core/callbacks/manager";
import type { DocumentInterface } from "@langchain/core/documents";
import type { BaseRetriever } from "@langchain/core/retrievers";
import type { Serialized } from "@langchain/core/load/serializable";

/**
 * Runs `work` inside a retriever run of `retriever`, as `BaseRetriever.invoke` would: the run
 * starts with the query, ends with the documents `work` returns, or records its error. Callbacks
 * configured on the retriever (and tracing set in the environment) apply as they do for invoke.
 */
export async function inRetrieverRun<T extends { documents: DocumentInterface[] }>(
  retriever: BaseRetriever,
  query: string,
  callbacks: Callbacks | undefined,
  work: (run: CallbackManagerForRetrieverRun | undefined) => Promise<T>,
): Promise<T> {
  const manager = await CallbackManager.configure(
    callbacks,
    retriever.callbacks,
    undefined,
    retriever.tags,
    undefined,
    retriever.metadata,
    {
      verbose: retriever.verbose,
    },
  );
  const run = await manager?.handleRetrieverStart(retriever.toJSON(), query);
  try {
    const result = await work(run);
    await run?.handleRetrieverEnd(result.documents);
    return result;
  } catch (err) {
    await run?.handleRetrieverError(err);
    throw err;
  }
}

/**
 * Runs `work` inside a chain run named `name` when callbacks are given (without callbacks it just
 * runs `work`). Inputs and outputs are what the trace shows.
 */
export async function inChainRun<T>(
  name: string,
  namespace: string[],
  callbacks: Callbacks | undefined,
  inputs: Record<string, unknown>,
  work: (run: CallbackManagerForChainRun | undefined) => Promise<T>,
  outputs: (result: T) => Record<string, unknown>,
): Promise<T> {
  if (callbacks === undefined) return work(undefined);
  const manager = await CallbackManager.configure(callbacks);
  const serialized: Serialized = { lc: 1, type: "not_implemented", id: [...namespace, name] };
  const run = await manager?.handleChainStart(serialized, inputs, undefined, undefined, undefined, undefined, name);
  try {
    const result = await work(run);
    await run?.handleChainEnd(outputs(result));
    return result;
  } catch (err) {
    await run?.handleChainError(err);
    throw err;
  }
}

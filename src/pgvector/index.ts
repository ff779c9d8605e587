/**
 * `langchain-dpr/pgvector`: DPR on PostgreSQL + pgvector through LangChain's PGVectorStore
 * (needs `npm install @langchain/community pg`).
 */
export { DPRPGVectorStore, type DPRPGVectorStoreParams, type DPRPGVectorIndex, type PGVectorFilter } from "./dpr-pgvector-store.js";

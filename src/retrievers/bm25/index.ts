export { BM25Index, type BM25IndexParams, type BM25Hit } from "./bm25-index.js";
export { BM25Retriever, type BM25RetrieverParams, type BM25DocumentMetadata } from "./bm25-retriever.js";
export { EnglishAnalyzer, LUCENE_ENGLISH_STOP_WORDS, standardTokenize, type EnglishAnalyzerParams } from "./analyzer.js";
export { porterStem } from "./porter.js";
export { lengthToByte, byteToLength, luceneLength } from "./lucene-norms.js";

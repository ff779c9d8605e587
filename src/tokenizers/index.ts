/** BERT WordPiece tokenization with Hugging Face `BertTokenizerFast` parity, and vocabulary training. */
export { BertTokenizer, longestFirstLengths, type BertTokenizerOptions, type EncodeOptions, type Encoding } from "./bert-tokenizer.js";
export { bertNormalize, bertPreTokenize, isChineseChar, type BertNormalizerOptions } from "./bert-text.js";
export { buildWordPieceVocab, SPECIAL_TOKEN_IDS, type BuildVocabOptions } from "./vocab.js";

/**
 * Sharded corpus encoding (`encodeShard`, one shard of n per process or machine) and one index
 * from the shards (`buildIndexFromShards`); the vector shard file format.
 *
 * @module
 */
export {
  encodeShard,
  DEFAULT_SHARD_BATCH_SIZE,
  DEFAULT_SHARD_CHUNK_ROWS,
  type EncodeShardOptions,
  type EncodeShardProgress,
  type EncodeShardResult,
} from "./encode-shard.js";
export {
  buildIndexFromShards,
  checkShards,
  readShardBatches,
  sampleRows,
  DEFAULT_ADD_BATCH_ROWS,
  MIN_DEFAULT_TRAIN_SAMPLE,
  type BuildIndexOptions,
  type BuildIndexProgress,
  type BuildIndexResult,
  type CheckedShard,
  type ShardBatch,
  type ShardSet,
} from "./build-index.js";
export {
  passageEncoderFingerprint,
  passageDocument,
  resolveCorpusFile,
  type ModelDescription,
  type ModelFingerprint,
} from "./fingerprint.js";
export {
  decodeShardHeader,
  encodeShardHeader,
  readShardHeader,
  shardPaths,
  shardRange,
  shardBaseName,
  parseShardFileName,
  shardFileBytes,
  SHARD_HEADER_BYTES,
  SHARD_FORMAT_VERSION,
  SHARD_MAGIC,
  type ShardHeader,
  type ShardPaths,
} from "./shard-file.js";
export { loadShardsIntoPGVector, type PGVectorIngestOptions, type PGVectorIngestResult } from "./pgvector-ingest.js";

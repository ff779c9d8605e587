/**
 * Training (`langchain-dpr/training`): TF.js backends and kernels, the BERT encoder in TF.js, the DPR
 * loss, the training loop both trainers share (resumable checkpoints, time budget, dev evaluation),
 * the dual-encoder trainer with GradCache, unsupervised pretraining pairs, hard-negative mining and
 * cross-encoder training. Importing this entry point loads TF.js.
 */
export {
  selectBackend,
  describeBackend,
  BACKEND_ORDER,
  type BackendChoice,
  type BackendInfo,
  type SelectBackendParams,
  type SelectedBackend,
} from "./backend.js";
export { BertEncoderTF, meanPool, type BertEncoderTFParams, type BertInputsTF, type BertOutputsTF, type PoolingTF } from "./bert-tf.js";
export {
  dprLoss,
  dualEncoderTrainStep,
  type DistillationTarget,
  type DprLossOptions,
  type DualEncoderBatch,
  type DualEncoderStepParams,
} from "./loss.js";
export { AdamW, linearSchedule, clipByGlobalNorm, type AdamWParams, type LinearScheduleParams } from "./optimizer.js";
export { computeDprGradients, type DprGradientParams, type DprGradients } from "./gradients.js";
export { loadTrainingExamples, detectDataSource, type TrainingDataSource } from "./batches.js";
export { DPRTrainer, type DPRTrainerParams, type TrainOptions, type TrainResult, type StepRecord, type EpochRecord } from "./trainer.js";
export {
  runTrainingLoop,
  TRAIN_LOG,
  CHECKPOINT_DIR,
  type TrainingLoopParams,
  type TrainingLoopResult,
  type EpochPlan,
  type UpdateReport,
  type DevEvaluation,
  type Checkpointing,
  type LoopView,
} from "./loop.js";
export {
  readCheckpoint,
  writeCheckpoint,
  restoreOptimizer,
  CHECKPOINT_FORMAT,
  type CheckpointState,
  type LoadedCheckpoint,
  type LoopPosition,
} from "./checkpoint.js";
export {
  DEFAULT_MAX_GRAD_NORM,
  runLength,
  warmupLinearSchedule,
  type RunLength,
  type RunLengthParams,
  type WarmupScheduleParams,
} from "./recipe.js";
export { loadInitialModel, scratchModel, type InitialModel, type ScratchModelParams } from "./init.js";
export { exportTrainedModel, evaluateModelDir, type ExportTrainedModelParams } from "./export.js";
export {
  ictExamples,
  cropExamples,
  spanExamples,
  splitSentences,
  type IctOptions,
  type CropOptions,
  type SpanOptions,
} from "./pretrain.js";
export { HardNegativeMiner, selectHardNegatives, writeMinedDprJson, type HardNegativeMinerParams, type MiningResult } from "./mining.js";
export { matchHeadInit, type MatchHeadOptions, type MatchHeadReport } from "./match-head.js";
export { lexicalInitWeights, tokenIdf, type LexicalInitParams, type LexicalInitInfo } from "./lexical-init.js";
export { bm25Teacher, type DistillationParams, type DistillationTeacher } from "./distillation.js";
export {
  CrossEncoderTrainer,
  type CrossEncoderTrainerParams,
  type CrossEncoderLoss,
  type CrossEncoderTrainResult,
  type CrossEncoderTrainOptions,
} from "./cross-encoder-trainer.js";
export { SeededRandom } from "./random.js";

/**
 * Writes a randomly initialised BERT encoder (config.json, model.safetensors, model.onnx +
 * model.onnx.data, optionally model_quantized.onnx), or converts an existing checkpoint folder
 * (config.json + model.safetensors) to ONNX. No tokenizer files are written: for a complete DPR
 * model folder with a vocabulary, use createRandomDPRModel (src/models/model-dir.ts).
 *
 * Usage:
 *   npx tsx scripts/make-random-encoder.ts --out DIR [--shape base|minilm|tiny] [--vocab N] [--seed N]
 *       [--pooler cls|bert|none] [--labels N] [--quantize] [--fused]
 *   npx tsx scripts/make-random-encoder.ts --from CHECKPOINT_DIR [--out DIR] [--quantize] [--pooler ...]
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { exportCheckpointToOnnx } from "../src/models/checkpoint.js";
import { BERT_BASE_CONFIG, MINILM_L6_CONFIG, tinyBertConfig } from "../src/models/config.js";
import { exportBertOnnx, type BertOnnxOptions } from "../src/models/onnx/bert-graph.js";
import { writeSafetensors } from "../src/models/safetensors.js";
import type { BertConfig } from "../src/models/types.js";
import { writeFileAtomic } from "../src/utils/atomic-file.js";
import { randomBertWeights } from "../src/models/weights.js";

const { values } = parseArgs({
  options: {
    out: { type: "string" },
    from: { type: "string" },
    shape: { type: "string", default: "tiny" },
    vocab: { type: "string" },
    seed: { type: "string", default: "42" },
    pooler: { type: "string" },
    labels: { type: "string" },
    quantize: { type: "boolean", default: false },
    fused: { type: "boolean", default: false },
  },
});

const pooler = values.pooler as BertOnnxOptions["pooler"];
const labels = values.labels === undefined ? undefined : Number(values.labels);
const onnxOptions: BertOnnxOptions = { pooler, quantize: values.quantize, fused: values.fused, classifier: labels !== undefined };

if (values.from) {
  const start = performance.now();
  const { modelPath, quantizedPath } = await exportCheckpointToOnnx(values.from, values.out ?? values.from, onnxOptions);
  console.log(`wrote ${modelPath}${quantizedPath ? ` and ${quantizedPath}` : ""} in ${((performance.now() - start) / 1000).toFixed(1)} s`);
} else {
  if (!values.out) throw new Error("make-random-encoder: --out DIR is required (or --from CHECKPOINT_DIR)");
  const shapes: Record<string, BertConfig> = { base: BERT_BASE_CONFIG, minilm: MINILM_L6_CONFIG, tiny: tinyBertConfig() };
  const base = shapes[values.shape ?? "tiny"];
  if (!base) throw new Error(`make-random-encoder: --shape must be one of ${Object.keys(shapes).join(", ")}, got '${values.shape}'`);
  const config: BertConfig = {
    ...base,
    ...(values.vocab ? { vocab_size: Number(values.vocab) } : {}),
    ...(labels !== undefined ? { num_labels: labels } : {}),
  };
  const start = performance.now();
  const weights = randomBertWeights(config, { seed: Number(values.seed), pooler: pooler === "bert", numLabels: labels });
  await mkdir(values.out, { recursive: true });
  await writeFileAtomic(join(values.out, "config.json"), [
    Buffer.from(JSON.stringify({ architectures: [labels ? "BertForSequenceClassification" : "BertModel"], ...config }, null, 2) + "\n"),
  ]);
  await writeSafetensors(join(values.out, "model.safetensors"), weights, {
    format: "pt",
    producer: "langchain-dpr make-random-encoder",
    seed: String(values.seed),
  });
  const { modelPath, quantizedPath } = await exportBertOnnx(values.out, config, weights, onnxOptions);
  console.log(
    `wrote config.json, model.safetensors, ${modelPath}${quantizedPath ? `, ${quantizedPath}` : ""} in ` +
      `${((performance.now() - start) / 1000).toFixed(1)} s`,
  );
}

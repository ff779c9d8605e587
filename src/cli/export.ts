/**
 * `langchain-dpr export`: BERT weights in safetensors (a Hugging Face BERT/DPR encoder folder, or a
 * DPR model folder of ours) → an ONNX model folder that DPREmbeddings / CrossEncoderReranker load,
 * through {@link exportCheckpointToOnnx}.
 *
 * @module
 */
import { copyFile, mkdir, readFile, stat } from "node:fs/promises";
import { join, relative, resolve } from "node:path";

import { exportCheckpointToOnnx } from "../models/checkpoint.js";
import type { BertOnnxOptions } from "../models/onnx/bert-graph.js";
import { parseCliArgs, PROCESS_IO, runCommandLine, UsageError, type CliIO } from "../utils/cli-args.js";
import { EXPORT_USAGE } from "./usage.js";

const WHO = "export";

/** Files copied beside the ONNX graph when the output folder is not the checkpoint folder. */
const ENCODER_FILES = ["config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];
/** Encoder sub-folders of a DPR model folder, in the order they are exported. */
const ENCODER_SUBDIRS = ["question_encoder", "passage_encoder", "ctx_encoder", "encoder"];

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

/**
 * The encoder folders of a checkpoint: `dir` itself when it has a config.json, else its
 * question_encoder/, passage_encoder/ (or ctx_encoder/) and encoder/ sub-folders. Each must hold
 * model.safetensors.
 * @throws Error naming the folder and what is missing.
 */
export async function checkpointEncoderDirs(dir: string): Promise<string[]> {
  if (!(await isDir(dir))) throw new Error(`${WHO}: --from ${dir} is not a folder`);
  let found: string[];
  if (await isFile(join(dir, "config.json"))) found = [dir];
  else {
    found = [];
    for (const sub of ENCODER_SUBDIRS) if (await isFile(join(dir, sub, "config.json"))) found.push(join(dir, sub));
  }
  if (found.length === 0) {
    const hint = (await isDir(join(dir, "model"))) ? ` (a training run folder? its model is ${join(dir, "model")})` : "";
    throw new Error(
      `${WHO}: ${dir} is not a checkpoint folder: expected config.json + model.safetensors, or ` +
        `${ENCODER_SUBDIRS.map((s) => `${s}/`).join(", ")} with them${hint}`,
    );
  }
  for (const d of found) {
    if (!(await isFile(join(d, "model.safetensors"))))
      throw new Error(`${WHO}: ${d} has no model.safetensors (export converts safetensors weights to ONNX)`);
  }
  return found;
}

async function isClassifier(encoderDir: string): Promise<boolean> {
  try {
    const config = JSON.parse(await readFile(join(encoderDir, "config.json"), "utf8")) as { architectures?: unknown };
    return (
      Array.isArray(config.architectures) &&
      config.architectures.some((a) => typeof a === "string" && a.endsWith("ForSequenceClassification"))
    );
  } catch {
    return false;
  }
}

/** What {@link exportCheckpoint} wrote, per encoder. */
export interface ExportedEncoder {
  /** The encoder folder written (under the output folder). */
  dir: string;
  modelPath: string;
  quantizedPath?: string;
  /** Whether the graph has the classifier head (`logits`). */
  classifier: boolean;
}

/**
 * Exports every encoder of the checkpoint `from` to ONNX under `out` (default `from`), keeping the
 * layout (question_encoder/ ... stay sub-folders). When `out` differs from `from`, config.json, the
 * tokenizer files and dpr_config.json are copied too, so `out` is a complete model folder (without
 * model.safetensors). A config whose `architectures` names a `...ForSequenceClassification` model
 * gets the classifier head unless `options.classifier` says otherwise.
 */
export async function exportCheckpoint(from: string, out: string = from, options: BertOnnxOptions = {}): Promise<ExportedEncoder[]> {
  const src = resolve(from);
  const dst = resolve(out);
  const encoders = await checkpointEncoderDirs(src);
  const written: ExportedEncoder[] = [];
  for (const encoderDir of encoders) {
    const target = join(dst, relative(src, encoderDir));
    await mkdir(target, { recursive: true });
    const classifier = options.classifier ?? (await isClassifier(encoderDir));
    const { modelPath, quantizedPath } = await exportCheckpointToOnnx(encoderDir, target, { ...options, classifier });
    if (target !== encoderDir) {
      for (const f of ENCODER_FILES) if (await isFile(join(encoderDir, f))) await copyFile(join(encoderDir, f), join(target, f));
    }
    written.push({ dir: target, modelPath, quantizedPath, classifier });
  }
  if (dst !== src && (await isFile(join(src, "dpr_config.json"))))
    await copyFile(join(src, "dpr_config.json"), join(dst, "dpr_config.json"));
  return written;
}

/** Runs the command line; returns the exit code (0 ok, 1 runtime error, 2 usage error). Never throws. */
export async function runExportCli(argv: string[], io: CliIO = PROCESS_IO): Promise<number> {
  return runCommandLine({ who: WHO, usage: EXPORT_USAGE, io }, async () => {
    const { values } = parseCliArgs(WHO, {
      args: argv,
      options: {
        from: { type: "string" },
        out: { type: "string" },
        quantize: { type: "boolean", default: false },
        pooler: { type: "string" },
        classifier: { type: "boolean" },
        fused: { type: "boolean", default: false },
        help: { type: "boolean" },
      },
    });
    if (values.help) {
      io.stdout(EXPORT_USAGE);
      return 0;
    }
    if (!values.from) throw new UsageError(`${WHO}: --from <checkpoint folder> is required`);
    const pooler = values.pooler;
    if (pooler !== undefined && pooler !== "cls" && pooler !== "bert" && pooler !== "none") {
      throw new UsageError(`${WHO}: --pooler must be cls, bert or none, got '${pooler}'`);
    }
    const t0 = performance.now();
    const written = await exportCheckpoint(values.from, values.out ?? values.from, {
      pooler,
      quantize: values.quantize,
      fused: values.fused,
      classifier: values.classifier,
    });
    for (const w of written) {
      io.stdout(`wrote ${w.modelPath}${w.quantizedPath ? ` and ${w.quantizedPath}` : ""}${w.classifier ? " (classifier head)" : ""}\n`);
    }
    io.stderr(`${WHO}: ${written.length} encoder${written.length === 1 ? "" : "s"} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    return 0;
  });
}

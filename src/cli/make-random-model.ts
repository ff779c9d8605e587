/**
 * `langchain-dpr make-random-model`: a randomly initialised DPR model folder (tests, benchmarks,
 * pipeline checks), from {@link createRandomDPRModel}.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

import { DEMO_DATASET } from "../models/defaults.js";
import { createRandomDPRModel, type RandomModelShape } from "../testing/random-models.js";
import { parseCliArgs, parseNumberFlag, PROCESS_IO, runCommandLine, UsageError, type CliIO } from "../utils/cli-args.js";
import { PACKAGE_ROOT } from "./package.js";
import { MAKE_RANDOM_MODEL_USAGE } from "./usage.js";

const WHO = "make-random-model";
const SHAPES: readonly RandomModelShape[] = ["bert-base", "minilm", "tiny"];

/**
 * The texts the vocabulary is learnt from by default: the committed PubMedQA fixture passages in a
 * clone (test/fixtures/passages/pubmedqa-300.jsonl, MIT; what scripts/make-random-model.ts always
 * used), else the bundled PubMedQA corpus the package ships.
 */
export function defaultVocabSource(root: string = PACKAGE_ROOT): string {
  const fixture = join(root, "test", "fixtures", "passages", "pubmedqa-300.jsonl");
  return existsSync(fixture) ? fixture : join(DEMO_DATASET, "corpus.jsonl");
}

/** Lines of a text file, or the titles and texts of a `.jsonl` file (BEIR corpus). */
export async function readVocabTexts(path: string): Promise<string[]> {
  let raw: string;
  try {
    raw = await readFile(path, "utf8");
  } catch (err) {
    throw new Error(`${WHO}: cannot read --vocab-from ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const lines = raw.split("\n").filter((l) => l.trim() !== "");
  if (!path.endsWith(".jsonl")) return lines;
  return lines.flatMap((line, i) => {
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`${WHO}: ${path} line ${i + 1} is not JSON`);
    }
    return [o.title, o.text].filter((t): t is string => typeof t === "string" && t !== "");
  });
}

/** Runs the command line; returns the exit code (0 ok, 1 runtime error, 2 usage error). Never throws. */
export async function runMakeRandomModelCli(argv: string[], io: CliIO = PROCESS_IO): Promise<number> {
  return runCommandLine({ who: WHO, usage: MAKE_RANDOM_MODEL_USAGE, io }, async () => {
    const { values } = parseCliArgs(WHO, {
      args: argv,
      options: {
        shape: { type: "string", default: "tiny" },
        out: { type: "string" },
        seed: { type: "string" },
        "vocab-from": { type: "string" },
        "vocab-size": { type: "string" },
        quantize: { type: "boolean", default: false },
        shared: { type: "boolean", default: false },
        "no-safetensors": { type: "boolean", default: false },
        help: { type: "boolean" },
      },
    });
    if (values.help) {
      io.stdout(MAKE_RANDOM_MODEL_USAGE);
      return 0;
    }
    if (!values.out) throw new UsageError(`${WHO}: --out DIR is required`);
    const shape = values.shape as RandomModelShape;
    if (!SHAPES.includes(shape)) throw new UsageError(`${WHO}: --shape must be ${SHAPES.join(", ")}, got '${shape}'`);
    const seed = parseNumberFlag(WHO, "--seed", values.seed, { integer: true, min: 0 }) ?? 42;
    const vocabSize = parseNumberFlag(WHO, "--vocab-size", values["vocab-size"], { integer: true, min: 1 });
    const texts = await readVocabTexts(values["vocab-from"] ?? defaultVocabSource());
    const t0 = performance.now();
    const { config } = await createRandomDPRModel(values.out, {
      shape,
      texts,
      seed,
      vocabSize,
      quantize: values.quantize,
      shared: values.shared,
      safetensors: !values["no-safetensors"],
    });
    io.stdout(
      `wrote ${values.out}: ${shape} (${config.num_hidden_layers} layers, hidden ${config.hidden_size}, vocab ${config.vocab_size}` +
        `${values.quantize ? ", + int8" : ""}) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    return 0;
  });
}

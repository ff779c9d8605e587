/**
 * Where the package's bundled assets are: the two default models trained by this project's scripts
 * (PubMedQA, MIT; provenance in each folder's SOURCE.md) and the demo corpus. Paths are resolved from
 * this module, so they hold in a clone (src/models) and in the installed package (dist/models) alike:
 * both sit two folders below the package root, which ships `src/assets/`.
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The bundled assets folder (`src/assets` in the package). */
export const ASSETS_DIR = join(ROOT, "src", "assets");
/** The bundled demo corpus: 1,000 PubMedQA abstracts and 500 test questions (BEIR layout, MIT). */
export const DEMO_DATASET = join(ASSETS_DIR, "pubmedqa");
/**
 * The shipped DPR model folder (hidden 128 × 2 layers, trained from scratch on PubMedQA):
 * `new DPREmbeddings({ modelPath: DEFAULT_DPR_MODEL })`.
 */
export const DEFAULT_DPR_MODEL = join(ASSETS_DIR, "models", "dpr-pubmedqa");
/** The shipped cross-encoder folder: `new CrossEncoderReranker({ modelPath: DEFAULT_CROSS_ENCODER })`. */
export const DEFAULT_CROSS_ENCODER = join(ASSETS_DIR, "models", "cross-encoder-pubmedqa");

/**
 * The optional peer dependencies of langchain-dpr, by feature, and the one check that names the
 * `npm install` command when a feature's packages are missing. The main entry (retrieval) needs none
 * of them; training, the HTTP server and report plots each need their own.
 */
import { createRequire } from "node:module";

/** Optional peers per feature, as `name@range` (the range this package is tested with). */
export const OPTIONAL_PEERS: Readonly<Record<"training" | "webgpu" | "server" | "plots" | "pgvector", readonly string[]>> = {
  /** TF.js training (dual encoders, cross-encoders, the GPU check). Mining needs none: it runs on onnxruntime. */
  training: [
    "@tensorflow/tfjs@4.22.0",
    "@tensorflow/tfjs-core@4.22.0",
    "@tensorflow/tfjs-backend-cpu@4.22.0",
    "@tensorflow/tfjs-backend-wasm@4.22.0",
  ],
  /** Training on a GPU through WebGPU (Dawn). */
  webgpu: ["webgpu@0.6.2", "@tensorflow/tfjs-backend-webgpu@4.22.0"],
  /** The HTTP retrieval server. */
  server: ["fastify@^5.12.8"],
  /** SVG plots in evaluation reports. */
  plots: ["vega@^6.4.0", "vega-lite@^6.4.3"],
  /**
   * PostgreSQL + pgvector through LangChain's PGVectorStore (langchain-dpr/pgvector). @langchain/community
   * is not declared a peer in package.json: its own optional peers (TF.js 3, ...) would conflict with
   * ours in a user's `npm install`; this check names it instead.
   */
  pgvector: ["@langchain/community@^1.1.29", "pg@^8.23.1"],
};

/** A feature of {@link OPTIONAL_PEERS}. */
export type OptionalFeature = keyof typeof OPTIONAL_PEERS;

const require = createRequire(import.meta.url);

function packageName(spec: string): string {
  const at = spec.lastIndexOf("@");
  return at > 0 ? spec.slice(0, at) : spec;
}

/** Whether a package can be resolved from this module. */
export function isInstalled(name: string): boolean {
  try {
    require.resolve(`${name}/package.json`);
    return true;
  } catch {
    try {
      require.resolve(name);
      return true;
    } catch {
      return false;
    }
  }
}

/** The packages of `feature` that are not installed, as `name@range`. */
export function missingPeers(feature: OptionalFeature): string[] {
  return OPTIONAL_PEERS[feature].filter((spec) => !isInstalled(packageName(spec)));
}

/** `npm install <specs>` for the missing packages of `feature`, or undefined when none is missing. */
export function installCommand(feature: OptionalFeature): string | undefined {
  const missing = missingPeers(feature);
  return missing.length === 0 ? undefined : `npm install ${missing.join(" ")}`;
}

/**
 * Throws when a package of `feature` is missing, naming the caller, the feature and the command.
 * @example assertPeers("training", "langchain-dpr train")
 * // Error: langchain-dpr train needs the training packages ...: npm install @tensorflow/tfjs@4.22.0 ...
 */
export function assertPeers(feature: OptionalFeature, who: string): void {
  const command = installCommand(feature);
  if (command !== undefined) {
    throw new Error(`${who} needs the optional ${feature} packages, which are not installed: ${command}`);
  }
}

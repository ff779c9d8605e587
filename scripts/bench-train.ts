/**
 * Training speed of a DPR dual encoder per TF.js backend, stock vs engineered, in one process.
 *
 *   npx tsx scripts/bench-train.ts [--configs a,b] [--modes cpu,wasm-stock,wasm-fast] [--batch 32]
 *       [--qlen 32] [--plen 128] [--steps 5] [--warm 1] [--slow-steps 2] [--threads 1] [--json out.json]
 *
 * Configs: a = hidden 128, 2 layers, 2 heads, FFN 512; b = hidden 256, 4 layers, 4 heads, FFN 1024
 * (vocab 8192, 128 positions). Modes:
 *   cpu         TF.js cpu backend, stock ops
 *   cpu-fast    cpu backend with the custom-gradient fast paths
 *   wasm-stock  wasm backend as shipped (stock kernels, stock ops)
 *   wasm-kernel wasm with the fast BatchMatMul kernel only (stock ops)
 *   wasm-fast   wasm engineered: fast kernel + custom-gradient dense / attention
 * Every mode embeds with the scatterND gradient: TF.js's stock gather gradient needs
 * UnsortedSegmentSum, which the wasm backend does not have at all.
 * Reports the median wall and process-CPU time per step of `--steps` steps after `--warm` warm-up steps (`--slow-steps` for the
 * slow stock modes), the speed-up over each backend's stock mode and the losses (identical start
 * weights and batch, so the first losses must agree across modes).
 */
import { cpus, loadavg } from "node:os";
import { writeFileSync } from "node:fs";
import { selectBackend, type BackendChoice } from "../src/training/backend.js";
import { BertEncoderTF } from "../src/training/bert-tf.js";
import { dualEncoderTrainStep, type DualEncoderBatch } from "../src/training/loss.js";
import type { BertConfig } from "../src/models/types.js";
import { syntheticRows as randomRows } from "../src/training/gpu-check.js";

const CONFIGS: Record<string, BertConfig> = {
  a: bertConfig(128, 2, 2, 512),
  b: bertConfig(256, 4, 4, 1024),
};

function bertConfig(hidden: number, layers: number, heads: number, ffn: number): BertConfig {
  return {
    vocab_size: 8192,
    hidden_size: hidden,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    intermediate_size: ffn,
    max_position_embeddings: 128,
    type_vocab_size: 2,
    layer_norm_eps: 1e-12,
    hidden_act: "gelu",
    hidden_dropout_prob: 0.1,
    attention_probs_dropout_prob: 0.1,
  };
}

interface Mode {
  backend: BackendChoice;
  fastKernels: boolean;
  fastOps: boolean;
  slow: boolean;
}
const MODES: Record<string, Mode> = {
  cpu: { backend: "cpu", fastKernels: false, fastOps: false, slow: true },
  "cpu-fast": { backend: "cpu", fastKernels: false, fastOps: true, slow: true },
  "wasm-stock": { backend: "wasm", fastKernels: false, fastOps: false, slow: true },
  "wasm-kernel": { backend: "wasm", fastKernels: true, fastOps: false, slow: false },
  "wasm-fast": { backend: "wasm", fastKernels: true, fastOps: true, slow: false },
};

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

async function main(): Promise<void> {
  const configs = arg("configs", "a,b").split(",");
  const modes = arg("modes", "cpu,wasm-stock,wasm-fast").split(",");
  const B = Number(arg("batch", "32"));
  const qLen = Number(arg("qlen", "32"));
  const pLen = Number(arg("plen", "128"));
  const steps = Number(arg("steps", "5"));
  const slowSteps = Number(arg("slow-steps", "2"));
  const warm = Number(arg("warm", "1"));
  const threads = Number(arg("threads", "1"));
  const jsonOut = process.argv.includes("--json") ? arg("json", "") : "";
  for (const m of modes) if (!MODES[m]) throw new Error(`bench-train: unknown mode '${m}'; expected ${Object.keys(MODES).join(", ")}`);
  for (const c of configs) if (!CONFIGS[c]) throw new Error(`bench-train: unknown config '${c}'; expected a, b`);
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? "?"}, load ${loadavg()[0].toFixed(2)}; batch ${B}, ` +
      `q ${qLen} / p ${pLen} tokens, threads ${threads}`,
  );
  const results: Record<string, unknown>[] = [];
  for (const cname of configs) {
    const config = CONFIGS[cname];
    const batch: DualEncoderBatch = {
      questions: randomRows(B, qLen, 8, config.vocab_size, 7),
      passages: randomRows(B, pLen, 64, config.vocab_size, 8),
    };
    const stockMs: Record<string, number> = {};
    for (const mname of modes) {
      const mode = MODES[mname];
      const { tf, info } = await selectBackend({ prefer: mode.backend, fastKernels: mode.fastKernels, threads, log: false });
      const fast = { fastDense: mode.fastOps, fastAttention: mode.fastOps, scatterEmbedding: true };
      const q = BertEncoderTF.fromConfig(config, { ...fast, name: "q", initSeed: 1, seed: 11 });
      const p = BertEncoderTF.fromConfig(config, { ...fast, name: "p", initSeed: 2, seed: 12 });
      const optimizer = tf.train.adam(1e-4);
      const n = mode.slow ? slowSteps : steps;
      const times: number[] = [];
      const cpuTimes: number[] = []; // process CPU time per step: less sensitive to other load than wall time
      const losses: number[] = [];
      const la0 = loadavg()[0];
      for (let i = 0; i < warm + n; i++) {
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        losses.push(await dualEncoderTrainStep({ questionEncoder: q, passageEncoder: p, optimizer, batch }));
        const c = process.cpuUsage(c0);
        if (i >= warm) {
          times.push(performance.now() - t0);
          cpuTimes.push((c.user + c.system) / 1000);
        }
      }
      const ms = median(times);
      const backendStock = mode.backend === "wasm" ? "wasm-stock" : "cpu";
      if (mname === backendStock) stockMs[mode.backend] = ms;
      const row = {
        config: cname,
        mode: mname,
        params: q.parameterCount,
        simd: info.simd,
        threads: info.threads,
        msPerStep: Math.round(ms),
        cpuMsPerStep: Math.round(median(cpuTimes)),
        stepsPerSec: +(1000 / ms).toFixed(3),
        speedupVsStockSameBackend: stockMs[mode.backend] ? +(stockMs[mode.backend] / ms).toFixed(2) : undefined,
        speedupVsCpu: stockMs.cpu ? +(stockMs.cpu / ms).toFixed(2) : undefined,
        losses: losses.map((l) => +l.toFixed(4)),
        steps: n,
        rssMB: Math.round(process.memoryUsage().rss / 1e6),
        load: [+la0.toFixed(2), +loadavg()[0].toFixed(2)],
      };
      results.push(row);
      console.log(JSON.stringify(row));
      q.dispose();
      p.dispose();
      optimizer.dispose();
    }
  }
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(results, null, 2));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

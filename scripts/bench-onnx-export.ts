/**
 * Measures the ONNX writer's output on random BERT-shaped encoders (not a test):
 *  - export time and file sizes (fp32 and int8),
 *  - session load time and RSS, each in a fresh child process,
 *  - latency: one 32-token query (p50 over many runs) and a 32 x 256 batch (passages/s), fp32 and
 *    int8 alternated in the same process so their ratio is fair on a noisy machine,
 *  - int8 accuracy: max abs error and cosine of pooled (CLS) vectors vs fp32.
 *
 * Usage: npx tsx scripts/bench-onnx-export.ts [--shapes base,minilm,tiny] [--threads 2] [--query-runs 50]
 *        [--batch-runs 3] [--batch-warmup 1]
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { BERT_BASE_CONFIG, MINILM_L6_CONFIG, tinyBertConfig } from "../src/models/config.js";
import { exportBertOnnx } from "../src/models/onnx/bert-graph.js";
import type { BertConfig } from "../src/models/types.js";
import { randomBertWeights } from "../src/models/weights.js";
import { seededUniform } from "../src/utils/random.js";

const args = process.argv.slice(2);
const arg = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const threads = Number(arg("threads", "2"));

/** A batch of random token ids ([CLS] ... [SEP]), rows padded to `seq` with given real lengths. */
function makeFeeds(vocab: number, lengths: number[], seq: number, seed: number): Record<string, ort.Tensor> {
  const rand = seededUniform(seed);
  const low = Math.min(1000, Math.floor(vocab / 2));
  const ids = new BigInt64Array(lengths.length * seq);
  const mask = new BigInt64Array(lengths.length * seq);
  lengths.forEach((len, r) => {
    for (let s = 0; s < len; s++) {
      ids[r * seq + s] = BigInt(s === 0 ? 101 : s === len - 1 ? 102 : low + Math.floor(rand() * (vocab - low)));
      mask[r * seq + s] = 1n;
    }
  });
  const dims = [lengths.length, seq];
  return {
    input_ids: new ort.Tensor("int64", ids, dims),
    attention_mask: new ort.Tensor("int64", mask, dims),
    token_type_ids: new ort.Tensor("int64", new BigInt64Array(lengths.length * seq), dims),
  };
}

const sessionOptions = (): ort.InferenceSession.SessionOptions => ({
  graphOptimizationLevel: "all",
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
});

/** Child mode: load one model in a fresh process, report load time and RSS as JSON. */
async function childLoad(modelPath: string, vocab: number): Promise<void> {
  const rssBefore = process.memoryUsage().rss;
  const start = performance.now();
  const session = await ort.InferenceSession.create(modelPath, sessionOptions());
  const loadMs = performance.now() - start;
  const rssAfterLoad = process.memoryUsage().rss;
  await session.run(makeFeeds(vocab, [32], 32, 1));
  const rssAfterRun = process.memoryUsage().rss;
  process.stdout.write(JSON.stringify({ loadMs, rssBefore, rssAfterLoad, rssAfterRun }) + "\n");
}

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

/** One exported variant: a label and its model path. */
interface Variant {
  name: string;
  path: string;
}

async function benchShape(label: string, config: BertConfig, batchSeq: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), `bench-onnx-${label}-`));
  try {
    let t = performance.now();
    const weights = randomBertWeights(config, { seed: 1 });
    const initMs = performance.now() - t;
    t = performance.now();
    const fused = await exportBertOnnx(join(dir, "fused"), config, weights, { quantize: true, fused: true });
    const exportMs = performance.now() - t;
    const standard = await exportBertOnnx(join(dir, "standard"), config, weights, { quantize: true, fused: false });
    const size = async (p: string) => (await stat(p)).size + (await stat(`${p}.data`)).size;
    console.log(
      `\n## ${label}: ${config.num_hidden_layers} layers, hidden ${config.hidden_size}, ${config.num_attention_heads} ` +
        `heads, ffn ${config.intermediate_size}, vocab ${config.vocab_size}`,
    );
    console.log(
      `random init ${initMs.toFixed(0)} ms; export fp32+int8 ${exportMs.toFixed(0)} ms; fp32 ` +
        `${((await size(fused.modelPath)) / 2 ** 20).toFixed(1)} MiB, int8 ` +
        `${((await size(fused.quantizedPath!)) / 2 ** 20).toFixed(1)} MiB (model.onnx + .data)`,
    );

    // Baseline first: the plain standard-op fp32 graph.
    const variants: Variant[] = [
      { name: "standard fp32", path: standard.modelPath },
      { name: "fused fp32", path: fused.modelPath },
      { name: "standard int8", path: standard.quantizedPath! },
      { name: "fused int8", path: fused.quantizedPath! },
    ];
    const mib = (b: number) => (b / 2 ** 20).toFixed(0);
    for (const v of variants) {
      const child = spawnSync(
        process.execPath,
        [
          ...process.execArgv,
          fileURLToPath(import.meta.url),
          "--child-load",
          v.path,
          String(config.vocab_size),
          "--threads",
          String(threads),
        ],
        { encoding: "utf8" },
      );
      const line = child.stdout.trim().split("\n").pop() ?? "";
      if (child.status !== 0 || !line.startsWith("{")) throw new Error(`bench: child load of ${v.path} failed: ${child.stderr}`);
      const r = JSON.parse(line) as { loadMs: number; rssBefore: number; rssAfterLoad: number; rssAfterRun: number };
      console.log(
        `load ${v.name}: ${r.loadMs.toFixed(0)} ms, RSS ${mib(r.rssBefore)} -> ${mib(r.rssAfterLoad)} MiB after load, ` +
          `${mib(r.rssAfterRun)} MiB after one query (fresh process)`,
      );
    }

    const sessions = [];
    for (const v of variants) sessions.push(await ort.InferenceSession.create(v.path, sessionOptions()));
    // Accuracy vs the standard fp32 graph: 16 inputs of varied lengths, padded to 64.
    const lengths = Array.from({ length: 16 }, (_, i) => 8 + i * 3);
    const accFeeds = makeFeeds(config.vocab_size, lengths, 64, 7);
    const outs = [];
    for (const s of sessions) outs.push(await s.run(accFeeds));
    const H = config.hidden_size;
    const a = outs[0].pooler_output.data as Float32Array;
    // Random models give CLS vectors that are nearly identical across inputs, so plain cosine is
    // flattering: also compare after removing the fp32 mean vector (what distinguishes inputs).
    const mean = new Float32Array(H);
    lengths.forEach((_, r) => {
      for (let h = 0; h < H; h++) mean[h] += a[r * H + h] / lengths.length;
    });
    const centred = (v: Float32Array, r: number) => v.subarray(r * H, (r + 1) * H).map((x, h) => x - mean[h]);
    const stats = (xs: number[]) => `min ${Math.min(...xs).toFixed(5)} mean ${(xs.reduce((x, y) => x + y, 0) / xs.length).toFixed(5)}`;
    console.log(`fp32 cosine between two different inputs' CLS vectors: ${cosine(a.subarray(0, H), a.subarray(H, 2 * H)).toFixed(4)}`);
    for (let m = 1; m < variants.length; m++) {
      const b = outs[m].pooler_output.data as Float32Array;
      let maxErr = 0;
      for (let i = 0; i < a.length; i++) maxErr = Math.max(maxErr, Math.abs(a[i] - b[i]));
      const cos = lengths.map((_, r) => cosine(a.subarray(r * H, (r + 1) * H), b.subarray(r * H, (r + 1) * H)));
      const cosC = lengths.map((_, r) => cosine(centred(a, r), centred(b, r)));
      console.log(
        `accuracy ${variants[m].name} vs standard fp32, pooled CLS of 16 inputs (8..53 tokens): max abs err ` +
          `${maxErr.toExponential(2)}, cosine ${stats(cos)}, mean-centred cosine ${stats(cosC)}`,
      );
    }

    // Latency: variants interleaved run by run so all see the same machine load.
    const queryRuns = Number(arg("query-runs", "50"));
    const query = makeFeeds(config.vocab_size, [32], 32, 3);
    const qTimes: number[][] = variants.map(() => []);
    for (let i = 0; i < 3; i++) for (const s of sessions) await s.run(query);
    for (let i = 0; i < queryRuns; i++) {
      for (let m = 0; m < sessions.length; m++) {
        const t0 = performance.now();
        await sessions[m].run(query);
        qTimes[m].push(performance.now() - t0);
      }
    }
    const batchRuns = Number(arg("batch-runs", "3"));
    const batch = makeFeeds(config.vocab_size, Array(32).fill(batchSeq), batchSeq, 5);
    const bTimes: number[][] = variants.map(() => []);
    const batchWarmup = Number(arg("batch-warmup", "1"));
    for (let i = 0; i < batchWarmup; i++) for (const s of sessions) await s.run(batch);
    for (let i = 0; i < batchRuns; i++) {
      for (let m = 0; m < sessions.length; m++) {
        const t0 = performance.now();
        await sessions[m].run(batch);
        bTimes[m].push(performance.now() - t0);
      }
    }
    const p50 = qTimes.map((x) => percentile(x, 0.5));
    const pps = bTimes.map((x) => (32 * 1000) / percentile(x, 0.5));
    console.log(
      `latency, ${threads} intra-op threads: query 1x32 p50 of ${queryRuns} runs; batch 32x${batchSeq} median of ` +
        `${batchRuns} runs after ${batchWarmup} warm-up`,
    );
    variants.forEach((v, m) =>
      console.log(
        `  ${v.name.padEnd(14)} query ${p50[m].toFixed(1)} ms (x${(p50[0] / p50[m]).toFixed(2)} vs standard fp32)   ` +
          `batch ${pps[m].toFixed(1)} passages/s (x${(pps[m] / pps[0]).toFixed(2)})`,
      ),
    );
    for (const s of sessions) await s.release();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (args[0] === "--child-load") {
  await childLoad(args[1], Number(args[2]));
} else {
  const shapes = arg("shapes", "base,minilm").split(",");
  console.log(
    `# bench-onnx-export: onnxruntime-node ${ort.env.versions.common}, node ${process.version}, ${threads} intra-op ` +
      `threads, ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), load average ${loadavg()
        .map((x) => x.toFixed(1))
        .join(" ")}`,
  );
  for (const shape of shapes) {
    if (shape === "base") await benchShape("bert-base", BERT_BASE_CONFIG, 256);
    else if (shape === "minilm") await benchShape("minilm-l6", MINILM_L6_CONFIG, 256);
    else if (shape === "tiny") await benchShape("tiny", tinyBertConfig(), 64);
    else throw new Error(`bench: unknown shape '${shape}' (base, minilm, tiny)`);
  }
}

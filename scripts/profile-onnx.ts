/**
 * Where one query's time goes inside onnxruntime for a graph written by exportBertOnnx: a random
 * encoder of the given shape, ONE session (no other session's thread pool competing), a fixed
 * number of single-query runs, onnxruntime's own profiler, and the kernel time per operator type.
 *
 *   npx tsx scripts/profile-onnx.ts [--shape minilm|base|tiny] [--tokens 32] [--runs 30] [--threads 2] [--fused]
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { BERT_BASE_CONFIG, MINILM_L6_CONFIG, tinyBertConfig } from "../src/models/config.js";
import { exportBertOnnx } from "../src/models/onnx/bert-graph.js";
import { randomBertWeights } from "../src/models/weights.js";

const { values } = parseArgs({
  options: {
    shape: { type: "string", default: "minilm" },
    tokens: { type: "string", default: "32" },
    runs: { type: "string", default: "30" },
    threads: { type: "string", default: "2" },
    fused: { type: "boolean", default: false },
  },
});
const base = values.shape === "base" ? BERT_BASE_CONFIG : values.shape === "tiny" ? tinyBertConfig() : MINILM_L6_CONFIG;
const config = { ...base, vocab_size: values.shape === "tiny" ? base.vocab_size : 30522 };
const tokens = Number(values.tokens);
const runs = Number(values.runs);
const threads = Number(values.threads);

const dir = await mkdtemp(join(tmpdir(), "profile-onnx-"));
try {
  await exportBertOnnx(dir, config, randomBertWeights(config, { seed: 1 }), { pooler: "cls", fused: values.fused });
  const session = await ort.InferenceSession.create(join(dir, "model.onnx"), {
    graphOptimizationLevel: "all",
    intraOpNumThreads: threads,
    enableProfiling: true,
    profileFilePrefix: join(dir, "profile"),
  });
  const ids = BigInt64Array.from({ length: tokens }, (_, i) => BigInt(100 + i));
  const feeds = {
    input_ids: new ort.Tensor("int64", ids, [1, tokens]),
    attention_mask: new ort.Tensor("int64", new BigInt64Array(tokens).fill(1n), [1, tokens]),
    token_type_ids: new ort.Tensor("int64", new BigInt64Array(tokens), [1, tokens]),
  };
  for (let i = 0; i < 5; i++) await session.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t);
  }
  session.endProfiling();
  await session.release();
  times.sort((a, b) => a - b);
  console.log(
    `${values.shape}${values.fused ? " (fused)" : ""}: ${config.num_hidden_layers} layers x ${config.hidden_size}, ` +
      `${tokens} tokens, ${threads} threads: ` +
      `p50 ${times[Math.floor(runs / 2)]!.toFixed(2)} ms over ${runs} runs (one session)`,
  );
  const file = (await readdir(dir)).find((f) => f.startsWith("profile") && f.endsWith(".json"));
  if (file) {
    const events = JSON.parse(await readFile(join(dir, file), "utf8")) as Array<{
      cat?: string;
      name: string;
      dur: number;
      args?: { op_name?: string };
    }>;
    const byOp = new Map<string, { us: number; n: number }>();
    for (const e of events) {
      if (e.cat !== "Node" || !e.name.endsWith("_kernel_time")) continue;
      const op = e.args?.op_name ?? "?";
      const s = byOp.get(op) ?? { us: 0, n: 0 };
      s.us += e.dur;
      s.n++;
      byOp.set(op, s);
    }
    const total = [...byOp.values()].reduce((a, s) => a + s.us, 0);
    const all = runs + 5;
    console.log(`kernel time per run ${(total / all / 1000).toFixed(2)} ms, by operator type:`);
    for (const [op, s] of [...byOp].sort((a, b) => b[1].us - a[1].us).slice(0, 12)) {
      console.log(
        `  ${op.padEnd(28)} ${(s.us / all / 1000).toFixed(3)} ms  ${((100 * s.us) / total).toFixed(1)}%  ` +
          `(${Math.round(s.n / all)} per run)`,
      );
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

/**
 * Peak memory and time of loading a BERT-base-sized checkpoint (109.5M float32 parameters, 438 MB):
 * pytorch_model.bin in the zip and legacy formats (and the zip format in float16, widened to float32)
 * through src/models/pytorch, against the same weights as model.safetensors through the existing
 * reader (the baseline), each in a fresh child process (peak RSS = process.resourceUsage().maxRSS),
 * plus an empty child (Node's own footprint). Ratios are to the float32 bytes the load returns.
 *
 *   npx tsx scripts/bench-torch-load.ts [DIR] [--runs 2]        (DIR default .cache/bench-torch)
 *
 * The checkpoints are generated once with Debian's python3-torch (/usr/bin/python3) into DIR (not
 * committed; ~1.5 GB); random weights of bert-base-uncased's shapes.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { dir: { type: "string" }, runs: { type: "string", default: "2" } },
});
const dir = resolve(positionals[0] ?? values.dir ?? ".cache/bench-torch");
const runs = Number(values.runs);
mkdirSync(dir, { recursive: true });

const GENERATE = `
import json, struct, torch
torch.manual_seed(0)
H, L, F, V, P = 768, 12, 3072, 30522, 512
sd = {"embeddings.word_embeddings.weight": torch.randn(V, H), "embeddings.position_embeddings.weight": torch.randn(P, H),
      "embeddings.token_type_embeddings.weight": torch.randn(2, H), "embeddings.LayerNorm.weight": torch.ones(H),
      "embeddings.LayerNorm.bias": torch.zeros(H), "embeddings.position_ids": torch.arange(P).unsqueeze(0)}
for l in range(L):
    p = f"encoder.layer.{l}."
    for n, shape in [("attention.self.query", (H, H)), ("attention.self.key", (H, H)), ("attention.self.value", (H, H)),
                     ("attention.output.dense", (H, H)), ("intermediate.dense", (F, H)), ("output.dense", (H, F))]:
        sd[p + n + ".weight"] = torch.randn(*shape) * 0.02
        sd[p + n + ".bias"] = torch.zeros(shape[0])
    for n in ["attention.output.LayerNorm", "output.LayerNorm"]:
        sd[p + n + ".weight"] = torch.ones(H); sd[p + n + ".bias"] = torch.zeros(H)
sd["pooler.dense.weight"] = torch.randn(H, H) * 0.02; sd["pooler.dense.bias"] = torch.zeros(H)
torch.save(sd, "${dir}/pytorch_model.bin")
torch.save(sd, "${dir}/pytorch_model-legacy.bin", _use_new_zipfile_serialization=False)
torch.save({k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}, "${dir}/pytorch_model-fp16.bin")
header, off = {}, 0
floats = {k: v for k, v in sd.items() if v.is_floating_point()}
for k in sorted(floats):
    n = floats[k].numel() * 4; header[k] = {"dtype": "F32", "shape": list(floats[k].shape), "data_offsets": [off, off + n]}; off += n
h = json.dumps(header).encode(); h += b" " * ((8 - (len(h) + 8) % 8) % 8)
with open("${dir}/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for k in sorted(floats): f.write(floats[k].contiguous().numpy().astype("<f4").tobytes())
print(sum(v.numel() for v in floats.values()))
`;
if (
  !["model.safetensors", "pytorch_model.bin", "pytorch_model-legacy.bin", "pytorch_model-fp16.bin"].every((f) => existsSync(join(dir, f)))
) {
  process.stderr.write(`bench-torch-load: generating a BERT-base checkpoint in ${dir} with /usr/bin/python3 (torch) ...\n`);
  writeFileSync(join(dir, "generate.py"), GENERATE);
  execFileSync("/usr/bin/python3", [join(dir, "generate.py")], { stdio: "inherit" });
}

const CHILD = (what: string, file: string) => `
const t0 = performance.now();
let n = 0;
if ("${what}" === "safetensors") {
  const { readSafetensors } = await import("${resolve("src/models/safetensors.ts")}");
  const { tensors } = await readSafetensors("${file}");
  for (const t of tensors.values()) n += t.data.length;
} else if ("${what}" !== "empty") {
  const { readTorchCheckpoint } = await import("${resolve("src/models/pytorch/index.ts")}");
  for (const t of (await readTorchCheckpoint("${file}")).values()) if (t.data instanceof Float32Array) n += t.data.length;
}
console.log(JSON.stringify({ floats: n, seconds: (performance.now() - t0) / 1000, maxRssBytes: process.resourceUsage().maxRSS * 1024 }));
`;

function child(what: string, file: string): { floats: number; seconds: number; maxRssBytes: number } {
  const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", CHILD(what, file)], { encoding: "utf8" });
  return JSON.parse(out.trim().split("\n").at(-1)!) as { floats: number; seconds: number; maxRssBytes: number };
}

const cases: [string, string, string][] = [
  ["empty child (Node + tsx)", "empty", ""],
  ["model.safetensors (baseline reader)", "safetensors", join(dir, "model.safetensors")],
  ["pytorch_model.bin, zip format", "torch", join(dir, "pytorch_model.bin")],
  ["pytorch_model.bin, legacy format", "torch", join(dir, "pytorch_model-legacy.bin")],
  ["pytorch_model.bin, zip format, float16 (widened)", "torch", join(dir, "pytorch_model-fp16.bin")],
];
const weightBytes = child("torch", join(dir, "pytorch_model.bin")).floats * 4;
console.log(
  `weights: ${(weightBytes / 1e6).toFixed(1)} MB of float32 (${weightBytes / 4} parameters); ${runs} run(s) each, fresh process per run`,
);
console.log("| load | seconds | peak RSS MB | peak RSS / weights | (peak RSS − empty child) / weights |");
console.log("|---|---:|---:|---:|---:|");
let empty = 0;
for (const [label, what, file] of cases) {
  const rs = Array.from({ length: runs }, () => child(what, file));
  const best = rs.reduce((a, b) => (b.maxRssBytes < a.maxRssBytes ? b : a));
  if (what === "empty") empty = best.maxRssBytes;
  const secs = Math.min(...rs.map((r) => r.seconds));
  console.log(
    `| ${label} | ${what === "empty" ? "–" : secs.toFixed(2)} | ${(best.maxRssBytes / 1e6).toFixed(0)} | ` +
      `${what === "empty" ? "–" : (best.maxRssBytes / weightBytes).toFixed(2)} | ` +
      `${what === "empty" ? "–" : ((best.maxRssBytes - empty) / weightBytes).toFixed(2)} |`,
  );
}

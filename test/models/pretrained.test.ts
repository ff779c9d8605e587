/**
 * Starting from published models: tiny copies of six public repositories (file names and configs as
 * published, random weights; written by scripts/gen-hub-fixtures.py with real PyTorch: legacy and zip
 * pytorch_model.bin, safetensors with an int64 buffer, sentence-transformers folders) served by a
 * loopback hub. Each loads by name with one call and gives the vectors or scores of an independent
 * float64 PyTorch forward pass (test/fixtures/hub/expected), fetching only the weights it needs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, readdir, rename, rm, writeFile, mkdir, cp } from "node:fs/promises";
import { createRandomCrossEncoder } from "../../src/testing/index.js";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { CrossEncoderReranker } from "../../src/rerankers/cross-encoder-reranker.js";
import { loadInitialModel } from "../../src/training/init.js";
import { FakeHub } from "../embeddings/fake-hub.js";

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "hub");

interface ExpectedEmbeddings {
  repo: string;
  queries: string[];
  passages: string[];
  query_prefix: string;
  passage_prefix: string;
  pooling: string;
  normalize: boolean;
  query_vectors: number[][];
  passage_vectors: number[][];
}
interface ExpectedScores {
  repo: string;
  pairs: [string, string][];
  scores: number[];
  label_index: number;
}

async function expected<T>(name: string): Promise<T> {
  return JSON.parse(await readFile(join(FIXTURES, "expected", `${name}.json`), "utf8")) as T;
}

function close(got: ArrayLike<number>, want: number[], tol = 1e-4): void {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  expect(worst).toBeLessThan(tol);
}

const hub = new FakeHub();
let root: string;
let cacheDir: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "dpr-pretrained-"));
  cacheDir = join(root, "cache");
  for (const d of await readdir(FIXTURES, { withFileTypes: true })) {
    if (!d.isDirectory() || d.name === "expected") continue;
    hub.repos.set(d.name.replace("--", "/"), join(FIXTURES, d.name));
  }
  await hub.start();
});

afterAll(async () => {
  await hub.stop();
  await rm(root, { recursive: true, force: true });
});

const fetchedFrom = (repo: string) =>
  hub.requests.filter((u) => u.includes(`/${repo}/resolve/`)).map((u) => u.slice(u.indexOf("/resolve/") + "/resolve/main/".length));

describe("loading published models by name", () => {
  it(
    "facebook DPR (legacy pytorch_model.bin, DPR tensor names, DPRConfig) as a question/passage pair: CLS vectors, raw " +
      "dot products; tf_model.h5 never fetched",
    async () => {
      const q = await expected<ExpectedEmbeddings>("facebook--dpr-question_encoder-single-nq-base");
      const p = await expected<ExpectedEmbeddings>("facebook--dpr-ctx_encoder-single-nq-base");
      const emb = await DPREmbeddings.fromPretrained(
        { question: "facebook/dpr-question_encoder-single-nq-base", passage: "facebook/dpr-ctx_encoder-single-nq-base" },
        { endpoint: hub.endpoint, cacheDir },
      );
      try {
        for (const [i, text] of q.queries.entries()) close(await emb.embedQuery(text), q.query_vectors[i]!);
        const vectors = await emb.embedDocuments(p.passages);
        p.passage_vectors.forEach((v, i) => close(vectors[i]!, v));
      } finally {
        await emb.dispose();
      }
      for (const repo of ["facebook/dpr-question_encoder-single-nq-base", "facebook/dpr-ctx_encoder-single-nq-base"]) {
        const files = fetchedFrom(repo);
        expect(files).toContain("pytorch_model.bin");
        expect(files).not.toContain("tf_model.h5");
      }
    },
  );

  for (const [name, repo, pooling, normalize] of [
    ["BAAI--bge-small-en-v1.5", "BAAI/bge-small-en-v1.5", "cls", true],
    ["intfloat--e5-small-v2", "intfloat/e5-small-v2", "mean", true],
    ["sentence-transformers--msmarco-bert-base-dot-v5", "sentence-transformers/msmarco-bert-base-dot-v5", "mean", false],
  ] as const) {
    it(
      `${repo} (sentence-transformers layout): ${pooling} pooling${normalize ? " + Normalize" : ", raw dot products"}, ` +
        `as sentence-transformers embeds`,
      async () => {
        const e = await expected<ExpectedEmbeddings>(name);
        expect([e.pooling, e.normalize]).toEqual([pooling, normalize]);
        const emb = await DPREmbeddings.fromPretrained(repo, { endpoint: hub.endpoint, cacheDir });
        try {
          await emb.ready();
          expect(emb.pooling).toBe(pooling);
          expect(emb.normalize).toBe(normalize);
          for (const [i, text] of e.queries.entries()) close(await emb.embedQuery(text), e.query_vectors[i]!);
          const vectors = await emb.embedDocuments(e.passages);
          e.passage_vectors.forEach((v, i) => close(vectors[i]!, v));
        } finally {
          await emb.dispose();
        }
        const files = fetchedFrom(repo);
        const weights = files.filter((f) => /\.(bin|safetensors)$/.test(f));
        expect(weights).toHaveLength(1); // one weights source: safetensors when published, else the .bin
        if (files.includes("model.safetensors")) expect(files).not.toContain("pytorch_model.bin");
      },
    );
  }

  it("intfloat/e5-small-v2 with its query: / passage: prefixes passed as prompts", async () => {
    const e = await expected<ExpectedEmbeddings>("intfloat--e5-small-v2.prefixed");
    expect([e.query_prefix, e.passage_prefix]).toEqual(["query: ", "passage: "]);
    const emb = await DPREmbeddings.fromPretrained("intfloat/e5-small-v2", {
      endpoint: hub.endpoint,
      cacheDir,
      queryPrompt: "query: ",
      passagePrompt: "passage: ",
    });
    try {
      for (const [i, text] of e.queries.entries()) close(await emb.embedQuery(text), e.query_vectors[i]!);
      const vectors = await emb.embedDocuments(e.passages);
      e.passage_vectors.forEach((v, i) => close(vectors[i]!, v));
    } finally {
      await emb.dispose();
    }
  });

  for (const [name, repo] of [
    ["cross-encoder--ms-marco-MiniLM-L-6-v2", "cross-encoder/ms-marco-MiniLM-L-6-v2"],
    ["test-org--two-label-cross-encoder", "test-org/two-label-cross-encoder"],
  ] as const) {
    it(`${repo}: the cross-encoder's scores (one logit, or the positive class of two)`, async () => {
      const e = await expected<ExpectedScores>(name);
      const reranker = await CrossEncoderReranker.fromPretrained(repo, { endpoint: hub.endpoint, cacheDir });
      try {
        const byQuery = new Map<string, { texts: string[]; scores: number[] }>();
        e.pairs.forEach(([q, p], i) => {
          const entry = byQuery.get(q) ?? { texts: [], scores: [] };
          entry.texts.push(p);
          entry.scores.push(e.scores[i]!);
          byQuery.set(q, entry);
        });
        for (const [q, { texts, scores }] of byQuery) close(await reranker.scorePairs(q, texts), scores);
      } finally {
        await reranker.dispose();
      }
    });
  }

  it("fine-tuning starts from a hub id: weights, tokenizer and the source's settings (pooling, normalisation)", async () => {
    const init = await loadInitialModel("BAAI/bge-small-en-v1.5", { endpoint: hub.endpoint, cacheDir });
    expect(init.config.hidden_size).toBe(32);
    expect(init.question.has("encoder.layer.0.attention.self.query.weight")).toBe(true);
    expect(init.question.has("embeddings.position_ids")).toBe(false);
    expect(init.settings).toMatchObject({ pooling: "cls", normalize: true, titleJoin: "space" });
    expect(init.tokenizer.encode("insulin treatment", null).inputIds.length).toBe(4);
    const dpr = await loadInitialModel("facebook/dpr-question_encoder-single-nq-base", { endpoint: hub.endpoint, cacheDir });
    expect(dpr.settings).toMatchObject({ pooling: "cls", normalize: false });
  });

  it("fine-tuned from bge by hub id, the exported model keeps bge's CLS pooling, Normalize and title joining", async () => {
    const beir = join(root, "beir");
    await mkdir(join(beir, "qrels"), { recursive: true });
    const docs = [
      "insulin lowers blood sugar",
      "fever in children is often viral",
      "vaccines train the immune system",
      "diet and exercise help diabetes",
    ];
    await writeFile(join(beir, "corpus.jsonl"), docs.map((text, i) => JSON.stringify({ _id: `d${i}`, title: "", text })).join("\n") + "\n");
    await writeFile(
      join(beir, "queries.jsonl"),
      docs.map((text, i) => JSON.stringify({ _id: `q${i}`, text: text.split(" ").slice(0, 2).join(" ") })).join("\n") + "\n",
    );
    await writeFile(
      join(beir, "qrels", "train.tsv"),
      "query-id\tcorpus-id\tscore\n" + docs.map((_, i) => `q${i}\td${i}\t1`).join("\n") + "\n",
    );
    const out = join(root, "ft-bge");
    const { runTrainCli } = await import("../../src/training/cli.js");
    let errors = "";
    const quiet = {
      stdout: () => {},
      stderr: (t: string) => {
        errors += t;
      },
    };
    // The CLI reaches the hub through the environment, as a user's shell would.
    const saved = { endpoint: process.env.HF_ENDPOINT, cache: process.env.LANGCHAIN_DPR_CACHE };
    process.env.HF_ENDPOINT = hub.endpoint;
    process.env.LANGCHAIN_DPR_CACHE = cacheDir;
    let code: number;
    try {
      code = await runTrainCli(
        [
          "--data",
          beir,
          "--out",
          out,
          "--init",
          "BAAI/bge-small-en-v1.5",
          "--batch",
          "4",
          "--max-steps",
          "1",
          "--backend",
          "wasm",
          "--no-progress",
          "--temperature",
          "0.05",
        ],
        {},
        quiet,
      );
    } finally {
      if (saved.endpoint === undefined) delete process.env.HF_ENDPOINT;
      else process.env.HF_ENDPOINT = saved.endpoint;
      if (saved.cache === undefined) delete process.env.LANGCHAIN_DPR_CACHE;
      else process.env.LANGCHAIN_DPR_CACHE = saved.cache;
    }
    expect(code, errors).toBe(0);
    const dprConfig = JSON.parse(await readFile(join(out, "model", "dpr_config.json"), "utf8")) as Record<string, unknown>;
    expect(dprConfig).toMatchObject({ pooling: "cls", normalize: true, titleJoin: "space" });
    const emb = new DPREmbeddings({ modelPath: join(out, "model") });
    try {
      const v = await emb.embedQuery("insulin treatment");
      expect(Math.hypot(...v)).toBeCloseTo(1, 5); // normalised, as bge
    } finally {
      await emb.dispose();
    }
  });

  it("an ONNX-only repository (onnx/model.onnx with a logits output) serves as a cross-encoder", async () => {
    const dir = join(root, "onnx-only");
    await createRandomCrossEncoder(dir, {
      shape: "tiny",
      texts: ["insulin lowers blood sugar", "fever in children"],
      vocabSize: 60,
      safetensors: false,
    });
    await mkdir(join(dir, "onnx"));
    for (const f of await readdir(dir)) if (f.startsWith("model.onnx")) await rename(join(dir, f), join(dir, "onnx", f));
    hub.repos.set("acme/onnx-only-reranker", dir);
    const reranker = await CrossEncoderReranker.fromPretrained("acme/onnx-only-reranker", { endpoint: hub.endpoint, cacheDir });
    try {
      const scores = await reranker.scorePairs("insulin", ["insulin lowers blood sugar", "fever in children"]);
      expect(scores).toHaveLength(2);
      expect(scores.every(Number.isFinite)).toBe(true);
    } finally {
      await reranker.dispose();
    }
    expect(fetchedFrom("acme/onnx-only-reranker").some((f) => f.startsWith("onnx/model.onnx"))).toBe(true);
  });

  it("refuses other architectures, naming the supported family, and a module it does not run", async () => {
    const xlmr = join(root, "xlmr");
    await mkdir(xlmr, { recursive: true });
    await cp(join(FIXTURES, "intfloat--e5-small-v2"), xlmr, { recursive: true });
    const config = JSON.parse(await readFile(join(xlmr, "config.json"), "utf8")) as Record<string, unknown>;
    await writeFile(
      join(xlmr, "config.json"),
      JSON.stringify({ ...config, model_type: "xlm-roberta", architectures: ["XLMRobertaModel"] }),
    );
    hub.repos.set("acme/xlmr", xlmr);
    await expect(DPREmbeddings.fromPretrained("acme/xlmr", { endpoint: hub.endpoint, cacheDir })).rejects.toThrow(
      /model_type 'xlm-roberta' is not supported: this project runs BERT-family encoders with a WordPiece vocabulary/,
    );
    const dense = join(root, "dense");
    await cp(join(FIXTURES, "sentence-transformers--msmarco-bert-base-dot-v5"), dense, { recursive: true });
    const modules = JSON.parse(await readFile(join(dense, "modules.json"), "utf8")) as unknown[];
    await writeFile(
      join(dense, "modules.json"),
      JSON.stringify([...modules, { idx: 2, name: "2", path: "2_Dense", type: "sentence_transformers.models.Dense" }]),
    );
    hub.repos.set("acme/dense", dense);
    await expect(DPREmbeddings.fromPretrained("acme/dense", { endpoint: hub.endpoint, cacheDir })).rejects.toThrow(
      /modules\.json\[2\] is a sentence_transformers\.models\.Dense module, which this project does not run \(supported: Transformer, Pooling, Normalize\)/,
    );
  });
});

/**
 * The package installed the way users install it: `npm pack` of this checkout (prepack builds dist/
 * and the self-contained addon), `npm install <tarball>` into a fresh app in a temporary folder (npm
 * registry only; ONNXRUNTIME_NODE_INSTALL=skip as the README says), then, inside that app and with
 * nothing from outside it: plain Node ESM imports, a FaissDPRStore with the shipped model answering
 * through a retriever in an LCEL chain, the CLI's `evaluate` on a small BEIR folder, and `ldd` of the
 * shipped addon.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Libraries Node itself needs: all the shipped addon may link. */
const ALLOWED =
  /^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libstdc\+\+\.so\.6|libgcc_s\.so\.1|\/lib64\/ld-linux-x86-64\.so\.2)$/;

const APP = `
import { Document } from "@langchain/core/documents";
import { RunnableLambda, RunnablePassthrough, RunnableSequence } from "@langchain/core/runnables";
import { DEFAULT_DPR_MODEL, DPREmbeddings, DPRRetriever, FaissDPRStore } from "langchain-dpr";
import { readFile } from "node:fs/promises";

const lines = (await readFile("beir/corpus.jsonl", "utf8")).trim().split("\\n").map((l) => JSON.parse(l));
const docs = lines.map((p) => new Document({ pageContent: p.text, metadata: { id: p._id, title: p.title } }));
const embeddings = new DPREmbeddings({ modelPath: DEFAULT_DPR_MODEL });
const store = await FaissDPRStore.fromDocuments(docs, embeddings, { factory: "Flat" });
const retriever = new DPRRetriever({ vectorStore: store, k: 3 });
const chain = RunnableSequence.from([
  { context: retriever, question: new RunnablePassthrough() },
  RunnableLambda.from(({ context, question }) => ({ question, ids: context.map((d) => d.metadata.id) })),
]);
const queries = (await readFile("beir/queries.jsonl", "utf8")).trim().split("\\n").map((l) => JSON.parse(l));
const answers = await chain.batch(queries.map((q) => q.text));
console.log(JSON.stringify({ answers, queries: queries.map((q) => q._id) }));
await embeddings.dispose?.();
`;

describe("the packed package in a fresh app", () => {
  let root: string;
  let app: string;
  let tarball: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "dpr-packed-"));
    // Pack from a copy of the checkout (its tracked and unignored files, node_modules linked): the
    // build that prepack runs then cannot race another test that builds dist/ in the checkout.
    const src = join(root, "checkout");
    await mkdir(src);
    await run("bash", ["-c", `(git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 -I{} cp --parents {} "${src}"`], {
      cwd: ROOT,
      maxBuffer: 1 << 26,
    });
    await run("ln", ["-s", join(ROOT, "node_modules"), join(src, "node_modules")]);
    const packed = await run("npm", ["pack", "--pack-destination", root, "--json"], { cwd: src, maxBuffer: 1 << 26 });
    const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as { filename: string }[];
    tarball = join(root, info[0]!.filename);
    app = join(root, "app");
    await mkdir(join(app, "beir", "qrels"), { recursive: true });
    // A small BEIR folder cut from the bundled PubMedQA demo set (MIT): 30 abstracts, their 10 questions.
    const corpus = (await readFile(join(ROOT, "src/assets/pubmedqa/corpus.jsonl"), "utf8")).trim().split("\n").slice(0, 30);
    const ids = new Set(corpus.map((l) => (JSON.parse(l) as { _id: string })._id));
    const qrels = (await readFile(join(ROOT, "src/assets/pubmedqa/qrels/test.tsv"), "utf8"))
      .trim()
      .split("\n")
      .slice(1)
      .filter((l) => ids.has(l.split("\t")[1]!))
      .slice(0, 10);
    const qids = new Set(qrels.map((l) => l.split("\t")[0]!));
    const queries = (await readFile(join(ROOT, "src/assets/pubmedqa/queries.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .filter((l) => qids.has((JSON.parse(l) as { _id: string })._id));
    await writeFile(join(app, "beir", "corpus.jsonl"), corpus.join("\n") + "\n");
    await writeFile(join(app, "beir", "queries.jsonl"), queries.join("\n") + "\n");
    await writeFile(join(app, "beir", "qrels", "test.tsv"), "query-id\tcorpus-id\tscore\n" + qrels.join("\n") + "\n");
    await writeFile(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }, null, 2));
    await writeFile(join(app, "app.mjs"), APP);
    const core = (JSON.parse(await readFile(join(ROOT, "node_modules/@langchain/core/package.json"), "utf8")) as { version: string })
      .version;
    await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball, `@langchain/core@${core}`], {
      cwd: app,
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip" },
      maxBuffer: 1 << 26,
    });
  }, 600_000);
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("holds dist, the prebuilt addon, the default models, README and LICENSE, and no build leftovers", async () => {
    const { stdout } = await run("tar", ["-tzf", tarball], { maxBuffer: 1 << 26 });
    const files = stdout
      .trim()
      .split("\n")
      .map((f) => f.replace(/^package\//, ""));
    for (const f of [
      "dist/index.js",
      "dist/index.d.ts",
      "README.md",
      "LICENSE",
      "package.json",
      "src/assets/models/dpr-pubmedqa/encoder/model.onnx",
      "src/assets/models/cross-encoder-pubmedqa/model.onnx",
    ]) {
      expect(files, f).toContain(f);
    }
    expect(files.some((f) => /^prebuilds\/linux-x64\/.*\.node$/.test(f))).toBe(true);
    expect(files.filter((f) => /\.o$|\/build\/|^test\/|\.test\.|^\.cache\/|^runs\//.test(f))).toEqual([]);
    expect(files.filter((f) => f.startsWith("src/") && f.endsWith(".ts"))).toEqual([]);
    const size = (await stat(tarball)).size;
    expect(size).toBeLessThan(40 * 1024 * 1024);
  });

  it("installs without the optional peers: no TF.js, fastify, vega or faiss-node in the app", async () => {
    const modules = await readdir(join(app, "node_modules"));
    expect(modules).toContain("langchain-dpr");
    expect(modules).toContain("onnxruntime-node");
    for (const absent of ["fastify", "vega", "vega-lite", "faiss-node"]) expect(modules).not.toContain(absent);
    expect(modules.includes("@tensorflow") ? await readdir(join(app, "node_modules/@tensorflow")) : []).toEqual([]);
  });

  it("langchain-dpr/pgvector without its optional packages fails on import with the npm install command", async () => {
    const code = "import('langchain-dpr/pgvector').then(() => console.log('loaded'), (e) => console.log(e.message))";
    const { stdout } = await run("node", ["--input-type=module", "-e", code], { cwd: app });
    expect(stdout.trim()).toMatch(
      /^langchain-dpr\/pgvector needs the optional pgvector packages, which are not installed: npm install @langchain\/community@\^1\.1\.29 pg@\^8\.23\.1$/,
    );
  });

  it("the shipped addon links only what Node itself needs", async () => {
    const dir = join(app, "node_modules/langchain-dpr/prebuilds/linux-x64");
    for (const f of await readdir(dir)) {
      if (!/\.(node|so(\.\d+)*)$/.test(f)) continue;
      const { stdout } = await run("ldd", [join(dir, f)], { env: { ...process.env, LD_LIBRARY_PATH: "" } });
      const libs = stdout
        .trim()
        .split("\n")
        .map((l) => l.trim().split(/\s+/)[0]!);
      const foreign = libs.filter((l) => !ALLOWED.test(l) && !(f !== l && /^lib.*\.so/.test(l) && stdout.includes(join(dir, l))));
      expect(foreign, `${f}:\n${stdout}`).toEqual([]);
      expect(stdout).not.toMatch(/not found/);
    }
  });

  it("plain Node ESM: a FaissDPRStore with the shipped model answers through a retriever in an LCEL chain", async () => {
    const { stdout } = await run("node", ["app.mjs"], { cwd: app, env: { ...process.env, LD_LIBRARY_PATH: "" }, maxBuffer: 1 << 24 });
    const out = JSON.parse(stdout.trim().split("\n").at(-1)!) as { answers: { question: string; ids: string[] }[]; queries: string[] };
    expect(out.answers).toHaveLength(out.queries.length);
    for (const a of out.answers) expect(a.ids).toHaveLength(3);
    // PubMedQA questions are written from their own abstract: the shipped model finds it in the top 3 for most.
    const qrels = new Map(
      (await readFile(join(app, "beir/qrels/test.tsv"), "utf8"))
        .trim()
        .split("\n")
        .slice(1)
        .map((l) => [l.split("\t")[0]!, l.split("\t")[1]!]),
    );
    const hits = out.answers.filter((a, i) => a.ids.includes(qrels.get(out.queries[i]!)!)).length;
    expect(hits / out.answers.length).toBeGreaterThan(0.5);
  });

  it("npx langchain-dpr evaluate runs on a BEIR folder with the shipped model", async () => {
    const model = join(app, "node_modules/langchain-dpr/src/assets/models/dpr-pubmedqa");
    const { stdout, stderr } = await run(
      "npx",
      [
        "--no-install",
        "langchain-dpr",
        "evaluate",
        "--dataset",
        "beir",
        "--split",
        "test",
        "--dpr",
        model,
        "--methods",
        "bm25,dpr",
        "--out",
        "eval",
        "--quiet",
      ],
      {
        cwd: app,
        env: { ...process.env, LD_LIBRARY_PATH: "" },
        maxBuffer: 1 << 24,
      },
    );
    const results = JSON.parse(await readFile(join(app, "eval", "results.json"), "utf8")) as {
      methods: { method: string; metrics: Record<string, number> }[];
    };
    expect(results.methods.map((m) => m.method)).toEqual(["bm25", "dpr"]);
    for (const m of results.methods) expect(m.metrics["ndcg@10"], stdout + stderr).toBeGreaterThan(0.3);
    const help = await run("npx", ["--no-install", "langchain-dpr", "--help"], { cwd: app });
    expect(help.stdout).toMatch(/evaluate/);
    const bad = await run("npx", ["--no-install", "langchain-dpr", "no-such-command"], { cwd: app }).then(
      () => undefined,
      (e: { code?: number }) => e,
    );
    expect(bad?.code).toBe(2);
    const train = await run("npx", ["--no-install", "langchain-dpr", "train", "--data", "beir", "--out", "run"], { cwd: app }).then(
      () => undefined,
      (e: { code?: number; stderr?: string }) => e,
    );
    expect(train?.code).toBe(1);
    expect(train?.stderr).toMatch(/npm install @tensorflow\/tfjs@4\.22\.0/);
  });
});

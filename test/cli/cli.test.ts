/**
 * The `langchain-dpr` command line: every subcommand's --help, the uniform exit codes (0 success,
 * 1 runtime error, 2 usage error), the optional-peer check before a command's module loads, and the
 * real CLI spawned as a child process end to end (make-random-model → evaluate, export).
 */
import { execFile } from "node:child_process";
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { BUILD_NATIVE_SCRIPT, runBuildNativeCli } from "../../src/cli/build-native.js";
import { COMMANDS, findCommand } from "../../src/cli/commands.js";
import { mainUsage, runCli } from "../../src/cli/dispatch.js";
import { checkpointEncoderDirs } from "../../src/cli/export.js";
import { defaultVocabSource } from "../../src/cli/make-random-model.js";
import { packageVersion } from "../../src/cli/package.js";
import { BACKEND_NAMES } from "../../src/cli/usage.js";
import { DPREmbeddings } from "../../src/embeddings/dpr-embeddings.js";
import { BACKEND_ORDER } from "../../src/training/backend.js";
import { UsageError, isUsageError, parseCliArgs } from "../../src/utils/cli-args.js";
import { assertPeers, isInstalled, OPTIONAL_PEERS, type OptionalFeature } from "../../src/utils/optional-peer.js";
import { syntheticTask, writeSyntheticBeir } from "../training/synthetic.js";

const ROOT = resolve(import.meta.dirname, "../..");
const MAIN = join(ROOT, "src/cli/main.ts");
const execFileAsync = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** The dispatcher in this process, output captured. */
async function cli(argv: string[], opts: { assertPeers?: (feature: OptionalFeature, who: string) => void } = {}): Promise<Result> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, { io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) }, assertPeers: opts.assertPeers });
  return { code, stdout, stderr };
}

/** The real CLI (src/cli/main.ts under node + tsx) as a child process. */
async function spawnCli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  try {
    const r = await execFileAsync(process.execPath, ["--import", "tsx", MAIN, ...argv], {
      cwd: ROOT,
      env: { ...process.env, LANGCHAIN_DPR_DEBUG: "", ...env },
      maxBuffer: 1 << 24,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? String(err) };
  }
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "dpr-cli-"));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const NAMES = [
  "train",
  "pretrain",
  "mine",
  "train-cross-encoder",
  "evaluate",
  "encode-shard",
  "build-index",
  "serve",
  "demo",
  "export",
  "make-random-model",
  "gpu-check",
  "build-native",
];

describe("langchain-dpr --help and --version", () => {
  it("has exactly the expected subcommands, and --help lists each with one line", async () => {
    expect(COMMANDS.map((c) => c.name)).toEqual(NAMES);
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(mainUsage());
    for (const name of NAMES) expect(r.stdout.match(new RegExp(`^  ${name} +\\S.*$`, "gm")), name).toHaveLength(1);
    expect((await cli(["help"])).stdout).toBe(mainUsage());
  });

  it.each(NAMES)("%s --help exits 0 and prints the command's usage (without loading it: no peer check)", async (name) => {
    const refuse = () => {
      throw new Error("peers checked for --help");
    };
    for (const argv of [
      [name, "--help"],
      [name, "-h"],
      ["help", name],
      [name, "--out", "x", "--help"],
    ]) {
      const r = await cli(argv, { assertPeers: refuse });
      expect(r.code, `${argv.join(" ")}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toBe(findCommand(name)!.usage);
      expect(r.stdout).toMatch(new RegExp(`^usage: langchain-dpr ${name}( |\\n)`, "i"));
      expect(r.stderr).toBe("");
    }
  });

  it.each(NAMES)("%s: the command module's own --help prints the same usage", async (name) => {
    let stdout = "";
    const code = await findCommand(name)!.run(["--help"], { stdout: (t) => (stdout += t), stderr: () => undefined });
    expect(code).toBe(0);
    expect(stdout).toBe(findCommand(name)!.usage);
  });

  it("the usage texts name the training backends of backend.ts", () => {
    expect(BACKEND_NAMES).toBe(BACKEND_ORDER.join(" | "));
  });

  it("--version prints package.json's version (spawned: the real bin entry)", async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string };
    expect(packageVersion()).toBe(pkg.version);
    const r = await spawnCli(["--version"]);
    expect(r).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
  });

  it("src/cli/main.ts starts with the node shebang (tsc keeps it in dist/cli/main.js)", async () => {
    expect((await readFile(MAIN, "utf8")).startsWith("#!/usr/bin/env node\n")).toBe(true);
  });
});

describe("usage errors exit 2 with the message, then the usage, on stderr", () => {
  it("an unknown subcommand names it and lists the commands (spawned)", async () => {
    const r = await spawnCli(["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.startsWith(`langchain-dpr: unknown command 'frobnicate'; commands: ${NAMES.join(", ")}\n\n${mainUsage()}`)).toBe(true);
  });

  it("no command, or an option before the command", async () => {
    for (const argv of [[], ["--bogus"]]) {
      const r = await cli(argv);
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/^langchain-dpr: (no command given|unknown option '--bogus')/);
      expect(r.stderr).toContain(mainUsage());
    }
  });

  it.each(NAMES)("%s: an unknown flag", async (name) => {
    const r = await cli([name, "--no-such-flag"]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^[\w-]+: Unknown option '--no-such-flag'\n\n/);
    expect(r.stderr.endsWith(findCommand(name)!.usage)).toBe(true);
    expect(r.stdout).toBe("");
  });

  const badNumbers: Array<[string, string[], string]> = [
    ["train", ["--data", "d", "--out", "o", "--seed", "x1"], "--seed"],
    ["pretrain", ["--data", "d", "--out", "o", "--seed", "1.5"], "--seed"],
    ["mine", ["--dataset", "d", "--out", "o.json", "--depth", "ten"], "--depth"],
    ["train-cross-encoder", ["--data", "d", "--out", "o", "--lr", "fast"], "--lr"],
    ["evaluate", ["--dataset", "d", "--depth", "0"], "--depth"],
    ["serve", ["--model", "m", "--index", "i", "--port", "http"], "--port"],
    ["demo", ["--questions", "three"], "--questions"],
    ["make-random-model", ["--out", "o", "--seed", "x"], "--seed"],
    ["gpu-check", ["--out", "o", "--steps", "0"], "--steps"],
  ];
  it.each(badNumbers)("%s: a bad numeric value names the flag", async (name, args, flag) => {
    const r = await cli([name, ...args]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.split("\n")[0]).toMatch(new RegExp(`^[\\w-]+: ${flag} must be (an integer|a number)`));
    expect(r.stderr.endsWith(findCommand(name)!.usage)).toBe(true);
  });

  it("a missing required flag, and a bad choice", async () => {
    for (const [argv, message] of [
      [["export"], /^export: --from <checkpoint folder> is required\n/],
      [["export", "--from", tmp, "--pooler", "max"], /^export: --pooler must be cls, bert or none, got 'max'\n/],
      [["make-random-model"], /^make-random-model: --out DIR is required\n/],
      [["make-random-model", "--out", "o", "--shape", "huge"], /^make-random-model: --shape must be bert-base, minilm, tiny, got 'huge'\n/],
      [["serve", "--index", "i"], /^serve: --model <dpr model dir> is required\n/],
      [["gpu-check", "--out", "o", "--stages", "env,warp"], /^gpu-check: unknown stage 'warp'/],
      [["evaluate", "--dataset", "d", "--methods", "bm25,dpr"], /^evaluate: method "dpr" needs a DPR model/],
    ] as const) {
      const r = await cli([...argv]);
      expect(r.code, `${argv.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });

  it("parseCliArgs: Node's strict parseArgs errors become UsageErrors naming the CLI; both count as usage errors", () => {
    const parse = (args: string[]) => parseCliArgs("tool", { args, options: { n: { type: "string" } } });
    expect(() => parse(["--x"])).toThrow(UsageError);
    expect(() => parse(["--x"])).toThrow(/^tool: Unknown option '--x'$/);
    expect(() => parse(["extra"])).toThrow(/^tool: Unexpected argument 'extra'/);
    expect(() => parse(["--n"])).toThrow(/^tool: Option '--n <value>' argument missing$/);
    expect(isUsageError(Object.assign(new TypeError("x"), { code: "ERR_PARSE_ARGS_UNKNOWN_OPTION" }))).toBe(true);
    expect(isUsageError(new Error("x"))).toBe(false);
  });
});

describe("runtime errors exit 1 with a one-line message", () => {
  it("evaluate --dataset /nonexistent (spawned): one line, no usage, no stack; the stack with LANGCHAIN_DPR_DEBUG=1", async () => {
    const r = await spawnCli(["evaluate", "--dataset", "/nonexistent"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("evaluate: --dataset /nonexistent is not a folder\n");
    expect(r.stdout).toBe("");
    const debug = await spawnCli(["evaluate", "--dataset", "/nonexistent"], { LANGCHAIN_DPR_DEBUG: "1" });
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(/^evaluate: --dataset \/nonexistent is not a folder\nError: .*\n\s+at /);
  });

  it("export of a folder that is not a checkpoint names what it expected", async () => {
    const r = await cli(["export", "--from", join(tmp, "nope")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`export: --from ${join(tmp, "nope")} is not a folder\n`);
    await expect(checkpointEncoderDirs(tmp)).rejects.toThrow(
      /is not a checkpoint folder: expected config.json \+ model.safetensors, or question_encoder\//,
    );
  });
});

describe("optional peers", () => {
  const feature: Record<string, OptionalFeature[]> = {
    train: ["training"],
    pretrain: ["training"],
    "train-cross-encoder": ["training"],
    "gpu-check": ["training"],
    serve: ["server"],
  };
  it.each(NAMES)("%s checks its optional peers before it runs", (name) => {
    expect(findCommand(name)!.peers).toEqual(feature[name] ?? []);
  });

  it("a missing peer exits 1 with the check's message (the npm install command), before the command's module runs", async () => {
    // The check with a resolver that finds none of the server packages (dependency injection: the
    // packages are installed here).
    const missing = (f: OptionalFeature, who: string) => {
      const absent = OPTIONAL_PEERS[f].filter((spec) => f === "server" || !isInstalled(spec.slice(0, spec.lastIndexOf("@"))));
      if (absent.length > 0)
        throw new Error(`${who} needs the optional ${f} packages, which are not installed: npm install ${absent.join(" ")}`);
    };
    const r = await cli(["serve", "--model", join(tmp, "m"), "--index", join(tmp, "i")], { assertPeers: missing });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("langchain-dpr serve needs the optional server packages, which are not installed: npm install fastify@^5.12.8\n");
    expect(r.stdout).toBe("");
    // Commands without optional peers never ask.
    const asked: string[] = [];
    await cli(["evaluate", "--dataset", "/nonexistent"], { assertPeers: (f) => void asked.push(f) });
    expect(asked).toEqual([]);
  });

  it("the real check: a package that is not installed is seen as missing; installed features pass", () => {
    expect(isInstalled("@langchain-dpr/no-such-package")).toBe(false);
    expect(isInstalled("fastify")).toBe(true);
    for (const f of ["training", "server", "plots"] as const) expect(() => assertPeers(f, "test")).not.toThrow();
  });
});

describe("optional peers really missing: a copy of the package whose node_modules lacks fastify, vega and vega-lite", () => {
  let pkg: string;
  let beir: string;
  beforeAll(async () => {
    pkg = join(tmp, "pkg-without-peers");
    await mkdir(join(pkg, "node_modules"), { recursive: true });
    await writeFile(join(pkg, "package.json"), await readFile(join(ROOT, "package.json")));
    // The sources are copied (modules resolve packages from where they really are); the data
    // folders are linked.
    await cp(join(ROOT, "src"), join(pkg, "src"), { recursive: true, filter: (from) => !/\/src\/(assets|native\/build)$/.test(from) });
    await symlink(join(ROOT, "src", "assets"), join(pkg, "src", "assets"));
    for (const name of await readdir(join(ROOT, "node_modules"))) {
      if (!["fastify", "vega", "vega-lite"].includes(name))
        await symlink(join(ROOT, "node_modules", name), join(pkg, "node_modules", name));
    }
    beir = join(tmp, "peers-beir");
    await writeSyntheticBeir(beir, syntheticTask(12, 3));
  });

  async function spawnCopy(argv: string[]): Promise<Result> {
    try {
      const r = await execFileAsync(process.execPath, ["--import", "tsx", join(pkg, "src/cli/main.ts"), ...argv], {
        cwd: pkg,
        env: { ...process.env, LANGCHAIN_DPR_DEBUG: "" },
      });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? String(err) };
    }
  }

  it("serve exits 1 naming the npm install command (its --help still works)", async () => {
    const r = await spawnCopy(["serve", "--model", "m", "--index", "i"]);
    expect(r).toEqual({
      code: 1,
      stdout: "",
      stderr: "langchain-dpr serve needs the optional server packages, which are not installed: npm install fastify@^5.12.8\n",
    });
    const help = await spawnCopy(["serve", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toBe(findCommand("serve")!.usage);
  });

  it("evaluate writes the report without the SVG plots and says so on stderr and in the report", async () => {
    const out = join(tmp, "peers-eval");
    const r = await spawnCopy(["evaluate", "--dataset", beir, "--split", "dev", "--out", out, "--quiet"]);
    expect(r.code, r.stderr).toBe(0);
    expect((await readdir(out)).sort()).toEqual(["report.md", "results.json"]);
    const note =
      "SVG plots not drawn: the optional packages vega and vega-lite are not installed (npm install vega@^6.4.0 vega-lite@^6.4.3)";
    expect(r.stderr).toContain(`evaluate: ${note}; the report is written without them\n`);
    expect(await readFile(join(out, "report.md"), "utf8")).toContain(`## Plots\n\n${note}.\n`);
  });
});

describe("end to end (the real CLI, spawned)", () => {
  let beir: string;
  let model: string;
  beforeAll(async () => {
    beir = join(tmp, "beir");
    await writeSyntheticBeir(beir, syntheticTask(24, 6));
    model = join(tmp, "model");
  });

  it("make-random-model then evaluate on a tiny BEIR folder", async () => {
    const made = await spawnCli([
      "make-random-model",
      "--out",
      model,
      "--vocab-from",
      join(beir, "corpus.jsonl"),
      "--vocab-size",
      "300",
      "--seed",
      "7",
    ]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(new RegExp(`^wrote ${model}: tiny \\(2 layers, hidden 32, vocab 300\\) in [\\d.]+ s\\n$`));
    expect((await readdir(model)).sort()).toEqual(["dpr_config.json", "passage_encoder", "question_encoder"]);
    const out = join(tmp, "eval");
    const r = await spawnCli(["evaluate", "--dataset", beir, "--split", "dev", "--dpr", model, "--out", out, "--quiet"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(await readFile(join(out, "report.md"), "utf8"));
    for (const m of ["bm25", "dpr", "hybrid"]) expect(r.stdout).toMatch(new RegExp(`^\\| ${m} \\|`, "m"));
    expect((await readdir(out)).sort()).toEqual(["latency.svg", "recall-at-k.svg", "report.md", "results.json"]);
    const json = JSON.parse(await readFile(join(out, "results.json"), "utf8")) as { dataset: { evaluatedQueries: number } };
    expect(json.dataset.evaluatedQueries).toBe(24);
  }, 120_000);

  it("export: our model folder's safetensors → a new ONNX model folder that embeds exactly as the original", async () => {
    const out = join(tmp, "exported");
    const r = await spawnCli(["export", "--from", model, "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`wrote ${join(out, "question_encoder", "model.onnx")}\nwrote ${join(out, "passage_encoder", "model.onnx")}\n`);
    // Everything of the original encoder folder but the safetensors weights.
    const original = (await readdir(join(model, "question_encoder"))).filter((f) => f !== "model.safetensors").sort();
    expect(original).toContain("vocab.txt");
    expect((await readdir(join(out, "question_encoder"))).sort()).toEqual(original);
    expect(await readFile(join(out, "dpr_config.json"), "utf8")).toBe(await readFile(join(model, "dpr_config.json"), "utf8"));
    const a = new DPREmbeddings({ modelPath: model });
    const b = new DPREmbeddings({ modelPath: out });
    try {
      const text = "ka lo mi report of cells";
      const [qa, qb] = [await a.embedQuery(text), await b.embedQuery(text)];
      const [[pa], [pb]] = [await a.embedDocuments([text]), await b.embedDocuments([text])];
      qa.forEach((v, i) => expect(qb[i]).toBeCloseTo(v, 5));
      pa!.forEach((v, i) => expect(pb![i]).toBeCloseTo(v, 5));
    } finally {
      await a.dispose();
      await b.dispose();
    }
  }, 120_000);
});

describe("build-native and make-random-model defaults", () => {
  it("build-native runs a script with bash and passes its exit code through; the package's script exists", async () => {
    expect((await stat(BUILD_NATIVE_SCRIPT)).isFile()).toBe(true);
    const script = join(tmp, "fake-build.sh");
    await writeFile(script, "echo building >&2\nexit 3\n");
    await chmod(script, 0o644); // run with bash, not executed directly
    const io = { stdout: () => undefined, stderr: () => undefined };
    expect(await runBuildNativeCli([], io, { script })).toBe(3);
    await writeFile(script, "exit 0\n");
    expect(await runBuildNativeCli([], io, { script })).toBe(0);
    let stderr = "";
    expect(
      await runBuildNativeCli([], { stdout: () => undefined, stderr: (t) => (stderr += t) }, { script: join(tmp, "missing.sh") }),
    ).toBe(1);
    expect(stderr).toBe(`build-native: ${join(tmp, "missing.sh")} is missing (the package ships scripts/build-native.sh)\n`);
  });

  it("make-random-model's default vocabulary texts: the fixture in a clone, else the bundled corpus", async () => {
    expect(defaultVocabSource()).toBe(join(ROOT, "test", "fixtures", "passages", "pubmedqa-300.jsonl"));
    expect(defaultVocabSource(tmp)).toMatch(/src\/assets\/pubmedqa\/corpus\.jsonl$/);
    expect((await stat(defaultVocabSource(tmp))).isFile()).toBe(true);
  });
});

/**
 * The self-contained prebuilt faiss addon (scripts/prebuild.sh → prebuilds/linux-x64) and the loader
 * that picks it (src/native/faiss-index.ts): what it links, that it works in a process with no
 * library path, and the loader's order and error. scripts/prebuild.sh reuses its output when its
 * inputs are unchanged (about 1 s), else rebuilds (about 5 s on 2 cores).
 */
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILD_NATIVE_COMMAND, faissAddonLocation, FaissIndex, findFaissAddons, resolveFaissAddon } from "../../src/native/faiss-index.js";

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const PREBUILT_DIR = path.join(ROOT, "prebuilds", "linux-x64");
const ADDON = path.join(PREBUILT_DIR, "faiss_dpr.napi.glibc.node");
const LOCAL_BUILD = path.join(ROOT, "src", "native", "build", "Release", "faiss_dpr.node");
const LINUX_X64_GLIBC = process.platform === "linux" && process.arch === "x64" && !existsSync("/etc/alpine-release");
/** What Node itself links against: all a prebuilt may need from the system. */
const ALLOWED =
  /^(linux-vdso\.so\.1|ld-linux-x86-64\.so\.2|libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libstdc\+\+\.so\.6|libgcc_s\.so\.1)$/;
/** A child environment in which the dynamic linker finds nothing but the system's default paths. */
const CLEAN_ENV = { ...process.env, LD_LIBRARY_PATH: "", LD_PRELOAD: "" };

let tmp: string;
let prebuildLog = "";
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "dpr-prebuilt-"));
  if (LINUX_X64_GLIBC) {
    const { stdout } = await run("bash", [path.join(ROOT, "scripts", "prebuild.sh")], { cwd: ROOT, maxBuffer: 1 << 24 });
    prebuildLog = stdout;
  }
}, 300_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** `ldd` of a file as [dependency name, resolved path or "not found" or ""] pairs. */
async function lddDeps(file: string): Promise<{ deps: [string, string][]; text: string }> {
  const { stdout } = await run("ldd", [file], { env: CLEAN_ENV });
  const deps = stdout
    .trim()
    .split("\n")
    .map((line): [string, string] => {
      const m = /^\s*(\S+)(?:\s+=>\s+(not found|\S+))?/.exec(line)!;
      return [path.basename(m[1]!), m[2] ?? ""];
    });
  return { deps, text: stdout };
}

describe.runIf(LINUX_X64_GLIBC)("prebuilt faiss addon for linux-x64 (glibc)", () => {
  it("scripts/prebuild.sh leaves the N-API addon and the OpenMP runtime in prebuilds/linux-x64 and reports them", async () => {
    expect(prebuildLog).toMatch(/ok: prebuilds\/linux-x64 is self-contained/);
    expect(prebuildLog).toMatch(/\d+ {2}prebuilds\/linux-x64\/faiss_dpr\.napi\.glibc\.node/);
    expect(prebuildLog).toMatch(/ldd prebuilds\/linux-x64\/faiss_dpr\.napi\.glibc\.node:/);
    expect((await readdir(PREBUILT_DIR)).sort()).toEqual(["faiss_dpr.napi.glibc.node", "libgomp.so.1"]);
  });

  it("every file there links only what Node itself needs, plus files bundled beside it", async () => {
    const files = await readdir(PREBUILT_DIR);
    for (const f of files) {
      const { deps, text } = await lddDeps(path.join(PREBUILT_DIR, f));
      const foreign = deps.filter(
        ([name, where]) => !ALLOWED.test(name) && !(files.includes(name) && where === path.join(PREBUILT_DIR, name)),
      );
      expect(foreign, `${f}:\n${text}`).toEqual([]);
      expect(text).not.toMatch(/not found/);
    }
    // the addon does need the bundled OpenMP runtime, and finds it through RUNPATH $ORIGIN
    const { deps } = await lddDeps(ADDON);
    expect(deps).toContainEqual(["libgomp.so.1", path.join(PREBUILT_DIR, "libgomp.so.1")]);
    const { stdout } = await run("readelf", ["-d", ADDON]);
    expect(stdout).toMatch(/RUNPATH.*\[\$ORIGIN\]/);
  });

  it("exports only the N-API entry points: its static faiss and OpenBLAS never clash with another copy in the process", async () => {
    const { stdout } = await run("nm", ["-D", "--defined-only", ADDON], { maxBuffer: 1 << 24 });
    const names = stdout
      .trim()
      .split("\n")
      .map((l) => l.trim().split(/\s+/).at(-1)!);
    expect(names).toContain("napi_register_module_v1");
    // besides N-API, only libstdc++ template instantiations (std::, identical everywhere) remain visible
    expect(names.filter((n) => !/^(napi_|node_api_)/.test(n) && !/^_Z(Z|T[IS])?N?K?St/.test(n))).toEqual([]);
    expect(names.filter((n) => /faiss|sgemm|openblas|gotoblas|GOMP|lapack/i.test(n))).toEqual([]);
  });

  it("loads in a child node with an empty LD_LIBRARY_PATH: creates, adds to and searches an index with exact inner products", async () => {
    const script = `
      const a = require(process.argv[1]);
      (async () => {
        const idx = new a.FaissIndex(3, "Flat");
        await idx.add(new Float32Array([1, 0, 0,  0, 2, 0,  1, 1, 1,  -1, 0, 3]), new BigInt64Array([10n, 20n, 30n, 40n]));
        const r = await idx.search(new Float32Array([1, 2, 3,  0, 0, -1]), 4);
        // OPQ trains a rotation with LAPACK's sgesvd (static OpenBLAS); a rotation keeps inner products.
        const d = 8, n = 300;
        let s = 7; const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
        const x = Float32Array.from({ length: n * d }, rnd);
        const opq = new a.FaissIndex(d, "OPQ4,Flat");
        await opq.train(x);
        await opq.add(x, BigInt64Array.from({ length: n }, (_, i) => BigInt(i)));
        const q = x.subarray(0, 5 * d);
        const o = await opq.search(q, 1);
        let maxErr = 0; const top = [];
        for (let i = 0; i < 5; i++) {
          let best = -1, bestScore = -Infinity;
          for (let j = 0; j < n; j++) {
            let dot = 0; for (let c = 0; c < d; c++) dot += q[i * d + c] * x[j * d + c];
            if (dot > bestScore) { bestScore = dot; best = j; }
          }
          top.push([Number(o.labels[i]), best]);
          maxErr = Math.max(maxErr, Math.abs(o.distances[i] - bestScore));
        }
        a.FaissIndex.setNumThreads(2);
        let error = "";
        try { new a.FaissIndex(4, "NotAnIndexType"); } catch (e) { error = e instanceof Error ? e.message : "not an Error"; }
        console.log(JSON.stringify({
          labels: Array.from(r.labels, String), distances: Array.from(r.distances), ntotal: idx.ntotal,
          opqTop: top, opqMaxErr: maxErr, threads: a.FaissIndex.getNumThreads(), error, simd: a.simd,
        }));
      })().catch((e) => { console.error(e); process.exit(1); });
    `;
    const { stdout } = await run(process.execPath, ["-e", script, ADDON], { env: CLEAN_ENV, cwd: tmp });
    const out = JSON.parse(stdout.trim().split("\n").at(-1)!) as {
      labels: string[];
      distances: number[];
      ntotal: number;
      opqTop: [number, number][];
      opqMaxErr: number;
      threads: number;
      error: string;
      simd: string;
    };
    expect(out.ntotal).toBe(4);
    // q1 = (1,2,3): 40 → 8, 30 → 6, 20 → 4, 10 → 1;  q2 = (0,0,-1): 10, 20 → 0, 30 → -1, 40 → -3
    expect(out.labels.slice(0, 4)).toEqual(["40", "30", "20", "10"]);
    expect(out.distances.slice(0, 4)).toEqual([8, 6, 4, 1]);
    expect(out.distances.slice(4)).toEqual([0, 0, -1, -3]);
    expect(out.labels.slice(6)).toEqual(["30", "40"]);
    for (const [got, exact] of out.opqTop) expect(got).toBe(exact);
    expect(out.opqMaxErr).toBeLessThan(1e-4);
    expect(out.threads).toBe(2);
    expect(out.error).toMatch(/NotAnIndexType|index|factory/i);
    expect(["avx2+fma", "none"]).toContain(out.simd);
  });
});

describe("faiss addon loader", () => {
  it.runIf(LINUX_X64_GLIBC)("prefers the prebuilt over the local build, and this process runs on it", async () => {
    const { found } = findFaissAddons({ packageRoot: ROOT, env: {} });
    expect(found[0]).toEqual({ source: "prebuilt", file: ADDON });
    if (existsSync(LOCAL_BUILD)) expect(found[1]).toEqual({ source: "local-build", file: LOCAL_BUILD });
    expect(faissAddonLocation()).toEqual({ source: "prebuilt", file: ADDON });
    const idx = FaissIndex.create(2, "Flat");
    await idx.add(new Float32Array([1, 0, 0, 1]), new BigInt64Array([1n, 2n]));
    const r = await idx.search(new Float32Array([0.25, 0.75]), 1);
    expect([r.labels[0], r.distances[0]]).toEqual([2n, 0.75]);
    await idx.dispose();
  });

  it.runIf(LINUX_X64_GLIBC && existsSync(LOCAL_BUILD))(
    "falls back to the local build when the prebuilt cannot load, and names the failure",
    async () => {
      const root = path.join(tmp, "unloadable-prebuilt");
      await mkdir(path.join(root, "prebuilds", "linux-x64"), { recursive: true });
      await mkdir(path.join(root, "src", "native", "build", "Release"), { recursive: true });
      // not an ELF file: what an addon for another glibc or a truncated download looks like to dlopen
      await writeFile(path.join(root, "prebuilds", "linux-x64", "faiss_dpr.napi.glibc.node"), "not a shared object\n");
      await copyFile(LOCAL_BUILD, path.join(root, "src", "native", "build", "Release", "faiss_dpr.node"));
      const { source, file, addon } = resolveFaissAddon({ packageRoot: root, env: {} });
      expect(source).toBe("local-build");
      expect(file).toBe(path.join(root, "src", "native", "build", "Release", "faiss_dpr.node"));
      expect(typeof addon.FaissIndex.getNumThreads()).toBe("number");

      await rm(path.join(root, "src"), { recursive: true });
      expect(() => resolveFaissAddon({ packageRoot: root, env: {} })).toThrow(/prebuilt .*faiss_dpr\.napi\.glibc\.node failed to load/);
    },
  );

  it("with no addon at all, the Error names the platform, each place looked at and `npx langchain-dpr build-native`", async () => {
    const empty = path.join(tmp, "empty-package");
    await mkdir(empty, { recursive: true });
    let message = "";
    try {
      resolveFaissAddon({ packageRoot: empty, env: {} });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(BUILD_NATIVE_COMMAND).toBe("npx langchain-dpr build-native");
    expect(message).toContain(`${process.platform}-${process.arch}`);
    if (LINUX_X64_GLIBC) expect(message).toMatch(/linux-x64 \(glibc \d+\.\d+\)/);
    expect(message).toContain(path.join(empty, "prebuilds"));
    expect(message).toContain(path.join(empty, "src", "native", "build", "Release", "faiss_dpr.node"));
    expect(message).toContain("npx langchain-dpr build-native");
  });

  it("LANGCHAIN_DPR_FAISS_ADDON comes first, and a wrong one is named in the error", () => {
    const empty = path.join(tmp, "empty-package");
    expect(() => resolveFaissAddon({ packageRoot: empty, env: { LANGCHAIN_DPR_FAISS_ADDON: path.join(empty, "nope.node") } })).toThrow(
      /LANGCHAIN_DPR_FAISS_ADDON=.*nope\.node does not exist/,
    );
    if (LINUX_X64_GLIBC) {
      const { found } = findFaissAddons({ packageRoot: empty, env: { LANGCHAIN_DPR_FAISS_ADDON: ADDON } });
      expect(found).toEqual([{ source: "env", file: ADDON }]);
    }
  });

  it.runIf(LINUX_X64_GLIBC)(
    "on musl (node-gyp-build's LIBC=musl, as on Alpine) the glibc prebuilt is skipped for the local build",
    async () => {
      const { stdout } = await run(
        process.execPath,
        [
          "--import",
          "tsx",
          "--input-type=module",
          "-e",
          `import { findFaissAddons } from "./src/native/faiss-index.ts"; console.log(JSON.stringify(findFaissAddons({ env: {} })));`,
        ],
        { cwd: ROOT, env: { ...process.env, LIBC: "musl" } },
      );
      const { found, missing } = JSON.parse(stdout.trim().split("\n").at(-1)!) as { found: { source: string }[]; missing: string[] };
      expect(found.map((f) => f.source)).not.toContain("prebuilt");
      expect(missing.join("\n")).toMatch(/prebuilt: none for linux-x64 musl/);
    },
  );
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { join, resolve } from "node:path";
import { request } from "node:http";
import { chmod, writeFile } from "node:fs/promises";
import { BM25Index } from "../../src/retrievers/bm25/bm25-index.js";
import { parseServeArgs } from "../../src/server/cli.js";
import { HybridRetriever } from "../../src/retrievers/hybrid-retriever.js";
import { makeSavedStack, type RealStack } from "../retrievers/helpers.js";

const ROOT = resolve(import.meta.dirname, "../..");

interface Child {
  proc: ChildProcess;
  url: string;
  stderr: () => string;
  stdout: () => string;
  exited: Promise<number | null>;
}

/** Spawns the real scripts/serve.ts under node + tsx and waits for its "listening on" line. */
async function spawnServe(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Child> {
  const proc = spawn(process.execPath, ["--import", "tsx", join(ROOT, "scripts/serve.ts"), "--port", "0", ...args], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`serve did not start in 60 s; stderr: ${err}`)), 60_000);
    proc.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res(m[1]!);
      }
    });
    void exited.then((code) => rej(new Error(`serve exited with ${code} before listening; stderr: ${err}`)));
  });
  return { proc, url, stderr: () => err, stdout: () => out, exited };
}

/** A GET or POST through node:http, so that the Host header can be forged. */
function send(url: string, method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const u = new URL(url);
  return new Promise<{ status: number; json: () => { message?: string; documents?: Array<{ id: string }> } }>((res, rej) => {
    const h = body === undefined ? headers : { ...headers, "content-type": "application/json" };
    const req = request({ host: u.hostname, port: u.port, method, path, headers: h, agent: false }, (r) => {
      let text = "";
      r.setEncoding("utf8");
      r.on("data", (d: string) => (text += d));
      r.on("end", () => res({ status: r.statusCode!, json: () => JSON.parse(text) }));
    });
    req.on("error", rej);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe("scripts/serve.ts", () => {
  let stack: RealStack;
  let indexDir: string;
  let bm25Dir: string;
  beforeAll(async () => {
    ({ indexDir, bm25Dir, ...stack } = await makeSavedStack());
  });
  afterAll(async () => {
    await stack?.cleanup();
  });

  it("on SIGTERM finishes the in-flight request, refuses new ones and exits 0", async () => {
    const child = await spawnServe(["--model", stack.modelDir, "--index", indexDir, "--extra-latency-ms", "2500", "--k", "3"]);
    try {
      const inflight = fetch(`${child.url}/retrieve`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "lemons and scurvy" }),
      });
      // wait until the server reports the request in flight (inside its 2.5 s retrieval)
      for (let i = 0; ; i++) {
        const h = (await (await fetch(`${child.url}/health`)).json()) as { inFlight: number };
        if (h.inFlight === 1) break;
        if (i > 200) throw new Error("the request never went in flight");
        await new Promise((r) => setTimeout(r, 10));
      }
      child.proc.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 300));
      // a new request after SIGTERM: connection refused (not listening) or 503 — never served
      const late = await fetch(`${child.url}/health`).then(
        (r) => r.status,
        () => "refused",
      );
      expect([503, "refused"]).toContain(late);
      const res = await inflight;
      expect(res.status).toBe(200);
      const body = (await res.json()) as { documents: Array<{ id: string }> };
      expect(body.documents).toHaveLength(3);
      const expected = await stack.store.similaritySearchWithScore("lemons and scurvy", 3);
      expect(body.documents.map((d) => d.id)).toEqual(expected.map(([d]) => d.id));
      expect(await child.exited).toBe(0);
      expect(child.stderr()).toMatch(/SIGTERM received; draining 1 in-flight/);
      expect(child.stderr()).toMatch(/server: closed/);
    } finally {
      child.proc.kill("SIGKILL");
    }
  });

  it("serves hybrid dense + BM25 with --bm25", async () => {
    const child = await spawnServe(["--model", stack.modelDir, "--index", indexDir, "--bm25", bm25Dir]);
    try {
      const res = await fetch(`${child.url}/retrieve`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "sailors lemons voyages scurvy", k: 2 }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { documents: Array<{ id: string; score: number; metadata: Record<string, unknown> }> };
      const bm25 = await BM25Index.load(bm25Dir);
      const expected = await new HybridRetriever({ dense: stack.store, sparse: bm25, k: 2 }).retrieve("sailors lemons voyages scurvy");
      expect(body.documents.map((d) => d.id)).toEqual(expected.documents.map((d) => d.id));
      body.documents.forEach((d, i) => expect(d.score).toBeCloseTo(expected.scores[i]!, 12)); // the fused score
      body.documents.forEach((d, i) => expect(d.metadata).toEqual(expected.documents[i]!.metadata)); // stored metadata only
      child.proc.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    } finally {
      child.proc.kill("SIGKILL");
    }
  });

  it("reranks with --reranker when asked, and not when rerank is false", async () => {
    const child = await spawnServe(["--model", stack.modelDir, "--index", indexDir, "--reranker", stack.rerankerDir, "--fetch-k", "6"]);
    try {
      const ask = async (rerank: boolean) => {
        const res = await fetch(`${child.url}/retrieve`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ query: "vitamin C deficiency and scurvy", k: 3, rerank }),
        });
        expect(res.status).toBe(200);
        return ((await res.json()) as { documents: Array<{ id: string; relevanceScore: number | null }> }).documents;
      };
      const reranked = await ask(true);
      const plain = await ask(false);
      const candidates = (await stack.store.similaritySearchWithScore("vitamin C deficiency and scurvy", 6)).map(([d]) => d);
      const scores = await stack.reranker.scorePairs(
        "vitamin C deficiency and scurvy",
        candidates.map((d) => d.pageContent),
      );
      const expected = candidates
        .map((d, i) => ({ id: d.id, s: scores[i]!, i }))
        .sort((a, b) => b.s - a.s || a.i - b.i)
        .slice(0, 3);
      expect(reranked.map((d) => d.id)).toEqual(expected.map((e) => e.id));
      expect(plain.map((d) => d.id)).toEqual(candidates.slice(0, 3).map((d) => d.id));
      expect(plain.every((d) => d.relevanceScore === null)).toBe(true);
      child.proc.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    } finally {
      child.proc.kill("SIGKILL");
    }
  });

  it("with --token-file and --allowed-hosts requires the token (not on /health) and refuses a forged Host", async () => {
    const token = "b7e1c2d3a4f5061728394a5b6c7d8e9f";
    const file = join(stack.root, "token.txt");
    await writeFile(file, `${token}\n`);
    await chmod(file, 0o600);
    const env = { ...process.env };
    delete env.DPR_SERVER_TOKEN;
    const child = await spawnServe(
      ["--model", stack.modelDir, "--index", indexDir, "--token-file", file, "--allowed-hosts", "dpr.internal"],
      env,
    );
    try {
      expect(child.stdout()).toMatch(/documents, token required\)/);
      const query = { query: "lemons and scurvy", k: 2 };
      expect((await send(child.url, "GET", "/health", {})).status).toBe(200);
      const refused = await send(child.url, "POST", "/retrieve", {}, query);
      expect(refused.status).toBe(401);
      expect((await send(child.url, "GET", "/metrics", {})).status).toBe(401);
      const auth = { authorization: `Bearer ${token}` };
      const ok = await send(child.url, "POST", "/retrieve", auth, query);
      expect(ok.status).toBe(200);
      const expected = await stack.store.similaritySearchWithScore("lemons and scurvy", 2);
      expect(ok.json().documents!.map((d) => d.id)).toEqual(expected.map(([d]) => d.id));
      const forged = await send(child.url, "GET", "/stats", { ...auth, host: "rebind.attacker.example" });
      expect(forged.status).toBe(403);
      expect(forged.json().message).toContain("--allowed-hosts rebind.attacker.example");
      expect((await send(child.url, "GET", "/stats", { ...auth, host: "dpr.internal:8080" })).status).toBe(200);
      expect(child.stderr()).not.toContain(token);
      child.proc.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    } finally {
      child.proc.kill("SIGKILL");
    }
  });

  it("exits with a message for a missing index folder", async () => {
    await expect(spawnServe(["--model", stack.modelDir, "--index", join(stack.root, "nope")])).rejects.toThrow(/exited with 1.*nope/s);
  });

  it("parses options and rejects bad ones by name", () => {
    const o = parseServeArgs(["--model", "m", "--index", "i", "--max-concurrent", "2", "--no-cache"]);
    expect(o).toMatchObject({ model: "m", index: "i", maxConcurrent: 2, cache: false, port: 8080, host: "127.0.0.1" });
    expect(() => parseServeArgs(["--index", "i"])).toThrow("serve: --model <dpr model dir> is required");
    expect(() => parseServeArgs(["--model", "m", "--index", "i", "--k", "0"])).toThrow('serve: --k must be an integer >= 1, got "0"');
    expect(() => parseServeArgs(["--model", "m", "--index", "i", "--bogus"])).toThrow(/bogus/);
  });
});

/**
 * The server's exposure over real HTTP on 127.0.0.1: the Host check against DNS rebinding, the
 * bearer token per route, and CORS. Requests go through node:http so the Host header can be forged.
 */
import { afterEach, describe, expect, it } from "vitest";
import crypto from "node:crypto";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { syncBuiltinESMExports } from "node:module";
import type { FastifyInstance } from "fastify";
import { createServer, type RetrievalServerOptions } from "../../src/server/server.js";
import {
  BearerTokenCheck,
  checkHost,
  hostOfHeader,
  isLoopbackAddress,
  normalizeAllowedHosts,
  normalizeCorsOrigins,
  validateServerToken,
  withListenHost,
} from "../../src/server/security.js";
import { DPRRetriever } from "../../src/retrievers/dpr-retriever.js";
import { CORPUS, HashEmbeddings, VersionedMemoryStore } from "../retrievers/helpers.js";

const TOKEN = "3f9a1c0d5e7b2a4f6c8e0d1b3a5c7e9f";
const apps: FastifyInstance[] = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function start(opts: Partial<RetrievalServerOptions> = {}, host = "127.0.0.1") {
  const embeddings = new HashEmbeddings(64, 0);
  const store = await VersionedMemoryStore.fromDocs(CORPUS, embeddings);
  const retriever = new DPRRetriever({ vectorStore: store, k: 3, fetchK: 8 });
  const app = createServer({ retriever, ...opts });
  apps.push(app);
  await app.listen({ port: 0, host });
  const addr = app.server.address();
  if (addr === null || typeof addr === "string") throw new Error("no port");
  return { app, host, port: addr.port, embeddings };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => { error: string; message: string } & Record<string, unknown>;
}

/** One real HTTP request; `headers` may set Host (node:http sends it as given). */
function send(
  server: { host: string; port: number },
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const h: Record<string, string> = { ...headers };
    if (payload !== undefined) h["content-type"] = "application/json";
    const req = request({ host: server.host, port: server.port, method, path, headers: h, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, text, json: () => JSON.parse(text) }));
    });
    req.on("error", reject);
    req.end(payload);
  });
}

/** A raw HTTP/1.0 request without a Host header (HTTP/1.1 requires one; Node refuses those itself). */
function sendWithoutHost(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, "127.0.0.1", () => socket.write(`GET ${path} HTTP/1.0\r\n\r\n`));
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => (data += d));
    socket.on("end", () => {
      const status = Number(/^HTTP\/1\.\d (\d{3})/.exec(data)?.[1]);
      resolve({ status, body: data.slice(data.indexOf("\r\n\r\n") + 4) });
    });
    socket.on("error", reject);
  });
}

describe("Host check (DNS rebinding)", () => {
  it("refuses a forged Host with 403 naming the Host and the fix, before any retrieval runs", async () => {
    const s = await start();
    const res = await send(s, "POST", "/retrieve", { host: `rebind.attacker.example:${s.port}` }, { query: "scurvy" });
    expect(res.status).toBe(403);
    const body = res.json();
    expect(body.error).toBe("Forbidden");
    expect(body.message).toContain(`Host "rebind.attacker.example:${s.port}" is not allowed`);
    expect(body.message).toContain("this server answers Host localhost, 127.0.0.1, [::1] (any port)");
    expect(body.message).toContain("--allowed-hosts rebind.attacker.example");
    expect(body.message).toContain('allowedHosts: ["rebind.attacker.example"]');
    expect(s.embeddings.queryCalls).toBe(0);
    for (const path of ["/health", "/stats", "/metrics"]) {
      expect((await send(s, "GET", path, { host: "rebind.attacker.example" })).status).toBe(403);
    }
  });

  it("answers localhost, 127.0.0.1 and [::1] with any port, in any case, with a trailing dot", async () => {
    const s = await start();
    for (const host of [
      "localhost",
      `localhost:${s.port}`,
      "LOCALHOST:1",
      "localhost.",
      "127.0.0.1",
      `127.0.0.1:${s.port}`,
      "[::1]:8080",
    ]) {
      const res = await send(s, "GET", "/health", { host });
      expect([host, res.status]).toEqual([host, 200]);
    }
    const served = await send(s, "POST", "/retrieve", { host: `localhost:${s.port}` }, { query: "scurvy", k: 2 });
    expect(served.status).toBe(200);
    expect((served.json().documents as unknown[]).length).toBe(2);
  });

  it("refuses look-alike names, a user part, a bad port and a missing Host", async () => {
    const s = await start();
    for (const host of [
      "127.0.0.1.attacker.example",
      "localhost.attacker.example",
      "attacker.example@localhost",
      "localhost:99999",
      "[::2]",
    ]) {
      const res = await send(s, "GET", "/health", { host });
      expect([host, res.status]).toEqual([host, 403]);
    }
    const noHost = await sendWithoutHost(s.port, "/health");
    expect(noHost.status).toBe(403);
    expect(JSON.parse(noHost.body).message).toMatch(
      /^server: a request without a Host header is not allowed; this server answers Host localhost/,
    );
  });

  it("answers the address it listens on when that is another loopback address (127.0.0.2)", async () => {
    const s = await start({}, "127.0.0.2");
    expect((await send(s, "GET", "/health", { host: `127.0.0.2:${s.port}` })).status).toBe(200);
    const refused = await send(s, "GET", "/health", { host: "127.0.0.3" });
    expect(refused.status).toBe(403);
    expect(refused.json().message).toContain("answers Host localhost, 127.0.0.1, [::1], 127.0.0.2 (any port)");
  });

  it("answers the names of an allowedHosts list (a leading dot covers subdomains) besides the loopback names", async () => {
    const s = await start({ allowedHosts: [".Example.com", "api.internal."] });
    const cases: Array<[string, number]> = [
      ["example.com", 200],
      ["a.b.example.com:443", 200],
      ["api.internal", 200],
      ["localhost", 200],
      ["badexample.com", 403],
      ["example.com.attacker.example", 403],
      ["other.internal", 403],
    ];
    for (const [host, status] of cases) expect([host, (await send(s, "GET", "/health", { host })).status]).toEqual([host, status]);
    const refused = await send(s, "GET", "/health", { host: "other.internal" });
    expect(refused.json().message).toContain("answers Host localhost, 127.0.0.1, [::1], .example.com, api.internal (any port)");
  });

  it('answers any Host with allowedHosts "all"', async () => {
    const s = await start({ allowedHosts: "all" });
    expect((await send(s, "GET", "/health", { host: "rebind.attacker.example" })).status).toBe(200);
  });

  it("answers the name given to listen (listenHost)", async () => {
    const s = await start({ listenHost: "my-box" });
    expect((await send(s, "GET", "/health", { host: "my-box:8080" })).status).toBe(200);
    expect((await send(s, "GET", "/health", { host: "your-box" })).status).toBe(403);
  });

  it('under "auto" checks nothing on a non-loopback address, and a list is checked on any address', () => {
    expect(checkHost("auto", "anything.example", "0.0.0.0")).toEqual({ allowed: true });
    expect(checkHost("auto", "anything.example", "::")).toEqual({ allowed: true });
    expect(checkHost("auto", "anything.example", "192.168.1.20")).toEqual({ allowed: true });
    expect(checkHost("auto", "anything.example", undefined)).toEqual({ allowed: true });
    expect(checkHost("auto", "anything.example", "::ffff:127.0.0.1")).toMatchObject({ allowed: false });
    expect(checkHost(["api.example"], "anything.example", "0.0.0.0")).toEqual({
      allowed: false,
      host: "anything.example",
      accepted: ["localhost", "127.0.0.1", "[::1]", "api.example"],
    });
    expect(checkHost(["api.example"], "api.example:80", "10.0.0.5")).toEqual({ allowed: true });
    expect(checkHost(withListenHost("auto", "my-box"), "my-box", "0.0.0.0")).toEqual({ allowed: true });
  });

  it("parses Host headers and loopback addresses strictly", () => {
    expect(hostOfHeader("LocalHost:8080")).toBe("localhost");
    expect(hostOfHeader("[::1]:80")).toBe("[::1]");
    expect(hostOfHeader("[zz::1]")).toBeUndefined();
    expect(hostOfHeader("a@b")).toBeUndefined();
    expect(hostOfHeader("a/b")).toBeUndefined();
    expect(hostOfHeader(undefined)).toBeUndefined();
    expect(["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"].map(isLoopbackAddress)).toEqual([true, true, true, true]);
    expect(["0.0.0.0", "::", "10.0.0.1", "::ffff:10.0.0.1", "128.0.0.1"].map(isLoopbackAddress)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
  });

  it("rejects bad allowedHosts settings with the option, the entry and the accepted forms", () => {
    const who = "createServer: options.allowedHosts";
    expect(normalizeAllowedHosts(["API.Example.COM", "::1", "10.0.0.1"], who)).toEqual(["api.example.com", "[::1]", "10.0.0.1"]);
    expect(() => normalizeAllowedHosts(["http://api.example.com"], who)).toThrow(
      'createServer: options.allowedHosts: entry "http://api.example.com" is not a host name; expected a name like "api.example.com"',
    );
    expect(() => normalizeAllowedHosts(["api.example.com:8080"], who)).toThrow(/without scheme, port or path/);
    expect(() => normalizeAllowedHosts(["*.example.com"], who)).toThrow(/"\*\.example\.com" is not a host name/);
    expect(() => normalizeAllowedHosts([], who)).toThrow(/is an empty list/);
    expect(() => normalizeAllowedHosts("everything" as never, who)).toThrow(
      /must be "auto", "all" or an array of host names, got "everything"/,
    );
    expect(() => createServer({ retriever: { retrieve: async () => ({}) as never }, allowedHosts: ["a b"] })).toThrow(
      /createServer: options.allowedHosts: entry "a b" is not a host name/,
    );
  });
});

describe("bearer token", () => {
  const auth = { authorization: `Bearer ${TOKEN}` };

  it("requires the token on /retrieve, /stats, /metrics and unknown routes, and leaves /health open", async () => {
    const s = await start({ token: TOKEN });
    const routes: Array<[string, string, unknown]> = [
      ["POST", "/retrieve", { query: "scurvy", k: 1 }],
      ["GET", "/stats", undefined],
      ["GET", "/metrics", undefined],
      ["GET", "/nope", undefined],
    ];
    for (const [method, path, body] of routes) {
      const missing = await send(s, method, path, {}, body);
      expect([path, missing.status]).toEqual([path, 401]);
      expect(missing.headers["www-authenticate"]).toBe('Bearer realm="langchain-dpr"');
      expect(missing.json()).toMatchObject({ error: "Unauthorized" });
      expect(missing.json().message).toContain("the request has no Authorization header; send the header Authorization: Bearer <token>");

      const wrong = await send(s, method, path, { authorization: `Bearer ${TOKEN.slice(0, -1)}0` }, body);
      expect([path, wrong.status]).toEqual([path, 401]);
      expect(wrong.headers["www-authenticate"]).toBe('Bearer realm="langchain-dpr", error="invalid_token"');
      expect(wrong.json().message).toMatch(/^server: the bearer token is wrong/);
      expect(wrong.text).not.toContain(TOKEN.slice(0, 8));
    }
    expect((await send(s, "POST", "/retrieve", auth, { query: "scurvy", k: 1 })).status).toBe(200);
    expect((await send(s, "GET", "/stats", auth)).json()).toMatchObject({ requests: 1 });
    expect((await send(s, "GET", "/metrics", auth)).text).toContain(
      'dpr_http_requests_total{route="/retrieve",method="POST",status="401"} 2',
    );
    expect((await send(s, "GET", "/nope", auth)).status).toBe(404);
    expect(s.embeddings.queryCalls).toBe(1);
    const health = await send(s, "GET", "/health");
    expect(health.status).toBe(200);
    expect(health.json()).toMatchObject({ status: "ok" });
  });

  it("accepts the scheme in any case and refuses other schemes, a longer token and a prefix of it", async () => {
    const s = await start({ token: TOKEN });
    expect((await send(s, "GET", "/stats", { authorization: `bearer ${TOKEN}` })).status).toBe(200);
    const basic = await send(s, "GET", "/stats", { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString("base64")}` });
    expect(basic.status).toBe(401);
    expect(basic.json().message).toContain('an Authorization header that is not "Bearer <token>"');
    for (const t of [`${TOKEN}x`, TOKEN.slice(0, 16), `${TOKEN} extra`]) {
      expect((await send(s, "GET", "/stats", { authorization: `Bearer ${t}` })).status).toBe(401);
    }
  });

  it("with publicMetrics leaves /metrics open and still guards /stats and /retrieve", async () => {
    const s = await start({ token: TOKEN, publicMetrics: true });
    const metrics = await send(s, "GET", "/metrics");
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain("# TYPE dpr_http_requests_total counter");
    expect((await send(s, "GET", "/stats")).status).toBe(401);
    expect((await send(s, "POST", "/retrieve", {}, { query: "scurvy" })).status).toBe(401);
  });

  it("checks the Host before the token: a forged Host with the right token is refused", async () => {
    const s = await start({ token: TOKEN });
    expect((await send(s, "GET", "/stats", { ...auth, host: "rebind.attacker.example" })).status).toBe(403);
  });

  it("refuses weak or malformed tokens at createServer without echoing them", () => {
    const retriever = { retrieve: async () => ({}) as never };
    expect(() => createServer({ retriever, token: "hunter2" })).toThrow(
      "createServer: options.token is 7 characters long; a token must have 16 to 4096 (make one with: openssl rand -hex 32)",
    );
    try {
      createServer({ retriever, token: "has spaces in it, sixteen+" });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toMatch(/^createServer: options.token has characters a bearer token cannot carry/);
      expect((e as Error).message).not.toContain("has spaces");
    }
    expect(() => validateServerToken(42, "x")).toThrow("x must be a string, got number");
  });

  it("compares SHA-256 digests with crypto.timingSafeEqual, whatever the length of the guess", () => {
    const spy = crypto.timingSafeEqual;
    const calls: Array<[number, number]> = [];
    crypto.timingSafeEqual = (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      calls.push([a.byteLength, b.byteLength]);
      return spy(a, b);
    };
    syncBuiltinESMExports();
    try {
      const check = new BearerTokenCheck(TOKEN);
      expect(check.check(`Bearer ${TOKEN}`)).toBe("ok");
      expect(check.check("Bearer x")).toBe("wrong");
      expect(check.check(`Bearer ${TOKEN}${"y".repeat(5000)}`)).toBe("wrong");
      expect(check.check(`Bearer ${TOKEN.slice(0, -1)}`)).toBe("wrong");
      expect(check.check(undefined)).toBe("missing");
      expect(check.check("  ")).toBe("missing");
      expect(check.check(TOKEN)).toBe("malformed");
      expect(calls).toEqual([
        [32, 32],
        [32, 32],
        [32, 32],
        [32, 32],
      ]);
    } finally {
      crypto.timingSafeEqual = spy;
      syncBuiltinESMExports();
    }
  });
});

describe("CORS", () => {
  const preflight = (origin: string) => ({
    origin,
    "access-control-request-method": "POST",
    "access-control-request-headers": "content-type",
  });

  it("by default sends no Access-Control-Allow-Origin and refuses preflights, so cross-origin pages cannot read answers", async () => {
    const s = await start();
    const res = await send(s, "POST", "/retrieve", { origin: "https://attacker.example" }, { query: "scurvy" });
    expect(res.status).toBe(200); // served (a plain client may send Origin), but the browser withholds it from the page
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
    const pre = await send(s, "OPTIONS", "/retrieve", preflight("https://attacker.example"));
    expect(pre.status).toBe(403);
    expect(pre.headers["access-control-allow-origin"]).toBeUndefined();
    expect(pre.json().message).toContain('pages from origin "https://attacker.example" may not call this server (CORS origins: none)');
    expect(pre.json().message).toContain("--cors-origins https://attacker.example");
  });

  it("answers listed origins' preflights (without the token) and lets them read answers", async () => {
    const s = await start({ corsOrigins: ["http://localhost:5173"], token: TOKEN });
    const pre = await send(s, "OPTIONS", "/retrieve", preflight("http://localhost:5173"));
    expect(pre.status).toBe(204);
    expect(pre.headers).toMatchObject({
      "access-control-allow-origin": "http://localhost:5173",
      "access-control-allow-methods": "GET, POST",
      "access-control-allow-headers": "authorization, content-type",
      "access-control-max-age": "600",
      vary: "Origin",
    });
    const res = await send(
      s,
      "POST",
      "/retrieve",
      { origin: "http://localhost:5173", authorization: `Bearer ${TOKEN}` },
      { query: "scurvy" },
    );
    expect(res.status).toBe(200);
    expect(res.headers["access-control-allow-origin"]).toBe("http://localhost:5173");
    const unauth = await send(s, "POST", "/retrieve", { origin: "http://localhost:5173" }, { query: "scurvy" });
    expect(unauth.status).toBe(401);
    expect(unauth.headers["access-control-allow-origin"]).toBe("http://localhost:5173"); // the page can read why
    const other = await send(s, "GET", "/health", { origin: "http://localhost:5174" });
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();
    expect(other.headers.vary).toBe("Origin");
    expect((await send(s, "OPTIONS", "/retrieve", preflight("http://localhost:5174"))).status).toBe(403);
  });

  it("rejects CORS entries that are not origins", () => {
    const who = "createServer: options.corsOrigins";
    expect(normalizeCorsOrigins(["https://App.Example.com/", "http://localhost:5173"], who)).toEqual([
      "https://app.example.com",
      "http://localhost:5173",
    ]);
    for (const bad of ["*", "app.example.com", "https://app.example.com/path", "ftp://x.example"]) {
      expect(() => normalizeCorsOrigins([bad], who)).toThrow(`${who}: entry ${JSON.stringify(bad)} is not an origin`);
    }
  });
});

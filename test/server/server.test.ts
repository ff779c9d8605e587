import { afterEach, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { createServer, parseRetrieveRequest, type RetrievalServerOptions } from "../../src/server/server.js";
import { parsePrometheusText } from "../../src/server/metrics.js";
import { DPRRetriever } from "../../src/retrievers/dpr-retriever.js";
import { CORPUS, HashEmbeddings, OverlapReranker, VersionedMemoryStore } from "../retrievers/helpers.js";

const apps: FastifyInstance[] = [];

/** Polls `cond` every 10 ms; throws after `ms`. */
async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function start(opts: { delayMs?: number; reranker?: boolean } & Partial<RetrievalServerOptions> = {}) {
  const embeddings = new HashEmbeddings(64, opts.delayMs ?? 0);
  const store = await VersionedMemoryStore.fromDocs(CORPUS, embeddings);
  const retriever = new DPRRetriever({
    vectorStore: store,
    k: 3,
    fetchK: 8,
    reranker: opts.reranker ? new OverlapReranker(10) : undefined,
  });
  const app = createServer({ retriever, ...opts });
  apps.push(app);
  await app.listen({ port: 0, host: "127.0.0.1" });
  const addr = app.server.address();
  if (addr === null || typeof addr === "string") throw new Error("no port");
  const base = `http://127.0.0.1:${addr.port}`;
  const post = (body: unknown, headers: Record<string, string> = { "content-type": "application/json" }) =>
    fetch(`${base}/retrieve`, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });
  return { app, base, post, embeddings, retriever };
}

describe("POST /retrieve", () => {
  it("answers with the retriever's documents, scores and timings; a repeat is a cache hit", async () => {
    const { post } = await start();
    const res = await post({ query: "lemons scurvy sailors", k: 2 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { k: number; documents: Array<{ id: string; score: number }>; timings: { cacheHit: boolean } };
    expect(body.k).toBe(2);
    expect(body.documents).toHaveLength(2);
    expect(body.documents[0]!.score).toBeGreaterThanOrEqual(body.documents[1]!.score);
    expect(body.timings.cacheHit).toBe(false);
    const again = (await (await post({ query: "Lemons  scurvy sailors", k: 2 })).json()) as typeof body;
    expect(again.timings.cacheHit).toBe(true);
    expect(again.documents.map((d) => d.id)).toEqual(body.documents.map((d) => d.id));
  });

  it("reranks on request and reports relevanceScore", async () => {
    const { post } = await start({ reranker: true });
    const body = (await (await post({ query: "lemons sailors scurvy voyages", k: 1, rerank: true })).json()) as {
      documents: Array<{ id: string; relevanceScore: number }>;
    };
    expect(body.documents[0]).toMatchObject({ id: "d6", relevanceScore: 4 });
  });

  it("applies a metadata filter", async () => {
    const { post } = await start();
    const body = (await (await post({ query: "vitamin", k: 5, filter: { topic: "food" } })).json()) as { documents: Array<{ id: string }> };
    expect(body.documents.map((d) => d.id)).toEqual(["d3"]);
  });
});

describe("validation", () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ["a JSON array", [1, 2], /request body must be a JSON object.*got an array/],
    ["a missing query", { k: 3 }, /"query" must be a string, got nothing/],
    ["a non-string query", { query: 42 }, /"query" must be a string, got number/],
    ["an empty query", { query: "   " }, /"query" must not be empty/],
    ["an over-long query", { query: "x".repeat(201) }, /"query" is 201 characters long; the limit is 200/],
    ["k = 0", { query: "a", k: 0 }, /"k" must be an integer between 1 and 50, got 0/],
    ["k above the limit", { query: "a", k: 51 }, /"k" must be an integer between 1 and 50, got 51/],
    ["a fractional k", { query: "a", k: 2.5 }, /"k" must be an integer between 1 and 50, got 2.5/],
    ["k as a string", { query: "a", k: "3" }, /"k" must be an integer between 1 and 50, got "3"/],
    ["an unknown field", { query: "a", top_k: 3 }, /unknown field "top_k"/],
    ["a non-boolean rerank", { query: "a", rerank: "yes" }, /"rerank" must be true or false/],
    ["rerank without a reranker", { query: "a", rerank: true }, /"rerank" is true but this server has no reranker/],
    ["an array filter", { query: "a", filter: ["x"] }, /"filter" must be an object.*got an array/],
  ];
  it.each(cases)("answers 400 with a message for %s", async (_name, body, message) => {
    const { post } = await start({ maxQueryLength: 200, maxK: 50 });
    const res = await post(body);
    expect(res.status).toBe(400);
    const json = (await res.json()) as { error: string; message: string };
    expect(json.error).toBe("Bad Request");
    expect(json.message).toMatch(message);
    expect(json.message.startsWith("server: ")).toBe(true);
  });

  it("answers 400 for malformed JSON and 415 for a non-JSON content type", async () => {
    const { post } = await start();
    const bad = await post('{"query": "a",', { "content-type": "application/json" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/JSON/);
    const text = await post("query=a", { "content-type": "text/plain" });
    expect(text.status).toBe(415);
  });

  it("answers 413 for a body over the limit", async () => {
    const { post } = await start({ bodyLimit: 1024 });
    const res = await post({ query: "a".repeat(2000) });
    expect(res.status).toBe(413);
  });

  it("parseRetrieveRequest fills the default k", () => {
    const limits = { defaultK: 7, maxK: 10, maxQueryLength: 100, allowFilter: false, hasReranker: false };
    expect(parseRetrieveRequest({ query: "q" }, limits)).toEqual({ query: "q", k: 7 });
    expect(() => parseRetrieveRequest({ query: "q", filter: {} }, limits)).toThrow(/"filter" is not allowed/);
  });
});

describe("load shedding and timeouts", () => {
  it("answers 503 with Retry-After past maxConcurrent + maxQueue, and serves the rest", async () => {
    // Each retrieval takes ≥ 1.5 s in the encoder, so 7 simultaneous requests meet 2 slots + 2 queue places.
    const { post, app } = await start({ delayMs: 1500, maxConcurrent: 2, maxQueue: 2, requestTimeoutMs: 10_000 });
    const responses = await Promise.all(Array.from({ length: 7 }, (_, i) => post({ query: `distinct query ${i}` })));
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 200, 503, 503, 503]);
    const shed = responses.find((r) => r.status === 503)!;
    expect(shed.headers.get("retry-after")).toBe("1");
    expect(((await shed.json()) as { message: string }).message).toMatch(
      /server: saturated \(2 retrievals running, 2 queued; limits 2 \+ 2\)/,
    );
    expect(app.dprMetrics.rejected.get({ reason: "saturated" })).toBe(3);
    expect(app.dprLimiter.inFlight).toBe(0);
  });

  it("answers 504 past the deadline and holds the slot until the work really ends", async () => {
    const { post, app, embeddings } = await start({ delayMs: 2000, maxConcurrent: 1, maxQueue: 0, requestTimeoutMs: 100 });
    const res = await post({ query: "slow" });
    expect(res.status).toBe(504);
    expect(((await res.json()) as { message: string }).message).toBe("server: retrieval timed out after 100 ms");
    expect(app.dprLimiter.inFlight).toBe(1); // the encoder is still running
    expect((await post({ query: "other" })).status).toBe(503);
    await waitFor(() => app.dprLimiter.inFlight === 0, 5000);
    expect(embeddings.queryCalls).toBe(1);
    expect(app.dprMetrics.rejected.get({ reason: "timeout" })).toBe(1);
  });
});

describe("GET /metrics and /health", () => {
  it("exposes Prometheus text that parses, with request counters, stage histograms, cache counters and gauges", async () => {
    const { post, base } = await start({ reranker: true });
    await post({ query: "scurvy" }); // reranked by default: the server has a reranker
    await post({ query: "scurvy" });
    await post({ query: "insulin", rerank: false });
    await post({ query: "" });
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0.0.4/);
    const samples = parsePrometheusText(await res.text());
    const get = (name: string, labels: Record<string, string> = {}) =>
      samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    expect(get("dpr_http_requests_total", { route: "/retrieve", method: "POST", status: "200" })[0]!.value).toBe(3);
    expect(get("dpr_http_requests_total", { route: "/retrieve", status: "400" })[0]!.value).toBe(1);
    expect(get("dpr_cache_hits_total")[0]!.value).toBe(1);
    expect(get("dpr_cache_misses_total")[0]!.value).toBe(2);
    expect(get("dpr_retrieval_stage_duration_seconds_count", { stage: "encode" })[0]!.value).toBe(2);
    expect(get("dpr_retrieval_stage_duration_seconds_count", { stage: "total" })[0]!.value).toBe(3);
    expect(get("dpr_retrieval_stage_duration_seconds_count", { stage: "rerank" })[0]!.value).toBe(1);
    const buckets = get("dpr_retrieval_stage_duration_seconds_bucket", { stage: "total" });
    expect(buckets.at(-1)!.labels.le).toBe("+Inf");
    expect(buckets.at(-1)!.value).toBe(3);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    expect(get("dpr_requests_in_flight")[0]!.value).toBe(0);
    expect(get("dpr_requests_queued")[0]!.value).toBe(0);
  });

  it("reports health and retriever stats", async () => {
    const { base, post } = await start({ maxConcurrent: 3, maxQueue: 5 });
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok", inFlight: 0, maxConcurrent: 3, maxQueue: 5, reranker: false });
    await post({ query: "scurvy" });
    await post({ query: "scurvy" });
    const stats = (await (await fetch(`${base}/stats`)).json()) as { hitRate: number; requests: number };
    expect(stats).toMatchObject({ hitRate: 0.5, requests: 2 });
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
  });
});

describe("graceful close", () => {
  it("lets an in-flight retrieval finish, then refuses new connections", async () => {
    const { app, post, base } = await start({ delayMs: 1000 });
    const inflight = post({ query: "scurvy", k: 3 });
    await waitFor(() => app.dprLimiter.inFlight === 1, 5000);
    const closed = app.close();
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { documents: unknown[] }).documents).toHaveLength(3);
    await closed;
    await expect(fetch(`${base}/health`)).rejects.toThrow();
  });
});

/**
 * The HTTP retrieval server (fastify): `POST /retrieve`, `GET /health`, `GET /metrics`
 * (Prometheus text), `GET /stats` (retriever statistics as JSON).
 *
 * Load shedding: at most `maxConcurrent` retrievals run at once and at most `maxQueue` wait;
 * anything beyond is answered 503 at once (with `Retry-After`), never queued without bound.
 * Each retrieval has a deadline (`requestTimeoutMs`, queue wait included): past it the client gets
 * 504 and the retrieval is aborted at its next stage boundary; its slot is held until the work
 * really stops, so a timed-out request can never push more work onto the CPU than the limit says.
 *
 * Exposure (see security.ts): a Host check against DNS rebinding (`allowedHosts`), an optional
 * bearer token (`token`; `/health` stays open, `/metrics` too with `publicMetrics`), and CORS
 * headers only for listed origins (`corsOrigins`).
 *
 * @module
 */
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { DocumentInterface } from "@langchain/core/documents";
import type { RetrievalResult, RetrievalService } from "../retrievers/types.js";
import { ConcurrencyLimiter } from "./limiter.js";
import { Counter, Gauge, Histogram, MetricsRegistry } from "./metrics.js";
import {
  BearerTokenCheck,
  checkHost,
  normalizeAllowedHost,
  normalizeAllowedHosts,
  withListenHost,
  normalizeCorsOrigins,
  validateServerToken,
  type AllowedHosts,
} from "./security.js";

/** Options of {@link createServer}. */
export interface RetrievalServerOptions {
  /** What answers queries: DPRRetriever, HybridRetriever, TwoStageRetriever, or your own. */
  retriever: RetrievalService;
  /** Default k when a request omits it. Default 10. */
  defaultK?: number;
  /** Largest k a request may ask for. Default 100. */
  maxK?: number;
  /** Longest query in characters (UTF-16 code units). Default 1000. */
  maxQueryLength?: number;
  /** Retrievals running at once. Default 4. */
  maxConcurrent?: number;
  /** Retrievals waiting for a slot; beyond this, 503. Default 16. */
  maxQueue?: number;
  /** Deadline per retrieval in ms, queue wait included; past it, 504. Default 10 000. */
  requestTimeoutMs?: number;
  /** Whether requests may pass `filter` (forwarded to the store). Default true. */
  allowFilter?: boolean;
  /** Largest request body in bytes. Default 65 536. */
  bodyLimit?: number;
  /** Prefix of metric names. Default "dpr_". */
  metricsPrefix?: string;
  /** fastify logger setting. Default false. */
  logger?: FastifyServerOptions["logger"];
  /**
   * Which `Host` header values are answered; others get 403 (protection against DNS rebinding).
   * Default `"auto"`: listening on a loopback address, only `localhost`, `127.0.0.1`, `[::1]` and
   * the listening address (any port); listening on any other address, no check. A list of names
   * (`".example.com"` for a domain and its subdomains) is added to those and checked on every
   * address; `"all"` turns the check off.
   */
  allowedHosts?: AllowedHosts;
  /**
   * The host you pass to `listen` when it is a name (`"myhost"` resolving to 127.0.1.1): answered
   * as well as the listening address. Ignored under `allowedHosts: "all"`.
   */
  listenHost?: string;
  /**
   * Bearer token (16 to 4096 characters of `A-Za-z0-9-._~+/`, trailing `=`). When set, every route
   * except `GET /health` requires `Authorization: Bearer <token>`; otherwise 401. Default none.
   */
  token?: string;
  /** With a token: leave `GET /metrics` open (a Prometheus scraper on a private network). Default false. */
  publicMetrics?: boolean;
  /**
   * Origins (`"https://app.example.com"`) whose pages may read responses: they get
   * `Access-Control-Allow-Origin` and answered preflights. Default none: the server sends no CORS
   * headers, so browsers keep cross-origin pages from reading its answers.
   */
  corsOrigins?: readonly string[];
}

/** A validated `POST /retrieve` body. */
export interface RetrieveRequest {
  query: string;
  k: number;
  rerank?: boolean;
  filter?: Record<string, unknown>;
}

/** Limits applied by {@link parseRetrieveRequest}. */
export interface RequestLimits {
  defaultK: number;
  maxK: number;
  maxQueryLength: number;
  allowFilter: boolean;
  hasReranker: boolean;
}

/** A client error with an HTTP status, and headers the answer carries (e.g. `WWW-Authenticate`). */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

const ALLOWED_FIELDS = new Set(["query", "k", "rerank", "filter"]);

/**
 * Validates a `POST /retrieve` body; throws {@link HttpError} 400 naming the field and what was
 * expected.
 */
export function parseRetrieveRequest(body: unknown, limits: RequestLimits): RetrieveRequest {
  const bad = (msg: string) => new HttpError(400, `server: ${msg}`);
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw bad(
      `request body must be a JSON object like {"query": "...", "k": 10}, got ` +
        `${body === null ? "null" : Array.isArray(body) ? "an array" : typeof body}`,
    );
  }
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (!ALLOWED_FIELDS.has(key)) throw bad(`unknown field "${key}" (allowed: query, k, rerank, filter)`);
  }
  if (typeof b.query !== "string") throw bad(`"query" must be a string, got ${b.query === undefined ? "nothing" : typeof b.query}`);
  if (b.query.trim().length === 0) throw bad(`"query" must not be empty`);
  if (b.query.length > limits.maxQueryLength) {
    throw bad(`"query" is ${b.query.length} characters long; the limit is ${limits.maxQueryLength}`);
  }
  let k = limits.defaultK;
  if (b.k !== undefined) {
    if (typeof b.k !== "number" || !Number.isInteger(b.k) || b.k < 1 || b.k > limits.maxK) {
      throw bad(`"k" must be an integer between 1 and ${limits.maxK}, got ${JSON.stringify(b.k)}`);
    }
    k = b.k;
  }
  const out: RetrieveRequest = { query: b.query, k };
  if (b.rerank !== undefined) {
    if (typeof b.rerank !== "boolean") throw bad(`"rerank" must be true or false, got ${JSON.stringify(b.rerank)}`);
    if (b.rerank && !limits.hasReranker) throw bad(`"rerank" is true but this server has no reranker`);
    out.rerank = b.rerank;
  }
  if (b.filter !== undefined) {
    if (!limits.allowFilter) throw bad(`"filter" is not allowed on this server`);
    if (b.filter === null || typeof b.filter !== "object" || Array.isArray(b.filter)) {
      throw bad(
        `"filter" must be an object of metadata field → value, got ` +
          `${b.filter === null ? "null" : Array.isArray(b.filter) ? "an array" : typeof b.filter}`,
      );
    }
    out.filter = b.filter as Record<string, unknown>;
  }
  return out;
}

/** One document in a `/retrieve` response. */
export interface RetrievedDocumentJSON {
  id: string | null;
  pageContent: string;
  score: number | null;
  relevanceScore: number | null;
  metadata: Record<string, unknown>;
}

/**
 * One document of a result as JSON. `score` is the result's first-stage score (a service that
 * returns no `scores` falls back to `metadata.score`); `relevanceScore` the reranker's.
 */
function toJSON(doc: DocumentInterface, score: number | null | undefined): RetrievedDocumentJSON {
  const metadata: Record<string, unknown> = { ...(doc.metadata ?? {}) };
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const id = doc.id ?? metadata.id;
  return {
    id: typeof id === "string" ? id : typeof id === "number" ? String(id) : null,
    pageContent: doc.pageContent,
    score: num(score ?? metadata.score),
    relevanceScore: num(metadata.relevanceScore),
    metadata,
  };
}

/** Metrics the server keeps (exposed for tests and embedding applications). */
export interface ServerMetrics {
  registry: MetricsRegistry;
  requests: Counter;
  requestDuration: Histogram;
  stageDuration: Histogram;
  cacheHits: Counter;
  cacheMisses: Counter;
  rejected: Counter;
  inFlight: Gauge;
  queued: Gauge;
}

declare module "fastify" {
  interface FastifyInstance {
    /** The server's metrics (see {@link ServerMetrics}). */
    dprMetrics: ServerMetrics;
    /** The server's concurrency limiter. */
    dprLimiter: ConcurrencyLimiter;
  }
}

/**
 * Builds the fastify app (not listening yet: call `app.listen({ port, host })`). `app.close()`
 * drains: it stops accepting connections, answers 503 to new requests on open connections and
 * waits for in-flight requests to finish.
 *
 * @example
 * ```ts
 * const app = createServer({ retriever: new DPRRetriever({ vectorStore }), maxConcurrent: 4 });
 * await app.listen({ port: 8080, host: "127.0.0.1" });
 * ```
 */
export function createServer(options: RetrievalServerOptions): FastifyInstance {
  const retriever = options.retriever;
  if (retriever === undefined || typeof retriever.retrieve !== "function") {
    throw new Error("createServer: options.retriever must have a retrieve(query, options) method (e.g. a DPRRetriever)");
  }
  const limits: RequestLimits = {
    defaultK: options.defaultK ?? 10,
    maxK: options.maxK ?? 100,
    maxQueryLength: options.maxQueryLength ?? 1000,
    allowFilter: options.allowFilter ?? true,
    hasReranker: retriever.hasReranker === true,
  };
  for (const [name, v] of Object.entries({ defaultK: limits.defaultK, maxK: limits.maxK, maxQueryLength: limits.maxQueryLength })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`createServer: options.${name} must be an integer ≥ 1, got ${v}`);
  }
  if (limits.defaultK > limits.maxK) throw new Error(`createServer: defaultK (${limits.defaultK}) exceeds maxK (${limits.maxK})`);
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  if (!(timeoutMs > 0)) throw new Error(`createServer: options.requestTimeoutMs must be > 0, got ${timeoutMs}`);
  const limiter = new ConcurrencyLimiter(options.maxConcurrent ?? 4, options.maxQueue ?? 16);
  const allowedHosts = withListenHost(
    normalizeAllowedHosts(options.allowedHosts, "createServer: options.allowedHosts"),
    options.listenHost === undefined ? undefined : normalizeAllowedHost(options.listenHost, "createServer: options.listenHost"),
  );
  const corsOrigins = normalizeCorsOrigins(options.corsOrigins, "createServer: options.corsOrigins");
  const tokenCheck =
    options.token === undefined ? undefined : new BearerTokenCheck(validateServerToken(options.token, "createServer: options.token"));
  const openRoutes = new Set(["/health", ...(options.publicMetrics === true ? ["/metrics"] : [])]);

  const p = options.metricsPrefix ?? "dpr_";
  const registry = new MetricsRegistry();
  const metrics: ServerMetrics = {
    registry,
    requests: registry.register(
      new Counter(`${p}http_requests_total`, "HTTP requests by route, method and status code.", ["route", "method", "status"]),
    ),
    requestDuration: registry.register(new Histogram(`${p}http_request_duration_seconds`, "HTTP request duration by route.", ["route"])),
    stageDuration: registry.register(
      new Histogram(
        `${p}retrieval_stage_duration_seconds`,
        "Retrieval latency per stage (encode, search, rerank, total); cache hits count in total only.",
        ["stage"],
      ),
    ),
    cacheHits: registry.register(new Counter(`${p}cache_hits_total`, "Retrievals answered from the query cache.")),
    cacheMisses: registry.register(new Counter(`${p}cache_misses_total`, "Retrievals computed (cache miss or cache bypassed).")),
    rejected: registry.register(new Counter(`${p}requests_rejected_total`, "Retrievals refused or cut short, by reason.", ["reason"])),
    inFlight: registry.register(new Gauge(`${p}requests_in_flight`, "Retrievals running now.", () => limiter.inFlight)),
    queued: registry.register(new Gauge(`${p}requests_queued`, "Retrievals waiting for a slot.", () => limiter.queued)),
  };

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 65_536,
    return503OnClosing: true,
    forceCloseConnections: "idle",
    // Slow-client protection at the HTTP layer (receiving the request).
    requestTimeout: Math.max(30_000, timeoutMs),
  });
  // Only JSON bodies are accepted: without a parser for text/plain, fastify answers 415.
  app.removeContentTypeParser("text/plain");
  app.decorate("dprMetrics", metrics);
  app.decorate("dprLimiter", limiter);

  let draining = false;
  app.addHook("preClose", async () => {
    draining = true;
  });

  // While draining, close each keep-alive connection after its response so close() can finish.
  app.addHook("onSend", async (_req, reply, payload) => {
    if (draining) void reply.header("connection", "close");
    return payload;
  });

  app.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "unmatched";
    metrics.requests.inc({ route, method: req.method, status: String(reply.statusCode) });
    metrics.requestDuration.observe({ route }, reply.elapsedTime / 1000);
  });

  // Who may ask, checked before the body is read: Host, then CORS (preflights end here), then the token.
  app.addHook("onRequest", async (req, reply) => {
    const address = app.server.address();
    const decision = checkHost(
      allowedHosts,
      req.headers.host,
      typeof address === "object" && address !== null ? address.address : undefined,
    );
    if (!decision.allowed) throw hostRefused(req.headers.host, decision.host, decision.accepted);

    const origin = req.headers.origin;
    const corsAllowed = origin !== undefined && corsOrigins.includes(origin);
    if (corsOrigins.length > 0) void reply.header("vary", "Origin");
    if (corsAllowed) {
      void reply.header("access-control-allow-origin", origin);
      void reply.header("access-control-expose-headers", "Retry-After");
    }
    if (req.method === "OPTIONS" && origin !== undefined && req.headers["access-control-request-method"] !== undefined) {
      if (!corsAllowed) {
        throw new HttpError(
          403,
          `server: pages from origin ${JSON.stringify(origin.slice(0, 200))} may not call this server ` +
            `(CORS origins: ${corsOrigins.length > 0 ? corsOrigins.join(", ") : "none"}); ` +
            `to allow it start the server with --cors-origins ${origin.slice(0, 200)} (createServer option corsOrigins)`,
        );
      }
      return reply
        .status(204)
        .header("access-control-allow-methods", "GET, POST")
        .header("access-control-allow-headers", "authorization, content-type")
        .header("access-control-max-age", "600")
        .send();
    }

    if (tokenCheck !== undefined && !openRoutes.has(req.routeOptions.url ?? "")) {
      const verdict = tokenCheck.check(req.headers.authorization);
      if (verdict !== "ok") throw unauthorized(verdict);
    }
  });

  app.setErrorHandler((error: FastifyError | HttpError, _req, reply) => {
    if (error instanceof HttpError) for (const [name, value] of Object.entries(error.headers)) void reply.header(name, value);
    const status = typeof error.statusCode === "number" && error.statusCode >= 400 ? error.statusCode : 500;
    const message =
      error instanceof HttpError ? error.message : status < 500 ? `server: ${error.message}` : `server: retrieval failed: ${error.message}`;
    if (status >= 500) app.log.error(error);
    void reply.status(status).send({ error: httpReason(status), message });
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({
      error: "Not Found",
      message: `server: no route ${req.method} ${req.url} (routes: POST /retrieve, GET /health, GET /metrics, GET /stats)`,
    });
  });

  app.get("/health", async (_req, reply) => {
    const body = {
      status: draining ? "draining" : "ok",
      inFlight: limiter.inFlight,
      queued: limiter.queued,
      maxConcurrent: limiter.maxConcurrent,
      maxQueue: limiter.maxQueue,
      reranker: limits.hasReranker,
      uptimeSeconds: process.uptime(),
    };
    return reply.status(draining ? 503 : 200).send(body);
  });

  app.get("/metrics", async (_req, reply) => {
    return reply.header("content-type", MetricsRegistry.contentType).send(registry.render());
  });

  app.get("/stats", async () => {
    const withStats = retriever as RetrievalService & { getStats?: () => unknown };
    return typeof withStats.getStats === "function" ? withStats.getStats() : {};
  });

  app.post("/retrieve", async (req, reply) => {
    const request = parseRetrieveRequest(req.body, limits);
    if (draining) {
      metrics.rejected.inc({ reason: "shutdown" });
      throw new HttpError(503, "server: shutting down; not accepting new retrievals");
    }
    const ticket = limiter.tryAcquire();
    if (ticket === undefined) {
      metrics.rejected.inc({ reason: "saturated" });
      void reply.header("retry-after", "1");
      throw new HttpError(
        503,
        `server: saturated (${limiter.inFlight} retrievals running, ${limiter.queued} queued; limits ` +
          `${limiter.maxConcurrent} + ${limiter.maxQueue}); retry later`,
      );
    }
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    try {
      const granted = await Promise.race([ticket.ready.then(() => "granted" as const), deadline]);
      if (granted === "timeout") {
        ticket.release(); // still queued: leave the queue
        metrics.rejected.inc({ reason: "timeout" });
        throw new HttpError(504, `server: timed out after ${timeoutMs} ms waiting for a free slot`);
      }
      const work = retriever.retrieve(request.query, {
        k: request.k,
        rerank: request.rerank,
        filter: request.filter,
        signal: controller.signal,
      });
      // The slot is held until the work really ends, even after a timeout answer.
      work.then(ticket.release, ticket.release);
      const outcome = await Promise.race([work, deadline]);
      if (outcome === "timeout") {
        controller.abort(new Error(`deadline of ${timeoutMs} ms passed`));
        metrics.rejected.inc({ reason: "timeout" });
        throw new HttpError(504, `server: retrieval timed out after ${timeoutMs} ms`);
      }
      recordTimings(metrics, outcome);
      return {
        query: request.query,
        k: request.k,
        documents: outcome.documents.map((doc, i) => toJSON(doc, outcome.scores?.[i])),
        timings: outcome.timings,
      };
    } finally {
      clearTimeout(timer);
    }
  });

  return app;
}

function recordTimings(metrics: ServerMetrics, result: RetrievalResult): void {
  const t = result.timings;
  if (t.cacheHit) {
    metrics.cacheHits.inc();
  } else {
    metrics.cacheMisses.inc();
    metrics.stageDuration.observe({ stage: "encode" }, t.encodeMs / 1000);
    metrics.stageDuration.observe({ stage: "search" }, t.searchMs / 1000);
    if (t.rerankMs > 0) metrics.stageDuration.observe({ stage: "rerank" }, t.rerankMs / 1000);
  }
  metrics.stageDuration.observe({ stage: "total" }, t.totalMs / 1000);
}

function hostRefused(header: string | undefined, host: string | undefined, accepted: readonly string[]): HttpError {
  const shown = header === undefined ? "a request without a Host header" : `Host ${JSON.stringify(header.slice(0, 200))}`;
  const name = host ?? "<name>";
  return new HttpError(
    403,
    `server: ${shown} is not allowed; this server answers Host ${accepted.join(", ")} (any port). ` +
      `Other names are refused so that a web page cannot reach it through DNS rebinding. If you reach the server by ` +
      `this name, allow it: --allowed-hosts ${name} (createServer option allowedHosts: ["${name}"]), or "all" to turn the check off`,
  );
}

const REALM = 'Bearer realm="langchain-dpr"';

function unauthorized(verdict: "missing" | "malformed" | "wrong"): HttpError {
  const how =
    "send the header Authorization: Bearer <token>, with the token the server was started with (--token-file or DPR_SERVER_TOKEN)";
  if (verdict === "wrong") {
    return new HttpError(401, `server: the bearer token is wrong; ${how}`, { "www-authenticate": `${REALM}, error="invalid_token"` });
  }
  const what = verdict === "missing" ? "no Authorization header" : 'an Authorization header that is not "Bearer <token>"';
  return new HttpError(401, `server: this route needs a token and the request has ${what}; ${how}`, { "www-authenticate": REALM });
}

function httpReason(status: number): string {
  const reasons: Record<number, string> = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
  };
  return reasons[status] ?? (status >= 500 ? "Server Error" : "Client Error");
}

/** Options of {@link installGracefulShutdown}. */
export interface GracefulShutdownOptions {
  /** Signals that start the drain. Default SIGTERM and SIGINT. */
  signals?: NodeJS.Signals[];
  /** Force exit (code 1) if draining takes longer. Default 30 000 ms. */
  timeoutMs?: number;
  /** Called after the server closed, before exit (e.g. dispose ONNX sessions). */
  onClosed?: () => Promise<void> | void;
  /** Log function. Default console.error. */
  log?: (msg: string) => void;
}

/**
 * On SIGTERM/SIGINT: stop accepting, let in-flight retrievals finish, run `onClosed`, exit 0
 * (exit 1 if the drain exceeds `timeoutMs`). A second signal forces exit.
 */
export function installGracefulShutdown(app: FastifyInstance, options: GracefulShutdownOptions = {}): void {
  const log = options.log ?? ((m: string) => console.error(m));
  const timeoutMs = options.timeoutMs ?? 30_000;
  let closing = false;
  const handler = (signal: NodeJS.Signals) => {
    if (closing) {
      log(`server: second ${signal}; exiting now`);
      process.exit(1);
    }
    closing = true;
    log(`server: ${signal} received; draining ${app.dprLimiter.inFlight} in-flight and ${app.dprLimiter.queued} queued retrievals`);
    const force = setTimeout(() => {
      log(`server: drain exceeded ${timeoutMs} ms; exiting`);
      process.exit(1);
    }, timeoutMs);
    force.unref();
    app
      .close()
      .then(async () => {
        await options.onClosed?.();
        log("server: closed");
        process.exit(0);
      })
      .catch((e: unknown) => {
        log(`server: error while closing: ${e instanceof Error ? e.message : String(e)}`);
        process.exit(1);
      });
  };
  for (const s of options.signals ?? ["SIGTERM", "SIGINT"]) process.on(s, handler);
}

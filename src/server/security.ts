/**
 * Who may talk to the retrieval server: the Host check (against DNS rebinding), the optional bearer
 * token, and the CORS origins a browser page may read responses from.
 *
 * - **Host check.** A web page can point a name it controls at 127.0.0.1 (DNS rebinding) and then
 *   read a loopback server as if it were its own origin. The browser still sends the page's name in
 *   `Host`, so a server that answers only its own names is out of reach. By default (`"auto"`), a
 *   server listening on a loopback address answers only `Host: localhost`, `127.0.0.1`, `[::1]` and
 *   the address it listens on (any port); a server listening on any other address (0.0.0.0, a LAN
 *   address) checks nothing, since a reverse proxy in front of it decides the names. A list adds
 *   names and is checked whatever the address; `"all"` turns the check off.
 * - **Token.** When set, `Authorization: Bearer <token>` is required on every route except
 *   `/health` (and `/metrics` with `publicMetrics`). The comparison hashes both sides (SHA-256) and
 *   compares the digests with `crypto.timingSafeEqual`, so its time depends on neither the token's
 *   content nor its length.
 * - **CORS.** The server sends no `Access-Control-Allow-Origin` unless the page's origin is listed,
 *   so a cross-origin page cannot read its answers (the browser blocks them).
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";

/**
 * Which `Host` values the server answers: `"auto"` (the default; see the module comment), `"all"`
 * (no check), or host names added to the loopback names (`"api.example.com"`; `".example.com"` for
 * the name and all its subdomains; IP addresses; IPv6 in brackets or bare).
 */
export type AllowedHosts = "auto" | "all" | readonly string[];

/** The names a loopback server always answers (any port). */
export const LOOPBACK_HOST_NAMES: readonly string[] = ["localhost", "127.0.0.1", "[::1]"];

/** Shortest token accepted. */
export const TOKEN_MIN_LENGTH = 16;
/** Longest token accepted. */
export const TOKEN_MAX_LENGTH = 4096;

/** RFC 6750 `b64token`: what a bearer token may contain. */
const TOKEN_RE = /^[A-Za-z0-9\-._~+/]+=*$/;
const HOST_NAME_RE = /^\.?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;
/** A Host header: a name or IPv4 address, or a bracketed IPv6 address, then an optional port. */
const HOST_HEADER_RE = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::(\d{1,5}))?$/;

/** Whether `address` (as `server.address().address` gives it) is a loopback address. */
export function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase();
  if (isIPv4(a)) return a.startsWith("127.");
  if (a.startsWith("::ffff:") && isIPv4(a.slice(7))) return a.slice(7).startsWith("127.");
  return isIPv6(a) && (a === "::1" || a === "0:0:0:0:0:0:0:1");
}

/** An address as it appears in a Host header: IPv6 in brackets, lower case. */
function asHostName(address: string): string {
  const a = address.toLowerCase();
  return isIPv6(a) ? `[${a}]` : a;
}

/**
 * Normalizes one allowed-host entry (lower case, IPv6 bracketed, no trailing dot).
 * @param who - names the setting in the error, e.g. `"createServer: options.allowedHosts"` or `"serve: --allowed-hosts"`.
 * @throws Error naming `who`, the entry and the accepted forms.
 */
export function normalizeAllowedHost(entry: string, who: string): string {
  const raw = entry.trim().toLowerCase();
  const e = raw.endsWith(".") && raw.length > 1 ? raw.slice(0, -1) : raw;
  if (isIPv6(e)) return `[${e}]`;
  if (e.startsWith("[") && e.endsWith("]") && isIPv6(e.slice(1, -1))) return e;
  if (isIPv4(e) || (e.length <= 253 && HOST_NAME_RE.test(e))) return e;
  throw new Error(
    `${who}: entry ${JSON.stringify(entry)} is not a host name; expected a name like "api.example.com", ".example.com" ` +
      `(the name and its subdomains) or an IP address, without scheme, port or path`,
  );
}

/**
 * Validates an {@link AllowedHosts} setting and returns it normalized.
 * @throws Error naming `who` for a value that is neither "auto", "all" nor a list of host names.
 */
export function normalizeAllowedHosts(value: AllowedHosts | undefined, who: string): AllowedHosts {
  if (value === undefined || value === "auto" || value === "all") return value ?? "auto";
  if (!Array.isArray(value)) {
    throw new Error(`${who} must be "auto", "all" or an array of host names, got ${JSON.stringify(value)}`);
  }
  if (value.length === 0) throw new Error(`${who} is an empty list; give host names, "auto" (the default) or "all"`);
  return value.map((entry: unknown) => {
    if (typeof entry !== "string") throw new Error(`${who}: entries must be strings, got ${JSON.stringify(entry)}`);
    return normalizeAllowedHost(entry, who);
  });
}

/**
 * The host of a `Host` header: lower case, without port or trailing dot; `undefined` when the
 * header is missing or is not a host (a user part, a path, a bad port).
 */
export function hostOfHeader(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = HOST_HEADER_RE.exec(header.trim().toLowerCase());
  if (m === null) return undefined;
  if (m[2] !== undefined && Number(m[2]) > 65535) return undefined;
  const host = m[1]!;
  if (host.startsWith("[")) return isIPv6(host.slice(1, -1)) ? host : undefined;
  return host.endsWith(".") && host.length > 1 ? host.slice(0, -1) : host;
}

function matchesEntry(host: string, entry: string): boolean {
  return entry.startsWith(".") ? host === entry.slice(1) || host.endsWith(entry) : host === entry;
}

/** A normalized {@link AllowedHosts}, or `"auto"` with extra names (see {@link withListenHost}). */
export type HostPolicy = AllowedHosts | { auto: true; names: readonly string[] };

/**
 * Adds the name given to `listen` (`--host myhost`) to a policy: to a list as one more entry, to
 * `"auto"` as a name answered when the server listens on a loopback address.
 */
export function withListenHost(policy: AllowedHosts, listenHost: string | undefined): HostPolicy {
  if (listenHost === undefined || policy === "all" || isIPv4(listenHost) || listenHost.startsWith("[")) return policy;
  if (policy === "auto") return { auto: true, names: [listenHost] };
  return policy.includes(listenHost) ? policy : [...policy, listenHost];
}

/** What a Host check decided: `allowed: false` comes with the names that would have passed. */
export type HostDecision = { allowed: true } | { allowed: false; host: string | undefined; accepted: readonly string[] };

/**
 * Decides whether a request's `Host` header passes `policy` for a server listening on
 * `listenAddress` (`server.address().address`; `undefined` for a pipe or a server not listening).
 */
export function checkHost(policy: HostPolicy, header: string | undefined, listenAddress: string | undefined): HostDecision {
  if (policy === "all") return { allowed: true };
  const loopback = listenAddress !== undefined && isLoopbackAddress(listenAddress);
  const auto = policy === "auto" || !Array.isArray(policy);
  if (auto && !loopback) return { allowed: true };
  const accepted = [...LOOPBACK_HOST_NAMES];
  const bound =
    listenAddress === undefined || listenAddress === "0.0.0.0" || listenAddress === "::" ? undefined : asHostName(listenAddress);
  if (bound !== undefined && !accepted.includes(bound)) accepted.push(bound);
  const names: readonly string[] = policy === "auto" ? [] : "names" in policy ? policy.names : policy;
  for (const e of names) if (!accepted.includes(e)) accepted.push(e);
  const host = hostOfHeader(header);
  if (host !== undefined && accepted.some((e) => matchesEntry(host, e))) return { allowed: true };
  return { allowed: false, host, accepted };
}

/**
 * Checks a bearer token's shape: 16 to 4096 characters of RFC 6750's token alphabet
 * (letters, digits, `-._~+/`, trailing `=`). The message never contains the token.
 * @param source - where it came from, e.g. `"createServer: options.token"` or `"serve: DPR_SERVER_TOKEN"`.
 */
export function validateServerToken(token: unknown, source: string): string {
  if (typeof token !== "string") throw new Error(`${source} must be a string, got ${typeof token}`);
  if (token.length < TOKEN_MIN_LENGTH || token.length > TOKEN_MAX_LENGTH) {
    throw new Error(
      `${source} is ${token.length} characters long; a token must have ${TOKEN_MIN_LENGTH} to ${TOKEN_MAX_LENGTH} ` +
        `(make one with: openssl rand -hex 32)`,
    );
  }
  if (!TOKEN_RE.test(token)) {
    throw new Error(
      `${source} has characters a bearer token cannot carry; use letters, digits and -._~+/ (trailing = allowed), ` +
        `e.g. openssl rand -hex 32`,
    );
  }
  return token;
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** What {@link BearerTokenCheck.check} found in an `Authorization` header. */
export type TokenVerdict = "ok" | "missing" | "malformed" | "wrong";

/**
 * Checks `Authorization: Bearer <token>` headers against one token. Both sides are hashed with
 * SHA-256 and the digests compared with `crypto.timingSafeEqual`: the time taken does not depend
 * on how much of the token a guess got right, nor on its length.
 */
export class BearerTokenCheck {
  private readonly expected: Buffer;

  constructor(token: string) {
    this.expected = digest(validateServerToken(token, "BearerTokenCheck: token"));
  }

  /** The verdict for one `Authorization` header value. */
  check(authorization: string | undefined): TokenVerdict {
    if (authorization === undefined || authorization.trim() === "") return "missing";
    const m = /^Bearer +(\S+) *$/i.exec(authorization);
    if (m === null) return "malformed";
    return timingSafeEqual(digest(m[1]!), this.expected) ? "ok" : "wrong";
  }
}

/**
 * Validates a list of CORS origins (`"https://app.example.com"`, `"http://localhost:5173"`): each
 * must be a bare origin, scheme + host + optional port, as a browser sends it in `Origin`.
 * @throws Error naming `who` and the first bad entry, with the fix.
 */
export function normalizeCorsOrigins(value: readonly string[] | undefined, who: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`${who} must be an array of origins, got ${JSON.stringify(value)}`);
  return value.map((entry: unknown) => {
    if (typeof entry !== "string") throw new Error(`${who}: entries must be strings, got ${JSON.stringify(entry)}`);
    let origin: string | undefined;
    try {
      const url = new URL(entry);
      if ((url.protocol === "http:" || url.protocol === "https:") && url.origin === entry.replace(/\/$/, "").toLowerCase()) {
        origin = url.origin;
      }
    } catch {
      origin = undefined;
    }
    if (origin === undefined) {
      throw new Error(
        `${who}: entry ${JSON.stringify(entry)} is not an origin; expected scheme://host[:port] as a browser sends it ` +
          `in Origin, e.g. "https://app.example.com" or "http://localhost:5173" (no path, no wildcard)`,
      );
    }
    return origin;
  });
}

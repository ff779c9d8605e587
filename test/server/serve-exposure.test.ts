/**
 * `serve`'s exposure flags: --allowed-hosts, --cors-origins, --public-metrics, --token-file and
 * DPR_SERVER_TOKEN (parsing, the clear errors for bad values, and reading the token from real files).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseServeArgs, resolveServeToken } from "../../src/server/cli.js";
import { UsageError } from "../../src/utils/cli-args.js";

const TOKEN = "0123456789abcdef0123456789abcdef";
const base = ["--model", "m", "--index", "i"];

describe("serve exposure flags", () => {
  it("defaults to the auto Host check, no CORS origins, no token and guarded metrics", () => {
    expect(parseServeArgs(base)).toMatchObject({ allowedHosts: "auto", corsOrigins: [], publicMetrics: false, tokenFile: undefined });
  });

  it("parses --allowed-hosts lists (normalized), all and auto", () => {
    expect(parseServeArgs([...base, "--allowed-hosts", "A.example, .b.example,::1"])!.allowedHosts).toEqual([
      "a.example",
      ".b.example",
      "[::1]",
    ]);
    expect(parseServeArgs([...base, "--allowed-hosts", "all"])!.allowedHosts).toBe("all");
    expect(parseServeArgs([...base, "--allowed-hosts", "auto"])!.allowedHosts).toBe("auto");
  });

  it("parses --cors-origins, --public-metrics and --token-file", () => {
    const o = parseServeArgs([
      ...base,
      "--cors-origins",
      "http://localhost:5173,https://app.example",
      "--public-metrics",
      "--token-file",
      "/t",
    ]);
    expect(o).toMatchObject({ corsOrigins: ["http://localhost:5173", "https://app.example"], publicMetrics: true, tokenFile: "/t" });
  });

  const bad: Array<[string, string[], string]> = [
    [
      "a URL in --allowed-hosts",
      ["--allowed-hosts", "a.example,https://b.example"],
      'serve: --allowed-hosts: entry "https://b.example" is not a host name; expected a name like "api.example.com"',
    ],
    ["a port in --allowed-hosts", ["--allowed-hosts", "a.example:8080"], "without scheme, port or path"],
    [
      "an empty --allowed-hosts entry",
      ["--allowed-hosts", "a.example,,b"],
      'must be a comma-separated list without empty entries, got "a.example,,b"',
    ],
    [
      "all mixed with names",
      ["--allowed-hosts", "all,a.example"],
      'serve: --allowed-hosts all cannot be combined with host names, got "all,a.example"',
    ],
    [
      "a wildcard --cors-origins",
      ["--cors-origins", "*"],
      'serve: --cors-origins: entry "*" is not an origin; expected scheme://host[:port]',
    ],
    ["a path in --cors-origins", ["--cors-origins", "https://app.example/ui"], 'entry "https://app.example/ui" is not an origin'],
    ["an empty --token-file", ["--token-file", ""], "serve: --token-file needs a file path, got an empty string"],
    [
      "--token on the command line",
      ["--token", TOKEN],
      "serve: --token is not accepted: other users of this machine can read a command line (ps)",
    ],
  ];
  it.each(bad)("refuses %s with a usage error naming the flag", (_name, args, message) => {
    let caught: unknown;
    try {
      parseServeArgs([...base, ...args]);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as Error).message).toContain(message);
    expect((caught as Error).message).not.toContain(args[0] === "--token" ? TOKEN : "\u0000");
  });
});

describe("resolveServeToken", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "dpr-token-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function tokenFile(name: string, content: string, mode = 0o600): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, content);
    await chmod(path, mode);
    return path;
  }

  it("reads the token from a file without its newline, and warns when group or others may read the file", async () => {
    const warnings: string[] = [];
    const ok = await tokenFile("ok", `${TOKEN}\n`);
    expect(await resolveServeToken({ tokenFile: ok }, {}, (m) => warnings.push(m))).toBe(TOKEN);
    expect(warnings).toEqual([]);
    const open = await tokenFile("open", TOKEN, 0o644);
    expect(await resolveServeToken({ tokenFile: open }, {}, (m) => warnings.push(m))).toBe(TOKEN);
    expect(warnings).toEqual([`serve: warning: --token-file ${open} can be read by group or others (mode 644); chmod 600 ${open}\n`]);
  });

  it("reads DPR_SERVER_TOKEN, and gives undefined when no token is configured", async () => {
    expect(await resolveServeToken({}, { DPR_SERVER_TOKEN: TOKEN })).toBe(TOKEN);
    expect(await resolveServeToken({}, {})).toBeUndefined();
  });

  it("refuses both sources at once, empty values, missing, oversized and non-regular files, naming the source", async () => {
    const ok = await tokenFile("ok2", TOKEN);
    await expect(resolveServeToken({ tokenFile: ok }, { DPR_SERVER_TOKEN: TOKEN })).rejects.toThrow(
      "serve: both --token-file and DPR_SERVER_TOKEN are set; use one of them",
    );
    await expect(resolveServeToken({}, { DPR_SERVER_TOKEN: "" })).rejects.toThrow("serve: DPR_SERVER_TOKEN is set but empty");
    const empty = await tokenFile("empty", "\n");
    await expect(resolveServeToken({ tokenFile: empty }, {})).rejects.toThrow(`serve: --token-file ${empty} is empty; write the token`);
    await expect(resolveServeToken({ tokenFile: join(dir, "nope") }, {})).rejects.toThrow(
      `serve: --token-file ${join(dir, "nope")}: cannot open it (ENOENT)`,
    );
    const big = await tokenFile("big", "a".repeat(9000));
    await expect(resolveServeToken({ tokenFile: big }, {})).rejects.toThrow(
      `serve: --token-file ${big} is 9000 bytes; a token file holds one token`,
    );
    const sub = join(dir, "sub");
    await mkdir(sub);
    await expect(resolveServeToken({ tokenFile: sub }, {})).rejects.toThrow(`serve: --token-file ${sub} is not a regular file`);
  });

  it("refuses weak tokens without printing them", async () => {
    const short = await tokenFile("short", "hunter2\n");
    await expect(resolveServeToken({ tokenFile: short }, {})).rejects.toThrow(
      `serve: --token-file ${short} is 7 characters long; a token must have 16 to 4096 (make one with: openssl rand -hex 32)`,
    );
    const spaced = "correct horse battery staple";
    const err = await resolveServeToken({}, { DPR_SERVER_TOKEN: spaced }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^serve: DPR_SERVER_TOKEN has characters a bearer token cannot carry/);
    expect((err as Error).message).not.toContain("horse");
  });
});

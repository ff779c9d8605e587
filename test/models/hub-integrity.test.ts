/**
 * What a hostile or broken hub server cannot do to the cache (issue #16): bodies cut short with or
 * without Content-Length, wrong SHA-256 digests, oversize files, colliding cache folder names, temp
 * files of killed downloads. A real node:http server on 127.0.0.1 serves scripted answers per path.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

import {
  DEFAULT_MAX_DOWNLOAD_BYTES,
  cachedModelDir,
  downloadModel,
  isHubId,
  loadFromHub,
  repairCachedModel,
} from "../../src/models/hub.js";
import { ProtoWriter } from "../../src/models/onnx/protobuf.js";
import { encodeSafetensors } from "../../src/models/safetensors.js";
import { BertTokenizer } from "../../src/tokenizers/bert-tokenizer.js";
import { listFiles } from "../embeddings/fake-hub.js";

type Handler = (res: ServerResponse, req: IncomingMessage) => void;

/** A server that answers each path with a scripted handler (404 otherwise) and records every request. */
class ScriptedHub {
  readonly routes = new Map<string, Handler>();
  requests: string[] = [];
  endpoint = "";
  private server!: Server;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const url = decodeURIComponent(req.url ?? "/");
      this.requests.push(url);
      const handler = this.routes.get(url);
      if (!handler) {
        res.statusCode = 404;
        res.end("not found");
        return;
      }
      handler(res, req);
    });
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Routes `/{repo}/resolve/{revision}/{path}` (revision as the client encodes it, decoded). */
  file(repo: string, path: string, handler: Handler, revision = "main"): void {
    this.routes.set(`/${repo}/resolve/${revision}/${path}`, handler);
  }

  count(fragment: string): number {
    return this.requests.filter((r) => r.includes(fragment)).length;
  }
}

/** Answers the whole body with Content-Length and the given headers. */
function whole(body: Uint8Array, headers: Record<string, string> = {}): Handler {
  return (res) => {
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.setHeader("content-length", body.byteLength);
    res.end(body);
  };
}

/** Answers without Content-Length (nor chunked encoding: the body ends when the connection closes), cut after `cut` bytes. */
function noLength(body: Uint8Array, cut = body.byteLength, headers: Record<string, string> = {}): Handler {
  return (res) => {
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.removeHeader("transfer-encoding");
    res.write(body.subarray(0, cut), () => res.destroy());
  };
}

/** A 302 to `location` carrying the given headers (as the hub's resolve answer for LFS files). */
function redirect(location: string, headers: Record<string, string> = {}): Handler {
  return (res) => {
    res.statusCode = 302;
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.setHeader("location", location);
    res.end();
  };
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const utf8 = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));

const CONFIG = utf8(JSON.stringify({ model_type: "bert", hidden_size: 8, vocab_size: 6, note: "x".repeat(200) }));
const VOCAB = utf8("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nscurvy\n");
const SAFETENSORS = (() => {
  const data = new Float32Array(64).map((_, i) => i / 7);
  return new Uint8Array(Buffer.concat(encodeSafetensors(new Map([["w", { name: "w", shape: [8, 8], data }]]))));
})();
/** A ModelProto's framing: ir_version, producer_name, graph (field 7) with a name and some bytes, opset_import. */
const ONNX = new ProtoWriter()
  .varint(1, 8)
  .string(2, "test")
  .message(7, new ProtoWriter().string(2, "g").bytes(5, new Uint8Array(300).fill(3)))
  .message(8, new ProtoWriter().varint(2, 17))
  .finish();
const DATA = new Uint8Array(4096).map((_, i) => (i * 31) % 251);

let root: string;
const hub = new ScriptedHub();
let cacheDir: string;
let caseNo = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "dpr-hub-integrity-"));
  await hub.start();
});

afterAll(async () => {
  await hub.stop();
  await rm(root, { recursive: true, force: true });
});

beforeEach(() => {
  hub.routes.clear();
  hub.requests = [];
  cacheDir = join(root, `cache-${++caseNo}`);
});

const params = (extra: Record<string, unknown> = {}) => ({ endpoint: hub.endpoint, cacheDir, retries: 0, ...extra });

describe("hub downloads are verified before they are cached", () => {
  it.each([
    ["config.json", CONFIG, /config\.json is not valid JSON \(truncated\?\)/],
    ["adapter_model.safetensors", SAFETENSORS, /adapter_model\.safetensors is \d+ bytes but its header describes \d+ \(truncated\)/],
    ["model.onnx", ONNX, /model\.onnx ends inside a protobuf field after \d+ bytes \(truncated\)/],
  ])(
    "a body cut off without Content-Length is refused by the format check of %s, nothing is cached, and the next call fetches it whole",
    async (path, body, message) => {
      const repo = "acme/cut";
      if (path !== "config.json") hub.file(repo, "config.json", whole(CONFIG));
      hub.file(repo, path, noLength(body, body.byteLength - 40));
      const files = path === "config.json" ? [path] : ["config.json", path];
      await expect(downloadModel(repo, params({ files }))).rejects.toThrow(message);
      const dir = cachedModelDir(cacheDir, repo, "main");
      const left = await listFiles(dir);
      expect(left).not.toContain(path);
      expect(left).not.toContain(".complete.json");
      expect(left.filter((f) => f.includes(".tmp-"))).toEqual([]);

      hub.file(repo, path, noLength(body));
      expect(await downloadModel(repo, params({ files }))).toBe(dir);
      expect(new Uint8Array(await readFile(join(dir, path)))).toEqual(body);
      const marker = JSON.parse(await readFile(join(dir, ".complete.json"), "utf8"));
      expect(marker.entries[path]).toEqual({ size: body.byteLength, sha256: sha256(body), checks: [expect.stringMatching(/^format:/)] });
    },
  );

  it("X-Linked-Size on the hub's redirect catches a cut body no format can tell (ONNX external data)", async () => {
    const repo = "acme/linked";
    hub.file(repo, "config.json", whole(CONFIG));
    hub.file(repo, "model.onnx.data", redirect("/cdn/model.onnx.data", { "x-linked-size": String(DATA.byteLength) }));
    hub.routes.set("/cdn/model.onnx.data", noLength(DATA, 1000));
    const files = ["config.json", "model.onnx.data"];
    await expect(downloadModel(repo, params({ files }))).rejects.toThrow(
      /hub: download of http:\/\/127\.0\.0\.1:\d+\/acme\/linked\/resolve\/main\/model\.onnx\.data was interrupted: received 1000 of the 4096 bytes x-linked-size announced/,
    );
    hub.routes.set("/cdn/model.onnx.data", noLength(DATA));
    const dir = await downloadModel(repo, params({ files }));
    expect(new Uint8Array(await readFile(join(dir, "model.onnx.data")))).toEqual(DATA);
    const marker = JSON.parse(await readFile(join(dir, ".complete.json"), "utf8"));
    expect(marker.entries["model.onnx.data"].checks).toEqual(["size:x-linked-size"]);
  });

  it("Content-Length and X-Linked-Size that disagree refuse the file before reading it", async () => {
    const repo = "acme/disagree";
    hub.file(repo, "config.json", redirect("/cdn/config.json", { "x-linked-size": String(CONFIG.byteLength + 1) }));
    hub.routes.set("/cdn/config.json", whole(CONFIG));
    await expect(downloadModel(repo, params({ files: ["config.json"] }))).rejects.toThrow(
      `the response headers disagree on the size (x-linked-size ${CONFIG.byteLength + 1}, content-length ${CONFIG.byteLength})`,
    );
  });

  it("a SHA-256 other than the 64-hex ETag or X-Linked-Etag is refused, naming the header; a match is recorded", async () => {
    const repo = "acme/etag";
    const wrong = sha256(utf8("something else"));
    hub.file(repo, "config.json", whole(CONFIG, { etag: `"${wrong}"` }));
    const got = sha256(CONFIG);
    await expect(downloadModel(repo, params({ files: ["config.json"] }))).rejects.toThrow(
      `/acme/etag/resolve/main/config.json: the content's SHA-256 is ${got}, the ETag header says ${wrong}; the file was not stored`,
    );
    expect(await listFiles(cachedModelDir(cacheDir, repo, "main"))).toEqual([]);

    // LFS: the hub's 302 carries X-Linked-Etag, the CDN's answer an ETag that is no SHA-256 (an MD5).
    hub.file(repo, "config.json", redirect("/cdn/config.json", { "x-linked-etag": `"${wrong}"` }));
    hub.routes.set("/cdn/config.json", whole(CONFIG, { etag: '"0123456789abcdef0123456789abcdef"' }));
    await expect(downloadModel(repo, params({ files: ["config.json"] }))).rejects.toThrow(`the X-Linked-Etag header says ${wrong}`);

    hub.file(repo, "config.json", redirect("/cdn/config.json", { "x-linked-etag": `"${sha256(CONFIG)}"` }));
    const dir = await downloadModel(repo, params({ files: ["config.json"] }));
    const marker = JSON.parse(await readFile(join(dir, ".complete.json"), "utf8"));
    expect(marker.entries["config.json"].checks).toEqual(["size:content-length", "sha256:x-linked-etag", "format:json"]);
  });

  it("a git blob ETag (40 hex digits), a weak ETag, or a CDN's ETag is not taken for a SHA-256", async () => {
    const repo = "acme/gitetag";
    hub.file(repo, "config.json", whole(CONFIG, { etag: '"0123456789abcdef0123456789abcdef01234567"' }));
    hub.file(repo, "vocab.txt", whole(VOCAB, { etag: `W/"${sha256(utf8("other"))}"` }));
    // The ETag a CDN further down the redirects gives is its own: only the resolve URL's answer counts.
    hub.file(repo, "model.onnx.data", redirect("/cdn/data"));
    hub.routes.set("/cdn/data", whole(DATA, { etag: `"${sha256(utf8("cdn's own tag"))}"` }));
    const dir = await downloadModel(repo, params({ files: ["config.json", "vocab.txt", "model.onnx.data"] }));
    expect(new Uint8Array(await readFile(join(dir, "vocab.txt")))).toEqual(VOCAB);
    expect(new Uint8Array(await readFile(join(dir, "model.onnx.data")))).toEqual(DATA);
  });

  it("the caller's sha256 per file is checked, and a cached file with another digest is fetched again", async () => {
    const repo = "acme/pinned";
    hub.file(repo, "config.json", whole(CONFIG));
    hub.file(repo, "vocab.txt", whole(VOCAB));
    const files = ["config.json", "vocab.txt"];
    const wrong = sha256(utf8("v2"));
    await expect(downloadModel(repo, params({ files, sha256: { "vocab.txt": wrong } }))).rejects.toThrow(
      `the content's SHA-256 is ${sha256(VOCAB)}, the caller's sha256["vocab.txt"] says ${wrong}`,
    );
    await expect(downloadModel(repo, params({ files, sha256: { "vocab.txt": "abc" } }))).rejects.toThrow(
      'hub: sha256["vocab.txt"] must be 64 hex digits (a SHA-256 digest), got "abc"',
    );
    await expect(downloadModel(repo, params({ files, sha256: { "tokenizer.json": sha256(VOCAB) } }))).rejects.toThrow(
      "hub: sha256 names 'tokenizer.json', not among the files of acme/pinned@main (config.json, vocab.txt)",
    );
    const dir = await downloadModel(repo, params({ files, sha256: { "vocab.txt": sha256(VOCAB).toUpperCase() } }));
    expect(JSON.parse(await readFile(join(dir, ".complete.json"), "utf8")).entries["vocab.txt"].checks).toContain("sha256:caller");

    // The server now has another vocab.txt; a caller pinning it gets it, without config.json fetched again.
    const v2 = utf8("[PAD]\n[UNK]\n[CLS]\n[SEP]\nv2\n");
    hub.file(repo, "vocab.txt", whole(v2));
    hub.requests = [];
    await downloadModel(repo, params({ files, sha256: { "vocab.txt": sha256(v2) } }));
    expect(new Uint8Array(await readFile(join(dir, "vocab.txt")))).toEqual(v2);
    expect(hub.count("config.json")).toBe(0);
  });
});

describe("weights that fail to export", () => {
  it("are fetched once more; the same bytes twice report the export error, and the next call does not fetch them again", async () => {
    const repo = "acme/badweights";
    hub.file(repo, "config.json", whole(CONFIG));
    hub.file(repo, "model.safetensors", whole(SAFETENSORS));
    const p = params({ files: ["config.json", "model.safetensors"] });
    // CONFIG is no complete BERT config: the ONNX export of model.safetensors fails, whatever its bytes.
    await expect(downloadModel(repo, p)).rejects.toThrow("missing required key 'num_hidden_layers'");
    expect(hub.count("model.safetensors")).toBe(2);
    hub.requests = [];
    await expect(downloadModel(repo, p)).rejects.toThrow("missing required key 'num_hidden_layers'");
    expect(hub.requests).toEqual([]);
  });
});

describe("maximum download size", () => {
  it("is 8 GiB by default, and a file announced larger is refused before the CDN is asked", async () => {
    expect(DEFAULT_MAX_DOWNLOAD_BYTES).toBe(8 * 1024 ** 3);
    const repo = "acme/huge";
    hub.file(repo, "config.json", whole(CONFIG));
    hub.file(repo, "model.safetensors", redirect("/cdn/huge", { "x-linked-size": String(9 * 1024 ** 3) }));
    await expect(downloadModel(repo, params({ files: ["config.json", "model.safetensors"] }))).rejects.toThrow(
      /model\.safetensors: the file is 9663676416 bytes \(x-linked-size\), over the \d+ bytes left of maxDownloadBytes \(8589934592\) for acme\/huge@main; pass a larger maxDownloadBytes to allow it/,
    );
    expect(hub.count("/cdn/")).toBe(0);
  });

  it("is enforced while the bytes stream when no size is announced: the transfer stops soon after the limit", async () => {
    const repo = "acme/endless";
    const chunk = new Uint8Array(64 * 1024).fill(7);
    const total = 256 * 1024 * 1024;
    let sent = 0;
    let closed!: Promise<unknown>;
    hub.file(repo, "config.json", whole(CONFIG));
    hub.file(repo, "model.onnx.data", (res) => {
      res.removeHeader("transfer-encoding");
      closed = once(res, "close");
      const pump = () => {
        while (sent < total && !res.destroyed) {
          sent += chunk.byteLength;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    });
    const limit = 1024 * 1024;
    await expect(downloadModel(repo, params({ files: ["config.json", "model.onnx.data"], maxDownloadBytes: limit }))).rejects.toThrow(
      /model\.onnx\.data: stopped after \d+ bytes, over the \d+ bytes left of maxDownloadBytes \(1048576\)/,
    );
    await closed;
    // Socket buffers hold a few MiB at most: the server was stopped long before its 256 MiB.
    expect(sent).toBeLessThan(64 * 1024 * 1024);
    const left = await listFiles(cachedModelDir(cacheDir, repo, "main"));
    expect(left.filter((f) => f.includes("model.onnx.data"))).toEqual([]);
    await expect(downloadModel(repo, params({ files: ["config.json"], maxDownloadBytes: 0 }))).rejects.toThrow(
      "hub: maxDownloadBytes must be a positive integer (bytes) or Infinity, got 0",
    );
  });

  it("counts the files already cached, so resuming cannot grow a revision past the limit", async () => {
    const repo = "acme/resume";
    hub.file(repo, "config.json", whole(CONFIG));
    hub.file(repo, "model.onnx.data", whole(DATA));
    const files = ["config.json", "model.onnx.data"];
    // config.json arrives, then the data file is refused: the limit leaves it too few bytes.
    const limit = CONFIG.byteLength + DATA.byteLength - 1;
    await expect(downloadModel(repo, params({ files, maxDownloadBytes: limit }))).rejects.toThrow(
      `the file is 4096 bytes (content-length), over the ${DATA.byteLength - 1} bytes left of maxDownloadBytes (${limit})`,
    );
    await expect(downloadModel(repo, params({ files, maxDownloadBytes: limit }))).rejects.toThrow(
      `bytes left of maxDownloadBytes (${limit})`,
    );
    expect(hub.count("config.json")).toBe(1);
  });
});

describe("cache folder names", () => {
  it("revisions v1/x and v1_x get different folders, each with its own files", async () => {
    const repo = "acme/revs";
    const a = utf8('{"rev":"v1/x"}');
    const b = utf8('{"rev":"v1_x"}');
    hub.file(repo, "config.json", whole(a), "v1/x");
    hub.file(repo, "config.json", whole(b), "v1_x");
    const dirA = await downloadModel(repo, params({ revision: "v1/x", files: ["config.json"] }));
    const dirB = await downloadModel(repo, params({ revision: "v1_x", files: ["config.json"] }));
    expect(dirA).toBe(join(cacheDir, "models--acme--revs", "v1%2Fx"));
    expect(dirB).toBe(join(cacheDir, "models--acme--revs", "v1_x"));
    expect(await readFile(join(dirA, "config.json"), "utf8")).toBe('{"rev":"v1/x"}');
    expect(await readFile(join(dirB, "config.json"), "utf8")).toBe('{"rev":"v1_x"}');
    // '%' itself is escaped, so 'v1%2Fx' cannot take v1/x's folder.
    expect(cachedModelDir(cacheDir, repo, "v1%2Fx")).toBe(join(cacheDir, "models--acme--revs", "v1%252Fx"));
  });

  it("repository ids with '--' (a--b/c, a/b--c would share models--a--b--c) and revisions with '..' are refused", async () => {
    for (const repo of ["a--b/c", "a/b--c"]) {
      expect(isHubId(repo)).toBe(false);
      await expect(downloadModel(repo, params())).rejects.toThrow(
        `hub: '${repo}' is not a repository id like owner/name: '--' is not allowed in a repository id (Hugging Face refuses it)`,
      );
    }
    await expect(downloadModel("acme/x", params({ revision: ".." }))).rejects.toThrow(
      `hub: revision ".." of acme/x is not valid: a revision may not start with '.'`,
    );
    await expect(downloadModel("acme/x", params({ revision: "a/../b" }))).rejects.toThrow("a revision may not contain '..'");
  });

  it("a folder written by the earlier version is still served; one it filled with another revision is not", async () => {
    const repo = "acme/legacy";
    const legacy = join(cacheDir, "models--acme--legacy", "main");
    await mkdir(legacy, { recursive: true });
    await writeFile(join(legacy, "config.json"), CONFIG);
    const oldMarker = { repo, revision: "main", endpoint: hub.endpoint, quantized: false, files: ["config.json"] };
    await writeFile(join(legacy, ".complete.json"), JSON.stringify(oldMarker));
    expect(await downloadModel(repo, params())).toBe(legacy);
    expect(hub.requests).toEqual([]);

    // The earlier version put revision v1/x into v1_x; asking for v1_x must not get v1/x's files.
    const lossy = join(cacheDir, "models--acme--legacy", "v1_x");
    await mkdir(lossy, { recursive: true });
    await writeFile(join(lossy, "config.json"), '{"rev":"v1/x"}');
    await writeFile(join(lossy, ".complete.json"), JSON.stringify({ ...oldMarker, revision: "v1/x" }));
    hub.file(repo, "config.json", whole(utf8('{"rev":"v1_x"}')), "v1_x");
    expect(await downloadModel(repo, params({ revision: "v1_x", files: ["config.json"] }))).toBe(lossy);
    expect(await readFile(join(lossy, "config.json"), "utf8")).toBe('{"rev":"v1_x"}');
  });

  it("a folder holding a revision that differs only in case (a case-insensitive file system) is refused, not emptied", async () => {
    const repo = "acme/cased";
    const dir = cachedModelDir(cacheDir, repo, "main");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "config.json"), CONFIG);
    const entries = { "config.json": { size: CONFIG.byteLength, sha256: sha256(CONFIG), checks: [] } };
    const marker = { version: 2, repo, revision: "Main", quantized: false, files: ["config.json"], entries };
    await writeFile(join(dir, ".complete.json"), JSON.stringify(marker));
    await expect(downloadModel(repo, params({ files: ["config.json"] }))).rejects.toThrow(
      `hub: the cache folder ${dir} holds acme/cased@Main, not acme/cased@main: their names differ only in case`,
    );
    expect(await listFiles(dir)).toEqual([".complete.json", "config.json"]);
  });
});

describe("temporary files of killed downloads", () => {
  it("are removed on the next download when their process is gone or they are over an hour old; a live writer's stay", async () => {
    const repo = "acme/temps";
    hub.file(repo, "config.json", whole(CONFIG));
    const dir = cachedModelDir(cacheDir, repo, "main");
    await mkdir(join(dir, "onnx"), { recursive: true });
    const dead = spawn(process.execPath, ["-e", ""]);
    await once(dead, "exit");
    const live = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"]);
    try {
      const names = {
        dead: `.model.onnx.data.tmp-${dead.pid}-0123abcd`,
        deadInSub: `onnx/.model.onnx.tmp-${dead.pid}-89abcdef`,
        live: `.vocab.txt.tmp-${live.pid}-00000000`,
        liveOld: `.tokenizer.json.tmp-${live.pid}-11111111`,
        notTemp: "notes.tmp",
      };
      for (const name of Object.values(names)) await writeFile(join(dir, name), "partial");
      const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
      await utimes(join(dir, names.liveOld), twoHoursAgo, twoHoursAgo);
      await downloadModel(repo, params({ files: ["config.json"] }));
      const left = await listFiles(dir);
      expect(left).toContain(names.live);
      expect(left).toContain(names.notTemp);
      for (const gone of [names.dead, names.deadInSub, names.liveOld]) expect(left).not.toContain(gone);
    } finally {
      live.kill();
    }
  });
});

describe("a good download", () => {
  it("is stored whole, recorded with its checks, and served again with the server unreachable", async () => {
    const repo = "acme/good";
    hub.file(repo, "config.json", whole(CONFIG));
    hub.file(repo, "vocab.txt", whole(VOCAB));
    hub.file(repo, "model.onnx", whole(ONNX));
    hub.file(
      repo,
      "model.safetensors",
      redirect("/cdn/st", { "x-linked-etag": `"${sha256(SAFETENSORS)}"`, "x-linked-size": `${SAFETENSORS.byteLength}` }),
    );
    hub.routes.set("/cdn/st", whole(SAFETENSORS));
    hub.routes.set(`/api/models/${repo}/revision/main`, (res) => {
      res.end(
        JSON.stringify({
          siblings: ["config.json", "vocab.txt", "model.onnx", "model.safetensors", "tf_model.h5"].map((rfilename) => ({ rfilename })),
        }),
      );
    });
    const dir = await downloadModel(repo, { endpoint: hub.endpoint, cacheDir });
    expect(await listFiles(dir)).toEqual([".complete.json", "config.json", "model.onnx", "model.safetensors", "vocab.txt"]);
    expect(new Uint8Array(await readFile(join(dir, "model.safetensors")))).toEqual(SAFETENSORS);
    const marker = JSON.parse(await readFile(join(dir, ".complete.json"), "utf8"));
    expect(marker.entries["model.safetensors"]).toEqual({
      size: SAFETENSORS.byteLength,
      sha256: sha256(SAFETENSORS),
      checks: ["size:x-linked-size", "size:content-length", "sha256:x-linked-etag", "format:safetensors"],
    });

    // Nothing listens on port 1: the cache answers alone.
    expect(await downloadModel(repo, { endpoint: "http://127.0.0.1:1", cacheDir })).toBe(dir);
    // A cached file whose size changed on disk is fetched again, and only it.
    await writeFile(join(dir, "vocab.txt"), "[PAD]\n");
    hub.requests = [];
    await downloadModel(repo, { endpoint: hub.endpoint, cacheDir });
    expect(new Uint8Array(await readFile(join(dir, "vocab.txt")))).toEqual(VOCAB);
    expect(hub.requests.filter((r) => r.includes("/resolve/"))).toEqual([`/${repo}/resolve/main/vocab.txt`]);
  });
});

describe("loadFromHub", () => {
  it("re-fetches, once, cached files no SHA-256 vouched for when loading fails, and loads the whole file", async () => {
    const repo = "acme/cutvocab";
    hub.file(repo, "config.json", whole(CONFIG));
    // Cut at a line end, without Content-Length: valid UTF-8, nothing can tell it is short.
    hub.file(repo, "vocab.txt", noLength(VOCAB, "[PAD]\n[UNK]\n".length));
    const p = params({ files: ["config.json", "vocab.txt"] });
    const dir = await downloadModel(repo, p);
    await expect(BertTokenizer.fromDir(dir)).rejects.toThrow('the cls token "[CLS]" is not in the vocabulary');

    hub.file(repo, "vocab.txt", noLength(VOCAB));
    hub.requests = [];
    const tokenizer = await loadFromHub(repo, p, (d) => BertTokenizer.fromDir(d));
    expect(tokenizer.tokenize("scurvy")).toEqual(["scurvy"]);
    expect(hub.requests).toEqual([`/${repo}/resolve/main/config.json`, `/${repo}/resolve/main/vocab.txt`]);
    const marker = JSON.parse(await readFile(join(dir, ".complete.json"), "utf8"));
    expect(marker.entries["config.json"].checks).toContain("refetched-identical");
    expect(marker.entries["vocab.txt"].size).toBe(VOCAB.byteLength);
  });

  it("throws the load error without further requests once the files were fetched twice the same", async () => {
    const repo = "acme/badmodel";
    hub.file(repo, "config.json", whole(CONFIG));
    const p = params({ files: ["config.json"] });
    const load = async () => {
      throw new Error("Loader: model_type 'bert' needs vocab.txt");
    };
    await expect(loadFromHub(repo, p, load)).rejects.toThrow("Loader: model_type 'bert' needs vocab.txt");
    expect(hub.count("config.json")).toBe(2);
    hub.requests = [];
    await expect(loadFromHub(repo, p, load)).rejects.toThrow("Loader: model_type 'bert' needs vocab.txt");
    expect(hub.requests).toEqual([]);
    expect(await repairCachedModel(repo, p)).toEqual([]);
  });
});

/**
 * A hub imitation on 127.0.0.1 for tests: `/api/models/{repo}/revision/{rev}` lists files (unless
 * listing is off), `/{repo}/resolve/{rev}/{path}` serves them; `.data` files answer with a
 * redirect to `/cdn/...` like LFS files do. `dropOnce` paths send half the bytes, then the
 * socket is destroyed. `cutOnce` paths are sent once without Content-Length (the body ends when the
 * connection closes) and cut in half: nothing in the transfer tells. `requests`
 * records every URL asked for.
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import { readdir, readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join, relative } from "node:path";

/** Every file below `dir`, as repository paths (`a/b.json`). */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(relative(dir, p).split("\\").join("/"));
    }
  };
  await walk(dir);
  return out.sort();
}

export class FakeHub {
  readonly repos = new Map<string, string>();
  readonly dropOnce = new Set<string>();
  readonly cutOnce = new Set<string>();
  listing = true;
  requests: string[] = [];
  private server!: Server;
  endpoint = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req.url ?? "/", res).catch((err: Error) => {
        res.statusCode = 500;
        res.end(err.message);
      });
    });
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private async handle(rawUrl: string, res: ServerResponse): Promise<void> {
    const url = decodeURIComponent(rawUrl);
    this.requests.push(url);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url);
    if (api) {
      const dir = this.repos.get(api[1]!);
      if (!this.listing || !dir) {
        res.statusCode = 404;
        res.end("{}");
        return;
      }
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ id: api[1], siblings: (await listFiles(dir)).map((rfilename) => ({ rfilename })) }));
      return;
    }
    const file = /^\/(cdn\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url);
    const dir = file ? this.repos.get(file[2]!) : undefined;
    if (!file || !dir) {
      res.statusCode = 404;
      res.end("not found");
      return;
    }
    const path = file[4]!;
    let body: Buffer;
    try {
      body = await readFile(join(dir, path));
    } catch {
      res.statusCode = 404;
      res.end("Entry not found");
      return;
    }
    if (!file[1] && path.endsWith(".data")) {
      res.statusCode = 302;
      res.setHeader("location", `/cdn${url}`);
      res.end();
      return;
    }
    if (this.cutOnce.delete(path)) {
      res.removeHeader("transfer-encoding");
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      return;
    }
    res.setHeader("content-length", body.length);
    if (this.dropOnce.delete(path)) {
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      return;
    }
    res.end(body);
  }
}

/**
 * A real PostgreSQL + pgvector for tests: PGlite (Postgres compiled to WASM) with the pgvector
 * extension, served on 127.0.0.1 by pglite-socket over the Postgres wire protocol, so `pg` clients
 * (and LangChain's PGVectorStore) talk to it as to any server. PGlite runs one backend: every
 * connection shares one session (a `SET` on one is seen by all).
 */
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import pg from "pg";

/** A running server: its connection settings, a pool factory, and `stop`. */
export interface PGliteServer {
  host: string;
  port: number;
  /** A new pg.Pool on the server (end it, or let `stop` do it). */
  pool(max?: number): pg.Pool;
  /** Stops accepting connections and closes the database (pools made here are ended first). */
  stop(): Promise<void>;
  /** Stops the socket server only (connections drop; the database stays). */
  dropConnections(): Promise<void>;
}

/** Starts PGlite (with pgvector unless `withVector` is false) on 127.0.0.1, port chosen by the OS. */
export async function startPGliteServer(options: { withVector?: boolean } = {}): Promise<PGliteServer> {
  const db = await PGlite.create(options.withVector === false ? {} : { extensions: { vector } });
  const server = new PGLiteSocketServer({ db, port: 0, host: "127.0.0.1", maxConnections: 16 });
  await server.start();
  const port = Number(server.getServerConn().split(":").pop());
  const pools: pg.Pool[] = [];
  let serving = true;
  return {
    host: "127.0.0.1",
    port,
    pool(max = 4) {
      const p = new pg.Pool({ host: "127.0.0.1", port, user: "postgres", database: "postgres", max });
      p.on("error", () => undefined); // idle clients dropped by dropConnections
      pools.push(p);
      return p;
    },
    async dropConnections() {
      if (serving) await server.stop();
      serving = false;
    },
    async stop() {
      await Promise.all(pools.map((p) => (p.ended ? undefined : p.end().catch(() => undefined))));
      if (serving) await server.stop();
      serving = false;
      await db.close();
    },
  };
}

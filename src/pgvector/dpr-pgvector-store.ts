/**
 * DPR on PostgreSQL + pgvector, through LangChain's own `PGVectorStore` (@langchain/community),
 * helped only where DPR needs it:
 * - inner product by default (`<#>`, `vector_ip_ops`), scores as inner products (higher is better,
 *   the numbers FaissDPRStore gives), and a refusal of cosine / euclidean for a model whose vectors
 *   are not normalised (they would rank differently, silently);
 * - text ids (BEIR / your corpus's ids), upsert by id (`ON CONFLICT DO UPDATE`), `getByIds`, so
 *   LangChain's indexing API works;
 * - checks before anything is written: the pgvector extension is available, the table's vector
 *   dimension and id type match, vectors are finite and of the right length;
 * - `createIndex` for HNSW or IVFFlat with the operator class that matches the distance.
 *
 * Needs the optional packages `@langchain/community` and `pg` (imported when this module loads,
 * with an Error naming the install command when they are missing).
 *
 * @module
 */
import type { DocumentInterface } from "@langchain/core/documents";
import type { EmbeddingsInterface } from "@langchain/core/embeddings";
import type { DistanceStrategy, PGVectorStoreArgs } from "@langchain/community/vectorstores/pgvector";
import type { Pool, PoolClient } from "pg";
import { DPREmbeddings } from "../embeddings/dpr-embeddings.js";
import { assertPeers } from "../utils/optional-peer.js";
import { resolveIds } from "../vectorstores/ids.js";
import { checkFinite } from "../vectorstores/matrix.js";

assertPeers("pgvector", "langchain-dpr/pgvector");
const { PGVectorStore } = await import("@langchain/community/vectorstores/pgvector");
const { Document } = await import("@langchain/core/documents");

const OWNER = "DPRPGVectorStore";

/** PGVectorStore's metadata filter (`{ field: value }`, `{ field: { in: [...] } }`, `gt`/`lte`/`neq`, ...). */
export type PGVectorFilter = NonNullable<PGVectorStoreArgs["filter"]>;

/** An approximate index on the vector column (see {@link DPRPGVectorStore.createIndex}). */
export type DPRPGVectorIndex =
  | { type: "hnsw"; /** graph degree (pgvector default 16) */ m?: number; /** build beam (default 64) */ efConstruction?: number }
  | { type: "ivfflat"; /** inverted lists (pgvector advice: rows / 1000 up to 1M rows, √rows beyond) */ lists: number };

/** Parameters of {@link DPRPGVectorStore.initialize}: PGVectorStore's, with DPR's defaults. */
export interface DPRPGVectorStoreParams extends Omit<PGVectorStoreArgs, "distanceStrategy" | "dimensions" | "scoreNormalization"> {
  /** Default "innerProduct" (DPR's score). "cosine" / "euclidean" need normalised vectors or `allowUnnormalized`. */
  distanceStrategy?: DistanceStrategy;
  /** Vector dimension; default: the embeddings' (`DPREmbeddings.dimension()`, else the length of one embedded query). */
  dimensions?: number;
  /** Scores in results: "similarity" (default; the inner product for innerProduct) or "distance" (pgvector's, lower is better). */
  scoreNormalization?: "similarity" | "distance";
  /** Allow cosine / euclidean for a DPREmbeddings model whose vectors are not normalised (default false). */
  allowUnnormalized?: boolean;
  /** Build this index after creating the table (IVFFlat is better built after the rows are in: call createIndex then). */
  index?: DPRPGVectorIndex;
}

const OPERATOR_CLASS: Record<DistanceStrategy, string> = {
  innerProduct: "vector_ip_ops",
  cosine: "vector_cosine_ops",
  euclidean: "vector_l2_ops",
};

/** Double-quotes an SQL identifier. */
function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * `PGVectorStore` for DPR models. Create it with {@link DPRPGVectorStore.initialize} (or
 * `fromDocuments` / `fromTexts`); everything else is LangChain's store: `similaritySearch`,
 * `asRetriever`, metadata filters (`{ field: value }`, `{ field: { in: [...] } }`, ...), `delete`.
 */
export class DPRPGVectorStore extends PGVectorStore {
  /** The vector column's dimension. */
  declare dimensions: number;

  /** Always "pgvector-dpr" (LangChain's store type name). */
  override _vectorstoreType(): string {
    return "pgvector-dpr";
  }

  /** Where errors say the table is: `schema.table on host:port/db`. */
  private where(): string {
    const o = (this.pool as Pool & { options?: { host?: string; port?: number; database?: string } }).options ?? {};
    return `${this.computedTableName} on ${o.host ?? "localhost"}:${o.port ?? 5432}/${o.database ?? ""}`;
  }

  /**
   * Connects, checks the server and the table, and creates the table (text ids) when it is missing.
   * Errors name what is wrong: no pgvector extension on the server, a table whose vector dimension
   * or id type differs, cosine/euclidean for an unnormalised DPR model.
   */
  static override async initialize(embeddings: EmbeddingsInterface, params: DPRPGVectorStoreParams): Promise<DPRPGVectorStore> {
    const { dimensions: given, index, allowUnnormalized = false, ...rest } = params;
    const distanceStrategy = rest.distanceStrategy ?? "innerProduct";
    if (!(distanceStrategy in OPERATOR_CLASS)) {
      throw new Error(
        `${OWNER}: distanceStrategy must be one of ${Object.keys(OPERATOR_CLASS).join(", ")}, got ${String(distanceStrategy)}`,
      );
    }
    if (distanceStrategy !== "innerProduct" && embeddings instanceof DPREmbeddings && !embeddings.normalize && !allowUnnormalized) {
      throw new Error(
        `${OWNER}: distanceStrategy "${distanceStrategy}" with a DPR model whose vectors are not normalised ` +
          `(normalize: false) ranks differently from DPR's inner product, silently. ` +
          `Use distanceStrategy "innerProduct" (the default), or pass allowUnnormalized: true if that is what you want`,
      );
    }
    const dimensions =
      given ?? (embeddings instanceof DPREmbeddings ? await embeddings.dimension() : (await embeddings.embedQuery("dimension")).length);
    if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 16000) {
      throw new Error(`${OWNER}: dimensions must be an integer in 1..16000 (pgvector's vector type), got ${dimensions}`);
    }
    const store = new this(embeddings, { ...rest, distanceStrategy, scoreNormalization: rest.scoreNormalization ?? "similarity" });
    store.dimensions = dimensions;
    try {
      await store.prepareTable();
      if (store.collectionTableName) await store.ensureCollectionTableInDatabase();
      if (index) await store.createIndex(index);
    } catch (e) {
      if (!rest.pool) await store.pool.end().catch(() => undefined); // a pool made here; the caller's stays theirs
      throw e;
    }
    return store;
  }

  private async prepareTable(): Promise<void> {
    const db = this.pool;
    const q = async <R extends Record<string, unknown>>(sql: string, values?: unknown[]) => {
      try {
        return (await db.query<R>(sql, values)).rows;
      } catch (e) {
        throw new Error(`${OWNER}: ${this.where()}: ${message(e)}`, { cause: e });
      }
    };
    const available = await q<{ installed: string | null }>(
      `SELECT installed_version AS installed FROM pg_available_extensions WHERE name = 'vector'`,
    );
    if (available.length === 0) {
      throw new Error(
        `${OWNER}: the PostgreSQL server of ${this.where()} has no pgvector extension (pg_available_extensions lists no "vector"). ` +
          `Install it on the server (Debian/Ubuntu: apt install postgresql-<version>-pgvector; PGlite: extensions: { vector }), ` +
          `then this creates it (CREATE EXTENSION vector)`,
      );
    }
    if (available[0]!.installed === null) {
      const schema = this.extensionSchemaName ? ` WITH SCHEMA ${ident(this.extensionSchemaName)}` : "";
      await q(`CREATE EXTENSION IF NOT EXISTS vector${schema}`);
    }
    const columns = await q<{ name: string; type: string }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
       WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
      [this.computedTableName],
    );
    if (columns.length === 0) {
      const vectorType = this.extensionSchemaName ? `${ident(this.extensionSchemaName)}.vector` : "vector";
      await q(
        `CREATE TABLE IF NOT EXISTS ${this.computedTableName} (
           ${ident(this.idColumnName)} text PRIMARY KEY,
           ${ident(this.contentColumnName)} text,
           ${ident(this.metadataColumnName)} jsonb,
           ${ident(this.vectorColumnName)} ${vectorType}(${this.dimensions}))`,
      );
      return;
    }
    const typeOf = new Map(columns.map((c) => [c.name, c.type]));
    const vector = typeOf.get(this.vectorColumnName);
    const id = typeOf.get(this.idColumnName);
    const problems: string[] = [];
    if (vector === undefined) problems.push(`it has no vector column "${this.vectorColumnName}"`);
    else if (vector !== `vector(${this.dimensions})`) {
      problems.push(`its column "${this.vectorColumnName}" is ${vector}, but the model's vectors have ${this.dimensions} dimensions`);
    }
    if (id === undefined) problems.push(`it has no id column "${this.idColumnName}"`);
    else if (id !== "text" && id !== "character varying" && id !== "uuid") problems.push(`its id column "${this.idColumnName}" is ${id}`);
    for (const c of [this.contentColumnName, this.metadataColumnName]) if (!typeOf.has(c)) problems.push(`it has no column "${c}"`);
    if (problems.length > 0) {
      throw new Error(`${OWNER}: table ${this.where()} does not fit: ${problems.join("; ")}. Use another tableName, or drop the table`);
    }
    this.uuidIds = id === "uuid";
  }

  /** The table's id column is uuid (made by a plain PGVectorStore): ids must then be UUIDs. */
  private uuidIds = false;

  /**
   * Builds an approximate index on the vector column with the operator class of the store's distance
   * (`vector_ip_ops` for inner product). IVFFlat picks its centroids from the rows present: build it
   * after loading. Does nothing when an index of that name exists.
   */
  async createIndex(index: DPRPGVectorIndex): Promise<void> {
    const ops = OPERATOR_CLASS[this.distanceStrategy as DistanceStrategy];
    const name = ident(`${this.tableName}_${this.vectorColumnName}_${index.type}_${this.distanceStrategy}`.slice(0, 63));
    let using: string;
    if (index.type === "hnsw") {
      const m = index.m ?? 16;
      const ef = index.efConstruction ?? 64;
      if (!Number.isInteger(m) || m < 2 || m > 100) throw new Error(`${OWNER}.createIndex: hnsw m must be an integer in 2..100, got ${m}`);
      if (!Number.isInteger(ef) || ef < 4 || ef > 1000 || ef < 2 * m) {
        throw new Error(`${OWNER}.createIndex: hnsw efConstruction must be an integer in 4..1000 and ≥ 2·m (${2 * m}), got ${ef}`);
      }
      using = `hnsw (${ident(this.vectorColumnName)} ${ops}) WITH (m = ${m}, ef_construction = ${ef})`;
    } else if (index.type === "ivfflat") {
      if (!Number.isInteger(index.lists) || index.lists < 1 || index.lists > 32768) {
        throw new Error(`${OWNER}.createIndex: ivfflat lists must be an integer in 1..32768, got ${index.lists}`);
      }
      using = `ivfflat (${ident(this.vectorColumnName)} ${ops}) WITH (lists = ${index.lists})`;
    } else {
      throw new Error(
        `${OWNER}.createIndex: index type must be "hnsw" or "ivfflat", got ${JSON.stringify((index as { type: unknown }).type)}`,
      );
    }
    try {
      await this.pool.query(`CREATE INDEX IF NOT EXISTS ${name} ON ${this.computedTableName} USING ${using}`);
    } catch (e) {
      throw new Error(`${OWNER}.createIndex: ${this.where()}: ${message(e)}`, { cause: e });
    }
  }

  /**
   * Adds or replaces documents by id (`options.ids`, else `doc.id`, else a new UUID): a document whose
   * id is stored replaces it, as LangChain's indexing API expects. Vectors are checked (length,
   * finite) before anything is sent; rows go in batches of `chunkSize` in one statement each.
   */
  override async addVectors(vectors: number[][], documents: DocumentInterface[], options?: { ids?: string[] }): Promise<void> {
    if (vectors.length !== documents.length)
      throw new Error(`${OWNER}.addVectors: ${vectors.length} vectors but ${documents.length} documents`);
    const ids = resolveIds(documents, options?.ids, "addVectors", OWNER);
    vectors.forEach((v, i) => {
      if (v.length !== this.dimensions)
        throw new Error(`${OWNER}.addVectors: vector ${i} has ${v.length} dimensions, expected ${this.dimensions}`);
      checkFinite(v, v.length, "addVectors", OWNER);
    });
    if (this.uuidIds) {
      const bad = ids.find((id) => !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id));
      if (bad !== undefined) {
        throw new Error(
          `${OWNER}.addVectors: table ${this.where()} has uuid ids (made by PGVectorStore) and "${bad}" is not a UUID; use a new table`,
        );
      }
    }
    const collectionId = this.collectionTableName ? await this.getOrCreateCollection() : undefined;
    const columns = [this.idColumnName, this.contentColumnName, this.metadataColumnName, this.vectorColumnName];
    if (collectionId) columns.push("collection_id");
    const updates = columns.slice(1).map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`);
    for (let start = 0; start < vectors.length; start += this.chunkSize) {
      const end = Math.min(start + this.chunkSize, vectors.length);
      const values: unknown[] = [];
      const rows: string[] = [];
      for (let i = start; i < end; i++) {
        const row = [ids[i], documents[i]!.pageContent.replace(/\0/g, ""), documents[i]!.metadata ?? {}, `[${vectors[i]!.join(",")}]`];
        if (collectionId) row.push(collectionId);
        rows.push(`(${row.map((_, j) => `$${values.length + j + 1}`).join(", ")})`);
        values.push(...row);
      }
      const sql =
        `INSERT INTO ${this.computedTableName} (${columns.map(ident).join(", ")}) VALUES ${rows.join(", ")} ` +
        `ON CONFLICT (${ident(this.idColumnName)}) DO UPDATE SET ${updates.join(", ")}`;
      try {
        await this.pool.query(sql, values);
      } catch (e) {
        throw new Error(
          `${OWNER}.addVectors: rows ${start}..${end - 1} into ${this.where()}: ${message(e)} ` +
            `(rows before ${start} are stored; adding again is safe: ids upsert)`,
          { cause: e },
        );
      }
    }
  }

  /** Embeds the documents' pageContent (DPREmbeddings: passages, with `metadata.title`) and adds or replaces them by id. */
  override async addDocuments(documents: DocumentInterface[], options?: { ids?: string[] }): Promise<void> {
    if (documents.length === 0) return;
    const vectors = await this.embeddings.embedDocuments(documents.map((d) => d.pageContent));
    return this.addVectors(vectors, documents, options);
  }

  /**
   * Deletes documents by `ids` (text or uuid ids; unknown ids are ignored, as PGVectorStore does) or by
   * a metadata `filter` (PGVectorStore's rule).
   */
  override async delete(params: { ids?: string[]; filter?: PGVectorFilter }): Promise<void> {
    const { ids, filter } = params ?? {};
    if ((ids === undefined) === (filter === undefined))
      throw new Error(`${OWNER}.delete: give either ids or filter, not ${ids ? "both" : "neither"}`);
    try {
      if (filter !== undefined) return await super.delete({ filter });
      const collectionId = this.collectionTableName ? await this.getOrCreateCollection() : undefined;
      const sql =
        `DELETE FROM ${this.computedTableName} WHERE ${ident(this.idColumnName)}::text = ANY($1::text[])` +
        (collectionId ? ` AND collection_id = $2` : "");
      await this.pool.query(sql, collectionId ? [ids, collectionId] : [ids]);
    } catch (e) {
      throw new Error(`${OWNER}.delete: ${this.where()}: ${message(e)}`, { cause: e });
    }
  }

  /** The stored documents with these ids, in the order asked; ids not stored are left out. */
  async getByIds(ids: string[]): Promise<DocumentInterface[]> {
    const sql =
      `SELECT ${ident(this.idColumnName)}::text AS id, ${ident(this.contentColumnName)} AS text, ` +
      `${ident(this.metadataColumnName)} AS metadata ` +
      `FROM ${this.computedTableName} WHERE ${ident(this.idColumnName)}::text = ANY($1::text[])`;
    let rows: { id: string; text: string; metadata: Record<string, unknown> | null }[];
    try {
      rows = (await this.pool.query(sql, [ids])).rows;
    } catch (e) {
      throw new Error(`${OWNER}.getByIds: ${this.where()}: ${message(e)}`, { cause: e });
    }
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.flatMap((id) => {
      const r = byId.get(id);
      return r ? [new Document({ id, pageContent: r.text, metadata: r.metadata ?? {} })] : [];
    });
  }

  /** LangChain's search, with errors that name the table and server (a dropped connection, say). */
  override async similaritySearchVectorWithScore(
    query: number[],
    k: number,
    filter?: this["FilterType"],
  ): Promise<[DocumentInterface, number][]> {
    if (query.length !== this.dimensions)
      throw new Error(`${OWNER}.search: the query vector has ${query.length} dimensions, expected ${this.dimensions}`);
    checkFinite(query, query.length, "search", OWNER);
    if (!Number.isInteger(k) || k < 1) throw new Error(`${OWNER}.search: k must be an integer ≥ 1, got ${k}`);
    try {
      return await super.similaritySearchVectorWithScore(query, k, filter);
    } catch (e) {
      throw new Error(`${OWNER}.search: ${this.where()}: ${message(e)}`, { cause: e });
    }
  }

  /** A client of the store's pool for your own SQL (e.g. `SET hnsw.ef_search`); release it when done. */
  async connect(): Promise<PoolClient> {
    return this.pool.connect();
  }
}

/**
 * PostgreSQL side of a target table: existence, its columns from the catalog, the persisted
 * schema (`parquetry_table_schemas`: what each column was loaded from), the per-table lock,
 * and the staging swap used by `if_table_exists: replace`.
 */
import type pg from 'pg';
import { normalizePgType, PG_IDENT_MAX_BYTES, quoteIdent, type TableColumn } from './plan.js';

export const SCHEMA_REGISTRY_TABLE = 'parquetry_table_schemas';

export interface TableRef {
  schema: string;
  name: string;
}

export function tableSql(t: TableRef): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
}

/** `schema.name`, the key used in the ledger and the schema registry. */
export function tableKey(t: TableRef): string {
  return `${t.schema}.${t.name}`;
}

/** A sibling name (`<name>_rejects`, `<name>__pq_new`) cut to PostgreSQL's identifier limit. */
export function siblingName(name: string, suffix: string): string {
  return name.slice(0, PG_IDENT_MAX_BYTES - suffix.length) + suffix;
}

/** Serialize loaders of one table for the length of the transaction (ledger checks, swaps). */
export async function lockTableForLoad(client: pg.ClientBase, t: TableRef): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`parquetry:${tableKey(t)}`]);
}

/**
 * Whether a table (or another relation: an index) of that name exists, read from `pg_class` with
 * the statement's MVCC snapshot. Not `to_regclass`: that answers from the backend's catalog cache,
 * which a transaction that waited on the advisory lock has not refreshed yet — it kept saying
 * "no such table" for a table another loader had created and committed meanwhile, and the
 * follower then forgot that loader's ledger while its rows stayed (measured: test/two-loaders).
 */
export async function relationExists(client: pg.ClientBase, t: TableRef): Promise<boolean> {
  const r = await client.query<{ found: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relname = $2) AS found`,
    [t.schema, t.name],
  );
  return r.rows[0]?.found === true;
}

export async function tableExists(client: pg.ClientBase, t: TableRef): Promise<boolean> {
  return relationExists(client, t);
}

export interface CatalogColumn {
  name: string;
  /** Canonical type, or undefined when pg-loader can't encode it (then `rawType` says what it is). */
  pgType: string | undefined;
  rawType: string;
}

/** Columns of an existing table in order, from pg_attribute (none when it does not exist). */
export async function catalogColumns(client: pg.ClientBase, t: TableRef): Promise<CatalogColumn[]> {
  // By name through pg_class (MVCC), not `$1::regclass` (the catalog cache; see relationExists).
  const r = await client.query<{ name: string; type: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_catalog.pg_attribute a
     JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [t.schema, t.name],
  );
  return r.rows.map((c) => ({ name: c.name, pgType: normalizePgType(c.type), rawType: c.type }));
}

/** Tables of pg-loader's own bookkeeping; created once, concurrently safe. */
export async function ensureBookkeeping(client: pg.ClientBase, ddl: readonly string[]): Promise<void> {
  for (const sql of ddl) {
    try {
      await client.query(sql);
    } catch (err) {
      // Two loaders creating the same table at once: one wins, the other sees a duplicate.
      const code = (err as { code?: string }).code;
      if (code !== '23505' && code !== '42P07') throw err;
    }
  }
}

export const SCHEMA_REGISTRY_DDL = `CREATE TABLE IF NOT EXISTS ${SCHEMA_REGISTRY_TABLE} (
  table_name text PRIMARY KEY,
  columns jsonb NOT NULL,
  load_id text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
)`;

export interface PersistedColumn extends TableColumn {
  source: string | null;
  sourceType: string | null;
}

export async function readPersistedSchema(
  client: pg.ClientBase,
  t: TableRef,
): Promise<PersistedColumn[] | undefined> {
  const r = await client.query<{ columns: PersistedColumn[] }>(
    `SELECT columns FROM ${SCHEMA_REGISTRY_TABLE} WHERE table_name = $1`,
    [tableKey(t)],
  );
  return r.rows[0]?.columns;
}

export async function persistSchema(
  client: pg.ClientBase,
  t: TableRef,
  columns: readonly PersistedColumn[],
  loadId: string,
): Promise<void> {
  await client.query(
    `INSERT INTO ${SCHEMA_REGISTRY_TABLE} (table_name, columns, load_id) VALUES ($1, $2, $3)
     ON CONFLICT (table_name) DO UPDATE SET columns = EXCLUDED.columns, load_id = EXCLUDED.load_id, updated_at = now()`,
    [tableKey(t), JSON.stringify(columns), loadId],
  );
}

/**
 * Put `staging` in `target`'s place inside the caller's transaction. Readers keep reading the
 * old table until COMMIT; a reader queued on the lock resolves the name again afterwards and
 * finds the new table, so nobody sees it empty or half-loaded.
 */
export async function swapStaging(client: pg.ClientBase, staging: TableRef, target: TableRef): Promise<void> {
  await client.query(`LOCK TABLE ${tableSql(target)} IN ACCESS EXCLUSIVE MODE`);
  await client.query(`DROP TABLE ${tableSql(target)}`);
  await client.query(`ALTER TABLE ${tableSql(staging)} RENAME TO ${quoteIdent(target.name)}`);
}

/**
 * The per-file ledger: one row per (table, file) written in the same transaction as the file's
 * COPY. A crash mid-COPY rolls both back; a replay, a redelivery or a restart finds the row and
 * loads nothing; two loaders racing on one file serialize on the table's advisory lock (and the
 * primary key would refuse the second anyway).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import { InvalidInputError, silentLogger } from '@parquetry/service';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { LoadConfig } from './config.js';
import { PeakRss } from './memory.js';
import { type FileCounts, type FileTag, type LoadProgress, LoadSession } from './pipeline.js';
import { DuckSource } from './source.js';
import {
  ensureBookkeeping,
  lockTableForLoad,
  SCHEMA_REGISTRY_DDL,
  type TableRef,
  tableExists,
  tableKey,
} from './table.js';

export const LEDGER_TABLE = 'parquetry_load_ledger';

export const LEDGER_DDL = `CREATE TABLE IF NOT EXISTS ${LEDGER_TABLE} (
  table_name text NOT NULL,
  file_path text NOT NULL,
  sha256 text NOT NULL,
  rows bigint NOT NULL,
  loaded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (table_name, file_path)
)`;

/** Create the ledger and the schema registry if they are missing (safe under concurrency). */
export async function ensureLoaderTables(client: pg.ClientBase): Promise<void> {
  await ensureBookkeeping(client, [LEDGER_DDL, SCHEMA_REGISTRY_DDL]);
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface LedgerEntry {
  sha256: string;
  rows: number;
  loadedAt: Date;
}

/**
 * Claim `file` for `table` inside the caller's transaction: true when it was not loaded yet
 * (its ledger row now exists, uncommitted). A file already loaded with other content is an
 * error: lake files are immutable, so a changed file under the same name needs an operator.
 */
export async function claimFile(
  client: pg.ClientBase,
  table: string,
  file: string,
  sha256: string,
): Promise<{ claimed: true } | { claimed: false; entry: LedgerEntry }> {
  const ins = await client.query(
    `INSERT INTO ${LEDGER_TABLE} (table_name, file_path, sha256, rows) VALUES ($1, $2, $3, 0)
     ON CONFLICT (table_name, file_path) DO NOTHING`,
    [table, file, sha256],
  );
  if (ins.rowCount === 1) return { claimed: true };
  const r = await client.query<{ sha256: string; rows: string; loaded_at: Date }>(
    `SELECT sha256, rows, loaded_at FROM ${LEDGER_TABLE} WHERE table_name = $1 AND file_path = $2`,
    [table, file],
  );
  const row = r.rows[0]!;
  if (row.sha256 !== sha256) {
    throw new InvalidInputError(
      `${file} was loaded into ${table} with sha256 ${row.sha256}, but now has sha256 ${sha256}`,
      { code: 'file_changed', details: { table, file, loaded: row.sha256, now: sha256 } },
    );
  }
  return { claimed: false, entry: { sha256: row.sha256, rows: Number(row.rows), loadedAt: row.loaded_at } };
}

export async function recordRows(
  client: pg.ClientBase,
  table: string,
  file: string,
  rows: number,
): Promise<void> {
  await client.query(
    `UPDATE ${LEDGER_TABLE} SET rows = $3, loaded_at = now() WHERE table_name = $1 AND file_path = $2`,
    [table, file, rows],
  );
}

/** Drop a table's ledger rows: its content is being created or replaced from scratch. */
export async function forgetTable(client: pg.ClientBase, table: string): Promise<void> {
  await client.query(`DELETE FROM ${LEDGER_TABLE} WHERE table_name = $1`, [table]);
}

export async function ledgerEntries(
  client: pg.ClientBase,
  table: string,
): Promise<(LedgerEntry & { file: string })[]> {
  const r = await client.query<{ file_path: string; sha256: string; rows: string; loaded_at: Date }>(
    `SELECT file_path, sha256, rows, loaded_at FROM ${LEDGER_TABLE} WHERE table_name = $1 ORDER BY file_path`,
    [table],
  );
  return r.rows.map((x) => ({
    file: x.file_path,
    sha256: x.sha256,
    rows: Number(x.rows),
    loadedAt: x.loaded_at,
  }));
}

/** Which of `files` the ledger has for `table` (loaded and still counted as in the table). */
export async function loadedFiles(
  client: pg.ClientBase,
  table: string,
  files: readonly string[],
): Promise<Set<string>> {
  if (files.length === 0) return new Set();
  const r = await client.query<{ file_path: string }>(
    `SELECT file_path FROM ${LEDGER_TABLE} WHERE table_name = $1 AND file_path = ANY($2::text[])`,
    [table, files],
  );
  return new Set(r.rows.map((x) => x.file_path));
}

/** Drop the ledger rows of files whose rows were deleted from the table (in the same transaction). */
export async function forgetFiles(
  client: pg.ClientBase,
  table: string,
  files: readonly string[],
): Promise<number> {
  if (files.length === 0) return 0;
  const r = await client.query(
    `DELETE FROM ${LEDGER_TABLE} WHERE table_name = $1 AND file_path = ANY($2::text[])`,
    [table, files],
  );
  return r.rowCount ?? 0;
}

export interface LoadFileOnceOptions {
  config: LoadConfig;
  logger?: Logger;
  /** Reuse a DuckDB instance (the service keeps one). */
  duckdb?: DuckDBInstance;
  /** The file's name in the ledger (e.g. its lake path); default: the absolute local path. */
  ledgerKey?: string;
  /** Known content hash (skips hashing the file). */
  sha256?: string;
  onProgress?: (p: LoadProgress) => void;
  /** A column naming each row's file (see FileTag). */
  fileTag?: FileTag;
}

export interface FileLoadResult extends FileCounts {
  status: 'loaded' | 'skipped';
  table: string;
  file: string;
  sha256: string;
  loadId: string;
}

/** `config` made to append to `ref` (the only mode a per-file, exactly-once load can have). */
export function appendConfig(config: LoadConfig, ref: TableRef): LoadConfig {
  return {
    ...config,
    database: { ...config.database, table_name: ref.name, schema: ref.schema, if_table_exists: 'append' },
  };
}

export interface ClaimedLoad {
  result: FileLoadResult;
  /** Set when rows were loaded: close it after COMMIT or ROLLBACK (finalizes a rejects file). */
  session?: LoadSession;
  /** The table did not exist before this load created it. */
  created: boolean;
}

/**
 * The exactly-once step, inside the caller's transaction with the table locked
 * (lockTableForLoad): claim the file in the ledger; if it was not loaded yet, COPY it (creating
 * the table when missing) and record its rows. A crash anywhere rolls back claim and rows alike.
 */
export async function loadClaimedFile(
  client: pg.ClientBase,
  ref: TableRef,
  file: string,
  opts: {
    config: LoadConfig;
    duck: DuckSource;
    logger: Logger;
    peak: PeakRss;
    ledgerKey: string;
    sha256: string;
    fileTag?: FileTag | undefined;
    onProgress?: ((p: LoadProgress) => void) | undefined;
    /** Level of the routine `load_plan` line (the service loads files all day: `debug`). */
    planLog?: 'info' | 'debug' | undefined;
  },
): Promise<ClaimedLoad> {
  const key = tableKey(ref);
  const loadId = randomUUID();
  const base = { table: key, file: opts.ledgerKey, sha256: opts.sha256, loadId };
  const claim = await claimFile(client, key, opts.ledgerKey, opts.sha256);
  if (!claim.claimed) {
    opts.logger.debug({ table: key, file: opts.ledgerKey }, 'already_loaded');
    return { result: { status: 'skipped', ...base, rows: 0, loaded: 0, rejected: 0 }, created: false };
  }
  const session = await LoadSession.plan(
    {
      client,
      duck: opts.duck,
      config: appendConfig(opts.config, ref),
      logger: opts.logger,
      loadId,
      peak: opts.peak,
      onProgress: opts.onProgress,
      planLog: opts.planLog,
      fileTag: opts.fileTag,
    },
    [file],
  );
  try {
    await session.prepare('append');
    const counts = await session.loadFile(file);
    await recordRows(client, key, opts.ledgerKey, counts.loaded);
    await session.finish();
    return { result: { status: 'loaded', ...base, ...counts }, session, created: session.tableIsNew };
  } catch (err) {
    await session.close(false).catch(() => {});
    throw err;
  }
}

/**
 * Load one file into `table` exactly once, in ONE transaction: lock the table, claim the file
 * in the ledger, COPY, record its rows, commit. Already loaded → nothing happens ('skipped').
 * The table is appended to (created if missing); drift follows `database.schema_drift`.
 * `client` must not be inside a transaction.
 */
export async function loadFileOnce(
  client: pg.ClientBase,
  table: string | TableRef,
  file: string,
  opts: LoadFileOnceOptions,
): Promise<FileLoadResult> {
  const logger = opts.logger ?? silentLogger();
  const ref: TableRef =
    typeof table === 'string' ? { schema: opts.config.database.schema, name: table } : table;
  const key = tableKey(ref);
  const ledgerKey = opts.ledgerKey ?? resolve(file);
  await ensureLoaderTables(client);
  const sha = opts.sha256 ?? (await sha256File(file));
  const peak = new PeakRss();
  const duck = await DuckSource.open({
    instance: opts.duckdb,
    threads: opts.config.os_configuration.threads,
  });
  let loaded: ClaimedLoad | undefined;
  let began = false;
  try {
    await client.query('BEGIN');
    began = true;
    await lockTableForLoad(client, ref);
    if (!(await tableExists(client, ref))) await forgetTable(client, key);
    loaded = await loadClaimedFile(client, ref, file, {
      config: opts.config,
      duck,
      logger,
      peak,
      ledgerKey,
      sha256: sha,
      fileTag: opts.fileTag,
      onProgress: opts.onProgress,
    });
    await client.query(loaded.session ? 'COMMIT' : 'ROLLBACK');
    began = false;
    await loaded.session?.close(true);
    return loaded.result;
  } catch (err) {
    if (began) await client.query('ROLLBACK').catch(() => {});
    await loaded?.session?.close(false).catch(() => {});
    throw err;
  } finally {
    peak.stop();
    duck.close();
  }
}

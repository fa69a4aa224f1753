/**
 * Keeping a PostgreSQL table equal to a lake dataset. Every row carries the lake key of the file
 * it came from (`_lake_file`), and every loaded file has a ledger row. A lake commit becomes ONE
 * transaction here: the rows of its removed files are deleted and its added files are COPYed,
 * each claimed in the ledger first. So an append loads each file exactly once; a compaction,
 * repartition or row-level rewrite (a commit that removes files and adds files holding the same
 * rows, or the rows changed by key) swaps the old rows for the new ones atomically — readers see
 * the table before or after, never a gap or a row twice; a retention removal deletes rows.
 * NATS, the catalog and the object store stay outside: callers pass functions.
 */
import type { DuckDBInstance } from '@duckdb/node-api';
import { silentLogger } from '@parquetry/service';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { LoadConfig } from './config.js';
import {
  type ClaimedLoad,
  ensureLoaderTables,
  type FileLoadResult,
  forgetFiles,
  forgetTable,
  LEDGER_TABLE,
  loadClaimedFile,
  sha256File,
} from './ledger.js';
import { PeakRss } from './memory.js';
import { quoteIdent } from './plan.js';
import { DuckSource } from './source.js';
import {
  catalogColumns,
  lockTableForLoad,
  relationExists,
  siblingName,
  type TableRef,
  tableExists,
  tableKey,
  tableSql,
} from './table.js';

/** The column naming each row's lake file. */
export const LAKE_FILE_COLUMN = '_lake_file';

export interface LakeFileRef {
  /** Lake key (relative to LAKE_URL): the ledger key and the `_lake_file` value. */
  path: string;
  /** From the catalog, when known (saves hashing the file). */
  sha256?: string | undefined;
}

/** What one lake commit (or one reconcile step) does to the table. */
export interface LakeChange {
  /** Lake keys whose rows leave the table. */
  remove: readonly string[];
  /** Files whose rows enter it; files the ledger already has are skipped. */
  add: readonly LakeFileRef[];
}

export interface LocalFile {
  path: string;
  /** Called once the load is over (e.g. drop a downloaded copy). */
  release(): Promise<void>;
}

export interface LakeSyncDeps {
  /** The load settings (naming, casts, drift policy, memory); table name and mode come from the target. */
  config: LoadConfig;
  duckdb: DuckDBInstance;
  /** A local path DuckDB can read for a lake key (`store.localPath`). */
  fetch: (key: string) => Promise<LocalFile>;
  logger?: Logger | undefined;
}

export interface ApplyOptions {
  /**
   * Called under the table lock with the keys to add that are not loaded yet; answers those
   * still live in the catalog. A stale or redelivered event must not bring back a file that a
   * later commit removed. Omitted: all are taken as live.
   */
  stillLive?: ((keys: readonly string[]) => Promise<ReadonlySet<string>>) | undefined;
}

/** Decides the change under the table lock, from the keys the ledger has for the table. */
export type ChangeDecider = (loaded: ReadonlySet<string>) => Promise<LakeChange> | LakeChange;

export interface LakeChangeResult {
  table: string;
  /** Files whose rows were deleted (they were in the ledger). */
  removedFiles: string[];
  removedRows: number;
  /** Files loaded now. */
  loaded: FileLoadResult[];
  /** Files the ledger already had. */
  skipped: string[];
  /** Files to add that the catalog no longer has live: left out. */
  notLive: string[];
  rows: number;
  loadedRows: number;
  rejectedRows: number;
  /** The table was created by this change. */
  created: boolean;
  seconds: number;
  peakRssMb: number;
}

/**
 * Apply `change` to `target` in ONE transaction: lock the table, delete the rows of removed
 * files and forget them in the ledger, then claim and COPY every added file that is not loaded
 * yet and still live, tagging its rows with its lake key; commit. A crash or a lost connection
 * anywhere rolls all of it back; running it again is harmless (removals find nothing, loaded
 * files are skipped). `client` must not be inside a transaction.
 */
export async function applyLakeChange(
  client: pg.ClientBase,
  target: TableRef,
  change: LakeChange | ChangeDecider,
  deps: LakeSyncDeps,
  opts: ApplyOptions = {},
): Promise<LakeChangeResult> {
  const logger = deps.logger ?? silentLogger();
  const started = performance.now();
  const key = tableKey(target);
  const peak = new PeakRss();
  const result: LakeChangeResult = {
    table: key,
    removedFiles: [],
    removedRows: 0,
    loaded: [],
    skipped: [],
    notLive: [],
    rows: 0,
    loadedRows: 0,
    rejectedRows: 0,
    created: false,
    seconds: 0,
    peakRssMb: 0,
  };
  await ensureLoaderTables(client);
  let duck: DuckSource | undefined;
  const sessions: NonNullable<ClaimedLoad['session']>[] = [];
  let began = false;
  try {
    await client.query('BEGIN');
    began = true;
    await lockTableForLoad(client, target);
    let exists = await tableExists(client, target);
    if (exists) await ensureTagColumn(client, target);
    else await forgetTable(client, key); // a dropped table starts over from the lake
    const loaded = await ledgerKeys(client, key);
    const wanted = typeof change === 'function' ? await change(loaded) : change;

    const removeKeys = [...new Set(wanted.remove)].filter((k) => loaded.has(k));
    if (removeKeys.length > 0 && exists) {
      const del = await client.query(
        `DELETE FROM ${tableSql(target)} WHERE ${quoteIdent(LAKE_FILE_COLUMN)} = ANY($1::text[])`,
        [removeKeys],
      );
      result.removedRows = del.rowCount ?? 0;
    }
    await forgetFiles(client, key, removeKeys);
    result.removedFiles = removeKeys;
    const removed = new Set(removeKeys);

    const seen = new Set<string>();
    const toAdd: LakeFileRef[] = [];
    for (const f of wanted.add) {
      if (seen.has(f.path)) continue;
      seen.add(f.path);
      // A file both removed and added by one change stays out: the removal is the later word.
      if (removed.has(f.path)) continue;
      if (loaded.has(f.path)) result.skipped.push(f.path);
      else toAdd.push(f);
    }
    const live =
      opts.stillLive && toAdd.length > 0 ? await opts.stillLive(toAdd.map((f) => f.path)) : undefined;
    for (const f of toAdd) {
      if (live !== undefined && !live.has(f.path)) {
        result.notLive.push(f.path);
        continue;
      }
      duck ??= await DuckSource.open({
        instance: deps.duckdb,
        threads: deps.config.os_configuration.threads,
      });
      const local = await deps.fetch(f.path);
      try {
        const sha256 = f.sha256 ?? (await sha256File(local.path));
        const claimed = await loadClaimedFile(client, target, local.path, {
          config: deps.config,
          duck,
          logger,
          peak,
          ledgerKey: f.path,
          sha256,
          fileTag: { column: LAKE_FILE_COLUMN, valueOf: () => f.path },
          planLog: 'debug',
        });
        if (claimed.session) sessions.push(claimed.session);
        if (claimed.result.status === 'skipped') {
          result.skipped.push(f.path);
          continue;
        }
        result.loaded.push(claimed.result);
        result.rows += claimed.result.rows;
        result.loadedRows += claimed.result.loaded;
        result.rejectedRows += claimed.result.rejected;
        if (claimed.created) result.created = true;
      } finally {
        await local.release();
      }
      if (!exists) {
        await ensureTagIndex(client, target);
        exists = true;
      }
    }
    await client.query('COMMIT');
    began = false;
    for (const s of sessions) await s.close(true);
  } catch (err) {
    if (began) await client.query('ROLLBACK').catch(() => {});
    for (const s of sessions) await s.close(false).catch(() => {});
    throw err;
  } finally {
    duck?.close();
    result.peakRssMb = peak.stop() / 1024 / 1024;
    result.seconds = (performance.now() - started) / 1000;
  }
  if (result.removedFiles.length + result.loaded.length + result.notLive.length > 0) {
    logger.debug(
      {
        table: key,
        removed: result.removedFiles,
        added: result.loaded.map((f) => f.file),
        not_live: result.notLive,
        removed_files: result.removedFiles.length,
        removed_rows: result.removedRows,
        loaded_files: result.loaded.length,
        loaded_rows: result.loadedRows,
        rejected_rows: result.rejectedRows,
        seconds: Number(result.seconds.toFixed(3)),
      },
      'lake_change',
    );
  }
  return result;
}

async function ledgerKeys(client: pg.ClientBase, table: string): Promise<Set<string>> {
  const r = await client.query<{ file_path: string }>(
    `SELECT file_path FROM ${LEDGER_TABLE} WHERE table_name = $1`,
    [table],
  );
  return new Set(r.rows.map((x) => x.file_path));
}

/**
 * A table made before it was followed (e.g. by `parquetry load`) gets the tag column; its old
 * rows have NULL there and are never deleted by a lake removal. Checked in the catalog first:
 * ALTER TABLE would take an exclusive lock even when it has nothing to do.
 */
async function ensureTagColumn(client: pg.ClientBase, t: TableRef): Promise<void> {
  const cols = await catalogColumns(client, t);
  if (!cols.some((c) => c.name === LAKE_FILE_COLUMN)) {
    await client.query(`ALTER TABLE ${tableSql(t)} ADD COLUMN ${quoteIdent(LAKE_FILE_COLUMN)} text`);
  }
  await ensureTagIndex(client, t);
}

/** Deleting a file's rows looks them up by `_lake_file`. */
async function ensureTagIndex(client: pg.ClientBase, t: TableRef): Promise<void> {
  const index = { schema: t.schema, name: siblingName(t.name, '__lake_file_idx') };
  if (await relationExists(client, index)) return;
  await client.query(
    `CREATE INDEX IF NOT EXISTS ${quoteIdent(index.name)} ON ${tableSql(t)} (${quoteIdent(LAKE_FILE_COLUMN)})`,
  );
}

/** Pure: what a reconcile does — load live files the ledger lacks, remove loaded files no longer live. */
export function diffLiveFiles(
  live: readonly LakeFileRef[],
  loaded: ReadonlySet<string>,
): { add: LakeFileRef[]; remove: string[] } {
  const liveKeys = new Set(live.map((f) => f.path));
  return {
    add: live.filter((f) => !loaded.has(f.path)),
    remove: [...loaded].filter((k) => !liveKeys.has(k)).sort(),
  };
}

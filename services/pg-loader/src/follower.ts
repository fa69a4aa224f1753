/**
 * One followed dataset: its `lake.committed` events and its reconciles with the catalog, applied
 * to its table one at a time. Events are the fast path; the reconcile (at start and periodically)
 * makes a missed, lost or reordered event cost nothing but time.
 */
import { rm } from 'node:fs/promises';
import type { DuckDBInstance } from '@duckdb/node-api';
import type { Catalog, LakeCommitted, ObjectStore, PartitionValues } from '@parquetry/lake';
import { getDataset } from '@parquetry/lake';
import { InvalidInputError, type Logger, type Metrics, ParquetryError } from '@parquetry/service';
import type pg from 'pg';
import type { LoadConfig } from './config.js';
import {
  type ApplyOptions,
  applyLakeChange,
  type ChangeDecider,
  diffLiveFiles,
  type LakeChange,
  type LakeChangeResult,
  type LakeFileRef,
  type LocalFile,
} from './lake-sync.js';
import type { TableRef } from './table.js';
import { tableKey } from './table.js';

export interface FollowerDeps {
  dataset: string;
  table: TableRef;
  config: LoadConfig;
  pool: pg.Pool;
  catalog: Catalog;
  store: ObjectStore;
  duckdb: DuckDBInstance;
  logger: Logger;
  metrics: Metrics;
}

export interface SyncSummary {
  removedFiles: number;
  removedRows: number;
  loadedFiles: number;
  loadedRows: number;
  rejectedRows: number;
  skippedFiles: number;
  notLiveFiles: number;
  seconds: number;
}

/** Files of one partition loaded per transaction by a reconcile that only adds. */
const RECONCILE_FILES_PER_TX = 50;

/** Runs tasks one at a time, in order: an event and a reconcile of one table never overlap. */
class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.tail.then(task, task);
    this.tail = next.catch(() => {});
    return next;
  }
}

function emptySummary(): SyncSummary {
  return {
    removedFiles: 0,
    removedRows: 0,
    loadedFiles: 0,
    loadedRows: 0,
    rejectedRows: 0,
    skippedFiles: 0,
    notLiveFiles: 0,
    seconds: 0,
  };
}

function addUp(s: SyncSummary, r: LakeChangeResult): void {
  s.removedFiles += r.removedFiles.length;
  s.removedRows += r.removedRows;
  s.loadedFiles += r.loaded.length;
  s.loadedRows += r.loadedRows;
  s.rejectedRows += r.rejectedRows;
  s.skippedFiles += r.skipped.length;
  s.notLiveFiles += r.notLive.length;
}

export class DatasetFollower {
  readonly dataset: string;
  readonly table: TableRef;
  private readonly queue = new SerialQueue();
  private readonly root: string;
  private readonly m: ReturnType<typeof followerMetrics>;
  private readonly labels: { table: string };

  constructor(private readonly deps: FollowerDeps) {
    const def = getDataset(deps.dataset);
    this.dataset = def.name;
    this.root = def.root;
    this.table = deps.table;
    this.m = followerMetrics(deps.metrics);
    this.labels = { table: tableKey(deps.table) };
  }

  /** Apply one `lake.committed` event (already validated against the zod schema). */
  async handle(event: LakeCommitted): Promise<SyncSummary> {
    if (event.dataset !== this.dataset) {
      throw new InvalidInputError(`event for dataset ${event.dataset} on the ${this.dataset} subject`);
    }
    const remove: string[] = [];
    const add: LakeFileRef[] = [];
    const addedIn: PartitionValues[] = [];
    for (const p of event.partitions) {
      for (const key of p.removed) remove.push(this.checkKey(key));
      for (const f of p.added) add.push({ path: this.checkKey(f.path) });
      if (p.added.length > 0) addedIn.push(p.values);
    }
    return this.queue.run(async () => {
      const started = performance.now();
      const r = await this.apply({ remove, add }, { stillLive: (keys) => this.liveIn(addedIn, keys) });
      const s = emptySummary();
      addUp(s, r);
      s.seconds = (performance.now() - started) / 1000;
      return s;
    });
  }

  /**
   * Make the table equal to the catalog's current snapshot. Removals are decided under the table
   * lock from a snapshot read after it (so no event applied meanwhile is undone) and applied
   * together with every addition in one transaction: a compaction seen only here still swaps
   * atomically. A reconcile that only adds loads partition by partition, each file re-checked
   * as live under the lock.
   */
  reconcile(): Promise<SyncSummary> {
    return this.queue.run(async () => {
      const started = performance.now();
      const s = emptySummary();
      try {
        let pending: { values: PartitionValues; files: LakeFileRef[] }[] = [];
        const decide: ChangeDecider = async (loaded) => {
          const manifests = await this.deps.catalog.partitions(this.dataset);
          const live = manifests.flatMap((m) => m.files.map((f) => ({ path: f.path, sha256: f.sha256 })));
          const diff = diffLiveFiles(live, loaded);
          if (diff.remove.length > 0) return diff;
          const missing = new Set(diff.add.map((f) => f.path));
          pending = manifests
            .map((m) => ({ values: m.partition, files: m.files.filter((f) => missing.has(f.path)) }))
            .filter((p) => p.files.length > 0)
            .map((p) => ({
              values: p.values,
              files: p.files.map((f) => ({ path: f.path, sha256: f.sha256 })),
            }));
          return { remove: [], add: [] };
        };
        addUp(s, await this.apply(decide, {}));
        for (const p of pending) {
          for (let i = 0; i < p.files.length; i += RECONCILE_FILES_PER_TX) {
            const add = p.files.slice(i, i + RECONCILE_FILES_PER_TX);
            addUp(
              s,
              await this.apply({ remove: [], add }, { stillLive: (keys) => this.liveIn([p.values], keys) }),
            );
          }
        }
        this.m.reconciles.inc({ ...this.labels, outcome: 'ok' });
      } catch (err) {
        this.m.reconciles.inc({ ...this.labels, outcome: 'failed' });
        throw err;
      }
      s.seconds = (performance.now() - started) / 1000;
      if (s.loadedFiles + s.removedFiles > 0) {
        this.deps.logger.info({ table: this.labels.table, ...s }, 'reconcile');
      }
      return s;
    });
  }

  private async apply(change: LakeChange | ChangeDecider, opts: ApplyOptions): Promise<LakeChangeResult> {
    const { pool, config, duckdb, logger } = this.deps;
    const client = await pool.connect();
    let broken: Error | undefined;
    // A server that goes away mid-COPY (a restart, a failover) makes the client emit 'error'
    // (EPIPE, "Connection terminated unexpectedly") besides failing the query: without a
    // listener that would be an uncaught exception and take the process down.
    const onError = (err: Error) => {
      broken ??= err;
      logger.warn({ err, table: this.labels.table }, 'pg_client_error');
    };
    client.on('error', onError);
    try {
      const r = await applyLakeChange(
        client,
        this.table,
        change,
        { config, duckdb, logger, fetch: (key) => this.fetch(key) },
        opts,
      );
      this.record(r);
      return r;
    } catch (err) {
      // A connection that failed for another reason than our own validation is not reused.
      if (!(err instanceof ParquetryError)) broken = err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  private record(r: LakeChangeResult): void {
    const { m, labels } = this;
    if (r.loadedRows > 0) m.rowsLoaded.inc(labels, r.loadedRows);
    if (r.loaded.length > 0) m.filesLoaded.inc(labels, r.loaded.length);
    if (r.rejectedRows > 0) m.rowsRejected.inc(labels, r.rejectedRows);
    if (r.removedRows > 0) m.rowsDeleted.inc(labels, r.removedRows);
    if (r.removedFiles.length > 0) m.filesRemoved.inc(labels, r.removedFiles.length);
    if (r.loaded.length + r.removedFiles.length > 0) {
      m.seconds.observe(labels, r.seconds);
      m.peakRss.set(labels, r.peakRssMb * 1024 * 1024);
    }
    m.lastSync.set(labels, Date.now() / 1000);
  }

  /**
   * Which of `keys` are live now in these partitions, read under the table lock from the catalog's
   * settled snapshot — the view a reconcile takes — not the partitions' stored manifests: a
   * multi-partition compaction applied in another partition already counts, so a file a reconcile
   * (here or in another instance) has removed is never loaded again by a stale or redelivered event.
   */
  private async liveIn(
    partitions: readonly PartitionValues[],
    keys: readonly string[],
  ): Promise<Set<string>> {
    const live = new Set<string>();
    for (const m of await this.deps.catalog.settledPartitions(this.dataset, partitions)) {
      for (const f of m.files) live.add(f.path);
    }
    return new Set(keys.filter((k) => live.has(k)));
  }

  private async fetch(key: string): Promise<LocalFile> {
    const { store } = this.deps;
    const path = await store.localPath(key);
    return {
      path,
      // S3 downloads are cached copies: drop them once loaded so the cache doesn't grow with the lake.
      release: async () => {
        if (store.kind === 's3') await rm(path, { force: true });
      },
    };
  }

  /** A lake key of this dataset: relative, under the dataset's root, no `..`. */
  private checkKey(key: string): string {
    if (!key.startsWith(`${this.root}/`) || key.split('/').some((s) => s === '..' || s === '.' || s === '')) {
      throw new InvalidInputError(`${JSON.stringify(key)} is not a file of the ${this.dataset} dataset`, {
        code: 'invalid_lake_key',
      });
    }
    return key;
  }
}

function followerMetrics(metrics: Metrics) {
  return {
    rowsLoaded: metrics.counter('parquetry_pg_rows_loaded_total', 'rows COPYed into PostgreSQL', ['table']),
    filesLoaded: metrics.counter('parquetry_pg_files_loaded_total', 'lake files loaded into PostgreSQL', [
      'table',
    ]),
    rowsRejected: metrics.counter('parquetry_pg_rows_rejected_total', 'rows sent to <table>_rejects', [
      'table',
    ]),
    rowsDeleted: metrics.counter(
      'parquetry_pg_rows_deleted_total',
      'rows deleted because their lake file was removed (compaction, rewrite, retention)',
      ['table'],
    ),
    filesRemoved: metrics.counter(
      'parquetry_pg_files_removed_total',
      'lake files whose rows were deleted from PostgreSQL',
      ['table'],
    ),
    seconds: metrics.histogram(
      'parquetry_pg_load_seconds',
      'one lake change applied to PostgreSQL (one transaction)',
      ['table'],
      [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    ),
    peakRss: metrics.gauge('parquetry_pg_load_peak_rss_bytes', 'peak RSS during the last load', ['table']),
    reconciles: metrics.counter('parquetry_pg_reconciles_total', 'reconciles with the catalog', [
      'table',
      'outcome',
    ]),
    lastSync: metrics.gauge(
      'parquetry_pg_last_sync_timestamp_seconds',
      'time the table was last brought up to date',
      ['table'],
    ),
  };
}

/**
 * `runLoad`: the whole of `pnpm parquetry load <file-or-dataset> --config …` — every input file
 * into one table in ONE transaction (readers see the old table or the new, never a partial
 * one), each file recorded in the ledger so a rerun in append mode skips what is already in.
 */
import { randomUUID } from 'node:crypto';
import type { DuckDBInstance } from '@duckdb/node-api';
import { InvalidInputError, silentLogger } from '@parquetry/service';
import pg from 'pg';
import type { Logger } from 'pino';
import { DEFAULT_DATABASE_URL, type LoadConfig } from './config.js';
import type { CopyFormat } from './copy-stream.js';
import { claimFile, ensureLoaderTables, forgetTable, recordRows, sha256File } from './ledger.js';
import { PeakRss } from './memory.js';
import { type FileTag, type LoadProgress, LoadSession } from './pipeline.js';
import type { MemoryEstimate, SchemaDiff, Strategy } from './plan.js';
import { DuckSource } from './source.js';
import { tableKey } from './table.js';

export interface RunLoadOptions {
  /** Files, directories or globs; default: the config's `path`. */
  source?: string | readonly string[] | undefined;
  config: LoadConfig;
  /** A pool (borrowed) or a connection string (a pool is made and closed); default DATABASE_URL. */
  pg?: pg.Pool | string | undefined;
  logger?: Logger | undefined;
  onProgress?: ((p: LoadProgress) => void) | undefined;
  /** Reuse a DuckDB instance. */
  duckdb?: DuckDBInstance | undefined;
  /** Abort the load: the transaction rolls back. */
  signal?: AbortSignal | undefined;
  /** Memory available (bytes) instead of measuring it: for tests and dry planning. */
  availableBytes?: number | undefined;
  /**
   * The name a local file has in the ledger (default: its absolute path). A caller that
   * downloads lake files to a temporary place maps them back to their lake path here, so the
   * CLI and the service agree on what was loaded.
   */
  ledgerKey?: ((localPath: string) => string) | undefined;
  /**
   * A column naming each row's file (the service's `_lake_file` with the lake key): a table the
   * CLI loads from a lake dataset this way is one the service can follow and keep in step.
   */
  fileTag?: FileTag | undefined;
}

export interface LoadResult {
  loadId: string;
  table: string;
  files: number;
  /** Files skipped because the ledger has them already (append). */
  skippedFiles: string[];
  /** Input rows read; rows = loaded + rejected. */
  rows: number;
  loaded: number;
  rejected: number;
  rejectsTarget: string;
  strategy: Strategy;
  reason: string;
  estimate: MemoryEstimate;
  budgetBytes: number;
  copyFormat: CopyFormat;
  drift: SchemaDiff | undefined;
  seconds: number;
  rowsPerSecond: number;
  peakRssMb: number;
}

function inputsOf(opts: RunLoadOptions): string[] {
  const src = opts.source ?? opts.config.path;
  if (src === undefined)
    throw new InvalidInputError('nothing to load: give a file or dataset, or set "path" in the config');
  return typeof src === 'string' ? [src] : [...src];
}

export async function runLoad(opts: RunLoadOptions): Promise<LoadResult> {
  const { config } = opts;
  const logger = opts.logger ?? silentLogger();
  const inputs = inputsOf(opts);
  const started = performance.now();
  const loadId = randomUUID();
  const ownsPool = typeof opts.pg !== 'object';
  const pool =
    typeof opts.pg === 'object'
      ? opts.pg
      : new pg.Pool({
          connectionString: opts.pg ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL,
          max: 1,
        });
  const peak = new PeakRss();
  const duck = await DuckSource.open({ instance: opts.duckdb, threads: config.os_configuration.threads });
  const onAbort = () => duck.interrupt();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let client: pg.PoolClient | undefined;
  let session: LoadSession | undefined;
  let began = false;
  let failure: unknown;
  const onClientError = (err: Error) => logger.warn({ err }, 'pg_client_error');
  try {
    client = await pool.connect();
    // An idle-client error (server gone) must not crash the process; the next query reports it.
    client.on('error', onClientError);
    await ensureLoaderTables(client);
    session = await LoadSession.plan(
      {
        client,
        duck,
        config,
        logger,
        loadId,
        peak,
        onProgress: opts.onProgress,
        availableBytes: opts.availableBytes,
        processBytes: process.memoryUsage.rss(),
        signal: opts.signal,
        fileTag: opts.fileTag,
      },
      inputs,
    );
    const key = tableKey(session.target);
    const useLedger = config.database.ledger;
    opts.signal?.throwIfAborted();
    await client.query('BEGIN');
    began = true;
    await session.prepare(config.database.if_table_exists);
    if (useLedger && session.tableIsNew) await forgetTable(client, key);
    const skippedFiles: string[] = [];
    for (const file of session.files) {
      const ledgerKey = opts.ledgerKey?.(file) ?? file;
      // sha256 runs at ~1.4 GB/s here: hashing inside the transaction costs little.
      if (useLedger && !(await claimFile(client, key, ledgerKey, await sha256File(file))).claimed) {
        skippedFiles.push(ledgerKey);
        continue;
      }
      const counts = await session.loadFile(file);
      if (useLedger) await recordRows(client, key, ledgerKey, counts.loaded);
      opts.signal?.throwIfAborted();
    }
    await session.finish();
    await client.query('COMMIT');
    began = false;
    await session.close(true);
    const seconds = (performance.now() - started) / 1000;
    const counts = session.counts;
    const result: LoadResult = {
      loadId,
      table: key,
      files: session.files.length,
      skippedFiles,
      ...counts,
      rejectsTarget: session.rejectsTarget,
      strategy: session.strategy.strategy,
      reason: session.strategy.reason,
      estimate: session.estimate,
      budgetBytes: session.strategy.budgetBytes,
      copyFormat: session.copyFormat,
      drift: session.drift,
      seconds,
      rowsPerSecond: seconds > 0 ? counts.rows / seconds : 0,
      peakRssMb: peak.stop() / 1024 / 1024,
    };
    logger.info(
      {
        table: key,
        rows: result.rows,
        loaded: result.loaded,
        rejected: result.rejected,
        strategy: result.strategy,
        seconds: Number(seconds.toFixed(2)),
        peak_rss_mb: Math.round(result.peakRssMb),
      },
      'load',
    );
    return result;
  } catch (err) {
    failure = err;
    if (began) await client?.query('ROLLBACK').catch(() => {});
    await session?.close(false).catch(() => {});
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    peak.stop();
    client?.off('error', onClientError);
    // A client whose connection broke is destroyed rather than returned to the pool.
    client?.release(
      failure instanceof Error && !(failure instanceof InvalidInputError) ? failure : undefined,
    );
    duck.close();
    if (ownsPool) await pool.end();
  }
}

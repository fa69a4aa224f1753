import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBDataChunk, type DuckDBValue } from '@duckdb/node-api';
import type { JetStreamClient } from '@nats-io/jetstream';
import { publishJson, subjects } from '@parquetry/bus';
import {
  CANDLES,
  type Catalog,
  duckdbType,
  encoderFor,
  type FileEntry,
  type LakeCommitted,
  type NewFile,
  type ObjectStore,
  type ParquetCompression,
  type PartitionValues,
  partitionPath,
  sqlString,
} from '@parquetry/lake';
import { ConflictError, type Logger, type Metrics, mapLimit, silentLogger } from '@parquetry/service';
import type { CandleRecord } from '../domain/candle.js';
import { CANDLE_COLUMNS, type CandleRow, candlePartitionDir, compareCandles, toCandleRow } from './rows.js';

/**
 * Candles in the lake (docs/adr/0003-candle-layout.md, "Lake"):
 * - `write` appends one file per touched partition — every partition of a flush written by one
 *   partitioned DuckDB COPY — and commits each partition on its own (idempotent by commit id);
 * - a partition with more than `maxFiles` live files is rewritten (size-tiered: the small
 *   recent files alone while the oldest file dwarfs them, else everything), keeping the highest
 *   revision of each candle, through a replace commit of the catalog;
 * - `replacePartition` swaps a partition's whole content (backfill, repair);
 * - `read` returns the latest revision of each candle of the matching partitions.
 */
export interface CandleLakeDeps {
  catalog: Catalog;
  store: ObjectStore;
  /** A connection no one else uses while this object works. */
  conn: DuckDBConnection;
  /** For `lake.committed.candles`; omitted → no notices. */
  js?: JetStreamClient;
  logger?: Logger;
  metrics?: Metrics;
  compression?: ParquetCompression;
  /** Compact a partition above this many live files (default 4). */
  maxFiles?: number;
  /** Names commits (and files) of this writer. */
  writerId: string;
  concurrency?: number;
}

export interface WriteResult {
  commitId: string;
  partitions: number;
  files: number;
  rows: number;
}

const COLUMN_LIST = CANDLE_COLUMNS.map((c) => `"${c.name}"`).join(', ');
const TYPES = CANDLE_COLUMNS.map((c) => duckdbType(c.type));
const ENCODERS = CANDLE_COLUMNS.map((c) => encoderFor(c));
const CHUNK_ROWS = 2048;

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export class CandleLake {
  private readonly logger: Logger;
  private readonly fileCounts = new Map<string, number>();
  private readonly maxFiles: number;
  private readonly compression: ParquetCompression;
  private readonly concurrency: number;

  constructor(private readonly deps: CandleLakeDeps) {
    this.logger = deps.logger ?? silentLogger();
    this.maxFiles = deps.maxFiles ?? 4;
    this.compression = deps.compression ?? 'snappy';
    this.concurrency = deps.concurrency ?? 16;
  }

  newCommitId(what: string): string {
    return `${this.deps.writerId}-${what}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  }

  /** Appends candles (any partitions) as new files and commits them; then compacts crowded partitions. */
  async write(
    candles: readonly CandleRecord[],
    commitId = this.newCommitId('candles'),
  ): Promise<WriteResult> {
    if (candles.length === 0) return { commitId, partitions: 0, files: 0, rows: 0 };
    const started = Date.now();
    const rows = candles.map(toCandleRow).sort(rowOrder);
    const groups = groupByPartition(rows);
    const work = join(tmpdir(), 'parquetry-candles', randomBytes(8).toString('hex'));
    await mkdir(work, { recursive: true });
    try {
      const out = join(work, 'out');
      const table = `candles_${randomBytes(6).toString('hex')}`;
      await this.loadTable(table, rows);
      const stamp = new Date(started).toISOString().replace(/[-:]/g, '').slice(0, 15);
      try {
        await this.deps.conn.run(
          `COPY ${table} TO ${sqlString(out)} (FORMAT parquet, COMPRESSION ${codec(this.compression)}, ` +
            `PARTITION_BY (timeframe, symbol, period), WRITE_PARTITION_COLUMNS true, ` +
            `FILENAME_PATTERN 'candles_${stamp}_{uuid}')`,
        );
      } finally {
        await this.deps.conn.run(`DROP TABLE IF EXISTS temp.main.${table}`).catch(() => {});
      }
      const changes: { values: PartitionValues; add: NewFile[] }[] = [];
      await mapLimit(groups, this.concurrency, async (g) => {
        const rel = partitionPath(CANDLES.partitionColumns, g.values);
        const names = (await readdir(join(out, rel))).filter((n) => n.endsWith('.parquet')).sort();
        const add: NewFile[] = [];
        for (const name of names) {
          const local = join(out, rel, name);
          const count = names.length === 1 ? g.rows.length : await this.countRows(local);
          const file = await this.upload(local, `${candlePartitionDir(g.values)}/${name}`, count, g.rows);
          add.push(file);
        }
        changes.push({ values: g.values, add });
      });
      await mapLimit(changes, this.concurrency, async (c) => {
        const result = await this.deps.catalog.commit({
          dataset: CANDLES.name,
          commitId,
          changes: [{ partition: c.values, add: c.add }],
        });
        const key = partitionPath(CANDLES.partitionColumns, c.values);
        const known = this.fileCounts.get(key);
        if (Object.values(result.partitions)[0] === 'applied' && known !== undefined) {
          this.fileCounts.set(key, known + c.add.length);
        }
      });
      const files = changes.reduce((n, c) => n + c.add.length, 0);
      this.count(
        rows.length,
        files,
        changes.reduce((n, c) => n + c.add.reduce((m, f) => m + f.bytes, 0), 0),
      );
      await this.announce(
        commitId,
        'append',
        changes.map((c) => ({ values: c.values, added: c.add, removed: [] })),
      );
      this.deps.metrics
        ?.histogram('parquetry_flush_seconds', 'buffer flush: write, upload, commit', ['dataset'])
        .observe({ dataset: CANDLES.name }, (Date.now() - started) / 1000);
      const written = Date.now();
      await this.compactCrowded(changes.map((c) => c.values));
      this.logger.debug(
        {
          dataset: CANDLES.name,
          commit_id: commitId,
          rows: rows.length,
          files,
          ms: written - started,
          compactMs: Date.now() - written,
        },
        'flush',
      );
      return { commitId, partitions: changes.length, files, rows: rows.length };
    } finally {
      await rm(work, { recursive: true, force: true }).catch(() => {});
    }
  }

  /**
   * Replaces everything a partition holds by `candles` (their revisions as given) in one
   * commit; an empty list empties the partition. Conflicts (a concurrent writer replaced files
   * in between) are retried with a fresh read.
   */
  async replacePartition(
    values: PartitionValues,
    candles: readonly CandleRecord[],
    commitId = this.newCommitId('replace'),
  ) {
    for (let attempt = 0; ; attempt++) {
      const manifest = await this.deps.catalog.partition(CANDLES.name, values);
      try {
        return await this.rewritePartition(
          values,
          candles,
          manifest.files.map((f) => f.path),
          commitId,
        );
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= 5) throw err;
      }
    }
  }

  /**
   * Replaces exactly the live files `remove` by one file holding `candles` (none when empty), in
   * one catalog commit. Files appended meanwhile by someone else stay live; a file of `remove`
   * that is no longer live (compacted meanwhile) fails the commit with ConflictError: re-plan.
   */
  async rewritePartition(
    values: PartitionValues,
    candles: readonly CandleRecord[],
    remove: readonly string[],
    commitId = this.newCommitId('rewrite'),
  ): Promise<{ commitId: string; added: NewFile[]; removed: string[] }> {
    const add: NewFile[] = [];
    const work = join(tmpdir(), 'parquetry-candles', randomBytes(8).toString('hex'));
    await mkdir(work, { recursive: true });
    try {
      if (candles.length > 0) {
        const rows = [...candles].sort(compareCandles).map(toCandleRow);
        const table = `candles_${randomBytes(6).toString('hex')}`;
        await this.loadTable(table, rows);
        const local = join(work, 'replace.parquet');
        try {
          await this.deps.conn.run(
            `COPY ${table} TO ${sqlString(local)} (FORMAT parquet, COMPRESSION ${codec(this.compression)})`,
          );
        } finally {
          await this.deps.conn.run(`DROP TABLE IF EXISTS temp.main.${table}`).catch(() => {});
        }
        const name = `candles_${stampNow()}_${randomBytes(8).toString('hex')}.parquet`;
        add.push(await this.upload(local, `${candlePartitionDir(values)}/${name}`, rows.length, rows));
      }
      await this.deps.catalog.commit({
        dataset: CANDLES.name,
        commitId,
        changes: [{ partition: values, add, remove: [...remove] }],
      });
      this.fileCounts.delete(partitionPath(CANDLES.partitionColumns, values));
      this.count(
        candles.length,
        add.length,
        add.reduce((n, f) => n + f.bytes, 0),
      );
      await this.announce(commitId, 'replace', [{ values, added: add, removed: [...remove] }]);
      return { commitId, added: add, removed: [...remove] };
    } catch (err) {
      for (const f of add) await this.deps.store.delete(f.path).catch(() => {});
      throw err;
    } finally {
      await rm(work, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** The latest revision of every candle in the live files of partitions matching `where`. */
  async read(where: Record<string, string> = {}, files?: readonly FileEntry[]): Promise<CandleRecord[]> {
    const live = files ?? (await this.deps.catalog.liveFiles(CANDLES.name, where));
    if (live.length === 0) return [];
    const paths = await Promise.all(live.map((f) => this.deps.store.localPath(f.path)));
    return await readCandleFiles(this.deps.conn, paths);
  }

  /** Rewrites partitions holding more than `maxFiles` live files. */
  async compactCrowded(partitions: readonly PartitionValues[]): Promise<void> {
    const crowded: PartitionValues[] = [];
    const unknown: PartitionValues[] = [];
    for (const values of partitions) {
      const n = this.fileCounts.get(partitionPath(CANDLES.partitionColumns, values));
      if (n === undefined) unknown.push(values);
      else if (n > this.maxFiles) crowded.push(values);
    }
    await mapLimit(unknown, this.concurrency, async (values) => {
      const m = await this.deps.catalog.partition(CANDLES.name, values);
      this.fileCounts.set(partitionPath(CANDLES.partitionColumns, values), m.files.length);
      if (m.files.length > this.maxFiles) crowded.push(values);
    });
    for (const values of crowded) {
      try {
        await this.compact(values);
      } catch (err) {
        this.fileCounts.delete(partitionPath(CANDLES.partitionColumns, values));
        if (err instanceof ConflictError)
          this.logger.debug({ err, partition: values }, 'compaction_conflict');
        else this.logger.warn({ err, partition: values }, 'compaction_failed');
      }
    }
  }

  /** Size-tiered rewrite of one partition; see the class comment. */
  async compact(values: PartitionValues): Promise<void> {
    const key = partitionPath(CANDLES.partitionColumns, values);
    const manifest = await this.deps.catalog.partition(CANDLES.name, values);
    const files = [...manifest.files].sort((a, b) => b.rows - a.rows || a.path.localeCompare(b.path));
    if (files.length <= this.maxFiles) {
      this.fileCounts.set(key, files.length);
      return;
    }
    const [base, ...rest] = files;
    const restRows = rest.reduce((n, f) => n + f.rows, 0);
    const merge = base!.rows > 4 * restRows ? rest : files;
    const paths = await Promise.all(merge.map((f) => this.deps.store.localPath(f.path)));
    const work = join(tmpdir(), 'parquetry-candles', randomBytes(8).toString('hex'));
    await mkdir(work, { recursive: true });
    const commitId = this.newCommitId('compact');
    const name = `candles_${stampNow()}_${randomBytes(8).toString('hex')}.parquet`;
    const target = `${candlePartitionDir(values)}/${name}`;
    try {
      const local = join(work, name);
      await this.deps.conn.run(
        `COPY (SELECT ${COLUMN_LIST} FROM ${source(paths)} ` +
          `QUALIFY row_number() OVER (PARTITION BY symbol, timeframe, "start" ORDER BY revision DESC) = 1 ORDER BY "start") ` +
          `TO ${sqlString(local)} (FORMAT parquet, COMPRESSION ${codec(this.compression)})`,
      );
      const count = await this.countRows(local);
      const minTime = merge
        .map((f) => f.minTime)
        .filter((t): t is string => !!t)
        .sort()[0];
      const maxTime = merge
        .map((f) => f.maxTime)
        .filter((t): t is string => !!t)
        .sort()
        .at(-1);
      const file = await this.upload(local, target, count, undefined);
      if (minTime) file.minTime = minTime;
      if (maxTime) file.maxTime = maxTime;
      const remove = merge.map((f) => f.path);
      try {
        await this.deps.catalog.commit({
          dataset: CANDLES.name,
          commitId,
          changes: [{ partition: values, add: [file], remove }],
        });
      } catch (err) {
        await this.deps.store.delete(target).catch(() => {});
        throw err;
      }
      this.fileCounts.set(key, files.length - merge.length + 1);
      this.deps.metrics
        ?.counter('parquetry_files_removed_total', 'Lake files removed (retention, compaction, vacuum)', [
          'dataset',
          'reason',
        ])
        .inc({ dataset: CANDLES.name, reason: 'compaction' }, remove.length);
      await this.announce(commitId, 'replace', [{ values, added: [file], removed: remove }]);
      this.logger.debug({ partition: key, merged: merge.length, rows: count }, 'compacted');
    } finally {
      await rm(work, { recursive: true, force: true }).catch(() => {});
    }
  }

  private async loadTable(table: string, rows: readonly CandleRow[]): Promise<void> {
    const { conn } = this.deps;
    const cols = CANDLE_COLUMNS.map((c, i) => `"${c.name}" ${TYPES[i]!.toString()}`).join(', ');
    await conn.run(`CREATE TEMP TABLE ${table} (${cols})`);
    const appender = await conn.createAppender(table, 'main', 'temp');
    try {
      for (let start = 0; start < rows.length; start += CHUNK_ROWS) {
        const n = Math.min(CHUNK_ROWS, rows.length - start);
        const data: DuckDBValue[][] = CANDLE_COLUMNS.map((c, ci) => {
          const encode = ENCODERS[ci]!;
          const col = new Array<DuckDBValue>(n);
          for (let r = 0; r < n; r++) col[r] = encode(rows[start + r]![c.name], start + r);
          return col;
        });
        const chunk = DuckDBDataChunk.create(TYPES, n);
        chunk.setColumns(data);
        appender.appendDataChunk(chunk);
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
  }

  private async countRows(local: string): Promise<number> {
    const r = await this.deps.conn.runAndReadAll(
      `SELECT num_rows FROM parquet_file_metadata(${sqlString(local)})`,
    );
    return Number(r.getRowObjectsJS()[0]?.num_rows ?? 0);
  }

  private async upload(
    local: string,
    key: string,
    rows: number,
    content: readonly CandleRow[] | undefined,
  ): Promise<NewFile> {
    const [bytes, sha256] = await Promise.all([stat(local).then((s) => s.size), sha256Of(local)]);
    await this.deps.store.putFile(key, local, { move: true });
    const file: NewFile = { path: key, rows, bytes, sha256 };
    if (content && content.length > 0) {
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (const r of content) {
        if (r.start < min) min = r.start;
        if (r.start > max) max = r.start;
      }
      file.minTime = new Date(min).toISOString();
      file.maxTime = new Date(max).toISOString();
    }
    return file;
  }

  private count(rows: number, files: number, bytes: number): void {
    const m = this.deps.metrics;
    if (!m) return;
    m.counter('parquetry_rows_written_total', 'rows committed to the lake', ['dataset']).inc(
      { dataset: CANDLES.name },
      rows,
    );
    m.counter('parquetry_files_written_total', 'Parquet files committed', ['dataset']).inc(
      { dataset: CANDLES.name },
      files,
    );
    m.counter('parquetry_bytes_written_total', 'Parquet bytes committed', ['dataset']).inc(
      { dataset: CANDLES.name },
      bytes,
    );
    m.gauge('parquetry_last_commit_timestamp_seconds', 'time of the last commit', ['dataset']).set(
      { dataset: CANDLES.name },
      Date.now() / 1000,
    );
  }

  private async announce(
    commitId: string,
    operation: LakeCommitted['operation'],
    partitions: { values: PartitionValues; added: NewFile[]; removed: string[] }[],
  ): Promise<void> {
    if (!this.deps.js) return;
    const event: LakeCommitted = {
      dataset: CANDLES.name,
      commit_id: commitId,
      committed_at: new Date().toISOString(),
      operation,
      partitions: partitions.map((p) => ({
        values: p.values,
        added: p.added.map((f) => ({ path: f.path, rows: f.rows, bytes: f.bytes })),
        removed: p.removed,
      })),
    };
    try {
      await publishJson(this.deps.js, subjects.lakeCommitted(CANDLES.name), event, { msgId: commitId });
    } catch (err) {
      // The data is committed; followers also read the catalog, so a lost notice is not a loss.
      this.logger.warn({ err, dataset: CANDLES.name, commit_id: commitId }, 'lake_committed_publish_failed');
    }
  }
}

/** The latest revision of every candle in these Parquet files (local paths), sorted. */
export async function readCandleFiles(
  conn: DuckDBConnection,
  paths: readonly string[],
): Promise<CandleRecord[]> {
  if (paths.length === 0) return [];
  const r = await conn.runAndReadAll(
    `SELECT symbol, timeframe, epoch_ms("start") AS "start", epoch_ms("end") AS "end", open, high, low, close, ` +
      `volume, trades, vwap, revision FROM ${source(paths)} ` +
      `QUALIFY row_number() OVER (PARTITION BY symbol, timeframe, "start" ORDER BY revision DESC) = 1`,
  );
  return r
    .getRowObjectsJS()
    .map((row) => ({
      symbol: String(row.symbol),
      timeframe: row.timeframe as CandleRecord['timeframe'],
      start: Number(row.start),
      end: Number(row.end),
      open: row.open as number,
      high: row.high as number,
      low: row.low as number,
      close: row.close as number,
      volume: row.volume as number,
      trades: Number(row.trades),
      vwap: row.vwap as number,
      revision: Number(row.revision),
    }))
    .sort(compareCandles);
}

function source(paths: readonly string[]): string {
  return `read_parquet([${paths.map(sqlString).join(', ')}], hive_partitioning = false, union_by_name = true)`;
}

function codec(c: ParquetCompression): string {
  return c === 'none' ? 'uncompressed' : c;
}

function stampNow(): string {
  return new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
}

function rowOrder(a: CandleRow, b: CandleRow): number {
  if (a.timeframe !== b.timeframe) return a.timeframe < b.timeframe ? -1 : 1;
  if (a.symbol !== b.symbol) return a.symbol < b.symbol ? -1 : 1;
  if (a.period !== b.period) return a.period < b.period ? -1 : 1;
  return a.start - b.start;
}

function groupByPartition(rows: readonly CandleRow[]): { values: PartitionValues; rows: CandleRow[] }[] {
  const groups = new Map<string, { values: PartitionValues; rows: CandleRow[] }>();
  for (const r of rows) {
    const k = `${r.timeframe}/${r.symbol}/${r.period}`;
    let g = groups.get(k);
    if (!g) {
      g = { values: { timeframe: r.timeframe, symbol: r.symbol, period: r.period }, rows: [] };
      groups.set(k, g);
    }
    g.rows.push(r);
  }
  return [...groups.values()];
}

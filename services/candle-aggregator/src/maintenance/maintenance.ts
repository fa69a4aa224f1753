import type { DuckDBConnection } from '@duckdb/node-api';
import {
  CANDLES,
  type Catalog,
  type FileEntry,
  type ObjectStore,
  type ParquetCompression,
  type PartitionManifest,
  type PartitionValues,
  sha256File,
  sqlString,
  TICKS,
  TIMEFRAMES,
  type Timeframe,
} from '@parquetry/lake';
import { ConflictError, InvalidInputError, type Logger, silentLogger } from '@parquetry/service';
import type { CandleRecord } from '../domain/candle.js';
import { CandleLake, readCandleFiles } from '../lake/candle-lake.js';
import { candlePartition } from '../lake/rows.js';
import { CandleBuilder, rollUpCandles } from './build.js';
import { changesOf, diffPartition, type PartitionDiff, type RebuildPolicy } from './plan.js';

/**
 * Offline candle work for the operator CLI (`parquetry candles backfill | update | verify`;
 * docs/adr/0003-candle-layout.md, "Maintenance"). Everything goes through the catalog: a
 * partition is rewritten by one replace commit that removes exactly the files it was planned
 * from, so files the live service appends meanwhile stay live, and a compaction in between
 * makes the commit fail with a conflict, after which the partition is planned again.
 */
export interface CandleMaintenanceDeps {
  catalog: Catalog;
  store: ObjectStore;
  /** A connection no one else uses meanwhile. */
  conn: DuckDBConnection;
  logger?: Logger;
  /** Names the commits (default `cli`). */
  writerId?: string;
  compression?: ParquetCompression;
  clock?: () => number;
  /** Called after each partition is planned (and written), for progress bars. */
  onPartition?: (done: number, total: number) => void;
}

export type CandleSource = 'ticks' | '1m';

export interface BackfillOptions {
  symbol: string;
  /** Default: all six. */
  timeframes?: readonly Timeframe[];
  /** First UTC day, `YYYY-MM-DD` (default: the first day in the source). */
  start?: string;
  /** Last UTC day, inclusive (default: the last day in the source). */
  end?: string;
  /** Also replace candles whose values differ and drop candles the source does not produce. */
  force?: boolean;
  dryRun?: boolean;
  /** `ticks` (the raw archive, default) or `1m` (roll higher timeframes up from the lake's 1m candles). */
  from?: CandleSource;
}

export interface UpdateOptions {
  symbol: string;
  /** Days before today (UTC) to recompute, today included (default 1: yesterday and today). */
  daysBack?: number;
  dryRun?: boolean;
}

export interface PartitionReport {
  timeframe: string;
  symbol: string;
  period: string;
  added: number;
  changed: number;
  removed: number;
  unchanged: number;
  /** Values differ from the source, kept (no --force). */
  differing: number;
  /** Not produced by the source, kept (no --force). */
  stale: number;
}

export interface RebuildReport {
  operation: 'backfill' | 'update';
  symbol: string;
  source: CandleSource;
  timeframes: Timeframe[];
  dry_run: boolean;
  /** `[start, end)` rebuilt, ISO; null when the source holds nothing. */
  range: { start: string; end: string } | null;
  /** Ticks (or 1m candles) read from the source. */
  source_rows: number;
  /** Partitions with a change (or, in a dry run, that would change). */
  partitions: PartitionReport[];
  totals: {
    added: number;
    changed: number;
    removed: number;
    unchanged: number;
    differing: number;
    stale: number;
  };
  /** Partitions and files committed (0 in a dry run). */
  written: { partitions: number; files: number; candles: number };
}

export type FileProblem = 'missing' | 'size' | 'checksum' | 'unreadable' | 'row_count';

export interface FileCheck {
  path: string;
  partition: PartitionValues;
  rows: number;
  bytes: number;
  problems: FileProblem[];
  detail?: string;
}

export interface VerifyOptions {
  symbol?: string;
  repair?: boolean;
}

export interface VerifyReport {
  files_checked: number;
  partitions_checked: number;
  damaged: FileCheck[];
  repaired: {
    partition: PartitionValues;
    removed: string[];
    added: string[];
    candles: number;
    rebuilt: number;
  }[];
  unrepaired: { partition: PartitionValues; reason: string }[];
  /** Every live file sound (after repair, when asked). */
  ok: boolean;
}

const DAY_MS = 86_400_000;
const CONFLICT_RETRIES = 5;
/**
 * `update` leaves alone candles that ended less than this before now unless the archive already
 * holds a later tick: the archive trails the stream by ingest-backup's flush interval, and late
 * ticks are accepted for CANDLE_LATENESS_MS (15 min by default).
 */
export const ARCHIVE_SETTLE_MS = 60 * 60_000;

function parseDay(value: string, what: string): number {
  const ms = Date.parse(`${value}T00:00:00Z`);
  if (
    !/^\d{4}-\d{2}-\d{2}$/.test(value) ||
    !Number.isFinite(ms) ||
    !new Date(ms).toISOString().startsWith(value)
  ) {
    throw new InvalidInputError(`${what} must be a date YYYY-MM-DD, got ${JSON.stringify(value)}`);
  }
  return ms;
}

/** `[start, end)` of a candle partition's period (`YYYY-MM`, `YYYY` or `all`). */
export function periodRange(period: string): [number, number] {
  if (period === 'all') return [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY];
  const m = /^(\d{4})(?:-(\d{2}))?$/.exec(period);
  if (!m) throw new InvalidInputError(`not a candle period: ${JSON.stringify(period)}`);
  const year = Number(m[1]);
  if (m[2] === undefined) return [Date.UTC(year, 0, 1), Date.UTC(year + 1, 0, 1)];
  const month = Number(m[2]) - 1;
  return [Date.UTC(year, month, 1), Date.UTC(year, month + 1, 1)];
}

function validateTimeframes(tfs: readonly string[] | undefined): Timeframe[] {
  if (!tfs || tfs.length === 0) return [...TIMEFRAMES];
  const bad = tfs.filter((t) => !(TIMEFRAMES as readonly string[]).includes(t));
  if (bad.length > 0) {
    throw new InvalidInputError(`unknown timeframe ${bad.join(', ')}; valid: ${TIMEFRAMES.join(', ')}`);
  }
  return TIMEFRAMES.filter((t) => tfs.includes(t));
}

function validateSymbol(symbol: string): void {
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(symbol)) {
    throw new InvalidInputError(`symbol must match [A-Za-z0-9_-]{1,32}, got ${JSON.stringify(symbol)}`);
  }
}

interface SourceRead {
  candles: CandleRecord[];
  rows: number;
  /** Largest tick time read (ticks source). */
  maxTs: number | undefined;
  /** `[start, end)` of the days read. */
  range: [number, number] | undefined;
}

export class CandleMaintenance {
  private readonly lake: CandleLake;
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(private readonly deps: CandleMaintenanceDeps) {
    this.logger = deps.logger ?? silentLogger();
    this.now = deps.clock ?? Date.now;
    this.lake = new CandleLake({
      catalog: deps.catalog,
      store: deps.store,
      conn: deps.conn,
      logger: this.logger,
      writerId: deps.writerId ?? 'cli',
      compression: deps.compression,
    });
  }

  /**
   * Rebuilds a symbol's candles over whole UTC days from the tick archive (or higher
   * timeframes from the lake's 1m candles). Without `force` only missing candles are written;
   * with it, differing candles are replaced (revision + 1) and candles the source does not
   * produce in the range are dropped.
   */
  async backfill(opts: BackfillOptions): Promise<RebuildReport> {
    validateSymbol(opts.symbol);
    const timeframes = validateTimeframes(opts.timeframes);
    const from = opts.from ?? 'ticks';
    if (from === '1m' && timeframes.includes('1m')) {
      throw new InvalidInputError('--from 1m rebuilds higher timeframes only: leave 1m out of --timeframes');
    }
    const start = opts.start === undefined ? undefined : parseDay(opts.start, '--start');
    const end = opts.end === undefined ? undefined : parseDay(opts.end, '--end') + DAY_MS;
    if (start !== undefined && end !== undefined && end <= start)
      throw new InvalidInputError('--end is before --start');
    const policy: RebuildPolicy = { add: true, change: !!opts.force, remove: !!opts.force };
    return await this.rebuild(
      'backfill',
      opts.symbol,
      timeframes,
      from,
      start,
      end,
      policy,
      !!opts.dryRun,
      undefined,
    );
  }

  /**
   * Recomputes the last `daysBack` days (and today) from the tick archive and writes only the
   * partitions whose candles changed: candles added to the archive since (late ticks, a
   * replayed backlog) are added, differing ones replaced. Only complete candles are considered
   * (ended before the newest archived tick, or more than ARCHIVE_SETTLE_MS ago): the archive
   * trails the live stream by its flush interval, and an open candle is the live service's.
   */
  async update(opts: UpdateOptions): Promise<RebuildReport> {
    validateSymbol(opts.symbol);
    const daysBack = opts.daysBack ?? 1;
    if (!Number.isInteger(daysBack) || daysBack < 0)
      throw new InvalidInputError('--days-back must be a non-negative integer');
    const today = Math.floor(this.now() / DAY_MS) * DAY_MS;
    const policy: RebuildPolicy = { add: true, change: true, remove: false };
    return await this.rebuild(
      'update',
      opts.symbol,
      [...TIMEFRAMES],
      'ticks',
      today - daysBack * DAY_MS,
      today + DAY_MS,
      policy,
      !!opts.dryRun,
      'archive',
    );
  }

  /**
   * Checks every live candle file: present, its size and sha256 as recorded at commit, readable
   * end to end, its row count as recorded. With `repair`, each damaged partition is rebuilt
   * from the tick archive over its period (sound files' candles kept, the archive's values
   * winning where they differ) and committed as one replace of every file it held.
   */
  async verify(opts: VerifyOptions = {}): Promise<VerifyReport> {
    if (opts.symbol !== undefined) validateSymbol(opts.symbol);
    const manifests = await this.deps.catalog.partitions(
      CANDLES.name,
      (v) => !opts.symbol || v.symbol === opts.symbol,
    );
    const report: VerifyReport = {
      files_checked: 0,
      partitions_checked: manifests.length,
      damaged: [],
      repaired: [],
      unrepaired: [],
      ok: true,
    };
    const damagedBy = new Map<PartitionManifest, FileCheck[]>();
    let done = 0;
    for (const m of manifests) {
      for (const f of m.files) {
        const check = await this.checkFile(m.partition, f);
        report.files_checked++;
        if (check.problems.length > 0) {
          report.damaged.push(check);
          damagedBy.set(m, [...(damagedBy.get(m) ?? []), check]);
        }
      }
      this.deps.onPartition?.(++done, manifests.length);
    }
    if (opts.repair) {
      for (const [m, checks] of damagedBy) {
        try {
          report.repaired.push(await this.repair(m, new Set(checks.map((c) => c.path))));
        } catch (err) {
          report.unrepaired.push({
            partition: m.partition,
            reason: err instanceof Error ? err.message : String(err),
          });
        }
      }
    } else {
      for (const m of damagedBy.keys())
        report.unrepaired.push({ partition: m.partition, reason: 'not repaired (use --repair)' });
    }
    report.ok = report.unrepaired.length === 0;
    return report;
  }

  // ---- rebuild --------------------------------------------------------------------------------

  private async rebuild(
    operation: RebuildReport['operation'],
    symbol: string,
    timeframes: Timeframe[],
    from: CandleSource,
    start: number | undefined,
    end: number | undefined,
    policy: RebuildPolicy,
    dryRun: boolean,
    cutoff: 'archive' | undefined,
  ): Promise<RebuildReport> {
    const source =
      from === 'ticks'
        ? await this.readTicks(symbol, timeframes, start, end)
        : await this.readOneMinute(symbol, timeframes, start, end);
    const report: RebuildReport = {
      operation,
      symbol,
      source: from,
      timeframes,
      dry_run: dryRun,
      range: null,
      source_rows: source.rows,
      partitions: [],
      totals: { added: 0, changed: 0, removed: 0, unchanged: 0, differing: 0, stale: 0 },
      written: { partitions: 0, files: 0, candles: 0 },
    };
    const range =
      start !== undefined && end !== undefined ? ([start, end] as [number, number]) : source.range;
    if (!range) return report;
    report.range = { start: new Date(range[0]).toISOString(), end: new Date(range[1]).toISOString() };
    // update: a candle is complete once the archive holds a later tick, or once it ended
    // longer ago than the archive can trail the stream.
    const limit =
      cutoff === 'archive'
        ? Math.max(source.maxTs ?? Number.NEGATIVE_INFINITY, this.now() - ARCHIVE_SETTLE_MS)
        : Number.POSITIVE_INFINITY;
    const inScope = (c: Pick<CandleRecord, 'timeframe' | 'start' | 'end'>) =>
      timeframes.includes(c.timeframe) && c.start >= range[0] && c.start < range[1] && c.end <= limit;
    const rebuilt = source.candles.filter(inScope);

    // Every partition the rebuild touches, and (when it may remove) every one it overlaps.
    const targets = new Map<string, PartitionValues>();
    for (const c of rebuilt) {
      const v = candlePartition(c);
      targets.set(`${v.timeframe}/${v.period}`, v);
    }
    if (policy.remove) {
      const overlapping = await this.deps.catalog.partitions(CANDLES.name, (v) => {
        if (v.symbol !== symbol || !timeframes.includes(v.timeframe as Timeframe)) return false;
        const [ps, pe] = periodRange(v.period ?? '');
        return ps < range[1] && pe > range[0];
      });
      for (const m of overlapping) targets.set(`${m.partition.timeframe}/${m.partition.period}`, m.partition);
    }
    const byPartition = new Map<string, CandleRecord[]>();
    for (const c of rebuilt) {
      const k = `${c.timeframe}/${candlePartition(c).period}`;
      const list = byPartition.get(k);
      if (list) list.push(c);
      else byPartition.set(k, [c]);
    }

    let done = 0;
    for (const [key, values] of [...targets].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const fresh = byPartition.get(key) ?? [];
      for (let attempt = 0; ; attempt++) {
        const manifest = await this.deps.catalog.partition(CANDLES.name, values);
        const existing = await this.readFiles(manifest.files);
        const diff = diffPartition(existing, fresh, inScope, policy);
        const changes = changesOf(diff);
        if (attempt === 0) this.tally(report, values, diff);
        if (dryRun || changes === 0) break;
        try {
          const r = await this.lake.rewritePartition(
            values,
            diff.content,
            manifest.files.map((f) => f.path),
            this.lake.newCommitId(operation),
          );
          report.written.partitions++;
          report.written.files += r.added.length;
          report.written.candles += changes;
          break;
        } catch (err) {
          if (!(err instanceof ConflictError) || attempt >= CONFLICT_RETRIES) throw err;
          this.logger.debug({ err, partition: values }, 'partition_changed_replanning');
        }
      }
      this.deps.onPartition?.(++done, targets.size);
    }
    return report;
  }

  private tally(report: RebuildReport, values: PartitionValues, d: PartitionDiff): void {
    const t = report.totals;
    t.added += d.added;
    t.changed += d.changed;
    t.removed += d.removed;
    t.unchanged += d.unchanged;
    t.differing += d.differing;
    t.stale += d.stale;
    if (changesOf(d) + d.differing + d.stale === 0) return;
    report.partitions.push({
      timeframe: values.timeframe!,
      symbol: values.symbol!,
      period: values.period!,
      added: d.added,
      changed: d.changed,
      removed: d.removed,
      unchanged: d.unchanged,
      differing: d.differing,
      stale: d.stale,
    });
  }

  private async readFiles(files: readonly FileEntry[]): Promise<CandleRecord[]> {
    if (files.length === 0) return [];
    const paths = await Promise.all(files.map((f) => this.deps.store.localPath(f.path)));
    return await readCandleFiles(this.deps.conn, paths);
  }

  /**
   * The tick archive of `symbol` over whole days `[start, end)` (all days when unbounded), one
   * date partition at a time, trades deduplicated by id (the first stored wins; a trade's
   * copies share their timestamp, so they share a date partition).
   */
  private async readTicks(
    symbol: string,
    timeframes: readonly Timeframe[],
    start: number | undefined,
    end: number | undefined,
  ): Promise<SourceRead> {
    const manifests = await this.deps.catalog.partitions(TICKS.name, (v) => {
      if (v.symbol !== symbol) return false;
      const d = Date.parse(`${v.date}T00:00:00Z`);
      return (start === undefined || d >= start) && (end === undefined || d < end);
    });
    const builder = new CandleBuilder(symbol, timeframes);
    let rows = 0;
    let maxTs: number | undefined;
    let first: number | undefined;
    let last: number | undefined;
    for (const m of manifests) {
      if (m.files.length === 0) continue;
      const d = Date.parse(`${m.partition.date}T00:00:00Z`);
      first = first === undefined ? d : Math.min(first, d);
      last = last === undefined ? d : Math.max(last, d);
      const paths = await Promise.all(m.files.map((f) => this.deps.store.localPath(f.path)));
      const reader = await this.deps.conn.runAndReadAll(
        `SELECT epoch_ms(ts) AS ts, price, size, trade_id FROM read_parquet([${paths.map(sqlString).join(', ')}], ` +
          `hive_partitioning = false, union_by_name = true) ORDER BY stream_seq NULLS LAST`,
      );
      const cols = reader.getColumnsJS();
      const [tsCol, priceCol, sizeCol, idCol] = cols as [unknown[], number[], number[], (string | null)[]];
      const seen = new Set<string>();
      for (let i = 0; i < tsCol.length; i++) {
        const id = idCol[i] ?? undefined;
        if (id !== undefined) {
          if (seen.has(id)) continue;
          seen.add(id);
        }
        const ts = Number(tsCol[i]);
        builder.add({ ts, price: priceCol[i]!, size: sizeCol[i]!, trade_id: id });
        rows++;
        if (maxTs === undefined || ts > maxTs) maxTs = ts;
      }
    }
    return {
      candles: builder.candles(),
      rows,
      maxTs,
      range: first === undefined || last === undefined ? undefined : [first, last + DAY_MS],
    };
  }

  /** The lake's 1m candles of `symbol` in `[start, end)`, rolled up to `timeframes`. */
  private async readOneMinute(
    symbol: string,
    timeframes: readonly Timeframe[],
    start: number | undefined,
    end: number | undefined,
  ): Promise<SourceRead> {
    const manifests = await this.deps.catalog.partitions(CANDLES.name, (v) => {
      if (v.symbol !== symbol || v.timeframe !== '1m') return false;
      const [ps, pe] = periodRange(v.period ?? '');
      return (start === undefined || pe > start) && (end === undefined || ps < end);
    });
    const bars = (await this.readFiles(manifests.flatMap((m) => m.files))).filter(
      (c) => (start === undefined || c.start >= start) && (end === undefined || c.start < end),
    );
    if (bars.length === 0) return { candles: [], rows: 0, maxTs: undefined, range: undefined };
    const first = Math.floor(bars[0]!.start / DAY_MS) * DAY_MS;
    const last = Math.floor(bars.at(-1)!.start / DAY_MS) * DAY_MS;
    return {
      candles: rollUpCandles(bars, timeframes),
      rows: bars.length,
      maxTs: undefined,
      range: [first, last + DAY_MS],
    };
  }

  // ---- verify -------------------------------------------------------------------------------

  private async checkFile(partition: PartitionValues, f: FileEntry): Promise<FileCheck> {
    const check: FileCheck = { path: f.path, partition, rows: f.rows, bytes: f.bytes, problems: [] };
    const head = await this.deps.store.head(f.path);
    if (!head) {
      check.problems.push('missing');
      return check;
    }
    if (head.size !== f.bytes) check.problems.push('size');
    const local = await this.deps.store.localPath(f.path);
    if ((await sha256File(local)) !== f.sha256) check.problems.push('checksum');
    try {
      // Reads every column of every row: a damaged page fails here, not only a damaged footer.
      const r = await this.deps.conn.runAndReadAll(
        `SELECT count(*) AS n, sum(hash(symbol, timeframe, "start", "end", open, high, low, close, volume, trades, vwap, revision)) AS h ` +
          `FROM read_parquet(${sqlString(local)}, hive_partitioning = false)`,
      );
      const n = Number(r.getRowObjectsJS()[0]?.n ?? -1);
      if (n !== f.rows) {
        check.problems.push('row_count');
        check.detail = `${n} rows, ${f.rows} recorded`;
      }
    } catch (err) {
      check.problems.push('unreadable');
      check.detail = err instanceof Error ? err.message.split('\n')[0] : String(err);
    }
    return check;
  }

  private async repair(m: PartitionManifest, damaged: ReadonlySet<string>) {
    const values = m.partition;
    const timeframe = values.timeframe as Timeframe;
    const symbol = values.symbol!;
    const [ps, pe] = periodRange(values.period ?? '');
    const from = Number.isFinite(ps) ? ps : undefined;
    const to = Number.isFinite(pe) ? pe : undefined;
    for (let attempt = 0; ; attempt++) {
      const manifest = attempt === 0 ? m : await this.deps.catalog.partition(CANDLES.name, values);
      const sound = manifest.files.filter((f) => !damaged.has(f.path));
      const source = await this.readTicks(symbol, [timeframe], from, to);
      if (source.rows === 0) {
        throw new InvalidInputError(
          `no ticks of ${symbol} in the archive for ${values.period}: cannot regenerate ${[...damaged].join(', ')}`,
        );
      }
      const rebuilt = source.candles.filter((c) => c.start >= ps && c.start < pe);
      const existing = await this.readFiles(sound);
      const diff = diffPartition(existing, rebuilt, () => true, { add: true, change: true, remove: false });
      try {
        const r = await this.lake.rewritePartition(
          values,
          diff.content,
          manifest.files.map((f) => f.path),
          this.lake.newCommitId('repair'),
        );
        this.logger.info(
          { partition: values, removed: r.removed.length, candles: diff.content.length },
          'candle_partition_repaired',
        );
        return {
          partition: values,
          removed: r.removed,
          added: r.added.map((f) => f.path),
          candles: diff.content.length,
          rebuilt: rebuilt.length,
        };
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= CONFLICT_RETRIES) throw err;
      }
    }
  }
}

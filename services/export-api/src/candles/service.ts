import {
  type Candle,
  type FileEntry,
  type LakeCommitted,
  type ObjectStore,
  TIMEFRAMES,
  type Timeframe,
} from '@parquetry/lake';
import type { Logger } from 'pino';
import type { ConnectionPool } from '../duck/sandboxed-duckdb.js';
import { ServiceUnavailableError } from '../errors.js';
import type { LiveCandles, PartitionCache } from './cache.js';
import { type CandleCatalogView, type CandlePartition, seriesKey } from './catalog-view.js';
import { readAllCandles, readCandleWindow } from './lake-reader.js';
import type { PostgresCandles } from './pg-source.js';
import {
  type CandleQuery,
  type CandleRead,
  mergeCandles,
  type StoredCandle,
  sliceWindow,
  TIMEFRAME_MS,
} from './types.js';

/**
 * Reads of candle series for the routes: the catalog view says which partitions (and files) a
 * series has; a query takes the fewest partitions that can answer it (newest first for "the
 * last N", oldest first from a start time), from the cache when it holds them, else from the
 * files (a whole partition into the cache, or with the cache off or too small, just the window
 * in SQL); then it merges the closed candles from the bus the files may not hold yet. When the
 * lake has nothing for the query or cannot be read, the PostgreSQL table of pg-loader answers,
 * when configured.
 */
export interface CandleServiceDeps {
  view: CandleCatalogView;
  store: Pick<ObjectStore, 'localPath'>;
  duck: Pick<ConnectionPool, 'use'>;
  cache: PartitionCache;
  live: LiveCandles;
  pg?: PostgresCandles | undefined;
  logger: Logger;
  /** Counts reads by `result` (`hit`: memory alone, `miss`: files or PostgreSQL). */
  cacheRequests?: { inc(labels: { result: 'hit' | 'miss' }): void } | undefined;
}

export interface SeriesRange {
  timeframe: Timeframe;
  firstMs: number;
  lastMs: number;
}

export interface WarmResult {
  series: number;
  /** Partitions read into the cache now. */
  loaded: number;
  /** Partitions the cache already held. */
  cached: number;
  /** Partitions too large for the cache. */
  skipped: number;
  candles: number;
}

export class CandleService {
  private readonly inflight = new Map<string, Promise<StoredCandle[]>>();
  private lastFailureLog = 0;

  constructor(private readonly deps: CandleServiceDeps) {}

  /** One window of a series (CandleQuery semantics), oldest first, with where it came from. */
  async read(q: CandleQuery): Promise<CandleRead> {
    const result = await this.readAny(q);
    const hit = result.source === 'cache';
    if (hit) this.deps.cache.counters.hits++;
    else this.deps.cache.counters.misses++;
    this.deps.cacheRequests?.inc({ result: hit ? 'hit' : 'miss' });
    return result;
  }

  private async readAny(q: CandleQuery): Promise<CandleRead> {
    let parts: CandlePartition[];
    try {
      parts = await this.deps.view.partitionsOf(q.timeframe, q.symbol);
    } catch (err) {
      return await this.fallback(q, err);
    }
    const live = this.deps.live.get(seriesKey(q.timeframe, q.symbol));
    if (parts.length === 0 && live.length === 0) return await this.fallback(q, undefined);
    let result: CandleRead;
    try {
      result = await this.readLake(q, parts, live);
    } catch (err) {
      return await this.fallback(q, err);
    }
    if (result.candles.length === 0 && this.deps.pg) {
      const fromPg = await this.fallback(q, undefined);
      if (fromPg.candles.length > 0) return fromPg;
    }
    return result;
  }

  private async fallback(q: CandleQuery, err: unknown): Promise<CandleRead> {
    if (err !== undefined) this.logFailure(err, q);
    if (this.deps.pg) {
      try {
        return { candles: await this.deps.pg.read(q), source: 'postgres' };
      } catch (pgErr) {
        this.logFailure(pgErr, q);
        throw new ServiceUnavailableError('candles cannot be read now', { cause: pgErr });
      }
    }
    if (err !== undefined) throw new ServiceUnavailableError('candles cannot be read now', { cause: err });
    return { candles: [], source: 'lake' };
  }

  /** At most one warning every 10 s: a lake outage must not flood the log. */
  private logFailure(err: unknown, q: CandleQuery): void {
    const now = Date.now();
    if (now - this.lastFailureLog < 10_000) return;
    this.lastFailureLog = now;
    this.deps.logger.warn({ err, symbol: q.symbol, timeframe: q.timeframe }, 'candle_read_failed');
  }

  private async readLake(
    q: CandleQuery,
    parts: readonly CandlePartition[],
    live: readonly StoredCandle[],
  ): Promise<CandleRead> {
    const fromFirst = q.startMs !== undefined;
    const lo = q.startMs ?? Number.NEGATIVE_INFINITY;
    const hi = q.endMs ?? Number.POSITIVE_INFINITY;
    // In the order the query consumes them: newest first for the last N, oldest first from a start.
    const candidates = parts.filter((p) => p.toMs > lo && p.fromMs < hi);
    if (!fromFirst) candidates.reverse();
    let take = 0;
    for (let rows = 0; take < candidates.length && rows < q.limit; take++) rows += candidates[take]!.rows;
    for (;;) {
      const chosen = candidates.slice(0, take);
      const { candles: lake, cached } = await this.loadPartitions(chosen, q);
      const exhausted = take >= candidates.length;
      let liveIn = live;
      const edge = chosen.at(-1);
      if (!exhausted && edge && live.length > 0) {
        // Live candles beyond the partitions read would leave a gap in the answer.
        liveIn = fromFirst
          ? live.filter((c) => c.start < edge.toMs)
          : live.filter((c) => c.start >= edge.fromMs);
      }
      const window = sliceWindow(mergeCandles(lake, liveIn), q);
      if (window.length >= q.limit || exhausted)
        return { candles: window, source: cached ? 'cache' : 'lake' };
      take = Math.min(candidates.length, Math.max(take + 1, take * 2));
    }
  }

  /** The candles of these partitions, oldest first: cached whole partitions, or the query's window from the files. */
  private async loadPartitions(
    chosen: readonly CandlePartition[],
    q: CandleQuery,
  ): Promise<{ candles: StoredCandle[]; cached: boolean }> {
    if (chosen.length === 0) return { candles: [], cached: true };
    const ordered = [...chosen].sort((a, b) => a.fromMs - b.fromMs);
    const { cache } = this.deps;
    if (ordered.every((p) => cache.has(p.key, p.signature) || cache.fits(p.rows))) {
      const lists = await Promise.all(ordered.map((p) => this.partitionCandles(p)));
      const candles = lists.length === 1 ? lists[0]!.candles : lists.flatMap((l) => l.candles);
      return { candles, cached: lists.every((l) => l.hit) };
    }
    const files = ordered.flatMap((p) => p.files);
    const paths = await Promise.all(files.map((f) => this.deps.store.localPath(f.path)));
    const from = q.startMs !== undefined ? 'first' : 'last';
    const candles = await this.deps.duck.use(async (conn) => {
      // First a narrow time range that holds `limit` candles if the series has no gaps there
      // (the sort and dedup then touch ~limit rows, not the partition); else the whole range.
      const guess = guessRange(files, q);
      if (guess) {
        const rows = await readCandleWindow(conn, paths, { ...guess, limit: q.limit, from });
        if (rows.length >= q.limit) return rows;
      }
      return await readCandleWindow(conn, paths, {
        startMs: q.startMs,
        endMs: q.endMs,
        limit: q.limit,
        from,
      });
    });
    return { candles, cached: false };
  }

  private async partitionCandles(p: CandlePartition): Promise<{ candles: StoredCandle[]; hit: boolean }> {
    const hit = this.deps.cache.get(p.key, p.signature);
    if (hit) return { candles: hit, hit: true };
    const key = `${p.key}\n${p.signature}`;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.loadPartition(p).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return { candles: await pending, hit: false };
  }

  private async loadPartition(p: CandlePartition): Promise<StoredCandle[]> {
    const paths = await Promise.all(p.files.map((f) => this.deps.store.localPath(f.path)));
    const candles = await this.deps.duck.use((conn) => readAllCandles(conn, paths));
    this.deps.cache.set(p.key, p.signature, candles);
    this.deps.live.prune(seriesKey(p.timeframe, p.symbol), candles, p.fromMs, p.toMs);
    return candles;
  }

  /** The newest candle of a series, if any. */
  async latest(
    timeframe: Timeframe,
    symbol: string,
  ): Promise<{ candle: StoredCandle | undefined; read: CandleRead }> {
    const read = await this.read({ symbol, timeframe, limit: 1 });
    return { candle: read.candles.at(-1), read };
  }

  /**
   * First and last candle start of each timeframe of a symbol that has candles. Files record the
   * min/max start of their rows, and revisions never move a start, so the catalog alone answers
   * (plus the live candles); a file without those stamps makes that timeframe read its ends.
   */
  async ranges(
    symbol: string,
    timeframes: readonly Timeframe[] = TIMEFRAMES,
  ): Promise<{ ranges: SeriesRange[]; source: CandleRead['source'] }> {
    const out: SeriesRange[] = [];
    let viewFailed: unknown;
    for (const tf of timeframes) {
      let parts: CandlePartition[] = [];
      try {
        parts = await this.deps.view.partitionsOf(tf, symbol);
      } catch (err) {
        viewFailed = err;
        break;
      }
      const live = this.deps.live.get(seriesKey(tf, symbol));
      if (parts.length === 0 && live.length === 0) continue;
      let first = Number.POSITIVE_INFINITY;
      let last = Number.NEGATIVE_INFINITY;
      const files = parts.flatMap((p) => p.files);
      if (files.every((f) => f.minTime && f.maxTime)) {
        for (const f of files) {
          first = Math.min(first, Date.parse(f.minTime!));
          last = Math.max(last, Date.parse(f.maxTime!));
        }
        for (const c of live) {
          first = Math.min(first, c.start);
          last = Math.max(last, c.start);
        }
      } else {
        const head = await this.read({ symbol, timeframe: tf, startMs: Number.NEGATIVE_INFINITY, limit: 1 });
        const tail = await this.read({ symbol, timeframe: tf, limit: 1 });
        if (head.candles[0]) first = head.candles[0].start;
        if (tail.candles[0]) last = tail.candles[0].start;
      }
      if (Number.isFinite(first) && Number.isFinite(last))
        out.push({ timeframe: tf, firstMs: first, lastMs: last });
    }
    if ((viewFailed !== undefined || out.length === 0) && this.deps.pg) {
      try {
        const wanted = new Set<string>(timeframes);
        const ranges = (await this.deps.pg.ranges(symbol)).filter((r) => wanted.has(r.timeframe));
        if (ranges.length > 0 || viewFailed !== undefined) {
          return { ranges: sortRanges(ranges), source: 'postgres' };
        }
      } catch (err) {
        throw new ServiceUnavailableError('candles cannot be read now', { cause: err });
      }
    }
    if (viewFailed !== undefined)
      throw new ServiceUnavailableError('candles cannot be read now', { cause: viewFailed });
    return { ranges: out, source: 'lake' };
  }

  /** Every series the lake has (for warming everything a key may read). */
  async series(): Promise<{ timeframe: Timeframe; symbol: string }[]> {
    return await this.deps.view.allSeries();
  }

  /** Reads the newest `partitions` partitions of each series into the cache. */
  async warm(
    series: readonly { timeframe: Timeframe; symbol: string }[],
    partitions: number,
  ): Promise<WarmResult> {
    const result: WarmResult = { series: 0, loaded: 0, cached: 0, skipped: 0, candles: 0 };
    const { cache } = this.deps;
    for (const s of series) {
      const parts = (await this.deps.view.partitionsOf(s.timeframe, s.symbol)).slice(-partitions);
      if (parts.length === 0) continue;
      result.series++;
      for (const p of parts) {
        if (cache.has(p.key, p.signature)) {
          result.cached++;
        } else if (cache.fits(p.rows)) {
          const { candles } = await this.partitionCandles(p);
          result.loaded++;
          result.candles += candles.length;
        } else {
          result.skipped++;
        }
      }
    }
    return result;
  }

  /** `lake.committed.candles`: the named partitions are re-read from the catalog, their cached copies dropped. */
  onCommitted(event: LakeCommitted): void {
    this.deps.view.markCommitted(event);
    for (const p of event.partitions) {
      const { timeframe, symbol, period } = p.values;
      if (timeframe && symbol && period !== undefined)
        this.deps.cache.invalidate(`${timeframe}/${symbol}/${period}`);
    }
  }

  /** A closed candle from `market.candles.<tf>.<symbol>`. */
  onClosedCandle(c: Candle): boolean {
    const start = Date.parse(c.start);
    if (!Number.isFinite(start)) return false;
    return this.deps.live.add(seriesKey(c.timeframe, c.symbol), {
      start,
      open: c.open,
      high: c.high,
      low: c.low,
      close: c.close,
      volume: c.volume,
      trades: c.trades,
      vwap: c.vwap,
      revision: c.revision ?? 0,
    });
  }

  /** After a reconnect notices may have been lost: the catalog is read again (cached data is checked against it). */
  onReconnect(): void {
    this.deps.view.markAllStale();
  }

  stats() {
    const { cache, live } = this.deps;
    const { hits, misses } = cache.counters;
    return {
      enabled: cache.enabled,
      ...cache.counters,
      hit_ratio: hits + misses > 0 ? hits / (hits + misses) : null,
      bytes: cache.bytes,
      max_bytes: cache.maxBytes,
      partitions: cache.size,
      live_candles: live.size,
    };
  }
}

/**
 * A time range that holds the query's `limit` candles when the series is gapless near its end
 * (or start): from the newest recorded candle of the files back 1.5 × limit candle lengths, or
 * from `startMs` forward. Undefined when the files do not record their times.
 */
function guessRange(
  files: readonly FileEntry[],
  q: CandleQuery,
): { startMs?: number | undefined; endMs?: number | undefined } | undefined {
  const span = Math.ceil(q.limit * 1.5 + 1) * TIMEFRAME_MS[q.timeframe];
  if (q.startMs !== undefined) {
    if (!Number.isFinite(q.startMs)) return undefined;
    const endMs = Math.min(q.endMs ?? Number.POSITIVE_INFINITY, q.startMs + span);
    return { startMs: q.startMs, endMs: Number.isFinite(endMs) ? endMs : undefined };
  }
  let newest = Number.NEGATIVE_INFINITY;
  for (const f of files) {
    const t = f.maxTime ? Date.parse(f.maxTime) : Number.NaN;
    if (!Number.isFinite(t)) return undefined;
    newest = Math.max(newest, t);
  }
  const hi = Math.min(q.endMs ?? Number.POSITIVE_INFINITY, newest + 1);
  if (!Number.isFinite(hi)) return undefined;
  return { startMs: hi - span, endMs: q.endMs };
}

function sortRanges(r: SeriesRange[]): SeriesRange[] {
  const order = new Map<string, number>(TIMEFRAMES.map((tf, i) => [tf, i]));
  return [...r].sort((a, b) => order.get(a.timeframe)! - order.get(b.timeframe)!);
}

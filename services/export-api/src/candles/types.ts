import type { Timeframe } from '@parquetry/lake';

/** One candle as the candle routes keep it: `start` in epoch ms, the highest revision known. */
export interface StoredCandle {
  start: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  trades: number;
  vwap: number;
  revision: number;
  /** The candle as the API renders it (`{ts,open,…}`), made on first use and kept (renderCandle). */
  json?: string;
}

export type DataSource = 'cache' | 'lake' | 'postgres';

/**
 * A read of one series (symbol × timeframe): `startMs` given → the first `limit` candles from
 * there; no `startMs` → the last `limit` candles before `endMs`. Always oldest first.
 */
export interface CandleQuery {
  symbol: string;
  timeframe: Timeframe;
  startMs?: number | undefined;
  endMs?: number | undefined;
  limit: number;
}

export interface CandleRead {
  candles: StoredCandle[];
  source: DataSource;
}

export const TIMEFRAME_MS: Readonly<Record<Timeframe, number>> = {
  '1m': 60_000,
  '5m': 300_000,
  '15m': 900_000,
  '1h': 3_600_000,
  '4h': 14_400_000,
  '1d': 86_400_000,
};

/** Where a read came from when it combines several: the slowest source names it. */
export function combineSources(a: DataSource, b: DataSource): DataSource {
  if (a === 'postgres' || b === 'postgres') return 'postgres';
  if (a === 'lake' || b === 'lake') return 'lake';
  return 'cache';
}

/**
 * Merges two start-sorted candle lists into one, a candle present in both taking the higher
 * revision (ties: `b`, the newer source).
 */
export function mergeCandles(a: readonly StoredCandle[], b: readonly StoredCandle[]): StoredCandle[] {
  if (b.length === 0) return a as StoredCandle[];
  if (a.length === 0) return b as StoredCandle[];
  const out: StoredCandle[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && x.start < y.start)) {
      out.push(x!);
      i++;
    } else if (x === undefined || y.start < x.start) {
      out.push(y);
      j++;
    } else {
      out.push(x.revision > y.revision ? x : y);
      i++;
      j++;
    }
  }
  return out;
}

/** Index of the first candle with `start >= ms` in a start-sorted list. */
export function lowerBound(candles: readonly StoredCandle[], ms: number): number {
  let lo = 0;
  let hi = candles.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (candles[mid]!.start < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The query's window of a start-sorted list: from `startMs` the first `limit`, else the last `limit` before `endMs`. */
export function sliceWindow(
  candles: readonly StoredCandle[],
  q: Omit<CandleQuery, 'symbol' | 'timeframe'>,
): StoredCandle[] {
  const from = q.startMs === undefined ? 0 : lowerBound(candles, q.startMs);
  const to = q.endMs === undefined ? candles.length : lowerBound(candles, q.endMs);
  if (to <= from) return [];
  return q.startMs !== undefined
    ? candles.slice(from, Math.min(to, from + q.limit))
    : candles.slice(Math.max(from, to - q.limit), to);
}

const num = (v: number) => (Number.isFinite(v) ? String(v) : 'null');

/**
 * The API's JSON of one candle, `{ts, open, high, low, close, volume, trades}` (DESIGN.md), as
 * text, kept on the candle: a cached candle is rendered once, and a 1,000-candle answer is a join
 * of kept strings instead of 1,000 objects through JSON.stringify (measured: 0.04 ms against 2.6 ms).
 * `String(n)` is JSON's number syntax for every finite number.
 */
export function renderCandle(c: StoredCandle): string {
  if (c.json === undefined) {
    c.json =
      `{"ts":"${new Date(c.start).toISOString()}","open":${num(c.open)},"high":${num(c.high)},` +
      `"low":${num(c.low)},"close":${num(c.close)},"volume":${num(c.volume)},"trades":${num(c.trades)}}`;
  }
  return c.json;
}

/** The API's object of one candle (the parsed form of renderCandle). */
export function candleView(c: StoredCandle) {
  return {
    ts: new Date(c.start).toISOString(),
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
    volume: c.volume,
    trades: c.trades,
  };
}

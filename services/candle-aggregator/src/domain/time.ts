import { TIMEFRAMES, type Timeframe } from '@parquetry/lake';

/**
 * Bucket arithmetic on epoch milliseconds, UTC only. Every timeframe divides a day and the
 * epoch starts at 00:00 UTC, so `floor(ts / duration) * duration` gives 4h buckets at
 * 00/04/08/12/16/20 UTC and 1d buckets at 00:00 UTC with no calendar or DST logic.
 * Buckets are half-open: `[start, end)`.
 */
export const TIMEFRAME_MS: Readonly<Record<Timeframe, number>> = Object.freeze({
  '1m': 60_000,
  '5m': 300_000,
  '15m': 900_000,
  '1h': 3_600_000,
  '4h': 14_400_000,
  '1d': 86_400_000,
});

/** Timeframes above 1m, each built from 1m candles. */
export const ROLLUP_TIMEFRAMES: readonly Timeframe[] = TIMEFRAMES.filter((tf) => tf !== '1m');

export interface Bucket {
  readonly start: number;
  readonly end: number;
}

export function timeframeMs(tf: Timeframe): number {
  return TIMEFRAME_MS[tf];
}

/** Start of the bucket holding `ts` (floor, so instants before 1970 work too). */
export function bucketStart(tf: Timeframe, ts: number): number {
  const ms = TIMEFRAME_MS[tf];
  return Math.floor(ts / ms) * ms + 0; // + 0 turns -0 into 0
}

/** Exclusive end of the bucket holding `ts`. */
export function bucketEnd(tf: Timeframe, ts: number): number {
  return bucketStart(tf, ts) + TIMEFRAME_MS[tf];
}

export function bucketOf(tf: Timeframe, ts: number): Bucket {
  const start = bucketStart(tf, ts);
  return { start, end: start + TIMEFRAME_MS[tf] };
}

export function isAligned(tf: Timeframe, ms: number): boolean {
  return Number.isInteger(ms) && bucketStart(tf, ms) === ms;
}

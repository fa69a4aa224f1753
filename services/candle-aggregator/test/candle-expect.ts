import { expect } from 'vitest';
import type { CandleRecord } from '../src/domain/candle.js';
import type { ReferenceCandle } from '../src/domain/reference.js';

/** Relative tolerance for sums computed by another method (plain or DuckDB summation). */
export const SUM_TOLERANCE = 1e-9;

export function closeTo(actual: number, expected: number, tolerance = SUM_TOLERANCE): boolean {
  return Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected));
}

type Comparable = Omit<ReferenceCandle, 'symbol' | 'timeframe'> &
  Partial<Pick<CandleRecord, 'symbol' | 'timeframe'>>;

/**
 * Same candles, in the same order: keys, open/high/low/close and trades exactly, volume and
 * vwap within SUM_TOLERANCE (the other side sums in a different order). Reports the first
 * difference only, readable.
 */
export function expectSameCandles(
  actual: readonly Comparable[],
  expected: readonly Comparable[],
  label = '',
): void {
  const key = (c: Comparable) => `${c.symbol ?? ''} ${c.timeframe ?? ''} ${new Date(c.start).toISOString()}`;
  expect(actual.map(key), `${label} candle keys`).toEqual(expected.map(key));
  actual.forEach((a, i) => {
    const e = expected[i]!;
    const exact = (c: Comparable) => [c.start, c.end, c.open, c.high, c.low, c.close, c.trades];
    expect(exact(a), `${label} ${key(a)} [start, end, open, high, low, close, trades]`).toEqual(exact(e));
    if (!closeTo(a.volume, e.volume) || !closeTo(a.vwap, e.vwap)) {
      expect({ volume: a.volume, vwap: a.vwap }, `${label} ${key(a)}`).toEqual({
        volume: e.volume,
        vwap: e.vwap,
      });
    }
  });
}

import type { Timeframe } from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';
import { type Accumulator, accumulatorValues, mergeAccumulator, type Ohlcv } from './candle.js';
import { bucketOf } from './time.js';

/** A finished bar of any timeframe: `[start, end)` in epoch ms plus its values. */
export interface Bar extends Ohlcv {
  start: number;
  end: number;
}

/**
 * Rolls finished bars (typically 1m candles) up to `timeframe`. Bars may come in any
 * order; each must lie inside one bucket of `timeframe`, and bars must not overlap.
 * Buckets without bars produce nothing. Inside a bucket, bars are ordered by start, so
 * open is the earliest bar's open and close the latest bar's close; volume and trades
 * add up, vwap = Σ(vwap·volume) / Σ volume (the close when the volume is 0), with exact
 * sums. Output is sorted by start.
 */
export function rollUp(bars: readonly Bar[], timeframe: Timeframe): Bar[] {
  const groups = new Map<number, { end: number; bars: Bar[] }>();
  for (const bar of bars) {
    if (!(Number.isFinite(bar.start) && Number.isFinite(bar.end) && bar.end > bar.start)) {
      throw new InvalidInputError(`bar has an invalid interval [${bar.start}, ${bar.end})`);
    }
    const bucket = bucketOf(timeframe, bar.start);
    if (bar.end > bucket.end) {
      throw new InvalidInputError(
        `bar [${bar.start}, ${bar.end}) crosses the ${timeframe} bucket ending at ${bucket.end}`,
      );
    }
    let group = groups.get(bucket.start);
    if (!group) {
      group = { end: bucket.end, bars: [] };
      groups.set(bucket.start, group);
    }
    group.bars.push(bar);
  }
  const out: Bar[] = [];
  for (const start of [...groups.keys()].sort((a, b) => a - b)) {
    const group = groups.get(start)!;
    group.bars.sort((a, b) => a.start - b.start);
    let acc: Accumulator | undefined;
    let prevEnd = Number.NEGATIVE_INFINITY;
    for (const bar of group.bars) {
      if (bar.start < prevEnd) {
        throw new InvalidInputError(
          `bars overlap at ${bar.start} in the ${timeframe} bucket starting ${start}`,
        );
      }
      prevEnd = bar.end;
      const next = barAccumulator(bar);
      if (acc) mergeAccumulator(acc, next);
      else acc = next;
    }
    out.push({ start, end: group.end, ...accumulatorValues(acc!) });
  }
  return out;
}

/** A bar as an accumulator: its open at its start, its close just before its end. */
function barAccumulator(bar: Bar): Accumulator {
  return {
    first: { ts: bar.start, price: bar.open, size: 0 },
    last: { ts: bar.end - 1, price: bar.close, size: 0 },
    high: bar.high,
    low: bar.low,
    trades: bar.trades,
    volume: [bar.volume],
    notional: [bar.vwap * bar.volume],
  };
}

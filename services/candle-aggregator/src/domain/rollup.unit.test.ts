import { TIMEFRAMES } from '@parquetry/lake';
import { InvalidInputError } from '@parquetry/service';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectSameCandles } from '../../test/candle-expect.js';
import { scenarioArb } from '../../test/tick-scenarios.js';
import { CandleAggregator } from './aggregator.js';
import { latestCandles, referenceCandles } from './reference.js';
import { type Bar, rollUp } from './rollup.js';

const MIN = 60_000;
const T0 = Date.UTC(2016, 9, 7);
const bar = (minute: number, o: number, h: number, l: number, c: number, v: number): Bar => ({
  start: T0 + minute * MIN,
  end: T0 + (minute + 1) * MIN,
  open: o,
  high: h,
  low: l,
  close: c,
  volume: v,
  trades: 1,
  vwap: c,
});

describe('rollUp', () => {
  it('orders bars by start, whatever order they come in', () => {
    const bars = [
      bar(61, 5, 6, 4, 5.5, 0),
      bar(59, 1, 3, 1, 2, 2),
      bar(0, 2, 2, 0.5, 1, 1),
      bar(60, 7, 8, 6, 7, 4),
    ];
    expect(rollUp(bars, '1h')).toEqual([
      {
        start: T0,
        end: T0 + 60 * MIN,
        open: 2,
        high: 3,
        low: 0.5,
        close: 2,
        volume: 3,
        trades: 2,
        vwap: 5 / 3,
      },
      {
        start: T0 + 60 * MIN,
        end: T0 + 120 * MIN,
        open: 7,
        high: 8,
        low: 4,
        close: 5.5,
        volume: 4,
        trades: 2,
        vwap: 7,
      },
    ]);
  });

  it('refuses bars that cross a bucket or overlap', () => {
    expect(() => rollUp([{ ...bar(59, 1, 1, 1, 1, 1), end: T0 + 61 * MIN }], '1h')).toThrow(
      InvalidInputError,
    );
    expect(() => rollUp([bar(3, 1, 1, 1, 1, 1), bar(3, 1, 1, 1, 1, 1)], '5m')).toThrow(InvalidInputError);
    expect(() => rollUp([{ ...bar(3, 1, 1, 1, 1, 1), end: T0 }], '5m')).toThrow(InvalidInputError);
  });

  it('rolls 1m candles up to what the ticks give directly, for every timeframe', () => {
    fc.assert(
      fc.property(scenarioArb(), ({ ticks }) => {
        const reference = referenceCandles(ticks);
        for (const symbol of new Set(ticks.map((t) => t.symbol))) {
          const own = reference.filter((c) => c.symbol === symbol);
          const minutes = own.filter((c) => c.timeframe === '1m');
          for (const tf of TIMEFRAMES) {
            expectSameCandles(
              rollUp(minutes, tf),
              own.filter((c) => c.timeframe === tf).map(({ symbol: _, timeframe: __, ...c }) => c),
              `${symbol} ${tf}`,
            );
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it("agrees with the aggregator's own roll-ups", () => {
    fc.assert(
      fc.property(scenarioArb(), ({ config, arrivals }) => {
        const agg = new CandleAggregator(config);
        const events = [
          ...arrivals.flatMap((a) => agg.ingest(a.tick, { now: a.now })),
          ...agg.advance(2 ** 52),
        ];
        const candles = latestCandles(events).map(({ revision: _, ...c }) => c);
        for (const symbol of new Set(candles.map((c) => c.symbol))) {
          const own = candles.filter((c) => c.symbol === symbol);
          for (const tf of TIMEFRAMES) {
            expectSameCandles(
              rollUp(
                own.filter((c) => c.timeframe === '1m'),
                tf,
              ),
              own.filter((c) => c.timeframe === tf).map(({ symbol: _, timeframe: __, ...c }) => c),
              `${symbol} ${tf}`,
            );
          }
        }
      }),
      { numRuns: 50 },
    );
  });
});

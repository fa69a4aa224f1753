import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Accumulator,
  accumulatorValues,
  addTrade,
  compareTradeIds,
  compareTradeKeys,
  mergeAccumulator,
  newAccumulator,
  type TradeKey,
  toCandleMessage,
} from './candle.js';

const trade = fc.record(
  {
    ts: fc.integer({ min: 0, max: 5 }),
    tradeId: fc.oneof(
      fc.integer({ min: 0, max: 2000 }).map(String),
      fc.constantFrom('a', 'b10', 'b9', '007'),
      fc.constant(undefined),
    ),
    price: fc.integer({ min: 990, max: 1010 }).map((p) => p / 10),
    size: fc.integer({ min: 0, max: 300 }).map((s) => s / 100),
  },
  { requiredKeys: ['ts', 'price', 'size'] },
);

function accumulate(trades: readonly TradeKey[]): Accumulator {
  const acc = newAccumulator(trades[0]!);
  for (const t of trades.slice(1)) addTrade(acc, t);
  return acc;
}

describe('trade order', () => {
  it('compares canonical integer ids numerically, then others lexicographically, absent first', () => {
    const ids = ['b', '10', undefined, '9', 'a', '007', '100000000000000000000001', '0'];
    // Wrapped: Array.prototype.sort moves bare undefined to the end without asking the comparator.
    const sorted = ids.map((id) => ({ id })).sort((a, b) => compareTradeIds(a.id, b.id));
    expect(sorted.map((w) => w.id)).toEqual([
      undefined,
      '0',
      '9',
      '10',
      '100000000000000000000001',
      '007',
      'a',
      'b',
    ]);
  });

  it('is a total order: antisymmetric and transitive', () => {
    fc.assert(
      fc.property(trade, trade, trade, (a, b, c) => {
        expect(Math.sign(compareTradeKeys(a, b))).toBe(-Math.sign(compareTradeKeys(b, a)) || 0);
        if (compareTradeKeys(a, b) <= 0 && compareTradeKeys(b, c) <= 0)
          expect(compareTradeKeys(a, c)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 500 },
    );
  });
});

describe('accumulator', () => {
  it('gives bit-identical values for any arrival order', () => {
    fc.assert(
      fc.property(fc.array(trade, { minLength: 1, maxLength: 40 }), fc.integer(), (trades, seed) => {
        const shuffled = fc.sample(
          fc.shuffledSubarray(trades, { minLength: trades.length, maxLength: trades.length }),
          {
            seed,
            numRuns: 1,
          },
        )[0]!;
        expect(accumulatorValues(accumulate(shuffled))).toEqual(accumulatorValues(accumulate(trades)));
      }),
    );
  });

  it('reads open/close from event order, not arrival order', () => {
    const acc = accumulate([
      { ts: 2000, tradeId: '5', price: 103, size: 1 },
      { ts: 1000, tradeId: '10', price: 101, size: 1 },
      { ts: 1000, tradeId: '9', price: 100, size: 1 },
      { ts: 2000, tradeId: '11', price: 104, size: 2 },
    ]);
    expect(accumulatorValues(acc)).toEqual({
      open: 100,
      high: 104,
      low: 100,
      close: 104,
      volume: 5,
      trades: 4,
      vwap: (100 + 101 + 103 + 208) / 5,
    });
  });

  it('merges like adding the trades one by one', () => {
    fc.assert(
      fc.property(fc.array(trade, { minLength: 2, maxLength: 40 }), fc.nat(), (trades, cut) => {
        const at = 1 + (cut % (trades.length - 1));
        const left = accumulate(trades.slice(0, at));
        mergeAccumulator(left, accumulate(trades.slice(at)));
        expect(accumulatorValues(left)).toEqual(accumulatorValues(accumulate(trades)));
      }),
    );
  });

  it('defines vwap as the close when the volume is 0', () => {
    const acc = accumulate([
      { ts: 1, price: 10, size: 0 },
      { ts: 3, price: 30, size: 0 },
      { ts: 2, price: 20, size: 0 },
    ]);
    expect(accumulatorValues(acc)).toMatchObject({ volume: 0, vwap: 30, close: 30, trades: 3 });
  });
});

describe('toCandleMessage', () => {
  it('writes start and end as ISO UTC strings', () => {
    const msg = toCandleMessage({
      symbol: 'ES',
      timeframe: '1h',
      start: Date.UTC(2024, 7, 8, 23),
      end: Date.UTC(2024, 7, 9),
      open: 1,
      high: 2,
      low: 0.5,
      close: 1.5,
      volume: 3,
      trades: 2,
      vwap: 1.2,
      revision: 1,
    });
    expect(msg).toMatchObject({
      start: '2024-08-08T23:00:00.000Z',
      end: '2024-08-09T00:00:00.000Z',
      revision: 1,
    });
  });
});

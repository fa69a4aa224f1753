import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectMatches, loadFixture } from '../../test/indicator-fixtures.js';
import { typicalPrice } from './candle.js';
import { vwap } from './vwap.js';

describe('vwap (fixture cs-vwap.csv, `ta` window 14)', () => {
  const f = loadFixture('cs-vwap.csv');
  const candles = f.candles();

  it('weighs the typical price (high + low + close) / 3, as the fixture', () => {
    // This column was rounded to 5 decimals before being printed with every float digit
    // (25.359170000000002); the vwap column was computed from the unrounded value.
    expect(expectMatches(f, 'Typical Price', candles.map(typicalPrice), { roundedTo: 5 })).toBe(
      f.rows.length,
    );
  });

  it('rolling over 14 candles equals the fixture from its first full window, null before', () => {
    const out = vwap(candles, { period: 14 });
    expect(out.slice(0, 13).every((v) => v === null)).toBe(true);
    expect(expectMatches(f, 'vwap', out, { from: 13 })).toBe(f.rows.length - 13);
  });

  it('cumulative equals the fixture’s first rows, which `ta` fills over the candles so far', () => {
    const out = vwap(candles, { period: 14, mode: 'cumulative' });
    expect(expectMatches(f, 'vwap', out, { to: 13 })).toBe(14);
    // after that the window rolls and the two differ
    expect(Math.abs(out[20]! - Number(f.rows[20]!.vwap))).toBeGreaterThan(1e-3);
  });
});

describe('vwap edge cases', () => {
  const candle = (price: number, volume: number) => ({
    open: price,
    high: price,
    low: price,
    close: price,
    volume,
  });

  it('is null over a window without volume, and recovers once volume returns', () => {
    const candles = [candle(10, 5), candle(11, 0), candle(12, 0), candle(13, 0), candle(14, 2)];
    expect(vwap(candles, { period: 2 })).toEqual([null, 10, null, null, 14]);
    expect(vwap(candles, { period: 1 })).toEqual([10, null, null, null, 14]);
  });

  it('ignores zero-volume candles inside a traded window', () => {
    const candles = [candle(10, 1), candle(99, 0), candle(20, 3)];
    expect(vwap(candles, { period: 3 })[2]).toBeCloseTo((10 + 60) / 4, 12);
  });

  it('cumulative is null until the first traded candle', () => {
    const candles = [candle(10, 0), candle(12, 0), candle(20, 1), candle(30, 1)];
    expect(vwap(candles, { period: 14, mode: 'cumulative' })).toEqual([null, null, 20, 25]);
  });

  it('is null everywhere on zero volume, and empty on empty input', () => {
    expect(vwap([candle(1, 0), candle(2, 0)], { period: 1 })).toEqual([null, null]);
    expect(vwap([], { period: 14 })).toEqual([]);
    expect(vwap([], { period: 14, mode: 'cumulative' })).toEqual([]);
  });

  it('rolling equals a naive ratio of sums over each window', () => {
    const arbCandle = fc
      .record({
        low: fc.double({ min: 1, max: 1e5, noNaN: true }),
        spread: fc.double({ min: 0, max: 100, noNaN: true }),
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        volume: fc.oneof(fc.constant(0), fc.double({ min: 1e-3, max: 1e6, noNaN: true })),
      })
      .map(({ low, spread, at, volume }) => ({
        open: low,
        high: low + spread,
        low,
        close: low + at * spread,
        volume,
      }));
    fc.assert(
      fc.property(
        fc.array(arbCandle, { maxLength: 80 }),
        fc.integer({ min: 1, max: 20 }),
        (candles, period) => {
          const out = vwap(candles, { period });
          return out.every((v, i) => {
            if (i < period - 1) return v === null;
            const window = candles.slice(i - period + 1, i + 1);
            const volume = window.reduce((a, c) => a + c.volume, 0);
            if (volume === 0) return v === null;
            const expected = window.reduce((a, c) => a + typicalPrice(c) * c.volume, 0) / volume;
            return v !== null && Math.abs(v - expected) <= 1e-10 * expected;
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});

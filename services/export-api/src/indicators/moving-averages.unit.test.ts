import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectMatches, loadFixture } from '../../test/indicator-fixtures.js';
import { ema, sma, wma } from './moving-averages.js';

const price = fc.double({ min: 1e-3, max: 1e6, noNaN: true });
const relClose = (a: number, b: number, rel = 1e-12) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));

describe('sma', () => {
  it('equals the Bollinger middle band of cs-bbands.csv (SMA 20)', () => {
    const f = loadFixture('cs-bbands.csv');
    const out = sma(f.numbers('Close'), 20);
    expect(expectMatches(f, 'MiddleBand', out)).toBe(f.rows.length - 19);
    expect(out.slice(0, 19).every((v) => v === null)).toBe(true);
  });

  it('equals a naive mean of each window', () => {
    fc.assert(
      fc.property(fc.array(price, { maxLength: 150 }), fc.integer({ min: 1, max: 40 }), (values, period) => {
        const out = sma(values, period);
        return (
          out.length === values.length &&
          out.every((v, i) => {
            if (i < period - 1) return v === null;
            const window = values.slice(i - period + 1, i + 1);
            // Error bounded by the magnitude of the values the running sum saw (see wma below).
            const scale = Math.max(1, ...values.slice(Math.max(0, i - 2 * period + 1), i + 1).map(Math.abs));
            return Math.abs(v! - window.reduce((a, x) => a + x, 0) / period) <= 1e-11 * scale;
          })
        );
      }),
      { numRuns: 200 },
    );
  });

  it('handles empty input, input shorter than the period, and period 1', () => {
    expect(sma([], 5)).toEqual([]);
    expect(sma([1, 2, 3, 4], 5)).toEqual([null, null, null, null]);
    expect(sma([3, 1, 4], 1)).toEqual([3, 1, 4]);
  });

  it('does not drift over 200,000 prices near 60,000', () => {
    const values = Array.from(
      { length: 200_000 },
      (_, i) => 60_000 + 1000 * Math.sin(i / 1000) + ((i * 7919) % 101) / 100,
    );
    const out = sma(values, 30);
    const last = values.slice(-30).reduce((a, v) => a + v, 0) / 30;
    expect(relClose(out.at(-1)!, last, 1e-14)).toBe(true);
  });
});

describe('ema', () => {
  it('equals short_ema (12) and long_ema (26) of cs-macd.csv once warmed up', () => {
    const f = loadFixture('cs-macd.csv');
    const close = f.numbers('Close');
    for (const [period, column] of [
      [12, 'short_ema'],
      [26, 'long_ema'],
    ] as const) {
      const out = ema(close, period);
      expect(out.slice(0, period - 1).every((v) => v === null)).toBe(true);
      expect(expectMatches(f, column, out, { from: period - 1 })).toBe(f.rows.length - period + 1);
    }
  });

  it('of a constant series is that constant, with either seed', () => {
    fc.assert(
      fc.property(
        price,
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 60 }),
        (c, n, period) => {
          return (['ewm', 'sma'] as const).every((seed) =>
            ema(new Array<number>(n).fill(c), period, seed).every((v, i) =>
              i < period - 1 ? v === null : relClose(v!, c),
            ),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('with seed sma starts at the mean of the first period values, then recurses', () => {
    const values = [2, 4, 6, 8, 10, 3];
    const out = ema(values, 3, 'sma');
    expect(out.slice(0, 2)).toEqual([null, null]);
    expect(out[2]).toBe(4);
    expect(out[3]).toBeCloseTo(4 + 0.5 * (8 - 4), 12);
    expect(out[4]).toBeCloseTo(6 + 0.5 * (10 - 6), 12);
    expect(out[5]).toBeCloseTo(8 + 0.5 * (3 - 8), 12);
  });

  it('handles empty input, input shorter than the period, and period 1', () => {
    expect(ema([], 3)).toEqual([]);
    expect(ema([1, 2], 3)).toEqual([null, null]);
    expect(ema([1, 2], 3, 'sma')).toEqual([null, null]);
    expect(ema([3, 1, 4], 1)).toEqual([3, 1, 4]);
    expect(ema([3, 1, 4], 1, 'sma')).toEqual([3, 1, 4]);
  });
});

describe('wma', () => {
  it('equals cs-wma.csv (WMA 9) from its first full window', () => {
    const f = loadFixture('cs-wma.csv');
    const out = wma(f.numbers('Close'), 9);
    // The fixture prints values for rows 0-7 too, computed from prices before the file's
    // first row; we cannot know those, so they are warm-up here.
    expect(out.slice(0, 8).every((v) => v === null)).toBe(true);
    expect(expectMatches(f, 'WMA', out, { from: 8 })).toBe(f.rows.length - 8);
  });

  it('equals a naive weighted mean of each window', () => {
    fc.assert(
      fc.property(fc.array(price, { maxLength: 150 }), fc.integer({ min: 1, max: 40 }), (values, period) => {
        const out = wma(values, period);
        return out.every((v, i) => {
          if (i < period - 1) return v === null;
          let num = 0;
          for (let k = 1; k <= period; k++) num += k * values[i - period + k]!;
          // The running sums carry rounding of the values they dropped: bound the error by the
          // magnitude of the values involved, not of the result (a 0.001 after a 524283). They are
          // recomputed every `period` steps, so they hold values from up to 2·period − 1 back
          // (a CI run found [2048, 0.001 ×5] at period 4: 1.6e-14 off, from the 2048).
          const scale = Math.max(...values.slice(Math.max(0, i - 2 * period + 1), i + 1).map(Math.abs));
          return Math.abs(v! - num / ((period * (period + 1)) / 2)) <= 1e-11 * scale;
        });
      }),
      { numRuns: 200, examples: [[[2047.9976222148593, 0.001, 0.001, 0.001, 0.001, 0.001], 4]] },
    );
  });

  it('handles empty input, input shorter than the period, and period 1', () => {
    expect(wma([], 3)).toEqual([]);
    expect(wma([1, 2], 3)).toEqual([null, null]);
    expect(wma([3, 1, 4], 1)).toEqual([3, 1, 4]);
  });

  it('does not drift over 200,000 prices near 60,000', () => {
    const period = 25;
    const values = Array.from(
      { length: 200_000 },
      (_, i) => 60_000 + 1000 * Math.sin(i / 1000) + ((i * 7919) % 101) / 100,
    );
    let num = 0;
    for (let k = 1; k <= period; k++) num += k * values[values.length - period - 1 + k]!;
    expect(relClose(wma(values, period).at(-1)!, num / ((period * (period + 1)) / 2), 1e-14)).toBe(true);
  });
});

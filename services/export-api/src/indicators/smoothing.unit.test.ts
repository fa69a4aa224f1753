import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectMatches, loadFixture } from '../../test/indicator-fixtures.js';
import { emaAlpha, exponentialSmoothing, wilderAlpha } from './smoothing.js';

describe('exponentialSmoothing', () => {
  it('from the first value reproduces the EMA columns of cs-macd.csv on every row', () => {
    const f = loadFixture('cs-macd.csv');
    const close = f.numbers('Close');
    const fast = exponentialSmoothing(close, emaAlpha(12), { kind: 'first' });
    const slow = exponentialSmoothing(close, emaAlpha(26), { kind: 'first' });
    expect(expectMatches(f, 'short_ema', fast)).toBe(f.rows.length);
    expect(expectMatches(f, 'long_ema', slow)).toBe(f.rows.length);
    // and their difference is the fixture's MACD line, on every row it prints (from row 1)
    const line = fast.map((v, i) => v! - slow[i]!);
    expect(expectMatches(f, 'MACD_line', line)).toBe(f.rows.length - 1);
  });

  it('starts where the init says', () => {
    expect(exponentialSmoothing([4, 8], 0.5, { kind: 'first' })).toEqual([4, 6]);
    expect(exponentialSmoothing([4, 8], 0.5, { kind: 'zero' })).toEqual([2, 5]);
    expect(exponentialSmoothing([4, 8, 0], 0.5, { kind: 'mean', count: 2 })).toEqual([null, 6, 3]);
    expect(exponentialSmoothing([9, 4, 8], 0.5, { kind: 'first' }, 1)).toEqual([null, 4, 6]);
    expect(exponentialSmoothing([9, 4, 8, 0], 0.5, { kind: 'mean', count: 2 }, 1)).toEqual([
      null,
      null,
      6,
      3,
    ]);
  });

  it('returns all null when the input ends before the first value', () => {
    expect(exponentialSmoothing([], 0.5, { kind: 'first' })).toEqual([]);
    expect(exponentialSmoothing([1, 2], 0.5, { kind: 'mean', count: 3 })).toEqual([null, null]);
    expect(exponentialSmoothing([1, 2], 0.5, { kind: 'zero' }, 2)).toEqual([null, null]);
  });

  it('of a constant series is that constant, from the first or a mean seed', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1e9, max: 1e9, noNaN: true }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 100 }),
        (c, n, period) => {
          const values = new Array<number>(n).fill(c);
          const inits = [{ kind: 'first' }, { kind: 'mean', count: period }] as const;
          return inits.every((init) =>
            exponentialSmoothing(values, emaAlpha(period), init).every(
              (v, i) =>
                (v === null && init.kind === 'mean' && i < period - 1) ||
                (v !== null && Math.abs(v - c) <= 1e-12 * Math.max(1, Math.abs(c))),
            ),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('forgets its start: two inits differ by (1 - alpha)^k after k steps', () => {
    const values = Array.from({ length: 400 }, (_, i) => 100 + 10 * Math.sin(i / 5));
    const a = exponentialSmoothing(values, wilderAlpha(14), { kind: 'first' });
    const b = exponentialSmoothing(values, wilderAlpha(14), { kind: 'zero' });
    const d0 = a[0]! - b[0]!;
    for (const k of [1, 50, 399]) {
      expect((a[k]! - b[k]!) / d0).toBeCloseTo((1 - 1 / 14) ** k, 10);
    }
  });
});

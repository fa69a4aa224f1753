import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectMatches, loadFixture } from '../../test/indicator-fixtures.js';
import { gainLossAverages, rsi } from './rsi.js';

describe('rsi (fixture cs-rsi.csv, period 14)', () => {
  const f = loadFixture('cs-rsi.csv');
  const close = f.numbers('Close');

  it('averages gains and losses like the fixture on every row (seed ewm: from zero at row 0)', () => {
    const { avgGain, avgLoss } = gainLossAverages(close, 14);
    expect(expectMatches(f, 'Avg Gain', avgGain)).toBe(f.rows.length);
    expect(expectMatches(f, 'Avg Loss', avgLoss)).toBe(f.rows.length);
  });

  it('equals the RSI column on every row it prints, and is null before', () => {
    const out = rsi(close, 14);
    expect(out.slice(0, 14).every((v) => v === null)).toBe(true);
    expect(expectMatches(f, 'RSI', out)).toBe(f.rows.length - 14);
  });

  it('with seed sma starts from the mean of the first 14 changes (the ChartSchool article)', () => {
    const out = rsi(close, 14, 'sma');
    let gains = 0;
    let losses = 0;
    for (let i = 1; i <= 14; i++) {
      const d = close[i]! - close[i - 1]!;
      if (d > 0) gains += d;
      else losses -= d;
    }
    let g = gains / 14;
    let l = losses / 14;
    expect(out.slice(0, 14).every((v) => v === null)).toBe(true);
    expect(out[14]).toBeCloseTo(100 - 100 / (1 + g / l), 10);
    expect(out[14]).toBeCloseTo(70.53, 2); // ChartSchool's first RSI for these prices
    for (let i = 15; i < close.length; i++) {
      const d = close[i]! - close[i - 1]!;
      g = (g * 13 + Math.max(d, 0)) / 14;
      l = (l * 13 + Math.max(-d, 0)) / 14;
      expect(out[i]).toBeCloseTo(100 - 100 / (1 + g / l), 10);
    }
  });
});

describe('rsi edge cases', () => {
  it('is 50 for constant prices, 100 when only rising, 0 when only falling', () => {
    const n = 40;
    for (const seed of ['ewm', 'sma'] as const) {
      expect(rsi(new Array<number>(n).fill(42), 14, seed).slice(14)).toEqual(new Array(n - 14).fill(50));
      const up = Array.from({ length: n }, (_, i) => 10 + i);
      expect(rsi(up, 14, seed).slice(14)).toEqual(new Array(n - 14).fill(100));
      const down = Array.from({ length: n }, (_, i) => 100 - i);
      expect(rsi(down, 14, seed).slice(14)).toEqual(new Array(n - 14).fill(0));
    }
  });

  it('handles empty input and input without period changes', () => {
    expect(rsi([], 14)).toEqual([]);
    expect(rsi(new Array<number>(14).fill(1), 14)).toEqual(new Array(14).fill(null));
    expect(rsi([1, 2, 3], 14, 'sma')).toEqual([null, null, null]);
  });

  it('with period 1 reads only the last change', () => {
    expect(rsi([5, 6, 4, 4, 7], 1)).toEqual([null, 100, 0, 50, 100]);
    expect(rsi([5, 6, 4, 4, 7], 1, 'sma')).toEqual([null, 100, 0, 50, 100]);
  });

  it('stays within 0..100, and the two seeds converge', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1, max: 1e5, noNaN: true }), { minLength: 1, maxLength: 400 }),
        fc.integer({ min: 1, max: 30 }),
        (values, period) => {
          const a = rsi(values, period, 'ewm');
          const b = rsi(values, period, 'sma');
          return a.every((v, i) => {
            if (i < period) return v === null && b[i] === null;
            const w = b[i]!;
            const inRange = v! >= 0 && v! <= 100 && w >= 0 && w <= 100;
            // Both are Wilder averages of the same changes from different starts: the gap
            // in each average shrinks by (1 - 1/period) per step.
            return inRange && (i - period < 30 * period || Math.abs(v! - w) < 1e-6);
          });
        },
      ),
      { numRuns: 100 },
    );
  });
});

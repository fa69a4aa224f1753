import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectMatches, loadFixture } from '../../test/indicator-fixtures.js';
import { bollinger, rollingMeanStd } from './bollinger.js';

function naiveMeanStd(window: readonly number[]): { mean: number; std: number } {
  const mean = window.reduce((a, v) => a + v, 0) / window.length;
  const variance = window.reduce((a, v) => a + (v - mean) ** 2, 0) / window.length;
  return { mean, std: Math.sqrt(variance) };
}

describe('bollinger (fixture cs-bbands.csv, 20 periods, k = 2)', () => {
  const f = loadFixture('cs-bbands.csv');
  const close = f.numbers('Close');
  const out = bollinger(close, 20, 2);

  it('uses the population standard deviation, as the fixture', () => {
    const { std } = rollingMeanStd(close, 20);
    expect(expectMatches(f, '20-day Standard Deviation', std)).toBe(f.rows.length - 19);
  });

  it('equals every band column on every row the fixture prints, null before', () => {
    const columns = {
      middle: 'MiddleBand',
      upper: 'HighBand',
      lower: 'LowBand',
      width: 'WidthBand',
      percent_b: 'PercentageBand',
    } as const;
    for (const [series, column] of Object.entries(columns)) {
      const values = out[series as keyof typeof columns];
      expect(values.slice(0, 19).every((v) => v === null)).toBe(true);
      expect(expectMatches(f, column, values)).toBe(f.rows.length - 19);
    }
  });
});

describe('bollinger edge cases', () => {
  it('collapses the bands on constant prices: width 0, %B 0.5', () => {
    const out = bollinger(new Array<number>(25).fill(101.25), 20, 2);
    for (const key of ['middle', 'upper', 'lower'] as const)
      expect(out[key].slice(19)).toEqual(new Array(6).fill(101.25));
    expect(out.width.slice(19)).toEqual(new Array(6).fill(0));
    expect(out.percent_b.slice(19)).toEqual(new Array(6).fill(0.5));
  });

  it('handles empty input, input shorter than the period, and period 1', () => {
    expect(bollinger([], 20, 2).middle).toEqual([]);
    expect(bollinger([1, 2, 3], 20, 2).upper).toEqual([null, null, null]);
    const one = bollinger([3, 5], 1, 2);
    expect(one).toEqual({
      middle: [3, 5],
      upper: [3, 5],
      lower: [3, 5],
      width: [0, 0],
      percent_b: [0.5, 0.5],
    });
  });

  it('has no width at a zero middle band', () => {
    expect(bollinger([-1, 1], 2, 2).width).toEqual([null, null]);
  });

  it('mean and std equal a naive two-pass computation of each window', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1, max: 1e5, noNaN: true }), { maxLength: 150 }),
        fc.integer({ min: 1, max: 40 }),
        (values, period) => {
          const { mean, std } = rollingMeanStd(values, period);
          return mean.every((m, i) => {
            if (i < period - 1) return m === null && std[i] === null;
            const naive = naiveMeanStd(values.slice(i - period + 1, i + 1));
            // Rolling sums carry rounding of the values they dropped: bound the error by the
            // magnitude of every value involved (a window of ~1 right after a 184), not the mean.
            const scale = Math.max(...values.slice(Math.max(0, i - period), i + 1));
            return (
              Math.abs(m! - naive.mean) <= 1e-11 * scale &&
              // sqrt turns an absolute error e of a near-zero variance into sqrt(e).
              Math.abs(std[i]! - naive.std) <= 1e-7 * scale
            );
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps a tiny deviation exact on large prices over a long input', () => {
    // 200,000 prices stepping from 20,000 to 80,000, a cent of noise within each step: a
    // window's sum of squares is ~1e11 while its variance is ~1e-4.
    const n = 200_000;
    const period = 20;
    const values = Array.from(
      { length: n },
      (_, i) => 20_000 + 1500 * Math.floor(i / 5000) + 0.01 * ((i * 7919) % 7),
    );
    const { mean, std } = rollingMeanStd(values, period);
    // a plain sliding sum of x and x^2, for contrast
    let s1 = 0;
    let s2 = 0;
    for (let i = 0; i < period; i++) {
      s1 += values[i]!;
      s2 += values[i]! ** 2;
    }
    for (let i = period; i < n; i++) {
      s1 += values[i]! - values[i - period]!;
      s2 += values[i]! ** 2 - values[i - period]! ** 2;
    }
    const plainStd = Math.sqrt(Math.max(0, s2 / period - (s1 / period) ** 2));
    const last = naiveMeanStd(values.slice(-period));
    expect(Math.abs(plainStd - last.std) / last.std).toBeGreaterThan(0.1); // the input really is hard
    for (const i of [period - 1, 100_003, n - 1]) {
      const naive = naiveMeanStd(values.slice(i - period + 1, i + 1));
      expect(Math.abs(mean[i]! - naive.mean)).toBeLessThanOrEqual(1e-10);
      expect(Math.abs(std[i]! - naive.std) / naive.std).toBeLessThanOrEqual(1e-9);
    }
  });
});

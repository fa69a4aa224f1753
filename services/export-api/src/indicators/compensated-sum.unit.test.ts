import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CompensatedSum, rollingSums, sumRange } from './compensated-sum.js';

function naiveWindowSum(values: readonly number[], end: number, period: number): number {
  let s = 0;
  for (let j = end - period + 1; j <= end; j++) s += values[j]!;
  return s;
}

describe('CompensatedSum', () => {
  it('keeps the small terms a plain sum loses next to a large one', () => {
    const s = new CompensatedSum();
    for (const x of [1, 1e100, 1, -1e100]) s.add(x);
    expect(s.value).toBe(2);
    expect(1 + 1e100 + 1 - 1e100).toBe(0); // the plain sum, for contrast
  });

  it('sumRange sums a half-open range', () => {
    expect(sumRange([1, 2, 3, 4], 1, 3)).toBe(5);
    expect(sumRange([1, 2, 3], 2, 2)).toBe(0);
  });
});

describe('rollingSums', () => {
  it('is NaN before the first full window, then the window sum', () => {
    const sums = Array.from(rollingSums([1, 2, 3, 4, 5], 3));
    expect(sums.slice(0, 2).every(Number.isNaN)).toBe(true);
    expect(sums.slice(2)).toEqual([6, 9, 12]);
  });

  it('handles empty input, input shorter than the period, and period 1', () => {
    expect(rollingSums([], 3).length).toBe(0);
    expect(Array.from(rollingSums([1, 2], 3)).every(Number.isNaN)).toBe(true);
    expect(Array.from(rollingSums([4, -1, 7], 1))).toEqual([4, -1, 7]);
  });

  it('equals a naive sum of each window', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 1, max: 50 }),
        (values, period) => {
          const sums = rollingSums(values, period);
          for (let i = period - 1; i < values.length; i++) {
            const naive = naiveWindowSum(values, i, period);
            const scale = values.slice(i - period + 1, i + 1).reduce((a, v) => a + Math.abs(v), 0);
            expect(Math.abs(sums[i]! - naive)).toBeLessThanOrEqual(1e-12 * Math.max(1, scale));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('does not drift over a long input where a plain running sum does', () => {
    // Spikes of 1e9 among cents: every spike that enters and leaves a plain running sum
    // leaves its rounding error behind.
    const n = 300_000;
    const period = 50;
    const values = Array.from({ length: n }, (_, i) =>
      i % 97 === 0 ? 1e9 + i / 7 : 0.01 * ((i * 7919) % 13),
    );
    const sums = rollingSums(values, period);
    let plain = naiveWindowSum(values, period - 1, period);
    for (let i = period; i < n; i++) plain += values[i]! - values[i - period]!;
    // The last window holds no spike, so a naive sum of it is exact to a few ulps.
    expect(values.slice(-period).every((v) => v < 1)).toBe(true);
    const exact = naiveWindowSum(values, n - 1, period);
    expect(Math.abs(plain - exact)).toBeGreaterThan(1e-4); // the input really is hard
    expect(Math.abs(sums[n - 1]! - exact)).toBeLessThanOrEqual(1e-12 * Math.abs(exact));
  });
});

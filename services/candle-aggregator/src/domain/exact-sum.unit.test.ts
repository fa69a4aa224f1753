import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addToPartials,
  canonicalPartials,
  exactSum,
  mergePartials,
  type Partials,
  partialsValue,
} from './exact-sum.js';

/**
 * Oracle: doubles with magnitude in [2^-200, 2^200] are integers once scaled by 2^300, so
 * BigInt adds them exactly; Number(bigint) rounds to nearest, ties to even (ECMA-262), and
 * scaling back by a power of two is exact in the normal range.
 */
const SCALE = 2 ** 300;
function oracleSum(values: readonly number[]): number {
  let total = 0n;
  for (const v of values) total += BigInt(v * SCALE);
  return Number(total) / SCALE + 0;
}

const double = fc
  .tuple(fc.double({ min: 1, max: 2, noNaN: true }), fc.integer({ min: -200, max: 199 }), fc.boolean())
  .map(([m, e, neg]) => (neg ? -1 : 1) * m * 2 ** e);

describe('exactSum', () => {
  it('gives the correctly rounded sum', () => {
    expect(exactSum(Array(10).fill(0.1))).toBe(1);
    expect(exactSum([1e100, 1, -1e100])).toBe(1);
    expect(exactSum([2 ** 53, 1, 2 ** -60])).toBe(2 ** 53 + 2); // past the halfway point: rounds up
    expect(exactSum([2 ** 53, 1])).toBe(2 ** 53); // exactly halfway: ties to even
    expect(exactSum([])).toBe(0);
  });

  it('equals the exact BigInt sum, rounded once, for any values and order', () => {
    fc.assert(
      fc.property(fc.array(double, { maxLength: 60 }), (values) => {
        expect(exactSum(values)).toBe(oracleSum(values));
        expect(exactSum([...values].reverse())).toBe(oracleSum(values));
      }),
      { numRuns: 300 },
    );
  });

  it('merges partial sums exactly, however the values are split', () => {
    fc.assert(
      fc.property(fc.array(double, { maxLength: 40 }), fc.nat(), (values, cut) => {
        const at = values.length === 0 ? 0 : cut % values.length;
        const left: Partials = [];
        const right: Partials = [];
        for (const v of values.slice(0, at)) addToPartials(left, v);
        for (const v of values.slice(at)) addToPartials(right, v);
        mergePartials(right, JSON.parse(JSON.stringify(left)));
        expect(partialsValue(right)).toBe(oracleSum(values));
      }),
      { numRuns: 200 },
    );
  });

  it('has one canonical form per exact sum, whatever the order and grouping', () => {
    fc.assert(
      fc.property(fc.array(double, { maxLength: 40 }), fc.nat(), (values, cut) => {
        const at = values.length === 0 ? 0 : cut % values.length;
        const inOrder: Partials = [];
        for (const v of values) addToPartials(inOrder, v);
        const merged: Partials = [];
        for (const v of values.slice(at).reverse()) addToPartials(merged, v);
        const left: Partials = [];
        for (const v of values.slice(0, at)) addToPartials(left, v);
        mergePartials(merged, left);
        const canonical = canonicalPartials(inOrder);
        expect(canonicalPartials(merged)).toEqual(canonical);
        expect(canonicalPartials(canonical)).toEqual(canonical);
        expect(partialsValue(canonical)).toBe(oracleSum(values));
        // Still a working partials list: adding to it stays exact.
        addToPartials(canonical, 0.1);
        expect(partialsValue(canonical)).toBe(oracleSum([...values, 0.1]));
      }),
      { numRuns: 300 },
    );
    expect(canonicalPartials([])).toEqual([0]);
    expect(canonicalPartials([0])).toEqual([0]);
    const cancelled: Partials = [];
    for (const v of [1e100, 1, -1e100]) addToPartials(cancelled, v);
    expect(canonicalPartials(cancelled)).toEqual([1]);
  });
});

import { describe, expect, it } from 'vitest';
import { closesToCandles, expectMatches, loadFixture } from '../../test/indicator-fixtures.js';
import { atr, trueRange } from './atr.js';

describe.each([
  ['cs-atr.csv', 14],
  ['cs-atr2.csv', 10],
])('atr (fixture %s, period %i)', (file, period) => {
  const f = loadFixture(file);
  const candles = f.candles();

  it('true range equals the TR column on every row (the first is high - low)', () => {
    expect(expectMatches(f, 'TR', Array.from(trueRange(candles)))).toBe(f.rows.length);
  });

  it('equals the ATR column from its first value on; the fixture’s leading zeros are warm-up', () => {
    const out = atr(candles, period);
    expect(f.numbers('ATR').slice(0, period - 1)).toEqual(new Array(period - 1).fill(0));
    expect(out.slice(0, period - 1).every((v) => v === null)).toBe(true);
    expect(expectMatches(f, 'ATR', out, { from: period - 1 })).toBe(f.rows.length - period + 1);
  });
});

describe('atr edge cases', () => {
  const candles = [
    { open: 10, high: 11, low: 9, close: 10.5, volume: 1 },
    { open: 10.5, high: 12, low: 10, close: 11, volume: 1 },
    { open: 11, high: 11.5, low: 8, close: 9, volume: 1 }, // gap below the previous close
    { open: 9, high: 13, low: 9.5, close: 12, volume: 1 }, // high above, low above previous close
  ];

  it('takes the previous close into the range', () => {
    expect(Array.from(trueRange(candles))).toEqual([2, 2, 3.5, 4]);
  });

  it('with period 1 is the true range itself', () => {
    expect(atr(candles, 1)).toEqual([2, 2, 3.5, 4]);
  });

  it('handles empty input and input shorter than the period', () => {
    expect(atr([], 14)).toEqual([]);
    expect(atr(candles, 5)).toEqual([null, null, null, null]);
  });

  it('is zero for constant prices', () => {
    expect(atr(closesToCandles(new Array<number>(20).fill(5)), 14).slice(13)).toEqual(new Array(7).fill(0));
  });
});

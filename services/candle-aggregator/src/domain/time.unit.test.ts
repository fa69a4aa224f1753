import { TIMEFRAMES, type Timeframe } from '@parquetry/lake';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucketEnd, bucketOf, bucketStart, isAligned, TIMEFRAME_MS } from './time.js';

const iso = (s: string) => Date.parse(s);

/** Oracle from calendar fields (Date's UTC getters), not from epoch division. */
function calendarStart(tf: Timeframe, ts: number): number {
  const d = new Date(ts);
  const [y, mo, day, h, mi] = [
    d.getUTCFullYear(),
    d.getUTCMonth(),
    d.getUTCDate(),
    d.getUTCHours(),
    d.getUTCMinutes(),
  ];
  switch (tf) {
    case '1m':
      return Date.UTC(y, mo, day, h, mi);
    case '5m':
      return Date.UTC(y, mo, day, h, mi - (mi % 5));
    case '15m':
      return Date.UTC(y, mo, day, h, mi - (mi % 15));
    case '1h':
      return Date.UTC(y, mo, day, h);
    case '4h':
      return Date.UTC(y, mo, day, h - (h % 4));
    case '1d':
      return Date.UTC(y, mo, day);
  }
}

describe('bucket alignment', () => {
  it('matches calendar fields in UTC for every timeframe, before and after 1970', () => {
    const ts = fc.integer({ min: iso('1960-01-01T00:00:00Z'), max: iso('2100-01-01T00:00:00Z') });
    fc.assert(
      fc.property(ts, fc.constantFrom(...TIMEFRAMES), (t, tf) => {
        const { start, end } = bucketOf(tf, t);
        expect(start).toBe(calendarStart(tf, t));
        expect(end - start).toBe(TIMEFRAME_MS[tf]);
        expect(start <= t && t < end).toBe(true);
        expect(bucketEnd(tf, t)).toBe(end);
        expect(isAligned(tf, start)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('puts the last millisecond of a day and midnight in different 4h and 1d buckets', () => {
    const before = iso('2024-08-08T23:59:59.999Z');
    const midnight = iso('2024-08-09T00:00:00.000Z');
    expect(bucketOf('1d', before)).toEqual({ start: iso('2024-08-08T00:00:00Z'), end: midnight });
    expect(bucketOf('4h', before)).toEqual({ start: iso('2024-08-08T20:00:00Z'), end: midnight });
    expect(bucketOf('1m', before)).toEqual({ start: iso('2024-08-08T23:59:00Z'), end: midnight });
    expect(bucketOf('1d', midnight)).toEqual({ start: midnight, end: iso('2024-08-10T00:00:00Z') });
    expect(bucketOf('4h', midnight)).toEqual({ start: midnight, end: iso('2024-08-09T04:00:00Z') });
    expect(bucketOf('15m', midnight).start).toBe(midnight);
  });

  it('starts 4h buckets at 00, 04, 08, 12, 16 and 20 UTC', () => {
    const day = iso('2024-03-10T00:00:00Z');
    const starts = new Set<number>();
    for (let m = 0; m < 24 * 60; m += 7) starts.add(bucketStart('4h', day + m * 60_000));
    expect([...starts].map((s) => new Date(s).toISOString().slice(11, 16))).toEqual([
      '00:00',
      '04:00',
      '08:00',
      '12:00',
      '16:00',
      '20:00',
    ]);
  });

  it('ignores daylight saving: days of DST changes in Europe and the US are 24h long', () => {
    for (const day of ['2024-03-10', '2024-03-31', '2024-10-27', '2024-11-03']) {
      const noon = iso(`${day}T12:00:00Z`);
      expect(bucketOf('1d', noon)).toEqual({
        start: iso(`${day}T00:00:00Z`),
        end: iso(`${day}T00:00:00Z`) + 86_400_000,
      });
      expect(bucketStart('4h', iso(`${day}T02:30:00Z`))).toBe(iso(`${day}T00:00:00Z`));
    }
  });

  it('never returns negative zero', () => {
    expect(Object.is(bucketStart('1m', -0), 0)).toBe(true);
    expect(bucketStart('1d', -1)).toBe(-86_400_000);
  });
});

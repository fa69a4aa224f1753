import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createKey, KeyStore } from '../auth/keys.js';
import { filterMatches, seriesAccess } from './access.js';
import { BYTES_PER_CANDLE, LiveCandles, PartitionCache } from './cache.js';
import { periodBounds } from './catalog-view.js';
import { LatencyStats } from './latency.js';
import { mergeCandles, renderCandle, type StoredCandle, sliceWindow } from './types.js';

const candle = (start: number, revision = 0, close = 1): StoredCandle => ({
  start,
  open: 1,
  high: 2,
  low: 0.5,
  close,
  volume: 3,
  trades: 4,
  vwap: 1.5,
  revision,
});
const series = (n: number, from = 0) => Array.from({ length: n }, (_, i) => candle((from + i) * 60_000));

describe('PartitionCache', () => {
  it('keeps at most maxBytes, evicting the least recently used first', () => {
    const cache = new PartitionCache(10 * 1000 * BYTES_PER_CANDLE);
    for (let i = 0; i < 5; i++) cache.set(`p${i}`, 's', series(3000));
    expect(cache.bytes).toBeLessThanOrEqual(cache.maxBytes);
    expect(cache.size).toBe(3);
    expect(cache.counters.evictions).toBe(2);
    expect(cache.get('p0', 's')).toBeUndefined();
    expect(cache.get('p2', 's')).toHaveLength(3000); // now the most recent
    cache.set('p5', 's', series(3000));
    expect(cache.get('p2', 's')).toBeDefined();
    expect(cache.get('p3', 's')).toBeUndefined();
  });

  it('treats another file signature as a miss and drops the entry; refuses what exceeds half the cache', () => {
    const cache = new PartitionCache(1000 * BYTES_PER_CANDLE);
    cache.set('p', 'a', series(10));
    expect(cache.get('p', 'b')).toBeUndefined();
    expect(cache.size).toBe(0);
    expect(cache.counters.invalidations).toBe(1);
    expect(cache.fits(600)).toBe(false);
    cache.set('big', 'a', series(600));
    expect(cache.size).toBe(0);
    const off = new PartitionCache(0);
    off.set('p', 'a', series(1));
    expect(off.enabled).toBe(false);
    expect(off.get('p', 'a')).toBeUndefined();
  });
});

describe('LiveCandles', () => {
  it('keeps the highest revision per start, sorted, and at most perSeries', () => {
    const live = new LiveCandles(3);
    expect(live.add('s', candle(120_000))).toBe(true);
    expect(live.add('s', candle(0))).toBe(true);
    expect(live.add('s', candle(60_000, 1, 9))).toBe(true);
    expect(live.add('s', candle(60_000, 0, 5))).toBe(false);
    expect(live.get('s').map((c) => [c.start, c.close])).toEqual([
      [0, 1],
      [60_000, 9],
      [120_000, 1],
    ]);
    live.add('s', candle(180_000));
    expect(live.get('s').map((c) => c.start)).toEqual([60_000, 120_000, 180_000]);
    expect(live.size).toBe(3);
  });

  it('drops what the lake holds at the same or a newer revision, in the partition’s span only', () => {
    const live = new LiveCandles();
    live.add('s', candle(0, 1));
    live.add('s', candle(60_000, 2));
    live.add('s', candle(120_000, 0));
    live.add('s', candle(10 * 60_000, 0)); // outside [0, 5 min)
    live.prune(
      's',
      [candle(0, 1), candle(60_000, 1), candle(120_000, 0), candle(10 * 60_000, 0)],
      0,
      5 * 60_000,
    );
    expect(live.get('s').map((c) => c.start)).toEqual([60_000, 10 * 60_000]);
    expect(live.size).toBe(2);
  });
});

describe('windows over merged lake and live candles', () => {
  it('sliceWindow of a merge equals the window of the sorted union (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 200 }), { maxLength: 60 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 200 }), { maxLength: 20 }),
        fc.option(fc.integer({ min: -5, max: 205 }), { nil: undefined }),
        fc.option(fc.integer({ min: -5, max: 205 }), { nil: undefined }),
        fc.integer({ min: 1, max: 50 }),
        (lakeStarts, liveStarts, startMs, endMs, limit) => {
          const lake = [...lakeStarts].sort((a, b) => a - b).map((s) => candle(s, 0, 1));
          const live = [...liveStarts].sort((a, b) => a - b).map((s) => candle(s, 1, 2));
          const got = sliceWindow(mergeCandles(lake, live), { startMs, endMs, limit });
          const union = new Map<number, StoredCandle>();
          for (const c of lake) union.set(c.start, c);
          for (const c of live) union.set(c.start, c); // higher revision
          let all = [...union.values()]
            .sort((a, b) => a.start - b.start)
            .filter(
              (c) =>
                (startMs === undefined || c.start >= startMs) && (endMs === undefined || c.start < endMs),
            );
          all = startMs !== undefined ? all.slice(0, limit) : all.slice(Math.max(0, all.length - limit));
          expect(got).toEqual(all);
        },
      ),
    );
  });

  it('renders the API candle as JSON equal to JSON.stringify of its object', () => {
    fc.assert(
      fc.property(
        fc.record({
          start: fc.integer({ min: 0, max: 4_102_444_800_000 }),
          open: fc.double({ noNaN: true, noDefaultInfinity: true }),
          high: fc.double({ noNaN: true, noDefaultInfinity: true }),
          low: fc.double({ noNaN: true, noDefaultInfinity: true }),
          close: fc.double({ noNaN: true, noDefaultInfinity: true }),
          volume: fc.double({ noNaN: true, noDefaultInfinity: true }),
          trades: fc.nat(),
        }),
        (c) => {
          const stored = { ...c, vwap: 0, revision: 0 };
          const { start, ...rest } = c;
          const expected = { ts: new Date(start).toISOString(), ...rest };
          expect(JSON.parse(renderCandle(stored))).toEqual(JSON.parse(JSON.stringify(expected)));
        },
      ),
    );
  });
});

describe('periodBounds', () => {
  it('spans a month, a year, or everything', () => {
    expect(periodBounds('2024-02')).toEqual({ fromMs: Date.UTC(2024, 1, 1), toMs: Date.UTC(2024, 2, 1) });
    expect(periodBounds('2024-12')).toEqual({ fromMs: Date.UTC(2024, 11, 1), toMs: Date.UTC(2025, 0, 1) });
    expect(periodBounds('2024')).toEqual({ fromMs: Date.UTC(2024, 0, 1), toMs: Date.UTC(2025, 0, 1) });
    expect(periodBounds('all')).toEqual({ fromMs: -Infinity, toMs: Infinity });
    expect(periodBounds('weird')).toEqual({ fromMs: -Infinity, toMs: Infinity });
  });
});

describe('series access', () => {
  const keyOf = (record: ReturnType<typeof createKey>) =>
    KeyStore.fromRecords([record.record]).authenticate(`Bearer ${record.key}`);

  it('needs candles or candles_<tf>; row scopes on symbol and timeframe apply; others fail closed', () => {
    const all = keyOf(createKey({ name: 'a', datasets: ['candles'] }));
    const daily = keyOf(createKey({ name: 'd', datasets: ['candles_1d'] }));
    const none = keyOf(createKey({ name: 'n', datasets: ['ticks'] }));
    const star = keyOf(createKey({ name: 's', datasets: ['*'] }));
    const like = keyOf(
      createKey({
        name: 'l',
        datasets: ['candles'],
        rowScopes: { candles: [{ column: 'symbol', op: 'like', value: 'BTC%' }] },
      }),
    );
    const hourly = keyOf(
      createKey({
        name: 'h',
        datasets: ['candles'],
        rowScopes: { candles: [{ column: 'timeframe', op: 'in', value: ['1h', '4h'] }] },
      }),
    );
    const price = keyOf(
      createKey({
        name: 'p',
        datasets: ['candles'],
        rowScopes: { candles: [{ column: 'close', op: '>', value: 1 }] },
      }),
    );
    expect(seriesAccess(all, '1m', 'X').allowed).toBe(true);
    expect(seriesAccess(star, '1m', 'X').allowed).toBe(true);
    expect(seriesAccess(daily, '1d', 'X').allowed).toBe(true);
    expect(seriesAccess(daily, '1h', 'X').allowed).toBe(false);
    expect(seriesAccess(none, '1d', 'X').allowed).toBe(false);
    expect(seriesAccess(like, '1m', 'BTCUSD').allowed).toBe(true);
    expect(seriesAccess(like, '1m', 'ETHBTC').allowed).toBe(false);
    expect(seriesAccess(hourly, '4h', 'X').allowed).toBe(true);
    expect(seriesAccess(hourly, '1m', 'X').allowed).toBe(false);
    expect(seriesAccess(price, '1m', 'X').allowed).toBe(false);
  });

  it('LIKE treats regex characters literally', () => {
    expect(filterMatches('A.B', { column: 'symbol', op: 'like', value: 'A.B' })).toBe(true);
    expect(filterMatches('AxB', { column: 'symbol', op: 'like', value: 'A.B' })).toBe(false);
    expect(filterMatches('AxB', { column: 'symbol', op: 'like', value: 'A_B' })).toBe(true);
    expect(filterMatches('b', { column: 'symbol', op: 'between', value: ['a', 'c'] })).toBe(true);
  });
});

describe('LatencyStats', () => {
  it('gives nearest-rank percentiles over the last window of each route', () => {
    const stats = new LatencyStats(100);
    for (let i = 1; i <= 100; i++) stats.record('GET /a', i);
    for (let i = 0; i < 50; i++) stats.record('GET /b', 1000); // older samples of /b …
    for (let i = 0; i < 100; i++) stats.record('GET /b', 2); // … pushed out of the window
    const s = stats.snapshot();
    expect(s['GET /a']).toEqual({ count: 100, p50_ms: 50, p90_ms: 90, p99_ms: 99, max_ms: 100 });
    expect(s['GET /b']).toEqual({ count: 150, p50_ms: 2, p90_ms: 2, p99_ms: 2, max_ms: 2 });
  });
});

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCaptureTrades, parseCaptureLine, replayPlan } from './market.mjs';
import { loadProductSources, sessionBatches, sharedDataDir } from './products.mjs';

interface Tick {
  symbol: string;
  ts: number;
  price: number;
  size: number;
  side: string;
  trade_id: string;
}

describe('demo scraper input', () => {
  const sources = loadProductSources();

  it('reads every real product file, jumbo with its 7,937 records (SOURCES.md)', () => {
    const count = (r: string) =>
      sources
        .filter((s: { retailer: string }) => s.retailer === r)
        .reduce(
          (n: number, s: { categories: Map<string, unknown[]> }) =>
            n + [...s.categories.values()].reduce((m, p) => m + p.length, 0),
          0,
        );
    expect(count('jumbo')).toBe(7937);
    expect(new Set(sources.map((s: { retailer: string }) => s.retailer)).size).toBeGreaterThan(10);
  });

  it('makes contract-valid batches with ids unique to the session and scraped_at = now', () => {
    const now = new Date('2026-01-02T03:04:05Z');
    const a = sessionBatches(sources, { session: 'A', now });
    const b = sessionBatches(sources, { session: 'B', now });
    const ids = new Set([...a, ...b].map((x: { batch_id: string }) => x.batch_id));
    expect(ids.size).toBe(a.length + b.length);
    for (const batch of a) {
      expect(batch.retailer).toMatch(/^[a-z0-9_-]{1,64}$/);
      expect(batch.category).toMatch(/^[a-z0-9_-]{1,64}$/);
      expect(batch.products.length).toBeGreaterThan(0);
      expect(batch.products.length).toBeLessThanOrEqual(300);
      expect(batch.scraped_at).toBe('2026-01-02T03:04:05.000Z');
    }
    const total = a.reduce((n: number, x: { products: unknown[] }) => n + x.products.length, 0);
    const expected = sources.reduce(
      (n: number, s: { categories: Map<string, unknown[]> }) =>
        n + [...s.categories.values()].reduce((m, p) => m + p.length, 0),
      0,
    );
    expect(total).toBe(expected);
  });

  it('is empty, not an error, without the shared data', () => {
    expect(loadProductSources(join(sharedDataDir(), 'no-such-dir'))).toEqual([]);
    expect(loadCaptureTrades(join(sharedDataDir(), 'no-such-dir'))).toEqual([]);
  });
});

describe('demo market feed', () => {
  const trades = loadCaptureTrades(join(sharedDataDir(), 'market'));

  it('finds the 19,904 BTCUSDT trades of the captures with contiguous ids (SOURCES.md)', () => {
    expect(trades.length).toBe(19_904);
    const ids = trades.map((t: { trade: number }) => t.trade);
    expect(ids[ids.length - 1] - ids[0] + 1).toBe(19_904);
    expect(trades.every((t: { symbol: string }) => t.symbol === 'BTCUSDT')).toBe(true);
  });

  it('parses a trade line and skips other messages', () => {
    const line =
      '1723161254087896568 {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}';
    expect(parseCaptureLine(line)).toEqual({
      symbol: 'BTCUSDT',
      ts: 1723161255342,
      price: 61837.63,
      size: 0.02,
      side: 'sell',
      trade: 3735683259,
    });
    expect(
      parseCaptureLine('1723161254087896568 {"stream":"btcusdt@depth","data":{"e":"depthUpdate"}}'),
    ).toBeUndefined();
    expect(parseCaptureLine('')).toBeUndefined();
  });

  it('replays loops back to back: time only moves forward, no id repeats, same tick every time', () => {
    const plan = replayPlan(trades);
    const seen = new Set<string>();
    let lastTs = -Infinity;
    let backwards = 0;
    for (let k = 5; k < 8; k++) {
      for (let i = 0; i < plan.perLoop; i++) {
        const t: Tick = plan.tick(k, i);
        if (t.ts < lastTs) backwards++;
        lastTs = t.ts;
        seen.add(t.trade_id);
      }
    }
    expect(backwards).toBe(0);
    expect(seen.size).toBe(3 * plan.perLoop);
    expect(plan.tick(6, 17)).toEqual(plan.tick(6, 17));
    expect(plan.tick(0, 0).ts).toBe(Math.min(...trades.map((t: { ts: number }) => t.ts)));
  });

  it('starts one whole loop before now, so the last ~10 minutes are history and the rest is live', () => {
    const plan = replayPlan(trades);
    const now = Date.parse('2026-11-21T12:00:00Z');
    const it = plan.ticksFrom(now);
    const first: Tick = it.next().value;
    expect(first.ts).toBeLessThanOrEqual(now - plan.span);
    expect(first.ts).toBeGreaterThan(now - 2 * plan.span);
    expect(first).toEqual(plan.tick(plan.loopAt(now) - 1, 0));
    let t: Tick = first;
    for (let n = 0; n < 2 * plan.perLoop; n++) t = it.next().value;
    expect(t.ts).toBeGreaterThan(now);
  });
});

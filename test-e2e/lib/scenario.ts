/**
 * The feed the fault tests share: a third of the real product batches and one symbol of real
 * Binance trades (plus its sentinel), published in waves with a hook between waves (where the
 * fault is injected), and the expectations derived from it.
 */
import type { FixtureBatch } from '@parquetry/testkit';
import { expectedCandleKeys } from './converge.js';
import {
  binanceTicks,
  type Publisher,
  productBatches,
  productCount,
  productMessages,
  type Tick,
  tickMessages,
} from './feeds.js';
import { sleep } from './procs.js';

export interface Feed {
  batches: FixtureBatch[];
  ticks: Tick[];
  sentinels: Tick[];
  symbols: string[];
  lastRealTs: number;
  expected: { products: number; ticks: number; candleKeys: number };
}

export function smallFeed(opts: { everyNthBatch?: number; symbols?: string[]; ticks?: boolean } = {}): Feed {
  const n = opts.everyNthBatch ?? 3;
  const batches = productBatches().filter((_, i) => i % n === 0);
  const symbols = opts.ticks === false ? [] : (opts.symbols ?? ['BTCUSDT']);
  const { ticks, sentinels } = symbols.length > 0 ? binanceTicks(symbols) : { ticks: [], sentinels: [] };
  const lastRealTs = ticks.at(-1)?.ts ?? 0;
  return {
    batches,
    ticks,
    sentinels,
    symbols,
    lastRealTs,
    expected: {
      products: productCount(batches),
      ticks: ticks.length + sentinels.length,
      candleKeys: expectedCandleKeys(ticks, lastRealTs),
    },
  };
}

/**
 * Publishes the feed in `waves` (products and ticks side by side), calling `between(w)` after
 * wave `w` — not awaited before the next wave starts when it returns a promise, so a fault can
 * land while data is arriving — and then the sentinels. Returns the publish retries.
 */
export async function publishInWaves(
  feed: Publisher,
  f: Feed,
  o: { waves: number; pauseMs?: number; between?: (w: number) => Promise<void> | void },
): Promise<{ retries: number }> {
  const pm = productMessages(f.batches);
  const tm = tickMessages(f.ticks);
  let retries = 0;
  const faults: Promise<void>[] = [];
  for (let w = 0; w < o.waves; w++) {
    const slice = <T>(a: readonly T[]) =>
      a.slice(Math.floor((w * a.length) / o.waves), Math.floor(((w + 1) * a.length) / o.waves));
    const [p, t] = await Promise.all([feed.publish(slice(pm)), feed.publish(slice(tm))]);
    retries += p.retries + t.retries;
    const fault = o.between?.(w);
    if (fault) faults.push(fault);
    await sleep(o.pauseMs ?? 400);
  }
  await Promise.all(faults);
  if (f.sentinels.length > 0) retries += (await feed.publish(tickMessages(f.sentinels))).retries;
  return { retries };
}

/**
 * The feed cut into `parts` published one at a time, for a test that must put data on the bus
 * while its fault is on (a fault hook racing the waves may find everything already flushed on a
 * fast machine). `publish(i)` and `sentinels()` return their publish retries.
 */
export function feedInParts(feed: Publisher, f: Feed, parts: number) {
  const pm = productMessages(f.batches);
  const tm = tickMessages(f.ticks);
  const part = <T>(a: readonly T[], i: number) =>
    a.slice(Math.floor((i * a.length) / parts), Math.floor(((i + 1) * a.length) / parts));
  return {
    async publish(i: number): Promise<number> {
      const [p, t] = await Promise.all([feed.publish(part(pm, i)), feed.publish(part(tm, i))]);
      return p.retries + t.retries;
    },
    async sentinels(): Promise<number> {
      return f.sentinels.length > 0 ? (await feed.publish(tickMessages(f.sentinels))).retries : 0;
    },
  };
}

import type { Tick } from '@parquetry/lake';
import { readBinanceTrades } from './market-data.js';

/** A deterministic pseudo-random generator (tests must be reproducible). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Real Binance BTCUSDT trades as several symbols: the capture itself plus copies with other
 * prices, sizes and id spaces (`variants` in all), so partitions and instances have work.
 */
export function binanceSymbols(variants = 3): Tick[] {
  const base = readBinanceTrades().map((t) => t.tick);
  const out: Tick[] = [];
  for (let v = 0; v < variants; v++) {
    const symbol = v === 0 ? 'BTCUSDT' : `BTC${String.fromCharCode(65 + v)}`;
    for (const t of base) {
      out.push({
        ...t,
        symbol,
        price: v === 0 ? t.price : Math.round(t.price * (1 + v / 10) * 100) / 100,
        size: v === 2 ? Math.round(t.size * 3 * 1e5) / 1e5 : t.size,
        trade_id: v === 2 ? `x${t.trade_id}` : t.trade_id,
      });
    }
  }
  return out;
}

/**
 * The arrival order of a live feed: each tick delayed by up to `maxDelayMs` (so some arrive
 * after their minute closed and revise it), `dupRate` of them delivered twice.
 */
export function shuffledArrivals(
  ticks: readonly Tick[],
  seed: number,
  maxDelayMs = 90_000,
  dupRate = 0.02,
): Tick[] {
  const random = lcg(seed);
  const arrivals: { at: number; tick: Tick }[] = [];
  for (const t of ticks) {
    arrivals.push({ at: t.ts + Math.floor(random() * maxDelayMs), tick: t });
    if (random() < dupRate) arrivals.push({ at: t.ts + Math.floor(random() * maxDelayMs), tick: t });
  }
  arrivals.sort((a, b) => a.at - b.at);
  return arrivals.map((a) => a.tick);
}

/** A tick far after the data for each symbol: moves its event time past every real candle. */
export function sentinels(ticks: readonly Tick[], afterMs = 2 * 86_400_000): Tick[] {
  const last = new Map<string, number>();
  for (const t of ticks) last.set(t.symbol, Math.max(last.get(t.symbol) ?? 0, t.ts));
  return [...last].map(([symbol, ts]) => ({
    symbol,
    ts: ts + afterMs,
    price: 1,
    size: 0,
    trade_id: 'sentinel',
  }));
}

export interface TickMessage {
  subject: string;
  payload: unknown;
  msgId: string;
}

/** Ticks as bus messages: mostly one per message, some runs of one symbol as `{symbol, ticks}` arrays. */
export function tickMessages(ticks: readonly Tick[], seed: number, prefix: string): TickMessage[] {
  const random = lcg(seed);
  const out: TickMessage[] = [];
  for (let i = 0; i < ticks.length; ) {
    const first = ticks[i]!;
    let n = 1;
    if (random() < 0.15) while (n < 5 && i + n < ticks.length && ticks[i + n]!.symbol === first.symbol) n++;
    const group = ticks.slice(i, i + n);
    out.push({
      subject: `market.ticks.${first.symbol}`,
      payload: n === 1 ? first : { symbol: first.symbol, ticks: group.map(({ symbol: _, ...t }) => t) },
      msgId: `${prefix}-${out.length}`,
    });
    i += n;
  }
  return out;
}

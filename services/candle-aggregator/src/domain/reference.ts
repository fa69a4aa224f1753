import { TIMEFRAMES, type Tick, type Timeframe } from '@parquetry/lake';
import type { AggregatorEvent } from './aggregator.js';
import type { CandleRecord } from './candle.js';

/**
 * A deliberately simple model of the candles the aggregator must converge to, for tests:
 * take every tick, drop repeated trade ids (per symbol), sort by the documented event
 * order, group by bucket, read the values off. Written apart from candle.ts on purpose
 * (plain sums, BigInt id comparison, no accumulators) so the two can disagree.
 */
export type ReferenceCandle = Omit<CandleRecord, 'revision'>;

const DURATION: Record<Timeframe, number> = {
  '1m': 60e3,
  '5m': 5 * 60e3,
  '15m': 15 * 60e3,
  '1h': 60 * 60e3,
  '4h': 4 * 60 * 60e3,
  '1d': 24 * 60 * 60e3,
};

function idRank(id: string | undefined): [number, bigint, string] {
  if (id === undefined) return [0, 0n, ''];
  if (/^(0|[1-9]\d*)$/.test(id)) return [1, BigInt(id), ''];
  return [2, 0n, id];
}

function eventOrder(a: Tick, b: Tick): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  const [ak, an, as] = idRank(a.trade_id);
  const [bk, bn, bs] = idRank(b.trade_id);
  if (ak !== bk) return ak - bk;
  if (an !== bn) return an < bn ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  if (a.price !== b.price) return a.price - b.price;
  return a.size - b.size;
}

/** Reference candles for every symbol and timeframe, sorted by symbol, timeframe (TIMEFRAMES order), start. */
export function referenceCandles(
  ticks: readonly Tick[],
  timeframes: readonly Timeframe[] = TIMEFRAMES,
): ReferenceCandle[] {
  const seen = new Set<string>();
  const unique = ticks.filter((t) => {
    if (t.trade_id === undefined) return true;
    const key = `${t.symbol}\u0000${t.trade_id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const sorted = [...unique].sort((a, b) =>
    a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : eventOrder(a, b),
  );
  const out: ReferenceCandle[] = [];
  const symbols = [...new Set(sorted.map((t) => t.symbol))];
  for (const symbol of symbols) {
    const own = sorted.filter((t) => t.symbol === symbol);
    for (const timeframe of timeframes) {
      const ms = DURATION[timeframe];
      const groups = new Map<number, Tick[]>();
      for (const t of own) {
        const start = Math.floor(t.ts / ms) * ms;
        const g = groups.get(start);
        if (g) g.push(t);
        else groups.set(start, [t]);
      }
      for (const [start, g] of groups) {
        let volume = 0;
        let notional = 0;
        for (const t of g) {
          volume += t.size;
          notional += t.price * t.size;
        }
        const close = g[g.length - 1]!.price;
        out.push({
          symbol,
          timeframe,
          start,
          end: start + ms,
          open: g[0]!.price,
          high: Math.max(...g.map((t) => t.price)),
          low: Math.min(...g.map((t) => t.price)),
          close,
          volume,
          trades: g.length,
          vwap: volume === 0 ? close : notional / volume,
        });
      }
    }
  }
  return out;
}

/**
 * What a downstream store holds after applying the events in order: for each
 * (symbol, timeframe, start), the candle with the highest revision. Throws if a candle's
 * revisions are not published as 0, 1, 2, … in order (the contract consumers rely on).
 */
export function latestCandles(events: readonly AggregatorEvent[]): CandleRecord[] {
  const latest = new Map<string, CandleRecord>();
  for (const e of events) {
    if (e.type === 'rejected') continue;
    for (const c of e.candles) {
      const key = `${c.symbol}\u0000${c.timeframe}\u0000${c.start}`;
      const expected = (latest.get(key)?.revision ?? -1) + 1;
      if (c.revision !== expected) {
        throw new Error(`${key}: revision ${c.revision} published where ${expected} was expected`);
      }
      latest.set(key, c);
    }
  }
  const order = new Map<Timeframe, number>(TIMEFRAMES.map((tf, i) => [tf, i]));
  return [...latest.values()].sort(
    (a, b) =>
      (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0) ||
      order.get(a.timeframe)! - order.get(b.timeframe)! ||
      a.start - b.start,
  );
}

import type { Candle, Timeframe } from '@parquetry/lake';
import {
  addToPartials,
  canonicalPartials,
  mergePartials,
  type Partials,
  partialsValue,
} from './exact-sum.js';

/**
 * A candle accumulator whose result depends only on the SET of trades added, never on
 * their arrival order or grouping.
 *
 * Event-time order of trades (used for open and close) is the total order of
 * `compareTradeKeys`: event time `ts`, then `trade_id`, then price, then size:
 * - trade ids that are canonical non-negative integers ("0", "42", no leading zeros,
 *   any length) compare numerically, so exchange sequence numbers order correctly;
 * - a trade without an id sorts before any trade with one; numeric ids sort before
 *   other ids; other ids compare lexicographically by UTF-16 code unit;
 * - trades equal on all four fields are indistinguishable for OHLC, so the rest of the
 *   tie does not matter.
 * open = price of the smallest key, close = price of the largest.
 *
 * volume and Σ price·size are exact sums (see exact-sum.ts), rounded once when read, so
 * they are bit-identical for any order. vwap = Σ(price·size) / Σ size; when the volume is
 * 0 (only zero-size trades) vwap is defined as the close.
 */
export interface TradeKey {
  readonly ts: number;
  readonly tradeId?: string | undefined;
  readonly price: number;
  readonly size: number;
}

const CANONICAL_UINT = /^(?:0|[1-9][0-9]*)$/;

export function compareTradeIds(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  const an = CANONICAL_UINT.test(a);
  const bn = CANONICAL_UINT.test(b);
  if (an !== bn) return an ? -1 : 1;
  if (an && a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareTradeKeys(a: TradeKey, b: TradeKey): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
  const byId = compareTradeIds(a.tradeId, b.tradeId);
  if (byId !== 0) return byId;
  if (a.price !== b.price) return a.price < b.price ? -1 : 1;
  if (a.size !== b.size) return a.size < b.size ? -1 : 1;
  return 0;
}

/** Plain JSON-serialisable accumulator state (snapshots store it as is). */
export interface Accumulator {
  first: TradeKey;
  last: TradeKey;
  high: number;
  low: number;
  trades: number;
  volume: Partials;
  /** Σ price·size. */
  notional: Partials;
}

export function newAccumulator(trade: TradeKey): Accumulator {
  const key = keyOf(trade);
  return {
    first: key,
    last: key,
    high: trade.price,
    low: trade.price,
    trades: 1,
    volume: [trade.size],
    notional: [trade.price * trade.size],
  };
}

/** Adds one trade in place. */
export function addTrade(acc: Accumulator, trade: TradeKey): void {
  if (compareTradeKeys(trade, acc.first) < 0) acc.first = keyOf(trade);
  if (compareTradeKeys(trade, acc.last) > 0) acc.last = keyOf(trade);
  if (trade.price > acc.high) acc.high = trade.price;
  if (trade.price < acc.low) acc.low = trade.price;
  acc.trades += 1;
  addToPartials(acc.volume, trade.size);
  addToPartials(acc.notional, trade.price * trade.size);
}

/**
 * `addTrade` for a trade that is already a key (`tradeId` absent rather than undefined) and is
 * never mutated afterwards: it is kept as `first`/`last` itself, saving a copy per trade.
 */
export function addTradeKey(acc: Accumulator, key: TradeKey): void {
  if (key.ts > acc.last.ts || compareTradeKeys(key, acc.last) > 0) acc.last = key;
  else if (compareTradeKeys(key, acc.first) < 0) acc.first = key;
  const price = key.price;
  if (price > acc.high) acc.high = price;
  if (price < acc.low) acc.low = price;
  acc.trades += 1;
  addToPartials(acc.volume, key.size);
  addToPartials(acc.notional, price * key.size);
}

/** Merges `other` into `acc` in place; exact, associative and commutative. */
export function mergeAccumulator(acc: Accumulator, other: Accumulator): void {
  if (compareTradeKeys(other.first, acc.first) < 0) acc.first = other.first;
  if (compareTradeKeys(other.last, acc.last) > 0) acc.last = other.last;
  if (other.high > acc.high) acc.high = other.high;
  if (other.low < acc.low) acc.low = other.low;
  acc.trades += other.trades;
  mergePartials(acc.volume, other.volume);
  mergePartials(acc.notional, other.notional);
}

export function cloneAccumulator(acc: Accumulator): Accumulator {
  return { ...acc, volume: [...acc.volume], notional: [...acc.notional] };
}

/**
 * A copy whose sums are in canonical form (`canonicalPartials`): equal accumulators give equal
 * copies however their trades were added or merged — what snapshots store.
 */
export function canonicalAccumulator(acc: Accumulator): Accumulator {
  return { ...acc, volume: canonicalPartials(acc.volume), notional: canonicalPartials(acc.notional) };
}

export interface Ohlcv {
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  trades: number;
  vwap: number;
}

export function accumulatorValues(acc: Accumulator): Ohlcv {
  const volume = partialsValue(acc.volume);
  const close = acc.last.price;
  return {
    open: acc.first.price,
    high: acc.high,
    low: acc.low,
    close,
    volume,
    trades: acc.trades,
    vwap: volume === 0 ? close : partialsValue(acc.notional) / volume,
  };
}

/** A finished candle of one symbol and timeframe, times in epoch ms, `end` exclusive. */
export interface CandleRecord extends Ohlcv {
  symbol: string;
  timeframe: Timeframe;
  start: number;
  end: number;
  /** 0 on first publication, +1 on every correction. */
  revision: number;
}

/** The bus message (DESIGN.md "Candle"): times as ISO-8601 UTC strings. */
export function toCandleMessage(c: CandleRecord): Candle {
  return {
    symbol: c.symbol,
    timeframe: c.timeframe,
    start: new Date(c.start).toISOString(),
    end: new Date(c.end).toISOString(),
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
    volume: c.volume,
    trades: c.trades,
    vwap: c.vwap,
    revision: c.revision,
  };
}

function keyOf(t: TradeKey): TradeKey {
  return t.tradeId === undefined
    ? { ts: t.ts, price: t.price, size: t.size }
    : { ts: t.ts, tradeId: t.tradeId, price: t.price, size: t.size };
}

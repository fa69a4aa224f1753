import { TIMEFRAMES, type Tick, type Timeframe } from '@parquetry/lake';
import {
  type Accumulator,
  accumulatorValues,
  addTrade,
  type CandleRecord,
  newAccumulator,
} from '../domain/candle.js';
import { rollUp } from '../domain/rollup.js';
import { bucketStart, TIMEFRAME_MS } from '../domain/time.js';
import { compareCandles } from '../lake/rows.js';

/**
 * Candles rebuilt offline (backfill, update, repair), pure. Built with the accumulators the
 * live aggregator uses, tick by tick in every timeframe, so a rebuild from the same set of
 * ticks gives bit-identical values to the live service (exact sums; open/close by the
 * documented trade order, never by arrival).
 */
export class CandleBuilder {
  private readonly slots: Map<number, Accumulator>[];

  constructor(
    readonly symbol: string,
    readonly timeframes: readonly Timeframe[] = TIMEFRAMES,
  ) {
    this.slots = timeframes.map(() => new Map());
  }

  /** Adds one trade of `symbol` (deduplication is the caller's). */
  add(tick: Pick<Tick, 'ts' | 'price' | 'size' | 'trade_id'>): void {
    const trade = { ts: tick.ts, tradeId: tick.trade_id, price: tick.price, size: tick.size };
    for (let i = 0; i < this.timeframes.length; i++) {
      const start = bucketStart(this.timeframes[i]!, tick.ts);
      const map = this.slots[i]!;
      const acc = map.get(start);
      if (acc) addTrade(acc, trade);
      else map.set(start, newAccumulator(trade));
    }
  }

  /** Every candle built so far (revision 0), sorted (compareCandles). */
  candles(): CandleRecord[] {
    const out: CandleRecord[] = [];
    this.timeframes.forEach((timeframe, i) => {
      for (const [start, acc] of this.slots[i]!) {
        out.push({
          symbol: this.symbol,
          timeframe,
          start,
          end: start + TIMEFRAME_MS[timeframe],
          ...accumulatorValues(acc),
          revision: 0,
        });
      }
    });
    return out.sort(compareCandles);
  }
}

/** Higher timeframes from finished 1m candles of one symbol (domain rollUp), revision 0. */
export function rollUpCandles(
  oneMinute: readonly CandleRecord[],
  timeframes: readonly Timeframe[],
): CandleRecord[] {
  const out: CandleRecord[] = [];
  const bySymbol = new Map<string, CandleRecord[]>();
  for (const c of oneMinute) {
    if (c.timeframe !== '1m') continue;
    const list = bySymbol.get(c.symbol);
    if (list) list.push(c);
    else bySymbol.set(c.symbol, [c]);
  }
  for (const [symbol, bars] of bySymbol) {
    for (const timeframe of timeframes) {
      if (timeframe === '1m') continue;
      for (const b of rollUp(bars, timeframe)) out.push({ ...b, symbol, timeframe, revision: 0 });
    }
  }
  return out.sort(compareCandles);
}

/** Same values (revision aside): what decides whether a rebuilt candle changes the lake. */
export function sameValues(a: CandleRecord, b: CandleRecord): boolean {
  return (
    a.end === b.end &&
    a.open === b.open &&
    a.high === b.high &&
    a.low === b.low &&
    a.close === b.close &&
    a.volume === b.volume &&
    a.trades === b.trades &&
    a.vwap === b.vwap
  );
}

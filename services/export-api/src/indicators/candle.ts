/**
 * The fields the indicators read. The API's candles (`{ts, open, high, low, close, volume,
 * trades}`) fit this shape as they are; `ts` and `trades` play no part in any formula.
 */
export interface Ohlcv {
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly volume: number;
}

/** Which price a single-series indicator (SMA, EMA, RSI, …) reads from each candle. */
export const PRICE_SOURCES = ['close', 'open', 'high', 'low', 'hl2', 'hlc3', 'ohlc4'] as const;
export type PriceSource = (typeof PRICE_SOURCES)[number];

/** (high + low + close) / 3, the price VWAP weighs by volume (and `hlc3`). */
export function typicalPrice(c: Ohlcv): number {
  return (c.high + c.low + c.close) / 3;
}

function priceOf(c: Ohlcv, source: PriceSource): number {
  switch (source) {
    case 'close':
      return c.close;
    case 'open':
      return c.open;
    case 'high':
      return c.high;
    case 'low':
      return c.low;
    case 'hl2':
      return (c.high + c.low) / 2;
    case 'hlc3':
      return typicalPrice(c);
    case 'ohlc4':
      return (c.open + c.high + c.low + c.close) / 4;
  }
}

export function priceSeries(candles: readonly Ohlcv[], source: PriceSource = 'close'): Float64Array {
  const out = new Float64Array(candles.length);
  for (let i = 0; i < candles.length; i++) out[i] = priceOf(candles[i]!, source);
  return out;
}

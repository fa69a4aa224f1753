import type { Ohlcv } from './candle.js';
import type { Series } from './series.js';
import { exponentialSmoothing, wilderAlpha } from './smoothing.js';

/**
 * True range: max(high, previous close) - min(low, previous close). The first candle has
 * no previous close, so its range is high - low (as `ta` and the fixtures count it).
 */
export function trueRange(candles: readonly Ohlcv[]): Float64Array {
  const out = new Float64Array(candles.length);
  for (let i = 0; i < candles.length; i++) {
    const c = candles[i]!;
    if (i === 0) out[i] = c.high - c.low;
    else {
      const prevClose = candles[i - 1]!.close;
      out[i] = Math.max(c.high, prevClose) - Math.min(c.low, prevClose);
    }
  }
  return out;
}

/**
 * Average true range, Wilder's way (both fixtures, `ta`, StockCharts): the first value, at
 * index period-1, is the mean of the first `period` true ranges (the first being
 * high - low); then ATR_i = ATR_(i-1) + (TR_i - ATR_(i-1)) / period.
 */
export function atr(candles: readonly Ohlcv[], period: number): Series {
  return exponentialSmoothing(trueRange(candles), wilderAlpha(period), { kind: 'mean', count: period });
}

import { nullSeries, type Series, type Values } from './series.js';
import { exponentialSmoothing, type Seed, wilderAlpha } from './smoothing.js';

export interface GainLossAverages {
  avgGain: Series;
  avgLoss: Series;
}

/**
 * Wilder-smoothed (alpha = 1/period) averages of the gains and losses between consecutive
 * values. With seed `ewm` (as `ta` does, and the fixture's Avg Gain / Avg Loss columns)
 * index 0 counts as a change of zero and the averages run from there, starting at 0.
 * With seed `sma` (Wilder's original, StockCharts) the first average, at index period,
 * is the mean of the first `period` changes.
 */
export function gainLossAverages(values: Values, period: number, seed: Seed = 'ewm'): GainLossAverages {
  const n = values.length;
  const gains = new Float64Array(n);
  const losses = new Float64Array(n);
  for (let i = 1; i < n; i++) {
    const change = values[i]! - values[i - 1]!;
    if (change > 0) gains[i] = change;
    else losses[i] = -change;
  }
  const alpha = wilderAlpha(period);
  if (seed === 'sma') {
    const init = { kind: 'mean', count: period } as const;
    return {
      avgGain: exponentialSmoothing(gains, alpha, init, 1),
      avgLoss: exponentialSmoothing(losses, alpha, init, 1),
    };
  }
  return {
    avgGain: exponentialSmoothing(gains, alpha, { kind: 'first' }),
    avgLoss: exponentialSmoothing(losses, alpha, { kind: 'first' }),
  };
}

/**
 * Relative strength index, 100 * avgGain / (avgGain + avgLoss) (the same as
 * 100 - 100 / (1 + RS), without dividing by a zero loss). First defined at index
 * `period`, after `period` changes. Only gains: 100; only losses: 0. No change at all
 * over the averaging (constant prices): 50, neither side stronger. (`ta` and TradingView
 * say 100 there, TA-Lib 0; both read as an extreme for a market that did not move.)
 */
export function rsi(values: Values, period: number, seed: Seed = 'ewm'): Series {
  const { avgGain, avgLoss } = gainLossAverages(values, period, seed);
  const out = nullSeries(values.length);
  for (let i = period; i < values.length; i++) {
    const g = avgGain[i]!;
    const l = avgLoss[i]!;
    // g / (g + l) <= 1 exactly in floating point, so the result never leaves 0..100.
    out[i] = g + l === 0 ? 50 : 100 * (g / (g + l));
  }
  return out;
}

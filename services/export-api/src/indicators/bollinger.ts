import { CompensatedSum } from './compensated-sum.js';
import { nullSeries, type Series, type Values } from './series.js';

export interface BollingerSeries {
  middle: Series;
  upper: Series;
  lower: Series;
  /** (upper - lower) / middle * 100, as StockCharts' BandWidth and `ta` print it */
  width: Series;
  /** %B = (value - lower) / (upper - lower); 0.5 when the bands collapse (no variation) */
  percent_b: Series;
}

export interface MeanStd {
  mean: Series;
  std: Series;
}

/**
 * Mean and population standard deviation (divide by `period`, as Bollinger, StockCharts
 * and `ta` do) of every window of `period` values. O(n). The variance comes from
 * compensated sums of (x - c) and (x - c)^2 with c re-centred on the window mean every
 * `period` steps: sums of raw squares lose the variance to cancellation when prices are
 * large and steady (BTC at 60,000 moving by cents), and the re-centring keeps c close.
 */
export function rollingMeanStd(values: Values, period: number): MeanStd {
  const n = values.length;
  const mean = nullSeries(n);
  const std = nullSeries(n);
  const s1 = new CompensatedSum();
  const s2 = new CompensatedSum();
  let centre = 0;
  for (let i = period - 1; i < n; i++) {
    if ((i - (period - 1)) % period === 0) {
      s1.reset();
      for (let j = i - period + 1; j <= i; j++) s1.add(values[j]!);
      centre = s1.value / period;
      s1.reset();
      s2.reset();
      for (let j = i - period + 1; j <= i; j++) {
        const d = values[j]! - centre;
        s1.add(d);
        s2.add(d * d);
      }
    } else {
      const dIn = values[i]! - centre;
      const dOut = values[i - period]! - centre;
      s1.add(dIn);
      s1.add(-dOut);
      s2.add(dIn * dIn);
      s2.add(-(dOut * dOut));
    }
    const m = s1.value / period;
    mean[i] = centre + m;
    std[i] = Math.sqrt(Math.max(0, s2.value / period - m * m));
  }
  return { mean, std };
}

/** Bollinger bands: SMA(period) ± k population standard deviations. First defined at period-1. */
export function bollinger(values: Values, period: number, k: number): BollingerSeries {
  const n = values.length;
  const { mean, std } = rollingMeanStd(values, period);
  const upper = nullSeries(n);
  const lower = nullSeries(n);
  const width = nullSeries(n);
  const percentB = nullSeries(n);
  for (let i = period - 1; i < n; i++) {
    const m = mean[i]!;
    const u = m + k * std[i]!;
    const l = m - k * std[i]!;
    upper[i] = u;
    lower[i] = l;
    width[i] = m === 0 ? null : ((u - l) / m) * 100;
    percentB[i] = u === l ? 0.5 : (values[i]! - l) / (u - l);
  }
  return { middle: mean, upper, lower, width, percent_b: percentB };
}

import { CompensatedSum, rollingSums } from './compensated-sum.js';
import { nullSeries, type Series, type Values } from './series.js';
import { emaAlpha, exponentialSmoothing, type Seed, seedInit } from './smoothing.js';

/** Simple moving average: mean of the last `period` values; first defined at index period-1. */
export function sma(values: Values, period: number): Series {
  const sums = rollingSums(values, period);
  const out = nullSeries(values.length);
  for (let i = period - 1; i < values.length; i++) out[i] = sums[i]! / period;
  return out;
}

/**
 * Exponential moving average, alpha = 2 / (period + 1). With seed `ewm` the recursion
 * runs from the first value (`ta`, and the fixtures' `short_ema`/`long_ema`) and the first
 * period-1 values are withheld as warm-up; with `sma` it starts from the mean of the first
 * `period` values. Either way the first value is at index period-1.
 */
export function ema(values: Values, period: number, seed: Seed = 'ewm'): Series {
  const out = exponentialSmoothing(values, emaAlpha(period), seedInit(seed, period));
  for (let i = 0; i < Math.min(period - 1, out.length); i++) out[i] = null;
  return out;
}

/**
 * Linearly weighted moving average: weights 1..period, the newest value heaviest, divided
 * by period(period+1)/2. O(n): moving the window one step lowers every weight by one,
 * i.e. numerator' = numerator - (window sum) + period * newest. Both sums are compensated
 * and recomputed every `period` steps, so a long input cannot drift.
 */
export function wma(values: Values, period: number): Series {
  const n = values.length;
  const out = nullSeries(n);
  if (n < period) return out;
  const weightSum = (period * (period + 1)) / 2;
  const numerator = new CompensatedSum();
  const windowSum = new CompensatedSum();
  for (let i = period - 1; i < n; i++) {
    if ((i - (period - 1)) % period === 0) {
      numerator.reset();
      windowSum.reset();
      for (let k = 1; k <= period; k++) {
        const x = values[i - period + k]!;
        numerator.add(k * x);
        windowSum.add(x);
      }
    } else {
      numerator.add(-windowSum.value);
      numerator.add(period * values[i]!);
      windowSum.add(values[i]!);
      windowSum.add(-values[i - period]!);
    }
    out[i] = numerator.value / weightSum;
  }
  return out;
}

import { sumRange } from './compensated-sum.js';
import { nullSeries, type Series, type Values } from './series.js';

/**
 * How an exponential average starts, the one point where libraries disagree:
 * - `ewm`: from the first input on, as pandas `ewm(adjust=False)` and the Python `ta`
 *   library do (the fixtures' convention). Early values lean on the first input.
 * - `sma`: the simple mean of the first `period` inputs, then the recursion (Wilder,
 *   StockCharts, TA-Lib, TradingView).
 * Both converge: the difference shrinks by (1 - alpha) per input.
 */
export const SEEDS = ['ewm', 'sma'] as const;
export type Seed = (typeof SEEDS)[number];

/** Where the recursion s_i = s_(i-1) + alpha * (x_i - s_(i-1)) takes its first value. */
export type SmoothingInit =
  /** s_start = x_start */
  | { readonly kind: 'first' }
  /** s_(start-1) = 0, so s_start = alpha * x_start (the `ta` RSI's averages) */
  | { readonly kind: 'zero' }
  /** s_(start+count-1) = mean(x_start .. x_(start+count-1)); undefined before */
  | { readonly kind: 'mean'; readonly count: number };

/** The EMA's smoothing factor for a period: 2 / (period + 1). */
export function emaAlpha(period: number): number {
  return 2 / (period + 1);
}

/** Wilder's smoothing factor (RSI, ATR): 1 / period. */
export function wilderAlpha(period: number): number {
  return 1 / period;
}

/**
 * Exponential smoothing of `values[start..]`; entries before `start` (and before a
 * `mean` seed is complete) are null. The recursion is a contraction, so rounding errors
 * fade instead of accumulating: no compensation is needed.
 */
export function exponentialSmoothing(values: Values, alpha: number, init: SmoothingInit, start = 0): Series {
  const n = values.length;
  const out = nullSeries(n);
  let first: number;
  let s: number;
  switch (init.kind) {
    case 'first':
      if (start >= n) return out;
      first = start;
      s = values[start]!;
      break;
    case 'zero':
      if (start >= n) return out;
      first = start;
      s = alpha * values[start]!;
      break;
    case 'mean':
      first = start + init.count - 1;
      if (first >= n) return out;
      s = sumRange(values, start, first + 1) / init.count;
      break;
  }
  out[first] = s;
  for (let i = first + 1; i < n; i++) {
    s += alpha * (values[i]! - s);
    out[i] = s;
  }
  return out;
}

/** The start rule of an average over `period` inputs for a public seed choice. */
export function seedInit(seed: Seed, period: number): SmoothingInit {
  return seed === 'sma' ? { kind: 'mean', count: period } : { kind: 'first' };
}

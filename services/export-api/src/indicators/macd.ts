import { nullSeries, type Series, type Values } from './series.js';
import { emaAlpha, exponentialSmoothing, type Seed, seedInit } from './smoothing.js';

export interface MacdParams {
  fast: number;
  slow: number;
  signal: number;
  seed?: Seed;
}

export interface MacdSeries {
  macd: Series;
  signal: Series;
  histogram: Series;
}

/**
 * MACD line = EMA(fast) - EMA(slow), first defined when the longer EMA is (index
 * max(fast, slow) - 1). Signal = EMA(signal) of the MACD line, started at the line's first
 * value (seed `ewm`, as `ta`) or at the mean of its first `signal` values (seed `sma`), so
 * first defined `signal - 1` later. Histogram = line - signal.
 */
export function macd(values: Values, params: MacdParams): MacdSeries {
  const seed = params.seed ?? 'ewm';
  const n = values.length;
  const fastEma = exponentialSmoothing(values, emaAlpha(params.fast), seedInit(seed, params.fast));
  const slowEma = exponentialSmoothing(values, emaAlpha(params.slow), seedInit(seed, params.slow));
  const lineStart = Math.max(params.fast, params.slow) - 1;
  const line = nullSeries(n);
  // The signal reads the line from lineStart on; the zeros before it are never read.
  const lineValues = new Float64Array(n);
  for (let i = lineStart; i < n; i++) {
    const v = fastEma[i]! - slowEma[i]!;
    line[i] = v;
    lineValues[i] = v;
  }
  const signal = exponentialSmoothing(
    lineValues,
    emaAlpha(params.signal),
    seedInit(seed, params.signal),
    lineStart,
  );
  const signalStart = lineStart + params.signal - 1;
  const histogram = nullSeries(n);
  for (let i = 0; i < n; i++) {
    if (i < signalStart) signal[i] = null;
    else histogram[i] = line[i]! - signal[i]!;
  }
  return { macd: line, signal, histogram };
}

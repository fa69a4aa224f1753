import { InvalidInputError } from '@parquetry/service';
import { z } from 'zod';
import { atr } from './atr.js';
import { bollinger } from './bollinger.js';
import { type Ohlcv, PRICE_SOURCES, priceSeries } from './candle.js';
import { macd } from './macd.js';
import { ema, sma, wma } from './moving-averages.js';
import { rsi } from './rsi.js';
import type { Series } from './series.js';
import { SEEDS } from './smoothing.js';
import { VWAP_MODES, vwap } from './vwap.js';

/**
 * The indicators export-api serves at `GET /v1/candles/indicators`: for each, its
 * parameters (a zod schema with defaults and bounds; numbers are coerced, since they
 * arrive as query-string text; unknown parameters are rejected), the series it returns,
 * and a pure compute over candles.
 */

export { atr, trueRange } from './atr.js';
export { type BollingerSeries, bollinger, rollingMeanStd } from './bollinger.js';
export { type Ohlcv, PRICE_SOURCES, type PriceSource, priceSeries, typicalPrice } from './candle.js';
export { type MacdParams, type MacdSeries, macd } from './macd.js';
export { ema, sma, wma } from './moving-averages.js';
export { gainLossAverages, rsi } from './rsi.js';
export type { Series } from './series.js';
export { SEEDS, type Seed } from './smoothing.js';
export { VWAP_MODES, type VwapMode, type VwapParams, vwap } from './vwap.js';

export const MAX_PERIOD = 1000;

export type SeriesMap = Record<string, Series>;

export interface IndicatorDefinition<S extends z.ZodType = z.ZodType> {
  readonly description: string;
  /** names of the series compute returns, in order */
  readonly series: readonly string[];
  readonly params: S;
  /**
   * How many candles precede the first one where every series has a value: the route
   * reads that many extra candles before `start` so the answer begins defined. (EMA-based
   * values keep a trace of where they started for a while after; see `Seed`.)
   */
  lookback(params: z.output<S>): number;
  compute(candles: readonly Ohlcv[], params: z.output<S>): SeriesMap;
}

function define<S extends z.ZodType>(definition: IndicatorDefinition<S>): IndicatorDefinition<S> {
  return definition;
}

const period = (fallback: number) =>
  z.coerce.number().int().min(1).max(MAX_PERIOD).default(fallback).describe('window length in candles');
const source = z.enum(PRICE_SOURCES).default('close').describe('price read from each candle');
const seed = z
  .enum(SEEDS)
  .default('ewm')
  .describe('start of the exponential averages: ewm = from the first candle (ta), sma = from a simple mean');

export const indicators = {
  sma: define({
    description: 'Simple moving average',
    series: ['sma'],
    params: z.strictObject({ period: period(20), source }),
    lookback: (p) => p.period - 1,
    compute: (candles, p) => ({ sma: sma(priceSeries(candles, p.source), p.period) }),
  }),
  ema: define({
    description: 'Exponential moving average, alpha = 2 / (period + 1)',
    series: ['ema'],
    params: z.strictObject({ period: period(20), source, seed }),
    lookback: (p) => p.period - 1,
    compute: (candles, p) => ({ ema: ema(priceSeries(candles, p.source), p.period, p.seed) }),
  }),
  wma: define({
    description: 'Linearly weighted moving average (weights 1..period)',
    series: ['wma'],
    params: z.strictObject({ period: period(20), source }),
    lookback: (p) => p.period - 1,
    compute: (candles, p) => ({ wma: wma(priceSeries(candles, p.source), p.period) }),
  }),
  rsi: define({
    description: 'Relative strength index with Wilder smoothing (0..100)',
    series: ['rsi'],
    params: z.strictObject({ period: period(14), source, seed }),
    lookback: (p) => p.period,
    compute: (candles, p) => ({ rsi: rsi(priceSeries(candles, p.source), p.period, p.seed) }),
  }),
  macd: define({
    description:
      'Moving average convergence/divergence: EMA(fast) - EMA(slow), its EMA(signal), and the difference',
    series: ['macd', 'signal', 'histogram'],
    params: z
      .strictObject({
        fast: period(12).describe('fast EMA period'),
        slow: period(26).describe('slow EMA period'),
        signal: period(9).describe('signal EMA period'),
        source,
        seed,
      })
      .refine((p) => p.fast < p.slow, { message: 'fast must be shorter than slow', path: ['fast'] }),
    lookback: (p) => Math.max(p.fast, p.slow) - 1 + p.signal - 1,
    compute: (candles, p) => ({ ...macd(priceSeries(candles, p.source), p) }),
  }),
  bollinger: define({
    description: 'Bollinger bands: SMA ± k population standard deviations, band width (%) and %B',
    series: ['middle', 'upper', 'lower', 'width', 'percent_b'],
    params: z.strictObject({
      period: period(20),
      k: z.coerce.number().gt(0).max(10).default(2).describe('band distance in standard deviations'),
      source,
    }),
    lookback: (p) => p.period - 1,
    compute: (candles, p) => ({ ...bollinger(priceSeries(candles, p.source), p.period, p.k) }),
  }),
  atr: define({
    description: 'Average true range with Wilder smoothing, seeded by the mean of the first true ranges',
    series: ['atr'],
    params: z.strictObject({ period: period(14) }),
    lookback: (p) => p.period - 1,
    compute: (candles, p) => ({ atr: atr(candles, p.period) }),
  }),
  vwap: define({
    description: 'Volume-weighted average of the typical price (high + low + close) / 3',
    series: ['vwap'],
    params: z.strictObject({
      period: period(14),
      mode: z
        .enum(VWAP_MODES)
        .default('rolling')
        .describe('rolling: the last `period` candles; cumulative: from the first candle returned'),
    }),
    lookback: (p) => (p.mode === 'cumulative' ? 0 : p.period - 1),
    compute: (candles, p) => ({ vwap: vwap(candles, p) }),
  }),
} as const;

export type IndicatorName = keyof typeof indicators;

export const INDICATOR_NAMES = Object.keys(indicators) as IndicatorName[];

export function isIndicatorName(name: string): name is IndicatorName {
  return Object.hasOwn(indicators, name);
}

export interface IndicatorResult {
  indicator: IndicatorName;
  /** the parameters after defaults, as used */
  params: Record<string, unknown>;
  lookback: number;
  series: SeriesMap;
}

/** Throws InvalidInputError (400) naming the valid indicators. */
export function indicatorDefinition(name: string): IndicatorDefinition {
  if (!isIndicatorName(name)) {
    throw new InvalidInputError(`unknown indicator "${name}"`, {
      code: 'unknown_indicator',
      details: { indicators: INDICATOR_NAMES },
    });
  }
  return indicators[name] as unknown as IndicatorDefinition;
}

/**
 * Validates `rawParams` (query-string values are fine) against the indicator's schema and
 * computes it. A bad name throws InvalidInputError; bad parameters throw the ZodError,
 * which export-api's error handler answers with 400 and the issues.
 */
export function computeIndicator(
  name: string,
  candles: readonly Ohlcv[],
  rawParams: unknown = {},
): IndicatorResult {
  const definition = indicatorDefinition(name);
  const params = definition.params.parse(rawParams) as Record<string, unknown>;
  return {
    indicator: name as IndicatorName,
    params,
    lookback: definition.lookback(params),
    series: definition.compute(candles, params),
  };
}

export interface IndicatorDescription {
  name: IndicatorName;
  description: string;
  series: readonly string[];
  /** JSON Schema of the accepted parameters, with defaults and bounds */
  params: Record<string, unknown>;
}

/** For listing the indicators (and the OpenAPI document). */
export function describeIndicators(): IndicatorDescription[] {
  return INDICATOR_NAMES.map((name) => {
    const { $schema: _, ...params } = z.toJSONSchema(indicators[name].params, { io: 'input' });
    return { name, description: indicators[name].description, series: indicators[name].series, params };
  });
}

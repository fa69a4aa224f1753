import { parseIsoTime, SYMBOL_PATTERN, symbolName, TIMEFRAMES } from '@parquetry/lake';
import { z } from 'zod';

/**
 * Requests and responses of the candle routes: what the routes validate with and what the
 * OpenAPI document shows (candles/module.ts). Query values arrive as text.
 */

export const MAX_CANDLES = 10_000;
export const DEFAULT_CANDLES = 1000;
export const MAX_SUMMARY_CANDLES = 100_000;

/** ISO-8601 (a time without a zone is UTC) or epoch milliseconds → epoch ms. */
export const timeParam = z
  .string()
  .max(40)
  .transform((v, ctx) => {
    const ms = /^-?\d{1,16}$/.test(v) ? Number(v) : parseIsoTime(v);
    if (ms === undefined || !Number.isSafeInteger(ms)) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be an ISO-8601 date or date-time, or epoch milliseconds',
      });
      return z.NEVER;
    }
    return ms;
  });

export const timeframeParam = z.enum(TIMEFRAMES);

const windowShape = {
  symbol: symbolName
    .optional()
    .describe('default: the configured default symbol, or the only symbol the lake has in this timeframe'),
  timeframe: timeframeParam,
  start: timeParam
    .optional()
    .describe('first candle start, inclusive; given: the first `limit` candles from here'),
  end: timeParam
    .optional()
    .describe('candle start before which to stop, exclusive; alone: the last `limit` candles before it'),
};

const startBeforeEnd = (q: { start?: number | undefined; end?: number | undefined }) =>
  q.start === undefined || q.end === undefined || q.start < q.end;
const startBeforeEndIssue = { message: 'start must be before end', path: ['end'] };

export const candlesQuerySchema = z
  .strictObject({
    ...windowShape,
    limit: z.coerce.number().int().min(1).max(MAX_CANDLES).default(DEFAULT_CANDLES),
  })
  .refine(startBeforeEnd, startBeforeEndIssue);

export const latestQuerySchema = z.strictObject({ symbol: windowShape.symbol, timeframe: timeframeParam });

export const summaryQuerySchema = z
  .strictObject({
    ...windowShape,
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(MAX_SUMMARY_CANDLES)
      .default(MAX_SUMMARY_CANDLES)
      .describe('at most this many candles (the last ones, or the first from `start`)'),
  })
  .refine(startBeforeEnd, startBeforeEndIssue);

/** The window part of an indicator request; every other parameter belongs to the indicator. */
export const indicatorWindowSchema = z
  .strictObject({
    ...windowShape,
    limit: z.coerce.number().int().min(1).max(MAX_CANDLES).default(DEFAULT_CANDLES),
    indicator: z.string().min(1).max(32).describe('sma, ema, wma, rsi, macd, bollinger, atr or vwap'),
  })
  .refine(startBeforeEnd, startBeforeEndIssue);
export const INDICATOR_WINDOW_KEYS = ['symbol', 'timeframe', 'start', 'end', 'limit', 'indicator'] as const;

export const timeframesQuerySchema = z.strictObject({ symbol: symbolName });

export const warmRequestSchema = z
  .strictObject({
    symbols: z
      .array(z.string().regex(SYMBOL_PATTERN, 'must match [A-Za-z0-9_-]{1,32}'))
      .min(1)
      .max(1000)
      .optional()
      .describe('default: every symbol in the lake this key may read'),
    timeframes: z.array(timeframeParam).min(1).max(TIMEFRAMES.length).optional().describe('default: all'),
    partitions: z
      .number()
      .int()
      .min(1)
      .max(36)
      .default(2)
      .describe('newest partitions of each series (a month of 1m, 5m, 15m; a year of 1h, 4h; all of 1d)'),
  })
  .describe('what to read into the candle cache');

export const dataSourceSchema = z
  .enum(['cache', 'lake', 'postgres'])
  .describe('cache: memory only; lake: Parquet files were read; postgres: the fallback table');

export const candleSchema = z.object({
  ts: z.string().describe('candle start, ISO-8601 UTC'),
  open: z.number(),
  high: z.number(),
  low: z.number(),
  close: z.number(),
  volume: z.number(),
  trades: z.number().int(),
});

export const candlesResponseSchema = z.object({
  symbol: z.string(),
  timeframe: timeframeParam,
  data_source: dataSourceSchema,
  candles: z.array(candleSchema).describe('oldest first'),
});

export const latestResponseSchema = z.object({
  symbol: z.string(),
  timeframe: timeframeParam,
  data_source: dataSourceSchema,
  candle: candleSchema,
});

export const summaryResponseSchema = z.object({
  symbol: z.string(),
  timeframe: timeframeParam,
  data_source: dataSourceSchema,
  count: z.number().int().nonnegative(),
  start: z.string().nullable().describe('first candle start'),
  end: z.string().nullable().describe('last candle start'),
  open: z.number().nullable().describe('open of the first candle'),
  close: z.number().nullable().describe('close of the last candle'),
  high: z.number().nullable().describe('highest high'),
  low: z.number().nullable().describe('lowest low'),
  avg_close: z.number().nullable(),
  volume: z.number().describe('sum of volumes'),
  trades: z.number().int().describe('sum of trades'),
  vwap: z.number().nullable().describe('volume-weighted average of the candles’ VWAPs'),
});

export const indicatorResponseSchema = z.object({
  symbol: z.string(),
  timeframe: timeframeParam,
  data_source: dataSourceSchema,
  indicator: z.string(),
  params: z.record(z.string(), z.unknown()).describe('the parameters used, defaults filled in'),
  lookback: z.number().int().describe('candles before the first one returned that were read to compute it'),
  series: z.array(z.string()),
  values: z
    .array(z.object({ ts: z.string() }).catchall(z.number().nullable()))
    .describe('one per candle, oldest first: `ts` and each series (null while undefined)'),
});

export const timeframesResponseSchema = z.object({
  symbol: z.string(),
  data_source: z.enum(['lake', 'postgres']),
  timeframes: z.array(
    z.object({
      timeframe: timeframeParam,
      first: z.string().describe('first candle start'),
      last: z.string().describe('last candle start'),
    }),
  ),
});

export const warmResponseSchema = z.object({
  series: z.number().int(),
  loaded: z.number().int().describe('partitions read into the cache'),
  cached: z.number().int().describe('partitions already cached'),
  skipped: z.number().int().describe('partitions too large for the cache'),
  candles: z.number().int(),
  cache: z.object({ bytes: z.number().int(), max_bytes: z.number().int(), partitions: z.number().int() }),
});

export const routeLatencySchema = z.object({
  count: z.number().int(),
  p50_ms: z.number().nullable(),
  p90_ms: z.number().nullable(),
  p99_ms: z.number().nullable(),
  max_ms: z.number().nullable(),
});

export const statsResponseSchema = z.object({
  cache: z.object({
    enabled: z.boolean(),
    hits: z.number().int().describe('candle reads answered from memory alone'),
    misses: z.number().int().describe('candle reads that read files or PostgreSQL'),
    hit_ratio: z.number().nullable(),
    loads: z.number().int().describe('partitions read into the cache'),
    evictions: z.number().int(),
    invalidations: z.number().int().describe('cached partitions dropped because their files changed'),
    bytes: z.number().int(),
    max_bytes: z.number().int(),
    partitions: z.number().int(),
    live_candles: z.number().int().describe('closed candles from the bus not yet seen in a file'),
  }),
  routes: z
    .record(z.string(), routeLatencySchema)
    .describe('`METHOD /route` → latency over the last 2,048 requests (count: all requests)'),
  since: z.string().describe('when these statistics started'),
});

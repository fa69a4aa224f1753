import { symbolName } from '@parquetry/lake';
import { env } from '@parquetry/service';
import { z } from 'zod';

/**
 * The candle routes' own settings (the cache size is CACHE_MB of the service config). Parsed in
 * main() with loadConfig, next to exportApiConfigSchema.
 */
export const candleConfigSchema = z.object({
  /** PostgreSQL of pg-loader: when set, the fallback for candles the lake has not or cannot serve. */
  DATABASE_URL: z.string().min(1).optional(),
  /** The candles table pg-loader fills, `table` or `schema.table`. */
  CANDLE_PG_TABLE: z
    .string()
    .regex(/^(?:[A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be table or schema.table')
    .default('candles'),
  /** The symbol of requests that name none (else: the lake's only symbol of that timeframe, or 400). */
  CANDLE_DEFAULT_SYMBOL: symbolName.optional(),
  /** Full re-read of the catalog's candle partitions this often (commit notices keep it current between). */
  CANDLE_CATALOG_REFRESH_S: env.int(300, 0),
  /** DuckDB connections for candle reads (apart from the export pool). */
  CANDLE_DUCKDB_CONNECTIONS: env.int(2, 1, 32),
  /** Closed candles kept per series until a file holds them. */
  CANDLE_LIVE_PER_SERIES: env.int(5000, 1),
});

export type CandleConfig = z.infer<typeof candleConfigSchema>;

export function pgTableOf(value: string): { schema: string; name: string } {
  const [a, b] = value.split('.');
  return b === undefined ? { schema: 'public', name: a! } : { schema: a!, name: b };
}

import type { Timeframe } from '@parquetry/lake';
import { TIMEFRAME_MS } from '../src/domain/time.js';
import type { Duck } from './duckdb.js';
import { BINANCE_CAPTURES } from './market-data.js';

/**
 * The independent oracle for the real Binance captures: DuckDB parses the raw gzip files on
 * its own (read_csv + JSON functions, no Parquetry code) into a `trades` table, and candles
 * are plain SQL over it — open/close by arg_min/arg_max on (time, trade id).
 */
export async function loadBinanceTrades(duck: Duck, table = 'trades'): Promise<void> {
  const files = BINANCE_CAPTURES.map((f) => `'${f}'`).join(', ');
  await duck.conn.run(`
    CREATE TABLE ${table} AS
    WITH lines AS (
      SELECT line FROM read_csv([${files}], columns = {'line': 'VARCHAR'}, delim = E'\\x01', quote = '',
        escape = '', header = false, auto_detect = false, compression = 'gzip', max_line_size = 10000000)
    ), msgs AS (
      SELECT CAST(substr(line, strpos(line, ' ') + 1) AS JSON) AS j FROM lines
    ), events AS (
      SELECT coalesce(j -> '$.data', j) AS d FROM msgs
    )
    SELECT d ->> '$.s' AS symbol, CAST(d ->> '$.T' AS BIGINT) AS ts, CAST(d ->> '$.t' AS BIGINT) AS tid,
           CAST(d ->> '$.p' AS DOUBLE) AS price, CAST(d ->> '$.q' AS DOUBLE) AS size
    FROM events WHERE d ->> '$.e' = 'trade'`);
}

export interface SqlCandle {
  symbol: string;
  start: number;
  end: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  trades: number;
  vwap: number;
}

/** Candles of `tf` for every symbol of `table` (columns symbol, ts ms, tid, price, size), sorted. */
export async function sqlCandles(duck: Duck, tf: Timeframe, table = 'trades'): Promise<SqlCandle[]> {
  const ms = TIMEFRAME_MS[tf];
  const rows = await duck.rows<SqlCandle>(`
    SELECT symbol, CAST(b AS DOUBLE) AS "start", CAST(b + ${ms} AS DOUBLE) AS "end",
           arg_min(price, (ts, tid)) AS open, max(price) AS high, min(price) AS low,
           arg_max(price, (ts, tid)) AS close, sum(size) AS volume, CAST(count(*) AS INTEGER) AS trades,
           CASE WHEN sum(size) = 0 THEN arg_max(price, (ts, tid)) ELSE sum(price * size) / sum(size) END AS vwap
    FROM (SELECT *, (ts // ${ms}) * ${ms} AS b FROM ${table}) GROUP BY symbol, b ORDER BY symbol, b`);
  return rows;
}

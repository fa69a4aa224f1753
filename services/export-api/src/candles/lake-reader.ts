import type { DuckDBConnection } from '@duckdb/node-api';
import { sqlString } from '@parquetry/lake';
import type { StoredCandle } from './types.js';

/**
 * Candle reads from Parquet files with DuckDB. Paths are local paths the object store gave for
 * catalog entries, and times are numbers the routes validated, rendered here: no request text
 * enters the SQL. A file may hold several revisions of a candle; the highest wins (ADR 0003).
 */

const COLUMNS =
  'CAST(epoch_ms("start") AS DOUBLE) AS s, CAST(open AS DOUBLE) AS o, CAST(high AS DOUBLE) AS h, ' +
  'CAST(low AS DOUBLE) AS l, CAST(close AS DOUBLE) AS c, CAST(volume AS DOUBLE) AS v, ' +
  'CAST(trades AS DOUBLE) AS t, CAST(vwap AS DOUBLE) AS w, CAST(revision AS DOUBLE) AS r';

const LATEST = 'QUALIFY row_number() OVER (PARTITION BY "start" ORDER BY revision DESC) = 1';

function source(paths: readonly string[]): string {
  return `read_parquet([${paths.map(sqlString).join(', ')}], hive_partitioning = false, union_by_name = true)`;
}

/** A TIMESTAMPTZ literal of an epoch-ms number (never text from a request). */
function timeLiteral(ms: number): string {
  if (!Number.isSafeInteger(ms)) throw new Error(`not an epoch-ms integer: ${ms}`);
  return `TIMESTAMPTZ ${sqlString(new Date(ms).toISOString())}`;
}

async function readCandles(conn: DuckDBConnection, sql: string): Promise<StoredCandle[]> {
  const reader = await conn.runAndReadAll(sql);
  const cols = reader.getColumnsJS() as (number | null)[][];
  const [s, o, h, l, c, v, t, w, r] = cols as number[][];
  const n = s?.length ?? 0;
  const out = new Array<StoredCandle>(n);
  for (let i = 0; i < n; i++) {
    out[i] = {
      start: s![i]!,
      open: o![i]!,
      high: h![i]!,
      low: l![i]!,
      close: c![i]!,
      volume: v![i]!,
      trades: t![i] ?? 0,
      vwap: w![i]!,
      revision: r![i] ?? 0,
    };
  }
  return out;
}

/** Every candle of these files (one partition), the highest revision of each, oldest first. */
export async function readAllCandles(
  conn: DuckDBConnection,
  paths: readonly string[],
): Promise<StoredCandle[]> {
  if (paths.length === 0) return [];
  return await readCandles(conn, `SELECT ${COLUMNS} FROM ${source(paths)} ${LATEST} ORDER BY "start"`);
}

export interface WindowQuery {
  /** Inclusive; undefined or -Infinity: from the first candle. */
  startMs?: number | undefined;
  /** Exclusive; undefined or +Infinity: to the last candle. */
  endMs?: number | undefined;
  limit: number;
  /** first: the first `limit` candles from `startMs`; last: the last `limit` before `endMs`. */
  from: 'first' | 'last';
}

/** One window of these files, the highest revision of each candle, oldest first. */
export async function readCandleWindow(
  conn: DuckDBConnection,
  paths: readonly string[],
  q: WindowQuery,
): Promise<StoredCandle[]> {
  if (paths.length === 0 || q.limit <= 0) return [];
  const where: string[] = [];
  if (q.startMs !== undefined && Number.isFinite(q.startMs))
    where.push(`"start" >= ${timeLiteral(q.startMs)}`);
  if (q.endMs !== undefined && Number.isFinite(q.endMs)) where.push(`"start" < ${timeLiteral(q.endMs)}`);
  const limit = Math.floor(q.limit);
  const sql =
    `SELECT ${COLUMNS} FROM ${source(paths)}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ` +
    `${LATEST} ORDER BY "start" ${q.from === 'last' ? 'DESC' : 'ASC'} LIMIT ${limit}`;
  const rows = await readCandles(conn, sql);
  return q.from === 'last' ? rows.reverse() : rows;
}

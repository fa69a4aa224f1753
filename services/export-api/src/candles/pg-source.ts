import type { Timeframe } from '@parquetry/lake';
import type pg from 'pg';
import type { CandleQuery, StoredCandle } from './types.js';

/**
 * The fallback source: the candles table pg-loader fills from the lake (`candles`, lake column
 * names, one row per candle revision). Used when the lake has no data for a request or cannot
 * be read. Values are bound parameters; the table name comes from configuration and is quoted.
 */
export interface PgTable {
  schema: string;
  name: string;
}

const ident = (s: string) => `"${s.replaceAll('"', '""')}"`;

/** 42P01 undefined_table, 3F000 invalid_schema_name: pg-loader has not loaded candles yet. */
const MISSING = new Set(['42P01', '3F000']);

export class PostgresCandles {
  private readonly table: string;

  constructor(
    private readonly pool: Pick<pg.Pool, 'query'>,
    table: PgTable = { schema: 'public', name: 'candles' },
  ) {
    this.table = `${ident(table.schema)}.${ident(table.name)}`;
  }

  private async query<R extends pg.QueryResultRow>(sql: string, values: unknown[]): Promise<R[]> {
    try {
      return (await this.pool.query<R>(sql, values)).rows;
    } catch (err) {
      if (MISSING.has((err as { code?: string }).code ?? '')) return [];
      throw err;
    }
  }

  /** The query's window (CandleQuery semantics), oldest first. */
  async read(q: CandleQuery): Promise<StoredCandle[]> {
    const fromFirst = q.startMs !== undefined;
    const start =
      q.startMs !== undefined && Number.isFinite(q.startMs) ? new Date(q.startMs).toISOString() : '-infinity';
    const end =
      q.endMs !== undefined && Number.isFinite(q.endMs) ? new Date(q.endMs).toISOString() : 'infinity';
    const rows = await this.query<Record<string, unknown>>(
      `SELECT (extract(epoch FROM "start") * 1000)::float8 AS start, open::float8 AS open, high::float8 AS high, ` +
        `low::float8 AS low, close::float8 AS close, volume::float8 AS volume, trades::float8 AS trades, ` +
        `vwap::float8 AS vwap, revision::float8 AS revision FROM (` +
        `SELECT DISTINCT ON ("start") * FROM ${this.table} ` +
        `WHERE symbol = $1 AND timeframe = $2 AND "start" >= $3::timestamptz AND "start" < $4::timestamptz ` +
        `ORDER BY "start", revision DESC) latest ORDER BY "start" ${fromFirst ? 'ASC' : 'DESC'} LIMIT $5`,
      [q.symbol, q.timeframe, start, end, q.limit],
    );
    const out = rows.map(
      (r): StoredCandle => ({
        start: Math.round(Number(r.start)),
        open: Number(r.open),
        high: Number(r.high),
        low: Number(r.low),
        close: Number(r.close),
        volume: Number(r.volume),
        trades: Number(r.trades ?? 0),
        vwap: Number(r.vwap),
        revision: Number(r.revision ?? 0),
      }),
    );
    return fromFirst ? out : out.reverse();
  }

  /** Per timeframe of a symbol: first and last candle start (epoch ms). */
  async ranges(symbol: string): Promise<{ timeframe: Timeframe; firstMs: number; lastMs: number }[]> {
    const rows = await this.query<{ timeframe: Timeframe; first: number; last: number }>(
      `SELECT timeframe, (extract(epoch FROM min("start")) * 1000)::float8 AS first, ` +
        `(extract(epoch FROM max("start")) * 1000)::float8 AS last FROM ${this.table} WHERE symbol = $1 GROUP BY timeframe`,
      [symbol],
    );
    return rows.map((r) => ({
      timeframe: r.timeframe,
      firstMs: Math.round(Number(r.first)),
      lastMs: Math.round(Number(r.last)),
    }));
  }
}

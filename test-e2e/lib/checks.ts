/**
 * The end state, read from outside the services: the lake through the operator CLI (`lake files
 * <dataset> --json`, the catalog's live snapshot) and DuckDB over those files; PostgreSQL with
 * plain SQL; candles over HTTP. The expected values come from the inputs alone: the fixture
 * batches and an independent DuckDB parse of the raw Binance captures.
 */
import { spawnSync } from 'node:child_process';
import { DuckDBInstance } from '@duckdb/node-api';
import { openObjectStore } from '@parquetry/lake';
import type { FixtureBatch } from '@parquetry/testkit';
import pg from 'pg';
import { BINANCE_CAPTURES, type Tick } from './feeds.js';
import { CLI_MAIN, ROOT } from './procs.js';

export interface Duck {
  rows<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  run(sql: string): Promise<void>;
  close(): void;
}

export async function openDuck(): Promise<Duck> {
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const conn = await instance.connect();
  return {
    async rows<T>(sql: string) {
      return (await conn.runAndReadAll(sql)).getRowObjectsJS() as T[];
    },
    async run(sql: string) {
      await conn.run(sql);
    },
    close() {
      conn.closeSync();
      instance.closeSync();
    },
  };
}

/** `parquetry lake files <dataset> --json`, run as an operator would. */
export function cliLakeFiles(dataset: string, env: Record<string, string>): string[] {
  const r = spawnSync(process.execPath, [CLI_MAIN, 'lake', 'files', dataset, '--json'], {
    cwd: ROOT,
    env: { ...process.env, ...env, LOG_LEVEL: 'error' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`parquetry lake files ${dataset} failed (${r.status}):\n${r.stderr}`);
  return (JSON.parse(r.stdout) as { files: string[] }).files;
}

/** Local paths DuckDB can open: the files themselves, or (S3 lake) downloaded copies. */
export async function localCopies(files: readonly string[], env: Record<string, string>): Promise<string[]> {
  const lakeUrl = env.LAKE_URL!;
  if (!lakeUrl.startsWith('s3://')) return [...files];
  const root = lakeUrl.replace(/\/+$/, '');
  const store = openObjectStore(lakeUrl, env);
  try {
    return await Promise.all(files.map((f) => store.localPath(f.slice(root.length + 1))));
  } finally {
    await store.close();
  }
}

const list = (paths: readonly string[]) => `[${paths.map((p) => `'${p.replaceAll("'", "''")}'`).join(', ')}]`;

/** Rows per batch id: equal maps mean every product landed, once. */
export type BatchCounts = Record<string, number>;

export function expectedBatchCounts(batches: readonly FixtureBatch[]): BatchCounts {
  const out: BatchCounts = {};
  for (const b of batches) out[b.batch_id] = (out[b.batch_id] ?? 0) + b.products.length;
  return out;
}

export async function parquetBatchCounts(duck: Duck, paths: readonly string[]): Promise<BatchCounts> {
  if (paths.length === 0) return {};
  const rows = await duck.rows<{ batch_id: string; n: number }>(
    `SELECT batch_id, count(*)::INTEGER AS n FROM read_parquet(${list(paths)}, union_by_name = true) GROUP BY 1`,
  );
  return Object.fromEntries(rows.map((r) => [r.batch_id, r.n]));
}

export interface TickStats {
  rows: number;
  distinct: number;
  /** Per symbol: rows, and the sum of sizes rounded to 1e-6. */
  bySymbol: Record<string, { rows: number; volume: number }>;
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

export function expectedTickStats(ticks: readonly Tick[]): TickStats {
  const bySymbol: TickStats['bySymbol'] = {};
  for (const t of ticks) {
    const s = bySymbol[t.symbol] ?? { rows: 0, volume: 0 };
    bySymbol[t.symbol] = s;
    s.rows++;
    s.volume += t.size;
  }
  for (const s of Object.values(bySymbol)) s.volume = round6(s.volume);
  const distinct = new Set(ticks.map((t) => `${t.symbol}/${t.trade_id}`)).size;
  return { rows: ticks.length, distinct, bySymbol };
}

export async function parquetTickStats(duck: Duck, paths: readonly string[]): Promise<TickStats> {
  if (paths.length === 0) return { rows: 0, distinct: 0, bySymbol: {} };
  const src = `read_parquet(${list(paths)}, union_by_name = true)`;
  const [all] = await duck.rows<{ rows: number; distinct: number }>(
    `SELECT count(*)::INTEGER AS rows, count(DISTINCT (symbol, trade_id))::INTEGER AS distinct FROM ${src}`,
  );
  const per = await duck.rows<{ symbol: string; rows: number; volume: number }>(
    `SELECT symbol, count(*)::INTEGER AS rows, sum(size)::DOUBLE AS volume FROM ${src} GROUP BY 1`,
  );
  return {
    rows: all!.rows,
    distinct: all!.distinct,
    bySymbol: Object.fromEntries(per.map((r) => [r.symbol, { rows: r.rows, volume: round6(r.volume) }])),
  };
}

export async function pgBatchCounts(databaseUrl: string, table = 'products'): Promise<BatchCounts> {
  return await withPg(databaseUrl, async (c) => {
    if (!(await tableExists(c, table))) return {};
    const r = await c.query<{ batch_id: string; n: number }>(
      `SELECT batch_id, count(*)::int AS n FROM ${table} GROUP BY 1`,
    );
    return Object.fromEntries(r.rows.map((x) => [x.batch_id, x.n]));
  });
}

export async function pgTickStats(databaseUrl: string, table = 'ticks'): Promise<TickStats> {
  return await withPg(databaseUrl, async (c) => {
    if (!(await tableExists(c, table))) return { rows: 0, distinct: 0, bySymbol: {} };
    const all = await c.query<{ rows: number; distinct: number }>(
      `SELECT count(*)::int AS rows, count(DISTINCT (symbol, trade_id))::int AS distinct FROM ${table}`,
    );
    const per = await c.query<{ symbol: string; rows: number; volume: number }>(
      `SELECT symbol, count(*)::int AS rows, sum(size)::float8 AS volume FROM ${table} GROUP BY 1`,
    );
    return {
      rows: all.rows[0]!.rows,
      distinct: all.rows[0]!.distinct,
      bySymbol: Object.fromEntries(
        per.rows.map((r) => [r.symbol, { rows: r.rows, volume: round6(r.volume) }]),
      ),
    };
  });
}

/** Candle rows in PostgreSQL: count and distinct (timeframe, symbol, start). */
export async function pgCandleKeys(
  databaseUrl: string,
  table = 'candles',
): Promise<{ rows: number; keys: number }> {
  return await withPg(databaseUrl, async (c) => {
    if (!(await tableExists(c, table))) return { rows: 0, keys: 0 };
    const r = await c.query<{ rows: number; keys: number }>(
      `SELECT count(*)::int AS rows, count(DISTINCT (timeframe, symbol, start))::int AS keys FROM ${table}`,
    );
    return r.rows[0]!;
  });
}

async function tableExists(c: pg.ClientBase, table: string): Promise<boolean> {
  const r = await c.query('SELECT to_regclass($1) AS t', [table]);
  return r.rows[0]?.t !== null;
}

async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export const TIMEFRAME_MS = {
  '1m': 60_000,
  '5m': 300_000,
  '15m': 900_000,
  '1h': 3_600_000,
  '4h': 14_400_000,
  '1d': 86_400_000,
} as const;
export type Timeframe = keyof typeof TIMEFRAME_MS;
export const TIMEFRAMES = Object.keys(TIMEFRAME_MS) as Timeframe[];

export interface Candle {
  symbol: string;
  timeframe: Timeframe;
  ts: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  trades: number;
}

/**
 * The oracle: DuckDB parses the raw captures itself (read_csv + JSON, no Parquetry code and not
 * the feed's parser), the same trades under every symbol; candles are plain SQL, open and close
 * by (time, trade id).
 */
export async function oracleCandles(duck: Duck, symbols: readonly string[]): Promise<Candle[]> {
  await duck.run(`
    CREATE OR REPLACE TABLE oracle_trades AS
    WITH lines AS (
      SELECT line FROM read_csv(${list(BINANCE_CAPTURES)}, columns = {'line': 'VARCHAR'}, delim = E'\\x01',
        quote = '', escape = '', header = false, auto_detect = false, compression = 'gzip', max_line_size = 10000000)
    ), events AS (
      SELECT coalesce(j -> '$.data', j) AS d FROM (SELECT CAST(substr(line, strpos(line, ' ') + 1) AS JSON) AS j FROM lines)
    )
    SELECT s.symbol, CAST(d ->> '$.T' AS BIGINT) AS ts, CAST(d ->> '$.t' AS BIGINT) AS tid,
           CAST(d ->> '$.p' AS DOUBLE) AS price, CAST(d ->> '$.q' AS DOUBLE) AS size
    FROM events, (SELECT unnest(${list(symbols)}) AS symbol) s WHERE d ->> '$.e' = 'trade'`);
  const out: Candle[] = [];
  for (const tf of TIMEFRAMES) {
    const ms = TIMEFRAME_MS[tf];
    const rows = await duck.rows<Omit<Candle, 'timeframe'>>(`
      SELECT symbol, CAST(b AS DOUBLE) AS ts, arg_min(price, (ts, tid)) AS open, max(price) AS high,
             min(price) AS low, arg_max(price, (ts, tid)) AS close, sum(size) AS volume,
             CAST(count(*) AS INTEGER) AS trades
      FROM (SELECT *, (ts // ${ms}) * ${ms} AS b FROM oracle_trades) GROUP BY symbol, b ORDER BY symbol, b`);
    for (const r of rows) out.push({ ...r, timeframe: tf });
  }
  return out;
}

export async function parquetCandleKeys(
  duck: Duck,
  paths: readonly string[],
): Promise<{ rows: number; keys: number }> {
  if (paths.length === 0) return { rows: 0, keys: 0 };
  const [r] = await duck.rows<{ rows: number; keys: number }>(
    `SELECT count(*)::INTEGER AS rows, count(DISTINCT (timeframe, symbol, start))::INTEGER AS keys
     FROM read_parquet(${list(paths)}, union_by_name = true)`,
  );
  return r!;
}

/** `GET /v1/candles` over plain HTTP with an API key. */
export async function apiCandles(
  baseUrl: string,
  key: string,
  q: { symbol: string; timeframe: Timeframe; start: number; end: number },
): Promise<Candle[]> {
  const url = new URL('/v1/candles', baseUrl);
  url.search = new URLSearchParams({
    symbol: q.symbol,
    timeframe: q.timeframe,
    start: String(q.start),
    end: String(q.end),
    limit: '10000',
  }).toString();
  const r = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
  if (!r.ok) throw new Error(`GET ${url.pathname}${url.search}: ${r.status} ${await r.text()}`);
  const body = (await r.json()) as {
    candles: (Omit<Candle, 'ts' | 'symbol' | 'timeframe'> & { ts: string | number })[];
  };
  return body.candles.map((c) => ({
    symbol: q.symbol,
    timeframe: q.timeframe,
    ts: typeof c.ts === 'number' ? c.ts : Date.parse(c.ts),
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
    volume: c.volume,
    trades: c.trades,
  }));
}

/** Candles compared value for value; volumes to 1e-9 relative (sums in another order). */
export function candleDiffs(actual: readonly Candle[], expected: readonly Candle[]): string[] {
  const key = (c: Candle) => `${c.timeframe}/${c.symbol}/${c.ts}`;
  const got = new Map(actual.map((c) => [key(c), c]));
  const diffs: string[] = [];
  if (got.size !== actual.length) diffs.push(`${actual.length - got.size} duplicate candles`);
  for (const e of expected) {
    const a = got.get(key(e));
    if (!a) {
      diffs.push(`missing ${key(e)}`);
      continue;
    }
    got.delete(key(e));
    for (const f of ['open', 'high', 'low', 'close', 'trades'] as const) {
      if (a[f] !== e[f]) diffs.push(`${key(e)} ${f}: ${a[f]} != ${e[f]}`);
    }
    if (Math.abs(a.volume - e.volume) > 1e-9 * Math.max(1, Math.abs(e.volume))) {
      diffs.push(`${key(e)} volume: ${a.volume} != ${e.volume}`);
    }
  }
  for (const k of got.keys()) diffs.push(`unexpected ${k}`);
  return diffs;
}

/** The lake's candles, the latest revision of each (as every reader of the candle layout does). */
export async function parquetCandles(duck: Duck, paths: readonly string[]): Promise<Candle[]> {
  if (paths.length === 0) return [];
  const rows = await duck.rows<Candle & { ts: number; trades: bigint | number }>(
    `SELECT symbol, timeframe, epoch_ms("start")::DOUBLE AS ts, open, high, low, close, volume, trades::INTEGER AS trades
     FROM read_parquet(${list(paths)}, union_by_name = true)
     QUALIFY row_number() OVER (PARTITION BY symbol, timeframe, "start" ORDER BY revision DESC) = 1`,
  );
  return rows.map((r) => ({ ...r, trades: Number(r.trades) }));
}

/**
 * Diagnostics: how the rows of a PostgreSQL table differ, per lake file (pg-loader's
 * `_lake_file` column), from the catalog's live files.
 */
export async function pgFileDiff(
  databaseUrl: string,
  table: string,
  live: readonly { path: string; rows: number }[],
): Promise<string[]> {
  return await withPg(databaseUrl, async (c) => {
    if (!(await tableExists(c, table))) return [`${table}: no table`];
    const r = await c.query<{ f: string; n: number }>(
      `SELECT _lake_file AS f, count(*)::int AS n FROM ${table} GROUP BY 1`,
    );
    const pgRows = new Map(r.rows.map((x) => [x.f, x.n]));
    const ledger = await c
      .query<{ f: string; at: Date }>(
        'SELECT file_path AS f, loaded_at AS at FROM parquetry_load_ledger WHERE table_name LIKE $1',
        [`%${table}`],
      )
      .then((x) => new Map(x.rows.map((y) => [y.f, y.at.toISOString()])))
      .catch(() => new Map<string, string>());
    const inLedger = (f: string) =>
      ledger.has(f) ? `in the ledger since ${ledger.get(f)}` : 'not in the ledger';
    const out: string[] = [];
    for (const f of live) {
      const n = pgRows.get(f.path);
      if (n !== f.rows) out.push(`${f.path}: lake ${f.rows}, pg ${n ?? 0} (${inLedger(f.path)})`);
      pgRows.delete(f.path);
    }
    for (const [f, n] of pgRows) out.push(`${f}: not live in the lake, pg ${n} (${inLedger(f)})`);
    return out;
  });
}

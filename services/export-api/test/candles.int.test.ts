import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type Bus, connectBus, ensureStreams, publishJson } from '@parquetry/bus';
import {
  type Catalog,
  type DuckDB,
  FsObjectStore,
  openCatalog,
  openDuckDB,
  sqlString,
} from '@parquetry/lake';
import {
  createTestDatabase,
  type NatsServerHandle,
  requireServers,
  startNats,
  type TempDir,
  type TestDatabase,
  tempDir,
} from '@parquetry/testkit';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCandleModule } from '../src/candles/module.js';
import {
  candlesResponseSchema,
  indicatorResponseSchema,
  latestResponseSchema,
  statsResponseSchema,
  summaryResponseSchema,
  timeframesResponseSchema,
  warmResponseSchema,
} from '../src/candles/schemas.js';
import { SandboxedDuckDB } from '../src/duck/sandboxed-duckdb.js';
import { buildApp, createKey, KeyStore, staticDatasetCatalog } from '../src/index.js';
import { computeIndicator } from '../src/indicators/index.js';
import { type CandleInput, syntheticSeries, TF_MS, writeCandles } from './candle-lake.js';
import { expectMatches, loadFixture } from './indicator-fixtures.js';

const skip = await requireServers({ nats: true, postgres: true });

const AUG30 = Date.UTC(2024, 7, 30);
const iso = (ms: number) => new Date(ms).toISOString();

/** What an outside reader of the files says: the highest revision of each candle, by DuckDB over a glob. */
async function duckWindow(
  duck: DuckDB,
  lake: string,
  symbol: string,
  tf: string,
  q: { start?: number; end?: number; limit: number },
) {
  const glob = join(lake, 'candles', `timeframe=${tf}`, `symbol=${symbol}`, '*', '*.parquet');
  const where = [
    ...(q.start !== undefined ? [`"start" >= TIMESTAMPTZ ${sqlString(iso(q.start))}`] : []),
    ...(q.end !== undefined ? [`"start" < TIMESTAMPTZ ${sqlString(iso(q.end))}`] : []),
  ];
  const r = await duck.conn.runAndReadAll(
    `SELECT strftime("start" AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%g') || 'Z' AS ts, open, high, low, close, volume, ` +
      `CAST(trades AS INTEGER) AS trades FROM read_parquet(${sqlString(glob)}, hive_partitioning = false) ` +
      `${where.length ? `WHERE ${where.join(' AND ')}` : ''} ` +
      `QUALIFY row_number() OVER (PARTITION BY "start" ORDER BY revision DESC) = 1 ` +
      `ORDER BY "start" ${q.start !== undefined ? 'ASC' : 'DESC'} LIMIT ${q.limit}`,
  );
  const rows = r.getRowObjectsJS() as Record<string, unknown>[];
  return q.start !== undefined ? rows : rows.reverse();
}

describe.skipIf(skip)('candle routes (real NATS, catalog, filesystem lake, DuckDB, PostgreSQL)', () => {
  let nats: NatsServerHandle;
  let bus: Bus;
  let catalog: Catalog;
  let lake: TempDir;
  let work: TempDir;
  let store: FsObjectStore;
  let writer: DuckDB;
  let sandbox: SandboxedDuckDB;
  let db: TestDatabase;
  let pgPool: pg.Pool;
  let app: FastifyInstance;
  let appNoCache: FastifyInstance;
  const logs: Record<string, unknown>[] = [];

  const keys = {
    all: createKey({ name: 'all', datasets: ['candles'] }),
    products: createKey({ name: 'products', datasets: ['products'] }),
    daily: createKey({ name: 'daily', datasets: ['candles_1d'] }),
    onlyAAA: createKey({
      name: 'only-aaa',
      datasets: ['candles'],
      rowScopes: { candles: [{ column: 'symbol', op: 'in', value: ['AAA'] }] },
    }),
    byPrice: createKey({
      name: 'by-price',
      datasets: ['candles'],
      rowScopes: { candles: [{ column: 'close', op: '>', value: 10 }] },
    }),
    revoked: createKey({ name: 'revoked', datasets: ['*'] }),
  };
  const auth = (k: keyof typeof keys) => ({ authorization: `Bearer ${keys[k].key}` });

  const aaa1m = syntheticSeries('AAA', '1m', AUG30, 7200, 7); // Aug 30 00:00 → Sep 3 23:59: two monthly partitions
  const aaa1d = syntheticSeries('AAA', '1d', Date.UTC(2024, 0, 1), 250, 8);
  // Corrections: revision 1 of 300 September candles, in a second file of that partition.
  const corrected: CandleInput[] = aaa1m
    .slice(4000, 4300)
    .map((c) => ({ ...c, close: c.close + 0.5, high: c.high + 0.5, revision: 1 }));

  async function get(path: string, headers: Record<string, string> = auth('all'), target = app) {
    const res = await target.inject({ method: 'GET', url: path, headers });
    return {
      status: res.statusCode,
      body: res.json() as Record<string, unknown> & { error?: { code: string } },
    };
  }

  async function candles(query: string, target = app) {
    const res = await get(`/v1/candles?${query}`, auth('all'), target);
    expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(200);
    return candlesResponseSchema.parse(res.body);
  }

  async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await f();
      if (ok(v) || Date.now() > deadline) return v;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  beforeAll(async () => {
    nats = await startNats();
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk, _e, done) {
          logs.push(JSON.parse(String(chunk)));
          done();
        },
      }),
    );
    bus = await connectBus({ url: nats.url, name: 'candles-test', logger });
    await ensureStreams(bus.jsm);
    catalog = await openCatalog({ nc: bus.nc });
    lake = tempDir('pq-candles-lake-');
    work = tempDir('pq-candles-work-');
    store = new FsObjectStore(lake.path);
    writer = await openDuckDB({ threads: 1 });
    sandbox = await SandboxedDuckDB.open({
      allowedDirectories: [lake.path, work.path],
      tempDirectory: join(work.path, 'spill'),
      threads: 1,
    });
    db = await createTestDatabase();
    pgPool = new pg.Pool({ connectionString: db.url, max: 2 });
    await pgPool.query(
      'CREATE TABLE candles (timeframe text, symbol text, period text, "start" timestamptz, "end" timestamptz, ' +
        'open float8, high float8, low float8, close float8, volume float8, trades bigint, vwap float8, revision integer)',
    );

    const w = { conn: writer.conn, store, catalog, bus };
    await writeCandles(w, [...aaa1m, ...aaa1d], { publish: false });
    await writeCandles(w, corrected, { publish: false });

    const keyStore = KeyStore.fromRecords(
      Object.values(keys).map((k) =>
        k.record.name === 'revoked' ? { ...k.record, revoked: true } : k.record,
      ),
    );
    const build = async (cacheMb: number) => {
      const module = createCandleModule(
        { config: { CACHE_MB: cacheMb }, logger, nc: bus.nc, catalog, store, duck: sandbox },
        { pgPool, CANDLE_CATALOG_REFRESH_S: 0 },
      );
      return await buildApp({
        config: {
          BODY_LIMIT_BYTES: 16 * 1024,
          RATE_LIMIT_PER_MIN: 100_000,
          DOWNLOAD_URL_TTL_S: 3600,
          DOWNLOAD_URL_MAX_TTL_S: 7200,
          EXPORT_SIGNING_SECRET: 'test-secret-test-secret-test-secret!',
          PUBLIC_BASE_URL: 'http://export.test',
          EXPORT_SYNC_WAIT_MS: 1000,
        },
        logger,
        keys: keyStore,
        datasets: staticDatasetCatalog(),
        store,
        routeModules: [module],
      });
    };
    app = await build(64);
    appNoCache = await build(0);
  });

  afterAll(async () => {
    await app?.close();
    await appNoCache?.close();
    await pgPool?.end();
    await db?.drop();
    sandbox?.close();
    writer?.close();
    await store?.close();
    await bus?.close();
    await nats?.stop();
    lake?.remove();
    work?.remove();
  });

  it('GET /v1/candles: the last 1,000 equal an independent DuckDB read; read from the lake, then from the cache', async () => {
    const first = await candles('symbol=AAA&timeframe=1m&limit=1000');
    const expected = await duckWindow(writer, lake.path, 'AAA', '1m', { limit: 1000 });
    expect(first.candles).toEqual(expected);
    expect(first.candles).toHaveLength(1000);
    expect(first.data_source).toBe('lake');
    const again = await candles('symbol=AAA&timeframe=1m&limit=1000');
    expect(again.data_source).toBe('cache');
    expect(again.candles).toEqual(expected);
    // Revisions: the corrected candles show their revision-1 values.
    const fixed = corrected.at(-1)!;
    const around = await candles(`symbol=AAA&timeframe=1m&start=${fixed.start}&limit=1`);
    expect(around.candles[0]).toMatchObject({ ts: iso(fixed.start), close: fixed.close, high: fixed.high });
  });

  it('windows across the month boundary equal DuckDB, with the cache and without', async () => {
    const aug31 = Date.UTC(2024, 7, 31, 20);
    const sep1 = Date.UTC(2024, 8, 1, 4);
    const cases = [
      { q: `start=${iso(aug31)}&end=${iso(sep1)}&limit=10000`, w: { start: aug31, end: sep1, limit: 10000 } },
      { q: `start=${aug31}&limit=5000`, w: { start: aug31, limit: 5000 } },
      { q: `end=${iso(sep1)}&limit=3000`, w: { end: sep1, limit: 3000 } },
      { q: 'start=2024-08-30&limit=10000', w: { start: AUG30, limit: 10000 } },
      { q: 'end=2024-08-30T00:05:00&limit=10', w: { end: AUG30 + 5 * 60_000, limit: 10 } },
    ];
    for (const c of cases) {
      const expected = await duckWindow(writer, lake.path, 'AAA', '1m', c.w);
      expect(expected.length).toBeGreaterThan(0);
      for (const target of [app, appNoCache]) {
        const got = await candles(`symbol=AAA&timeframe=1m&${c.q}`, target);
        expect(got.candles, c.q).toEqual(expected);
      }
    }
    expect((await candles('symbol=AAA&timeframe=1m&limit=50', appNoCache)).data_source).toBe('lake');
  });

  it('summary, latest and timeframes agree with DuckDB', async () => {
    const res = await get('/v1/candles/summary?symbol=AAA&timeframe=1m&start=2024-08-31&end=2024-09-02');
    expect(res.status).toBe(200);
    const s = summaryResponseSchema.parse(res.body);
    const glob = sqlString(join(lake.path, 'candles/timeframe=1m/symbol=AAA/*/*.parquet'));
    const agg = (
      await writer.conn.runAndReadAll(
        `SELECT count(*)::INTEGER AS n, max(high) AS high, min(low) AS low, avg(close) AS avg_close, sum(volume) AS volume, ` +
          `sum(trades)::INTEGER AS trades FROM (SELECT * FROM read_parquet(${glob}, hive_partitioning = false) ` +
          `WHERE "start" >= TIMESTAMPTZ '2024-08-31 00:00:00+00' AND "start" < TIMESTAMPTZ '2024-09-02 00:00:00+00' ` +
          `QUALIFY row_number() OVER (PARTITION BY "start" ORDER BY revision DESC) = 1)`,
      )
    ).getRowObjectsJS()[0]!;
    expect(s.count).toBe(agg.n);
    expect(s.count).toBe(2880);
    expect(s.high).toBe(agg.high);
    expect(s.low).toBe(agg.low);
    expect(s.avg_close).toBeCloseTo(agg.avg_close as number, 9);
    expect(s.volume).toBeCloseTo(agg.volume as number, 6);
    expect(s.trades).toBe(agg.trades);
    expect(s.start).toBe('2024-08-31T00:00:00.000Z');
    expect(s.end).toBe('2024-09-01T23:59:00.000Z');

    const latest = latestResponseSchema.parse((await get('/v1/candles/latest?symbol=AAA&timeframe=1d')).body);
    const lastDaily = await duckWindow(writer, lake.path, 'AAA', '1d', { limit: 1 });
    expect(latest.candle).toEqual(lastDaily[0]);

    const tf = timeframesResponseSchema.parse((await get('/v1/candles/timeframes?symbol=AAA')).body);
    expect(tf.timeframes).toEqual([
      { timeframe: '1m', first: iso(aaa1m[0]!.start), last: iso(aaa1m.at(-1)!.start) },
      { timeframe: '1d', first: iso(aaa1d[0]!.start), last: iso(aaa1d.at(-1)!.start) },
    ]);
    expect(tf.data_source).toBe('lake');
    // A symbol is optional when the lake has only one in that timeframe.
    expect((await candles('timeframe=1d&limit=3')).symbol).toBe('AAA');
  });

  it('a lake.committed notice invalidates the cached partition; without it the cache keeps serving', async () => {
    const last = aaa1m.at(-1)!;
    await candles('symbol=AAA&timeframe=1m&limit=10'); // cached
    const w = { conn: writer.conn, store, catalog, bus };
    const written = await writeCandles(w, [{ ...last, close: 999.25, high: 999.5, revision: 2 }], {
      publish: false,
    });
    const before = await candles('symbol=AAA&timeframe=1m&limit=1');
    expect(before.data_source).toBe('cache');
    expect(before.candles[0]!.close).toBe(last.close);

    const invalidations = statsResponseSchema.parse((await get('/v1/stats')).body).cache.invalidations;
    await publishJson(bus.js, 'lake.committed.candles', written.event, { msgId: written.event.commit_id });
    const after = await until(
      () => candles('symbol=AAA&timeframe=1m&limit=1'),
      (r) => r.candles[0]?.close === 999.25,
    );
    expect(after.candles[0]).toMatchObject({ ts: iso(last.start), close: 999.25, high: 999.5 });
    expect(after.data_source).toBe('lake');
    expect(after.candles).toEqual(await duckWindow(writer, lake.path, 'AAA', '1m', { limit: 1 }));
    const stats = statsResponseSchema.parse((await get('/v1/stats')).body);
    expect(stats.cache.invalidations).toBeGreaterThan(invalidations);
  });

  it('a closed candle on market.candles appears before any file holds it, and leaves once one does', async () => {
    const next = { ...aaa1m.at(-1)!, start: aaa1m.at(-1)!.start + TF_MS['1m'], close: 123.5, revision: 0 };
    const message = {
      symbol: 'AAA',
      timeframe: '1m',
      start: iso(next.start),
      end: iso(next.start + 60_000),
      open: next.open,
      high: next.high,
      low: next.low,
      close: next.close,
      volume: next.volume,
      trades: next.trades,
      vwap: next.vwap,
    };
    await publishJson(bus.js, 'market.candles.1m.AAA', message);
    const seen = await until(
      () => candles('symbol=AAA&timeframe=1m&limit=2'),
      (r) => r.candles.at(-1)?.ts === iso(next.start),
    );
    expect(seen.candles.at(-1)).toEqual({
      ts: iso(next.start),
      open: next.open,
      high: next.high,
      low: next.low,
      close: 123.5,
      volume: next.volume,
      trades: next.trades,
    });
    expect(seen.candles[0]!.ts).toBe(iso(aaa1m.at(-1)!.start)); // no gap: the file's newest candle before it
    // A symbol with no file at all.
    await publishJson(bus.js, 'market.candles.5m.NEWSYM', { ...message, symbol: 'NEWSYM', timeframe: '5m' });
    const fresh = await until(
      () => get('/v1/candles/latest?symbol=NEWSYM&timeframe=5m'),
      (r) => r.status === 200,
    );
    expect(latestResponseSchema.parse(fresh.body).candle.close).toBe(123.5);
    const live = statsResponseSchema.parse((await get('/v1/stats')).body).cache.live_candles;
    expect(live).toBeGreaterThanOrEqual(2);

    // The aggregator writes it: the notice makes the partition re-read, and the live copy is dropped.
    const w = { conn: writer.conn, store, catalog, bus };
    await writeCandles(w, [next]);
    const fromLake = await until(
      async () => {
        const r = await candles('symbol=AAA&timeframe=1m&limit=1');
        const s = statsResponseSchema.parse((await get('/v1/stats')).body).cache.live_candles;
        return { r, s };
      },
      ({ s }) => s === live - 1,
    );
    expect(fromLake.s).toBe(live - 1);
    expect(fromLake.r.candles[0]).toMatchObject({ ts: iso(next.start), close: 123.5 });
  });

  it('401 without a valid key and 403 outside the key’s candle scope, on every candle route', async () => {
    const routes = [
      '/v1/candles?symbol=AAA&timeframe=1m&limit=5',
      '/v1/candles/latest?symbol=AAA&timeframe=1m',
      '/v1/candles/summary?symbol=AAA&timeframe=1m',
      '/v1/candles/indicators?symbol=AAA&timeframe=1m&indicator=sma&period=5',
      '/v1/candles/timeframes?symbol=AAA',
    ];
    for (const path of routes) {
      expect((await get(path, {})).status, path).toBe(401);
      expect((await get(path, { authorization: 'Bearer pq_not-a-key' })).status, path).toBe(401);
      expect((await get(path, auth('revoked'))).status, path).toBe(401);
      const denied = await get(path, auth('products'));
      expect(denied.status, path).toBe(403);
      expect(denied.body.error?.code).toBe('forbidden');
      expect((await get(path, auth('byPrice'))).status, path).toBe(403); // a row scope candles cannot honour
      expect((await get(path, auth('onlyAAA'))).status, path).toBe(200);
      expect((await get(path.replace('AAA', 'BBB'), auth('onlyAAA'))).status, path).toBe(403);
    }
    expect((await get('/v1/candles?symbol=AAA&timeframe=1m&limit=5', auth('daily'))).status).toBe(403);
    expect((await get('/v1/candles?symbol=AAA&timeframe=1d&limit=5', auth('daily'))).status).toBe(200);
    const tf = timeframesResponseSchema.parse(
      (await get('/v1/candles/timeframes?symbol=AAA', auth('daily'))).body,
    );
    expect(tf.timeframes.map((t) => t.timeframe)).toEqual(['1d']);
    const warm = (k: keyof typeof keys | undefined, body: unknown) =>
      app.inject({
        method: 'POST',
        url: '/v1/cache/warm',
        headers: k ? auth(k) : {},
        payload: body as object,
      });
    expect((await warm(undefined, {})).statusCode).toBe(401);
    expect((await warm('products', {})).statusCode).toBe(403);
    expect((await warm('onlyAAA', { symbols: ['BBB'] })).statusCode).toBe(403);
    expect((await get('/v1/stats', {})).status).toBe(401);
    expect((await get('/v1/stats', auth('products'))).status).toBe(200);
    // Bad input is 400, never a 5xx.
    for (const q of [
      'timeframe=2m',
      'symbol=A.B&timeframe=1m',
      'symbol=AAA&timeframe=1m&limit=0',
      'symbol=AAA&timeframe=1m&start=x',
      'symbol=AAA&timeframe=1m&start=2024-09-02&end=2024-09-01',
      'symbol=AAA&timeframe=1m&evil=1',
    ]) {
      expect((await get(`/v1/candles?${q}`)).status, q).toBe(400);
    }
    const unknown = await get('/v1/candles/indicators?symbol=AAA&timeframe=1m&indicator=nope');
    expect(unknown.status).toBe(400);
    expect(unknown.body.error?.code).toBe('unknown_indicator');
  });

  it('indicator values equal the fixtures of shared/data/indicators, and the last N equal the tail of a full run', async () => {
    const cases = [
      { file: 'cs-rsi.csv', q: 'indicator=rsi&period=14', cols: { rsi: 'RSI' }, from: 14 },
      {
        file: 'cs-bbands.csv',
        q: 'indicator=bollinger&period=20&k=2',
        cols: {
          middle: 'MiddleBand',
          upper: 'HighBand',
          lower: 'LowBand',
          width: 'WidthBand',
          percent_b: 'PercentageBand',
        },
        from: 19,
      },
      { file: 'cs-bbands.csv', q: 'indicator=sma&period=20', cols: { sma: 'MiddleBand' }, from: 19 },
      { file: 'cs-atr.csv', q: 'indicator=atr&period=14', cols: { atr: 'ATR' }, from: 13 },
      {
        file: 'cs-macd.csv',
        q: 'indicator=macd&fast=12&slow=26&signal=9',
        cols: { macd: 'MACD_line' },
        from: 25,
      },
      { file: 'cs-macd.csv', q: 'indicator=ema&period=12', cols: { ema: 'short_ema' }, from: 11 },
      { file: 'cs-vwap.csv', q: 'indicator=vwap&period=14', cols: { vwap: 'vwap' }, from: 13 },
      { file: 'cs-wma.csv', q: 'indicator=wma&period=9', cols: { wma: 'WMA' }, from: 8 },
    ];
    const w = { conn: writer.conn, store, catalog, bus };
    const day0 = Date.UTC(2020, 0, 1);
    const symbols = new Map<string, string>();
    for (const c of cases) {
      if (symbols.has(c.file)) continue;
      const symbol = `FIX_${c.file.replace(/\W/g, '_').slice(3, 20)}`;
      symbols.set(c.file, symbol);
      const f = loadFixture(c.file);
      await writeCandles(
        w,
        f.candles().map((k, i) => ({
          symbol,
          timeframe: '1d' as const,
          start: day0 + i * TF_MS['1d'],
          ...k,
          trades: 1,
          vwap: k.close,
          revision: 0,
        })),
      );
    }
    for (const c of cases) {
      const f = loadFixture(c.file);
      const symbol = symbols.get(c.file)!;
      const res = await until(
        () => get(`/v1/candles/indicators?symbol=${symbol}&timeframe=1d&start=2020-01-01&limit=10000&${c.q}`),
        (r) => r.status === 200 && (r.body.values as unknown[]).length === f.rows.length,
      );
      expect(res.status, c.q).toBe(200);
      const body = indicatorResponseSchema.parse(res.body);
      expect(body.values).toHaveLength(f.rows.length);
      for (const [series, column] of Object.entries(c.cols)) {
        const values = body.values.map((v) => v[series] as number | null);
        expect(
          values.slice(0, c.from).every((v) => v === null),
          `${c.file} ${series} warm-up`,
        ).toBe(true);
        expect(expectMatches(f, column, values, { from: c.from }), `${c.file} ${series}`).toBeGreaterThan(0);
      }
      // The last 7, computed from exactly `lookback` earlier candles: equal to the same computation on the
      // fixture's candles; window indicators (no recursive smoothing) equal the tail of the full run too.
      const tail = indicatorResponseSchema.parse(
        (await get(`/v1/candles/indicators?symbol=${symbol}&timeframe=1d&limit=7&${c.q}`)).body,
      );
      const params = Object.fromEntries(new URLSearchParams(c.q));
      const { indicator, ...rest } = params;
      const expected = computeIndicator(indicator!, f.candles().slice(-(7 + tail.lookback)), rest);
      expect(tail.lookback).toBeGreaterThan(0);
      for (const series of tail.series) {
        expect(
          tail.values.map((v) => v[series]),
          `${c.q} ${series}`,
        ).toEqual(expected.series[series]!.slice(-7));
        expect(
          tail.values.every((v) => v[series] !== null),
          `${c.q} ${series} defined`,
        ).toBe(true);
      }
      if (['sma', 'wma', 'bollinger', 'vwap'].includes(indicator!)) {
        const full = body.values.slice(-7);
        for (const [i, v] of tail.values.entries()) {
          expect(v.ts).toBe(full[i]!.ts);
          for (const series of tail.series) {
            const a = v[series] as number;
            const b = full[i]![series] as number;
            expect(Math.abs(a - b), `${c.q} ${series} row ${i}`).toBeLessThanOrEqual(
              1e-9 * Math.max(1, Math.abs(b)),
            );
          }
        }
      }
    }
  });

  it('falls back to PostgreSQL when the lake has no data, or cannot read it', async () => {
    const pgOnly = syntheticSeries('PGX', '1h', Date.UTC(2024, 5, 1), 48, 3);
    // Candle 10 twice: a stale revision 0 after its revision 1, which must win whatever the row order.
    const rows = [
      ...pgOnly.map((c, i) => (i === 10 ? { ...c, revision: 1 } : c)),
      { ...pgOnly[10]!, close: 1.25, revision: 0 },
    ];
    for (const c of rows) {
      await pgPool.query(
        'INSERT INTO candles VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)',
        [
          c.timeframe,
          c.symbol,
          '2024',
          iso(c.start),
          iso(c.start + TF_MS[c.timeframe]),
          c.open,
          c.high,
          c.low,
          c.close,
          c.volume,
          c.trades,
          c.vwap,
          c.revision,
        ],
      );
    }
    const got = await candles('symbol=PGX&timeframe=1h&limit=100');
    expect(got.data_source).toBe('postgres');
    expect(got.candles).toHaveLength(48);
    expect(got.candles[10]!.close).toBe(pgOnly[10]!.close);
    expect(got.candles.map((c) => c.ts)).toEqual(pgOnly.map((c) => iso(c.start)));
    const window = await candles(`symbol=PGX&timeframe=1h&start=${iso(pgOnly[5]!.start)}&limit=3`);
    expect(window.candles.map((c) => c.close)).toEqual(pgOnly.slice(5, 8).map((c) => c.close));
    const tf = timeframesResponseSchema.parse((await get('/v1/candles/timeframes?symbol=PGX')).body);
    expect(tf).toEqual({
      symbol: 'PGX',
      data_source: 'postgres',
      timeframes: [{ timeframe: '1h', first: iso(pgOnly[0]!.start), last: iso(pgOnly.at(-1)!.start) }],
    });

    // In the lake and in PostgreSQL, but the lake's file is gone: PostgreSQL answers.
    const brk = syntheticSeries('BRK', '1h', Date.UTC(2024, 6, 1), 24, 4);
    const written = await writeCandles({ conn: writer.conn, store, catalog, bus }, brk);
    for (const c of brk) {
      await pgPool.query(
        'INSERT INTO candles VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)',
        [
          c.timeframe,
          c.symbol,
          '2024',
          iso(c.start),
          iso(c.start + 3_600_000),
          c.open,
          c.high,
          c.low,
          c.close + 1,
          c.volume,
          c.trades,
          c.vwap,
          c.revision,
        ],
      );
    }
    const fromLake = await until(
      () => candles('symbol=BRK&timeframe=1h&limit=24', appNoCache),
      (r) => r.candles.length === 24,
    );
    expect(fromLake.data_source).toBe('lake');
    for (const f of written.files) rmSync(join(lake.path, f.path));
    const fallback = await candles('symbol=BRK&timeframe=1h&limit=24', appNoCache);
    expect(fallback.data_source).toBe('postgres');
    expect(fallback.candles.map((c) => c.close)).toEqual(brk.map((c) => c.close + 1));
  });

  it('POST /v1/cache/warm fills the cache; /v1/stats counts hits, misses and latency per route', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/cache/warm',
      headers: auth('all'),
      payload: { symbols: ['AAA'], timeframes: ['1m', '1d'], partitions: 2 },
    });
    expect(res.statusCode).toBe(200);
    const warm = warmResponseSchema.parse(res.json());
    expect(warm.series).toBe(2);
    expect(warm.loaded + warm.cached).toBe(3); // 1m: Aug and Sep; 1d: all
    const before = statsResponseSchema.parse((await get('/v1/stats')).body);
    expect((await candles('symbol=AAA&timeframe=1m&start=2024-08-30&limit=100')).data_source).toBe('cache');
    const after = statsResponseSchema.parse((await get('/v1/stats')).body);
    expect(after.cache.hits).toBe(before.cache.hits + 1);
    expect(after.cache.misses).toBe(before.cache.misses);
    expect(after.cache.bytes).toBeGreaterThan(0);
    expect(after.cache.bytes).toBeLessThanOrEqual(after.cache.max_bytes);
    const route = after.routes['GET /v1/candles']!;
    expect(route.count).toBeGreaterThan(10);
    expect(route.p50_ms).toBeGreaterThan(0);
    expect(route.p99_ms!).toBeGreaterThanOrEqual(route.p50_ms!);
    expect(after.routes['POST /v1/cache/warm']?.count).toBeGreaterThan(0);
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, unknown>;
    };
    for (const p of [
      '/v1/candles',
      '/v1/candles/latest',
      '/v1/candles/summary',
      '/v1/candles/indicators',
      '/v1/candles/timeframes',
      '/v1/cache/warm',
      '/v1/stats',
    ]) {
      expect(doc.paths[p], p).toBeDefined();
    }
  });
});

import type { Catalog, ObjectStore } from '@parquetry/lake';
import type { Metrics } from '@parquetry/service';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { RouteModule } from '../app.js';
import type { ConnectionPool } from '../duck/sandboxed-duckdb.js';
import { describeIndicators, indicators } from '../indicators/index.js';
import type { ApiOperation } from '../openapi.js';
import { registerCandleRoutes } from '../routes/candles.js';
import { registerStatsRoutes } from '../routes/stats.js';
import { LiveCandles, PartitionCache } from './cache.js';
import { CandleCatalogView } from './catalog-view.js';
import { type CandleConfig, candleConfigSchema, pgTableOf } from './config.js';
import { type EventConnection, subscribeCandleEvents } from './events.js';
import { LatencyStats } from './latency.js';
import { PostgresCandles } from './pg-source.js';
import {
  candlesQuerySchema,
  candlesResponseSchema,
  indicatorResponseSchema,
  indicatorWindowSchema,
  latestQuerySchema,
  latestResponseSchema,
  statsResponseSchema,
  summaryQuerySchema,
  summaryResponseSchema,
  timeframesQuerySchema,
  timeframesResponseSchema,
  warmRequestSchema,
  warmResponseSchema,
} from './schemas.js';
import { CandleService } from './service.js';

/**
 * The candle half of export-api as one route module (app.ts RouteModule): the routes, `/v1/stats`,
 * the cache, the catalog view and the bus subscriptions, built from the same context the export
 * routes get (server.ts ExportApiContext fits `CandleModuleContext`). Subscriptions start when the
 * routes are registered and stop, with the PostgreSQL pool it opened, when the app closes.
 *
 *   routeModules: (ctx) => [createCandleModule(ctx, loadConfig(candleConfigSchema))]
 */
export interface CandleModuleContext {
  config: { CACHE_MB: number };
  logger: Logger;
  /** For commit notices and closed candles; without it the view relies on its periodic refresh. */
  nc?: EventConnection | undefined;
  catalog: Pick<Catalog, 'partitions' | 'partition'>;
  store: Pick<ObjectStore, 'localPath'>;
  duck: { pool(size: number): ConnectionPool };
  /** For `parquetry_cache_requests_total`. */
  metrics?: Metrics | undefined;
}

export interface CandleModuleOptions extends Partial<CandleConfig> {
  /** A PostgreSQL pool to use instead of opening one from DATABASE_URL (tests, shared pools). */
  pgPool?: Pick<pg.Pool, 'query'>;
}

export interface CandleModule extends RouteModule {
  service: CandleService;
  latency: LatencyStats;
}

export function createCandleModule(
  ctx: CandleModuleContext,
  options: CandleModuleOptions = {},
): CandleModule {
  const config = { ...candleConfigSchema.parse({}), ...stripUndefined(options) };
  const { logger } = ctx;
  let ownPool: pg.Pool | undefined;
  let pgPool = options.pgPool;
  if (!pgPool && config.DATABASE_URL) {
    ownPool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 4, connectionTimeoutMillis: 3000 });
    ownPool.on('error', (err) => logger.warn({ err }, 'pg_pool_error'));
    pgPool = ownPool;
  }
  const view = new CandleCatalogView({
    catalog: ctx.catalog,
    refreshMs: config.CANDLE_CATALOG_REFRESH_S * 1000,
    onError: (err) => logger.warn({ err }, 'candle_catalog_refresh_failed'),
  });
  const service = new CandleService({
    view,
    store: ctx.store,
    duck: ctx.duck.pool(config.CANDLE_DUCKDB_CONNECTIONS),
    cache: new PartitionCache(ctx.config.CACHE_MB * 1024 * 1024),
    live: new LiveCandles(config.CANDLE_LIVE_PER_SERIES),
    pg: pgPool ? new PostgresCandles(pgPool, pgTableOf(config.CANDLE_PG_TABLE)) : undefined,
    logger,
    cacheRequests: ctx.metrics?.counter('parquetry_cache_requests_total', 'Candle reads by cache result', [
      'result',
    ]),
  });
  const latency = new LatencyStats();
  return {
    service,
    latency,
    operations: CANDLE_OPERATIONS,
    register(app: FastifyInstance) {
      registerStatsRoutes(app, { service, latency });
      registerCandleRoutes(app, { service, defaultSymbol: config.CANDLE_DEFAULT_SYMBOL });
      const unsubscribe = ctx.nc ? subscribeCandleEvents(ctx.nc, service, logger) : () => {};
      app.addHook('onClose', async () => {
        unsubscribe();
        await ownPool?.end().catch(() => {});
      });
    },
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

type Param = NonNullable<ApiOperation['parameters']>[number];

function queryParams(schema: z.ZodType): Param[] {
  const shape = (schema as unknown as { shape: Record<string, z.ZodType> }).shape;
  return Object.entries(shape).map(([name, s]) => ({
    name,
    in: 'query' as const,
    required: !s.safeParse(undefined).success,
    schema: s,
    ...(s.description ? { description: s.description } : {}),
  }));
}

/** Every parameter any indicator takes, documented once (the first indicator that has it). */
function indicatorParams(): Param[] {
  const seen = new Map<string, Param>();
  for (const def of Object.values(indicators)) {
    const shape = (def.params as unknown as { shape?: Record<string, z.ZodType> }).shape ?? {};
    for (const [name, s] of Object.entries(shape)) {
      if (!seen.has(name))
        seen.set(name, {
          name,
          in: 'query',
          required: false,
          schema: s,
          ...(s.description ? { description: s.description } : {}),
        });
    }
  }
  return [...seen.values()];
}

const indicatorList = describeIndicators()
  .map(
    (d) =>
      `\`${d.name}\` (${Object.keys((d.params.properties as object | undefined) ?? {}).join(', ') || 'no parameters'}): ${d.description}`,
  )
  .join('; ');

export const CANDLE_OPERATIONS: ApiOperation[] = [
  {
    method: 'get',
    path: '/v1/candles',
    summary: 'Candles of one symbol and timeframe, oldest first',
    auth: 'key',
    parameters: queryParams(candlesQuerySchema),
    errors: [400, 401, 403, 429, 503],
    responses: { 200: { description: 'candles', schema: candlesResponseSchema } },
  },
  {
    method: 'get',
    path: '/v1/candles/latest',
    summary: 'The newest candle of a series',
    auth: 'key',
    parameters: queryParams(latestQuerySchema),
    errors: [400, 401, 403, 404, 429, 503],
    responses: { 200: { description: 'the newest candle', schema: latestResponseSchema } },
  },
  {
    method: 'get',
    path: '/v1/candles/summary',
    summary: 'Count, range, extremes, averages and sums of a window of candles',
    auth: 'key',
    parameters: queryParams(summaryQuerySchema),
    errors: [400, 401, 403, 429, 503],
    responses: { 200: { description: 'summary', schema: summaryResponseSchema } },
  },
  {
    method: 'get',
    path: '/v1/candles/indicators',
    summary: `An indicator over a window of candles, computed with enough earlier candles to be defined from the first one. Indicators: ${indicatorList}`,
    auth: 'key',
    parameters: [...queryParams(indicatorWindowSchema), ...indicatorParams()],
    errors: [400, 401, 403, 429, 503],
    responses: { 200: { description: 'indicator values', schema: indicatorResponseSchema } },
  },
  {
    method: 'get',
    path: '/v1/candles/timeframes',
    summary: 'Timeframes a symbol has candles in, with their first and last candle',
    auth: 'key',
    parameters: queryParams(timeframesQuerySchema),
    errors: [400, 401, 403, 429, 503],
    responses: { 200: { description: 'timeframes', schema: timeframesResponseSchema } },
  },
  {
    method: 'post',
    path: '/v1/cache/warm',
    summary: 'Read the newest candle partitions of series into the cache',
    auth: 'key',
    body: warmRequestSchema,
    errors: [400, 401, 403, 413, 429, 503],
    responses: { 200: { description: 'what was read', schema: warmResponseSchema } },
  },
  {
    method: 'get',
    path: '/v1/stats',
    summary: 'Candle cache statistics and request latency per route',
    auth: 'key',
    errors: [401, 429],
    responses: { 200: { description: 'statistics', schema: statsResponseSchema } },
  },
];

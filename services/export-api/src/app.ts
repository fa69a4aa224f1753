import type { Metrics } from '@parquetry/service';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import { createAuditLog } from './audit.js';
import type { KeyInfo } from './auth/keys.js';
import { type Authenticator, registerAuth } from './auth/plugin.js';
import type { ExportApiConfig } from './config.js';
import type { DatasetCatalog } from './datasets.js';
import { frameworkErrorHandler, registerErrorHandling } from './errors.js';
import type { ExportEngine } from './exports/engine.js';
import { createDownloadLinks } from './exports/links.js';
import { type ExportRecordStore, MemoryExportRecordStore } from './exports/records.js';
import { ExportService } from './exports/service.js';
import { type ApiOperation, buildOpenApiDocument } from './openapi.js';
import { RateLimiter } from './rate-limit.js';
import { registerDatasetRoutes } from './routes/datasets.js';
import { type DownloadStore, registerDownloadRoutes } from './routes/downloads.js';
import { registerExportRoutes } from './routes/exports.js';
import { registerKeyRoutes } from './routes/keys.js';
import { registerSystemRoutes } from './routes/system.js';

export type AppConfig = Pick<
  ExportApiConfig,
  | 'BODY_LIMIT_BYTES'
  | 'RATE_LIMIT_PER_MIN'
  | 'DOWNLOAD_URL_TTL_S'
  | 'DOWNLOAD_URL_MAX_TTL_S'
  | 'EXPORT_SIGNING_SECRET'
  | 'PUBLIC_BASE_URL'
  | 'EXPORT_SYNC_WAIT_MS'
>;

/**
 * A group of routes added by a later module (candles, cache, stats). It is registered in the
 * root context, so the key check, rate limit and error handler apply to it as to the core
 * routes; it declares `config: {auth, admin}` on its routes and describes them for OpenAPI.
 */
export interface RouteModule {
  register(app: FastifyInstance): void | Promise<void>;
  operations: readonly ApiOperation[];
}

export interface AppDeps {
  config: AppConfig;
  logger: Logger;
  keys: Authenticator & { list(): KeyInfo[] };
  datasets: DatasetCatalog;
  /** The lake store, for download streams and S3 presigned URLs. */
  store: DownloadStore;
  /** The lake reader; absent, exports answer 503 and /health says `degraded`. */
  engine?: ExportEngine;
  records?: ExportRecordStore;
  metrics?: Metrics;
  ready?: () => boolean | Promise<boolean>;
  clock?: () => number;
  routeModules?: readonly RouteModule[];
  version?: string;
}

/** The whole HTTP app, without a port: main() listens, tests use `app.inject()`. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const clock = deps.clock ?? Date.now;
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Steady state is quiet (docs/observability.md): no per-request lines; audit lines cover exports.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.BODY_LIMIT_BYTES,
    routerOptions: { maxParamLength: 2048 }, // download tokens are long; longer params are 404 (no route)
    exposeHeadRoutes: false,
    return503OnClosing: true,
    frameworkErrors: frameworkErrorHandler,
  });
  registerErrorHandling(app, deps.logger);
  registerAuth(app, {
    keys: deps.keys,
    limiter: new RateLimiter({ perMinute: config.RATE_LIMIT_PER_MIN, clock }),
  });

  const links = createDownloadLinks({
    store: deps.store,
    secret: config.EXPORT_SIGNING_SECRET,
    publicBaseUrl: config.PUBLIC_BASE_URL,
    clock,
  });
  const exports = new ExportService({
    datasets: deps.datasets,
    engine: deps.engine,
    records: deps.records ?? new MemoryExportRecordStore(),
    links,
    audit: createAuditLog(deps.logger),
    logger: deps.logger,
    clock,
    ttl: { defaultS: config.DOWNLOAD_URL_TTL_S, maxS: config.DOWNLOAD_URL_MAX_TTL_S },
    syncWaitMs: config.EXPORT_SYNC_WAIT_MS,
  });

  const modules = deps.routeModules ?? [];
  const openapi = buildOpenApiDocument({
    version: deps.version ?? '0.1.0',
    extra: modules.flatMap((m) => m.operations),
  });
  registerSystemRoutes(app, {
    datasets: deps.datasets,
    engine: deps.engine,
    metrics: deps.metrics,
    ready: deps.ready,
    openapi: () => openapi,
    clock,
  });
  registerDatasetRoutes(app, { datasets: deps.datasets });
  registerExportRoutes(app, { exports });
  registerDownloadRoutes(app, { store: deps.store, secret: config.EXPORT_SIGNING_SECRET, clock });
  registerKeyRoutes(app, { keys: deps.keys });
  for (const m of modules) await m.register(app);
  return app;
}

import type { Metrics } from '@parquetry/service';
import type { FastifyInstance } from 'fastify';
import { healthResponseSchema } from '../api/schemas.js';
import type { DatasetCatalog } from '../datasets.js';
import type { EngineInfo, ExportEngine } from '../exports/engine.js';
import { sendValid } from './reply.js';

/** `/health`, `/ready`, `/metrics`, `/openapi.json`: no key (DESIGN.md), nothing secret in them. */
export function registerSystemRoutes(
  app: FastifyInstance,
  deps: {
    datasets: DatasetCatalog;
    engine?: ExportEngine | undefined;
    metrics?: Metrics | undefined;
    ready?: (() => boolean | Promise<boolean>) | undefined;
    openapi: () => unknown;
    clock: () => number;
  },
): void {
  const open = { config: { auth: 'public' as const } };

  app.get('/health', open, async (_request, reply) => {
    let info: EngineInfo = { parquet_support: false, duckdb_version: null };
    let names: string[] = [];
    let ok = Boolean(deps.engine);
    try {
      if (deps.engine) info = await deps.engine.info();
      names = (await deps.datasets.list()).map((d) => d.name);
    } catch {
      ok = false;
    }
    return sendValid(reply, healthResponseSchema, {
      status: ok && info.parquet_support ? 'ok' : 'degraded',
      ...info,
      available_datasets: names,
      timestamp: new Date(deps.clock()).toISOString(),
    });
  });

  app.get('/ready', open, async (_request, reply) => {
    const ready = deps.ready ? await deps.ready() : true;
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  app.get('/openapi.json', open, async () => deps.openapi());

  if (deps.metrics) {
    const metrics = deps.metrics;
    const duration = metrics.histogram(
      'parquetry_http_request_duration_seconds',
      'export-api request duration',
      ['route', 'status'],
      [0.005, 0.025, 0.1, 0.5, 2, 10, 60],
    );
    app.addHook('onResponse', async (request, reply) => {
      // The route pattern, never the raw URL: ids and tokens must not become label values.
      duration.observe(
        { route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
    });
    app.get('/metrics', open, async (_request, reply) =>
      reply.header('content-type', metrics.registry.contentType).send(await metrics.text()),
    );
  }
}

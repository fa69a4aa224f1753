import type { FastifyInstance } from 'fastify';
import type { LatencyStats } from '../candles/latency.js';
import { statsResponseSchema } from '../candles/schemas.js';
import type { CandleService } from '../candles/service.js';
import { sendValid } from './reply.js';

/**
 * `GET /v1/stats`: candle cache counters and request latency per route. Any valid key may read
 * it (nothing in it is about data). Latency is recorded for every matched route of the app.
 */
export function registerStatsRoutes(
  app: FastifyInstance,
  deps: { service: CandleService; latency: LatencyStats },
): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url;
    if (route !== undefined) deps.latency.record(`${request.method} ${route}`, reply.elapsedTime);
  });

  app.get('/v1/stats', async (_request, reply) =>
    sendValid(reply, statsResponseSchema, {
      cache: deps.service.stats(),
      routes: deps.latency.snapshot(),
      since: deps.latency.since.toISOString(),
    }),
  );
}

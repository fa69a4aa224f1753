import type { FastifyInstance } from 'fastify';
import { exportEstimateSchema, exportSchema } from '../api/schemas.js';
import { requireKey } from '../auth/plugin.js';
import type { ExportService } from '../exports/service.js';
import { sendValid } from './reply.js';

export function registerExportRoutes(app: FastifyInstance, deps: { exports: ExportService }): void {
  app.post('/v1/exports', async (request, reply) => {
    const { status, view } = await deps.exports.create(requireKey(request), request.body);
    return sendValid(reply, exportSchema, view, status);
  });

  app.post('/v1/exports/estimate', async (request, reply) =>
    sendValid(reply, exportEstimateSchema, await deps.exports.estimate(requireKey(request), request.body)),
  );

  app.get('/v1/exports/:id', async (request, reply) => {
    const key = requireKey(request);
    // Any malformed id is simply not found: the same 404 as an id of another key.
    const { id } = request.params as { id: string };
    return sendValid(reply, exportSchema, await deps.exports.get(key, id));
  });
}

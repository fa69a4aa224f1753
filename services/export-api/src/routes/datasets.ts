import type { FastifyInstance } from 'fastify';
import { datasetsResponseSchema } from '../api/schemas.js';
import { requireKey } from '../auth/plugin.js';
import { canReadDatasetInfo, type DatasetCatalog } from '../datasets.js';
import { sendValid } from './reply.js';

/** `GET /v1/datasets`: the datasets this key may read, with their schemas. */
export function registerDatasetRoutes(app: FastifyInstance, deps: { datasets: DatasetCatalog }): void {
  app.get('/v1/datasets', async (request, reply) => {
    const key = requireKey(request);
    const datasets = (await deps.datasets.list()).filter((d) => canReadDatasetInfo(key, d));
    return sendValid(reply, datasetsResponseSchema, { datasets });
  });
}

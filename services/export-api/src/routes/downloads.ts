import { posix } from 'node:path';
import type { ObjectStore } from '@parquetry/lake';
import type { FastifyInstance } from 'fastify';
import { verifyDownloadToken } from '../signing.js';

export type DownloadStore = Pick<ObjectStore, 'get' | 'head' | 'presignGet'>;

const CONTENT_TYPES: Record<string, string> = {
  '.parquet': 'application/vnd.apache.parquet',
  '.csv': 'text/csv; charset=utf-8',
  '.json': 'application/x-ndjson',
  '.ndjson': 'application/x-ndjson',
  '.gz': 'application/gzip',
};

/**
 * `GET /v1/downloads/:token`: the one object a valid, unexpired token names, streamed from the
 * store. No API key (the link is the credential), so it is only ever as good as the token check.
 */
export function registerDownloadRoutes(
  app: FastifyInstance,
  deps: { store: DownloadStore; secret: string | Buffer; clock: () => number },
): void {
  app.get('/v1/downloads/:token', { config: { auth: 'token' } }, async (request, reply) => {
    const { token } = request.params as { token?: unknown };
    const payload = verifyDownloadToken(token, deps.secret, deps.clock());
    const info = await deps.store.head(payload.key);
    const body = await deps.store.get(payload.key); // NotFoundError → 404 once the export is gone
    const name = posix.basename(payload.key);
    void reply
      .header('content-type', CONTENT_TYPES[posix.extname(name)] ?? 'application/octet-stream')
      .header('content-disposition', `attachment; filename="${name}"`)
      .header('cache-control', 'private, no-store')
      .header('x-content-type-options', 'nosniff');
    if (info) void reply.header('content-length', String(info.size));
    return reply.send(body);
  });
}

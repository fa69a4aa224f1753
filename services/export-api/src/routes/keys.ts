import type { FastifyInstance } from 'fastify';
import { keysResponseSchema } from '../api/schemas.js';
import type { KeyInfo } from '../auth/keys.js';
import { sendValid } from './reply.js';

/** `GET /v1/keys` (admin): who has access to what, never a hash. */
export function registerKeyRoutes(app: FastifyInstance, deps: { keys: { list(): KeyInfo[] } }): void {
  app.get('/v1/keys', { config: { admin: true } }, async (_request, reply) =>
    sendValid(reply, keysResponseSchema, { keys: deps.keys.list() }),
  );
}

import type { FastifyReply } from 'fastify';
import type { z } from 'zod';

/**
 * Responses go through their zod schema too: a handler cannot leak a field the contract does
 * not name (an export's owner, a key's hash), and a shape bug is a logged 500, not a silent change.
 */
export function sendValid<S extends z.ZodType>(
  reply: FastifyReply,
  schema: S,
  value: z.input<S>,
  status = 200,
) {
  return reply.code(status).send(schema.parse(value));
}

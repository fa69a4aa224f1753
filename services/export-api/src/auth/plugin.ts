import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError, RateLimitedError, UnauthorizedError } from '../errors.js';
import type { RateLimiter } from '../rate-limit.js';
import { type ApiKey, canReadDataset } from './keys.js';

/**
 * Authentication is default-deny: every route needs a key unless it says otherwise in its
 * config (`auth: 'public'` for /health, `auth: 'token'` for downloads, which carry their own
 * signed token). Unknown paths under /v1 need a key too, so probing for routes reveals
 * nothing without one. Rate limiting runs right after, per key name.
 */
export type AuthMode = 'key' | 'public' | 'token';

declare module 'fastify' {
  interface FastifyRequest {
    apiKey?: ApiKey;
  }
  interface FastifyContextConfig {
    auth?: AuthMode;
    /** Only admin keys may call this route. */
    admin?: boolean;
  }
}

export interface Authenticator {
  authenticate(authorization: string | undefined): ApiKey;
}

function authModeOf(request: FastifyRequest): AuthMode {
  const declared =
    request.routeOptions.url !== undefined ? (request.routeOptions.config.auth ?? 'key') : undefined;
  if (declared) return declared;
  // The not-found handler: a key for anything under /v1, nothing elsewhere.
  const path = request.url.split('?')[0] ?? '';
  return path === '/v1' || path.startsWith('/v1/') ? 'key' : 'public';
}

export function registerAuth(
  app: FastifyInstance,
  deps: { keys: Authenticator; limiter: RateLimiter },
): void {
  app.addHook('onRequest', async (request, reply) => {
    if (authModeOf(request) !== 'key') return;
    const key = deps.keys.authenticate(request.headers.authorization);
    request.apiKey = key;
    const decision = deps.limiter.take(key.name);
    if (!decision.allowed) throw new RateLimitedError(decision.retryAfterS);
    void reply.header('x-ratelimit-remaining', String(decision.remaining));
    if (request.routeOptions.config.admin && !key.admin)
      throw new ForbiddenError('this route needs an admin key');
  });
}

/** The authenticated key of a key-protected route (a route that forgot `auth` still fails closed). */
export function requireKey(request: FastifyRequest): ApiKey {
  if (!request.apiKey) throw new UnauthorizedError();
  return request.apiKey;
}

export function assertDatasetAllowed(key: ApiKey, dataset: string): void {
  if (!canReadDataset(key, dataset)) {
    throw new ForbiddenError(`this key may not read dataset ${JSON.stringify(dataset)}`, {
      details: { dataset },
    });
  }
}

export function assertAdmin(key: ApiKey): void {
  if (!key.admin) throw new ForbiddenError('this route needs an admin key');
}

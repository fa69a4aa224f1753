import { ParquetryError } from '@parquetry/service';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { ZodError } from 'zod';

/**
 * HTTP errors of export-api, and the one place that turns any thrown value into
 * `{error:{code, message, details?}}` (DESIGN.md "export-api"). 5xx answers never carry
 * the message or details of what failed inside; the log line does.
 */

/** No key, an unknown key or a revoked key: one answer for all three, so none can be told apart. */
export class UnauthorizedError extends ParquetryError {
  constructor() {
    super('unauthorized', 'missing or invalid API key', { status: 401 });
  }
}

export class ForbiddenError extends ParquetryError {
  constructor(message: string, opts: { cause?: unknown; details?: unknown } = {}) {
    super('forbidden', message, { ...opts, status: 403 });
  }
}

export class RateLimitedError extends ParquetryError {
  readonly retryAfterS: number;
  constructor(retryAfterS: number) {
    super('rate_limited', 'too many requests for this key', {
      status: 429,
      retryable: true,
      details: { retry_after_s: retryAfterS },
    });
    this.retryAfterS = retryAfterS;
  }
}

export class ServiceUnavailableError extends ParquetryError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('unavailable', message, { ...opts, status: 503, retryable: true });
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export interface ErrorResponse {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
}

function body(code: string, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

const HIDDEN: Record<number, { code: string; message: string }> = {
  503: { code: 'unavailable', message: 'service temporarily unavailable, retry later' },
};

function fastifyStatus(err: unknown): number | undefined {
  const status = (err as Partial<FastifyError>)?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : undefined;
}

/** Maps anything thrown in a request to its response; pure, so the mapping has its own tests. */
export function toErrorResponse(err: unknown): ErrorResponse {
  const headers: Record<string, string> = {};
  if (err instanceof ParquetryError) {
    if (err.status >= 500) {
      const hidden = HIDDEN[err.status] ?? { code: 'internal', message: 'internal error' };
      return { status: err.status === 503 ? 503 : 500, body: body(hidden.code, hidden.message), headers };
    }
    if (err instanceof RateLimitedError) headers['retry-after'] = String(err.retryAfterS);
    if (err.status === 401) headers['www-authenticate'] = 'Bearer';
    return { status: err.status, body: body(err.code, err.message, err.details), headers };
  }
  if (err instanceof ZodError) {
    return {
      status: 400,
      body: body('invalid_input', 'request does not match the schema', issues(err)),
      headers,
    };
  }
  const fe = err as Partial<FastifyError>;
  const status = fastifyStatus(err);
  if (status === 413 || fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return { status: 413, body: body('payload_too_large', 'request body is too large'), headers };
  }
  if (status === 414 || fe.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    // Fastify's message repeats the whole URL: never echo it.
    return { status: 414, body: body('uri_too_long', 'request URI is too long'), headers };
  }
  if (fe.validation) {
    return { status: 400, body: body('invalid_input', fe.message ?? 'invalid request'), headers };
  }
  if (status !== undefined && status < 500) {
    // Fastify's own 4xx (bad JSON, wrong content type, proto poisoning): the message is its own text.
    const code = status === 404 ? 'not_found' : status === 415 ? 'unsupported_media_type' : 'invalid_input';
    return { status, body: body(code, fe.message ?? 'invalid request'), headers };
  }
  return { status: 500, body: body('internal', 'internal error'), headers };
}

/** zod issues as `details`, without echoing the received values. */
export function issues(err: ZodError): { issues: { path: string; message: string }[] } {
  return {
    issues: err.issues.slice(0, 20).map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
  };
}

export function registerErrorHandling(app: FastifyInstance, logger: Logger): void {
  app.setErrorHandler((err, request, reply) => {
    const res = toErrorResponse(err);
    if (res.status >= 500) logger.error({ err, route: request.routeOptions.url }, 'request_failed');
    else logger.debug({ code: res.body.error.code, status: res.status }, 'request_rejected');
    void reply.code(res.status).headers(res.headers).send(res.body);
  });
  app.setNotFoundHandler((_request, reply) => {
    void reply.code(404).send(body('not_found', 'no route for this method and path'));
  });
}

/**
 * Errors Fastify raises before routing (a path parameter too long, a malformed URL), passed to
 * its `frameworkErrors` option so they answer in the same `{error:{code, message}}` shape.
 */
export function frameworkErrorHandler(err: unknown, _request: unknown, reply: FastifyReply): void {
  const res = toErrorResponse(err);
  void reply.code(res.status).headers(res.headers).send(res.body);
}

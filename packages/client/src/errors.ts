/**
 * Errors of the client. Every failure is a `ParquetryClientError` with a `code`; answers of the
 * API carry its `{code, message, details}` and the HTTP status, in a class per status so callers
 * can `instanceof` what they handle (and `retryable` says whether trying again can help).
 */
export class ParquetryClientError extends Error {
  readonly code: string;
  readonly details: unknown;
  readonly retryable: boolean;

  constructor(
    code: string,
    message: string,
    opts: { details?: unknown; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = opts.details;
    this.retryable = opts.retryable ?? false;
  }
}

/** The API answered with an error: `{error:{code, message, details?}}` and this status. */
export class ApiError extends ParquetryClientError {
  readonly status: number;
  constructor(status: number, code: string, message: string, details?: unknown) {
    super(code, message, { details, retryable: status === 429 || status === 503 });
    this.status = status;
  }
}
/** 400: the request is wrong (`details` says where); an unknown dataset lists the valid ones. */
export class InvalidRequestError extends ApiError {}
/** 401: no key, an unknown key or a revoked key. */
export class UnauthorizedError extends ApiError {}
/** 403: a dataset outside the key's scope, an admin route, or an invalid or expired download link. */
export class ForbiddenError extends ApiError {}
/** 404: no such route or id (an export of another key is not found either). */
export class NotFoundError extends ApiError {}
export class ConflictError extends ApiError {}
export class PayloadTooLargeError extends ApiError {}
/** 429: wait `retryAfterS` seconds. */
export class RateLimitedError extends ApiError {
  readonly retryAfterS: number | undefined;
  constructor(status: number, code: string, message: string, details?: unknown, retryAfterS?: number) {
    super(status, code, message, details);
    this.retryAfterS = retryAfterS;
  }
}
/** 5xx. */
export class ServerError extends ApiError {}

/** No answer in time (`timeoutMs`), or the connection failed. */
export class RequestTimeoutError extends ParquetryClientError {
  constructor(message: string, cause?: unknown) {
    super('timeout', message, { retryable: true, cause });
  }
}
export class NetworkError extends ParquetryClientError {
  constructor(message: string, cause?: unknown) {
    super('network', message, { retryable: true, cause });
  }
}

/** The export ran and failed; `code` and `message` are the server's. */
export class ExportFailedError extends ParquetryClientError {
  readonly exportId: string;
  constructor(exportId: string, code: string, message: string) {
    super(code, `export ${exportId} failed: ${message}`);
    this.exportId = exportId;
  }
}

/** waitForExport gave up while the export was still running. */
export class ExportWaitTimeoutError extends ParquetryClientError {
  readonly exportId: string;
  constructor(exportId: string, waitedMs: number) {
    super('wait_timeout', `export ${exportId} still running after ${waitedMs} ms`, { retryable: true });
    this.exportId = exportId;
  }
}

/** The error for an HTTP error answer, by status. */
export function apiErrorFor(status: number, body: unknown, retryAfter: string | null): ApiError {
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  const code = typeof e?.code === 'string' ? e.code : `http_${status}`;
  const message = typeof e?.message === 'string' ? e.message : `HTTP ${status}`;
  const details = e?.details;
  switch (status) {
    case 400:
      return new InvalidRequestError(status, code, message, details);
    case 401:
      return new UnauthorizedError(status, code, message, details);
    case 403:
      return new ForbiddenError(status, code, message, details);
    case 404:
      return new NotFoundError(status, code, message, details);
    case 409:
      return new ConflictError(status, code, message, details);
    case 413:
      return new PayloadTooLargeError(status, code, message, details);
    case 429: {
      const s = retryAfter === null ? Number.NaN : Number(retryAfter);
      return new RateLimitedError(status, code, message, details, Number.isFinite(s) ? s : undefined);
    }
    default:
      return status >= 500
        ? new ServerError(status, code, message, details)
        : new ApiError(status, code, message, details);
  }
}

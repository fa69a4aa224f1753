/**
 * Every failure Parquetry raises on purpose is a named ParquetryError with a stable `code`
 * and a `retryable` flag. The consumer boundary (bus) maps these to ack / nak / dead letter
 * in one place; HTTP maps `status` to the response. Unknown errors are treated as retryable.
 */
export class ParquetryError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly status: number;
  readonly details?: unknown;

  constructor(
    code: string,
    message: string,
    opts: { retryable?: boolean; status?: number; cause?: unknown; details?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.status = opts.status ?? 500;
    this.details = opts.details;
  }
}

/** The input can never succeed (bad JSON, schema violation, hostile name): dead-letter it. */
export class InvalidInputError extends ParquetryError {
  constructor(message: string, opts: { cause?: unknown; details?: unknown; code?: string } = {}) {
    super(opts.code ?? 'invalid_input', message, { ...opts, retryable: false, status: 400 });
  }
}

/** A dependency hiccup (S3 down, NATS timeout, disk full): try again later. */
export class TransientError extends ParquetryError {
  constructor(message: string, opts: { cause?: unknown; details?: unknown; code?: string } = {}) {
    super(opts.code ?? 'transient', message, { ...opts, retryable: true, status: 503 });
  }
}

/** Optimistic concurrency lost a race; the caller re-reads and retries. */
export class ConflictError extends ParquetryError {
  constructor(message: string, opts: { cause?: unknown; details?: unknown } = {}) {
    super('conflict', message, { ...opts, retryable: true, status: 409 });
  }
}

export class NotFoundError extends ParquetryError {
  constructor(message: string, opts: { cause?: unknown; details?: unknown } = {}) {
    super('not_found', message, { ...opts, retryable: false, status: 404 });
  }
}

export class ConfigError extends ParquetryError {
  constructor(message: string, opts: { cause?: unknown; details?: unknown } = {}) {
    super('config', message, { ...opts, retryable: false, status: 500 });
  }
}

/** True when an error should be retried; anything we did not classify counts as retryable. */
export function isRetryable(err: unknown): boolean {
  return err instanceof ParquetryError ? err.retryable : true;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

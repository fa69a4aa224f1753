import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/** Keys whose values never reach a log line. */
export const REDACT_PATHS = [
  'AWS_SECRET_ACCESS_KEY',
  'AWS_ACCESS_KEY_ID',
  'DATABASE_URL',
  'EXPORT_SIGNING_SECRET',
  '*.AWS_SECRET_ACCESS_KEY',
  '*.AWS_ACCESS_KEY_ID',
  '*.DATABASE_URL',
  '*.EXPORT_SIGNING_SECRET',
  '*.password',
  '*.apiKey',
  'req.headers.authorization',
  'headers.authorization',
];

/** JSON lines on stdout, one `service` field on every line (docs/observability.md). */
export function createLogger(service: string, level = 'info'): Logger {
  return pino({
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** A logger that writes nothing, for tests and CLI commands that print their own output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

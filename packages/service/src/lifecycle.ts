import type { Logger } from 'pino';

/**
 * Run `stop` once on SIGTERM/SIGINT (graceful drain), then exit. A second signal exits at once.
 * Returns a function that removes the handlers (for tests).
 */
export function onShutdown(
  logger: Logger,
  stop: () => Promise<void>,
  opts: { timeoutMs?: number } = {},
): () => void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second_signal_exiting');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'draining');
    // A drain that cannot finish (NATS gone for good) must not keep the process alive forever.
    setTimeout(() => {
      logger.error({ timeoutMs: opts.timeoutMs ?? 45_000 }, 'drain_timed_out');
      process.exit(1);
    }, opts.timeoutMs ?? 45_000).unref();
    stop()
      .then(() => {
        logger.info('stopped');
        process.exit(0);
      })
      .catch((err) => {
        logger.error({ err }, 'stop_failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}

/** Run main(); a startup failure prints one clear line and exits non-zero. */
export function runMain(service: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${service}: ${message}\n`);
    process.exit(1);
  });
}

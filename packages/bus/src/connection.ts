import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type Logger, TransientError } from '@parquetry/service';
import { reconnectWaitMs } from './backoff.js';

export interface ConnectBusOptions {
  /** One server or a comma-separated list (NATS_URL). */
  url: string;
  /** Connection name shown by the server (the service name). */
  name: string;
  logger: Logger;
  /**
   * Keep trying when the server is not up yet instead of failing at once (services started
   * before NATS). Default false: a CLI with a wrong URL should fail, not hang.
   */
  waitOnFirstConnect?: boolean;
  /** Reconnect backoff: from initialMs, growing with the outage up to maxMs, ±20% jitter (defaults 250 ms, 5 s). */
  reconnect?: { initialMs?: number; maxMs?: number };
  /** Timeout of each connection attempt (default 5 s). */
  timeoutMs?: number;
}

/** A connection with its JetStream contexts. */
export interface Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** False between a disconnect and the following reconnect (readiness probes). */
  isConnected(): boolean;
  /** Flush what is buffered and close; resolves when closed. */
  close(): Promise<void>;
}

/** The URL without credentials, for logs and error messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/g, '//***@');
}

/**
 * Connect for a long-running service: `noAsyncTraces` (JetStream publish builds an Error per
 * request otherwise, halving throughput — MEASURED.md), infinite reconnects with exponential
 * backoff so the service rides out a server restart, and status changes logged (disconnect at
 * warn, reconnect at info) instead of surfacing as errors.
 */
export async function connectBus(opts: ConnectBusOptions): Promise<Bus> {
  const { logger } = opts;
  const servers = opts.url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  // Set when an outage starts; the jitter factor is drawn once per outage so the wait stays
  // stable while the client polls the delay handler.
  let outageStart = 0;
  let jitter = 1;
  const reconnect = { initialMs: opts.reconnect?.initialMs ?? 250, maxMs: opts.reconnect?.maxMs ?? 5000 };
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name: opts.name,
      noAsyncTraces: true,
      maxReconnectAttempts: -1,
      waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
      timeout: opts.timeoutMs ?? 5000,
      reconnectDelayHandler: () =>
        Math.round(reconnectWaitMs(outageStart ? Date.now() - outageStart : 0, reconnect) * jitter),
    });
  } catch (err) {
    throw new TransientError(`cannot connect to NATS at ${redactUrl(opts.url)}: ${(err as Error).message}`, {
      code: 'nats_unavailable',
      cause: err,
    });
  }
  let connected = true;
  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          connected = false;
          outageStart = Date.now();
          jitter = 0.8 + Math.random() * 0.4;
          logger.warn({ server: redactUrl(s.server) }, 'nats_disconnected');
          break;
        case 'reconnect':
          connected = true;
          outageStart = 0;
          logger.info({ server: redactUrl(s.server) }, 'nats_reconnected');
          break;
        case 'staleConnection':
          logger.warn('nats_stale_connection');
          break;
        case 'slowConsumer':
          logger.warn({ subject: s.sub.getSubject(), pending: s.pending }, 'nats_slow_consumer');
          break;
        case 'error':
          logger.error({ err: s.error }, 'nats_error');
          break;
        case 'ldm':
          logger.info({ server: redactUrl(s.server) }, 'nats_lame_duck');
          break;
        default:
          break;
      }
    }
  })().catch(() => {});
  void nc.closed().then((err) => {
    connected = false;
    if (err) logger.error({ err }, 'nats_closed');
    else logger.debug('nats_closed');
  });

  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
  } catch (err) {
    await nc.close().catch(() => {});
    throw new TransientError(
      `JetStream is not available at ${redactUrl(opts.url)}: ${(err as Error).message}`,
      {
        code: 'jetstream_unavailable',
        cause: err,
      },
    );
  }
  logger.debug({ server: redactUrl(nc.getServer()) }, 'nats_connected');
  return {
    nc,
    js: jetstream(nc),
    jsm,
    isConnected: () => connected && !nc.isClosed(),
    async close() {
      if (nc.isClosed()) return;
      await nc.drain().catch(async () => {
        await nc.close();
      });
    },
  };
}

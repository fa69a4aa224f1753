import type { Bus } from '@parquetry/bus';
import { candle, lakeCommitted } from '@parquetry/lake';
import type { Logger } from 'pino';
import type { CandleService } from './service.js';

/**
 * The candle routes follow the bus with plain subscriptions (every export-api instance needs
 * every message, and none needs history): `lake.committed.candles` drops cached partitions and
 * marks them for a catalog re-read; `market.candles.>` adds closed candles before any file has
 * them. Messages published to JetStream reach core subscribers too. After a reconnect the
 * notices of the outage may be lost, so the whole catalog view is read again; closed candles
 * of the outage come from the files once the aggregator writes them.
 */
export type EventConnection = Pick<Bus['nc'], 'subscribe' | 'status'>;

export const LAKE_COMMITTED_CANDLES = 'lake.committed.candles';
export const CLOSED_CANDLES = 'market.candles.>';

export function subscribeCandleEvents(
  nc: EventConnection,
  service: CandleService,
  logger: Logger,
): () => void {
  const decoder = new TextDecoder();
  const parse = (data: Uint8Array): unknown => {
    try {
      return JSON.parse(decoder.decode(data));
    } catch {
      return undefined;
    }
  };
  const committed = nc.subscribe(LAKE_COMMITTED_CANDLES, {
    callback: (err, msg) => {
      if (err) return;
      const event = lakeCommitted.safeParse(parse(msg.data));
      if (event.success) service.onCommitted(event.data);
      else logger.debug({ subject: msg.subject }, 'malformed_lake_committed_ignored');
    },
  });
  const closed = nc.subscribe(CLOSED_CANDLES, {
    callback: (err, msg) => {
      if (err) return;
      const c = candle.safeParse(parse(msg.data));
      if (c.success) service.onClosedCandle(c.data);
      else logger.debug({ subject: msg.subject }, 'malformed_candle_ignored');
    },
  });
  let stopped = false;
  void (async () => {
    for await (const s of nc.status()) {
      if (stopped) break;
      if (s.type === 'reconnect') service.onReconnect();
    }
  })().catch(() => {});
  return () => {
    stopped = true;
    committed.unsubscribe();
    closed.unsubscribe();
  };
}

import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { deadLetterHeaders, STREAM_NAMES, subjects } from '@parquetry/bus';
import type { Logger, Metrics } from '@parquetry/service';
import { AckedPublisher } from './acked-publisher.js';
import { type CandleRecord, toCandleMessage } from './domain/candle.js';

/**
 * Everything the service puts on the bus: closed and revised candles, and dead letters.
 * Publishes are fired without waiting (the tick loop never blocks on the bus) and tracked;
 * a publish is repeated until the stream stores it (AckedPublisher). `settled()` resolves once the
 * publishes started so far are stored — the state is persisted only after that, so a
 * restart never skips an output. Every message carries a Nats-Msg-Id derived from what it
 * is (`<symbol>.<tf>.<start>.<revision>` for candles), so the replay after a crash, which
 * re-creates the same outputs, is dropped by JetStream's duplicate window.
 */
export const SERVICE = 'candle-aggregator';
export const CONSUMER_NAME = 'candle-aggregator-ordered';

export function candleMsgId(c: CandleRecord): string {
  return `${c.symbol}.${c.timeframe}.${c.start}.${c.revision}`;
}

export interface DeadLetterTick {
  subject: string;
  seq: number;
  /** Index of the tick in the message's array, when only that tick is rejected. */
  index: number | undefined;
  data: Uint8Array;
  headers: MsgHdrs | undefined;
  reason: string;
  detail: string;
}

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

export class BusOutputs {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly publisher: AckedPublisher;
  private readonly candlesOut;
  private readonly revisedOut;
  private readonly dead;

  constructor(
    private readonly nc: NatsConnection,
    private readonly logger: Logger,
    metrics: Metrics,
  ) {
    this.publisher = new AckedPublisher(nc, logger);
    this.candlesOut = metrics.counter('parquetry_candles_closed_total', 'candles published closed', [
      'timeframe',
    ]);
    this.revisedOut = metrics.counter(
      'parquetry_candles_revised_total',
      'candles republished after a late tick',
      ['timeframe'],
    );
    this.dead = metrics.counter('parquetry_dead_letters_total', 'Messages sent to the DLQ stream', [
      'stream',
      'reason',
    ]);
  }

  get pending(): number {
    return this.inFlight.size;
  }

  candle(c: CandleRecord): void {
    const data = encoder.encode(JSON.stringify(toCandleMessage(c)));
    const counter = c.revision === 0 ? this.candlesOut : this.revisedOut;
    this.track(this.publisher.publish(subjects.candles(c.timeframe, c.symbol), data, candleMsgId(c)), () =>
      counter.inc({ timeframe: c.timeframe }),
    );
  }

  deadLetter(d: DeadLetterTick): void {
    const headers = deadLetterHeaders({
      service: SERVICE,
      stream: STREAM_NAMES.ticks,
      consumer: CONSUMER_NAME,
      subject: d.subject,
      seq: d.seq,
      deliveryCount: 1,
      data: d.data,
      headers: d.headers,
      reason: d.reason,
      code: d.reason,
      error: d.detail,
    });
    if (d.index !== undefined) headers.set('Parquetry-Tick-Index', String(d.index));
    // A body the server cannot take back (it was at its limit already) goes as headers only.
    const room = (this.nc.info?.max_payload ?? 1024 * 1024) - 8192;
    const data = d.data.length > room ? EMPTY : d.data;
    if (data !== d.data) headers.set('Parquetry-Body-Dropped', String(d.data.length));
    const msgId = `dlq:${SERVICE}:${STREAM_NAMES.ticks}:${d.seq}${d.index === undefined ? '' : `:${d.index}`}`;
    this.track(this.publisher.publish(subjects.deadLetter(SERVICE, d.subject), data, msgId, headers), () =>
      this.dead.inc({ stream: STREAM_NAMES.ticks, reason: d.reason }),
    );
    this.logger.debug({ subject: d.subject, seq: d.seq, index: d.index, reason: d.reason }, 'dead_letter');
  }

  /** Resolves when every publish started before this call is stored. */
  async settled(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  /** Stop (shutdown): publishes still pending are left to the replay after restart. */
  stop(): void {
    this.publisher.close();
  }

  private track(stored: Promise<void>, onStored: () => void): void {
    const p = stored.then(onStored).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }
}

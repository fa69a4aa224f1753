import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { STREAM_NAMES } from '@parquetry/bus';
import type { Logger } from '@parquetry/service';

/**
 * The TICKS stream in order, from a given sequence, through an ordered consumer: no acks (the
 * position that matters is the one in the persisted partition state), no redeliveries, no
 * gaps — the client re-creates the consumer from the last sequence it delivered whenever it
 * misses a heartbeat or a message. Messages are handed over in a callback, synchronously,
 * which is what lets the tick loop run without a promise per message.
 *
 * `pause()` holds delivery (a job that must not interleave with ticks, or back-pressure):
 * messages that still arrive are kept, and past `maxHeld` the consumer is closed and later
 * re-opened right after the last message kept, so memory stays bounded however long the pause.
 */
export interface TickSourceOptions {
  js: JetStreamClient;
  startSeq: number;
  batch: number;
  onMessage: (m: JsMsg) => void;
  onError: (err: unknown) => void;
  logger: Logger;
  maxHeld?: number;
}

export class TickSource {
  private messages: ConsumerMessages | undefined;
  /** Bumped on every (re)open: deliveries of a closed consumer are ignored. */
  private generation = 0;
  private held: JsMsg[] = [];
  private heldFrom = 0;
  private paused = 0;
  private suspendedAt: number | undefined;
  private stopped = false;
  private readonly maxHeld: number;

  constructor(private readonly opts: TickSourceOptions) {
    this.maxHeld = opts.maxHeld ?? 50_000;
  }

  async start(): Promise<void> {
    await this.open(this.opts.startSeq);
  }

  pause(): void {
    this.paused++;
  }

  resume(): void {
    if (this.paused > 0) this.paused--;
    if (this.paused > 0) return;
    while (this.heldFrom < this.held.length && this.paused === 0 && !this.stopped) {
      const m = this.held[this.heldFrom]!;
      this.held[this.heldFrom++] = undefined as unknown as JsMsg;
      this.opts.onMessage(m);
    }
    if (this.heldFrom >= this.held.length) {
      this.held = [];
      this.heldFrom = 0;
      if (this.suspendedAt !== undefined && this.paused === 0 && !this.stopped) {
        const seq = this.suspendedAt;
        this.suspendedAt = undefined;
        this.open(seq).catch((err: unknown) => this.opts.onError(err));
      }
    }
  }

  get isPaused(): boolean {
    return this.paused > 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    this.held = [];
    await this.messages?.close().catch(() => {});
  }

  private async open(startSeq: number): Promise<void> {
    const generation = ++this.generation;
    const consumer = await this.opts.js.consumers.get(STREAM_NAMES.ticks, {
      filter_subjects: 'market.ticks.>',
      opt_start_seq: startSeq,
    });
    if (this.stopped) return;
    const messages = await consumer.consume({
      max_messages: this.opts.batch,
      callback: (m) => {
        if (generation !== this.generation) return;
        if (this.paused > 0 || this.heldFrom < this.held.length) this.hold(m);
        else this.opts.onMessage(m);
      },
    });
    this.messages = messages;
    void messages.closed().then((err) => {
      if (err && generation === this.generation && !this.stopped) this.opts.onError(err);
    });
    this.opts.logger.debug({ startSeq }, 'tick consumer opened');
  }

  private hold(m: JsMsg): void {
    this.held.push(m);
    if (this.held.length - this.heldFrom >= this.maxHeld && this.suspendedAt === undefined) {
      this.suspendedAt = m.seq + 1;
      this.generation++;
      void this.messages?.close().catch(() => {});
    }
  }
}

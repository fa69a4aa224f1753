import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { exponentialDelayMs, STREAM_NAMES } from '@parquetry/bus';
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
 *
 * Watchdog: an ordered consumer is R1 and lives on ONE server. When that server dies, nats.js
 * (3.4) does not always recover it: a client that was connected to the dead server reconnects,
 * asks for the consumer's info, gets timeouts forever and never re-creates it (no heartbeat
 * monitor while it retries). And nats-server 2.9.x places a new R1 consumer on a dead stream
 * peer about one time in three until that peer is back (nats-server#3791, fixed by #3820), so a
 * creation can time out. Hence: pulls expire every few seconds (idle heartbeats at half that),
 * anything that arrives — message or heartbeat — counts as a sign of life, and after
 * `watchdogMs` without one the consumer is re-opened right after the last message received;
 * a failed open is retried instead of being fatal.
 */
export interface TickSourceOptions {
  js: JetStreamClient;
  startSeq: number;
  batch: number;
  onMessage: (m: JsMsg) => void;
  onError: (err: unknown) => void;
  logger: Logger;
  maxHeld?: number;
  /** Pull expiry (default 5 s); the server sends idle heartbeats every half of it. */
  expiresMs?: number;
  /** Re-open the consumer after this long without a message or heartbeat (default 2 × expiresMs: four heartbeats). */
  watchdogMs?: number;
  /** Give up (onError) when opening keeps failing this long (default 5 min). */
  openRetryMs?: number;
}

export class TickSource {
  private messages: ConsumerMessages | undefined;
  private consumerName: string | undefined;
  /** Bumped on every (re)open: deliveries of a closed consumer are ignored. */
  private generation = 0;
  private held: JsMsg[] = [];
  private heldFrom = 0;
  private paused = 0;
  private suspendedAt: number | undefined;
  private stopped = false;
  private readonly maxHeld: number;
  private readonly expiresMs: number;
  private readonly watchdogMs: number;
  /** Stream sequence of the last message received (delivered or held). */
  private lastSeq: number;
  private lastActivity = Date.now();
  private opening = false;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(private readonly opts: TickSourceOptions) {
    this.maxHeld = opts.maxHeld ?? 50_000;
    this.expiresMs = opts.expiresMs ?? 5000;
    this.watchdogMs = opts.watchdogMs ?? 2 * this.expiresMs;
    this.lastSeq = opts.startSeq - 1;
  }

  async start(): Promise<void> {
    await this.open(this.opts.startSeq);
    this.watchdog = setInterval(() => this.check(), Math.min(1000, this.watchdogMs / 4));
    this.watchdog.unref();
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
    if (this.watchdog) clearInterval(this.watchdog);
    await this.messages?.close().catch(() => {});
  }

  /** No message and no heartbeat for watchdogMs: the consumer (or its server) is gone. */
  private check(): void {
    if (this.stopped || this.opening || this.suspendedAt !== undefined) return;
    const idle = Date.now() - this.lastActivity;
    if (idle < this.watchdogMs) return;
    this.opts.logger.warn(
      { idleMs: idle, from: this.lastSeq + 1, consumer: this.consumerName },
      'tick_consumer_silent',
    );
    this.open(this.lastSeq + 1).catch((err: unknown) => this.opts.onError(err));
  }

  private async open(startSeq: number): Promise<void> {
    const generation = ++this.generation;
    this.opening = true;
    const old = this.messages;
    const oldName = this.consumerName;
    this.messages = undefined;
    void old?.close().catch(() => {});
    // Best effort: the old ordered consumer would otherwise linger until its inactive threshold.
    if (oldName) {
      void this.opts.js
        .jetstreamManager()
        .then((jsm) => jsm.consumers.delete(STREAM_NAMES.ticks, oldName))
        .catch(() => {});
    }
    const deadline = Date.now() + (this.opts.openRetryMs ?? 300_000);
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const consumer = await this.opts.js.consumers.get(STREAM_NAMES.ticks, {
            filter_subjects: 'market.ticks.>',
            opt_start_seq: startSeq,
          });
          if (this.stopped || generation !== this.generation) return;
          const messages = await consumer.consume({
            max_messages: this.opts.batch,
            expires: this.expiresMs,
            callback: (m) => {
              if (generation !== this.generation) return;
              this.lastActivity = Date.now();
              this.lastSeq = m.seq;
              if (this.paused > 0 || this.heldFrom < this.held.length) this.hold(m);
              else this.opts.onMessage(m);
            },
          });
          this.messages = messages;
          // The name, for deleting this consumer when it is replaced (the cached info: no request).
          this.consumerName = await consumer.info(true).then(
            (i) => i.name,
            () => undefined,
          );
          this.lastActivity = Date.now();
          void (async () => {
            for await (const s of messages.status()) {
              if (generation !== this.generation) break;
              if (s.type === 'heartbeat') this.lastActivity = Date.now();
            }
          })().catch(() => {});
          void messages.closed().then((err) => {
            if (!err || generation !== this.generation || this.stopped) return;
            // Closed by the client on an error (e.g. the stream's leader lost): open again.
            this.opts.logger.warn({ err, from: this.lastSeq + 1 }, 'tick_consumer_closed');
            this.open(this.lastSeq + 1).catch((e: unknown) => this.opts.onError(e));
          });
          this.opts.logger.debug({ startSeq, attempt }, 'tick_consumer_opened');
          return;
        } catch (err) {
          // Creating the consumer timed out (placed on a dead peer, no meta leader yet): retry.
          if (this.stopped || generation !== this.generation) return;
          if (Date.now() >= deadline) throw err;
          this.opts.logger.warn({ err, attempt, startSeq }, 'tick_consumer_open_failed');
          await sleep(exponentialDelayMs(attempt, { initialMs: 250, maxMs: 5000 }));
        }
      }
    } finally {
      if (generation === this.generation) {
        this.opening = false;
        this.lastActivity = Date.now();
      }
    }
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

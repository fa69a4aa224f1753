import type { JsMsg } from '@nats-io/jetstream';
import { InvalidInputError } from '@parquetry/service';
import { type Outcome, Outcomes, outcomeForError } from './outcome.js';

/**
 * One delivered message as a handler sees it. A handler settles it by returning an outcome
 * for it, or later through these methods (a buffering handler acks once its flush is durable).
 * Settling twice is a no-op; the methods never reject (a failed dead letter falls back to a
 * redelivery), so they can be fired and forgotten.
 */
export interface BusMessage {
  readonly stream: string;
  readonly subject: string;
  readonly data: Uint8Array;
  /** Body size in bytes. */
  readonly size: number;
  /** First value of each header. */
  readonly headers: Readonly<Record<string, string>>;
  /** Stream sequence. */
  readonly seq: number;
  /** 1 on the first delivery. */
  readonly deliveryCount: number;
  readonly redelivered: boolean;
  /** When the message was stored in the stream. */
  readonly publishedAt: Date;
  /** Messages of the stream still waiting for this consumer after this one (0: caught up). */
  readonly pending: number;
  /** Acked, nak'ed or dead-lettered (by anyone). */
  readonly settled: boolean;
  /** The body as UTF-8; InvalidInputError when it is not. */
  text(): string;
  /** The body parsed as JSON; InvalidInputError (`invalid_json`) when it is not. */
  json<T = unknown>(): T;
  /** The work is durable. */
  ack(): Promise<void>;
  /** Deliver again after `delayMs` (default: the backoff schedule); dead-lettered on the last delivery. */
  nak(delayMs?: number, error?: unknown): Promise<void>;
  /** Permanent failure: copy to the DLQ with this reason (a short code) and never deliver again. */
  deadLetter(reason: string, error?: unknown): Promise<void>;
  /** Settle by the one error mapping: retryable → nak with backoff, otherwise dead letter. */
  fail(error: unknown): Promise<void>;
  settle(outcome: Outcome): Promise<void>;
  /** Still working: restart the server's ack_wait timer. */
  inProgress(): void;
}

/** What a message needs from the loop that delivered it. */
export interface MessageSettler {
  settle(msg: DeliveredMessage, outcome: Outcome): Promise<void>;
  inProgress(msg: DeliveredMessage): void;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class DeliveredMessage implements BusMessage {
  /** Whether the loop has counted this message as settled. */
  state: 'open' | 'settled' = 'open';
  /** Given to the handler (rather than still queued). */
  handedOut = false;
  private headerCache?: Record<string, string>;

  constructor(
    readonly raw: JsMsg,
    readonly stream: string,
    private readonly settler: MessageSettler,
  ) {}

  get subject(): string {
    return this.raw.subject;
  }
  get data(): Uint8Array {
    return this.raw.data;
  }
  get size(): number {
    return this.raw.data.length;
  }
  get seq(): number {
    return this.raw.seq;
  }
  get deliveryCount(): number {
    return this.raw.info.deliveryCount;
  }
  get redelivered(): boolean {
    return this.raw.redelivered;
  }
  get publishedAt(): Date {
    return this.raw.time;
  }
  get pending(): number {
    return this.raw.info.pending;
  }
  get settled(): boolean {
    return this.state === 'settled';
  }
  get headers(): Readonly<Record<string, string>> {
    if (!this.headerCache) {
      const out: Record<string, string> = {};
      const h = this.raw.headers;
      if (h) for (const k of h.keys()) out[k] = h.get(k);
      this.headerCache = out;
    }
    return this.headerCache;
  }

  text(): string {
    try {
      return utf8.decode(this.raw.data);
    } catch (err) {
      throw new InvalidInputError(`message ${this.stream}#${this.seq} is not UTF-8`, {
        code: 'invalid_utf8',
        cause: err,
      });
    }
  }

  json<T = unknown>(): T {
    const text = this.text();
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new InvalidInputError(`message ${this.stream}#${this.seq} is not valid JSON`, {
        code: 'invalid_json',
        cause: err,
      });
    }
  }

  ack(): Promise<void> {
    return this.settler.settle(this, Outcomes.ack());
  }
  nak(delayMs?: number, error?: unknown): Promise<void> {
    return this.settler.settle(this, Outcomes.retry(error, delayMs));
  }
  deadLetter(reason: string, error?: unknown): Promise<void> {
    return this.settler.settle(this, Outcomes.dead(reason, error));
  }
  fail(error: unknown): Promise<void> {
    return this.settler.settle(this, outcomeForError(error));
  }
  settle(outcome: Outcome): Promise<void> {
    return this.settler.settle(this, outcome);
  }
  inProgress(): void {
    this.settler.inProgress(this);
  }
}

import type { JsMsg } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';
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
  /**
   * The handler keeps the body elsewhere (spilled to disk): drop it from memory. `data` then
   * throws; `body()` (a dead letter) loads it back through `load`.
   */
  releaseBody(load: () => Promise<Uint8Array>): void;
  /** The body, loaded back if it was released. */
  body(): Promise<Uint8Array>;
}

/** What a message needs from the loop that delivered it. */
export interface MessageSettler {
  settle(msg: DeliveredMessage, outcome: Outcome): Promise<void>;
  inProgress(msg: DeliveredMessage): void;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** Publishes a reply (the JetStream ack protocol answers on a delivery's reply subject). */
export type Replier = (subject: string, payload: Uint8Array) => void;

/** JetStream's ack protocol (ADR-15): what a reply to a delivery's ack subject says. */
export const AckReply = {
  ack: encoder.encode('+ACK'),
  working: encoder.encode('+WPI'),
  nak: (delayMs?: number) =>
    encoder.encode(delayMs ? `-NAK ${JSON.stringify({ delay: Math.round(delayMs) * 1_000_000 })}` : '-NAK'),
  term: (reason?: string) => encoder.encode(reason ? `+TERM ${reason}` : '+TERM'),
} as const;

/**
 * The subject a delivery's acks go to. The client's JsMsg has it (its ack() publishes there) but
 * does not declare it; a client without it fails here, at the first delivery, not at an ack.
 */
function ackSubject(raw: JsMsg): string {
  const reply = (raw as JsMsg & { readonly reply?: unknown }).reply;
  if (typeof reply !== 'string' || !reply.startsWith('$JS.ACK.'))
    throw new Error("the NATS client no longer exposes a delivery's ack subject (JsMsg.reply)");
  return reply;
}

/**
 * A delivery as the loop keeps it: the fields it needs, copied out of the client's message, and
 * the body in a buffer of its own. The client's message is not kept: its body is a view of the
 * socket read it arrived in (a 64 KB chunk holding other messages) or of a buffer grown by
 * doubling for a body that spanned reads, so holding it until a commit pinned about twice the
 * body size (bench/ingest: external memory 390 MB for 128 MB of bodies held).
 */
export class DeliveredMessage implements BusMessage {
  /** Whether the loop has counted this message as settled. */
  state: 'open' | 'settled' = 'open';
  /** Given to the handler (rather than still queued). */
  handedOut = false;
  readonly subject: string;
  /** Body bytes (kept after the body is released). */
  readonly size: number;
  readonly seq: number;
  readonly deliveryCount: number;
  readonly pending: number;
  /** The client's parsed headers (all values), for dead letters. */
  readonly rawHeaders: MsgHdrs | undefined;
  private readonly replyTo: string;
  private readonly timestampMs: number;
  private headerCache?: Record<string, string>;
  private bytes: Uint8Array | undefined;
  private loadBody: (() => Promise<Uint8Array>) | undefined;

  constructor(
    raw: JsMsg,
    readonly stream: string,
    private readonly settler: MessageSettler,
    private readonly replier: Replier,
  ) {
    const info = raw.info;
    this.subject = raw.subject;
    this.bytes = Buffer.from(raw.data);
    this.size = this.bytes.length;
    this.seq = info.streamSequence;
    this.deliveryCount = info.deliveryCount;
    this.pending = info.pending;
    this.timestampMs = Math.floor(info.timestampNanos / 1_000_000);
    this.rawHeaders = raw.headers;
    this.replyTo = ackSubject(raw);
  }

  get data(): Uint8Array {
    if (!this.bytes) throw new Error(`message ${this.stream}#${this.seq}: its body was released`);
    return this.bytes;
  }
  releaseBody(load: () => Promise<Uint8Array>): void {
    this.loadBody = load;
    this.bytes = undefined;
  }
  body(): Promise<Uint8Array> {
    return this.bytes ? Promise.resolve(this.bytes) : this.loadBody!();
  }
  get redelivered(): boolean {
    return this.deliveryCount > 1;
  }
  get publishedAt(): Date {
    return new Date(this.timestampMs);
  }
  get settled(): boolean {
    return this.state === 'settled';
  }
  get headers(): Readonly<Record<string, string>> {
    if (!this.headerCache) {
      const out: Record<string, string> = {};
      const h = this.rawHeaders;
      if (h) for (const k of h.keys()) out[k] = h.get(k);
      this.headerCache = out;
    }
    return this.headerCache;
  }

  /** Answer the server on the delivery's ack subject (the loop's settlements go through here). */
  reply(payload: Uint8Array): void {
    this.replier(this.replyTo, payload);
  }

  text(): string {
    try {
      return utf8.decode(this.data);
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

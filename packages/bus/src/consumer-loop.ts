import type { Consumer, ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { ClosedConnectionError, type NatsConnection } from '@nats-io/transport-node';
import { type Logger, type Metrics, NotFoundError } from '@parquetry/service';
import { DEFAULT_RETRY_BACKOFF_MS, exponentialDelayMs } from './backoff.js';
import { publishDeadLetter } from './dead-letter.js';
import { AckReply, type BusMessage, DeliveredMessage, type MessageSettler } from './message.js';
import {
  admissionFor,
  type Outcome,
  outcomeForError,
  type RetryPolicy,
  type Settlement,
  settlementFor,
} from './outcome.js';
import { subjectToken } from './subjects.js';

/**
 * Receives a batch and may return one outcome per message (same order). Messages without an
 * outcome stay with the handler until it settles them through their methods. A thrown error
 * settles every still-open message of the batch through `outcomeForError`.
 */
export type HandlerResult = ReadonlyArray<Outcome | undefined> | undefined;
export type BatchHandler = (
  batch: readonly BusMessage[],
) => HandlerResult | Promise<HandlerResult> | Promise<void> | void;

export interface RunConsumerOptions {
  js: JetStreamClient;
  /** The connection `js` runs on: settlements are replies published on it. */
  nc: NatsConnection;
  stream: string;
  /** A durable pull consumer with explicit acks (ensureConsumer). */
  durable: string;
  handler: BatchHandler;
  /** Dead letters go to `dlq.<dlqService>.<original subject>`. */
  dlqService: string;
  logger: Logger;
  metrics?: Metrics;
  /** Most messages per handler call and per pull (default 100). */
  batchSize?: number;
  /**
   * About how many bytes one pull asks for (default 8 MiB; sized from the average message).
   * A pull of hundreds of large messages (300 KB product batches) stalls on the server until
   * it expires (measured: 60 s for 1000), so pulls of large messages are kept short.
   */
  maxPullBytes?: number;
  /** How long one pull waits for messages on the server (default 5 s, at least 1 s). */
  maxWaitMs?: number;
  /** Most messages received and not yet settled, held ones included (default 2 × batchSize). */
  maxInFlight?: number;
  /**
   * Most bytes of message bodies received and not yet settled (default unlimited). Keeps memory
   * bounded when a handler falls behind on large messages: pulling waits instead of queueing.
   */
  maxInFlightBytes?: number;
  /** Deliveries before a message that keeps failing is dead-lettered (default 5). */
  maxDeliver?: number;
  /** Redelivery delays (ms) after the 1st, 2nd, … failure; the last repeats. */
  backoff?: readonly number[];
  /** ±fraction of jitter on redelivery delays (default 0.1). */
  backoffJitter?: number;
  /** Larger messages are dead-lettered as `too_large` without being parsed (default unlimited). */
  maxMessageBytes?: number;
  /** Call inProgress() on every held message this often, so buffered work outlives ack_wait. */
  inProgressEveryMs?: number;
  /** stop() gives in-flight work this long (default 30 s). */
  stopTimeoutMs?: number;
  /** Called by stop() once fetching has stopped: settle what the handler still holds (flush). */
  onStop?: () => Promise<void> | void;
}

export interface ConsumerLoopStats {
  consumed: number;
  acked: number;
  retried: number;
  deadLettered: number;
  /** Received and not yet settled. */
  inFlight: number;
}

export interface ConsumerLoop {
  /** Stop fetching, let in-flight work finish (bounded by stopTimeoutMs), then resolve. */
  stop(): Promise<void>;
  stats(): ConsumerLoopStats;
  /** True until stop() is called or the connection is closed. */
  isRunning(): boolean;
}

/** Several waiters on "something changed" (room freed, work settled, stop requested). */
class Signal {
  private waiters: (() => void)[] = [];
  wait(timeoutMs?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(resolve, Math.max(0, timeoutMs));
      this.waiters.push(() => {
        if (timer) clearTimeout(timer);
        resolve();
      });
    });
  }
  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

type Counter = ReturnType<Metrics['counter']>;
type Gauge = ReturnType<Metrics['gauge']>;

/** Resolve when `p` settles or after `ms`, whichever comes first. */
async function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => {}), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

interface LoopMetrics {
  consumed?: Counter;
  acked?: Counter;
  retried?: Counter;
  dead?: Counter;
  pending?: Gauge;
}

function loopMetrics(metrics: Metrics | undefined): LoopMetrics {
  if (!metrics) return {};
  return {
    consumed: metrics.counter('parquetry_messages_consumed_total', 'Messages received by the consumer loop', [
      'stream',
    ]),
    acked: metrics.counter('parquetry_messages_acked_total', 'Messages acked after their work was durable', [
      'stream',
    ]),
    retried: metrics.counter('parquetry_messages_retried_total', 'Naks with delay', ['stream', 'reason']),
    dead: metrics.counter('parquetry_dead_letters_total', 'Messages sent to the DLQ stream', [
      'stream',
      'reason',
    ]),
    pending: metrics.gauge(
      'parquetry_consumer_pending_messages',
      'Messages in the stream not yet delivered to this consumer (as of the last delivery)',
      ['stream'],
    ),
  };
}

class Loop implements MessageSettler, ConsumerLoop {
  private readonly log: Logger;
  private readonly m: LoopMetrics;
  private readonly policy: RetryPolicy;
  private readonly batchSize: number;
  private readonly maxInFlight: number;
  private readonly maxWaitMs: number;
  private readonly maxPullBytes: number;
  /** Moving average of message sizes, for sizing pulls. */
  private avgBytes: number | undefined;
  private readonly maxMessageBytes: number;
  /** Received, not yet settled: queued for the handler or held by it. */
  private readonly unsettled = new Set<DeliveredMessage>();
  /** Body bytes of `unsettled`. */
  private unsettledBytes = 0;
  private readonly maxInFlightBytes: number;
  /** The latest delivery of each unsettled stream sequence. */
  private readonly latest = new Map<number, DeliveredMessage>();
  private queue: DeliveredMessage[] = [];
  /** Dead letters being published. */
  private readonly ops = new Set<Promise<void>>();
  private readonly changed = new Signal();
  private fetchIter: ConsumerMessages | undefined;
  private fetchLoopDone: Promise<void> = Promise.resolve();
  private dispatching = false;
  private dispatchDone: Promise<void> = Promise.resolve();
  private stopping = false;
  private stopPromise: Promise<void> | undefined;
  private keepAlive: NodeJS.Timeout | undefined;
  private readonly counts = { consumed: 0, acked: 0, retried: 0, deadLettered: 0 };
  private readonly replier = (subject: string, payload: Uint8Array) => this.opts.nc.publish(subject, payload);

  constructor(
    private readonly opts: RunConsumerOptions,
    private readonly consumer: Consumer,
  ) {
    this.log = opts.logger.child({ stream: opts.stream, consumer: opts.durable });
    this.m = loopMetrics(opts.metrics);
    this.batchSize = Math.max(1, opts.batchSize ?? 100);
    this.maxInFlight = Math.max(this.batchSize, opts.maxInFlight ?? this.batchSize * 2);
    this.maxInFlightBytes = opts.maxInFlightBytes ?? Number.POSITIVE_INFINITY;
    this.maxWaitMs = Math.max(1000, opts.maxWaitMs ?? 5000);
    this.maxPullBytes = Math.max(1024 * 1024, opts.maxPullBytes ?? 8 * 1024 * 1024);
    this.maxMessageBytes = opts.maxMessageBytes ?? Number.POSITIVE_INFINITY;
    this.policy = {
      maxDeliver: Math.max(1, opts.maxDeliver ?? 5),
      backoff: opts.backoff ?? DEFAULT_RETRY_BACKOFF_MS,
      jitter: opts.backoffJitter ?? 0.1,
    };
  }

  start(): void {
    if (this.opts.inProgressEveryMs && this.opts.inProgressEveryMs > 0) {
      this.keepAlive = setInterval(() => {
        for (const msg of this.unsettled)
          if (msg.handedOut && msg.state === 'open') msg.reply(AckReply.working);
      }, this.opts.inProgressEveryMs);
      this.keepAlive.unref();
    }
    this.fetchLoopDone = this.fetchLoop();
    this.log.info({ batchSize: this.batchSize, maxInFlight: this.maxInFlight }, 'started');
  }

  isRunning(): boolean {
    return !this.stopping;
  }

  stats(): ConsumerLoopStats {
    return { ...this.counts, inFlight: this.unsettled.size };
  }

  // ---- fetching -------------------------------------------------------------------------

  private async fetchLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      const room = this.maxInFlight - this.unsettled.size;
      if (room <= 0 || this.unsettledBytes >= this.maxInFlightBytes) {
        await this.changed.wait();
        continue;
      }
      // Asking for no more than there is room for keeps un-settled messages bounded. A pull
      // that is not filled stays open until maxWaitMs, but its messages are handed on as they
      // arrive, so a half-empty pull costs no latency.
      // Pulls are also sized by bytes, from the average message seen so far: a pull asking for
      // hundreds of large messages stalls on the server until it expires.
      const bySize = this.avgBytes === undefined ? 16 : Math.floor(this.maxPullBytes / this.avgBytes);
      const want = Math.max(1, Math.min(this.batchSize, room, bySize));
      try {
        const iter = await this.consumer.fetch({ max_messages: want, expires: this.maxWaitMs });
        this.fetchIter = iter;
        if (this.stopping) iter.stop();
        for await (const raw of iter) this.receive(raw);
        failures = 0;
      } catch (err) {
        if (this.stopping) break;
        if (err instanceof ClosedConnectionError) {
          this.log.error({ err }, 'consumer_connection_closed');
          this.stopping = true;
          break;
        }
        // Server restart or network trouble: the connection reconnects by itself; pull again.
        if (failures === 0 || failures % 10 === 0) this.log.warn({ err, failures }, 'fetch_failed');
        await this.changed.wait(exponentialDelayMs(failures++, { initialMs: 100, maxMs: 5000, jitter: 0.2 }));
      } finally {
        this.fetchIter = undefined;
      }
    }
  }

  private receive(raw: JsMsg): void {
    const msg = new DeliveredMessage(raw, this.opts.stream, this, this.replier);
    const size = msg.size + 64;
    this.avgBytes = this.avgBytes === undefined ? size : this.avgBytes * 0.9 + size * 0.1;
    this.counts.consumed++;
    this.m.consumed?.inc({ stream: this.opts.stream });
    this.m.pending?.set({ stream: this.opts.stream }, msg.pending);
    if (this.stopping) {
      // Arrived after stop(): hand it straight back so another instance takes it now.
      msg.state = 'settled';
      msg.reply(AckReply.nak());
      return;
    }
    // A redelivery (ack_wait expired while the handler held the message) supersedes the older
    // copy: it no longer counts as in flight, though settling it still reaches the server.
    const previous = this.latest.get(msg.seq);
    if (previous) this.forget(previous);
    this.latest.set(msg.seq, msg);
    this.unsettled.add(msg);
    this.unsettledBytes += msg.size;
    const rejected = admissionFor(msg, {
      maxMessageBytes: this.maxMessageBytes,
      maxDeliver: this.policy.maxDeliver,
    });
    if (rejected) {
      void this.apply(msg, rejected, false);
      return;
    }
    this.queue.push(msg);
    this.scheduleDispatch();
  }

  // ---- handing batches to the handler ---------------------------------------------------

  private scheduleDispatch(): void {
    if (this.dispatching) return;
    this.dispatching = true;
    this.dispatchDone = this.dispatch();
  }

  private async dispatch(): Promise<void> {
    try {
      // Let the rest of what arrived in the same read join this batch.
      await new Promise((resolve) => setImmediate(resolve));
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.batchSize);
        await this.runHandler(batch);
      }
    } finally {
      // Reset in the same tick as the empty-queue check, so a message queued right after
      // always schedules a new dispatch.
      this.dispatching = false;
    }
  }

  private async runHandler(batch: DeliveredMessage[]): Promise<void> {
    for (const msg of batch) msg.handedOut = true;
    let result: HandlerResult;
    try {
      result = (await this.opts.handler(batch)) ?? undefined;
    } catch (err) {
      const open = batch.filter((m) => m.state === 'open');
      const outcome = outcomeForError(err);
      this.log.warn({ err, messages: open.length, outcome: outcome.kind }, 'handler_failed');
      await Promise.all(open.map((m) => this.settleQuietly(m, outcome)));
      return;
    }
    if (!Array.isArray(result)) return;
    const settling: Promise<void>[] = [];
    for (let i = 0; i < batch.length; i++) {
      const outcome = result[i];
      const msg = batch[i];
      if (outcome && msg && msg.state === 'open') settling.push(this.settle(msg, outcome));
    }
    // Dead letters publish in the background; the next batch does not wait for them.
    void Promise.all(settling);
  }

  // ---- settling -------------------------------------------------------------------------

  /** The one place where outcomes become acks, naks and dead letters. */
  settle(msg: DeliveredMessage, outcome: Outcome): Promise<void> {
    if (msg.state !== 'open') return Promise.resolve();
    return this.apply(msg, settlementFor(outcome, msg.deliveryCount, this.policy), true);
  }

  private settleQuietly(msg: DeliveredMessage, outcome: Outcome): Promise<void> {
    if (msg.state !== 'open') return Promise.resolve();
    return this.apply(msg, settlementFor(outcome, msg.deliveryCount, this.policy), false);
  }

  inProgress(msg: DeliveredMessage): void {
    if (msg.state === 'open') msg.reply(AckReply.working);
  }

  private apply(msg: DeliveredMessage, s: Settlement, loud: boolean): Promise<void> {
    switch (s.action) {
      case 'hold':
        return Promise.resolve();
      case 'ack':
        msg.state = 'settled';
        msg.reply(AckReply.ack);
        this.counts.acked++;
        this.m.acked?.inc({ stream: this.opts.stream });
        this.release(msg);
        return Promise.resolve();
      case 'nak': {
        msg.state = 'settled';
        msg.reply(AckReply.nak(s.delayMs));
        this.counts.retried++;
        this.m.retried?.inc({ stream: this.opts.stream, reason: s.reason });
        const fields = {
          subject: msg.subject,
          seq: msg.seq,
          delivery: msg.deliveryCount,
          delayMs: s.delayMs,
        };
        if (loud && s.error !== undefined) this.log.warn({ ...fields, err: s.error }, 'retry');
        else this.log.debug({ ...fields, reason: s.reason }, 'retry');
        this.release(msg);
        return Promise.resolve();
      }
      case 'dead': {
        msg.state = 'settled';
        const op = this.deadLetter(msg, s).finally(() => {
          this.ops.delete(op);
          this.release(msg);
        });
        this.ops.add(op);
        return op;
      }
      default: {
        const never: never = s;
        throw new Error(`unknown settlement ${JSON.stringify(never)}`);
      }
    }
  }

  private async deadLetter(msg: DeliveredMessage, s: Extract<Settlement, { action: 'dead' }>): Promise<void> {
    try {
      await publishDeadLetter(this.opts.js, {
        service: this.opts.dlqService,
        stream: this.opts.stream,
        consumer: this.opts.durable,
        subject: msg.subject,
        seq: msg.seq,
        deliveryCount: msg.deliveryCount,
        data: await msg.body(),
        headers: msg.rawHeaders,
        reason: s.reason,
        code: s.code,
        error: s.error,
      });
    } catch (err) {
      // The DLQ is unreachable: have the message delivered again rather than lose it.
      msg.reply(AckReply.nak(this.policy.backoff[0] ?? 1000));
      this.log.error({ err, subject: msg.subject, seq: msg.seq, reason: s.reason }, 'dead_letter_failed');
      return;
    }
    msg.reply(AckReply.term());
    this.counts.deadLettered++;
    this.m.dead?.inc({ stream: this.opts.stream, reason: s.reason });
    this.log.warn(
      {
        subject: msg.subject,
        seq: msg.seq,
        delivery: msg.deliveryCount,
        reason: s.reason,
        code: s.code,
        err: s.error,
      },
      'dead_letter',
    );
  }

  /** Stop counting a delivery as in flight. */
  private forget(msg: DeliveredMessage): void {
    if (this.unsettled.delete(msg)) this.unsettledBytes -= msg.size;
  }

  private release(msg: DeliveredMessage): void {
    this.forget(msg);
    if (this.latest.get(msg.seq) === msg) this.latest.delete(msg.seq);
    this.changed.notify();
  }

  // ---- stopping -------------------------------------------------------------------------

  stop(): Promise<void> {
    this.stopPromise ??= this.drain();
    return this.stopPromise;
  }

  private async drain(): Promise<void> {
    const deadline = Date.now() + (this.opts.stopTimeoutMs ?? 30_000);
    const left = () => Math.max(0, deadline - Date.now());
    this.stopping = true;
    this.log.info({ inFlight: this.unsettled.size }, 'draining');
    this.fetchIter?.stop();
    this.changed.notify();
    await this.fetchLoopDone;
    // Not yet seen by the handler: give them back at once.
    for (const msg of this.queue.splice(0)) {
      msg.state = 'settled';
      msg.reply(AckReply.nak());
      this.release(msg);
    }
    await waitAtMost(this.dispatchDone, left());
    try {
      await this.opts.onStop?.();
    } catch (err) {
      this.log.error({ err }, 'on_stop_failed');
    }
    while ((this.unsettled.size > 0 || this.ops.size > 0) && left() > 0) await this.changed.wait(left());
    if (this.keepAlive) clearInterval(this.keepAlive);
    if (this.unsettled.size > 0) {
      // Left to the server: they are delivered again after ack_wait.
      this.log.warn({ unsettled: this.unsettled.size }, 'stop_timed_out_unsettled');
    }
    this.log.info(this.stats(), 'stopped');
  }
}

/**
 * The one consumer loop: pulls batches from a durable consumer, hands them to `handler`, and
 * maps every outcome (returned, settled later, or thrown) to ack, nak with backoff or dead
 * letter in one place. Resolves once the consumer is found; fails fast when it does not exist.
 */
export async function runConsumer(opts: RunConsumerOptions): Promise<ConsumerLoop> {
  subjectToken(opts.dlqService, 'dlqService');
  let consumer: Consumer;
  try {
    consumer = await opts.js.consumers.get(opts.stream, opts.durable);
  } catch (err) {
    throw new NotFoundError(`consumer ${opts.stream}/${opts.durable} not found: call ensureConsumer first`, {
      cause: err,
    });
  }
  const loop = new Loop(opts, consumer);
  loop.start();
  return loop;
}

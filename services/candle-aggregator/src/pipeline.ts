import type { MsgHdrs } from '@nats-io/transport-node';
import type { Tick } from '@parquetry/lake';
import type { Logger, Metrics } from '@parquetry/service';
import { type DecodedMessage, decodeCommonTick, decodeTickMessage } from './decode.js';
import type { TickRejected } from './domain/aggregator.js';
import type { CandleLake } from './lake/candle-lake.js';
import type { BusOutputs } from './outputs.js';
import type { PartitionWorker, WorkerOutput } from './partition-worker.js';
import { PartitionMap } from './partitioning.js';
import type { JournalEntry, PartitionOwnership } from './state/ownership.js';

/**
 * The service's moving parts around the pure partition workers, in one place:
 * stream message → decode → workers → outputs (bus) and outbox (lake); plus the three
 * periodic jobs — persist state, flush candles to the lake, journal a wall-clock step when
 * the stream is quiet. Message handling is synchronous, so the jobs, which run between
 * messages, always see the workers at a message boundary.
 */
/** A message of the TICKS stream (a JsMsg fits: its headers are decoded only when read). */
export interface StreamMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: MsgHdrs | undefined;
}

export interface OwnedPartition {
  worker: PartitionWorker;
  ownership: PartitionOwnership;
  /** Journal entries still to replay, by id. */
  journal: JournalEntry[];
  savedSeq: number;
}

export interface PipelineDeps {
  partitions: number;
  owned: OwnedPartition[];
  outputs: BusOutputs;
  lake: CandleLake;
  logger: Logger;
  metrics: Metrics;
  maxMessageBytes: number;
  clock: () => number;
}

function tooLarge(size: number, max: number): DecodedMessage {
  const detail = `message of ${size} bytes is larger than ${max}`;
  return {
    array: false,
    ticks: [],
    indices: [],
    sources: [],
    rejects: [{ index: undefined, reason: 'too_large', detail, body: undefined }],
  };
}

export class CandlePipeline {
  private readonly pmap: PartitionMap;
  private readonly byPartition = new Map<number, OwnedPartition>();
  private readonly out: WorkerOutput = { candles: [], rejected: [] };
  /** The ticks of a common single-tick message (reused: workers do not keep the array). */
  private readonly single: Tick[] = [];
  private readonly rejectedTicks;
  private readonly duplicates;
  private flushing: Promise<void> | undefined;
  private checkpointing: Promise<void> | undefined;
  private lastFlushAt: number;

  constructor(private readonly deps: PipelineDeps) {
    this.pmap = new PartitionMap(deps.partitions);
    for (const o of deps.owned) this.byPartition.set(o.worker.partition, o);
    this.rejectedTicks = deps.metrics.counter('parquetry_ticks_rejected_total', 'too late, future, invalid', [
      'reason',
    ]);
    this.duplicates = deps.metrics.counter('parquetry_duplicates_dropped_total', 'input already counted', [
      'dataset',
    ]);
    this.lastFlushAt = deps.clock();
    // Journal entries at or before a restored position apply at once.
    for (const o of deps.owned) this.replayJournal(o);
    this.emit();
  }

  /** Lowest stream sequence some owned partition still needs. */
  startSeq(): number {
    return Math.min(...this.deps.owned.map((o) => o.worker.seq)) + 1;
  }

  /** Candles not yet confirmed in the lake. */
  get pendingCandles(): number {
    let n = 0;
    for (const o of this.deps.owned) n += o.worker.pendingCandles;
    return n;
  }

  private get waitingCandles(): number {
    let n = 0;
    for (const o of this.deps.owned) n += o.worker.waitingCandles;
    return n;
  }

  /**
   * One message of the stream, in order: its sequence and the time JetStream stored it (ms).
   * Synchronous by design (see the class comment).
   */
  handle(m: StreamMessage, seq: number, storedAt: number): void {
    const subject = m.subject;
    // Read once: a JsMsg makes a new view of its body on every `data` access.
    const data = m.data;
    const token = subject.startsWith('market.ticks.') ? subject.slice(13) : subject;
    const target = this.byPartition.get(this.pmap.of(token));
    let decoded: DecodedMessage | undefined;
    let ticks: Tick[] | undefined;
    let common: Tick | undefined;
    if (target && seq > target.worker.seq) {
      const tooBig = data.length > this.deps.maxMessageBytes;
      common = tooBig ? undefined : decodeCommonTick(subject, data);
      if (common !== undefined) {
        this.single[0] = common;
        ticks = this.single;
      } else {
        decoded = tooBig
          ? tooLarge(data.length, this.deps.maxMessageBytes)
          : decodeTickMessage(subject, data);
        ticks = decoded.ticks;
        for (const r of decoded.rejects) {
          this.rejectedTicks.inc({ reason: r.reason });
          this.deps.outputs.deadLetter({
            subject,
            seq,
            index: r.index,
            data: r.index === undefined ? data : encodeJson(r.body),
            headers: m.headers,
            reason: r.reason,
            detail: r.detail,
          });
        }
      }
    }
    for (const o of this.deps.owned) {
      if (seq <= o.worker.seq) continue;
      const own = o === target;
      o.worker.onMessage(seq, storedAt, own ? ticks : undefined, this.out);
      if (own && this.out.rejected.length > 0) {
        decoded ??= {
          array: false,
          ticks: [common!],
          indices: [undefined],
          sources: [undefined],
          rejects: [],
        };
        this.rejected(m, seq, decoded, this.out.rejected);
      }
      if (o.journal.length > 0) this.replayJournal(o);
    }
    this.emit();
  }

  /** Journals and applies a wall-clock step for partitions where it would close a candle. */
  async quietStep(nowMs: number): Promise<void> {
    for (const o of this.deps.owned) {
      if (!o.worker.wouldClose(nowMs)) continue;
      const id = await o.ownership.appendJournal(o.worker.seq, nowMs);
      o.worker.applyClock(id, nowMs, this.out);
      this.emit();
    }
  }

  /** Candles waiting for the lake → one lake write. Serialised; a failure gives them back for the next try. */
  flush(): Promise<void> {
    this.flushing ??= this.doFlush().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  flushDue(now: number, everyMs: number, maxCandles: number): boolean {
    const waiting = this.waitingCandles;
    return waiting > 0 && (now - this.lastFlushAt >= everyMs || waiting >= maxCandles);
  }

  /** Persist the state of every partition that moved; `force` also when nothing moved. */
  checkpoint(force = false): Promise<void> {
    this.checkpointing ??= this.doCheckpoint(force).finally(() => {
      this.checkpointing = undefined;
    });
    return this.checkpointing;
  }

  private async doFlush(): Promise<void> {
    this.lastFlushAt = this.deps.clock();
    const taken = this.deps.owned
      .map((o) => ({ o, take: o.worker.takeFlush() }))
      .filter(
        (t): t is { o: OwnedPartition; take: NonNullable<ReturnType<PartitionWorker['takeFlush']>> } =>
          !!t.take,
      );
    if (taken.length === 0) return;
    try {
      await this.deps.lake.write(taken.flatMap((t) => t.take.candles));
      for (const t of taken) t.o.worker.flushDone(t.take.id);
    } catch (err) {
      for (const t of taken) t.o.worker.flushFailed(t.take.id);
      this.deps.logger.warn({ err, dataset: 'candles' }, 'flush_failed');
    }
  }

  private async doCheckpoint(force: boolean): Promise<void> {
    // Captured synchronously: a consistent cut at the current message boundary.
    const captured = this.deps.owned
      .filter((o) => force || o.worker.seq !== o.savedSeq)
      .map((o) => ({ o, state: o.worker.state() }));
    if (captured.length === 0) return;
    // Outputs derived from the state must be on the bus before the state says they are done.
    await this.deps.outputs.settled();
    for (const { o, state } of captured) {
      const started = this.deps.clock();
      await o.ownership.saveState(state);
      o.savedSeq = state.seq;
      this.deps.logger.debug(
        {
          partition: o.ownership.name,
          seq: state.seq,
          outbox: state.outbox.length,
          ms: this.deps.clock() - started,
        },
        'state_saved',
      );
    }
  }

  private rejected(m: StreamMessage, seq: number, decoded: DecodedMessage, events: TickRejected[]): void {
    for (const e of events) {
      if (e.reason === 'duplicate') {
        this.duplicates.inc({ dataset: 'candles' });
        continue;
      }
      this.rejectedTicks.inc({ reason: e.reason });
      const at = decoded.ticks.indexOf(e.tick);
      const index = decoded.array && at >= 0 ? decoded.indices[at] : undefined;
      this.deps.outputs.deadLetter({
        subject: m.subject,
        seq,
        index,
        data: decoded.array ? encodeJson(at >= 0 ? decoded.sources[at] : e.tick) : m.data,
        headers: m.headers,
        reason: e.reason,
        detail: e.detail,
      });
    }
    events.length = 0;
  }

  private replayJournal(o: OwnedPartition): void {
    while (o.journal.length > 0 && o.journal[0]!.afterSeq <= o.worker.seq) {
      const j = o.journal.shift()!;
      o.worker.applyClock(j.id, j.clock, this.out);
    }
  }

  private emit(): void {
    const { candles, rejected } = this.out;
    // Setting `length` is a runtime call even when nothing changes: only when there is something.
    if (candles.length > 0) {
      for (const c of candles) this.deps.outputs.candle(c);
      candles.length = 0;
    }
    if (rejected.length > 0) rejected.length = 0;
  }
}

const encoder = new TextEncoder();
function encodeJson(v: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(v ?? null));
}

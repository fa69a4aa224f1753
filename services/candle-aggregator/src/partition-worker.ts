import type { Tick } from '@parquetry/lake';
import {
  type AggregatorConfig,
  type AggregatorEvent,
  CandleAggregator,
  type TickRejected,
} from './domain/aggregator.js';
import type { CandleRecord } from './domain/candle.js';
import type { PartitionState } from './state/codec.js';

/**
 * One partition's candle state, driven by the stream and nothing else (no I/O, no clock).
 *
 * Determinism is what makes restarts exact (docs/adr/0003-candle-layout.md): every decision
 * is a function of the messages in stream order — their ticks, their sequence and the time
 * JetStream stored them — plus journaled wall-clock steps (`applyClock`). Replaying the
 * stream after the last persisted state therefore re-creates the very same events, revision
 * numbers included, and whatever the crashed run had already published or written is simply
 * written again, identically.
 *
 * Idle closes. A candle closes when its symbol's event time passes end + grace; a symbol that
 * stops trading would keep its last candle open forever. The stream clock (the stored-at time
 * of the latest message, of any symbol) stands in for time passing: once a symbol has had no
 * tick for `idleCloseMs` of stream time, its event time is taken to follow the stream clock
 * from its last tick on, minus `idleCloseMs`. This depends on the symbol's own ticks and the
 * stream only, not on which symbols share its partition, so any partitioning gives the same
 * candles. Evaluated at most once per `clockStepMs` of stream time.
 */
export interface WorkerConfig extends AggregatorConfig {
  idleCloseMs: number;
  clockStepMs: number;
}

interface SymbolClock {
  /** Largest event time of an accepted tick. */
  lastTs: number;
  /** Stream clock when the symbol last had an accepted tick. */
  lastClock: number;
}

export interface WorkerOutput {
  /** Candles to publish, in order (every revision). */
  candles: CandleRecord[];
  rejected: TickRejected[];
}

const candleKey = (c: CandleRecord) => `${c.symbol}\u0000${c.timeframe}\u0000${c.start}`;

export class PartitionWorker {
  /** Last stream sequence handled. */
  seq: number;
  /** Id of the last journaled clock step applied. */
  journalId: number;
  private clock: number | undefined;
  private clockStep: number | undefined;
  private readonly agg: CandleAggregator;
  private readonly symbols = new Map<string, SymbolClock>();
  /** Candles not yet committed to the lake: the latest revision per candle. */
  private outbox = new Map<string, CandleRecord>();
  /** Taken for a lake flush that has not confirmed yet; still part of every state saved. */
  private readonly flushing = new Map<number, CandleRecord[]>();
  private flushIds = 0;

  constructor(
    readonly partition: number,
    readonly partitions: number,
    private readonly config: WorkerConfig,
    restored?: PartitionState,
  ) {
    const aggConfig = {
      graceMs: config.graceMs,
      latenessMs: config.latenessMs,
      maxFutureMs: config.maxFutureMs,
    };
    if (restored) {
      this.agg = CandleAggregator.restore(restored.aggregator, aggConfig);
      this.seq = restored.seq;
      this.journalId = restored.journalId;
      this.clock = restored.clock ?? undefined;
      this.clockStep = restored.clockStep ?? undefined;
      for (const s of restored.symbols)
        this.symbols.set(s.symbol, { lastTs: s.lastTs, lastClock: s.lastClock });
      for (const c of restored.outbox) this.outbox.set(candleKey(c), c);
    } else {
      this.agg = new CandleAggregator(aggConfig);
      this.seq = 0;
      this.journalId = 0;
    }
  }

  /**
   * A message at stream sequence `seq`, stored at `storedAt`: moves the stream clock, then
   * ingests `ticks` if the message belongs to this partition (undefined when it does not, or
   * when it carried no valid tick). Messages at or below `seq` are ignored (replays).
   */
  onMessage(seq: number, storedAt: number, ticks: readonly Tick[] | undefined, out: WorkerOutput): void {
    if (seq <= this.seq) return;
    this.seq = seq;
    this.moveClock(storedAt, out);
    if (ticks === undefined || ticks.length === 0) return;
    const events = this.agg.ingestBatch(ticks, { now: storedAt, seq });
    let rejected: Set<Tick> | undefined;
    for (const e of events) {
      if (e.type === 'rejected') {
        out.rejected.push(e);
        rejected ??= new Set();
        rejected.add(e.tick);
      } else this.collect(e, out);
    }
    const clock = this.clock!;
    for (const t of ticks) {
      if (rejected?.has(t)) continue;
      const s = this.symbols.get(t.symbol);
      if (s) {
        if (t.ts > s.lastTs) s.lastTs = t.ts;
        s.lastClock = clock;
      } else this.symbols.set(t.symbol, { lastTs: t.ts, lastClock: clock });
    }
  }

  /**
   * A journaled wall-clock step (the consumer was caught up and the stream quiet): the clock
   * moves as if a message had been stored at `clockMs`. Replayed from the journal after a
   * restart at the same stream position, so it is as deterministic as a message.
   */
  applyClock(journalId: number, clockMs: number, out: WorkerOutput): void {
    if (journalId <= this.journalId) return;
    this.journalId = journalId;
    this.moveClock(clockMs, out);
  }

  /** Whether moving the clock to `clockMs` would close a candle (worth journaling). */
  wouldClose(clockMs: number): boolean {
    if (this.clock !== undefined && clockMs <= this.clock) return false;
    const step = Math.floor(clockMs / this.config.clockStepMs);
    if (this.clockStep !== undefined && step <= this.clockStep) return false;
    for (const [symbol, s] of this.symbols) {
      const due = this.agg.nextCloseAt(symbol);
      if (due !== undefined && this.idleTarget(s, clockMs) >= due) return true;
    }
    return false;
  }

  /** Candles waiting for the next lake flush. */
  get waitingCandles(): number {
    return this.outbox.size;
  }

  /** Candles not yet confirmed in the lake (waiting or being flushed). */
  get pendingCandles(): number {
    let n = this.outbox.size;
    for (const batch of this.flushing.values()) n += batch.length;
    return n;
  }

  /** Takes the candles waiting for the lake; confirm with `flushDone(id)` or give back with `flushFailed(id)`. */
  takeFlush(): { id: number; candles: CandleRecord[] } | undefined {
    if (this.outbox.size === 0) return undefined;
    const id = ++this.flushIds;
    const candles = [...this.outbox.values()];
    this.outbox = new Map();
    this.flushing.set(id, candles);
    return { id, candles };
  }

  flushDone(id: number): void {
    this.flushing.delete(id);
  }

  flushFailed(id: number): void {
    const candles = this.flushing.get(id);
    this.flushing.delete(id);
    for (const c of candles ?? []) {
      const key = candleKey(c);
      const newer = this.outbox.get(key);
      if (!newer || newer.revision < c.revision) this.outbox.set(key, c);
    }
  }

  /** Everything needed to continue exactly here; candles of unconfirmed flushes are included. */
  state(): PartitionState {
    const outbox = new Map<string, CandleRecord>();
    for (const batch of this.flushing.values()) for (const c of batch) outbox.set(candleKey(c), c);
    for (const [k, c] of this.outbox) {
      const other = outbox.get(k);
      if (!other || other.revision < c.revision) outbox.set(k, c);
    }
    return {
      version: 1,
      partitions: this.partitions,
      partition: this.partition,
      seq: this.seq,
      clock: this.clock ?? null,
      clockStep: this.clockStep ?? null,
      journalId: this.journalId,
      symbols: [...this.symbols].map(([symbol, s]) => ({ symbol, lastTs: s.lastTs, lastClock: s.lastClock })),
      aggregator: this.agg.snapshot(),
      outbox: [...outbox.values()].map((c) => ({ ...c })),
    };
  }

  stats() {
    return { ...this.agg.stats(), ...this.agg.size() };
  }

  private moveClock(at: number, out: WorkerOutput): void {
    if (this.clock !== undefined && at <= this.clock) return;
    this.clock = at;
    const step = Math.floor(at / this.config.clockStepMs);
    if (this.clockStep !== undefined && step <= this.clockStep) return;
    this.clockStep = step;
    for (const [symbol, s] of this.symbols) {
      if (at - s.lastClock < this.config.idleCloseMs) continue;
      const target = this.idleTarget(s, at);
      const w = this.agg.watermark(symbol);
      if (w !== undefined && target <= w) continue;
      for (const e of this.agg.advance(target, symbol)) if (e.type !== 'rejected') this.collect(e, out);
    }
  }

  private idleTarget(s: SymbolClock, clockMs: number): number {
    return s.lastTs + (clockMs - s.lastClock) - this.config.idleCloseMs;
  }

  private collect(e: Exclude<AggregatorEvent, TickRejected>, out: WorkerOutput): void {
    for (const c of e.candles) {
      out.candles.push(c);
      this.outbox.set(candleKey(c), c);
    }
  }
}

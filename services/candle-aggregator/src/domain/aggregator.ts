import { TIMEFRAMES, type Tick, type Timeframe } from '@parquetry/lake';
import { ConfigError, InvalidInputError } from '@parquetry/service';
import {
  type Accumulator,
  accumulatorValues,
  addTradeKey,
  type CandleRecord,
  canonicalAccumulator,
  cloneAccumulator,
  mergeAccumulator,
  newAccumulator,
  type TradeKey,
} from './candle.js';
import { type AggregatorSnapshot, parseSnapshot, type SymbolSnapshot } from './snapshot.js';
import { bucketStart, isAligned, TIMEFRAME_MS } from './time.js';
import { TradeIdIndex } from './trade-ids.js';

/**
 * The candle state machine: ticks in, candle events out, no I/O and no clock of its own.
 *
 * Lifecycle of every candle (1m and roll-ups alike), driven by the symbol's watermark W:
 *   open      while W < end + graceMs            ticks update it silently
 *   closed    once  W ≥ end + graceMs            published (`closed`, revision 0)
 *   revisable while W < end + graceMs + latenessMs  a late tick republishes it (`revised`, revision + 1)
 *   final     once  W ≥ end + graceMs + latenessMs  dropped from memory; its ticks are `too_late`
 * A tick is judged by its 1m bucket, so all ticks of one minute share one fate; a roll-up
 * is final exactly when its last minute is, so no accepted tick can reach a dropped candle.
 *
 * Watermark: per symbol, the largest event time of an ACCEPTED tick (rejected ticks never
 * move it), or a larger value given to `advance()`. Per symbol because symbols are
 * independent feeds: one busy symbol must not close (or make "too late") a quiet or
 * delayed one. A quiet symbol's last candles close only when its own ticks resume or when
 * the caller calls `advance()` (e.g. from the wall clock minus a delay; that is the one
 * input besides ticks, so it is the caller's choice whether to make it replayable).
 *
 * Roll-ups: each accepted tick ends up in its candle of every timeframe. Accumulators
 * merge exactly (candle.ts), so this equals rolling the 1m candles up, without keeping a
 * day of 1m candles. The hot path adds a tick to its 1m candle only, while that minute is
 * open and *unfolded*; the minute is merged ("folded") into its roll-ups once, before it
 * closes (or before a snapshot), and from then on its ticks go to every timeframe directly
 * (late ticks, revisions). No roll-up containing an unfolded minute can close or be
 * published before the fold, so this is exactly the tick-by-tick result, at one accumulator
 * update per tick instead of six. A roll-up with no trades does not exist and is never
 * emitted; the same holds for empty minutes.
 *
 * Memory per symbol: the candles not yet final — per timeframe about
 * (graceMs + latenessMs) / duration + 1 (≈ 17 minutes, 4 × 5m, 2 × 15m, 1h, 4h, 1d at
 * the defaults) — plus the trade ids of the non-final minutes.
 *
 * Duplicates: a trade id seen in a non-final minute of the same symbol is dropped
 * (`rejected`/`duplicate`, to count, not to dead-letter). A duplicate of a trade whose
 * minute is final is indistinguishable from a late trade and is rejected as `too_late`.
 * Ticks without `trade_id` cannot be deduplicated here: the caller must dedupe them by
 * message id, or pass the stream `seq` (below).
 *
 * Stream sequence: `ingest(…, { seq })` marks the tick's message. When the aggregator is
 * fed by ONE consumer that delivers in stream order (an ordered consumer, or a pull
 * consumer processed sequentially that never naks), any seq ≤ the high-water seq is a
 * redelivery and is dropped as a duplicate. The high-water seq is in the snapshot, so
 * the service persists snapshot + seq together and, after a crash, restores and replays
 * from seq + 1; replaying anything older is harmless twice over (seq and trade id). Do
 * NOT pass seq when messages can be processed out of order (several workers, nak and
 * redelivery): a lower seq would then be a real, unseen message. All ticks of one
 * message share its seq, so pass them together with `ingestBatch`.
 *
 * `future`: a tick more than `maxFutureMs` past the injected `now` is rejected, so a bad
 * clock upstream cannot push the watermark ahead and close (and finalise) everything.
 * This is the only decision that depends on `now`; a replay after a restart can only be
 * more accepting than the first run, never less.
 */
export interface AggregatorConfig {
  /** Wait this long past a candle's end (in event time) before publishing it. */
  graceMs: number;
  /** After publication, late ticks still correct a candle for this long (in event time). */
  latenessMs: number;
  /** Reject ticks further than this ahead of `now`. */
  maxFutureMs: number;
}

export const DEFAULT_AGGREGATOR_CONFIG: Readonly<AggregatorConfig> = Object.freeze({
  graceMs: 2_000,
  latenessMs: 15 * 60_000,
  maxFutureMs: 60_000,
});

export type RejectReason = 'too_late' | 'future' | 'duplicate';

/** Candles of one symbol that closed together: the 1m candle (if it had trades) and every roll-up ending at `end`. */
export interface CandlesClosed {
  type: 'closed';
  symbol: string;
  end: number;
  candles: CandleRecord[];
}

/** A late tick changed already-published candles: each affected one, its revision incremented. */
export interface CandlesRevised {
  type: 'revised';
  symbol: string;
  candles: CandleRecord[];
}

export interface TickRejected {
  type: 'rejected';
  symbol: string;
  reason: RejectReason;
  detail: string;
  tick: Tick;
  seq?: number;
}

export type AggregatorEvent = CandlesClosed | CandlesRevised | TickRejected;

export interface IngestOptions {
  /** Wall-clock time in epoch ms (injected clock). */
  now: number;
  /** Stream sequence of the message holding the tick(s); see the class comment. */
  seq?: number;
}

export interface AggregatorStats {
  accepted: number;
  duplicate: number;
  too_late: number;
  future: number;
  closed: number;
  revised: number;
}

/** How much state is held (for the bounded-memory tests and a gauge). */
export interface AggregatorSize {
  symbols: number;
  candles: number;
  tradeIds: number;
}

interface Slot {
  start: number;
  end: number;
  acc: Accumulator;
  closed: boolean;
  /** How many times this candle was published; the next publication carries it as its revision. */
  published: number;
  /** 1m only: its trades are in the roll-ups too (false while the hot path adds to it alone). */
  folded: boolean;
}

const TF_INDEX = new Map<Timeframe, number>(TIMEFRAMES.map((tf, i) => [tf, i]));
const MINUTE_MS = TIMEFRAME_MS['1m'];

class SymbolState {
  watermark = Number.NEGATIVE_INFINITY;
  /** One map per timeframe (TIMEFRAMES order), bucket start → slot. */
  readonly slots: Map<number, Slot>[] = TIMEFRAMES.map(() => new Map<number, Slot>());
  /** Trade ids of the non-final minutes, by minute. */
  readonly tradeIds = new TradeIdIndex();
  /** Smallest end + grace among open slots: nothing to close before the watermark reaches it. */
  nextCloseAt = Number.POSITIVE_INFINITY;
  /** Smallest end + grace + lateness among held state: nothing to prune before it. */
  nextPruneAt = Number.POSITIVE_INFINITY;
  /** Open 1m slots not yet folded into the roll-ups (usually one: the current minute). */
  unfolded: Slot[] = [];

  constructor(readonly symbol: string) {}
}

export class CandleAggregator {
  readonly config: Readonly<AggregatorConfig>;
  private readonly symbols = new Map<string, SymbolState>();
  private highWaterSeq: number | undefined;
  private readonly counters: AggregatorStats = {
    accepted: 0,
    duplicate: 0,
    too_late: 0,
    future: 0,
    closed: 0,
    revised: 0,
  };

  constructor(config: Partial<AggregatorConfig> = {}) {
    this.config = validateConfig({ ...DEFAULT_AGGREGATOR_CONFIG, ...config });
  }

  /** Rebuilds an aggregator from `snapshot()` output (after JSON round trip). `config` overrides the stored one. */
  static restore(snapshot: unknown, config?: Partial<AggregatorConfig>): CandleAggregator {
    const snap = parseSnapshot(snapshot);
    const agg = new CandleAggregator({ ...snap.config, ...config });
    agg.highWaterSeq = snap.seq ?? undefined;
    Object.assign(agg.counters, snap.stats);
    for (const s of snap.symbols) agg.symbols.set(s.symbol, agg.restoreSymbol(s));
    return agg;
  }

  /** The stream seq of the last message ingested with a seq, if any. */
  get seq(): number | undefined {
    return this.highWaterSeq;
  }

  watermark(symbol: string): number | undefined {
    const w = this.symbols.get(symbol)?.watermark;
    return w === undefined || w === Number.NEGATIVE_INFINITY ? undefined : w;
  }

  stats(): AggregatorStats {
    return { ...this.counters };
  }

  /**
   * The watermark at which `symbol`'s next candle closes (its earliest open candle's end +
   * grace), or undefined when it has no open candle. Read-only: lets a caller that drives
   * `advance()` from a clock skip advances that would close nothing.
   */
  nextCloseAt(symbol: string): number | undefined {
    const at = this.symbols.get(symbol)?.nextCloseAt;
    return at === undefined || at === Number.POSITIVE_INFINITY ? undefined : at;
  }

  /** Symbols with state (ticks in a candle that is not final yet). */
  symbolNames(): string[] {
    return [...this.symbols.keys()];
  }

  size(): AggregatorSize {
    let candles = 0;
    let tradeIds = 0;
    for (const s of this.symbols.values()) {
      for (const m of s.slots) candles += m.size;
      candles += this.unfoldedRollUps(s);
      tradeIds += s.tradeIds.size;
    }
    return { symbols: this.symbols.size, candles, tradeIds };
  }

  ingest(tick: Tick, opts: IngestOptions): AggregatorEvent[] {
    return this.ingestBatch([tick], opts);
  }

  /** Ingests the ticks of one message, in order. */
  ingestBatch(ticks: readonly Tick[], opts: IngestOptions): AggregatorEvent[] {
    if (!Number.isFinite(opts.now))
      throw new InvalidInputError(`now must be a finite number, got ${opts.now}`);
    const { seq } = opts;
    const events: AggregatorEvent[] = [];
    if (seq !== undefined) {
      if (!Number.isSafeInteger(seq) || seq < 0) {
        throw new InvalidInputError(`seq must be a non-negative integer, got ${seq}`);
      }
      if (this.highWaterSeq !== undefined && seq <= this.highWaterSeq) {
        for (const tick of ticks) {
          events.push(this.reject(tick, 'duplicate', `seq ${seq} ≤ high-water ${this.highWaterSeq}`, seq));
        }
        return events;
      }
    }
    for (const tick of ticks) validateTick(tick);
    for (const tick of ticks) this.ingestOne(tick, opts.now, seq, events);
    if (seq !== undefined) this.highWaterSeq = seq;
    return events;
  }

  /**
   * Moves the watermark of `symbol` (or of every known symbol) forward to `watermarkMs`
   * and returns the candles that closes. Never moves a watermark back.
   */
  advance(watermarkMs: number, symbol?: string): AggregatorEvent[] {
    if (!Number.isFinite(watermarkMs)) {
      throw new InvalidInputError(`watermark must be a finite number, got ${watermarkMs}`);
    }
    const events: AggregatorEvent[] = [];
    if (symbol === undefined) {
      for (const s of this.symbols.values()) this.advanceSymbol(s, watermarkMs, events);
    } else {
      const s = this.symbols.get(symbol);
      if (s) this.advanceSymbol(s, watermarkMs, events);
    }
    return events;
  }

  /**
   * Plain JSON-serialisable state. Together with `seq` it is everything needed to
   * continue exactly where this aggregator is; candles are listed by timeframe and
   * start, trade ids sorted, so equal states give equal snapshots.
   */
  snapshot(): AggregatorSnapshot {
    const symbols: SymbolSnapshot[] = [];
    for (const s of this.symbols.values()) {
      // Roll-ups complete (the snapshot format knows no unfolded minute) and sums in their
      // canonical form: the snapshot depends on the state's values, not on when folds happened.
      this.foldAll(s);
      const candles: SymbolSnapshot['candles'] = [];
      TIMEFRAMES.forEach((timeframe, i) => {
        const slots = [...s.slots[i]!.values()].sort((a, b) => a.start - b.start);
        for (const slot of slots) {
          candles.push({
            timeframe,
            start: slot.start,
            closed: slot.closed,
            published: slot.published,
            acc: canonicalAccumulator(slot.acc),
          });
        }
      });
      const tradeIds = s.tradeIds
        .minuteStarts()
        .sort((a, b) => a - b)
        .map((minute) => ({ minute, ids: s.tradeIds.encodedIdsOf(minute) }));
      symbols.push({
        symbol: s.symbol,
        watermark: s.watermark === Number.NEGATIVE_INFINITY ? null : s.watermark,
        candles,
        tradeIds,
      });
    }
    return {
      version: 1,
      config: { ...this.config },
      seq: this.highWaterSeq ?? null,
      stats: this.stats(),
      symbols,
    };
  }

  private ingestOne(tick: Tick, now: number, seq: number | undefined, events: AggregatorEvent[]): void {
    const s = this.symbolState(tick.symbol);
    const { graceMs, latenessMs, maxFutureMs } = this.config;
    const id = tick.trade_id;
    if (id !== undefined && s.tradeIds.has(id)) {
      events.push(this.reject(tick, 'duplicate', `trade_id ${id} already counted`, seq));
      return;
    }
    if (tick.ts > now + maxFutureMs) {
      events.push(
        this.reject(tick, 'future', `ts ${tick.ts} is more than ${maxFutureMs} ms after now ${now}`, seq),
      );
      return;
    }
    const minuteStart = bucketStart('1m', tick.ts);
    const finalAt = minuteStart + MINUTE_MS + graceMs + latenessMs;
    if (s.watermark >= finalAt) {
      events.push(
        this.reject(
          tick,
          'too_late',
          `minute ${new Date(minuteStart).toISOString()} is final (watermark ${s.watermark} ≥ ${finalAt})`,
          seq,
        ),
      );
      return;
    }

    this.counters.accepted += 1;
    if (id !== undefined) s.tradeIds.add(id, minuteStart);
    const trade: TradeKey =
      id === undefined
        ? { ts: tick.ts, price: tick.price, size: tick.size }
        : { ts: tick.ts, tradeId: id, price: tick.price, size: tick.size };
    const minuteEnd = minuteStart + MINUTE_MS;
    const minute = s.slots[0]!.get(minuteStart);
    if (minute !== undefined ? !minute.folded : s.watermark < minuteEnd + graceMs) {
      // The hot path: an open minute, not folded yet → its 1m candle only.
      if (minute !== undefined) addTradeKey(minute.acc, trade);
      else {
        const slot: Slot = {
          start: minuteStart,
          end: minuteEnd,
          acc: newAccumulator(trade),
          closed: false,
          published: 0,
          folded: false,
        };
        s.slots[0]!.set(minuteStart, slot);
        s.unfolded.push(slot);
        s.nextCloseAt = Math.min(s.nextCloseAt, minuteEnd + graceMs);
        s.nextPruneAt = Math.min(s.nextPruneAt, minuteEnd + graceMs + latenessMs);
      }
      if (tick.ts > s.watermark) this.advanceSymbol(s, tick.ts, events);
      return;
    }
    // A folded minute (late or out-of-order tick) or one closed already: every timeframe,
    // publishing each candle that is closed. No allocation unless a slot is new or published.
    let revised: CandleRecord[] | undefined;
    for (let i = 0; i < TIMEFRAMES.length; i++) {
      const timeframe = TIMEFRAMES[i]!;
      const map = s.slots[i]!;
      const start = bucketStart(timeframe, tick.ts);
      let slot = map.get(start);
      if (slot) {
        addTradeKey(slot.acc, trade);
      } else {
        const end = start + TIMEFRAME_MS[timeframe];
        // A slot created behind the watermark belongs to an already-closed period: it is
        // published at once, as a revision of that period (revision 0: first publication).
        slot = {
          start,
          end,
          acc: newAccumulator(trade),
          closed: s.watermark >= end + graceMs,
          published: 0,
          folded: true,
        };
        map.set(start, slot);
        if (!slot.closed) s.nextCloseAt = Math.min(s.nextCloseAt, end + graceMs);
        s.nextPruneAt = Math.min(s.nextPruneAt, end + graceMs + latenessMs);
      }
      if (slot.closed) {
        revised ??= [];
        revised.push(this.publish(s.symbol, timeframe, slot));
      }
    }
    if (revised !== undefined) {
      this.counters.revised += revised.length;
      events.push({ type: 'revised', symbol: s.symbol, candles: revised });
    }
    if (tick.ts > s.watermark) this.advanceSymbol(s, tick.ts, events);
  }

  private advanceSymbol(s: SymbolState, watermark: number, events: AggregatorEvent[]): void {
    if (watermark <= s.watermark) return;
    s.watermark = watermark;
    if (watermark >= s.nextCloseAt) {
      // Minutes about to close go into their roll-ups first (some roll-ups may close with them).
      if (s.unfolded.length > 0) this.foldDue(s, watermark);
      this.closeDue(s, events);
    }
    if (watermark >= s.nextPruneAt) this.pruneFinal(s);
  }

  /** Folds the unfolded minutes that close at `watermark`. */
  private foldDue(s: SymbolState, watermark: number): void {
    const { graceMs } = this.config;
    let kept = 0;
    for (const slot of s.unfolded) {
      if (watermark >= slot.end + graceMs) this.fold(s, slot);
      else s.unfolded[kept++] = slot;
    }
    s.unfolded.length = kept;
  }

  /** Roll-ups that only unfolded minutes have trades in yet: candles all the same (see `size`). */
  private unfoldedRollUps(s: SymbolState): number {
    if (s.unfolded.length === 0) return 0;
    const missing = new Set<string>();
    for (const minute of s.unfolded) {
      for (let i = 1; i < TIMEFRAMES.length; i++) {
        const start = bucketStart(TIMEFRAMES[i]!, minute.start);
        if (!s.slots[i]!.has(start)) missing.add(`${i} ${start}`);
      }
    }
    return missing.size;
  }

  private foldAll(s: SymbolState): void {
    if (s.unfolded.length === 0) return;
    for (const slot of s.unfolded) this.fold(s, slot);
    s.unfolded.length = 0;
  }

  /**
   * Merges an open 1m slot into its roll-ups (creating the missing ones). Those roll-ups are
   * open too — each ends no earlier than the minute — so nothing here is published.
   */
  private fold(s: SymbolState, minute: Slot): void {
    const { graceMs, latenessMs } = this.config;
    for (let i = 1; i < TIMEFRAMES.length; i++) {
      const timeframe = TIMEFRAMES[i]!;
      const map = s.slots[i]!;
      const start = bucketStart(timeframe, minute.start);
      const slot = map.get(start);
      if (slot) mergeAccumulator(slot.acc, minute.acc);
      else {
        const end = start + TIMEFRAME_MS[timeframe];
        map.set(start, {
          start,
          end,
          acc: cloneAccumulator(minute.acc),
          closed: false,
          published: 0,
          folded: true,
        });
        s.nextCloseAt = Math.min(s.nextCloseAt, end + graceMs);
        s.nextPruneAt = Math.min(s.nextPruneAt, end + graceMs + latenessMs);
      }
    }
    minute.folded = true;
  }

  private closeDue(s: SymbolState, events: AggregatorEvent[]): void {
    const { graceMs } = this.config;
    const due: { timeframe: Timeframe; slot: Slot }[] = [];
    let nextCloseAt = Number.POSITIVE_INFINITY;
    TIMEFRAMES.forEach((timeframe, i) => {
      for (const slot of s.slots[i]!.values()) {
        if (slot.closed) continue;
        if (s.watermark >= slot.end + graceMs) {
          slot.closed = true;
          due.push({ timeframe, slot });
        } else {
          nextCloseAt = Math.min(nextCloseAt, slot.end + graceMs);
        }
      }
    });
    s.nextCloseAt = nextCloseAt;
    due.sort((a, b) => a.slot.end - b.slot.end || TF_INDEX.get(a.timeframe)! - TF_INDEX.get(b.timeframe)!);
    let group: CandlesClosed | undefined;
    for (const { timeframe, slot } of due) {
      if (group?.end !== slot.end) {
        group = { type: 'closed', symbol: s.symbol, end: slot.end, candles: [] };
        events.push(group);
      }
      group.candles.push(this.publish(s.symbol, timeframe, slot));
      this.counters.closed += 1;
    }
  }

  private pruneFinal(s: SymbolState): void {
    const keep = this.config.graceMs + this.config.latenessMs;
    const w = s.watermark;
    let nextPruneAt = Number.POSITIVE_INFINITY;
    for (const map of s.slots) {
      for (const [start, slot] of map) {
        if (w >= slot.end + keep) map.delete(start);
        else nextPruneAt = Math.min(nextPruneAt, slot.end + keep);
      }
    }
    const minuteMs = TIMEFRAME_MS['1m'];
    for (const minute of s.tradeIds.minuteStarts()) {
      if (w >= minute + minuteMs + keep) s.tradeIds.dropMinute(minute);
    }
    s.nextPruneAt = nextPruneAt;
  }

  private publish(symbol: string, timeframe: Timeframe, slot: Slot): CandleRecord {
    const record: CandleRecord = {
      symbol,
      timeframe,
      start: slot.start,
      end: slot.end,
      ...accumulatorValues(slot.acc),
      revision: slot.published,
    };
    slot.published += 1;
    return record;
  }

  private reject(tick: Tick, reason: RejectReason, detail: string, seq: number | undefined): TickRejected {
    this.counters[reason] += 1;
    const event: TickRejected = { type: 'rejected', symbol: tick.symbol, reason, detail, tick };
    if (seq !== undefined) event.seq = seq;
    return event;
  }

  private symbolState(symbol: string): SymbolState {
    let s = this.symbols.get(symbol);
    if (!s) {
      s = new SymbolState(symbol);
      this.symbols.set(symbol, s);
    }
    return s;
  }

  private restoreSymbol(snap: SymbolSnapshot): SymbolState {
    const { graceMs, latenessMs } = this.config;
    const s = new SymbolState(snap.symbol);
    s.watermark = snap.watermark ?? Number.NEGATIVE_INFINITY;
    for (const c of snap.candles) {
      if (!isAligned(c.timeframe, c.start)) {
        throw new InvalidInputError(
          `snapshot: ${snap.symbol} ${c.timeframe} candle starts off-bucket at ${c.start}`,
        );
      }
      const i = TF_INDEX.get(c.timeframe)!;
      const end = c.start + TIMEFRAME_MS[c.timeframe];
      s.slots[i]!.set(c.start, {
        start: c.start,
        end,
        acc: cloneAccumulator(c.acc),
        closed: c.closed,
        published: c.published,
        folded: true,
      });
      if (!c.closed) s.nextCloseAt = Math.min(s.nextCloseAt, end + graceMs);
      s.nextPruneAt = Math.min(s.nextPruneAt, end + graceMs + latenessMs);
    }
    for (const { minute, ids } of snap.tradeIds) s.tradeIds.addEncoded(minute, ids);
    return s;
  }
}

function validateConfig(config: AggregatorConfig): AggregatorConfig {
  for (const key of ['graceMs', 'latenessMs', 'maxFutureMs'] as const) {
    const v = config[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new ConfigError(`candle aggregator: ${key} must be a finite number ≥ 0, got ${String(v)}`);
    }
  }
  return { graceMs: config.graceMs, latenessMs: config.latenessMs, maxFutureMs: config.maxFutureMs };
}

/** Guards the arithmetic; the bus schema (`tick` in @parquetry/lake) has already checked the rest. */
function validateTick(tick: Tick): void {
  const bad =
    typeof tick.symbol !== 'string' || tick.symbol.length === 0
      ? 'symbol must be a non-empty string'
      : !Number.isFinite(tick.ts)
        ? 'ts must be finite epoch ms'
        : !Number.isFinite(tick.price)
          ? 'price must be finite'
          : !(Number.isFinite(tick.size) && tick.size >= 0)
            ? 'size must be finite and ≥ 0'
            : tick.trade_id !== undefined && typeof tick.trade_id !== 'string'
              ? 'trade_id must be a string'
              : undefined;
  if (bad) throw new InvalidInputError(`invalid tick: ${bad}`, { details: { tick } });
}

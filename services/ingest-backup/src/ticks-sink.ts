import type { DuckDBConnection } from '@duckdb/node-api';
import type { BusMessage, Outcome } from '@parquetry/bus';
import {
  discardLakeFiles,
  type NewFile,
  type ObjectStore,
  type ParquetColumn,
  type ParquetCompression,
  type PartitionChange,
  partitionPath,
  TICKS,
  type Tick,
  writeLakeFiles,
} from '@parquetry/lake';
import type { Logger, Metrics } from '@parquetry/service';
import type { LakeCommitter } from './committer.js';
import { decodeTicks } from './decode.js';
import { BacklogWatch, TAIL_QUIET_MS } from './domain/backlog.js';
import { type FlushPolicy, type Group, GroupBuffer } from './domain/buffer.js';
import { newBackupId } from './domain/products.js';
import { SerialQueue } from './serial.js';

interface TickRow {
  symbol: string;
  date: string;
  ts: number;
  price: number;
  size: number;
  side: string | null;
  trade_id: string | null;
  stream_seq: number;
}

const COLUMNS: ParquetColumn[] = Object.entries(TICKS.columns).map(([name, type]) => ({ name, type }));
/** Rough in-memory cost of one buffered tick, for the memory budget. */
const TICK_BYTES = 160;

export interface TicksSinkDeps {
  store: ObjectStore;
  conn: DuckDBConnection;
  committer: LakeCommitter;
  logger: Logger;
  metrics: Metrics;
  policy: FlushPolicy;
  compression: ParquetCompression;
  maxFileBytes: number;
  clock?: () => number;
}

/**
 * The raw tick archive: ticks → `ticks/symbol=<S>/date=<D>/*.parquet`. A message's ticks may
 * span partitions, so every flush takes all open partitions in one atomic multi-partition
 * commit, and the messages are acked together after it.
 */
export class TicksSink {
  private readonly buffer: GroupBuffer<TickRow>;
  /** Messages buffered for the next flush, and those of the flush being written and committed, by stream sequence. */
  private held = new Map<number, BusMessage>();
  private flushing = new Map<number, BusMessage>();
  private readonly flushes = new SerialQueue();
  /** A backlog that just drained is flushed at once (see BacklogWatch). */
  private readonly backlog = new BacklogWatch();
  private readonly now: () => number;

  constructor(private readonly deps: TicksSinkDeps) {
    this.buffer = new GroupBuffer<TickRow>(deps.policy);
    this.now = deps.clock ?? Date.now;
  }

  readonly handle = async (messages: readonly BusMessage[]): Promise<(Outcome | undefined)[]> => {
    const outcomes: (Outcome | undefined)[] = [];
    const now = this.now();
    const { committer } = this.deps;
    const checkpointFresh = await committer.refreshFor(messages);
    for (const msg of messages) {
      // A redelivery whose state is unknown, or of a message still held here (its ack_wait ran
      // out while it waited for a flush): look again once that is settled, never write it twice.
      const here = this.held.has(msg.seq) || this.flushing.has(msg.seq);
      if (msg.redelivered && (!checkpointFresh || here)) {
        outcomes.push(committer.later());
        continue;
      }
      // In the lake already, or in a flush whose commit is not settled yet (a sync check first:
      // this loop runs once per tick message).
      if (committer.stateOf(msg.seq) !== 'new') {
        const seen = await committer.screen(msg, 'ticks');
        if (seen) {
          outcomes.push(seen);
          continue;
        }
      }
      let ticks: Tick[];
      try {
        ticks = decodeTicks(msg.subject, msg.json());
      } catch (err) {
        await msg.fail(err);
        outcomes.push(undefined);
        continue;
      }
      for (const t of ticks) {
        const date = new Date(t.ts).toISOString().slice(0, 10);
        this.buffer.add(`${t.symbol}/${date}`, toRow(t, date, msg.seq), TICK_BYTES, now);
      }
      this.held.set(msg.seq, msg);
      outcomes.push(undefined);
    }
    // Parsing goes on while a flush writes; memory is bounded by the consumer loop's limit on
    // unsettled messages and bytes.
    const drained = this.backlog.drained(messages.at(-1)?.pending ?? 0, now);
    if (drained || this.buffer.hasDue(now)) this.flushes.request(() => this.flush());
    return outcomes;
  };

  /** Age-driven flush from the timer (coalesced like the handler's). */
  flushDue(): void {
    const now = this.now();
    if (this.buffer.hasDue(now) || this.backlog.quietTail(now, TAIL_QUIET_MS))
      this.flushes.request(() => this.flush());
  }

  flushAll(): Promise<void> {
    return this.flushes.run(() => this.flush());
  }

  msUntilDue(): number | undefined {
    return this.buffer.msUntilDue(this.now());
  }

  private async flush(): Promise<void> {
    const groups = this.buffer.takeAll();
    this.flushing = this.held;
    this.held = new Map();
    if (this.flushing.size === 0) return;
    try {
      await this.write(groups, [...this.flushing.values()]);
    } finally {
      this.flushing = new Map();
    }
  }

  private async write(groups: Group<TickRow>[], messages: BusMessage[]): Promise<void> {
    const { committer, logger, metrics } = this.deps;
    const started = this.now();
    const written: NewFile[] = [];
    let committing = false;
    try {
      const changes: PartitionChange[] = [];
      const id = newBackupId();
      for (const g of groups) {
        const first = g.items[0]!;
        const values = { symbol: first.symbol, date: first.date };
        const dir = `${TICKS.root}/${partitionPath(TICKS.partitionColumns, values)}`;
        const stamp = new Date(started).toISOString().replace(/[-:]/g, '').slice(0, 15);
        const files = await writeLakeFiles({
          conn: this.deps.conn,
          store: this.deps.store,
          dir,
          fileName: (part, parts) => `ticks_${stamp}_${id}${parts > 1 ? `_${part}` : ''}.parquet`,
          columns: COLUMNS,
          batches: [g.items as unknown as Record<string, unknown>[]],
          compression: this.deps.compression,
          maxFileBytes: this.deps.maxFileBytes,
          timeField: 'ts',
        });
        written.push(...files);
        changes.push({ partition: values, add: files });
      }
      committing = true;
      await committer.commit(TICKS.name, committer.newCommitId(TICKS.name), changes, messages);
      metrics
        .histogram('parquetry_flush_seconds', 'buffer flush: write, upload, commit', ['dataset'])
        .observe({ dataset: 'ticks' }, (this.now() - started) / 1000);
    } catch (err) {
      logger.warn({ err, dataset: 'ticks', messages: messages.length }, 'flush_failed');
      if (!committing) await discardLakeFiles(this.deps.store, written);
      await Promise.all(messages.map((m) => m.fail(err)));
    }
  }
}

function toRow(t: Tick, date: string, seq: number): TickRow {
  return {
    symbol: t.symbol,
    date,
    ts: t.ts,
    price: t.price,
    size: t.size,
    side: t.side ?? null,
    trade_id: t.trade_id ?? null,
    stream_seq: seq,
  };
}

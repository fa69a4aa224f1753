import { randomBytes } from 'node:crypto';
import type { KvEntry } from '@nats-io/kv';
import { type CasRead, isCasConflict, type KvCas } from '@parquetry/bus';
import type { ObjectStore } from '@parquetry/lake';
import { ConflictError, type Logger, TransientError } from '@parquetry/service';
import { decodePartitionState, encodePartitionState, type PartitionState } from './codec.js';

/**
 * Ownership and durable state of one partition (docs/adr/0003-candle-layout.md, "Scale-out"
 * and "State"). One record per partition in the KV bucket `candle_state`, changed only by
 * compare-and-set:
 *   owner + leaseUntil   who may process the partition; renewed every ttl/3
 *   snapshot             where the last persisted state is (an object under `_state/`)
 *   journal              wall-clock steps applied since that state, with their stream position
 * Every write of the owner names the revision it last wrote, so a process that lost the
 * partition (its lease lapsed and another took it) fails its next write and stops: at most one
 * process ever advances a partition's state.
 */
export interface JournalEntry {
  id: number;
  /** Applied after the message at this stream sequence was handled. */
  afterSeq: number;
  clock: number;
}

export interface OwnershipRecord {
  version: 1;
  owner: string;
  incarnation: string;
  leaseUntil: number;
  snapshot: { key: string; seq: number; at: string } | null;
  journal: JournalEntry[];
  lastJournalId: number;
}

export class OwnershipLostError extends ConflictError {
  constructor(partition: string, cause?: unknown) {
    super(`partition ${partition}: ownership lost to another instance`, { cause });
  }
}

export interface OwnershipOptions {
  /** The `candle_state` bucket. */
  kv: KvCas;
  store: ObjectStore;
  /** Partition name (partitionName()). */
  name: string;
  instanceId: string;
  ttlMs: number;
  logger: Logger;
  clock?: () => number;
}

const STATE_PREFIX = '_state/candle-aggregator';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes of the owner that lost a compare-and-set to another partition's write in the same bucket. */
const MAX_WRITE_ATTEMPTS = 50;

function decodeRecord(entry: KvEntry | null): OwnershipRecord | undefined {
  return entry && entry.operation === 'PUT'
    ? (JSON.parse(new TextDecoder().decode(entry.value)) as OwnershipRecord)
    : undefined;
}

export class PartitionOwnership {
  readonly incarnation = randomBytes(6).toString('hex');
  private revision = 0;
  private record: OwnershipRecord | undefined;
  private writes: Promise<unknown> = Promise.resolve();
  private lost = false;
  private readonly now: () => number;

  constructor(private readonly opts: OwnershipOptions) {
    this.now = opts.clock ?? Date.now;
  }

  get name(): string {
    return this.opts.name;
  }

  get isLost(): boolean {
    return this.lost;
  }

  /** Journal entries not covered by the persisted state. */
  get journal(): readonly JournalEntry[] {
    return this.record?.journal ?? [];
  }

  /**
   * Waits until the partition is free (never owned, released, its lease lapsed, or last owned
   * by this same INSTANCE_ID — a restart of this instance), then takes it.
   */
  async acquire(signal?: AbortSignal): Promise<OwnershipRecord> {
    const { kv, name, instanceId, ttlMs, logger } = this.opts;
    let waitingLogged = false;
    for (;;) {
      if (signal?.aborted) throw new TransientError(`gave up acquiring partition ${name}`);
      const { entry, version } = await this.read();
      const current = decodeRecord(entry);
      const now = this.now();
      if (current && current.owner !== instanceId && current.leaseUntil > now) {
        if (!waitingLogged) {
          logger.info(
            { partition: name, owner: current.owner, leaseUntil: current.leaseUntil },
            'partition_waiting',
          );
          waitingLogged = true;
        }
        await sleep(Math.min(1000, Math.max(50, current.leaseUntil - now)));
        continue;
      }
      const next: OwnershipRecord = {
        version: 1,
        owner: instanceId,
        incarnation: this.incarnation,
        leaseUntil: now + ttlMs,
        snapshot: current?.snapshot ?? null,
        journal: current?.journal ?? [],
        lastJournalId: current?.lastJournalId ?? 0,
      };
      try {
        const body = JSON.stringify(next);
        this.revision = await kv.put(name, body, version);
        this.record = next;
        this.lost = false;
        return next;
      } catch (err) {
        if (!isCasConflict(err)) throw new TransientError(`cannot take partition ${name}`, { cause: err });
      }
    }
  }

  /** The persisted state, if any (after acquire). */
  async loadState(): Promise<PartitionState | undefined> {
    const snap = this.record?.snapshot;
    if (!snap) return undefined;
    return await decodePartitionState(await this.opts.store.getBytes(snap.key));
  }

  renew(): Promise<void> {
    return this.write((r) => ({ ...r, leaseUntil: this.now() + this.opts.ttlMs }));
  }

  /** Records a wall-clock step at the current stream position; returns its id. */
  async appendJournal(afterSeq: number, clock: number): Promise<number> {
    let id = 0;
    await this.write((r) => {
      id = r.lastJournalId + 1;
      return { ...r, lastJournalId: id, journal: [...r.journal, { id, afterSeq, clock }] };
    });
    return id;
  }

  /** Stores the state, points the record at it (dropping the journal it covers), removes the previous object. */
  async saveState(state: PartitionState): Promise<void> {
    const key = `${STATE_PREFIX}/${this.opts.name}/${String(state.seq).padStart(12, '0')}-${randomBytes(4).toString('hex')}.json.gz`;
    await this.opts.store.put(key, await encodePartitionState(state));
    const previous = this.record?.snapshot?.key;
    try {
      await this.write((r) => ({
        ...r,
        leaseUntil: this.now() + this.opts.ttlMs,
        snapshot: { key, seq: state.seq, at: new Date(this.now()).toISOString() },
        journal: r.journal.filter((j) => j.id > state.journalId),
      }));
    } catch (err) {
      await this.opts.store.delete(key).catch(() => {});
      throw err;
    }
    if (previous && previous !== key) await this.opts.store.delete(previous).catch(() => {});
  }

  /** Gives the partition up at once (graceful stop), keeping its state pointer. */
  async release(): Promise<void> {
    if (this.lost || !this.record) return;
    await this.write((r) => ({ ...r, leaseUntil: 0 }));
  }

  private read(): Promise<CasRead> {
    return this.opts.kv.get(this.opts.name).catch((err: unknown) => {
      throw new TransientError(`cannot read candle state ${this.opts.name}`, { cause: err });
    });
  }

  /**
   * Serialised compare-and-set writes: the record must still be the one this process wrote last
   * (or, when a reply was lost, its own later write: same incarnation). A compare-and-set lost to
   * a write of another partition in the bucket (a replicated bucket serializes all its writes)
   * is simply tried again.
   */
  private write(change: (r: OwnershipRecord) => OwnershipRecord): Promise<void> {
    const run = async () => {
      const { kv, name } = this.opts;
      for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
        if (this.lost || !this.record) throw new OwnershipLostError(name);
        const { entry, version } = await this.read();
        if (entry && entry.revision < this.revision) {
          // A replica that has not applied our own last write yet: read again.
          await sleep(5 * (attempt + 1));
          continue;
        }
        if (entry?.revision !== this.revision) {
          const stored = decodeRecord(entry);
          if (!entry || stored?.incarnation !== this.incarnation) {
            this.lost = true;
            throw new OwnershipLostError(name);
          }
          this.revision = entry.revision;
          this.record = stored;
        }
        const next = change(this.record);
        try {
          this.revision = await kv.put(name, JSON.stringify(next), version);
          this.record = next;
          return;
        } catch (err) {
          if (!isCasConflict(err)) {
            throw new TransientError(`cannot write candle state ${name}`, { cause: err });
          }
          await sleep(Math.random() * 5 * (attempt + 1));
        }
      }
      throw new TransientError(`cannot write candle state ${name}: too many concurrent writes`);
    };
    const p = this.writes.then(run, run);
    this.writes = p.catch(() => {});
    return p;
  }
}

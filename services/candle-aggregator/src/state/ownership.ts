import { randomBytes } from 'node:crypto';
import type { KV } from '@nats-io/kv';
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
  kv: KV;
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

function isCasConflict(err: unknown): boolean {
  return /wrong last sequence|key exists|10071/i.test(String((err as Error)?.message ?? err));
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
      const entry = await kv.get(name).catch((err: unknown) => {
        throw new TransientError(`cannot read candle state ${name}`, { cause: err });
      });
      const current =
        entry && entry.operation === 'PUT'
          ? (JSON.parse(new TextDecoder().decode(entry.value)) as OwnershipRecord)
          : undefined;
      const now = this.now();
      if (current && current.owner !== instanceId && current.leaseUntil > now) {
        if (!waitingLogged) {
          logger.info(
            { partition: name, owner: current.owner, leaseUntil: current.leaseUntil },
            'waiting for partition',
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
        this.revision =
          current && entry ? await kv.update(name, body, entry.revision) : await kv.create(name, body);
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

  /** Serialised compare-and-set writes against the revision this process wrote last. */
  private write(change: (r: OwnershipRecord) => OwnershipRecord): Promise<void> {
    const run = async () => {
      if (this.lost) throw new OwnershipLostError(this.opts.name);
      if (!this.record) throw new OwnershipLostError(this.opts.name);
      for (let attempt = 0; ; attempt++) {
        const next = change(this.record);
        try {
          this.revision = await this.opts.kv.update(this.opts.name, JSON.stringify(next), this.revision);
          this.record = next;
          return;
        } catch (err) {
          if (!isCasConflict(err)) {
            throw new TransientError(`cannot write candle state ${this.opts.name}`, { cause: err });
          }
          // Our own earlier write may have landed with its reply lost: then the record is still
          // ours (same incarnation) and we continue from it. Anyone else's write means we lost.
          const entry = await this.opts.kv.get(this.opts.name).catch(() => null);
          const stored =
            entry && entry.operation === 'PUT'
              ? (JSON.parse(new TextDecoder().decode(entry.value)) as OwnershipRecord)
              : undefined;
          if (attempt === 0 && entry && stored?.incarnation === this.incarnation) {
            this.revision = entry.revision;
            this.record = stored;
            continue;
          }
          this.lost = true;
          throw new OwnershipLostError(this.opts.name, err);
        }
      }
    };
    const p = this.writes.then(run, run);
    this.writes = p.catch(() => {});
    return p;
  }
}

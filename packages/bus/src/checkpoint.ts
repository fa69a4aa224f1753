import { ConflictError, TransientError } from '@parquetry/service';
import { type CasVersion, isCasConflict, type KvCas } from './kv-cas.js';
import { type Range, SeqRanges } from './seq-ranges.js';

/**
 * Exactly-once across crashes for a durable consumer: the stream sequences whose data is
 * committed to the lake. Each flush first records a *pending* entry (its commit id and the
 * sequences it covers), then commits to the catalog, then moves the sequences to *committed*,
 * and only then acks. A message redelivered after a crash is dropped when its sequence is
 * committed; a pending entry left by a crash is resolved by asking the catalog whether its
 * commit was applied (then its sequences count as committed) or not (then it is forgotten and
 * the messages are written again; the orphan files are swept by vacuum). The record is shared
 * by every instance reading the same durable consumer and updated with compare-and-set.
 */
export interface PendingFlush {
  commitId: string;
  /** One partition the commit touches: where to ask the catalog whether it was applied. */
  probe: { dataset: string; partition: Record<string, string> };
  instance: string;
  seqs: Range[];
  at: number;
}

interface CheckpointRecord {
  committed: Range[];
  pending: PendingFlush[];
}

export type CommitApplied = (pending: PendingFlush) => Promise<boolean>;

const MAX_CAS_ATTEMPTS = 50;

export class SeqCheckpoint {
  private committed = new SeqRanges();
  /** The pending flushes, each with its sequences as a set (asked once per message while flushes run). */
  private pendingSets: { flush: PendingFlush; seqs: SeqRanges }[] = [];

  constructor(
    private readonly cas: KvCas,
    private readonly key: string,
    private readonly instance: string,
  ) {}

  /** Load, and resolve what this instance left pending when it died. */
  async start(isApplied: CommitApplied): Promise<void> {
    await this.refresh();
    await this.resolvePending(isApplied, (p) => p.instance === this.instance);
  }

  /** Whether a sequence's data is already in the lake (from the last loaded record). */
  isCommitted(seq: number): boolean {
    return this.committed.has(seq);
  }

  /** A pending flush (of any instance) that covers this sequence. */
  pendingFor(seq: number): PendingFlush | undefined {
    return this.pendingSets.find((p) => p.seqs.has(seq))?.flush;
  }

  async refresh(): Promise<void> {
    const { record } = await this.read();
    this.load(record);
  }

  private load(record: CheckpointRecord): void {
    this.committed = new SeqRanges(record.committed);
    this.pendingSets = record.pending.map((flush) => ({ flush, seqs: new SeqRanges(flush.seqs) }));
  }

  async begin(
    commitId: string,
    probe: PendingFlush['probe'],
    seqs: Iterable<number>,
    now = Date.now(),
  ): Promise<void> {
    const ranges = SeqRanges.fromSeqs(seqs).toJSON();
    await this.mutate((r) => {
      if (!r.pending.some((p) => p.commitId === commitId)) {
        r.pending.push({ commitId, probe, instance: this.instance, seqs: ranges, at: now });
      }
    });
  }

  /**
   * The commit is applied: its sequences are committed from now on. `seqs` are added even when
   * the pending entry is gone (settled meanwhile by a reader that found the commit not applied
   * yet): the commit's own sequences must never be written again.
   */
  async complete(commitId: string, seqs?: readonly Range[]): Promise<void> {
    await this.mutate((r) => {
      const committed = new SeqRanges(r.committed);
      const p = r.pending.find((x) => x.commitId === commitId);
      if (p) committed.addAll(new SeqRanges(p.seqs));
      if (seqs) committed.addAll(new SeqRanges(seqs));
      r.committed = committed.toJSON();
      r.pending = r.pending.filter((x) => x.commitId !== commitId);
    });
  }

  /** The flush failed before its commit: forget it, the messages will be retried. */
  async abandon(commitId: string): Promise<void> {
    await this.mutate((r) => {
      r.pending = r.pending.filter((x) => x.commitId !== commitId);
    });
  }

  /** Settle pending entries matched by `which` (this instance's after a restart, or stale ones). */
  async resolvePending(isApplied: CommitApplied, which: (p: PendingFlush) => boolean): Promise<void> {
    for (const p of this.pendingSets.map(({ flush }) => flush).filter(which)) {
      if (await isApplied(p)) await this.complete(p.commitId);
      else await this.abandon(p.commitId);
    }
  }

  private async read(): Promise<{ record: CheckpointRecord; version: CasVersion }> {
    try {
      const { entry, version } = await this.cas.get(this.key);
      if (entry?.operation !== 'PUT') return { record: { committed: [], pending: [] }, version };
      return { record: JSON.parse(new TextDecoder().decode(entry.value)) as CheckpointRecord, version };
    } catch (err) {
      throw new TransientError('cannot read the ingest checkpoint', { cause: err });
    }
  }

  private async mutate(change: (r: CheckpointRecord) => void): Promise<void> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const { record, version } = await this.read();
      change(record);
      try {
        await this.cas.put(this.key, JSON.stringify(record), version);
        this.load(record);
        return;
      } catch (err) {
        // A concurrent write won the compare-and-set: read again and reapply.
        if (!isCasConflict(err)) {
          throw new TransientError('cannot write the ingest checkpoint', { cause: err });
        }
        await new Promise((r) => setTimeout(r, Math.random() * 5 * (attempt + 1)));
      }
    }
    throw new ConflictError(`checkpoint ${this.key}: too many concurrent updates`);
  }
}
